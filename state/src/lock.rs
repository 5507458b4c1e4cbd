//! The lock record and the lock file that the local store uses.

use crate::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Who holds the state lock, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub operation: String,
    /// Seconds since the Unix epoch.
    pub since: u64,
}

impl LockInfo {
    /// A lock record for this process.
    pub fn for_this_process(operation: &str) -> LockInfo {
        LockInfo {
            id: Uuid::new_v4().to_string(),
            user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()),
            host: hostname(),
            pid: std::process::id(),
            operation: operation.to_owned(),
            since: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        }
    }

    /// True when the holder is a process on this host that no longer runs.
    pub fn holder_is_dead(&self) -> bool {
        self.host == hostname() && !process_is_alive(self.pid)
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(self.since))
            .unwrap_or(0);
        write!(
            f,
            "{}@{} (pid {}, running `{}`, for {age}s; lock ID {})",
            self.user, self.host, self.pid, self.operation, self.id
        )
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a process with this PID runs on this host (Linux: `/proc`).
pub fn process_is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its parent has not reaped it yet.
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A lock file created with `O_EXCL`: its existence is the lock.
pub(crate) struct LockFile {
    path: PathBuf,
}

impl LockFile {
    pub(crate) fn new(path: &Path) -> LockFile {
        LockFile { path: path.to_owned() }
    }

    pub(crate) fn acquire(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        let mut broken = None;
        // The record is written to a private file first and then linked into
        // place: `link` fails if the lock exists, and a lock file is never
        // seen half-written, even after a kill -9.
        // The private file is created exclusively (0600, random name): an
        // existing file or symlink is never written through. Dropping it
        // removes its name on every path; the lock keeps the inode.
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("lock.{}.", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| self.io("write", e))?;
        let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
        tmp.write_all(&body).and_then(|_| tmp.as_file().sync_all()).map_err(|e| self.io("write", e))?;
        self.link_in(tmp.path(), &mut broken).map(|()| broken)
    }

    fn link_in(&self, tmp: &Path, broken: &mut Option<LockInfo>) -> Result<()> {
        for _ in 0..3 {
            match std::fs::hard_link(tmp, &self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let Some(holder) = self.holder()? else {
                        // Gone since, or left empty by a writer killed mid-write.
                        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0) {
                            let _ = std::fs::remove_file(&self.path);
                        }
                        continue;
                    };
                    if !holder.holder_is_dead() {
                        return Err(StateError::Locked(Box::new(holder)));
                    }
                    // Rename first so that two processes breaking the same
                    // stale lock cannot both succeed.
                    let tomb = self.path.with_extension(format!("stale.{}", std::process::id()));
                    if std::fs::rename(&self.path, &tomb).is_ok() {
                        let _ = std::fs::remove_file(&tomb);
                        *broken = Some(holder);
                    }
                }
                Err(e) => return Err(self.io("create", e)),
            }
        }
        match self.holder()? {
            Some(holder) => Err(StateError::Locked(Box::new(holder))),
            None => Err(StateError::Database("could not take the state lock".into())),
        }
    }

    pub(crate) fn holder(&self) -> Result<Option<LockInfo>> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.is_empty() => Ok(None),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StateError::Corrupt(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", e)),
        }
    }

    pub(crate) fn release(&self, info: &LockInfo) -> Result<()> {
        match self.holder()? {
            Some(holder) if holder.id == info.id => {
                std::fs::remove_file(&self.path).map_err(|e| self.io("remove", e))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn force_release(&self, lock_id: &str) -> Result<LockInfo> {
        match self.holder()? {
            Some(holder) if holder.id == lock_id => {
                std::fs::remove_file(&self.path).map_err(|e| self.io("remove", e))?;
                Ok(holder)
            }
            _ => Err(StateError::NoSuchLock(lock_id.to_owned())),
        }
    }

    fn io(&self, what: &str, source: std::io::Error) -> StateError {
        StateError::Io { context: format!("{what} lock file {}", self.path.display()), source }
    }
}
