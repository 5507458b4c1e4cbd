//! The lock record and the lock file that the local store uses.
//!
//! The lock file is written whole to a private temp file and linked into
//! place, so it is never seen half-written; a temp file left by a `kill -9`
//! names its dead creator and is removed by the next locker.

use crate::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
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
    /// The CI run that holds the lock, when there is one (see [`ci_run`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
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
            run: ci_run(),
        }
    }

    /// True when the holder is a process on this host that no longer runs.
    pub fn holder_is_dead(&self) -> bool {
        self.host == hostname() && !process_is_alive(self.pid)
    }

    /// True when the holder is a process on this host that still runs.
    pub fn holder_is_running_here(&self) -> bool {
        self.host == hostname() && process_is_alive(self.pid)
    }
}

/// What `force-unlock` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenLock {
    Held(LockInfo),
    /// The lock file did not hold a lock record; it says what it held.
    Corrupt(String),
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(self.since))
            .unwrap_or(0);
        let run = self.run.as_deref().map(|r| format!(", {r}")).unwrap_or_default();
        write!(
            f,
            "{}@{} (pid {}, running `{}`{run}, for {age}s; lock ID {})",
            self.user, self.host, self.pid, self.operation, self.id
        )
    }
}

/// Names the CI job this process runs in, from the variables the common CI
/// systems set, so a lock held by a pipeline says which run holds it.
pub fn ci_run() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(id) = var("GITHUB_RUN_ID") {
        let repo = var("GITHUB_REPOSITORY").map(|r| format!(" of {r}")).unwrap_or_default();
        return Some(format!("GitHub Actions run {id}{repo}"));
    }
    if let Some(id) = var("CI_JOB_ID") {
        let project = var("CI_PROJECT_PATH").map(|p| format!(" of {p}")).unwrap_or_default();
        return Some(format!("GitLab CI job {id}{project}"));
    }
    if let Some(url) = var("BUILD_URL") {
        return Some(format!("Jenkins build {url}"));
    }
    if let Some(id) = var("BUILDKITE_BUILD_ID") {
        return Some(format!("Buildkite build {id}"));
    }
    var("STRATA_RUN_ID").map(|id| format!("run {id}"))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The processes holding a POSIX or flock lock on `path` (Linux: `/proc/locks`).
/// Names the process that has the state database open even when its lock
/// file was removed.
pub fn pids_locking(path: &Path) -> Vec<u32> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let dev = meta.dev();
    // The kernel prints devices as major:minor in hex (glibc's encoding).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = locks
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // "1: POSIX ADVISORY WRITE 4242 08:01:1234 0 EOF"; blocked waiters have "->" after the id.
            let at = fields.iter().position(|f| f.matches(':').count() == 2)?;
            (fields[at] == wanted).then(|| fields.get(at.checked_sub(1)?)?.parse().ok())?
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
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
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::files::remove_dead_temps(dir);
        let tmp = crate::files::temp_path(dir, "lock.json");
        {
            let mut file = crate::files::create_private(&tmp).map_err(|e| self.io("write", e))?;
            let body = serde_json::to_vec_pretty(info).expect("lock info serializes");
            // Not synced: a lock protects against live processes, whose view
            // of the file is the page cache. A crash of the machine ends the
            // holder, and what it may leave (no lock, an empty one, or the
            // whole record of a dead holder) is each handled below.
            file.write_all(&body).map_err(|e| self.io("write", e))?;
        }
        let result = self.link_in(&tmp, &mut broken);
        let _ = std::fs::remove_file(&tmp);
        result.map(|()| broken)
    }

    fn link_in(&self, tmp: &Path, broken: &mut Option<LockInfo>) -> Result<()> {
        for _ in 0..3 {
            match std::fs::hard_link(tmp, &self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let Some(holder) = self.holder()? else {
                        // Gone since, or left empty (or zeroed) by a writer
                        // killed mid-write or by a machine crash.
                        if std::fs::read(&self.path).is_ok_and(|b| b.iter().all(|&b| b == 0)) {
                            let _ = std::fs::remove_file(&self.path);
                        }
                        continue;
                    };
                    if !holder.holder_is_dead() {
                        return Err(StateError::Locked(Box::new(holder)));
                    }
                    // Rename first so that two processes breaking the same
                    // stale lock cannot both succeed.
                    let tomb = crate::files::temp_path(dir_of(&self.path), "lock.json.stale");
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
            // Empty, or zeros: what a machine crash can leave of a record
            // written without fsync (see `acquire`).
            Ok(bytes) if bytes.iter().all(|&b| b == 0) => Ok(None),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StateError::LockCorrupt { path: self.path.clone(), detail: e.to_string() }),
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

    /// Removes the lock if `lock_id` names it, or whatever the lock file
    /// holds if it is not a lock record (no ID can be matched then).
    pub(crate) fn force_release(&self, lock_id: &str) -> Result<BrokenLock> {
        match self.holder() {
            Ok(Some(holder)) if holder.id == lock_id => {
                std::fs::remove_file(&self.path).map_err(|e| self.io("remove", e))?;
                Ok(BrokenLock::Held(holder))
            }
            Ok(_) => Err(StateError::NoSuchLock(lock_id.to_owned())),
            Err(StateError::LockCorrupt { detail, .. }) => {
                std::fs::remove_file(&self.path).map_err(|e| self.io("remove", e))?;
                Ok(BrokenLock::Corrupt(detail))
            }
            Err(e) => Err(e),
        }
    }

    fn io(&self, what: &str, source: std::io::Error) -> StateError {
        StateError::Io { context: format!("{what} lock file {}", self.path.display()), source }
    }
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}
