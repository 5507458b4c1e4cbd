//! `strata state list|show|rm|mv|history|pull|push|restore-backup`.

use super::*;

pub(super) fn state_cmd(shell: &Shell, ws: &Workspace, cmd: StateCommand) -> ops::OpResult<i32> {
    match cmd {
        StateCommand::List { addresses } => {
            let snap = ws.store.snapshot()?;
            for address in list(&snap, &addresses)? {
                shell.out(address);
            }
        }
        StateCommand::Show { address } => {
            let snap = ws.store.snapshot()?;
            let r = snap.instances.get(&address).ok_or_else(|| format!("{address} is not in state"))?;
            shell.out(&describe_instance(r));
        }
        StateCommand::Rm { addresses, lock } => {
            let _guard = take_lock(shell, ws, "state rm", &lock)?;
            let targets = addresses.iter().map(|a| a.parse::<Target>()).collect::<Result<Vec<_>, _>>()?;
            for a in ops::state_rm(ws, &targets)? {
                shell.status(&format!("Removed {a} from state (the object itself was not destroyed)"));
            }
        }
        StateCommand::Mv { from, to, lock } => {
            let _guard = take_lock(shell, ws, "state mv", &lock)?;
            let moved = ops::state_mv(ws, &from, &to)?;
            for (old, new) in &moved {
                shell.status(&format!("Moved {old} to {new}"));
            }
            shell.status(&format!("Successfully moved {} instance(s).", moved.len()));
        }
        StateCommand::Pull => shell.out(&ops::state_pull(ws)?),
        StateCommand::Push { file, force, lock } => {
            let (bytes, source) = if file.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map_err(|e| format!("cannot read the state from stdin: {e}"))?;
                (bytes, "stdin".to_owned())
            } else {
                let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                (bytes, file.display().to_string())
            };
            let _guard = take_lock(shell, ws, "state push", &lock)?;
            match ops::state_push(ws, &bytes, &source, force)? {
                ops::Pushed::Unchanged => shell.status("The workspace already holds this state; nothing was written."),
                ops::Pushed::Written(serial) => shell.status(&format!("Pushed {source} as state version {serial}.")),
            }
        }
        StateCommand::RestoreBackup { lock } => {
            let _guard = take_lock(shell, ws, "state restore-backup", &lock)?;
            let meta = ws.store.restore_backup()?;
            shell.status(&format!(
                "Restored state version {} (lineage {}) from the backup; the damaged file was kept beside it.\n\
                 Objects created or changed after that version are not in it: run strata plan to see what differs.",
                meta.serial, meta.lineage
            ));
        }
        StateCommand::History => {
            for v in ws.store.history()? {
                shell.out(&format!("{:>5}  {}  {:<20} {:<10} {} instance(s)", v.serial, rfc3339(v.created_at), v.operation, v.user, v.instances));
            }
        }
    }
    Ok(0)
}

/// The state's addresses, or (as Terraform's `state list ADDR...`) those in
/// the given resources, instances and modules; a filter that matches nothing
/// is an error, as it is most likely a typo.
fn list<'a>(snap: &'a strata_state::Snapshot, filters: &[Target]) -> ops::OpResult<Vec<&'a String>> {
    let parsed: Vec<(&String, Option<crate::addr::InstanceAddr>)> = snap
        .instances
        .keys()
        .map(|a| (a, crate::addr::parse_instance(a.split('~').next().unwrap_or(a)).ok()))
        .collect();
    if filters.is_empty() {
        return Ok(parsed.into_iter().map(|(a, _)| a).collect());
    }
    for filter in filters {
        if !parsed.iter().any(|(_, i)| i.as_ref().is_some_and(|i| filter.matches(i))) {
            let what = if filter.resource.is_some() { "resource" } else { "module" };
            return Err(OpError::Message(format!("the state contains no {what} {filter}")));
        }
    }
    Ok(parsed.into_iter().filter(|(_, i)| i.as_ref().is_some_and(|i| filters.iter().any(|f| f.matches(i)))).map(|(a, _)| a).collect())
}

/// Seconds since the Unix epoch as RFC 3339 (UTC), as Terraform prints times.
fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| seconds.to_string(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
