//! Strata's PostgreSQL state backend: one workspace of one schema of a
//! PostgreSQL database, shared by a team and its pipelines.
//!
//! It keeps the properties of the local store (see `strata-state`):
//! - **Per-operation writes**: instances are rows of their own, and a batch
//!   of writes is one transaction of a few array statements
//!   ([`batch::NetEffect`]); the state is never rewritten whole.
//! - **The journal in the same transaction**: intents, the apply record and
//!   the undo steps are tables of the same database, written in the
//!   transaction of the state change they precede or resolve.
//! - **Every version kept**: rows are versioned ([`schema`]), so history
//!   costs nothing when a version starts and every version can be read.
//!
//! And two that a shared store needs:
//! - **Compare-and-set on the serial.** The store remembers the serial it
//!   first saw (and those it started itself). A commit or a new version
//!   locks the workspace row and refuses to write when the serial moved, so
//!   two writers can never both build on one version; the loser's
//!   transaction is rolled back whole.
//! - **Locks that free themselves.** The state lock is a session advisory
//!   lock on the store's one connection ([`session`]), released by the
//!   server the moment the holder's connection dies (a killed or cancelled
//!   CI job); a row beside it names the holder for the error message.

mod backend;
mod batch;
mod commit;
mod lock;
mod records;
mod schema;
mod session;
mod tls;

pub use backend::PgBackend;
use batch::{seq_key, NetEffect};
use schema::Sql;
use session::{Db, Session};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use strata_provider::Value;
use strata_state::{
    open_record_with, seal_record_with, ApplyLog, ApplyRecord, BrokenLock, InstanceRecord, Intent, LockInfo, Meta, Result, Snapshot, StateError,
    StateStore, UndoStep, VersionInfo, Write, Encryption,
};
use uuid::Uuid;

/// The schema used when the configuration names none.
pub const DEFAULT_SCHEMA: &str = "strata";

/// Where a PostgreSQL state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// A libpq-style connection string (`host=... dbname=...` or a
    /// `postgresql://` URL). A password missing from it is taken from
    /// `PGPASSWORD`.
    pub conn_str: String,
    pub schema: String,
    pub workspace: String,
}

/// One workspace's state in PostgreSQL.
pub struct PgStore {
    session: Session,
    sql: Arc<Sql>,
    workspace: String,
    read_only: bool,
    /// Set once the schema and the workspace row are known to exist.
    ready: Mutex<bool>,
    /// The serial this store builds on: the one it first saw, then each it
    /// started itself. Writes are refused when the database's moved.
    expected: Arc<Mutex<Option<u64>>>,
    /// Journal sequence numbers reserved in the database, not yet handed out.
    seqs: Mutex<(u64, u64)>,
    /// The lock this store holds, if any.
    held: Mutex<Option<LockInfo>>,
    advisory_key: i64,
    /// Seals and opens every payload (records, history, journal, apply log,
    /// undo steps, outputs): the configuration's `encryption` for the state.
    enc: Arc<Encryption>,
}

/// How many sequence numbers one reservation takes: the database counter is
/// touched once per this many intents.
const SEQ_BLOCK: u64 = 4096;

impl PgStore {
    /// A store for reading and writing. Connects on first use.
    pub fn new(config: &PgConfig) -> Result<PgStore> {
        Self::open(config, false)
    }

    /// The same store, every payload sealed and opened by `enc`.
    pub fn with_encryption(mut self, enc: Arc<Encryption>) -> PgStore {
        self.enc = enc;
        self
    }

    /// A store that writes nothing (not even the tables a first use creates).
    pub fn read_only(config: &PgConfig) -> Result<PgStore> {
        Self::open(config, true)
    }

    fn open(config: &PgConfig, read_only: bool) -> Result<PgStore> {
        schema::check_schema_name(&config.schema)?;
        Ok(PgStore {
            session: Session::new(&config.conn_str)?,
            sql: Arc::new(Sql::new(&config.schema)),
            workspace: config.workspace.clone(),
            read_only,
            ready: Mutex::new(false),
            expected: Arc::new(Mutex::new(None)),
            seqs: Mutex::new((0, 0)),
            held: Mutex::new(None),
            advisory_key: lock::advisory_key(&config.schema, &config.workspace),
            enc: Encryption::none(),
        })
    }

    /// `host:port/dbname` of the server, for messages.
    pub fn target(&self) -> &str {
        &self.session.target
    }

