//! `kvm_pool`: a libvirt storage pool. Directory pools for now; the `type`
//! attribute leaves room for RBD pools backed by Ceph.
//!
//! Whether the pool is started is part of its state (`active`): a pool left
//! defined but stopped (an interrupted create) hides its volumes, so the
//! next apply starts it. A replaced pool is retired (stopped and undefined,
//! its directory and volumes left in place) and defined again on undo.

use crate::undo;
use crate::xml::{self, esc};
use crate::err;
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, ProviderError, Result, Type, UndoRecord, Value};
use uuid::Uuid;
use virt::connect::Connect;
use virt::storage_pool::StoragePool;

pub fn schema() -> Block {
    Block::new("A libvirt storage pool.")
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("type", Attribute::optional(Type::String).on_change(Disruption::Replace).describe("dir (the default)."))
        .attr(
            "path",
            Attribute::required(Type::String).on_change(Disruption::Replace).describe("Directory of a dir pool; created if missing."),
        )
        .attr(
            "active",
            Attribute::optional(Type::Bool)
                .describe("Whether the pool is started (default true); a stopped pool is started by the next apply. Changed live."),
        )
        .attr("capacity", Attribute::computed(Type::Number).describe("Bytes."))
        .attr("available", Attribute::computed(Type::Number).describe("Bytes."))
        .attr("id", Attribute::computed(Type::String).describe("The libvirt UUID (the instance's identity)."))
}

pub fn create(conn: &Connect, id: Uuid, planned: &Value) -> Result<Value> {
    let kind = planned.get("type").as_str().unwrap_or("dir");
    if kind != "dir" {
        return Err(ProviderError::new(format!("pool type {kind:?} is not supported yet (dir is)")));
    }
    let xml = format!(
        "<pool type='dir'>\n  <name>{}</name>\n  <uuid>{id}</uuid>\n  <target>\n    <path>{}</path>\n  </target>\n</pool>\n",
        esc(planned.get("name").as_str().unwrap_or_default()),
        esc(planned.get("path").as_str().unwrap_or_default()),
    );
    let pool = crate::calls::with_xml("virStoragePoolDefineXML", &xml, |x| conn.define_storage_pool_xml(x, 0)).map_err(err)?;
    // A pool that cannot be built or started is undefined again.
    let active = planned.get("active").as_bool() != Some(false);
    let started = pool.build(0).and_then(|_| if active { pool.create(0) } else { Ok(()) }).and_then(|_| pool.set_autostart(true));
    if let Err(e) = started {
        let _ = crate::calls::call("virStoragePoolDestroy", || pool.destroy());
        let _ = crate::calls::call("virStoragePoolUndefine", || pool.undefine());
        return Err(err(e));
    }
    state(&pool, planned)
}

fn state(pool: &StoragePool, config: &Value) -> Result<Value> {
    let desc = pool.xml_desc(0).map_err(err)?;
    let doc = xml::parse(&desc)?;
    let info = pool.info().map_err(err)?;
    let kind = doc.root_element().attribute("type").unwrap_or("dir");
    Ok(Value::Map(BTreeMap::from([
        ("name".to_owned(), Value::from(pool.name().map_err(err)?)),
        ("type".to_owned(), if config.get("type").is_null() && kind == "dir" { Value::Null } else { Value::from(kind) }),
        ("path".to_owned(), xml::text(&doc, "path").map(Value::from).unwrap_or(Value::Null)),
        ("active".to_owned(), {
            let on = pool.is_active().map_err(err)?;
            if on && config.get("active").is_null() { Value::Null } else { Value::Bool(on) }
        }),
        ("capacity".to_owned(), Value::from(info.capacity as i64)),
        ("available".to_owned(), Value::from(info.available as i64)),
        ("id".to_owned(), Value::from(pool.uuid().map_err(err)?.to_string())),
    ]).into()))
}

