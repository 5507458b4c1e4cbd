//! The embedded state store: a redb database in `.strata/state.redb`, locked
//! by `.strata/lock.json`.
//!
//! What keeps it honest when the file is damaged, lost or the disk is full:
//! - every record is checksummed and every table digested ([`crate::tables`]);
//!   a writable open also runs redb's own page check;
//! - `state.meta` keeps the lineage and version outside the database, so a
//!   missing or emptied database is refused, never taken for a new state;
//! - `state.redb.backup` is written before each change ([`StateStore::begin_version`]);
//! - a panic inside redb becomes an error ([`crate::guard`]);
//! - `state.reserve` holds disk space that a write finding the disk full
//!   frees, so rollback's writes still fit; after that the store refuses to
//!   start new work.
//!
//! Read-only commands open it with [`LocalStore::read_only`]: nothing is
//! written, a read-only directory works, and so does reading while another
//! process applies (redb's single-writer mode lets readers follow its commits).

use crate::files::{self, Rename, Reserve, Sidecar};
use crate::shared_json::RecordJson;
use crate::lock::LockFile;
use crate::tables::{self, db_err, decode, Format, Writer};
use crate::tables::{APPLY, APPLY_KEY, CURRENT_VERSION_KEY, DIGESTS, HISTORY, INSTANCES, JOURNAL, META, META_KEY, OUTPUTS, STEPS};
use crate::{
    guard, ApplyLog, Encryption, ApplyRecord, BrokenLock, InstanceRecord, Intent, LockInfo, Meta, Operation, Result, Snapshot, StateError, StateStore,
    UndoStep, VersionInfo, Write,
};
use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

mod open;
use open::{CACHE_BYTES, READ_CACHE_BYTES};

const DB_FILE: &str = "state.redb";
const META_FILE: &str = "state.meta";
const BACKUP_FILE: &str = "state.redb.backup";
const RESERVE_FILE: &str = "state.reserve";
/// The least space kept for rollback; more for a large state (see `reserve_size`).
const MIN_RESERVE: u64 = 512 * 1024;

/// A kept version: what it was and the state as it was.
#[derive(Serialize, Deserialize)]
struct KeptVersion {
    info: VersionInfo,
    snapshot: Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    /// Writable, with a page cache sized for reading (see `open.rs`).
    ReadMostly,
    ReadOnly,
}

/// The open database.
enum Handle {
    Write(Database),
    Read(ReadOnlyDatabase),
    /// Read-only, and no state was ever written here.
    Absent,
}

struct Open {
    handle: Handle,
    format: Format,
}

impl Open {
    fn begin_read(&self) -> Result<Option<ReadTransaction>> {
        match &self.handle {
            Handle::Write(db) => db.begin_read().map(Some).map_err(db_err),
            Handle::Read(db) => db.begin_read().map(Some).map_err(db_err),
            Handle::Absent => Ok(None),
        }
    }
}

pub struct LocalStore {
    dir: PathBuf,
    access: Access,
    lock: LockFile,
    db: Mutex<Option<Arc<Open>>>,
    /// Set when redb panicked: the handle is not used again.
    poisoned: Mutex<Option<String>>,
    seq: AtomicU64,
    reserve: Reserve,
    /// The reserve was spent on a full disk: only finishing and undoing
    /// work is accepted from now on.
    out_of_space: AtomicBool,
    /// How records are encrypted at rest (by default: not).
    enc: Arc<Encryption>,
    /// The version [`StateStore::begin_version`] began, written by the next
    /// commit.
    pending_version: Mutex<Option<PendingVersion>>,
    /// The `state.meta` of a version whose first commit is durable, not
    /// written yet ([`StateStore::commit_all_then`] writes it once the
    /// commit is answered; every other commit before it returns).
    sidecar_due: Mutex<Option<Sidecar>>,
}

impl Drop for LocalStore {
    /// A `state.meta` still due (its write after the commit failed) gets a
    /// last try; if that fails too, the next open rewrites it.
    fn drop(&mut self) {
        let _ = self.write_due_sidecar();
    }
}