    /// Runs `f` once the tables and the workspace row exist; a read-only
    /// store gets `None` when they do not (an empty state).
    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db, &Sql, &str) -> Result<T> + Send + 'static,
        empty: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut ready = self.ready.lock().expect("ready flag");
        let sql = self.sql.clone();
        let ws = self.workspace.clone();
        let expected = self.expected.clone();
        let was_ready = *ready;
        let read_only = self.read_only;
        let (result, now_ready) = self.session.run(move |db| {
            if !was_ready {
                if read_only {
                    if !sql.exists(db)? || db.client.query_opt(&sql.ws_select, &[&ws]).map_err(db.err())?.is_none() {
                        return Ok((empty(), false));
                    }
                } else {
                    sql.create(db)?;
                    db.client.execute(&sql.ws_insert, &[&ws, &Uuid::new_v4().to_string(), &now()]).map_err(db.err())?;
                }
                let row = db.client.query_one(&sql.ws_select, &[&ws]).map_err(db.err())?;
                let serial: i64 = row.get(1);
                expected.lock().expect("expected serial").get_or_insert(serial as u64);
            }
            Ok((f(db, &sql, &ws), true))
        })?;
        *ready = now_ready;
        result
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(StateError::Database("the state was opened read-only".into()));
        }
        Ok(())
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn outputs_key(serial: u64) -> Vec<u8> {
    serial.to_be_bytes().to_vec()
}

fn seal_outputs(enc: &Encryption, serial: u64, outputs: &BTreeMap<String, Value>) -> Vec<u8> {
    seal_record_with(enc, "outputs", &outputs_key(serial), outputs)
}

/// Locks the workspace row and checks that its serial is the one this
/// store builds on. Returns the lineage and the serial.
fn check_serial<T: postgres::ToStatement + ?Sized>(
    tx: &mut postgres::Transaction<'_>,
    lock_row: &T,
    ws: &str,
    expected: Option<u64>,
    target: &str,
) -> Result<(Uuid, u64)> {
    let row = tx.query_one(lock_row, &[&ws]).map_err(session::db_err(target))?;
    let lineage: String = row.get(0);
    let serial = row.get::<_, i64>(1) as u64;
    if let Some(expected) = expected.filter(|e| *e != serial) {
        return Err(serial_moved(ws, serial, expected));
    }
    let lineage = lineage.parse().map_err(|_| StateError::Corrupt(format!("workspace {ws:?} has lineage {lineage:?}")))?;
    Ok((lineage, serial))
}

/// The compare-and-set's refusal: another writer committed first.
fn serial_moved(ws: &str, serial: u64, expected: u64) -> StateError {
    StateError::Database(format!(
        "the state changed under this run: workspace {ws:?} is at version {serial}, but this run started from version {expected}. \
         Another writer (one that skipped the lock with -lock=false, or broke it) committed first, so nothing of this write \
         was saved. Plan again on the new version"
    ))
}

fn read_instances(enc: &Encryption, rows: Vec<postgres::Row>) -> Result<BTreeMap<String, InstanceRecord>> {
    let mut instances = BTreeMap::new();
    for row in rows {
        let address: String = row.get(0);
        let bytes: &[u8] = row.get(1);
        let record: InstanceRecord = open_record_with(enc, "instances", address.as_bytes(), bytes)?;
        if record.address != address {
            return Err(StateError::Corrupt(format!("the record under {address:?} is for {:?}", record.address)));
        }
        instances.insert(address, record);
    }
    Ok(instances)
}

fn read_outputs(enc: &Encryption, db: &mut Db, sql: &Sql, ws: &str, serial: u64) -> Result<Option<BTreeMap<String, Value>>> {
    let row = db.client.query_opt(&sql.version_outputs, &[&ws, &(serial as i64)]).map_err(db.err())?;
    row.map(|row| open_record_with(enc, "outputs", &outputs_key(serial), row.get::<_, &[u8]>(0))).transpose()
}

fn empty_snapshot() -> Snapshot {
    Snapshot { meta: Meta { lineage: Uuid::nil(), serial: 0 }, instances: BTreeMap::new(), outputs: BTreeMap::new() }
}

impl StateStore for PgStore {
    fn lock(&self, info: &LockInfo) -> Result<Option<LockInfo>> {
        self.writable()?;
        let mut held = self.held.lock().expect("held lock");
        if let Some(mine) = held.as_ref() {
            return Err(StateError::Locked(Box::new(mine.clone())));
        }
        let key = self.advisory_key;
        let info2 = info.clone();
        let broken = self.with(move |db, sql, ws| lock::acquire(db, sql, ws, key, &info2), || Ok(None))?;
        *held = Some(info.clone());
        Ok(broken)
    }

