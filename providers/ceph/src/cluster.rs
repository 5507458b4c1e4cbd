//! The `ceph_cluster` data source: what guests and other providers need to
//! know about the cluster (its fsid, health, capacity, monitors).

use crate::client::CephClient;
use crate::failed;
use strata_provider::{Attribute, Block, Result, Type, Value};

pub fn schema() -> Block {
    Block::new("Facts about the Ceph cluster.")
        .attr("fsid", Attribute::computed(Type::String))
        .attr("health", Attribute::computed(Type::String).describe("HEALTH_OK, HEALTH_WARN or HEALTH_ERR."))
        .attr("total_bytes", Attribute::computed(Type::Number).describe("Raw capacity."))
        .attr("available_bytes", Attribute::computed(Type::Number).describe("Raw capacity still free."))
        .attr("monitors", Attribute::computed(Type::List(Box::new(Type::String))).describe("Monitor addresses (`host:port`, v1 protocol), as libvirt's RBD disks take them."))
}

pub async fn read(c: &dyn CephClient) -> Result<Value> {
    let facts = c.cluster().await.map_err(|e| failed("cluster", e))?;
    Ok(Value::object([
        ("fsid", Value::from(facts.fsid)),
        ("health", Value::from(facts.health)),
        ("total_bytes", Value::from(facts.total_bytes)),
        ("available_bytes", Value::from(facts.available_bytes)),
        ("monitors", Value::List(facts.monitors.into_iter().map(Value::from).collect())),
    ]))
}