/// A version begun and not written yet. Its records go into the transaction
/// of the next commit (an apply's first intents), so that beginning a
/// version costs no commit of its own; `state.meta` is written once that
/// commit is durable, never ahead of the database. A crash before it leaves
/// the state at the version before, with nothing done since. A version that
/// no commit follows (a command that changed nothing) is not kept.
struct PendingVersion {
    /// The state as the version began, kept in the history.
    current: Snapshot,
    serial: u64,
    operation: String,
    user: String,
    sidecar: Sidecar,
}

impl LocalStore {
    /// A store in `dir` (usually `.strata/`) for commands that change state.
    /// Nothing is opened until used.
    pub fn new(dir: &Path) -> LocalStore {
        Self::with_access(dir, Access::ReadWrite)
    }

    /// A store for commands that take the lock and may write but mostly
    /// read (a plan): as [`LocalStore::new`], with the smaller page cache
    /// of a read-only open.
    pub fn read_mostly(dir: &Path) -> LocalStore {
        Self::with_access(dir, Access::ReadMostly)
    }

    /// A store that only reads: it never writes a byte, works on a
    /// read-only directory and while another process applies.
    pub fn read_only(dir: &Path) -> LocalStore {
        Self::with_access(dir, Access::ReadOnly)
    }

    fn with_access(dir: &Path, access: Access) -> LocalStore {
        LocalStore {
            dir: dir.to_owned(),
            access,
            lock: LockFile::new(&dir.join("lock.json")),
            db: Mutex::new(None),
            poisoned: Mutex::new(None),
            seq: AtomicU64::new(0),
            reserve: Reserve::new(dir.join(RESERVE_FILE)),
            out_of_space: AtomicBool::new(false),
            enc: Encryption::none(),
            pending_version: Mutex::new(None),
            sidecar_due: Mutex::new(None),
        }
    }

