//! The state lock: a session advisory lock plus a row naming its holder.
//!
//! The advisory lock is what excludes: the server holds it for the session
//! and drops it the moment the session ends, however the holder died. The
//! row only tells a waiting user who holds it (user, host, pid, operation,
//! since, CI run) and which server session to end for `force-unlock`; a row
//! whose session is gone is stale and is replaced by the next locker.

use crate::schema::Sql;
use crate::session::Db;
use sha2::{Digest, Sha256};
use std::time::Duration;
use strata_state::{BrokenLock, LockInfo, Result, StateError};

/// The lock key of one workspace of one schema: the first 8 bytes of a
/// SHA-256, so it is fixed across versions and clients (PostgreSQL's own
/// hash functions are not guaranteed stable).
pub(crate) fn advisory_key(schema: &str, workspace: &str) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(b"strata-state-lock\0");
    hasher.update(schema.as_bytes());
    hasher.update([0]);
    hasher.update(workspace.as_bytes());
    i64::from_be_bytes(hasher.finalize()[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// `pg_locks` shows a bigint advisory key as two 32-bit halves.
fn halves(key: i64) -> (i64, i64) {
    let key = key as u64;
    ((key >> 32) as i64, (key & 0xffff_ffff) as i64)
}

fn row_info(row: &postgres::Row) -> LockInfo {
    LockInfo {
        id: row.get(0),
        user: row.get(1),
        host: row.get(2),
        pid: row.get::<_, i64>(3) as u32,
        operation: row.get(4),
        since: row.get::<_, i64>(5) as u64,
        run: row.get(6),
    }
}

/// The server sessions holding the advisory lock.
fn holding_sessions(db: &mut Db, sql: &Sql, key: i64) -> Result<Vec<i32>> {
    let (hi, lo) = halves(key);
    let rows = db.client.query(&sql.lock_backend, &[&hi, &lo]).map_err(db.err())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Takes the lock or fails at once with the holder. Returns the holder of
/// a stale row (its session ended without unlocking).
pub(crate) fn acquire(db: &mut Db, sql: &Sql, ws: &str, key: i64, info: &LockInfo) -> Result<Option<LockInfo>> {
    let got: bool = db.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).map_err(db.err())?.get(0);
    if !got {
        return Err(StateError::Locked(Box::new(current_holder(db, sql, ws, key)?)));
    }
    let target = db.target.clone();
    let recorded = (|| {
        let err = crate::session::db_err(&target);
        let mut tx = db.client.transaction().map_err(&err)?;
        let stale = tx.query_opt(&sql.lock_select, &[&ws]).map_err(&err)?.map(|r| row_info(&r));
        tx.execute(&sql.lock_delete, &[&ws]).map_err(&err)?;
        tx.execute(
            &sql.lock_insert,
            &[&ws, &info.id, &info.user, &info.host, &(info.pid as i64), &info.operation, &(info.since as i64), &info.run],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(stale)
    })();
    if recorded.is_err() {
        let _ = db.client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
    }
    recorded
}

/// The holder of a lock another session has: its row, which it writes right
/// after taking the lock (so a moment's wait covers that gap), or else what
/// the server knows of the session.
fn current_holder(db: &mut Db, sql: &Sql, ws: &str, key: i64) -> Result<LockInfo> {
    for _ in 0..20 {
        if let Some(row) = db.client.query_opt(&sql.lock_select, &[&ws]).map_err(db.err())? {
            let info = row_info(&row);
            let session: i32 = row.get(7);
            if holding_sessions(db, sql, key)?.contains(&session) {
                return Ok(info);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let session = holding_sessions(db, sql, key)?.first().copied().unwrap_or(0);
    let row = db
        .client
        .query_opt(
            "SELECT usename::text, coalesce(host(client_addr), 'a local socket'), extract(epoch FROM backend_start)::bigint \
             FROM pg_stat_activity WHERE pid = $1",
            &[&session],
        )
        .map_err(db.err())?;
    let (user, host, since) = row
        .map(|r| (r.get::<_, Option<String>>(0).unwrap_or_default(), r.get::<_, String>(1), r.get::<_, i64>(2) as u64))
        .unwrap_or_default();
    Ok(LockInfo {
        id: format!("pg-session-{session}"),
        user,
        host,
        pid: session as u32,
        operation: "an unrecorded operation (PostgreSQL session)".into(),
        since,
        run: None,
    })
}

pub(crate) fn release(db: &mut Db, sql: &Sql, ws: &str, key: i64, id: &str) -> Result<()> {
    db.client.execute(&sql.lock_delete_id, &[&ws, &id]).map_err(db.err())?;
    db.client.execute("SELECT pg_advisory_unlock($1)", &[&key]).map_err(db.err())?;
    Ok(())
}

/// Breaks the lock with this ID: ends the server session that holds it, so
/// the holder cannot write another byte, and removes its row.
pub(crate) fn force_release(db: &mut Db, sql: &Sql, ws: &str, key: i64, id: &str) -> Result<BrokenLock> {
    let row = db.client.query_opt(&sql.lock_select, &[&ws]).map_err(db.err())?;
    let info = match row.as_ref().map(row_info) {
        Some(info) if info.id == id => info,
        _ => return Err(StateError::NoSuchLock(id.to_owned())),
    };
    let own: i32 = db.client.query_one("SELECT pg_backend_pid()", &[]).map_err(db.err())?.get(0);
    for session in holding_sessions(db, sql, key)? {
        if session == own {
            db.client.execute("SELECT pg_advisory_unlock($1)", &[&key]).map_err(db.err())?;
            continue;
        }
        let ended: bool = db.client.query_one("SELECT pg_terminate_backend($1)", &[&session]).map_err(db.err())?.get(0);
        if !ended {
            return Err(StateError::Database(format!(
                "could not end the PostgreSQL session {session} that holds the lock (it may have ended already; run force-unlock again)"
            )));
        }
    }
    db.client.execute(&sql.lock_delete_id, &[&ws, &id]).map_err(db.err())?;
    Ok(BrokenLock::Held(info))
}

/// The holder, if a live session holds the lock.
pub(crate) fn holder(db: &mut Db, sql: &Sql, ws: &str, key: i64) -> Result<Option<LockInfo>> {
    let Some(row) = db.client.query_opt(&sql.lock_select, &[&ws]).map_err(db.err())? else {
        return Ok(None);
    };
    let session: i32 = row.get(7);
    Ok(holding_sessions(db, sql, key)?.contains(&session).then(|| row_info(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_per_workspace_and_split_into_halves_pg_locks_shows() {
        assert_ne!(advisory_key("s", "default"), advisory_key("s", "prod"));
        assert_ne!(advisory_key("a", "b_c"), advisory_key("a_b", "c"));
        let (hi, lo) = halves(-1);
        assert_eq!((hi, lo), (0xffff_ffff, 0xffff_ffff));
        assert_eq!(halves(0x0000_0001_0000_0002), (1, 2));
    }
}
