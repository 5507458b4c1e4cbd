//! `ceph_client`: a cephx client whose caps are limited to one pool, the key
//! a tenant's guests use. The key is a sensitive computed attribute; it
//! comes back on the CLI's stdout, never through a process argument.
//! Clients cannot carry the instance identity and are found by name.

use crate::client::{AuthEntity, CephClient};
use crate::{check_name, failed};
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, Instance, ProviderError, Result, Type, Value};

pub fn schema() -> Block {
    Block::new("A cephx client limited to RBD in one pool.")
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace).describe("The client's name without `client.`."))
        .attr("pool", Attribute::required(Type::String).describe("The pool the client may use images in (caps change live)."))
        .attr("read_only", Attribute::optional(Type::Bool).describe("Read-only access to the pool's images."))
        .attr("entity", Attribute::computed(Type::String).describe("`client.NAME`, as `user` of a provider block or libvirt's secret usage."))
        .attr("key", Attribute::computed(Type::String).sensitive().describe("The client's secret key."))
        .attr("caps", Attribute::computed(Type::Map(Box::new(Type::String))).describe("The caps Ceph holds for the client."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_name(config, "name", &mut out);
    check_name(config, "pool", &mut out);
    if config.get("name").as_str().is_some_and(|n| n.starts_with("client.")) {
        out.push(("name".into(), "give the name without `client.`".into()));
    }
    out
}

fn entity(v: &Value) -> String {
    format!("client.{}", v.get("name").as_str().unwrap_or_default())
}

/// The caps that limit a client to RBD in one pool.
fn caps(config: &Value) -> BTreeMap<String, String> {
    let pool = config.get("pool").as_str().unwrap_or_default();
    let profile = if config.get("read_only").as_bool() == Some(true) { "profile rbd-read-only" } else { "profile rbd" };
    BTreeMap::from([
        ("mon".to_owned(), "profile rbd".to_owned()),
        ("osd".to_owned(), format!("{profile} pool={pool}")),
        ("mgr".to_owned(), format!("profile rbd pool={pool}")),
    ])
}

fn state(e: &AuthEntity, config: &Value) -> Value {
    Value::object([
        ("name", Value::from(e.entity.trim_start_matches("client."))),
        ("pool", config.get("pool").clone()),
        ("read_only", config.get("read_only").clone()),
        ("entity", Value::from(e.entity.as_str())),
        ("key", Value::from(e.key.as_str()).into_sensitive()),
        ("caps", Value::Map(e.caps.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())),
    ])
}

/// The state, with `pool` and `read_only` as the caps say (drift shows).
fn state_from_caps(e: &AuthEntity, prior: &Value) -> Value {
    let osd = e.caps.get("osd").map(String::as_str).unwrap_or_default();
    let pool = osd.split_once("pool=").map(|(_, p)| Value::from(p.trim())).unwrap_or(Value::Null);
    let read_only = osd.contains("rbd-read-only");
    let config = Value::object([
        ("pool", pool),
        ("read_only", if !read_only && prior.get("read_only").is_null() { Value::Null } else { Value::Bool(read_only) }),
    ]);
    state(e, &config)
}

pub async fn read_all(c: &dyn CephClient, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
    let all = c.auth_list().await.map_err(|e| failed("cephx clients", e))?;
    Ok(instances
        .iter()
        .map(|i| {
            let wanted = entity(i.state);
            all.iter().find(|e| e.entity == wanted).map(|e| state_from_caps(e, i.state))
        })
        .collect())
}

pub async fn name_is_free(c: &dyn CephClient, planned: &Value) -> Result<bool> {
    let all = c.auth_list().await.map_err(|e| failed("cephx clients", e))?;
    Ok(!all.iter().any(|e| e.entity == entity(planned)))
}

pub async fn create(c: &dyn CephClient, planned: &Value) -> Result<Value> {
    let who = entity(planned);
    let made = c.auth_get_or_create(&who, &caps(planned)).await.map_err(|e| failed(&who, e))?;
    Ok(state(&made, planned))
}

pub async fn update(c: &dyn CephClient, planned: &Value) -> Result<Value> {
    let who = entity(planned);
    c.auth_set_caps(&who, &caps(planned)).await.map_err(|e| failed(&who, e))?;
    let all = c.auth_list().await.map_err(|e| failed(&who, e))?;
    let e = all.iter().find(|e| e.entity == who).ok_or_else(|| ProviderError::new(format!("{who} vanished")))?;
    Ok(state(e, planned))
}

pub async fn delete(c: &dyn CephClient, prior: &Value) -> Result<()> {
    let who = entity(prior);
    match c.auth_delete(&who).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&who, e)),
    }
}

/// Finds a client by name (with or without `client.`).
pub async fn lookup(c: &dyn CephClient, import_id: &str) -> Result<Option<Imported>> {
    let config = Value::object([("name", Value::from(import_id.trim_start_matches("client.")))]);
    let all = c.auth_list().await.map_err(|e| failed("cephx clients", e))?;
    Ok(all.iter().find(|e| e.entity == entity(&config)).map(|e| Imported { state: state_from_caps(e, &Value::Null), id: None }))
}
