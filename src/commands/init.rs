//! `strata init`: create the state store and check the configuration.

use super::*;

pub(super) fn init(shell: &Shell, ws: &Workspace) -> ops::OpResult<i32> {
    let diags = ops::validate(ws)?;
    let snap = ws.store.snapshot()?;
    if !diags.0.is_empty() {
        shell.diagnostics(&Default::default(), &diags);
    }
    for (address, dir) in ops::modules(ws) {
        shell.status(&format!("- {address} from {}", dir.display()));
    }
    shell.status(&format!(
        "Strata is initialized in {} (state version {}, lineage {}).\nKeep .strata/ out of git: it is this directory's state.",
        ws.dir.display(),
        snap.meta.serial,
        snap.meta.lineage
    ));
    Ok(0)
}
