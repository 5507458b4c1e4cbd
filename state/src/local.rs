//! The embedded state store: a redb database in `.strata/state.redb`, locked
//! by `.strata/lock.json`.

use crate::lock::LockFile;
use crate::{
    ApplyLog, ApplyRecord, Intent, InstanceRecord, LockInfo, Meta, Result, Snapshot, StateError, StateStore, UndoStep,
    VersionInfo, Write,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const INSTANCES: TableDefinition<&str, &[u8]> = TableDefinition::new("instances");
const OUTPUTS: TableDefinition<&str, &[u8]> = TableDefinition::new("outputs");
const JOURNAL: TableDefinition<u64, &[u8]> = TableDefinition::new("journal");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
/// The apply in progress (key [`APPLY_KEY`]) and its undo steps by sequence.
const APPLY: TableDefinition<&str, &[u8]> = TableDefinition::new("apply");
const STEPS: TableDefinition<u64, &[u8]> = TableDefinition::new("steps");

const APPLY_KEY: &str = "current";

const META_KEY: &str = "meta";
const CURRENT_VERSION_KEY: &str = "current_version";

/// A kept version: what it was and the state as it was.
#[derive(Serialize, Deserialize)]
struct KeptVersion {
    info: VersionInfo,
    snapshot: Snapshot,
}

pub struct LocalStore {
    dir: PathBuf,
    lock: LockFile,
    db: OnceLock<Database>,
    seq: AtomicU64,
}

impl LocalStore {
    /// A store in `dir` (usually `.strata/`). Nothing is opened until used.
    pub fn new(dir: &Path) -> LocalStore {
        LocalStore {
            dir: dir.to_owned(),
            lock: LockFile::new(&dir.join("lock.json")),
            db: OnceLock::new(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db(&self) -> Result<&Database> {
        if let Some(db) = self.db.get() {
            return Ok(db);
        }
        crate::private::create_dir(&self.dir)?;
        let path = self.dir.join("state.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => match self.lock.holder() {
                Ok(Some(holder)) => StateError::Locked(Box::new(holder)),
                _ => StateError::Database(format!("{} is open in another Strata process", path.display())),
            },
            e => StateError::Database(format!("{}: {e}", path.display())),
        })?;
        crate::private::restrict_file(&path);
        init(&db)?;
        let next = {
            let tx = db.begin_read().map_err(db_err)?;
            let journal = tx.open_table(JOURNAL).map_err(db_err)?;
            let last = journal.last().map_err(db_err)?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            last
        };
        self.seq.store(next, Ordering::SeqCst);
        Ok(self.db.get_or_init(|| db))
    }

    fn read_meta(tx: &redb::ReadTransaction) -> Result<Meta> {
        let meta = tx.open_table(META).map_err(db_err)?;
        let bytes = meta.get(META_KEY).map_err(db_err)?.ok_or_else(|| StateError::Corrupt("no meta record".into()))?;
        decode(bytes.value())
    }
}

fn init(db: &Database) -> Result<()> {
    let tx = db.begin_write().map_err(db_err)?;
    {
        let mut meta = tx.open_table(META).map_err(db_err)?;
        if meta.get(META_KEY).map_err(db_err)?.is_none() {
            let m = Meta { lineage: Uuid::new_v4(), serial: 0 };
            meta.insert(META_KEY, encode(&m).as_slice()).map_err(db_err)?;
        }
        tx.open_table(INSTANCES).map_err(db_err)?;
        tx.open_table(OUTPUTS).map_err(db_err)?;
        tx.open_table(JOURNAL).map_err(db_err)?;
        tx.open_table(HISTORY).map_err(db_err)?;
        tx.open_table(APPLY).map_err(db_err)?;
        tx.open_table(STEPS).map_err(db_err)?;
    }
    tx.commit().map_err(db_err)
}

fn db_err(e: impl std::fmt::Display) -> StateError {
    StateError::Database(e.to_string())
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("state records serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt(e.to_string()))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl StateStore for LocalStore {
    fn lock(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        crate::private::create_dir(&self.dir)?;
        self.lock.acquire(info)
    }

    fn unlock(&self, info: &LockInfo) -> Result<()> {
        self.lock.release(info)
    }

    fn force_unlock(&self, lock_id: &str) -> Result<LockInfo> {
        self.lock.force_release(lock_id)
    }

    fn lock_holder(&self) -> Result<Option<LockInfo>> {
        self.lock.holder()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let tx = self.db()?.begin_read().map_err(db_err)?;
        let meta = Self::read_meta(&tx)?;
        let mut instances = BTreeMap::new();
        for entry in tx.open_table(INSTANCES).map_err(db_err)?.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let record: InstanceRecord = decode(v.value())?;
            instances.insert(k.value().to_owned(), record);
        }
        let mut outputs = BTreeMap::new();
        for entry in tx.open_table(OUTPUTS).map_err(db_err)?.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            outputs.insert(k.value().to_owned(), decode(v.value())?);
        }
        Ok(Snapshot { meta, instances, outputs })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self.db()?.begin_write().map_err(db_err)?;
        {
            let mut instances = tx.open_table(INSTANCES).map_err(db_err)?;
            let mut journal = tx.open_table(JOURNAL).map_err(db_err)?;
            let mut apply = tx.open_table(APPLY).map_err(db_err)?;
            let mut steps = tx.open_table(STEPS).map_err(db_err)?;
            for write in writes {
                match write {
                    Write::Intent { seq, intent } => {
                        journal.insert(seq, encode(&intent).as_slice()).map_err(db_err)?;
                    }
                    Write::Resolve { seq } => {
                        journal.remove(seq).map_err(db_err)?;
                    }
                    Write::PutInstance(record) => {
                        instances.insert(record.address.as_str(), encode(&record).as_slice()).map_err(db_err)?;
                    }
                    Write::RemoveInstance { address } => {
                        instances.remove(address.as_str()).map_err(db_err)?;
                    }
                    Write::SetOutputs(outputs) => {
                        let mut table = tx.open_table(OUTPUTS).map_err(db_err)?;
                        table.retain(|_, _| false).map_err(db_err)?;
                        for (name, value) in &outputs {
                            table.insert(name.as_str(), encode(value).as_slice()).map_err(db_err)?;
                        }
                    }
                    Write::BeginApply(record) => {
                        apply.insert(APPLY_KEY, encode(&record).as_slice()).map_err(db_err)?;
                        steps.retain(|_, _| false).map_err(db_err)?;
                    }
                    Write::SetApplyPhase(phase) => {
                        let current = apply.get(APPLY_KEY).map_err(db_err)?.map(|b| decode::<ApplyRecord>(b.value()));
                        if let Some(record) = current {
                            let record = ApplyRecord { phase, ..record? };
                            apply.insert(APPLY_KEY, encode(&record).as_slice()).map_err(db_err)?;
                        }
                    }
                    Write::EndApply => {
                        apply.remove(APPLY_KEY).map_err(db_err)?;
                        steps.retain(|_, _| false).map_err(db_err)?;
                    }
                    Write::PutStep { seq, step } => {
                        steps.insert(seq, encode(&step).as_slice()).map_err(db_err)?;
                    }
                    Write::RemoveStep { seq } => {
                        steps.remove(seq).map_err(db_err)?;
                    }
                }
            }
        }
        tx.commit().map_err(db_err)
    }

    fn next_seq(&self, count: u64) -> Result<u64> {
        self.db()?;
        Ok(self.seq.fetch_add(count, Ordering::SeqCst))
    }

    fn pending_intents(&self) -> Result<Vec<(u64, Intent)>> {
        let tx = self.db()?.begin_read().map_err(db_err)?;
        let journal = tx.open_table(JOURNAL).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in journal.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value(), decode(v.value())?));
        }
        Ok(out)
    }

    fn apply_log(&self) -> Result<Option<ApplyLog>> {
        let tx = self.db()?.begin_read().map_err(db_err)?;
        let apply = tx.open_table(APPLY).map_err(db_err)?;
        let Some(bytes) = apply.get(APPLY_KEY).map_err(db_err)? else { return Ok(None) };
        let record: ApplyRecord = decode(bytes.value())?;
        let mut steps = Vec::new();
        for entry in tx.open_table(STEPS).map_err(db_err)?.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            steps.push((k.value(), decode::<UndoStep>(v.value())?));
        }
        Ok(Some(ApplyLog { record, steps }))
    }

    fn begin_version(&self, operation: &str, user: &str) -> Result<u64> {
        let current = self.snapshot()?;
        let current_info = {
            let tx = self.db()?.begin_read().map_err(db_err)?;
            let meta = tx.open_table(META).map_err(db_err)?;
            match meta.get(CURRENT_VERSION_KEY).map_err(db_err)? {
                Some(bytes) => decode::<VersionInfo>(bytes.value())?,
                None => VersionInfo {
                    serial: current.meta.serial,
                    created_at: now(),
                    operation: "init".into(),
                    user: user.to_owned(),
                    instances: 0,
                },
            }
        };
        let serial = current.meta.serial + 1;
        let info = VersionInfo {
            serial,
            created_at: now(),
            operation: operation.to_owned(),
            user: user.to_owned(),
            instances: current.instances.len(),
        };
        let tx = self.db()?.begin_write().map_err(db_err)?;
        {
            let mut history = tx.open_table(HISTORY).map_err(db_err)?;
            let kept = KeptVersion {
                info: VersionInfo { instances: current.instances.len(), ..current_info },
                snapshot: current.clone(),
            };
            history.insert(current.meta.serial, encode(&kept).as_slice()).map_err(db_err)?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let m = Meta { lineage: current.meta.lineage, serial };
            meta.insert(META_KEY, encode(&m).as_slice()).map_err(db_err)?;
            meta.insert(CURRENT_VERSION_KEY, encode(&info).as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(serial)
    }

    fn history(&self) -> Result<Vec<VersionInfo>> {
        let tx = self.db()?.begin_read().map_err(db_err)?;
        let mut out = Vec::new();
        for entry in tx.open_table(HISTORY).map_err(db_err)?.iter().map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            out.push(decode::<KeptVersion>(v.value())?.info);
        }
        let meta = tx.open_table(META).map_err(db_err)?;
        if let Some(bytes) = meta.get(CURRENT_VERSION_KEY).map_err(db_err)? {
            let mut info: VersionInfo = decode(bytes.value())?;
            info.instances = tx.open_table(INSTANCES).map_err(db_err)?.len().map_err(db_err)? as usize;
            out.push(info);
        }
        Ok(out)
    }

    fn version(&self, serial: u64) -> Result<Snapshot> {
        let tx = self.db()?.begin_read().map_err(db_err)?;
        if Self::read_meta(&tx)?.serial == serial {
            drop(tx);
            return self.snapshot();
        }
        let history = tx.open_table(HISTORY).map_err(db_err)?;
        let bytes = history.get(serial).map_err(db_err)?.ok_or(StateError::NoSuchVersion(serial))?;
        Ok(decode::<KeptVersion>(bytes.value())?.snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Operation;
    use strata_provider::Value;

    fn record(address: &str) -> InstanceRecord {
        InstanceRecord {
            address: address.into(),
            id: Uuid::new_v4(),
            type_name: "strata_data".into(),
            provider: "strata".into(),
            attributes: Value::object([("input", Value::from("x"))]),
            dependencies: vec![],
            create_before_destroy: false,
        }
    }

    #[test]
    fn writes_survive_reopen_and_versions_are_kept() {
        let dir = tempdir();
        let store = LocalStore::new(&dir);
        let serial = store.begin_version("apply", "me").unwrap();
        assert_eq!(serial, 1);
        let seq = store.next_seq(1).unwrap();
        let intent = Intent {
            apply_id: Uuid::new_v4(),
            operation: Operation::Create,
            address: "strata_data.a".into(),
            id: Uuid::new_v4(),
            type_name: "strata_data".into(),
            provider: "strata".into(),
            planned: None,
            prior: None,
            rollback: false,
            dependencies: vec![],
            create_before_destroy: false,
            undo: None,
        };
        store.commit(vec![Write::Intent { seq, intent: intent.clone() }]).unwrap();
        store.commit(vec![Write::PutInstance(record("strata_data.b"))]).unwrap();
        drop(store);

        let store = LocalStore::new(&dir);
        assert_eq!(store.pending_intents().unwrap(), vec![(seq, intent)]);
        assert!(store.next_seq(1).unwrap() > seq, "sequence numbers are never reused while pending");
        store.commit(vec![Write::Resolve { seq }]).unwrap();
        assert!(store.pending_intents().unwrap().is_empty());
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.meta.serial, 1);
        assert_eq!(snap.instances.keys().collect::<Vec<_>>(), vec!["strata_data.b"]);

        store.begin_version("destroy", "me").unwrap();
        store.commit(vec![Write::RemoveInstance { address: "strata_data.b".into() }]).unwrap();
        let history = store.history().unwrap();
        assert_eq!(history.iter().map(|v| v.serial).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(store.version(1).unwrap().instances.len(), 1);
        assert_eq!(store.version(2).unwrap().instances.len(), 0);
    }

    #[test]
    fn second_locker_is_refused_and_dead_holders_are_broken() {
        let dir = tempdir();
        let store = LocalStore::new(&dir);
        let me = LockInfo::for_this_process("apply");
        assert_eq!(store.lock(&me).unwrap(), None);
        let other = LockInfo::for_this_process("plan");
        match store.lock(&other) {
            Err(StateError::Locked(holder)) => assert_eq!(holder.id, me.id),
            r => panic!("expected Locked, got {r:?}"),
        }
        store.unlock(&me).unwrap();

        let dead = LockInfo { pid: dead_pid(), ..LockInfo::for_this_process("apply") };
        std::fs::write(dir.join("lock.json"), serde_json::to_vec(&dead).unwrap()).unwrap();
        let broken = store.lock(&other).unwrap().expect("the stale lock is reported");
        assert_eq!(broken.id, dead.id);
        assert_eq!(store.force_unlock(&other.id).unwrap().id, other.id);
        assert!(store.lock_holder().unwrap().is_none());
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-state-test-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
