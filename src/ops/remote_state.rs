//! `data "strata_remote_state"`: another configuration's outputs, read from
//! its state through the [`Backend`] trait, read-only. Data sources are read
//! by `ops` (the planner stays pure); this one by the engine itself, since it
//! needs a backend, which no provider may see.
//!
//! A backend is opened from its settings: `local` takes the other
//! configuration's directory (`config = { path = "../network" }`) and
//! follows that configuration's own `backend` and `encryption` blocks, so
//! its state is found wherever it lives and decrypted with its key (given
//! to this process the way that configuration takes it, e.g. its
//! `STRATA_VAR_...`). Another backend is one more arm in [`remote_backend`].

use super::*;
use strata_state::DEFAULT_WORKSPACE;

pub use strata_provider_builtin::REMOTE_STATE;

/// Reads the outputs `config` (the data source's arguments) points at.
pub fn read_remote_state(ws: &Workspace, address: &str, config: &Value) -> OpResult<Value> {
    let kind = config.get("backend").as_str().unwrap_or("local").to_owned();
    let workspace = config.get("workspace").as_str().unwrap_or(DEFAULT_WORKSPACE).to_owned();
    let fail = |m: String| OpError::Message(format!("reading {address}: {m}"));
    strata_state::check_workspace_name(&workspace).map_err(|e| fail(e.to_string()))?;
    let backend = remote_backend(ws, &kind, config.get("config")).map_err(|e| match e {
        OpError::Message(m) => fail(m),
        other => other,
    })?;
    let store = backend.open(&workspace, Access::ReadOnly).map_err(|e| fail(e.to_string()))?;
    let snapshot = store.snapshot().map_err(|e| fail(e.to_string()))?;
    let mut outputs = match config.get("defaults") {
        Value::Map(m) => m.clone(),
        Value::Null => BTreeMap::new(),
        _ => return Err(fail("defaults must be an object".into())),
    };
    outputs.extend(snapshot.outputs);
    let mut value = match config.clone() {
        Value::Map(m) => m,
        _ => BTreeMap::new(),
    };
    value.insert("outputs".into(), Value::Map(outputs));
    Ok(Value::Map(value))
}

/// The backend a remote state's settings name.
fn remote_backend(ws: &Workspace, kind: &str, settings: &Value) -> OpResult<Arc<dyn Backend>> {
    match kind {
        "local" => {
            let path = settings.get("path").as_str().ok_or_else(|| "the local backend needs config = { path = \"DIR\" }".to_owned())?;
            let dir = ws.dir.join(path);
            if !dir.is_dir() {
                return Err(OpError::Message(format!("{} is not a directory", dir.display())));
            }
            let (other, _) = Config::load(&dir);
            let ciphers = ciphers(&other)?;
            backend_for(&dir, other.backend.as_ref(), ciphers.state)
        }
        other => Err(OpError::Message(format!("unknown backend {other:?} (expected local)"))),
    }
}
