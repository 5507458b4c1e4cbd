//! Which workspace a working directory uses: `STRATA_WORKSPACE` if set,
//! else the one `strata workspace select` remembered in `.strata/environment`
//! (Terraform keeps it in `.terraform/environment`), else `default`.

use super::{OpError, OpResult};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use strata_state::{check_workspace_name, Access, LockInfo, StateError, DEFAULT_WORKSPACE};

/// The environment variable that chooses the workspace (CI sets it).
pub const WORKSPACE_ENV: &str = "STRATA_WORKSPACE";

/// The file that remembers the selected workspace. It stays in `.strata/`
/// whatever the backend, as Terraform's stays in `.terraform/`.
pub fn environment_file(dir: &Path) -> PathBuf {
    dir.join(".strata").join("environment")
}

/// The workspace commands in `dir` use.
pub fn selected_workspace(dir: &Path) -> OpResult<String> {
    if let Some(name) = std::env::var_os(WORKSPACE_ENV) {
        let name = name.to_string_lossy().into_owned();
        check_workspace_name(&name).map_err(|e| OpError::Message(format!("{WORKSPACE_ENV}: {e}")))?;
        return Ok(name);
    }
    let path = environment_file(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = text.trim().to_owned();
            check_workspace_name(&name).map_err(|e| OpError::Message(format!("{}: {e}", path.display())))?;
            Ok(name)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_WORKSPACE.to_owned()),
        Err(e) => Err(OpError::Message(format!("read {}: {e}", path.display()))),
    }
}

/// True when `STRATA_WORKSPACE` chooses the workspace, so `select` cannot.
pub fn workspace_overridden() -> bool {
    std::env::var_os(WORKSPACE_ENV).is_some()
}

/// Remembers `name` as the selected workspace of `dir`.
pub fn remember_workspace(dir: &Path, name: &str) -> OpResult<()> {
    let path = environment_file(dir);
    let parent = path.parent().unwrap_or(dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .map_err(|e| OpError::Message(format!("create {}: {e}", parent.display())))?;
    crate::private_file::write_private(&path, format!("{name}\n").as_bytes()).map_err(OpError::Message)
}

/// Why `strata workspace delete` refused a workspace.
pub enum DeleteRefusal {
    Current,
    /// It still manages these instances (and `-force` was not given).
    NotEmpty(Vec<String>),
}

/// What deleting a workspace left behind: the instances it forgot (only
/// with `-force`).
pub struct Deleted {
    pub forgotten: Vec<String>,
}

/// `strata workspace delete`: refused for the current workspace and, unless
/// `force`, for one that still manages objects (their state would be lost).
pub fn delete_workspace(ws: &super::Workspace, name: &str, force: bool) -> OpResult<Result<Deleted, DeleteRefusal>> {
    check_workspace_name(name)?;
    if !ws.backend.workspaces()?.iter().any(|w| w == name) {
        return Err(StateError::NoSuchWorkspace(name.to_owned()).into());
    }
    if name == ws.name {
        return Ok(Err(DeleteRefusal::Current));
    }
    let store = ws.backend.open(name, Access::ReadWrite)?;
    let info = LockInfo::for_this_process("workspace delete");
    store.lock(&info)?;
    let checked = store.snapshot().map(|s| s.instances.into_keys().collect::<Vec<_>>());
    let instances = match checked {
        Ok(i) => i,
        Err(e) => {
            let _ = store.unlock(&info);
            return Err(e.into());
        }
    };
    if !instances.is_empty() && !force {
        let _ = store.unlock(&info);
        return Ok(Err(DeleteRefusal::NotEmpty(instances)));
    }
    // Close the store before its files go; the lock goes with them.
    drop(store);
    ws.backend.delete_workspace(name)?;
    Ok(Ok(Deleted { forgotten: instances }))
}
