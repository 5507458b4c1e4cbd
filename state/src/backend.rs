//! Backends: where a configuration's workspaces live.
//!
//! A [`Backend`] holds any number of named workspaces, each a complete state
//! of its own (records, journal, history and lock), reached as a
//! [`StateStore`]. The engine picks one backend per configuration
//! (`terraform { backend "..." }`) and then talks only to this trait, so a
//! new backend is one implementation here and one arm where the engine
//! chooses. [`LocalBackend`] keeps the `default` workspace directly in the
//! state directory (`.strata/`, where states written before workspaces
//! existed already are) and every other one in `workspaces/NAME/` under it.

use crate::{private, Encryption, LocalStore, Result, StateError, StateStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workspace every backend has, which cannot be deleted.
pub const DEFAULT_WORKSPACE: &str = "default";

/// How a workspace's store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// For commands that change state (and take the lock).
    ReadWrite,
    /// For commands that take the lock and may write, but mostly read the
    /// state (a plan): the rights of [`Access::ReadWrite`], and a hint that
    /// the backend may size its buffers for one pass of reading rather
    /// than for the writes of an apply.
    ReadMostly,
    /// For commands that only read: nothing is written, not even a lock,
    /// and reading works while another process applies.
    ReadOnly,
}

/// A place that keeps named workspaces.
pub trait Backend: Send + Sync {
    /// The backend type as configured (`local`, `pg`), for messages.
    fn kind(&self) -> &'static str;

    /// Every workspace, [`DEFAULT_WORKSPACE`] first, the others by name.
    fn workspaces(&self) -> Result<Vec<String>>;

    /// One workspace's state. As in Terraform, a workspace that does not
    /// exist yet reads as an empty state, and the first write creates it
    /// (so `STRATA_WORKSPACE=pr-42` in CI needs no `workspace new`).
    fn open(&self, workspace: &str, access: Access) -> Result<Arc<dyn StateStore>>;

    /// Creates an empty workspace; [`StateError::WorkspaceExists`] if it is
    /// there already.
    fn create_workspace(&self, workspace: &str) -> Result<()>;

    /// Deletes a workspace and everything it holds. The caller decides
    /// whether the workspace may go (it still manages objects, it is the
    /// current one); the backend refuses only `default` and unknown names.
    fn delete_workspace(&self, workspace: &str) -> Result<()>;
}

/// Terraform's rule: a name that needs no escaping in a URL path and holds
/// no path separator, so it is safe as a directory or key name anywhere.
pub fn check_workspace_name(name: &str) -> Result<()> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    if name.is_empty() || name == "." || name == ".." || !name.chars().all(safe) {
        return Err(StateError::InvalidWorkspaceName(name.to_owned()));
    }
    Ok(())
}

/// The local backend: workspaces as directories.
pub struct LocalBackend {
    dir: PathBuf,
    enc: Arc<Encryption>,
}

/// Where the local backend keeps workspaces other than `default`.
const WORKSPACES_DIR: &str = "workspaces";

impl LocalBackend {
    /// A backend whose `default` workspace is the state directory `dir`
    /// (usually `.strata/`).
    pub fn new(dir: &Path) -> LocalBackend {
        LocalBackend { dir: dir.to_owned(), enc: Encryption::none() }
    }

    /// The same backend, every workspace's records encrypted by `enc`.
    pub fn with_encryption(mut self, enc: Arc<Encryption>) -> LocalBackend {
        self.enc = enc;
        self
    }

    /// The directory of one workspace's state.
    pub fn workspace_dir(&self, workspace: &str) -> PathBuf {
        if workspace == DEFAULT_WORKSPACE {
            self.dir.clone()
        } else {
            self.dir.join(WORKSPACES_DIR).join(workspace)
        }
    }

    fn exists(&self, workspace: &str) -> bool {
        workspace == DEFAULT_WORKSPACE || self.workspace_dir(workspace).is_dir()
    }
}

