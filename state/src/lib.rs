//! Strata's state: what the engine knows it manages.
//!
//! The crate holds the state model ([`InstanceRecord`], [`Snapshot`]), the
//! apply journal ([`Intent`]), lock records ([`LockInfo`]) and the
//! [`StateStore`] trait through which the engine reads and writes one
//! workspace's state, and the [`Backend`] trait above it that lists, opens,
//! creates and deletes workspaces. The embedded default, [`LocalBackend`],
//! keeps each workspace's state in a redb database ([`LocalStore`]) under
//! `.strata/` and locks it with a lock file beside it.
//!
//! Two properties the engine builds on:
//! - **Per-operation writes.** A [`Write`] batch touches only the records it
//!   names, in one durable transaction; the state is never rewritten whole
//!   while an apply runs.
//! - **Intent before action.** The engine records an [`Intent`] durably
//!   before each provider call and resolves it in the same transaction that
//!   records the call's effect on the state, so after a `kill -9` the pending
//!   intents name exactly the calls whose outcome is unknown.
//! - **An apply is a transaction.** While an apply runs, the store keeps its
//!   [`ApplyRecord`] (which phase it is in) and one [`UndoStep`] per
//!   completed main-phase operation, written in the same transaction as the
//!   operation's outcome. Rollback, and recovery after a crash, work from
//!   this log, so a crash even during rollback ends in the pre-apply state.
//! - **Damage is refused, never papered over.** A damaged, truncated or lost
//!   database is an error naming the way back (the backup written before
//!   each change), never a fresh state or a panic.
//! - **A full disk still rolls back.** [`StateStore::begin_version`] sets
//!   space aside before an operation starts; a state write that finds the
//!   disk full spends it and succeeds, and from then on the store refuses
//!   intents for new work ([`StateError::NoSpace`]) while accepting those
//!   that finish or undo work, so the engine's normal failure path rolls
//!   back. The engine needs no call of its own for this.

mod backend;
mod encryption;
mod files;
mod guard;
mod local;
mod lock;
mod private;
mod record;
mod shared_json;
mod tables;

pub use backend::{check_workspace_name, Access, Backend, LocalBackend, DEFAULT_WORKSPACE};
pub use encryption::{is_encrypted, Encryption, EncryptionError, Method, Opened as Decrypted, Pbkdf2Key, DEFAULT_ITERATIONS, MIN_ITERATIONS};
pub use local::LocalStore;
pub use lock::{ci_run, hostname, pids_locking, process_is_alive, BrokenLock, LockInfo};
pub use record::{decode_payload, encode_payload, open_record, open_record_json, open_record_with, reseal_json, seal_record, seal_record_with};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_provider::{UndoRecord, Value};
use uuid::Uuid;

/// One managed resource instance as recorded in state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The instance address, e.g. `strata_data.web["a"]`.
    pub address: String,
    /// The identity the engine gave the instance before creating it.
    pub id: Uuid,
    pub type_name: String,
    /// Provider configuration address: `strata` or `strata.alias`.
    pub provider: String,
    /// The full state returned by the provider, with sensitive marks.
    pub attributes: Value,
    /// Addresses of the instances this one depended on when last applied, so
    /// that an instance removed from configuration is still destroyed in the
    /// right order.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub create_before_destroy: bool,
}

/// State version bookkeeping, as in Terraform: `lineage` names the state's
/// history, `serial` counts its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub lineage: Uuid,
    pub serial: u64,
}

/// The whole state at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: Meta,
    pub instances: BTreeMap<String, InstanceRecord>,
    pub outputs: BTreeMap<String, Value>,
}

/// The provider call an intent announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    Delete,
    /// Adopting an existing object (`import` blocks, `strata import`); the
    /// provider may re-tag it with the intent's identity.
    Import,
    /// Restoring an object from an undo record (rollback).
    Undo,
    /// Removing an undo point once the apply no longer needs it.
    DiscardUndo,
}

/// A durable record, written before a provider call, of what the engine is
/// about to do. Resolved by the write that records the call's effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub apply_id: Uuid,
    pub operation: Operation,
    pub address: String,
    pub id: Uuid,
    pub type_name: String,
    pub provider: String,
    /// For create and update: the planned values.
    pub planned: Option<Value>,
    /// For update and delete: the record before the call.
    pub prior: Option<InstanceRecord>,
    /// True when the call undoes an earlier one (rollback).
    pub rollback: bool,
    pub dependencies: Vec<String>,
    pub create_before_destroy: bool,
    /// The provider's undo record for this call (see
    /// `strata_provider::UndoRecord`), journaled before the call is made.
    #[serde(default)]
    pub undo: Option<UndoRecord>,
}

