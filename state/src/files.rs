//! The small files beside the state database: `state.meta` (the lineage and
//! version kept outside the database, so that a missing or emptied database
//! is recognised as lost rather than taken for a new state), the backup
//! written before each change, and the space reserve that keeps rollback
//! possible on a full disk.

use crate::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// What `state.meta` records: the state's identity and latest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sidecar {
    pub lineage: Uuid,
    pub serial: u64,
    /// The version `state.redb.backup` holds, if one was written.
    #[serde(default)]
    pub backup_serial: Option<u64>,
}

impl Sidecar {
    pub fn read(path: &Path) -> Result<Option<Sidecar>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StateError::Corrupt(format!(
                    "{} is not a state record ({e}); if state.redb beside it is intact, remove {} and Strata writes it again",
                    path.display(),
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { context: format!("read {}", path.display()), source }),
        }
    }

    pub fn write(&self, path: &Path, rename: Rename) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).expect("state.meta serializes");
        write_atomically(path, &body, rename)
    }
}

/// Whether replacing a file also makes its new name durable (a directory
/// fsync) before returning. Either way the new content is synced before the
/// rename, so after a crash the name holds the old content or the new, whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rename {
    /// Once the call returns, a crash keeps the new content.
    Durable,
    /// A crash may bring the old content back; for callers to whom that is
    /// as good (see `begin_version`). Saves a directory fsync, a few
    /// milliseconds on a disk.
    Deferred,
}

/// A temp file name in `dir` that names its creator, so that one left by a
/// killed process can be recognised and removed ([`remove_dead_temps`]).
pub(crate) fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), Uuid::new_v4().simple()))
}

/// Creates a new private file (0600, failing if the name exists).
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Replaces `path` with `body` so that readers see the old or the new
/// content, never a part, even after a crash.
pub(crate) fn write_atomically(path: &Path, body: &[u8], rename: Rename) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = temp_path(dir, &name);
    let io = |what: &str, source| StateError::Io { context: format!("{what} {}", path.display()), source };
    let result = create_private(&tmp)
        .and_then(|mut file| file.write_all(body).and_then(|()| file.sync_all()))
        .map_err(|e| io("write", e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io("replace", e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if rename == Rename::Durable {
        sync_dir(dir);
    }
    Ok(())
}

/// Copies `from` to `to` atomically (through a private temp file).
pub(crate) fn copy_atomically(from: &Path, to: &Path, rename: Rename) -> Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = temp_path(dir, &name);
    let io = |what: &str, source| StateError::Io { context: format!("{what} {}", to.display()), source };
    let result = (|| {
        let mut source = std::fs::File::open(from)?;
        let mut file = create_private(&tmp)?;
        std::io::copy(&mut source, &mut file)?;
        file.sync_all()
    })()
    .map_err(|e| io("write", e))
    .and_then(|()| std::fs::rename(&tmp, to).map_err(|e| io("replace", e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if rename == Rename::Durable {
        sync_dir(dir);
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable; a failure only weakens that, so it is not an error.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes temp files of [`temp_path`] whose creator no longer runs (left by
/// a `kill -9`).
pub(crate) fn remove_dead_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
            continue;
        };
        // .NAME.PID.RANDOM.tmp
        let mut parts = inner.rsplitn(3, '.');
        let (Some(_random), Some(pid), Some(_name)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !crate::lock::process_is_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// True when the error, or one it wraps, is "no space left on device".
pub(crate) fn is_out_of_space(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::ENOSPC) || io.kind() == std::io::ErrorKind::StorageFull {
                return true;
            }
        }
        current = e.source();
    }
    // redb wraps I/O errors in its own types, not always as a source.
    let text = e.to_string();
    text.contains("No space left on device") || text.contains("os error 28")
}

/// Disk space set aside in `state.reserve`: freed when a state write finds
/// the disk full, so that the writes rollback needs still fit.
pub(crate) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub fn new(path: PathBuf) -> Reserve {
        Reserve { path }
    }

    pub fn held(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Makes sure `bytes` are reserved, with blocks really allocated.
    pub fn ensure(&self, bytes: u64) -> Result<()> {
        if self.held() >= bytes {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = temp_path(dir, "state.reserve");
        let result = (|| {
            let file = create_private(&tmp)?;
            allocate(&file, bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(source) = result {
            let _ = std::fs::remove_file(&tmp);
            if is_out_of_space(&source) {
                return Err(StateError::NoSpace(format!(
                    "{} needs {} KiB of free space set aside so that a failed apply can still be rolled back; free some space and run again",
                    dir.display(),
                    bytes.div_ceil(1024)
                )));
            }
            return Err(StateError::Io { context: format!("reserve space in {}", self.path.display()), source });
        }
        Ok(())
    }

    /// Gives the space back; true if there was any.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }
}

/// Allocates real blocks (a sparse file would reserve nothing).
fn allocate(file: &std::fs::File, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let len = libc::off_t::try_from(bytes).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor is open for writing and owned by `file`.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => {
            // Filesystems without fallocate: write zeros.
            let mut file = file;
            let zeros = vec![0u8; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            Ok(())
        }
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("strata-files-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mine = temp_path(&dir, "lock.json");
        std::fs::write(&mine, b"x").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let theirs = dir.join(format!(".lock.json.{dead}.abc.tmp"));
        std::fs::write(&theirs, b"x").unwrap();
        remove_dead_temps(&dir);
        assert!(mine.exists());
        assert!(!theirs.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_writes_are_private_and_replace() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("strata-files-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.meta");
        write_atomically(&path, b"one", Rename::Durable).unwrap();
        write_atomically(&path, b"two", Rename::Deferred).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
