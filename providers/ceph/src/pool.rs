//! `ceph_pool`: a replicated pool, initialised for RBD by default, with
//! quotas. The pool carries the instance identity as application metadata
//! (`ceph osd pool application set POOL APP strata-id UUID`).

use crate::client::{CephClient, PoolInfo, PoolUsage};
use crate::{check_name, failed, whole, whole_or, IDENTITY_KEY};
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, Instance, ProviderError, Result, Type, Value};
use uuid::Uuid;

const DEFAULT_PG_NUM: u64 = 8;
const DEFAULT_APPLICATION: &str = "rbd";

pub fn schema() -> Block {
    Block::new("A replicated Ceph pool. With application `rbd` (the default) it is initialised for RBD images.")
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("pg_num", Attribute::optional_computed(Type::Number).describe("Placement groups (default 8)."))
        .attr("size", Attribute::optional_computed(Type::Number).describe("Replicas."))
        .attr("min_size", Attribute::optional_computed(Type::Number).describe("Replicas needed to serve I/O."))
        .attr(
            "application",
            Attribute::optional(Type::String).on_change(Disruption::Replace).describe("`rbd` (default), `rgw`, `cephfs` or your own."),
        )
        .attr("quota_max_bytes", Attribute::optional(Type::Number).describe("Bytes; 0 or null: no quota. Writes block once the pool is full."))
        .attr("quota_max_objects", Attribute::optional(Type::Number).describe("Objects; 0 or null: no quota."))
        .attr("id", Attribute::computed(Type::Number).describe("The pool's number in the OSD map."))
        .attr("stored", Attribute::computed(Type::Number).describe("Bytes stored, as of the last apply."))
        .attr("available", Attribute::computed(Type::Number).describe("Bytes still available to the pool, as of the last apply."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_name(config, "name", &mut out);
    for attr in ["pg_num", "size", "min_size", "quota_max_bytes", "quota_max_objects"] {
        if let Err(e) = whole(config.get(attr), attr) {
            out.push(e);
        }
    }
    for attr in ["pg_num", "size", "min_size"] {
        if whole(config.get(attr), attr) == Ok(Some(0)) {
            out.push((attr.to_owned(), "must be at least 1".to_owned()));
        }
    }
    out
}

fn application(config: &Value) -> &str {
    config.get("application").as_str().unwrap_or(DEFAULT_APPLICATION)
}

/// The identity a pool carries, under any of its applications.
fn identity(pool: &PoolInfo) -> Option<&str> {
    pool.application_metadata.values().find_map(|m| m.get(IDENTITY_KEY)).map(String::as_str)
}

fn state(pool: &PoolInfo, usage: Option<&PoolUsage>, config: &Value) -> Value {
    let quota = |n: i64, attr: &str| {
        // "No quota" reads back as 0; keep the user's null.
        if n == 0 && config.get(attr).is_null() {
            Value::Null
        } else {
            Value::from(n)
        }
    };
    let application = if config.get("application").is_null() && pool.application_metadata.contains_key(DEFAULT_APPLICATION) {
        Value::Null
    } else {
        pool.application_metadata.keys().next().map(|a| Value::from(a.as_str())).unwrap_or(Value::Null)
    };
    Value::object([
        ("name", Value::from(pool.pool_name.as_str())),
        ("pg_num", Value::from(pool.pg_num)),
        ("size", Value::from(pool.size)),
        ("min_size", Value::from(pool.min_size)),
        ("application", application),
        ("quota_max_bytes", quota(pool.quota_max_bytes, "quota_max_bytes")),
        ("quota_max_objects", quota(pool.quota_max_objects, "quota_max_objects")),
        ("id", Value::from(pool.pool_id)),
        ("stored", Value::from(usage.map_or(0, |u| u.stored))),
        ("available", Value::from(usage.map_or(0, |u| u.available))),
    ])
}

/// Reads one pool with its usage (after a create or update).
async fn read_one(c: &dyn CephClient, name: &str, config: &Value) -> Result<Value> {
    let what = format!("pool {name}");
    let (pools, usage) = tokio::try_join!(c.pools(), c.pool_usage()).map_err(|e| failed(&what, e))?;
    let pool = pools.iter().find(|p| p.pool_name == name).ok_or_else(|| ProviderError::new(format!("{what} vanished")))?;
    Ok(state(pool, usage.get(name), config))
}

/// Sets what differs between `from` (null for a create) and `to`.
async fn apply_settings(c: &dyn CephClient, name: &str, from: &Value, to: &Value) -> Result<()> {
    let what = format!("pool {name}");
    for attr in ["size", "min_size", "pg_num"] {
        if let Some(n) = whole(to.get(attr), attr).ok().flatten() {
            if from.get(attr).as_i64() != Some(n as i64) {
                c.pool_set(name, attr, &n.to_string()).await.map_err(|e| failed(&format!("{what}: set {attr}"), e))?;
            }
        }
    }
    for (attr, field) in [("quota_max_bytes", "max_bytes"), ("quota_max_objects", "max_objects")] {
        let want = whole_or(to.get(attr), 0);
        if whole_or(from.get(attr), 0) != want {
            c.pool_set_quota(name, field, want).await.map_err(|e| failed(&format!("{what}: set quota {field}"), e))?;
        }
    }
    Ok(())
}

pub async fn create(c: &dyn CephClient, id: Uuid, planned: &Value) -> Result<Value> {
    let name = planned.get("name").as_str().unwrap_or_default();
    let what = format!("pool {name}");
    // `osd pool create` succeeds on an existing pool: never adopt one that
    // is not ours (a re-run after a crash finds ours by its identity).
    let pools = c.pools().await.map_err(|e| failed(&what, e))?;
    if let Some(existing) = pools.iter().find(|p| p.pool_name == name) {
        if identity(existing) != Some(&id.to_string()) {
            return Err(ProviderError::new(format!("{what} already exists; adopt it with `strata import` instead")));
        }
    }
    let pg_num = whole_or(planned.get("pg_num"), DEFAULT_PG_NUM) as u32;
    c.create_pool(name, pg_num).await.map_err(|e| failed(&what, e))?;
    let made = async {
        let app = application(planned);
        c.pool_application_enable(name, app).await.map_err(|e| failed(&what, e))?;
        c.pool_application_set(name, app, IDENTITY_KEY, &id.to_string()).await.map_err(|e| failed(&what, e))?;
        if app == "rbd" {
            c.rbd_pool_init(name).await.map_err(|e| failed(&what, e))?;
        }
        let created = Value::object([("pg_num", Value::from(pg_num as i64))]);
        apply_settings(c, name, &created, planned).await
    }
    .await;
    if let Err(e) = made {
        // Leave nothing half-made.
        let _ = c.delete_pool(name).await;
        return Err(e);
    }
    read_one(c, name, planned).await
}

pub async fn read_all(c: &dyn CephClient, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
    let pools = c.pools().await.map_err(|e| failed("pools", e))?;
    let by_id: BTreeMap<&str, &PoolInfo> = pools.iter().filter_map(|p| identity(p).map(|i| (i, p))).collect();
    Ok(instances
        .iter()
        .map(|i| {
            by_id.get(i.id.to_string().as_str()).map(|p| {
                // Usage moves with every write: keep what the last apply saw
                // rather than report it as drift.
                let mut s = state(p, None, i.state);
                if let Value::Map(m) = &mut s {
                    for key in ["stored", "available"] {
                        m.insert(key.to_owned(), i.state.get(key).clone());
                    }
                }
                s
            })
        })
        .collect())
}

pub async fn find(c: &dyn CephClient, id: Uuid) -> Result<Option<Value>> {
    let pools = c.pools().await.map_err(|e| failed("pools", e))?;
    match pools.iter().find(|p| identity(p) == Some(&id.to_string())) {
        Some(p) => Ok(Some(read_one(c, &p.pool_name, &Value::Null).await?)),
        None => Ok(None),
    }
}

pub async fn update(c: &dyn CephClient, _id: Uuid, prior: &Value, planned: &Value) -> Result<Value> {
    let name = prior.get("name").as_str().unwrap_or_default();
    apply_settings(c, name, prior, planned).await?;
    read_one(c, name, planned).await
}

pub async fn delete(c: &dyn CephClient, prior: &Value) -> Result<()> {
    let name = prior.get("name").as_str().unwrap_or_default();
    let what = format!("pool {name}");
    // Images destroyed in the same apply are gone by now (they depend on the
    // pool); any image left is not ours to destroy.
    if application(prior) == "rbd" {
        let mut listings = crate::list_pools(c, [name]).await?;
        let Some(entries) = listings.remove(name) else { return Ok(()) };
        let images: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        if !images.is_empty() {
            return Err(ProviderError::new(format!(
                "{what} still holds {} image(s) ({}); destroy them first, or remove them from this pool",
                images.len(),
                images.join(", ")
            )));
        }
    }
    match c.delete_pool(name).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&what, e)),
    }
}