/// Where an apply is: what recovery must do if it finds the apply still
/// recorded after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyPhase {
    /// Creating and changing: everything done so far can still be undone.
    /// Recovery rolls it back (unless the apply ran with `--no-rollback`).
    Main,
    /// The main phase succeeded and destroys run: the changes stand; recovery
    /// discards the undo points.
    Cleanup,
    /// Undoing the main phase: recovery finishes the rollback.
    RollingBack,
}

/// The apply in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyRecord {
    pub apply_id: Uuid,
    pub phase: ApplyPhase,
    /// False for `--no-rollback`: a crash keeps what was done.
    pub rollback: bool,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub pid: u32,
}

/// One completed main-phase operation of the apply in progress, as rollback
/// needs it to undo the operation. Written with the operation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoStep {
    /// Undo: delete the object.
    Created { record: InstanceRecord },
    /// Undo: the provider's record, or else re-apply `prior`'s values.
    Updated { prior: InstanceRecord, current: InstanceRecord, undo: Option<UndoRecord> },
    /// A `create_before_destroy` replacement: `new` is at the address, `old`
    /// deposed. Undo: delete `new`, put `old` back.
    Replaced { old: InstanceRecord, new: InstanceRecord },
    /// The first half of a replacement without `create_before_destroy`: the
    /// old object was retired (kept aside, with `undo`) or, without a record,
    /// destroyed. Undo: bring it back from the record; impossible without.
    Retired { prior: InstanceRecord, undo: Option<UndoRecord> },
    /// An object adopted by an `import` block. Undo: the provider's record
    /// (a re-tag taken back), then forget it again.
    Imported {
        record: InstanceRecord,
        #[serde(default)]
        undo: Option<UndoRecord>,
    },
}

impl UndoStep {
    /// The provider's undo record the step keeps (a snapshot, an object kept
    /// aside...) with the record it belongs to: the undo point that keeping
    /// the apply discards. Creates and replacements keep none.
    pub fn undo_point(&self) -> Option<(&InstanceRecord, &UndoRecord)> {
        match self {
            UndoStep::Updated { current, undo: Some(undo), .. } => Some((current, undo)),
            UndoStep::Retired { prior, undo: Some(undo) } => Some((prior, undo)),
            UndoStep::Imported { record, undo: Some(undo) } => Some((record, undo)),
            _ => None,
        }
    }
}

/// The journaled apply in progress: its record and its completed steps in
/// the order they completed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyLog {
    pub record: ApplyRecord,
    pub steps: Vec<(u64, UndoStep)>,
}

/// One change to the store. A batch of writes is one durable transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// Record an intent under a sequence number from [`StateStore::next_seq`].
    Intent { seq: u64, intent: Intent },
    /// The intent's call finished (either way); forget it.
    Resolve { seq: u64 },
    PutInstance(InstanceRecord),
    RemoveInstance { address: String },
    /// Replace all outputs.
    SetOutputs(BTreeMap<String, Value>),
    /// Start journaling an apply (there is at most one).
    BeginApply(ApplyRecord),
    /// Move the apply in progress to another phase.
    SetApplyPhase(ApplyPhase),
    /// The apply is over: forget its record and any steps left.
    EndApply,
    /// Record a completed main-phase operation, under the sequence number of
    /// its intent (steps are undone in reverse order of these numbers).
    PutStep { seq: u64, step: UndoStep },
    /// The step was undone (or its undo point discarded).
    RemoveStep { seq: u64 },
}

/// One entry of `strata state history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub serial: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// What produced the version: `apply`, `destroy`, `state rm`...
    pub operation: String,
    pub user: String,
    pub instances: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state is locked by {0}\nIf you are sure that process no longer uses the state, break the lock with: strata force-unlock {id}",
        id = .0.id
    )]
    Locked(Box<LockInfo>),
    #[error("no lock with ID {0} is held")]
    NoSuchLock(String),
    #[error(
        "the lock file {} is corrupt ({detail})\nIf no Strata process is using this state, clear it with: strata force-unlock corrupt",
        path.display()
    )]
    LockCorrupt { path: std::path::PathBuf, detail: String },
    #[error("the state's lineage {found} does not match the expected {expected}")]
    Lineage { expected: Uuid, found: Uuid },
    #[error("state version {0} is not kept")]
    NoSuchVersion(u64),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("state database: {0}")]
    Database(String),
    /// A record failed its check (raised inside the store; what reaches the
    /// caller is [`StateError::Damaged`]).
    #[error("state record is corrupt: {0}")]
    Corrupt(String),
    /// The database is damaged or lost: refused, with the ways back.
    #[error(
        "the state database {} is damaged: {detail}\nStrata will not use it, so that nothing is created twice or forgotten.\n{recovery}",
        path.display()
    )]
    Damaged { path: std::path::PathBuf, detail: String, recovery: String },
    /// The disk is full: the store keeps what rollback needs and refuses new work.
    #[error("{0}")]
    NoSpace(String),
    /// The state cannot be decrypted (wrong or missing key), or is plain
    /// where encryption is required. Nothing was written.
    #[error("{0}")]
    Encryption(String),
    #[error("Workspace {0:?} doesn't exist.")]
    NoSuchWorkspace(String),
    #[error("Workspace {0:?} already exists")]
    WorkspaceExists(String),
    #[error("The workspace name {0:?} is not allowed. The name must contain only URL safe characters, and no path separators.")]
    InvalidWorkspaceName(String),
    #[error("Can't delete default state")]
    DefaultWorkspace,
}

