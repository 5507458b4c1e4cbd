//! One group commit of the journal: a batch of writes, folded into its net
//! effect ([`NetEffect`]), written at the workspace's current version after
//! the compare-and-set on the serial.
//!
//! A commit is one call of the schema's commit function
//! ([`crate::schema`]): one statement, so one round trip and one implicit
//! transaction, durable when the call returns. Only a batch that moves the
//! stored apply record to another phase takes the multi-statement path,
//! because the record must be read and opened (decrypted) on this side
//! first; that happens a few times per apply.

use crate::batch::{split, ApplyChange, NetEffect};
use crate::schema::{Sql, SERIAL_MOVED};
use crate::session::{self, Db};
use crate::{check_serial, seal_outputs, serial_moved};
use postgres::Statement;
use strata_state::{open_record_with, seal_record_with, ApplyRecord, Encryption, Result};

pub(crate) fn commit(db: &mut Db, sql: &Sql, enc: &Encryption, ws: &str, expected: Option<u64>, net: NetEffect) -> Result<()> {
    match (&net.apply, expected) {
        (Some(ApplyChange::Phase(_)), _) | (_, None) => commit_in_steps(db, sql, enc, ws, expected, net),
        (_, Some(serial)) => commit_in_one_call(db, sql, enc, ws, serial, net),
    }
}

fn seqs(keys: Vec<u64>) -> Vec<i64> {
    keys.into_iter().map(|k| k as i64).collect()
}

/// The batch as the arguments of the commit function. Payloads are sealed
/// for version `serial`, which the function checks is still current.
fn commit_in_one_call(db: &mut Db, sql: &Sql, enc: &Encryption, ws: &str, serial: u64, net: NetEffect) -> Result<()> {
    let st = db.st(&sql.commit)?;
    let touched: Vec<String> = net.instances.keys().cloned().collect();
    let (addresses, records): (Vec<String>, Vec<Vec<u8>>) =
        net.instances.iter().filter_map(|(a, r)| r.as_ref().map(|r| (a.clone(), seal_record_with(enc, "instances", a.as_bytes(), r)))).unzip();
    let outputs = net.outputs.as_ref().map(|o| seal_outputs(enc, serial, o));
    let (intents_touched, intent_seqs, intents) = split(&net.intents);
    let (apply, apply_record): (Option<&str>, Option<Vec<u8>>) = match &net.apply {
        Some(ApplyChange::Put(record)) => (Some("put"), Some(seal_record_with(enc, "apply", b"current", record))),
        Some(ApplyChange::Remove) => (Some("remove"), None),
        Some(ApplyChange::Phase(_)) | None => (None, None),
    };
    let (steps_touched, step_seqs, steps) = split(&net.steps);
    let result = db.client.query_one(
        &st,
        &[
            &ws,
            &(serial as i64),
            &touched,
            &addresses,
            &records,
            &outputs,
            &seqs(intents_touched),
            &seqs(intent_seqs),
            &intents,
            &apply,
            &apply_record,
            &net.clear_steps,
            &seqs(steps_touched),
            &seqs(step_seqs),
            &steps,
        ],
    );
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == SERIAL_MOVED) => {
            let now = e.as_db_error().and_then(|d| d.detail()).and_then(|d| d.parse().ok()).unwrap_or(0);
            Err(serial_moved(ws, now, serial))
        }
        Err(e) => Err(session::db_err(&db.target)(e)),
    }
}

/// The statements of a commit in steps, prepared once per session (a
/// statement given as text would be parsed by the server on every call).
struct CommitStatements {
    lock_row: Statement,
    close: Statement,
    drop_own: Statement,
    insert: Statement,
    set_outputs: Statement,
    intents_delete: Statement,
    intents_insert: Statement,
    apply_select: Statement,
    apply_upsert: Statement,
    apply_delete: Statement,
    steps_clear: Statement,
    steps_delete: Statement,
    steps_insert: Statement,
}

