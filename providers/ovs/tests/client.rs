//! The OVSDB client against a real, private ovsdb-server (error shapes,
//! guards, TCP), and against a scripted socket for what a real server does
//! not do on demand (echo requests, replies split across reads, silence).

#[path = "../../../tests/common/ovs.rs"]
mod ovsd;

use ovsd::Ovs;
use serde_json::json;
use std::time::Duration;
use strata_provider_ovs::{Client, OvsdbError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn root(client: &Client) -> String {
    let r = client.transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["_uuid"]})]).await.unwrap();
    r[0]["rows"][0]["_uuid"][1].as_str().unwrap().to_owned()
}

fn insert_bridge(root: &str, name: &str) -> Vec<serde_json::Value> {
    vec![
        json!({"op": "insert", "table": "Interface", "uuid-name": "i", "row": {"name": name, "type": "internal"}}),
        json!({"op": "insert", "table": "Port", "uuid-name": "p", "row": {"name": name, "interfaces": ["named-uuid", "i"]}}),
        json!({"op": "insert", "table": "Bridge", "uuid-name": "b", "row": {"name": name, "ports": ["named-uuid", "p"]}}),
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [["_uuid", "==", ["uuid", root]]],
               "mutations": [["bridges", "insert", ["set", [["named-uuid", "b"]]]]]}),
    ]
}

#[tokio::test]
async fn transactions_commit_and_report_every_error_shape() {
    let ovs = Ovs::start_db_only();
    let client = Client::connect(&ovs.db(), TIMEOUT).await.unwrap();
    let dbs = client.request("list_dbs", json!([])).await.unwrap();
    assert!(dbs.as_array().unwrap().contains(&json!("Open_vSwitch")));
    let root = root(&client).await;

    let results = client.transact(insert_bridge(&root, "cb0")).await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(ovs.vsctl(&["list-br"]), "cb0");

    // A duplicate name fails at commit: the error is the trailing element.
    let err = client.transact(insert_bridge(&root, "cb0")).await.unwrap_err();
    match &err {
        OvsdbError::Operation { index, error, details } => {
            assert_eq!(*index, 4, "the commit-time error comes after the 4 operations");
            assert_eq!(error, "constraint violation");
            assert!(details.contains("cb0"), "{details}");
        }
        other => panic!("expected an operation error, got {other:?}"),
    }
    assert_eq!(ovs.vsctl(&["list-br"]), "cb0", "nothing was committed");

    // A stale guard aborts the whole transaction.
    let guard = json!({"op": "wait", "table": "Bridge", "timeout": 0, "where": [["name", "==", "cb0"], ["stp_enable", "==", true]],
                       "columns": ["name"], "until": "==", "rows": [{"name": "cb0"}]});
    let update = json!({"op": "update", "table": "Bridge", "where": [["name", "==", "cb0"]], "row": {"fail_mode": "secure"}});
    let err = client.transact(vec![guard, update]).await.unwrap_err();
    assert!(err.is_wait_failure(), "{err:?}");
    assert_eq!(ovs.get("Bridge", "cb0", "fail_mode"), "[]");

    // A bad operation names itself.
    let err = client.transact(vec![json!({"op": "select", "table": "NoSuchTable", "where": []})]).await.unwrap_err();
    assert!(err.to_string().contains("NoSuchTable"), "{err}");

    // An unknown method is an RPC error, not a hang.
    let err = client.request("no_such_method", json!([])).await.unwrap_err();
    assert!(matches!(err, OvsdbError::Rpc(_)), "{err:?}");
}

#[tokio::test]
async fn tcp_addresses_work_and_bad_addresses_say_why() {
    let ovs = Ovs::start_db_only();
    let port = 20000 + (std::process::id() % 20000) as u16;
    ovs.vsctl(&["--no-wait", "set-manager", &format!("ptcp:{port}:127.0.0.1")]);
    let target = format!("tcp:127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&target, TIMEOUT).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = client.expect("ovsdb-server listens on TCP");
    let dbs = client.request("list_dbs", json!([])).await.unwrap();
    assert!(dbs.as_array().unwrap().contains(&json!("Open_vSwitch")));

    let err = Client::connect("unix:/nonexistent/db.sock", TIMEOUT).await.err().unwrap();
    assert!(err.to_string().contains("is ovsdb-server running?"), "{err}");
    let err = Client::connect("ssl:1.2.3.4:6640", TIMEOUT).await.err().unwrap();
    assert!(err.to_string().contains("not an OVSDB address"), "{err}");
}

/// A scripted server: splits its reply across writes, sends an echo
/// request first and expects the echo reply.
#[tokio::test]
async fn echo_is_answered_and_split_replies_are_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(br#"{"method":"echo","params":["ping"],"id":"e1"}"#).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        // Read until both the echo reply and the request arrived.
        while !(String::from_utf8_lossy(&got).contains("\"e1\"") && String::from_utf8_lossy(&got).contains("list_dbs")) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        let reply = br#"{"id":1,"result":["Open_vSwitch"],"error":null}"#;
        s.write_all(&reply[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(&reply[10..]).await.unwrap();
        text
    });
    let client = Client::connect(&format!("unix:{}", path.display()), TIMEOUT).await.unwrap();
    let dbs = client.request("list_dbs", json!([])).await.unwrap();
    assert_eq!(dbs, json!(["Open_vSwitch"]));
    let seen = server.await.unwrap();
    assert!(seen.contains(r#""id":"e1""#) && seen.contains(r#""result":["ping"]"#), "echo reply: {seen}");
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_one_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = hold_rx.await;
        drop(s);
    });
    let client = Client::connect(&format!("unix:{}", path.display()), Duration::from_millis(300)).await.unwrap();
    let start = std::time::Instant::now();
    let err = client.request("list_dbs", json!([])).await.unwrap_err();
    assert!(err.to_string().contains("no reply within"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    hold_tx.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = client.request("list_dbs", json!([])).await.unwrap_err();
    assert!(matches!(err, OvsdbError::Transport(_)), "{err:?}");
}