    /// The same store, with its records encrypted (and decrypted) by `enc`.
    pub fn with_encryption(mut self, enc: Arc<Encryption>) -> LocalStore {
        self.enc = enc;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    fn sidecar_path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// Runs `f` against the open database, turning a panic inside redb into
    /// an error and any sign of damage into [`StateError::Damaged`].
    fn with_db<T>(&self, f: impl FnOnce(&Open) -> Result<T>) -> Result<T> {
        if let Some(why) = self.poisoned.lock().expect("poison flag").clone() {
            return Err(self.damaged(why));
        }
        let result = guard::catch(|| {
            let open = self.open()?;
            f(&open)
        });
        match result {
            Ok(Err(StateError::Corrupt(detail))) => Err(self.damaged(detail)),
            Ok(r) => r,
            Err(panic) => {
                let why = format!("reading it failed inside the database library ({panic})");
                *self.poisoned.lock().expect("poison flag") = Some(why.clone());
                *self.db.lock().expect("db handle") = None;
                Err(self.damaged(why))
            }
        }
    }

    fn open(&self) -> Result<Arc<Open>> {
        let mut slot = self.db.lock().expect("db handle");
        if let Some(open) = &*slot {
            return Ok(open.clone());
        }
        let open = Arc::new(match self.access {
            Access::ReadWrite => self.open_writable(CACHE_BYTES)?,
            Access::ReadMostly => self.open_writable(READ_CACHE_BYTES)?,
            Access::ReadOnly => self.open_readable()?,
        });
        *slot = Some(open.clone());
        Ok(open)
    }

    fn writable(&self) -> Result<()> {
        match self.access {
            Access::ReadWrite | Access::ReadMostly => Ok(()),
            Access::ReadOnly => Err(StateError::Database("the state was opened read-only".into())),
        }
    }

    /// Compacts the database file (giving its free pages back to the
    /// disk); true if the file shrank. Only when no transaction is open.
    fn compact(&self) -> bool {
        let before = self.db_len().ok().flatten().unwrap_or(0);
        let mut slot = self.db.lock().expect("db handle");
        let Some(open) = slot.as_mut().and_then(Arc::get_mut) else {
            return false;
        };
        let Handle::Write(db) = &mut open.handle else {
            return false;
        };
        let compacted = guard::catch(|| while let Ok(true) = db.compact() {});
        drop(slot);
        compacted.is_ok() && self.db_len().ok().flatten().unwrap_or(0) < before
    }

    /// The space to keep for rollback. Rollback writes about as much as the
    /// apply did, mostly into pages the database file already has free; the
    /// reserve covers its growth, which redb does in steps of a fraction of
    /// the file's size.
    fn reserve_size(&self) -> u64 {
        let len = self.db_len().ok().flatten().unwrap_or(0);
        MIN_RESERVE.max(len / 2)
    }

    /// Commits `writes` in one transaction, after the records of a version
    /// begun and not written yet.
    fn write_batch<'w>(&self, writes: impl Iterator<Item = &'w Write>) -> Result<()> {
        let pending = self.pending_version.lock().expect("pending version").take();
        let committed = self.with_db(|open| {
            let Handle::Write(db) = &open.handle else {
                return Err(StateError::Database("the state was opened read-only".into()));
            };
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut w = Writer::new(&tx, &self.enc);
                if let Some(version) = &pending {
                    write_version(&mut w, version)?;
                }
                let mut records = RecordJson::default();
                for write in writes {
                    apply_write(&mut w, &mut records, write)?;
                }
                w.finish()?;
            }
            tx.commit().map_err(db_err)
        });
        match (committed, pending) {
            (Ok(()), Some(version)) => {
                *self.sidecar_due.lock().expect("due sidecar") = Some(version.sidecar);
                Ok(())
            }
            // Not written: the next commit tries again.
            (Err(e), Some(version)) => {
                *self.pending_version.lock().expect("pending version") = Some(version);
                Err(e)
            }
            (committed, None) => committed,
        }
    }

    /// Writes the `state.meta` a durable commit left due. Until it is
    /// written, state.meta is one version behind the database, which is
    /// what a crash just after the commit leaves and the next open accepts
    /// (and rewrites). Kept due if it fails.
    fn write_due_sidecar(&self) -> Result<()> {
        let mut due = self.sidecar_due.lock().expect("due sidecar");
        let Some(sidecar) = due.as_ref() else { return Ok(()) };
        let written = match sidecar.write(&self.sidecar_path(), Rename::Deferred) {
            // As a commit that hit a full disk: in the space the reserve gives back.
            Err(e) if e.is_out_of_space() && self.reserve.release() => {
                self.out_of_space.store(true, Ordering::SeqCst);
                sidecar.write(&self.sidecar_path(), Rename::Deferred)
            }
            r => r,
        };
        if written.is_ok() {
            *due = None;
        }
        written
    }

    /// A commit as [`StateStore::commit_all`] makes it, without writing the
    /// `state.meta` it may leave due.
    fn commit_writes(&self, requests: &[&[Write]]) -> Result<()> {
        let writes = || requests.iter().flat_map(|w| w.iter());
        if writes().next().is_none() && self.pending_version.lock().expect("pending version").is_none() {
            return Ok(());
        }
        self.writable()?;
        if let Some(what) = self.refuses_new_work(writes()) {
            return Err(StateError::NoSpace(format!(
                "the disk holding {} is full: {what} is not started, so that what was done can be rolled back",
                self.dir.display()
            )));
        }
        match self.write_batch(writes()) {
            Err(e) if e.is_out_of_space() && self.reserve.release() => {
                // The handle is unusable after an I/O error: open again, in
                // the space the reserve gave back, and write once more.
                self.out_of_space.store(true, Ordering::SeqCst);
                *self.db.lock().expect("db handle") = None;
                self.write_batch(writes())
            }
            r => r,
        }
    }

    /// New work (not undoing or finishing what was done) after the disk
    /// filled up: refused, so that the apply fails and rolls back.
    fn refuses_new_work<'w>(&self, mut writes: impl Iterator<Item = &'w Write>) -> Option<String> {
        if !self.out_of_space.load(Ordering::SeqCst) {
            return None;
        }
        writes.find_map(|w| match w {
            Write::Intent { intent, .. }
                if !intent.rollback && matches!(intent.operation, Operation::Create | Operation::Update | Operation::Import) =>
            {
                Some(intent.address.clone())
            }
            Write::BeginApply(_) => Some("a new apply".into()),
            _ => None,
        })
    }
}

