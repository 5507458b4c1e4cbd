//! Moving a whole state in and out of a workspace, on any backend:
//! `strata state pull` prints it as JSON, `strata state push FILE` replaces
//! the workspace's state with one pulled earlier, refusing (unless forced) a
//! state of another lineage or an older serial, as Terraform does.

use super::*;
use serde::{Deserialize, Serialize};
use strata_state::Snapshot;

/// The format `state pull` writes and `state push` reads.
pub const PULLED_STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct PulledState {
    strata_state_version: u32,
    #[serde(flatten)]
    snapshot: Snapshot,
}

/// `strata state pull`: the current state as JSON, values included (it is
/// the state itself, to be kept as privately as the state is).
pub fn state_pull(ws: &Workspace) -> OpResult<String> {
    let snapshot = ws.store.snapshot()?;
    let pulled = PulledState { strata_state_version: PULLED_STATE_VERSION, snapshot };
    serde_json::to_string_pretty(&pulled).map_err(|e| OpError::Message(format!("cannot encode the state: {e}")))
}

/// What `state push` did.
pub enum Pushed {
    /// The workspace already held exactly this state.
    Unchanged,
    /// Written as a new version with this serial.
    Written(u64),
}

/// `strata state push`: replaces the workspace's state with `bytes` (the
/// caller holds the lock). Without `force`, a state of another lineage (over
/// a workspace that has state) or with an older serial is refused.
pub fn state_push(ws: &Workspace, bytes: &[u8], source: &str, force: bool) -> OpResult<Pushed> {
    let pushed: PulledState =
        serde_json::from_slice(bytes).map_err(|e| OpError::Message(format!("{source} is not a state written by strata state pull: {e}")))?;
    if pushed.strata_state_version != PULLED_STATE_VERSION {
        return Err(OpError::Message(format!("{source}: state format {} is not supported", pushed.strata_state_version)));
    }
    let incoming = pushed.snapshot;
    if !ws.store.pending_intents()?.is_empty() || ws.store.apply_log()?.is_some() {
        return Err(OpError::Message(
            "the workspace holds an interrupted apply; run strata plan (which recovers it) before pushing a state over it".into(),
        ));
    }
    let current = ws.store.snapshot()?;
    let has_state = current.meta.serial > 0 || !current.instances.is_empty() || !current.outputs.is_empty();
    if !force && has_state {
        if incoming.meta.lineage != current.meta.lineage {
            return Err(OpError::Message(format!(
                "cannot import state with lineage {} over unrelated state with lineage {}\n\
                 Pass -force to replace it anyway.",
                incoming.meta.lineage, current.meta.lineage
            )));
        }
        if incoming.meta.serial < current.meta.serial {
            return Err(OpError::Message(format!(
                "cannot import state with serial {} over newer state with serial {}\nPass -force to replace it anyway.",
                incoming.meta.serial, current.meta.serial
            )));
        }
    }
    if incoming.instances == current.instances && incoming.outputs == current.outputs {
        return Ok(Pushed::Unchanged);
    }
    for (address, record) in &incoming.instances {
        if &record.address != address {
            return Err(OpError::Message(format!("{source}: the record under {address:?} is for {:?}", record.address)));
        }
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let serial = ws.store.begin_version("state push", &user)?;
    let mut writes: Vec<Write> = current
        .instances
        .keys()
        .filter(|a| !incoming.instances.contains_key(*a))
        .map(|a| Write::RemoveInstance { address: a.clone() })
        .collect();
    writes.extend(incoming.instances.into_values().map(Write::PutInstance));
    writes.push(Write::SetOutputs(incoming.outputs));
    ws.store.commit(writes)?;
    Ok(Pushed::Written(serial))
}
