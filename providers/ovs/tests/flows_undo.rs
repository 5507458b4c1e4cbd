//! Undo records of the OpenFlow resources through the provider trait, against
//! a private ovsdb-server and ovs-vswitchd: rollback of an update puts back
//! exactly the flows that were installed before (same cookies, same text).

#[path = "../../../tests/common/ovs.rs"]
mod ovsd;

use ovsd::Ovs;
use std::process::Command;
use strata_provider::{ProviderFactory, Undoable, Value};
use strata_provider_ovs::OvsFactory;
use uuid::Uuid;

fn dump(ovs: &Ovs, bridge: &str) -> Vec<String> {
    let out = Command::new("ovs-ofctl").args(["dump-flows", "--no-stats", bridge]).env("OVS_RUNDIR", ovs.run.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("actions=")).map(|l| l.trim().to_owned()).collect()
}

fn flow(priority: i64, m: &str, actions: &str) -> Value {
    Value::object([("table", Value::from(0i64)), ("priority", Value::from(priority)), ("match", Value::from(m)), ("actions", Value::from(actions))])
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_puts_the_previous_flows_back() {
    let ovs = Ovs::start();
    ovs.vsctl(&["--timeout=20", "add-br", "bru", "--", "set", "bridge", "bru", "datapath_type=netdev"]);
    let provider = OvsFactory.instantiate();
    provider.configure(&Value::object([("db", Value::from(ovs.db()))])).await.unwrap();

    let id = Uuid::new_v4();
    let v1 = Value::object([("bridge", Value::from("bru")), ("flows", Value::List(vec![flow(10, "ip", "drop"), flow(11, "arp", "NORMAL")].into()))]);
    let s1 = provider.create("ovs_flow_set", id, &v1).await.unwrap();
    let before = dump(&ovs, "bru");
    assert_eq!(before.len(), 3, "{before:?}"); // ours and the bridge's NORMAL

    let v2 = Value::object([("bridge", Value::from("bru")), ("flows", Value::List(vec![flow(20, "udp", "NORMAL")].into()))]);
    let record = provider.prepare_undo("ovs_flow_set", id, Undoable::Update { prior: &s1, planned: &v2 }).await.unwrap().expect("a record");
    provider.update("ovs_flow_set", id, &s1, &v2, Some(&record)).await.unwrap();
    let after = dump(&ovs, "bru");
    assert!(after.iter().any(|f| f.contains("priority=20,udp")) && !after.iter().any(|f| f.contains("priority=10,ip")), "{after:?}");

    let restored = provider.undo("ovs_flow_set", id, &record).await.unwrap();
    assert_eq!(dump(&ovs, "bru"), before);
    assert_eq!(restored.get("flows"), s1.get("flows"));
    provider.undo("ovs_flow_set", id, &record).await.unwrap();
    assert_eq!(dump(&ovs, "bru"), before, "undo is idempotent");

    // The restored set reads back intact: no drift after a rollback.
    let read = provider.read("ovs_flow_set", &[strata_provider::Instance { id, state: &restored }]).await.unwrap();
    assert_eq!(read[0].as_ref().map(|v| v.get("flows").clone()), Some(s1.get("flows").clone()));
}
