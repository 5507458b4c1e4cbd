//! `kvm_volume`: a volume in a libvirt storage pool, found by pool and name.
//! Growing it is a live resize; shrinking it loses data.

use crate::xml::{self, esc};
use crate::err;
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, PlanResponse, ProviderError, Result, Type, Value};
use virt::connect::Connect;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

pub fn schema() -> Block {
    Block::new("A volume in a storage pool.")
        .attr("pool", Attribute::required(Type::String).on_change(Disruption::Replace).describe("The pool's name."))
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr(
            "size",
            Attribute::optional_computed(Type::Number)
                .describe("Bytes. Growing is live (resize); shrinking destroys data (data-loss)."),
        )
        .attr("format", Attribute::optional(Type::String).on_change(Disruption::Replace).describe("qcow2 (default) or raw."))
        .attr(
            "base_volume",
            Attribute::optional(Type::String)
                .on_change(Disruption::Replace)
                .describe("Name of a volume in the same pool to make a thin qcow2 clone of."),
        )
        .attr(
            "source",
            Attribute::optional(Type::String)
                .on_change(Disruption::Replace)
                .describe("A local image file uploaded into the volume through a libvirt stream (qcow2 is detected)."),
        )
        .attr("path", Attribute::computed(Type::String).describe("The volume's file."))
        .attr("id", Attribute::computed(Type::String).describe("The libvirt volume key."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match config.get("format").as_str() {
        None | Some("qcow2") | Some("raw") => {}
        Some(other) => out.push(("format".into(), format!("unknown format {other:?} (qcow2, raw)"))),
    }
    if config.get("base_volume").as_str().is_some() && config.get("format").as_str() == Some("raw") {
        out.push(("base_volume".into(), "a thin clone needs format qcow2".into()));
    }
    if config.get("size").is_null() && config.get("base_volume").is_null() && config.get("source").is_null() {
        out.push(("size".into(), "size is required unless the volume clones a base_volume or uploads a source".into()));
    }
    if !config.get("source").is_null() && !config.get("base_volume").is_null() {
        out.push(("source".into(), "a volume is either uploaded from a source or cloned from a base_volume".into()));
    }
    out
}

/// Growing is live, shrinking destroys data.
pub fn plan(prior: Option<&Value>, proposed: &Value) -> PlanResponse {
    let mut response = PlanResponse::default();
    if let (Some(old), Some(new)) = (prior.and_then(|p| p.get("size").as_f64()), proposed.get("size").as_f64()) {
        let d = if new < old { Disruption::DataLoss } else { Disruption::Live };
        response.disruptions.insert("size".into(), d);
    }
    response
}

fn pool_of(conn: &Connect, v: &Value) -> Result<StoragePool> {
    let name = v.get("pool").as_str().unwrap_or_default();
    conn.lookup_storage_pool_by_name(name).map_err(|e| ProviderError::new(format!("pool {name:?}: {}", e.message())))
}

pub fn create(conn: &Connect, planned: &Value) -> Result<Value> {
    let pool = pool_of(conn, planned)?;
    let name = planned.get("name").as_str().unwrap_or_default();
    if let Some(source) = planned.get("source").as_str() {
        return create_from_source(conn, &pool, name, source, planned);
    }
    let format = planned.get("format").as_str().unwrap_or("qcow2");
    let (capacity, backing) = match planned.get("base_volume").as_str() {
        Some(base_name) => {
            let base = pool.lookup_storage_vol_by_name(base_name).map_err(|e| ProviderError::new(format!("base volume {base_name:?}: {}", e.message())))?;
            let base_info = base.info().map_err(err)?;
            let base_doc_xml = base.xml_desc(0).map_err(err)?;
            let base_doc = xml::parse(&base_doc_xml)?;
            let base_format = xml::attr(&base_doc, "format", "type").unwrap_or("raw").to_owned();
            let size = planned.get("size").as_f64().map(|s| s as u64).unwrap_or(base_info.capacity).max(base_info.capacity);
            let path = base.path().map_err(err)?;
            (size, Some(format!("  <backingStore>\n    <path>{}</path>\n    <format type='{base_format}'/>\n  </backingStore>\n", esc(&path))))
        }
        None => (planned.get("size").as_f64().unwrap_or(0.0) as u64, None),
    };
    let xml = format!(
        "<volume>\n  <name>{}</name>\n  <capacity unit='bytes'>{capacity}</capacity>\n  <target>\n    <format type='{format}'/>\n  </target>\n{}</volume>\n",
        esc(name),
        backing.unwrap_or_default()
    );
    let vol = StorageVol::create_xml(&pool, &xml, 0).map_err(err)?;
    state(&vol, planned)
}

/// Creates a volume from a local image file, streamed into it.
fn create_from_source(conn: &Connect, pool: &StoragePool, name: &str, source: &str, planned: &Value) -> Result<Value> {
    let data = std::fs::read(source).map_err(|e| ProviderError::new(format!("source {source}: {e}")))?;
    let detected = if data.starts_with(b"QFI\xfb") { "qcow2" } else { "raw" };
    let format = planned.get("format").as_str().unwrap_or(detected);
    let capacity = (planned.get("size").as_f64().unwrap_or(0.0) as u64).max(data.len() as u64);
    let xml = format!(
        "<volume>\n  <name>{}</name>\n  <capacity unit='bytes'>{capacity}</capacity>\n  <target>\n    <format type='{format}'/>\n  </target>\n</volume>\n",
        esc(name)
    );
    let vol = StorageVol::create_xml(pool, &xml, 0).map_err(err)?;
    if let Err(e) = upload(conn, &vol, &data) {
        let _ = vol.delete(0);
        return Err(e);
    }
    state(&vol, planned)
}

/// Streams `data` into the volume.
pub(crate) fn upload(conn: &Connect, vol: &StorageVol, data: &[u8]) -> Result<()> {
    let stream = virt::stream::Stream::new(conn, 0).map_err(err)?;
    vol.upload(&stream, 0, data.len() as u64, 0).map_err(err)?;
    let mut sent = 0;
    while sent < data.len() {
        let end = (sent + (1 << 20)).min(data.len());
        sent += stream.send(&data[sent..end]).map_err(err)? as usize;
    }
    stream.finish().map_err(err)
}

fn state(vol: &StorageVol, config: &Value) -> Result<Value> {
    let info = vol.info().map_err(err)?;
    let desc = vol.xml_desc(0).map_err(err)?;
    let doc = xml::parse(&desc)?;
    let format = doc
        .descendants()
        .find(|n| n.has_tag_name("format") && n.parent().is_some_and(|p| p.has_tag_name("target") && p.parent().is_some_and(|v| v.has_tag_name("volume"))))
        .and_then(|n| n.attribute("type"))
        .unwrap_or("raw");
    let pool = vol.lookup_storage_pool().map_err(err)?;
    Ok(Value::Map(BTreeMap::from([
        ("pool".to_owned(), Value::from(pool.name().map_err(err)?)),
        ("name".to_owned(), Value::from(vol.name().map_err(err)?)),
        // An uploaded image defines its own size unless one was asked for.
        ("size".to_owned(), if !config.get("source").is_null() && config.get("size").is_null() { Value::Null } else { Value::from(info.capacity as i64) }),
        ("format".to_owned(), {
            // Unset means qcow2, or whatever was detected in a source.
            let implied = config.get("source").is_null() && format == "qcow2" || !config.get("source").is_null();
            if config.get("format").is_null() && implied { Value::Null } else { Value::from(format) }
        }),
        ("base_volume".to_owned(), config.get("base_volume").clone()),
        ("source".to_owned(), config.get("source").clone()),
        ("path".to_owned(), Value::from(vol.path().map_err(err)?)),
        ("id".to_owned(), Value::from(vol.key().map_err(err)?)),
    ])))
}

pub fn read_all(conn: &Connect, wanted: &[(uuid::Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    // One listing per pool involved, not one lookup per volume.
    let mut pools: BTreeMap<String, Option<Vec<StorageVol>>> = BTreeMap::new();
    for (_, v) in wanted {
        let name = v.get("pool").as_str().unwrap_or_default().to_owned();
        if pools.contains_key(&name) {
            continue;
        }
        let vols = match crate::found(conn.lookup_storage_pool_by_name(&name))? {
            Some(p) => {
                let _ = p.refresh(0);
                Some(p.list_all_volumes(0).map_err(err)?)
            }
            None => None,
        };
        pools.insert(name, vols);
    }
    wanted
        .iter()
        .map(|(_, v)| {
            let vols = pools.get(v.get("pool").as_str().unwrap_or_default()).and_then(|p| p.as_ref());
            let found = vols.and_then(|vs| vs.iter().find(|vol| vol.name().ok().as_deref() == v.get("name").as_str()));
            found.map(|vol| state(vol, v)).transpose()
        })
        .collect()
}

/// A volume by pool and name (its identity).
pub(crate) fn find(conn: &Connect, v: &Value) -> Result<Option<StorageVol>> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_name(v.get("pool").as_str().unwrap_or_default()))? else {
        return Ok(None);
    };
    crate::found(pool.lookup_storage_vol_by_name(v.get("name").as_str().unwrap_or_default()))
}

pub fn update(conn: &Connect, prior: &Value, planned: &Value) -> Result<Value> {
    let vol = find(conn, prior)?.ok_or_else(|| ProviderError::new("the volume no longer exists"))?;
    if let (Some(old), Some(new)) = (prior.get("size").as_f64(), planned.get("size").as_f64()) {
        if new != old {
            let flags = if new < old { sys::VIR_STORAGE_VOL_RESIZE_SHRINK } else { 0 };
            vol.resize(new as u64, flags).map_err(err)?;
            if new > old {
                resize_in_running_guests(conn, &vol, new as u64)?;
            }
        }
    }
    state(&vol, planned)
}

/// Tells every running guest that uses the volume about its new size, so
/// the guest sees the bigger disk without a restart.
fn resize_in_running_guests(conn: &Connect, vol: &StorageVol, size: u64) -> Result<()> {
    let name = vol.name().map_err(err)?;
    let pool = vol.lookup_storage_pool().and_then(|p| p.name()).map_err(err)?;
    let path = vol.path().map_err(err)?;
    for dom in conn.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE).map_err(err)? {
        let desc = dom.xml_desc(0).map_err(err)?;
        let doc = xml::parse(&desc)?;
        for disk in doc.descendants().filter(|n| n.has_tag_name("disk")) {
            let Some(source) = disk.children().find(|c| c.has_tag_name("source")) else { continue };
            let uses = (source.attribute("pool") == Some(pool.as_str()) && source.attribute("volume") == Some(name.as_str()))
                || source.attribute("file") == Some(path.as_str());
            let target = disk.children().find(|c| c.has_tag_name("target")).and_then(|t| t.attribute("dev"));
            if let (true, Some(dev)) = (uses, target) {
                dom.block_resize(dev, size, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES).map_err(err)?;
            }
        }
    }
    Ok(())
}

pub fn delete(conn: &Connect, prior: &Value) -> Result<()> {
    match find(conn, prior)? {
        Some(vol) => vol.delete(0).map_err(err),
        None => Ok(()),
    }
}

/// Finds a volume for `import`, by `POOL/NAME` or by path.
pub fn lookup(conn: &Connect, import_id: &str) -> Result<Option<Imported>> {
    let vol = match import_id.split_once('/') {
        Some((pool, name)) if !import_id.starts_with('/') => {
            find(conn, &Value::object([("pool", Value::from(pool)), ("name", Value::from(name))]))?
        }
        _ => crate::found(conn.lookup_storage_vol_by_path(import_id))?,
    };
    vol.map(|v| Ok(Imported { state: state(&v, &Value::Null)?, id: None })).transpose()
}