    fn unlock(&self, info: &LockInfo) -> Result<()> {
        let mut held = self.held.lock().expect("held lock");
        if held.as_ref().map(|h| &h.id) != Some(&info.id) {
            return Ok(());
        }
        *held = None;
        let key = self.advisory_key;
        let id = info.id.clone();
        self.with(move |db, sql, ws| lock::release(db, sql, ws, key, &id), || Ok(()))
    }

    fn force_unlock(&self, lock_id: &str) -> Result<BrokenLock> {
        let key = self.advisory_key;
        let id = lock_id.to_owned();
        let missing = id.clone();
        self.with(move |db, sql, ws| lock::force_release(db, sql, ws, key, &id), move || Err(StateError::NoSuchLock(missing)))
    }

    fn lock_holder(&self) -> Result<Option<LockInfo>> {
        let key = self.advisory_key;
        self.with(move |db, sql, ws| lock::holder(db, sql, ws, key), || Ok(None))
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let enc = self.enc.clone();
        self.with(
            move |db, sql, ws| {
                let mut tx = session::read_tx(&mut db.client, &db.target)?;
                let row = tx.query_one(&sql.ws_select, &[&ws]).map_err(session::db_err(&db.target))?;
                let lineage: String = row.get(0);
                let serial = row.get::<_, i64>(1) as u64;
                let rows = tx.query(&sql.current_instances, &[&ws]).map_err(session::db_err(&db.target))?;
                let outputs = tx.query_opt(&sql.version_outputs, &[&ws, &(serial as i64)]).map_err(session::db_err(&db.target))?;
                tx.commit().map_err(session::db_err(&db.target))?;
                let outputs = match outputs {
                    Some(row) => open_record_with(&enc, "outputs", &outputs_key(serial), row.get::<_, &[u8]>(0))?,
                    None => BTreeMap::new(),
                };
                let lineage = lineage.parse().map_err(|_| StateError::Corrupt(format!("workspace {ws:?} has lineage {lineage:?}")))?;
                Ok(Snapshot { meta: Meta { lineage, serial }, instances: read_instances(&enc, rows)?, outputs })
            },
            || Ok(empty_snapshot()),
        )
    }

