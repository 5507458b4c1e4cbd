//! The tables of one PostgreSQL schema, created on first use, and the SQL
//! the store runs on them.
//!
//! Every table is keyed by workspace, so one schema holds any number of
//! independent states. Instances are versioned rows: a row is valid from
//! the version that wrote it (`since_serial`) until the version that
//! replaced or removed it (`until_serial`, NULL while current), so starting
//! a version copies nothing and every version stays readable for
//! `strata state history`. Record payloads are the opaque bytes of
//! [`strata_state::seal_record_with`] under the backend's cipher, the same
//! encoding the local store keeps (encrypted when configured).

use crate::session::Db;
use strata_state::{Result, StateError};

/// Taken around the DDL so that two first users of a schema do not race on
/// `CREATE ... IF NOT EXISTS` (which is not safe concurrently).
const DDL_LOCK_KEY: i64 = 0x5354_5241_5441_4444; // "STRATADD"

/// The SQL texts of one schema.
pub(crate) struct Sql {
    pub schema: String,
    pub ws_insert: String,
    pub ws_select: String,
    pub ws_lock_row: String,
    pub ws_set_serial: String,
    pub ws_reserve_seq: String,
    pub version_insert: String,
    pub version_outputs: String,
    pub version_set_outputs: String,
    pub versions: String,
    pub current_instances: String,
    pub instances_at: String,
    pub instances_close: String,
    pub instances_drop_own: String,
    pub instances_insert: String,
    pub intents: String,
    pub intents_delete: String,
    pub intents_insert: String,
    pub apply_select: String,
    pub apply_upsert: String,
    pub apply_delete: String,
    pub steps: String,
    pub steps_delete: String,
    pub steps_clear: String,
    pub steps_insert: String,
    pub lock_select: String,
    pub lock_delete: String,
    pub lock_delete_id: String,
    pub lock_insert: String,
    pub lock_backend: String,
    /// The whole of a commit as one statement: one round trip (see
    /// [`COMMIT_FUNCTION`]).
    pub commit: String,
}

/// The SQLSTATE the commit function raises when the serial moved.
pub(crate) const SERIAL_MOVED: &str = "SR001";

/// A commit in one call: the compare-and-set on the workspace row, then the
/// instance rows, outputs, intents, apply record and undo steps, in this
/// order, inside the one transaction the statement runs in. The statements
/// are those the store used to send one by one (each a round trip); in a
/// function the server runs them back to back, and plpgsql caches their
/// plans per session; every lookup is an equality on the full key of an
/// index, so no plan can turn it into a scan. The name carries a version: a changed body is a new
/// function, so stores of different versions can share a schema.
const COMMIT_FUNCTION: &str = "commit_v1";

fn commit_function_ddl(s: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {s}.{COMMIT_FUNCTION}(
           p_ws text, p_expected bigint,
           p_touched text[], p_addresses text[], p_records bytea[],
           p_outputs bytea,
           p_intents_touched bigint[], p_intent_seqs bigint[], p_intents bytea[],
           p_apply text, p_apply_record bytea,
           p_clear_steps boolean, p_steps_touched bigint[], p_step_seqs bigint[], p_steps bytea[])
         RETURNS bigint LANGUAGE plpgsql AS $fn$
         DECLARE
           v_at bigint;
           v_i integer;
         BEGIN
           SELECT w.serial INTO v_at FROM {s}.workspaces w WHERE w.name = p_ws FOR UPDATE;
           IF NOT FOUND THEN
             RAISE EXCEPTION 'workspace % does not exist', p_ws;
           END IF;
           IF p_expected IS NOT NULL AND v_at <> p_expected THEN
             RAISE EXCEPTION 'the serial moved' USING ERRCODE = '{SERIAL_MOVED}', DETAIL = v_at::text;
           END IF;
           IF cardinality(p_touched) > 0 THEN
             -- One point lookup per address, on the full key of an index:
             -- whatever the (stale) statistics say, the plan stays an index
             -- probe. A join with unnest was planned as a scan of the whole
             -- version while its rows were still being written.
             FOR v_i IN 1 .. coalesce(array_length(p_touched, 1), 0) LOOP
               UPDATE {s}.instances i SET until_serial = v_at
                 WHERE i.workspace = p_ws AND i.address = p_touched[v_i] AND i.until_serial IS NULL AND i.since_serial < v_at;
               DELETE FROM {s}.instances i WHERE i.workspace = p_ws AND i.address = p_touched[v_i] AND i.since_serial = v_at;
             END LOOP;
             INSERT INTO {s}.instances (workspace, address, since_serial, record)
               SELECT p_ws, t.a, v_at, t.r FROM unnest(p_addresses, p_records) AS t(a, r);
           END IF;
           IF p_outputs IS NOT NULL THEN
             UPDATE {s}.versions v SET outputs = p_outputs WHERE v.workspace = p_ws AND v.serial = v_at;
           END IF;
           IF cardinality(p_intents_touched) > 0 THEN
             FOR v_i IN 1 .. coalesce(array_length(p_intents_touched, 1), 0) LOOP
               IF p_intents_touched[v_i] <> ALL(p_intent_seqs) THEN
                 DELETE FROM {s}.intents x WHERE x.workspace = p_ws AND x.seq = p_intents_touched[v_i];
               END IF;
             END LOOP;
             INSERT INTO {s}.intents (workspace, seq, intent) SELECT p_ws, t.q, t.b FROM unnest(p_intent_seqs, p_intents) AS t(q, b)
               ON CONFLICT (workspace, seq) DO UPDATE SET intent = EXCLUDED.intent;
           END IF;
           IF p_apply = 'put' THEN
             INSERT INTO {s}.applies (workspace, record) VALUES (p_ws, p_apply_record)
               ON CONFLICT (workspace) DO UPDATE SET record = EXCLUDED.record;
           ELSIF p_apply = 'remove' THEN
             DELETE FROM {s}.applies a WHERE a.workspace = p_ws;
           END IF;
           IF p_clear_steps THEN
             DELETE FROM {s}.undo_steps x WHERE x.workspace = p_ws;
           ELSIF cardinality(p_steps_touched) > 0 THEN
             FOR v_i IN 1 .. coalesce(array_length(p_steps_touched, 1), 0) LOOP
               DELETE FROM {s}.undo_steps x WHERE x.workspace = p_ws AND x.seq = p_steps_touched[v_i];
             END LOOP;
           END IF;
           IF cardinality(p_step_seqs) > 0 THEN
             INSERT INTO {s}.undo_steps (workspace, seq, step) SELECT p_ws, t.q, t.b FROM unnest(p_step_seqs, p_steps) AS t(q, b);
           END IF;
           RETURN v_at;
         END
         $fn$;"
    )
}

