//! `strata plan`: plan under the lock, render it (or stream it in
//! Terraform's machine-readable UI), save it.

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
        if session.ui.compact_warnings && !shell.ui && !warnings.has_errors() {
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
    if flags.json {
        output::json_ui::version();
    }
    let (planned, _guard) = make_plan(shell, ws, session, flags, parallelism, false, "plan").await?;
    if flags.json {
        output::json_ui::plan(&planned.plan);
    } else {
        shell.out(&render_plan(shell, &planned.plan, &planned.loaded.schemas));
    }
    if let Some(path) = out {
        ops::save_plan(ws, &planned.plan, &path)?;
        if !flags.json {
            shell.status(&format!("Saved the plan to {}. Apply exactly this plan with: strata apply {}", path.display(), path.display()));
        }
    }
    let code = if detailed && planned.plan.has_changes() { 2 } else { 0 };
    planned.release();
    Ok(code)
}