impl StateError {
    /// True for "no space left on device", however it is wrapped.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            StateError::NoSpace(_) => true,
            StateError::Io { source, .. } => files::is_out_of_space(source),
            StateError::Database(m) => m.contains("No space left on device") || m.contains("os error 28"),
            _ => false,
        }
    }
}

pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// One workspace's state, as a [`Backend`] opens it. The embedded
/// [`LocalStore`] is the default; remote backends (PostgreSQL for teams)
/// implement the same trait.
///
/// Locking is separate from opening: [`StateStore::lock`] records who holds
/// the state so a second writer fails at once with a message naming them.
pub trait StateStore: Send + Sync {
    /// Takes the state lock or fails with [`StateError::Locked`].
    /// Returns the holder of a stale lock it broke (a dead process on this
    /// host), so the caller can warn about it.
    fn lock(&self, info: &LockInfo) -> Result<Option<LockInfo>>;
    /// Releases a lock this process holds.
    fn unlock(&self, info: &LockInfo) -> Result<()>;
    /// Breaks a lock by its ID, whoever holds it; a lock file that holds no
    /// lock record is removed whatever the ID.
    fn force_unlock(&self, lock_id: &str) -> Result<BrokenLock>;
    /// The current holder, if any.
    fn lock_holder(&self) -> Result<Option<LockInfo>>;

    /// Loads the current version whole.
    fn snapshot(&self) -> Result<Snapshot>;
    /// Applies a batch of writes in one durable transaction.
    fn commit(&self, writes: Vec<Write>) -> Result<()>;
    /// Applies several requests' writes, in order, in one durable
    /// transaction (a group commit). The default copies them into one
    /// [`StateStore::commit`]; a store that writes from borrowed writes
    /// overrides it and copies nothing.
    fn commit_all(&self, requests: &[&[Write]]) -> Result<()> {
        self.commit(requests.iter().flat_map(|w| w.iter().cloned()).collect())
    }
    /// [`StateStore::commit_all`], handing its result to `durable` as soon
    /// as the writes are durable (or failed), ahead of the store's own work
    /// that nothing waits on (the local store's `state.meta`, which may lag
    /// the database), so that whoever waits on the commit hears first.
    /// Returns how that later work went; the store keeps what failed for
    /// its next commit. The default has no such work.
    fn commit_all_then(&self, requests: &[&[Write]], durable: &mut dyn FnMut(&Result<()>)) -> Result<()> {
        durable(&self.commit_all(requests));
        Ok(())
    }
    /// Reserves `count` consecutive journal sequence numbers.
    fn next_seq(&self, count: u64) -> Result<u64>;
    /// Intents recorded but never resolved: calls interrupted by a crash.
    fn pending_intents(&self) -> Result<Vec<(u64, Intent)>>;
    /// The apply in progress (or interrupted by a crash), if any.
    fn apply_log(&self) -> Result<Option<ApplyLog>>;

    /// Starts a new version: keeps the current one in history and bumps the
    /// serial. Returns the new serial. A store may write the version with
    /// the next commit instead of on its own (the local store does); until
    /// then a crash leaves the version before, with nothing changed since.
    fn begin_version(&self, operation: &str, user: &str) -> Result<u64>;
    fn history(&self) -> Result<Vec<VersionInfo>>;
    /// A version kept in history.
    fn version(&self, serial: u64) -> Result<Snapshot>;

    /// Fills this state, which must be empty (no instance, serial 0), with
    /// another backend's versions, oldest first and the last one current,
    /// keeping their lineage, serials and history (`strata init
    /// -migrate-state`). The caller holds the lock.
    fn import_versions(&self, _versions: &[(VersionInfo, Snapshot)]) -> Result<()> {
        Err(StateError::Database("this state backend cannot take migrated state".into()))
    }

    /// Removes this state once its versions were migrated to another
    /// backend. Returns what became of it, for the user.
    fn retire(&self) -> Result<String> {
        Err(StateError::Database("this state backend cannot hand its state over".into()))
    }

    /// Replaces a damaged state with the backup written before the last
    /// change (the caller holds the lock). Returns the restored version.
    fn restore_backup(&self) -> Result<Meta> {
        Err(StateError::Database("this state backend keeps no backup".into()))
    }
}