/// Schema names are identifiers Strata puts into SQL: keep them plain.
pub(crate) fn check_schema_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StateError::Database(format!(
            "schema_name {name:?} is not a plain PostgreSQL identifier (lower-case letters, digits and _, at most 63, not starting with a digit)"
        )))
    }
}

impl Sql {
    pub fn new(schema: &str) -> Sql {
        let s = format!("\"{schema}\"");
        Sql {
            schema: schema.to_owned(),
            ws_insert: format!(
                "INSERT INTO {s}.workspaces (name, lineage, serial, next_seq, created_at) VALUES ($1, $2, 0, 1, $3) ON CONFLICT DO NOTHING"
            ),
            ws_select: format!("SELECT lineage, serial FROM {s}.workspaces WHERE name = $1"),
            ws_lock_row: format!("SELECT lineage, serial FROM {s}.workspaces WHERE name = $1 FOR UPDATE"),
            ws_set_serial: format!("UPDATE {s}.workspaces SET serial = $2 WHERE name = $1"),
            ws_reserve_seq: format!("UPDATE {s}.workspaces SET next_seq = next_seq + $2 WHERE name = $1 RETURNING next_seq - $2"),
            version_insert: format!(
                "INSERT INTO {s}.versions (workspace, serial, created_at, operation, username, outputs) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT DO NOTHING"
            ),
            version_outputs: format!("SELECT outputs FROM {s}.versions WHERE workspace = $1 AND serial = $2"),
            version_set_outputs: format!("UPDATE {s}.versions SET outputs = $3 WHERE workspace = $1 AND serial = $2"),
            versions: format!(
                "SELECT v.serial, v.created_at, v.operation, v.username, \
                   (SELECT count(*) FROM {s}.instances i WHERE i.workspace = v.workspace AND i.since_serial <= v.serial \
                      AND (i.until_serial IS NULL OR i.until_serial > v.serial)) \
                 FROM {s}.versions v WHERE v.workspace = $1 ORDER BY v.serial"
            ),
            current_instances: format!("SELECT address, record FROM {s}.instances WHERE workspace = $1 AND until_serial IS NULL"),
            instances_at: format!(
                "SELECT address, record FROM {s}.instances WHERE workspace = $1 AND since_serial <= $2 \
                 AND (until_serial IS NULL OR until_serial > $2)"
            ),
            // The commit in steps (a change of the apply record's phase, a
            // few times per apply); every other commit is the function's
            // point lookups. A join with unnest rather than `= ANY($3)`,
            // which a generic plan reads as a filter over the workspace.
            instances_close: format!(
                "UPDATE {s}.instances i SET until_serial = $2 FROM unnest($3::text[]) AS t(a) \
                 WHERE i.workspace = $1 AND i.address = t.a AND i.until_serial IS NULL AND i.since_serial < $2"
            ),
            instances_drop_own: format!(
                "DELETE FROM {s}.instances i USING unnest($3::text[]) AS t(a) WHERE i.workspace = $1 AND i.address = t.a AND i.since_serial = $2"
            ),
            instances_insert: format!(
                "INSERT INTO {s}.instances (workspace, address, since_serial, record) \
                 SELECT $1, a, $2, r FROM unnest($3::text[], $4::bytea[]) AS t(a, r)"
            ),
            intents: format!("SELECT seq, intent FROM {s}.intents WHERE workspace = $1 ORDER BY seq"),
            intents_delete: format!("DELETE FROM {s}.intents WHERE workspace = $1 AND seq = ANY($2)"),
            intents_insert: format!(
                "INSERT INTO {s}.intents (workspace, seq, intent) SELECT $1, q, b FROM unnest($2::bigint[], $3::bytea[]) AS t(q, b)"
            ),
            apply_select: format!("SELECT record FROM {s}.applies WHERE workspace = $1"),
            apply_upsert: format!(
                "INSERT INTO {s}.applies (workspace, record) VALUES ($1, $2) ON CONFLICT (workspace) DO UPDATE SET record = EXCLUDED.record"
            ),
            apply_delete: format!("DELETE FROM {s}.applies WHERE workspace = $1"),
            steps: format!("SELECT seq, step FROM {s}.undo_steps WHERE workspace = $1 ORDER BY seq"),
            steps_delete: format!("DELETE FROM {s}.undo_steps WHERE workspace = $1 AND seq = ANY($2)"),
            steps_clear: format!("DELETE FROM {s}.undo_steps WHERE workspace = $1"),
            steps_insert: format!(
                "INSERT INTO {s}.undo_steps (workspace, seq, step) SELECT $1, q, b FROM unnest($2::bigint[], $3::bytea[]) AS t(q, b)"
            ),
            lock_select: format!("SELECT id, username, host, pid, operation, since, run, backend_pid FROM {s}.locks WHERE workspace = $1"),
            lock_delete: format!("DELETE FROM {s}.locks WHERE workspace = $1"),
            lock_delete_id: format!("DELETE FROM {s}.locks WHERE workspace = $1 AND id = $2"),
            lock_insert: format!(
                "INSERT INTO {s}.locks (workspace, id, username, host, pid, operation, since, run, backend_pid) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, pg_backend_pid())"
            ),
            lock_backend: "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() \
                 AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1"
                .into(),
            commit: format!(
                "SELECT {s}.{COMMIT_FUNCTION}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ),
        }
    }

    /// Whether the schema's tables exist (a read-only store creates nothing).
    pub fn exists(&self, db: &mut Db) -> Result<bool> {
        let row = db.client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("\"{}\".locks", self.schema)]).map_err(db.err())?;
        Ok(row.get(0))
    }

    /// Whether this version's commit function exists (a schema created by
    /// an older Strata gets it on first use).
    fn has_commit_function(&self, db: &mut Db) -> Result<bool> {
        let name = format!("\"{}\".{COMMIT_FUNCTION}", self.schema);
        let row = db.client.query_one("SELECT to_regproc($1) IS NOT NULL", &[&name]).map_err(db.err())?;
        Ok(row.get(0))
    }

    /// Creates the schema, its tables and the commit function if missing.
    pub fn create(&self, db: &mut Db) -> Result<()> {
        if self.exists(db)? && self.has_commit_function(db)? {
            return Ok(());
        }
        let s = format!("\"{}\"", self.schema);
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {s}.workspaces (
               name text PRIMARY KEY, lineage text NOT NULL, serial bigint NOT NULL,
               next_seq bigint NOT NULL, created_at bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS {s}.versions (
               workspace text NOT NULL REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
               serial bigint NOT NULL, created_at bigint NOT NULL, operation text NOT NULL,
               username text NOT NULL, outputs bytea NOT NULL, PRIMARY KEY (workspace, serial));
             CREATE TABLE IF NOT EXISTS {s}.instances (
               workspace text NOT NULL REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
               address text NOT NULL, since_serial bigint NOT NULL, until_serial bigint,
               record bytea NOT NULL, PRIMARY KEY (workspace, address, since_serial));
             CREATE UNIQUE INDEX IF NOT EXISTS instances_current ON {s}.instances (workspace, address)
               WHERE until_serial IS NULL;
             CREATE TABLE IF NOT EXISTS {s}.intents (
               workspace text NOT NULL REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
               seq bigint NOT NULL, intent bytea NOT NULL, PRIMARY KEY (workspace, seq));
             CREATE TABLE IF NOT EXISTS {s}.applies (
               workspace text PRIMARY KEY REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
               record bytea NOT NULL);
             CREATE TABLE IF NOT EXISTS {s}.undo_steps (
               workspace text NOT NULL REFERENCES {s}.workspaces (name) ON DELETE CASCADE,
               seq bigint NOT NULL, step bytea NOT NULL, PRIMARY KEY (workspace, seq));
             CREATE TABLE IF NOT EXISTS {s}.locks (
               workspace text PRIMARY KEY, id text NOT NULL, username text NOT NULL, host text NOT NULL,
               pid bigint NOT NULL, operation text NOT NULL, since bigint NOT NULL, run text,
               backend_pid integer NOT NULL);
             {}",
            commit_function_ddl(&s)
        );
        let mut tx = db.client.transaction().map_err(db_err_static)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DDL_LOCK_KEY]).map_err(db_err_static)?;
        tx.batch_execute(&ddl).map_err(db_err_static)?;
        tx.commit().map_err(db_err_static)
    }
}

fn db_err_static(e: postgres::Error) -> StateError {
    StateError::Database(format!("creating the state tables in PostgreSQL: {}", crate::session::message(&e)))
}
