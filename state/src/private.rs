//! The state directory and its files are private to their owner: the state
//! holds every managed object's attributes, secrets included (marked, but in
//! clear text). The directory is 0700, its files 0600.

use crate::{Result, StateError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Creates the state directory (mode 0700) if it is missing, and takes group
/// and other access away from an existing one that belongs to this user
/// (earlier versions made it 0755). A shared directory (sticky, like /tmp,
/// or another user's) is left alone: its files are still 0600.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    let io = |source| StateError::Io { context: format!("create state directory {}", dir.display()), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    let meta = std::fs::metadata(dir).map_err(io)?;
    let mode = meta.permissions().mode();
    let ours = meta.uid() == euid();
    if ours && mode & 0o077 != 0 && mode & 0o1000 == 0 {
        // Best effort: a read-only state directory is still readable.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700));
    }
    Ok(())
}

/// Takes group and other access away from a file of the state directory
/// that a library knowing nothing of modes (redb) created, or that an
/// earlier version left 0644. Best effort, like the directory's: on a
/// read-only state it cannot be changed, and the directory protects it.
pub(crate) fn restrict_file(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 && meta.uid() == euid() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700));
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
