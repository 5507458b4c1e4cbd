//! `strata plan`: plan under the lock, render it, save it, or print JSON.

use super::*;

pub(super) async fn make_plan(
    shell: &Shell,
    ws: &Workspace,
    session: &Session,
    flags: &PlanFlags,
    parallelism: usize,
    destroy: bool,
    operation: &str,
) -> ops::OpResult<(Planned, Option<ops::LockGuard>)> {
    let guard = take_lock(shell, ws, operation, &session.lock)?;
    let mut request = flags.request(destroy);
    request.parallelism = parallelism;
    let planned = ops::plan(ws, &request).await?;
    for line in &planned.reconciled {
        shell.warn(&format!("crash recovery: {line}"));
    }
    let mut warnings = planned.loaded.warnings.clone();
    warnings.extend(planned.warnings.clone());
    if !warnings.0.is_empty() {
        if session.ui.compact_warnings && !warnings.has_errors() {
            compact_warnings(shell, &planned.loaded.config.sources, &warnings);
        } else {
            shell.diagnostics(&planned.loaded.config.sources, &warnings);
        }
    }
    Ok((planned, guard))
}

/// `-compact-warnings`: one line per warning, its place, no snippet.
fn compact_warnings(shell: &Shell, sources: &crate::config::Sources, warnings: &crate::config::Diagnostics) {
    let mut text = String::from("Warnings:\n");
    for d in warnings.iter() {
        match d.location(sources) {
            Some(at) => text.push_str(&format!("- {} (at {at})\n", d.message)),
            None => text.push_str(&format!("- {}\n", d.message)),
        }
    }
    text.push_str("To see the full warning notes, run Strata without -compact-warnings.");
    shell.status(&text);
}

pub(super) async fn plan_cmd(
    shell: &Shell,
    ws: &Workspace,
    session: &Session,
    flags: &PlanFlags,
    parallelism: usize,
    out: Option<PathBuf>,
    detailed: bool,
) -> ops::OpResult<i32> {
    let (planned, _guard) = make_plan(shell, ws, session, flags, parallelism, false, "plan").await?;
    if flags.json {
        shell.out(&plan_json(&planned.plan).to_string());
    } else {
        shell.out(&render_plan(shell, &planned.plan, &planned.loaded.schemas));
    }
    if let Some(path) = out {
        ops::save_plan(&planned.plan, &path)?;
        if !flags.json {
            shell.status(&format!("Saved the plan to {}. Apply exactly this plan with: strata apply {}", path.display(), path.display()));
        }
    }
    Ok(if detailed && planned.plan.has_changes() { 2 } else { 0 })
}

/// The plan as JSON, with sensitive values redacted.
pub(super) fn plan_json(plan: &crate::plan::Plan) -> serde_json::Value {
    let changes: Vec<_> = plan
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "address": c.address,
                "type": c.type_name,
                "provider": c.provider,
                "action": c.action,
                "disruption": c.disruption,
                "attribute_disruptions": c.attribute_disruptions,
                "replace_because": c.replace_because,
                "reason": c.reason,
                "rollback_cannot_restore": c.irreversible,
                "before": c.prior.as_ref().map(|v| v.to_redacted_json()),
                "after": c.planned.as_ref().map(|v| v.to_redacted_json()),
                "after_unknown": c.planned.as_ref().map(unknown_paths),
            })
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = plan
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), serde_json::json!({"sensitive": o.sensitive, "value": o.after.to_redacted_json(), "unknown": o.after.contains_unknown()})))
        .collect();
    serde_json::json!({
        "format_version": plan.format_version,
        "mode": plan.mode,
        "state_serial": plan.serial,
        "resource_changes": changes,
        "output_changes": outputs,
        "drift": plan.drift.iter().map(|d| d.address.clone()).collect::<Vec<_>>(),
        "has_changes": plan.has_changes(),
    })
}

pub(super) fn unknown_paths(v: &strata_provider::Value) -> Vec<String> {
    v.as_map().map(|m| m.iter().filter(|(_, v)| v.contains_unknown()).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
}
