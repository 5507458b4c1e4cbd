//! `data "strata_remote_state"`: another configuration's outputs, read from
//! its state through the [`Backend`] trait, read-only. Data sources are read
//! by `ops` (the planner stays pure); this one by the engine itself, since it
//! needs a backend, which no provider may see.
//!
//! Two ways to name the other state:
//! - `config = { path = "../network" }` without `backend`: the other
//!   configuration's directory. Its own `backend` and `encryption` blocks
//!   are followed, so its state is found wherever it lives and decrypted
//!   with its key (given to this process the way that configuration takes
//!   it, e.g. its `STRATA_VAR_...`).
//! - `backend = "TYPE"` with `config = { ... }`: the backend's settings, as
//!   in a `backend` block, opened by [`backend_for`] (the one place a backend
//!   is chosen by name) with this configuration's state encryption.

use super::*;
use strata_state::DEFAULT_WORKSPACE;

pub use strata_provider_builtin::REMOTE_STATE;

/// Reads the outputs `config` (the data source's arguments) points at.
pub fn read_remote_state(ws: &Workspace, address: &str, config: &Value) -> OpResult<Value> {
    let kind = config.get("backend").as_str().map(str::to_owned);
    let workspace = config.get("workspace").as_str().unwrap_or(DEFAULT_WORKSPACE).to_owned();
    let fail = |m: String| OpError::Message(format!("reading {address}: {m}"));
    strata_state::check_workspace_name(&workspace).map_err(|e| fail(e.to_string()))?;
    let backend = remote_backend(ws, kind.as_deref(), config.get("config")).map_err(|e| match e {
        OpError::Message(m) => fail(m),
        other => other,
    })?;
    let store = backend.open(&workspace, Access::ReadOnly).map_err(|e| fail(e.to_string()))?;
    let snapshot = store.snapshot().map_err(|e| fail(e.to_string()))?;
    let mut outputs = match config.get("defaults") {
        Value::Map(m) => m.clone(),
        Value::Null => BTreeMap::new().into(),
        _ => return Err(fail("defaults must be an object".into())),
    };
    outputs.extend(snapshot.outputs);
    let mut value = match config.clone() {
        Value::Map(m) => m,
        _ => BTreeMap::new().into(),
    };
    value.insert("outputs".into(), Value::Map(outputs));
    Ok(Value::Map(value))
}

/// The backend a remote state's arguments name.
fn remote_backend(ws: &Workspace, kind: Option<&str>, settings: &Value) -> OpResult<Arc<dyn Backend>> {
    let path = settings.get("path").as_str().map(str::to_owned);
    match kind {
        None => {
            let path = path.ok_or_else(|| "set config = { path = \"DIR\" } (another configuration's directory) or a backend".to_owned())?;
            let dir = ws.dir.join(path);
            if !dir.is_dir() {
                return Err(OpError::Message(format!("{} is not a directory", dir.display())));
            }
            let (other, _) = Config::load(&dir);
            let ciphers = ciphers(&other)?;
            backend_for(&dir, other.backend.as_ref(), ciphers.state)
        }
        Some(kind) => {
            let (this, _) = Config::load(&ws.dir);
            // Every string setting goes to the backend (`path` for local;
            // `conn_str`, `schema_name` for pg, the connection string also
            // from its environment variable).
            let all = match settings {
                Value::Map(m) => m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect(),
                _ => BTreeMap::new(),
            };
            let settings = config::Backend { name: kind.to_owned(), path, settings: all, span: Default::default() };
            backend_for(&ws.dir, Some(&settings), ciphers(&this)?.state)
        }
    }
}
