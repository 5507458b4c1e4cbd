//! Key rotation at rest: every payload of a workspace (instance rows of all
//! versions, each version's outputs, journal intents, the apply record and
//! the undo steps) that was written under the fallback method, or with no
//! key, is written again under the primary one, in the transaction that
//! starts the next version, as the local store does (`reencrypt_stale`).
//!
//! Payloads are sealed exactly as the local store seals them
//! ([`strata_state::seal_record_with`]): the checksum over table, key and
//! stored bytes, and the JSON encrypted with the table and key as associated
//! data, so a payload moved to another row fails to open.

use crate::batch::seq_key;
use crate::schema::Sql;
use crate::session::db_err;
use strata_state::{open_record_json, reseal_json, Encryption, Result};

/// Rewrites every stale payload of workspace `ws`; returns how many.
/// Nothing can be stale without a fallback method (a payload the primary
/// method cannot open is an error then), so the scan runs only with one.
pub(crate) fn reencrypt_stale(tx: &mut postgres::Transaction<'_>, sql: &Sql, enc: &Encryption, ws: &str, target: &str) -> Result<usize> {
    if !enc.has_fallback() {
        return Ok(0);
    }
    let err = db_err(target);
    let s = format!("\"{}\"", sql.schema);
    let mut count = 0;

    // Instance rows of every version: keyed by address in the seal, by
    // (address, since_serial) in the table.
    let rows = tx.query(&format!("SELECT address, since_serial, record FROM {s}.instances WHERE workspace = $1"), &[&ws]).map_err(&err)?;
    let (mut addresses, mut sinces, mut records) = (Vec::<String>::new(), Vec::<i64>::new(), Vec::<Vec<u8>>::new());
    for row in rows {
        let address: String = row.get(0);
        let (json, current) = open_record_json(enc, "instances", address.as_bytes(), row.get::<_, &[u8]>(2))?;
        if !current {
            records.push(reseal_json(enc, "instances", address.as_bytes(), &json));
            addresses.push(address);
            sinces.push(row.get(1));
        }
    }
    if !addresses.is_empty() {
        count += addresses.len();
        tx.execute(
            &format!(
                "UPDATE {s}.instances i SET record = t.r FROM unnest($2::text[], $3::bigint[], $4::bytea[]) AS t(a, f, r) \
                 WHERE i.workspace = $1 AND i.address = t.a AND i.since_serial = t.f"
            ),
            &[&ws, &addresses, &sinces, &records],
        )
        .map_err(&err)?;
    }

    // The tables keyed by a number: each version's outputs (sealed under the
    // serial), intents and undo steps (under their sequence number).
    for (table, seal_table, column, key_column) in
        [("versions", "outputs", "outputs", "serial"), ("intents", "journal", "intent", "seq"), ("undo_steps", "steps", "step", "seq")]
    {
        let rows = tx.query(&format!("SELECT {key_column}, {column} FROM {s}.{table} WHERE workspace = $1"), &[&ws]).map_err(&err)?;
        let (mut keys, mut payloads) = (Vec::<i64>::new(), Vec::<Vec<u8>>::new());
        for row in rows {
            let key: i64 = row.get(0);
            let key_bytes = seq_key(key as u64);
            let (json, current) = open_record_json(enc, seal_table, &key_bytes, row.get::<_, &[u8]>(1))?;
            if !current {
                payloads.push(reseal_json(enc, seal_table, &key_bytes, &json));
                keys.push(key);
            }
        }
        if !keys.is_empty() {
            count += keys.len();
            tx.execute(
                &format!(
                    "UPDATE {s}.{table} x SET {column} = t.p FROM unnest($2::bigint[], $3::bytea[]) AS t(k, p) \
                     WHERE x.workspace = $1 AND x.{key_column} = t.k"
                ),
                &[&ws, &keys, &payloads],
            )
            .map_err(&err)?;
        }
    }

    if let Some(row) = tx.query_opt(&sql.apply_select, &[&ws]).map_err(&err)? {
        let (json, current) = open_record_json(enc, "apply", b"current", row.get::<_, &[u8]>(0))?;
        if !current {
            count += 1;
            tx.execute(&sql.apply_upsert, &[&ws, &reseal_json(enc, "apply", b"current", &json)]).map_err(&err)?;
        }
    }
    Ok(count)
}
