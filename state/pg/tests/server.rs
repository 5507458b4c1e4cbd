//! The store and the backend against a real PostgreSQL server
//! (`scripts/postgres-up.sh` prints the `STRATA_PG_CONN_STR` this needs):
//! workspaces are separate states, versions stay readable, and the serial's
//! compare-and-set lets exactly one of two writers build on a version.

use std::collections::BTreeMap;
use strata_provider::Value;
use strata_state::{Access, Backend, InstanceRecord, StateError, Write};
use strata_state_pg::PgBackend;
use uuid::Uuid;

fn backend(test: &str) -> PgBackend {
    let conn = std::env::var("STRATA_PG_CONN_STR")
        .expect("STRATA_PG_CONN_STR is not set: start the server with eval \"$(bash scripts/postgres-up.sh)\"");
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    PgBackend::new(&conn, &format!("u_{test}_{}_{nanos}", std::process::id())).unwrap()
}

fn record(address: &str, value: &str) -> InstanceRecord {
    InstanceRecord {
        address: address.into(),
        id: Uuid::new_v4(),
        type_name: "testing_object".into(),
        provider: "testing".into(),
        attributes: Value::String(value.into()),
        dependencies: vec![],
        create_before_destroy: false,
    }
}

#[test]
fn workspaces_are_separate_states_and_every_version_stays_readable() {
    let backend = backend("ws");
    assert_eq!(backend.workspaces().unwrap(), ["default"]);
    backend.create_workspace("prod").unwrap();
    assert!(matches!(backend.create_workspace("prod"), Err(StateError::WorkspaceExists(_))));
    assert_eq!(backend.workspaces().unwrap(), ["default", "prod"]);

    let prod = backend.open("prod", Access::ReadWrite).unwrap();
    let dev = backend.open("dev", Access::ReadWrite).unwrap();
    for (serial, value) in [(1, "a"), (2, "b")] {
        assert_eq!(prod.begin_version("apply", "me").unwrap(), serial);
        prod.commit(vec![
            Write::PutInstance(record("x.y", value)),
            Write::SetOutputs(BTreeMap::from([("v".into(), Value::String(value.into()))])),
        ])
        .unwrap();
    }
    assert_eq!(prod.begin_version("state rm", "me").unwrap(), 3);
    prod.commit(vec![Write::RemoveInstance { address: "x.y".into() }]).unwrap();
    assert!(dev.snapshot().unwrap().instances.is_empty(), "another workspace sees nothing of prod");

    let history: Vec<(u64, usize)> = prod.history().unwrap().iter().map(|v| (v.serial, v.instances)).collect();
    assert_eq!(history, [(0, 0), (1, 1), (2, 1), (3, 0)]);
    let v1 = prod.version(1).unwrap();
    assert_eq!(v1.instances["x.y"].attributes, Value::String("a".into()));
    assert_eq!(v1.outputs["v"], Value::String("a".into()));
    assert_eq!(prod.version(2).unwrap().instances["x.y"].attributes, Value::String("b".into()));
    assert!(prod.snapshot().unwrap().instances.is_empty());

    drop((prod, dev));
    backend.delete_workspace("prod").unwrap();
    assert!(matches!(backend.delete_workspace("prod"), Err(StateError::NoSuchWorkspace(_))));
    assert!(matches!(backend.delete_workspace("default"), Err(StateError::DefaultWorkspace)));
    let reopened = backend.open("prod", Access::ReadOnly).unwrap();
    assert!(reopened.snapshot().unwrap().instances.is_empty() && reopened.history().unwrap().is_empty());
}

#[test]
fn of_two_writers_on_one_serial_exactly_one_wins_and_the_other_writes_nothing() {
    let backend = backend("cas");
    let first = backend.open("default", Access::ReadWrite).unwrap();
    first.begin_version("apply", "me").unwrap();
    first.commit(vec![Write::PutInstance(record("a.b", "base"))]).unwrap();

    // Both see version 1, then race for version 2.
    let writers: Vec<_> = (0..2).map(|_| backend.open("default", Access::ReadWrite).unwrap()).collect();
    for w in &writers {
        assert_eq!(w.snapshot().unwrap().meta.serial, 1);
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = writers.iter().map(|w| s.spawn(|| w.begin_version("apply", "me"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let (winner, loser) = if results[0].is_ok() { (&writers[0], &writers[1]) } else { (&writers[1], &writers[0]) };
    let err = results.iter().find_map(|r| r.as_ref().err()).unwrap().to_string();
    assert!(err.contains("the state changed under this run"), "{err}");
    // The loser's writes are refused whole; the winner's go through.
    let refused = loser.commit(vec![Write::PutInstance(record("a.b", "loser")), Write::PutInstance(record("c.d", "loser"))]);
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains("the state changed under this run") && refused.contains("at version 2"), "{refused}");
    winner.commit(vec![Write::PutInstance(record("a.b", "winner"))]).unwrap();
    let now = first.version(2).unwrap();
    assert_eq!(now.instances.len(), 1);
    assert_eq!(now.instances["a.b"].attributes, Value::String("winner".into()));
}