fn commit_in_steps(db: &mut Db, sql: &Sql, enc: &Encryption, ws: &str, expected: Option<u64>, net: NetEffect) -> Result<()> {
    let st = CommitStatements::new(db, sql)?;
    let target = db.target.clone();
    let mut tx = db.client.transaction().map_err(session::db_err(&target))?;
    let (_, serial) = check_serial(&mut tx, &st.lock_row, ws, expected, &target)?;
    write_net(&mut tx, &st, enc, ws, serial, net, &target)?;
    tx.commit().map_err(session::db_err(&target))
}
impl CommitStatements {
    fn new(db: &mut Db, sql: &Sql) -> Result<CommitStatements> {
        Ok(CommitStatements {
            lock_row: db.st(&sql.ws_lock_row)?,
            close: db.st(&sql.instances_close)?,
            drop_own: db.st(&sql.instances_drop_own)?,
            insert: db.st(&sql.instances_insert)?,
            set_outputs: db.st(&sql.version_set_outputs)?,
            intents_delete: db.st(&sql.intents_delete)?,
            intents_insert: db.st(&sql.intents_insert)?,
            apply_select: db.st(&sql.apply_select)?,
            apply_upsert: db.st(&sql.apply_upsert)?,
            apply_delete: db.st(&sql.apply_delete)?,
            steps_clear: db.st(&sql.steps_clear)?,
            steps_delete: db.st(&sql.steps_delete)?,
            steps_insert: db.st(&sql.steps_insert)?,
        })
    }
}

/// Writes a folded batch at version `serial` inside `tx`.
fn write_net(
    tx: &mut postgres::Transaction<'_>,
    st: &CommitStatements,
    enc: &Encryption,
    ws: &str,
    serial: u64,
    net: NetEffect,
    target: &str,
) -> Result<()> {
    let err = session::db_err(target);
    let at = serial as i64;
    if !net.instances.is_empty() {
        let touched: Vec<String> = net.instances.keys().cloned().collect();
        tx.execute(&st.close, &[&ws, &at, &touched]).map_err(&err)?;
        tx.execute(&st.drop_own, &[&ws, &at, &touched]).map_err(&err)?;
        let (addresses, records): (Vec<String>, Vec<Vec<u8>>) =
            net.instances.iter().filter_map(|(a, r)| r.as_ref().map(|r| (a.clone(), seal_record_with(enc, "instances", a.as_bytes(), r)))).unzip();
        if !addresses.is_empty() {
            tx.execute(&st.insert, &[&ws, &at, &addresses, &records]).map_err(&err)?;
        }
    }
    if let Some(outputs) = &net.outputs {
        tx.execute(&st.set_outputs, &[&ws, &at, &seal_outputs(enc, serial, outputs)]).map_err(&err)?;
    }
    if !net.intents.is_empty() {
        let (touched, seqs, payloads) = split(&net.intents);
        let touched: Vec<i64> = touched.into_iter().map(|s| s as i64).collect();
        tx.execute(&st.intents_delete, &[&ws, &touched]).map_err(&err)?;
        if !seqs.is_empty() {
            let seqs: Vec<i64> = seqs.into_iter().map(|s| s as i64).collect();
            tx.execute(&st.intents_insert, &[&ws, &seqs, &payloads]).map_err(&err)?;
        }
    }
    match net.apply {
        Some(ApplyChange::Put(record)) => {
            tx.execute(&st.apply_upsert, &[&ws, &seal_record_with(enc, "apply", b"current", &record)]).map_err(&err)?;
        }
        Some(ApplyChange::Phase(phase)) => {
            if let Some(row) = tx.query_opt(&st.apply_select, &[&ws]).map_err(&err)? {
                let record: ApplyRecord = open_record_with(enc, "apply", b"current", row.get::<_, &[u8]>(0))?;
                let record = ApplyRecord { phase, ..record };
                tx.execute(&st.apply_upsert, &[&ws, &seal_record_with(enc, "apply", b"current", &record)]).map_err(&err)?;
            }
        }
        Some(ApplyChange::Remove) => {
            tx.execute(&st.apply_delete, &[&ws]).map_err(&err)?;
        }
        None => {}
    }
    if net.clear_steps {
        tx.execute(&st.steps_clear, &[&ws]).map_err(&err)?;
    }
    if !net.steps.is_empty() {
        let (touched, seqs, payloads) = split(&net.steps);
        if !net.clear_steps {
            let touched: Vec<i64> = touched.into_iter().map(|s| s as i64).collect();
            tx.execute(&st.steps_delete, &[&ws, &touched]).map_err(&err)?;
        }
        if !seqs.is_empty() {
            let seqs: Vec<i64> = seqs.into_iter().map(|s| s as i64).collect();
            tx.execute(&st.steps_insert, &[&ws, &seqs, &payloads]).map_err(&err)?;
        }
    }
    Ok(())
}