impl Backend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn workspaces(&self) -> Result<Vec<String>> {
        let root = self.dir.join(WORKSPACES_DIR);
        let mut names = Vec::new();
        match std::fs::read_dir(&root) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|source| StateError::Io { context: format!("list {}", root.display()), source })?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if entry.path().is_dir() && check_workspace_name(&name).is_ok() && name != DEFAULT_WORKSPACE {
                        names.push(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Io { context: format!("list {}", root.display()), source }),
        }
        names.sort();
        names.insert(0, DEFAULT_WORKSPACE.to_owned());
        Ok(names)
    }

    fn open(&self, workspace: &str, access: Access) -> Result<Arc<dyn StateStore>> {
        check_workspace_name(workspace)?;
        // The store creates its directory on the first write.
        let dir = self.workspace_dir(workspace);
        let store = match access {
            Access::ReadWrite => LocalStore::new(&dir),
            Access::ReadMostly => LocalStore::read_mostly(&dir),
            Access::ReadOnly => LocalStore::read_only(&dir),
        };
        Ok(Arc::new(store.with_encryption(self.enc.clone())))
    }

    fn create_workspace(&self, workspace: &str) -> Result<()> {
        check_workspace_name(workspace)?;
        if self.exists(workspace) {
            return Err(StateError::WorkspaceExists(workspace.to_owned()));
        }
        private::create_dir(&self.dir)?;
        private::create_dir(&self.dir.join(WORKSPACES_DIR))?;
        let dir = self.workspace_dir(workspace);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // Created by someone else meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(StateError::WorkspaceExists(workspace.to_owned())),
            Err(source) => return Err(StateError::Io { context: format!("create {}", dir.display()), source }),
        }
        private::create_dir(&dir)
    }

    fn delete_workspace(&self, workspace: &str) -> Result<()> {
        check_workspace_name(workspace)?;
        if workspace == DEFAULT_WORKSPACE {
            return Err(StateError::DefaultWorkspace);
        }
        if !self.exists(workspace) {
            return Err(StateError::NoSuchWorkspace(workspace.to_owned()));
        }
        let dir = self.workspace_dir(workspace);
        std::fs::remove_dir_all(&dir).map_err(|source| StateError::Io { context: format!("delete {}", dir.display()), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn workspaces_are_separate_states_and_default_stays_in_place() {
        let root = temp();
        let state_dir = root.path().join(".strata");
        let backend = LocalBackend::new(&state_dir);
        assert_eq!(backend.workspaces().unwrap(), ["default"]);
        backend.create_workspace("prod").unwrap();
        backend.create_workspace("dev").unwrap();
        assert_eq!(backend.workspaces().unwrap(), ["default", "dev", "prod"]);
        assert!(matches!(backend.create_workspace("dev"), Err(StateError::WorkspaceExists(_))));

        let default = backend.open(DEFAULT_WORKSPACE, Access::ReadWrite).unwrap();
        let dev = backend.open("dev", Access::ReadWrite).unwrap();
        assert_ne!(default.snapshot().unwrap().meta.lineage, dev.snapshot().unwrap().meta.lineage);
        assert!(state_dir.join("state.redb").exists(), "default keeps its place");
        assert!(state_dir.join("workspaces/dev/state.redb").exists());
        drop(dev);

        backend.delete_workspace("dev").unwrap();
        assert_eq!(backend.workspaces().unwrap(), ["default", "prod"]);
        let gone = backend.open("dev", Access::ReadOnly).unwrap();
        assert_eq!(gone.snapshot().unwrap().instances.len(), 0, "a missing workspace reads as empty");
        assert!(!state_dir.join("workspaces/dev").exists(), "reading creates nothing");
        backend.open("stage", Access::ReadWrite).unwrap().snapshot().unwrap();
        assert_eq!(backend.workspaces().unwrap(), ["default", "prod", "stage"], "the first write creates it");
        assert!(matches!(backend.delete_workspace("dev"), Err(StateError::NoSuchWorkspace(_))));
        assert!(matches!(backend.delete_workspace("default"), Err(StateError::DefaultWorkspace)));
    }

    #[test]
    fn names_that_are_not_url_path_safe_are_refused() {
        for bad in ["", ".", "..", "a/b", "a b", "ü", "../x"] {
            assert!(matches!(check_workspace_name(bad), Err(StateError::InvalidWorkspaceName(_))), "{bad:?}");
        }
        for good in ["default", "prod-eu_1", "v1.2", "a~b"] {
            check_workspace_name(good).unwrap();
        }
    }
}
