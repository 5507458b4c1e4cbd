//! Undo records through the provider trait, against a private ovsdb-server
//! and ovs-vswitchd: an update is undone exactly, in place, and an undo
//! never overwrites what someone else changed.

#[path = "../../../tests/common/ovs.rs"]
mod ovsd;

use ovsd::{unique, Ovs};
use strata_provider::{ProviderFactory, Undoable, Value};
use strata_provider_ovs::OvsFactory;
use uuid::Uuid;

fn with(v: &Value, key: &str, new: Value) -> Value {
    let mut v = v.clone();
    if let Value::Map(m) = &mut v {
        m.insert(key.to_owned(), new);
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_restores_the_previous_row_values_and_only_what_the_apply_wrote() {
    let ovs = Ovs::start();
    let provider = OvsFactory.instantiate();
    provider.configure(&Value::object([("db", Value::from(ovs.db()))])).await.unwrap();
    let br = unique("ub");
    let port = format!("{br}p");
    provider.create("ovs_bridge", Uuid::new_v4(), &Value::object([("name", Value::from(br.as_str()))])).await.unwrap();
    let id = Uuid::new_v4();
    let planned = Value::object([
        ("bridge", Value::from(br.as_str())),
        ("name", Value::from(port.as_str())),
        ("tag", Value::from(10i64)),
        ("external_ids", Value::object([("owner", Value::from("a"))])),
    ]);
    let v10 = provider.create("ovs_port", id, &planned).await.unwrap();
    let row = ovs.get("Port", &port, "_uuid");

    // Update with a record, then undo it.
    let v20 = with(&with(&v10, "tag", Value::from(20i64)), "external_ids", Value::object([("owner", Value::from("b"))]));
    let record = provider.prepare_undo("ovs_port", id, Undoable::Update { prior: &v10, planned: &v20 }).await.unwrap().unwrap();
    provider.update("ovs_port", id, &v10, &v20, Some(&record)).await.unwrap();
    assert_eq!(ovs.get("Port", &port, "tag"), "20");
    let restored = provider.undo("ovs_port", id, &record).await.unwrap();
    assert_eq!(ovs.get("Port", &port, "tag"), "10");
    assert_eq!(ovs.get("Port", &port, "external_ids:owner"), "a");
    assert_eq!(ovs.get("Port", &port, "_uuid"), row, "undone in place");
    assert_eq!(restored.get("tag"), &Value::from(10i64));
    // Idempotent.
    provider.undo("ovs_port", id, &record).await.unwrap();
    assert_eq!(ovs.get("Port", &port, "tag"), "10");

    // An update that aborted on an out-of-band change: undo keeps that change.
    let record = provider.prepare_undo("ovs_port", id, Undoable::Update { prior: &restored, planned: &v20 }).await.unwrap().unwrap();
    ovs.vsctl(&["set", "port", &port, "tag=77"]);
    let err = provider.update("ovs_port", id, &restored, &v20, Some(&record)).await.unwrap_err();
    assert!(err.message.contains("tag is now 77"), "{}", err.message);
    provider.undo("ovs_port", id, &record).await.unwrap();
    assert_eq!(ovs.get("Port", &port, "tag"), "77", "undo does not overwrite what it did not write");

    // find_by_identity finds only what carries the identity.
    assert!(provider.find_by_identity("ovs_port", id, &planned).await.unwrap().is_some());
    assert!(provider.find_by_identity("ovs_port", Uuid::new_v4(), &planned).await.unwrap().is_none());
}
