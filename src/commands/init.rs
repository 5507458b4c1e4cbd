//! `strata init`: create the state store and check the configuration.

use super::*;

pub(super) fn init(shell: &Shell, ws: &Workspace, lock: &LockFlags) -> ops::OpResult<i32> {
    // Nothing to change under the lock yet; taking it checks nobody else
    // holds it, as Terraform's init does with -lock and -lock-timeout.
    drop(take_lock(shell, ws, "init", lock)?);
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
