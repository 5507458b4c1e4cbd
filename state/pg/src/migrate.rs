//! Moving a whole state in or out (`strata init -migrate-state`): every
//! version of another backend's history written as versioned rows in one
//! transaction, and a workspace's rows removed once they moved elsewhere.

use crate::schema::Sql;
use crate::session::Db;
use crate::{check_serial, seal_outputs};
use std::collections::BTreeMap;
use strata_state::{seal_record_with, Encryption, InstanceRecord, Result, Snapshot, StateError, VersionInfo};

pub(crate) fn import(db: &mut Db, sql: &Sql, enc: &Encryption, ws: &str, versions: Vec<(VersionInfo, Snapshot)>) -> Result<()> {
    let Some((_, last)) = versions.last() else {
        return Ok(());
    };
    let lineage = last.meta.lineage.to_string();
    let final_serial = last.meta.serial as i64;
    let target = db.target.clone();
    let err = crate::session::db_err(&target);
    let mut tx = db.client.transaction().map_err(&err)?;
    let (_, serial) = check_serial(&mut tx, sql.ws_lock_row.as_str(), ws, None, &target)?;
    let s = format!("\"{}\"", sql.schema);
    let instances: i64 = tx.query_one(&format!("SELECT count(*) FROM {s}.instances WHERE workspace = $1"), &[&ws]).map_err(&err)?.get(0);
    if serial != 0 || instances != 0 {
        return Err(StateError::Database(format!(
            "workspace {ws:?} in PostgreSQL at {target} already holds a state (version {serial}, {instances} instance rows); \
             migration only fills an empty one"
        )));
    }
    tx.execute(&format!("DELETE FROM {s}.versions WHERE workspace = $1"), &[&ws]).map_err(&err)?;
    tx.execute(&format!("UPDATE {s}.workspaces SET lineage = $2, serial = $3 WHERE name = $1"), &[&ws, &lineage, &final_serial])
        .map_err(&err)?;

    // Each record becomes one row per stretch of versions it stayed the same.
    let mut open: BTreeMap<String, (u64, InstanceRecord)> = BTreeMap::new();
    let (mut addresses, mut since, mut until, mut records) = (Vec::new(), Vec::new(), Vec::<Option<i64>>::new(), Vec::new());
    let mut close = |address: String, from: u64, to: Option<u64>, record: &InstanceRecord| {
        records.push(seal_record_with(enc, "instances", address.as_bytes(), record));
        addresses.push(address);
        since.push(from as i64);
        until.push(to.map(|t| t as i64));
    };
    for (info, snapshot) in &versions {
        let serial = snapshot.meta.serial;
        tx.execute(
            &sql.version_insert,
            &[&ws, &(serial as i64), &(info.created_at as i64), &info.operation, &info.user, &seal_outputs(enc, serial, &snapshot.outputs)],
        )
        .map_err(&err)?;
        let ended: Vec<String> = open
            .iter()
            .filter(|(address, (_, record))| snapshot.instances.get(*address) != Some(record))
            .map(|(address, _)| address.clone())
            .collect();
        for address in ended {
            let (from, record) = open.remove(&address).expect("listed above");
            close(address, from, Some(serial), &record);
        }
        for (address, record) in &snapshot.instances {
            open.entry(address.clone()).or_insert_with(|| (serial, record.clone()));
        }
    }
    for (address, (from, record)) in std::mem::take(&mut open) {
        close(address, from, None, &record);
    }
    tx.execute(
        &format!(
            "INSERT INTO {s}.instances (workspace, address, since_serial, until_serial, record) \
             SELECT $1, a, f, u, r FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bytea[]) AS t(a, f, u, r)"
        ),
        &[&ws, &addresses, &since, &until, &records],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)
}

pub(crate) fn delete_workspace(db: &mut Db, sql: &Sql, ws: &str, target: &str) -> Result<String> {
    let s = format!("\"{}\"", sql.schema);
    db.client.execute(&format!("DELETE FROM {s}.workspaces WHERE name = $1"), &[&ws]).map_err(db.err())?;
    Ok(format!("workspace {ws:?} of schema {} was removed from PostgreSQL at {target}", sql.schema))
}
