//! Which workspace a working directory uses: `STRATA_WORKSPACE` if set,
//! else the one `strata workspace select` remembered in `.strata/environment`
//! (Terraform keeps it in `.terraform/environment`), else `default`.

use super::{OpError, OpResult};
use std::path::{Path, PathBuf};
use strata_state::{check_workspace_name, DEFAULT_WORKSPACE};

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
