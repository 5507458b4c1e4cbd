//! `strata show`: the state or a saved plan.

use super::*;

pub(super) fn show(shell: &Shell, ws: &Workspace, plan_file: Option<PathBuf>, json: bool) -> ops::OpResult<i32> {
    if let Some(path) = plan_file {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan: crate::plan::Plan = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        shell.out(&if json { plan_json(&plan).to_string() } else { render_plan(shell, &plan) });
        return Ok(0);
    }
    let snap = ws.store.snapshot()?;
    if json {
        let resources: Vec<_> = snap
            .instances
            .values()
            .map(|r| serde_json::json!({"address": r.address, "id": r.id, "type": r.type_name, "provider": r.provider, "values": r.attributes.to_redacted_json()}))
            .collect();
        let outputs: serde_json::Map<_, _> = snap.outputs.iter().map(|(k, v)| (k.clone(), v.to_redacted_json())).collect();
        shell.out(&serde_json::json!({"serial": snap.meta.serial, "lineage": snap.meta.lineage, "resources": resources, "outputs": outputs}).to_string());
        return Ok(0);
    }
    if snap.instances.is_empty() {
        shell.out("The state is empty.");
    }
    for r in snap.instances.values() {
        shell.out(&describe_instance(r));
    }
    Ok(0)
}

pub(super) fn describe_instance(r: &strata_state::InstanceRecord) -> String {
    let mut text = format!("# {}:\nresource {:?} {{  # id {}\n", r.address, r.type_name, r.id);
    if let Some(m) = r.attributes.as_map() {
        let width = m.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in m {
            if !v.is_null() {
                text.push_str(&format!("    {k:<width$} = {}\n", output::render_value(v)));
            }
        }
    }
    text.push('}');
    text
}
