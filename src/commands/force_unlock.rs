//! `strata force-unlock`: break a state lock, asking first when its holder
//! may still be running.

use super::*;
use strata_state::{BrokenLock, StateError};

pub(super) fn force_unlock(shell: &Shell, ws: &Workspace, lock_id: &str, force: bool) -> ops::OpResult<i32> {
    let risk = match ws.store.lock_holder() {
        Ok(Some(holder)) if holder.id != lock_id => return Err(StateError::NoSuchLock(lock_id.to_owned()).into()),
        Ok(None) => return Err(StateError::NoSuchLock(lock_id.to_owned()).into()),
        // A dead process on this host: breaking its lock is safe.
        Ok(Some(holder)) if holder.holder_is_dead() => None,
        Ok(Some(holder)) if holder.holder_is_running_here() => Some(format!(
            "Lock {lock_id} is held by {holder}, which is still running: breaking it lets two processes change the state at once."
        )),
        Ok(Some(holder)) => Some(format!("Lock {lock_id} is held by {holder} on another host, which may still be running.")),
        Err(e @ StateError::LockCorrupt { .. }) => Some(format!("{e}\nA Strata process may still be running and using the state.")),
        Err(e) => return Err(e.into()),
    };
    if let Some(risk) = risk.filter(|_| !force) {
        if !std::io::stdin().is_terminal() {
            return Err(OpError::Message(format!("{risk}\nforce-unlock needs confirmation: run it on a terminal, or pass -force")));
        }
        shell.status(&format!("{risk}\nDo you really want to break the lock? Only 'yes' will be accepted."));
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if answer.trim() != "yes" {
            shell.status("force-unlock cancelled.");
            return Ok(1);
        }
    }
    match ws.store.force_unlock(lock_id)? {
        BrokenLock::Held(holder) => shell.status(&format!("Lock {lock_id} held by {holder} was removed.")),
        BrokenLock::Corrupt(detail) => shell.status(&format!("The lock file did not hold a lock record ({detail}); it was removed.")),
    }
    Ok(0)
}