    fn commit(&self, writes: Vec<Write>) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.writable()?;
        let expected = self.expected.clone();
        let enc = self.enc.clone();
        self.with(
            move |db, sql, ws| {
                // Known once the store is ready (`with` records it first).
                let expected = *expected.lock().expect("expected serial");
                commit::commit(db, sql, &enc, ws, expected, NetEffect::fold(writes, &enc))
            },
            || Ok(()),
        )
    }

    fn next_seq(&self, count: u64) -> Result<u64> {
        self.writable()?;
        let mut seqs = self.seqs.lock().expect("sequence block");
        if seqs.0 + count > seqs.1 {
            let block = count.max(SEQ_BLOCK) as i64;
            let first = self.with(
                move |db, sql, ws| {
                    let st = db.st(&sql.ws_reserve_seq)?;
                    let row = db.client.query_one(&st, &[&ws, &block]).map_err(db.err())?;
                    Ok(row.get::<_, i64>(0) as u64)
                },
                || Ok(1),
            )?;
            *seqs = (first, first + block as u64);
        }
        let seq = seqs.0;
        seqs.0 += count;
        Ok(seq)
    }

    fn pending_intents(&self) -> Result<Vec<(u64, Intent)>> {
        let enc = self.enc.clone();
        self.with(
            move |db, sql, ws| {
                let rows = db.client.query(&sql.intents, &[&ws]).map_err(db.err())?;
                rows.into_iter()
                    .map(|row| {
                        let seq = row.get::<_, i64>(0) as u64;
                        Ok((seq, open_record_with(&enc, "journal", &seq_key(seq), row.get::<_, &[u8]>(1))?))
                    })
                    .collect()
            },
            || Ok(Vec::new()),
        )
    }

    fn apply_log(&self) -> Result<Option<ApplyLog>> {
        let enc = self.enc.clone();
        self.with(
            move |db, sql, ws| {
                let mut tx = session::read_tx(&mut db.client, &db.target)?;
                let Some(row) = tx.query_opt(&sql.apply_select, &[&ws]).map_err(session::db_err(&db.target))? else {
                    return Ok(None);
                };
                let record: ApplyRecord = open_record_with(&enc, "apply", b"current", row.get::<_, &[u8]>(0))?;
                let rows = tx.query(&sql.steps, &[&ws]).map_err(session::db_err(&db.target))?;
                tx.commit().map_err(session::db_err(&db.target))?;
                let steps = rows
                    .into_iter()
                    .map(|row| {
                        let seq = row.get::<_, i64>(0) as u64;
                        Ok((seq, open_record_with::<UndoStep>(&enc, "steps", &seq_key(seq), row.get::<_, &[u8]>(1))?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some(ApplyLog { record, steps }))
            },
            || Ok(None),
        )
    }

    fn begin_version(&self, operation: &str, user: &str) -> Result<u64> {
        self.writable()?;
        let expected = *self.expected.lock().expect("expected serial");
        let (operation, user) = (operation.to_owned(), user.to_owned());
        let enc = self.enc.clone();
        let serial = self.with(
            move |db, sql, ws| {
                let target = db.target.clone();
                let err = session::db_err(&target);
                let mut tx = db.client.transaction().map_err(&err)?;
                let (_, current) = check_serial(&mut tx, sql.ws_lock_row.as_str(), ws, expected, &target)?;
                // Key rotation: what the fallback key (or no key) wrote is
                // written again under the primary one, history and journal too.
                records::reencrypt_stale(&mut tx, sql, &enc, ws, &target)?;
                let outputs = match tx.query_opt(&sql.version_outputs, &[&ws, &(current as i64)]).map_err(&err)? {
                    Some(row) => open_record_with(&enc, "outputs", &outputs_key(current), row.get::<_, &[u8]>(0))?,
                    None => {
                        // The first version of a workspace: record version 0 as `init`.
                        let empty = BTreeMap::new();
                        tx.execute(&sql.version_insert, &[&ws, &(current as i64), &now(), &"init", &user, &seal_outputs(&enc, current, &empty)])
                            .map_err(&err)?;
                        empty
                    }
                };
                let serial = current + 1;
                tx.execute(&sql.ws_set_serial, &[&ws, &(serial as i64)]).map_err(&err)?;
                tx.execute(&sql.version_insert, &[&ws, &(serial as i64), &now(), &operation, &user, &seal_outputs(&enc, serial, &outputs)])
                    .map_err(&err)?;
                tx.commit().map_err(&err)?;
                Ok(serial)
            },
            || Err(StateError::Database("the state was opened read-only".into())),
        )?;
        *self.expected.lock().expect("expected serial") = Some(serial);
        Ok(serial)
    }

    fn history(&self) -> Result<Vec<VersionInfo>> {
        self.with(
            |db, sql, ws| {
                let rows = db.client.query(&sql.versions, &[&ws]).map_err(db.err())?;
                Ok(rows
                    .into_iter()
                    .map(|row| VersionInfo {
                        serial: row.get::<_, i64>(0) as u64,
                        created_at: row.get::<_, i64>(1) as u64,
                        operation: row.get(2),
                        user: row.get(3),
                        instances: row.get::<_, i64>(4) as usize,
                    })
                    .collect())
            },
            || Ok(Vec::new()),
        )
    }

    fn version(&self, serial: u64) -> Result<Snapshot> {
        let enc = self.enc.clone();
        self.with(
            move |db, sql, ws| {
                let row = db.client.query_one(&sql.ws_select, &[&ws]).map_err(db.err())?;
                let lineage: String = row.get(0);
                let current = row.get::<_, i64>(1) as u64;
                let lineage = lineage.parse().map_err(|_| StateError::Corrupt(format!("workspace {ws:?} has lineage {lineage:?}")))?;
                let outputs = match read_outputs(&enc, db, sql, ws, serial)? {
                    Some(outputs) => outputs,
                    None if serial == current => BTreeMap::new(),
                    None => return Err(StateError::NoSuchVersion(serial)),
                };
                let rows = db.client.query(&sql.instances_at, &[&ws, &(serial as i64)]).map_err(db.err())?;
                Ok(Snapshot { meta: Meta { lineage, serial }, instances: read_instances(&enc, rows)?, outputs })
            },
            move || Err(StateError::NoSuchVersion(serial)),
        )
    }

    fn import_versions(&self, versions: &[(VersionInfo, Snapshot)]) -> Result<()> {
        self.writable()?;
        let versions = versions.to_vec();
        let enc = self.enc.clone();
        self.with(move |db, sql, ws| migrate::import(db, sql, &enc, ws, versions), || Ok(()))?;
        *self.expected.lock().expect("expected serial") = None;
        *self.ready.lock().expect("ready flag") = false;
        Ok(())
    }

    fn retire(&self) -> Result<String> {
        self.writable()?;
        let target = self.target().to_owned();
        self.with(move |db, sql, ws| migrate::delete_workspace(db, sql, ws, &target), || Ok(String::new()))
    }
}

mod migrate;