pub async fn lookup(c: &dyn CephClient, name: &str) -> Result<Option<Imported>> {
    let pools = c.pools().await.map_err(|e| failed("pools", e))?;
    if !pools.iter().any(|p| p.pool_name == name) {
        return Ok(None);
    }
    Ok(Some(Imported { state: read_one(c, name, &Value::Null).await?, id: None }))
}

/// Adopts a pool by name and tags it with the engine's identity.
pub async fn import(c: &dyn CephClient, id: Uuid, name: &str) -> Result<Imported> {
    let pools = c.pools().await.map_err(|e| failed("pools", e))?;
    let pool = pools.iter().find(|p| p.pool_name == name).ok_or_else(|| ProviderError::new(format!("no pool {name:?} to import")))?;
    let app = pool.application_metadata.keys().next().cloned().unwrap_or_else(|| DEFAULT_APPLICATION.to_owned());
    if pool.application_metadata.is_empty() {
        c.pool_application_enable(name, &app).await.map_err(|e| failed(&format!("pool {name}"), e))?;
    }
    c.pool_application_set(name, &app, IDENTITY_KEY, &id.to_string()).await.map_err(|e| failed(&format!("pool {name}"), e))?;
    Ok(Imported { state: read_one(c, name, &Value::Null).await?, id: None })
}
