//! `strata import ADDR ID`.

use super::*;

pub(super) async fn import(shell: &Shell, ws: &Workspace, lock: &LockFlags, address: &str, id: &str, vars: &[VarArg]) -> ops::OpResult<i32> {
    let _guard = take_lock(shell, ws, "import", lock)?;
    let record = ops::import(ws, vars, address, id).await?;
    shell.status(&format!("Imported {address} (identity {}). Run strata plan to compare it with the configuration.", record.id));
    Ok(0)
}