fn read_meta(tx: &ReadTransaction, format: Format, enc: &Encryption) -> Result<Meta> {
    let bytes = tables::read_one(tx, META, META_KEY, format, enc)?.ok_or_else(|| StateError::Corrupt("it has no state record".into()))?;
    decode("state record", &bytes)
}

/// Writes the records of a version begun by `begin_version`: the state as
/// it began kept in the history, the new version number and its record.
fn write_version(w: &mut Writer<'_>, version: &PendingVersion) -> Result<()> {
    let PendingVersion { current, serial, operation, user, .. } = version;
    // Key rotation: what the fallback key (or no key) wrote is written again
    // under the primary one, history and journal too.
    w.reencrypt_stale()?;
    let current_info = match w.get(META, CURRENT_VERSION_KEY)? {
        Some(bytes) => decode::<VersionInfo>("version record", &bytes)?,
        None => VersionInfo { serial: current.meta.serial, created_at: now(), operation: "init".into(), user: user.clone(), instances: 0 },
    };
    let kept = KeptVersion { info: VersionInfo { instances: current.instances.len(), ..current_info }, snapshot: current.clone() };
    w.put(HISTORY, current.meta.serial, &kept)?;
    w.put(META, META_KEY, &Meta { lineage: current.meta.lineage, serial: *serial })?;
    let info = VersionInfo { serial: *serial, created_at: now(), operation: operation.clone(), user: user.clone(), instances: current.instances.len() };
    w.put(META, CURRENT_VERSION_KEY, &info)
}

