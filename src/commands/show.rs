//! `strata show`: the state or a saved plan, for people or (with `-json`)
//! in Terraform's JSON representations (`output::tf_json`).

use super::*;

pub(super) fn show(shell: &Shell, ws: &Workspace, plan_file: Option<PathBuf>, json: bool) -> ops::OpResult<i32> {
    if let Some(path) = plan_file {
        let plan = ops::read_plan_file(ws, &path)?;
        if json {
            // The configuration the plan was made from is the one in the
            // directory (apply refuses the plan otherwise); when it does not
            // load, the document goes without `configuration`.
            let (config, diags) = crate::config::Config::load(&ws.dir);
            let config = (!diags.has_errors()).then_some(&config);
            shell.out(&output::tf_json::plan_document(&plan, config).to_string());
        } else {
            shell.out(&render_plan(shell, &plan, &ws.schemas()));
        }
        return Ok(0);
    }
    let snap = ws.store.snapshot()?;
    if json {
        shell.out(&output::tf_json::state_document(&snap).to_string());
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

/// One instance as Terraform's `state show` prints it: a comment with the
/// address, then a valid `resource "TYPE" "NAME" {` block (`data` for data
/// sources), Strata's identity as a comment since it is no attribute.
pub(super) fn describe_instance(r: &strata_state::InstanceRecord) -> String {
    let base = r.address.split('~').next().unwrap_or(&r.address);
    let (kind, name) = match crate::addr::parse_instance(base) {
        Ok(addr) => (if addr.resource.mode == crate::addr::Mode::Data { "data" } else { "resource" }, addr.resource.name),
        Err(_) => ("resource", base.rsplit('.').next().unwrap_or(base).to_owned()),
    };
    let mut text = format!("# {}:\n# identity: {}\n{kind} {:?} {:?} {{\n", r.address, r.id, r.type_name, name);
    if let Some(m) = r.attributes.as_map() {
        let width = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in m {
            if !v.is_null() {
                text.push_str(&format!("    {k:<width$} = {}\n", output::render_value(v)));
            }
        }
    }
    text.push('}');
    text
}
