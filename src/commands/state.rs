//! `strata state list|show|rm|mv|history|restore-backup`.

use super::*;

pub(super) fn state_cmd(shell: &Shell, ws: &Workspace, cmd: StateCommand) -> ops::OpResult<i32> {
    match cmd {
        StateCommand::List => {
            for address in ws.store.snapshot()?.instances.keys() {
                shell.out(address);
            }
        }
        StateCommand::Show { address } => {
            let snap = ws.store.snapshot()?;
            let r = snap.instances.get(&address).ok_or_else(|| format!("{address} is not in state"))?;
            shell.out(&describe_instance(r));
        }
        StateCommand::Rm { addresses } => {
            let (_guard, _) = ops::lock(ws, "state rm")?;
            let targets = addresses.iter().map(|a| a.parse::<Target>()).collect::<Result<Vec<_>, _>>()?;
            for a in ops::state_rm(ws, &targets)? {
                shell.status(&format!("Removed {a} from state (the object itself was not destroyed)"));
            }
        }
        StateCommand::Mv { from, to } => {
            let (_guard, _) = ops::lock(ws, "state mv")?;
            ops::state_mv(ws, &from, &to)?;
            shell.status(&format!("Moved {from} to {to}"));
        }
        StateCommand::RestoreBackup => {
            let (_guard, _) = ops::lock(ws, "state restore-backup")?;
            let meta = ws.store.restore_backup()?;
            shell.status(&format!(
                "Restored state version {} (lineage {}) from the backup; the damaged file was kept beside it.\n\
                 Objects created or changed after that version are not in it: run strata plan to see what differs.",
                meta.serial, meta.lineage
            ));
        }
        StateCommand::History => {
            for v in ws.store.history()? {
                shell.out(&format!("{:>5}  {}  {:<20} {:<10} {} instance(s)", v.serial, v.created_at, v.operation, v.user, v.instances));
            }
        }
    }
    Ok(0)
}
