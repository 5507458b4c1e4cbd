//! TLS to the real server (`scripts/postgres-up.sh` turns TLS on with a
//! private CA and makes the database `strata_tls` refuse plain
//! connections): `sslmode=require` connects encrypted, `verify-full`
//! checks the server's certificate against `sslrootcert`, and a wrong CA
//! is a clear error that names the check and the file.

use strata_state::{Access, Backend, InstanceRecord, Write};
use strata_state_pg::PgBackend;

fn tls_conn(options: &str) -> String {
    let conn = std::env::var("STRATA_PG_CONN_STR")
        .expect("STRATA_PG_CONN_STR is not set: start the server with eval \"$(bash scripts/postgres-up.sh)\"");
    assert!(conn.contains("dbname=strata"), "{conn}");
    format!("{} {options}", conn.replace("dbname=strata", "dbname=strata_tls"))
}

fn ca() -> String {
    std::env::var("STRATA_PG_CA").expect("STRATA_PG_CA is not set: scripts/postgres-up.sh prints it (the CA of the server's certificate)")
}

fn schema(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("tls_{test}_{}_{nanos}", std::process::id())
}

/// A write and a read through `conn`: the connection really works.
fn round_trip(conn: &str, test: &str) -> Result<(), String> {
    let backend = PgBackend::new(conn, &schema(test)).map_err(|e| e.to_string())?;
    let store = backend.open("default", Access::ReadWrite).map_err(|e| e.to_string())?;
    store.begin_version("apply", "me").map_err(|e| e.to_string())?;
    let record = InstanceRecord {
        address: "a.b".into(),
        id: uuid::Uuid::new_v4(),
        type_name: "testing_object".into(),
        provider: "testing".into(),
        attributes: strata_provider::Value::Null,
        dependencies: vec![],
        create_before_destroy: false,
    };
    store.commit(vec![Write::PutInstance(record)]).map_err(|e| e.to_string())?;
    let snapshot = store.snapshot().map_err(|e| e.to_string())?;
    assert_eq!(snapshot.instances.len(), 1);
    Ok(())
}

#[test]
fn the_tls_only_database_refuses_a_plain_connection() {
    let err = round_trip(&tls_conn("sslmode=disable"), "plain").unwrap_err();
    assert!(err.contains("no encryption"), "pg_hba.conf refuses it: {err}");
}

#[test]
fn sslmode_require_connects_encrypted_without_checking_the_certificate() {
    // As in libpq: require encrypts but does not verify (no root file given).
    round_trip(&tls_conn("sslmode=require"), "require").unwrap();
    round_trip(&tls_conn("sslmode=prefer"), "prefer").unwrap();
}

#[test]
fn verify_full_checks_the_certificate_against_sslrootcert() {
    round_trip(&tls_conn(&format!("sslmode=verify-full sslrootcert={}", ca())), "full").unwrap();
    let by_name = tls_conn(&format!("sslmode=verify-full sslrootcert='{}'", ca())).replace("host=127.0.0.1", "host=localhost");
    round_trip(&by_name, "full_name").unwrap();
    round_trip(&tls_conn(&format!("sslmode=verify-ca sslrootcert={}", ca())), "ca").unwrap();
}

#[test]
fn a_wrong_ca_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("strata-other-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("other-ca.crt");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&other)
        .output()
        .expect("run openssl");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    for mode in ["verify-full", "verify-ca", "require"] {
        let err = round_trip(&tls_conn(&format!("sslmode={mode} sslrootcert={}", other.display())), "wrong").unwrap_err();
        assert!(err.contains("cannot connect to PostgreSQL at 127.0.0.1:"), "{mode}: {err}");
        assert!(err.contains("certificate verify failed"), "{mode}: {err}");
        assert!(err.contains(&format!("sslmode={mode} checks it against the CA in {}", other.display())), "{mode}: {err}");
    }
    let err = round_trip(&tls_conn("sslmode=verify-full sslrootcert=/nonexistent/ca.crt"), "missing").unwrap_err();
    assert!(err.contains("cannot read the root certificate file /nonexistent/ca.crt"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
