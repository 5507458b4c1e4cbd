//! Helpers for tests against the real PostgreSQL server that
//! `scripts/postgres-up.sh` starts: its connection string, a schema of the
//! test's own, and the real clients (`psql`, `pg_dump`) to check results.

#![allow(dead_code)]

use std::process::Command;

pub fn conn_str() -> String {
    std::env::var("STRATA_PG_CONN_STR")
        .expect("STRATA_PG_CONN_STR is not set: start the server with eval \"$(bash scripts/postgres-up.sh)\" (or scripts/test-env-up.sh)")
}

/// A schema name no other test (or earlier run) uses.
pub fn fresh_schema(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t_{test}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// Runs SQL with psql and returns its unaligned output.
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql").args([&conn_str(), "-v", "ON_ERROR_STOP=1", "-qtAc", sql]).output().expect("run psql");
    assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn count(sql: &str) -> i64 {
    psql(sql).parse().unwrap_or_else(|_| panic!("{sql:?} is not a count"))
}

/// `pg_dump` of one schema in plain SQL (bytea as hex), with `extra`
/// arguments (e.g. `--data-only`, `--exclude-table=...`).
pub fn pg_dump(schema: &str, extra: &[&str]) -> String {
    let out = Command::new("pg_dump")
        .args(["--dbname", &conn_str(), "--schema", schema, "--no-owner"])
        .args(extra)
        .output()
        .expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("pg_dump writes text");
    // `\restrict KEY` lines carry a fresh random key on every run.
    text.lines().filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")).map(|l| format!("{l}\n")).collect()
}