/// Applies one write of a batch; `records` keeps the JSON of the instance
/// records written so far, which the undo steps after them reuse.
fn apply_write<'w>(w: &mut Writer<'_>, records: &mut RecordJson<'w>, write: &'w Write) -> Result<()> {
    match write {
        Write::Intent { seq, intent } => w.put(JOURNAL, *seq, intent),
        Write::Resolve { seq } => w.remove(JOURNAL, *seq),
        Write::PutInstance(record) => w.put_json(INSTANCES, record.address.as_str(), records.encode(record)),
        Write::RemoveInstance { address } => w.remove(INSTANCES, address.as_str()),
        Write::SetOutputs(outputs) => {
            w.clear(OUTPUTS)?;
            for (name, value) in outputs {
                w.put(OUTPUTS, name.as_str(), value)?;
            }
            Ok(())
        }
        Write::BeginApply(record) => {
            w.put(APPLY, APPLY_KEY, record)?;
            w.clear(STEPS)
        }
        Write::SetApplyPhase(phase) => match w.get(APPLY, APPLY_KEY)? {
            Some(bytes) => {
                let record: ApplyRecord = decode("apply record", &bytes)?;
                w.put(APPLY, APPLY_KEY, &ApplyRecord { phase: *phase, ..record })
            }
            None => Ok(()),
        },
        Write::EndApply => {
            w.remove(APPLY, APPLY_KEY)?;
            w.clear(STEPS)
        }
        Write::PutStep { seq, step } => w.put_json(STEPS, *seq, &records.step(step)),
        Write::RemoveStep { seq } => w.remove(STEPS, *seq),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn empty_snapshot() -> Snapshot {
    Snapshot { meta: Meta { lineage: Uuid::nil(), serial: 0 }, instances: BTreeMap::new(), outputs: BTreeMap::new() }
}

fn read_snapshot(tx: &ReadTransaction, format: Format, enc: &Encryption) -> Result<Snapshot> {
    let meta = read_meta(tx, format, enc)?;
    let instances: BTreeMap<String, InstanceRecord> = tables::read_decoded(tx, INSTANCES, format, enc, |key, payload| {
        let address = tables::str_key_ref(key)?;
        let record: InstanceRecord = decode("instance record", payload)?;
        if record.address != address {
            return Err(StateError::Corrupt(format!("the record under {address:?} is for {:?}", record.address)));
        }
        Ok((record.address.clone(), record))
    })?;
    let outputs: BTreeMap<String, _> =
        tables::read_decoded(tx, OUTPUTS, format, enc, |key, payload| Ok((tables::str_key(key)?, decode("output", payload)?)))?;
    // The meta table's digest covers the version records beside `meta`.
    tables::read_all(tx, META, format, enc)?;
    Ok(Snapshot { meta, instances, outputs })
}

impl StateStore for LocalStore {
    fn lock(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        self.writable()?;
        crate::private::create_dir(&self.dir)?;
        self.lock.acquire(info)
    }

    fn unlock(&self, info: &LockInfo) -> Result<()> {
        self.lock.release(info)
    }

    fn force_unlock(&self, lock_id: &str) -> Result<BrokenLock> {
        self.lock.force_release(lock_id)
    }

    fn lock_holder(&self) -> Result<Option<LockInfo>> {
        self.lock.holder()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.with_db(|open| match open.begin_read()? {
            Some(tx) => read_snapshot(&tx, open.format, &self.enc),
            None => Ok(empty_snapshot()),
        })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<()> {
        self.commit_all(&[&writes])
    }

    fn commit_all(&self, requests: &[&[Write]]) -> Result<()> {
        self.commit_writes(requests)?;
        self.write_due_sidecar()
    }

    fn commit_all_then(&self, requests: &[&[Write]], durable: &mut dyn FnMut(&Result<()>)) -> Result<()> {
        durable(&self.commit_writes(requests));
        self.write_due_sidecar()
    }

    fn next_seq(&self, count: u64) -> Result<u64> {
        self.with_db(|_| Ok(()))?;
        Ok(self.seq.fetch_add(count, Ordering::SeqCst))
    }

    fn pending_intents(&self) -> Result<Vec<(u64, Intent)>> {
        self.with_db(|open| {
            let Some(tx) = open.begin_read()? else {
                return Ok(Vec::new());
            };
            tables::read_all(&tx, JOURNAL, open.format, &self.enc)?
                .into_iter()
                .map(|(key, payload)| Ok((tables::seq_key(&key)?, decode("intent", &payload)?)))
                .collect()
        })
    }

    fn apply_log(&self) -> Result<Option<ApplyLog>> {
        self.with_db(|open| {
            let Some(tx) = open.begin_read()? else {
                return Ok(None);
            };
            let mut apply = tables::read_all(&tx, APPLY, open.format, &self.enc)?;
            let Some((_, bytes)) = apply.pop() else {
                return Ok(None);
            };
            let record: ApplyRecord = decode("apply record", &bytes)?;
            let steps = tables::read_all(&tx, STEPS, open.format, &self.enc)?
                .into_iter()
                .map(|(key, payload)| Ok((tables::seq_key(&key)?, decode::<UndoStep>("undo step", &payload)?)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(ApplyLog { record, steps }))
        })
    }

    fn begin_version(&self, operation: &str, user: &str) -> Result<u64> {
        self.writable()?;
        let current = self.snapshot()?;
        // Before anything changes: space for rollback, and a copy to go back to.
        let mut reserved = self.reserve.ensure(self.reserve_size());
        if matches!(reserved, Err(StateError::NoSpace(_))) && self.compact() {
            // A failed, rolled-back apply leaves the file grown with free
            // pages, and the reserve is sized from the file.
            reserved = self.reserve.ensure(self.reserve_size());
        }
        match reserved {
            // A destroy frees space and its deletes are not rolled back:
            // it must stay possible on a full disk.
            Err(StateError::NoSpace(_)) if operation == "destroy" => {}
            r => r?,
        }
        // The backup's and state.meta's renames below are not made durable
        // (no directory fsync): a crash that undoes them leaves the previous
        // backup, whole and checked again by `restore-backup`, and a
        // state.meta one version behind the database, which the next open
        // accepts and rewrites; what must survive a crash from here on is in
        // state.redb, whose commits are durable.
        let backup_path = self.dir.join(BACKUP_FILE);
        let copy = || files::copy_atomically(&self.db_path(), &backup_path, Rename::Deferred);
        let mut copied = copy();
        if matches!(&copied, Err(e) if e.is_out_of_space()) && operation != "destroy" {
            // The new backup is written beside the old one before it
            // replaces it, so it needs the room of two. A rolled-back apply
            // that filled the disk leaves the file grown with free pages:
            // give them back first; then give up the older backup, which
            // goes back one version further than the one being written.
            if self.compact() {
                copied = copy();
            }
            if matches!(&copied, Err(e) if e.is_out_of_space()) && std::fs::remove_file(&backup_path).is_ok() {
                copied = copy();
            }
        }
        let backup_serial = match copied {
            Ok(()) => Some(current.meta.serial),
            // The backup of an earlier change stays: still a way back.
            Err(e) if e.is_out_of_space() && operation == "destroy" => {
                Sidecar::read(&self.sidecar_path()).ok().flatten().and_then(|s| s.backup_serial)
            }
            Err(e) if e.is_out_of_space() => {
                return Err(StateError::NoSpace(format!(
                    "{} has no room for the backup of the state written before each change ({e}); free some space and run again",
                    self.dir.display()
                )))
            }
            Err(e) => return Err(e),
        };
        let serial = current.meta.serial + 1;
        // Written by the next commit: see `PendingVersion`.
        let sidecar = Sidecar { lineage: current.meta.lineage, serial, backup_serial };
        let version = PendingVersion { current, serial, operation: operation.to_owned(), user: user.to_owned(), sidecar };
        *self.pending_version.lock().expect("pending version") = Some(version);
        Ok(serial)
    }

    fn history(&self) -> Result<Vec<VersionInfo>> {
        self.with_db(|open| {
            let Some(tx) = open.begin_read()? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for (_, payload) in tables::read_all(&tx, HISTORY, open.format, &self.enc)? {
                out.push(decode::<KeptVersion>("kept version", &payload)?.info);
            }
            if let Some(bytes) = tables::read_one(&tx, META, CURRENT_VERSION_KEY, open.format, &self.enc)? {
                let mut info: VersionInfo = decode("version record", &bytes)?;
                info.instances = tables::read_all(&tx, INSTANCES, open.format, &self.enc)?.len();
                out.push(info);
            }
            Ok(out)
        })
    }

    fn version(&self, serial: u64) -> Result<Snapshot> {
        self.with_db(|open| {
            let Some(tx) = open.begin_read()? else {
                return Err(StateError::NoSuchVersion(serial));
            };
            let snapshot = read_snapshot(&tx, open.format, &self.enc)?;
            if snapshot.meta.serial == serial {
                return Ok(snapshot);
            }
            let bytes = tables::read_one(&tx, HISTORY, serial, open.format, &self.enc)?.ok_or(StateError::NoSuchVersion(serial))?;
            Ok(decode::<KeptVersion>("kept version", &bytes)?.snapshot)
        })
    }

    fn import_versions(&self, versions: &[(VersionInfo, Snapshot)]) -> Result<()> {
        self.writable()?;
        let Some(((last_info, last), kept)) = versions.split_last() else {
            return Ok(());
        };
        let current = self.snapshot()?;
        if current.meta.serial != 0 || !current.instances.is_empty() {
            return Err(StateError::Database(format!(
                "{} already holds a state (version {}, {} instances); migration only fills an empty one",
                self.dir.display(),
                current.meta.serial,
                current.instances.len()
            )));
        }
        self.with_db(|open| {
            let Handle::Write(db) = &open.handle else {
                return Err(StateError::Database("the state was opened read-only".into()));
            };
            let tx = db.begin_write().map_err(db_err)?;
            {
                let mut w = Writer::new(&tx, &self.enc);
                w.clear(HISTORY)?;
                for (info, snapshot) in kept {
                    let kept = KeptVersion { info: info.clone(), snapshot: snapshot.clone() };
                    w.put(HISTORY, snapshot.meta.serial, &kept)?;
                }
                w.clear(INSTANCES)?;
                for (address, record) in &last.instances {
                    w.put(INSTANCES, address.as_str(), record)?;
                }
                w.clear(OUTPUTS)?;
                for (name, value) in &last.outputs {
                    w.put(OUTPUTS, name.as_str(), value)?;
                }
                w.put(META, META_KEY, &last.meta)?;
                w.put(META, CURRENT_VERSION_KEY, last_info)?;
                w.finish()?;
            }
            tx.commit().map_err(db_err)
        })?;
        Sidecar { lineage: last.meta.lineage, serial: last.meta.serial, backup_serial: None }.write(&self.sidecar_path(), Rename::Durable)
    }

    fn retire(&self) -> Result<String> {
        self.writable()?;
        *self.db.lock().expect("db handle") = None;
        let aside = self.dir.join(format!("migrated-{}", now()));
        crate::private::create_dir(&aside)?;
        for name in [DB_FILE, META_FILE, BACKUP_FILE, RESERVE_FILE] {
            let from = self.dir.join(name);
            if from.exists() {
                std::fs::rename(&from, aside.join(name))
                    .map_err(|source| StateError::Io { context: format!("move {} aside", from.display()), source })?;
            }
        }
        Ok(format!("the local state files were moved to {}", aside.display()))
    }

    fn restore_backup(&self) -> Result<Meta> {
        self.writable()?;
        let backup = self.dir.join(BACKUP_FILE);
        if !backup.exists() {
            return Err(StateError::Database(format!("there is no backup at {}", backup.display())));
        }
        // Check the backup whole before it replaces anything.
        let checked = LocalStore::read_only(&self.dir);
        let meta = {
            let db = checked.open_repaired_copy(&backup).map_err(|e| match e {
                StateError::Corrupt(d) => StateError::Corrupt(format!("the backup is damaged too: {d}")),
                e => e,
            })?;
            let tx = db.begin_read().map_err(db_err)?;
            let snapshot = guard::catch(|| read_snapshot(&tx, Format::Checked, &self.enc))
                .map_err(|p| StateError::Corrupt(format!("the backup is damaged too: {p}")))??;
            snapshot.meta
        };
        if let Some(known) = Sidecar::read(&self.sidecar_path()).ok().flatten() {
            if known.lineage != meta.lineage {
                return Err(StateError::Database(format!(
                    "the backup holds state lineage {} but this directory's state is lineage {}",
                    meta.lineage, known.lineage
                )));
            }
        }
        *self.db.lock().expect("db handle") = None;
        *self.poisoned.lock().expect("poison flag") = None;
        let path = self.db_path();
        if path.exists() {
            let aside = self.dir.join(format!("{DB_FILE}.damaged-{}", now()));
            std::fs::rename(&path, &aside)
                .map_err(|source| StateError::Io { context: format!("move {} aside", path.display()), source })?;
        }
        files::copy_atomically(&backup, &path, Rename::Durable)?;
        Sidecar { lineage: meta.lineage, serial: meta.serial, backup_serial: Some(meta.serial) }.write(&self.sidecar_path(), Rename::Durable)?;
        Ok(meta)
    }
}

#[cfg(test)]
mod tests;