pub fn read_all(conn: &Connect, wanted: &[(Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    let all = crate::calls::call("virConnectListAllStoragePools", || conn.list_all_storage_pools(0)).map_err(err)?;
    let by_uuid: BTreeMap<Uuid, &StoragePool> = all.iter().filter_map(|p| p.uuid().ok().map(|u| (u, p))).collect();
    wanted
        .iter()
        .map(|(id, prior)| {
            // Capacity and free space move with every write: compare them
            // against what was there, not as drift.
            by_uuid.get(id).map(|p| state(p, prior)).transpose().map(|s| s.map(|s| keep_volatile(s, prior)))
        })
        .collect()
}

/// Keeps the prior `capacity` and `available`, which change on their own.
fn keep_volatile(mut state: Value, prior: &Value) -> Value {
    if let Value::Map(m) = &mut state {
        for key in ["capacity", "available"] {
            if !prior.get(key).is_null() {
                m.insert(key.to_owned(), prior.get(key).clone());
            }
        }
    }
    state
}

/// Starts or stops the pool (`active`), the one attribute changed in place.
pub fn update(conn: &Connect, id: Uuid, planned: &Value) -> Result<Value> {
    let pool = conn.lookup_storage_pool_by_uuid(id).map_err(err)?;
    let active = pool.is_active().map_err(err)?;
    match (planned.get("active").as_bool() != Some(false), active) {
        (true, false) => {
            // A directory removed behind libvirt's back is made again first.
            crate::calls::call("virStoragePoolBuild", || pool.build(0)).map_err(err)?;
            crate::calls::call("virStoragePoolCreate", || pool.create(0)).map_err(err)?;
        }
        (false, true) => crate::calls::call("virStoragePoolDestroy", || pool.destroy()).map_err(err)?,
        _ => {}
    }
    state(&pool, planned)
}

/// The undo record of a retirement: the pool's XML and whether it ran.
pub fn prepare_retire(conn: &Connect, id: Uuid, prior: &Value) -> Result<Option<UndoRecord>> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_uuid(id))? else { return Ok(None) };
    Ok(Some(undo::record(undo::RETIRE, [
        ("xml", Value::from(pool.xml_desc(virt::sys::VIR_STORAGE_XML_INACTIVE).map_err(err)?)),
        ("active", Value::Bool(pool.is_active().map_err(err)?)),
        ("autostart", Value::Bool(pool.autostart().map_err(err)?)),
        ("prior", prior.clone()),
    ])))
}

/// Removes the pool for its replacement but leaves its directory and the
/// volumes in it: stop and undefine. Idempotent.
pub fn retire(conn: &Connect, id: Uuid) -> Result<()> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_uuid(id))? else {
        return Ok(());
    };
    if pool.is_active().map_err(err)? {
        crate::calls::call("virStoragePoolDestroy", || pool.destroy()).map_err(err)?;
    }
    crate::calls::call("virStoragePoolUndefine", || pool.undefine()).map_err(err)
}

/// Defines a retired pool again from its XML and starts it if it ran.
pub fn undo(conn: &Connect, id: Uuid, rec: &UndoRecord) -> Result<Value> {
    let pool = match crate::found(conn.lookup_storage_pool_by_uuid(id))? {
        Some(pool) => pool,
        None => crate::calls::with_xml("virStoragePoolDefineXML", undo::text(rec, "xml")?, |x| conn.define_storage_pool_xml(x, 0)).map_err(err)?,
    };
    if undo::flag(rec, "active") && !pool.is_active().map_err(err)? {
        crate::calls::call("virStoragePoolBuild", || pool.build(0)).map_err(err)?;
        crate::calls::call("virStoragePoolCreate", || pool.create(0)).map_err(err)?;
    }
    pool.set_autostart(undo::flag(rec, "autostart")).map_err(err)?;
    state(&pool, rec.0.get("prior")).map(|s| keep_volatile(s, rec.0.get("prior")))
}

/// Once the replacement stays: removes the retired pool's directory if it
/// is empty and no pool uses it (what deleting the pool would have done).
/// Only on a local libvirt, where the directory is a local one.
pub fn discard_undo(conn: &Connect, local: bool, rec: &UndoRecord) -> Result<()> {
    let Some(path) = rec.0.get("prior").get("path").as_str() else { return Ok(()) };
    if !local {
        return Ok(());
    }
    for pool in crate::calls::call("virConnectListAllStoragePools", || conn.list_all_storage_pools(0)).map_err(err)? {
        // A pool undefined since the listing no longer uses the directory.
        let Some(desc) = crate::found(pool.xml_desc(0))? else { continue };
        if xml::text(&xml::parse(&desc)?, "path") == Some(path) {
            return Ok(());
        }
    }
    // Fails, and so keeps it, when anything is left in it.
    let _ = std::fs::remove_dir(path);
    Ok(())
}

pub fn delete(conn: &Connect, id: Uuid) -> Result<()> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_uuid(id))? else {
        return Ok(());
    };
    if pool.is_active().map_err(err)? {
        crate::calls::call("virStoragePoolDestroy", || pool.destroy()).map_err(err)?;
    }
    // Removes the directory when it is empty; a directory with files in it
    // that Strata does not manage is left alone.
    let _ = pool.delete(0);
    crate::calls::call("virStoragePoolUndefine", || pool.undefine()).map_err(err)
}

/// Finds a pool by name or UUID for `import`.
pub fn lookup(conn: &Connect, import_id: &str) -> Result<Option<Imported>> {
    let Some(pool) = crate::by_uuid_or_name(import_id, |u| conn.lookup_storage_pool_by_uuid(u), |n| conn.lookup_storage_pool_by_name(n))? else {
        return Ok(None);
    };
    let id = pool.uuid().map_err(err)?;
    Ok(Some(Imported { state: state(&pool, &Value::Null)?, id: Some(id) }))
}
