//! `kvm_volume`: a volume in a libvirt storage pool, found by pool and name.
//! Growing it is a live resize; shrinking it loses data.
//!
//! A volume cannot carry the instance identity, so Strata must never take a
//! volume it did not create: a create refuses a name that is taken, and the
//! engine asks [`name_is_free`] before it journals the create. For undo, a
//! replaced volume is kept aside under another name until the apply ends
//! (a rename in a local directory pool, else a clone), and a shrink first
//! keeps a full copy aside.

use crate::undo;
use crate::xml::{self, esc};
use crate::err;
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, PlanResponse, ProviderError, Result, Type, UndoRecord, Value};
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

/// The volume of that pool and name as it is now.
pub(crate) enum Lookup {
    Found(StorageVol),
    Missing,
    /// The pool exists but is not started: its volumes cannot be listed.
    PoolInactive,
}

/// A volume by pool and name (its identity), after a pool refresh so that
/// files put into a directory pool behind libvirt's back count too.
pub(crate) fn lookup_named(conn: &Connect, v: &Value) -> Result<Lookup> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_name(v.get("pool").as_str().unwrap_or_default()))? else {
        return Ok(Lookup::Missing);
    };
    if !pool.is_active().map_err(err)? {
        return Ok(Lookup::PoolInactive);
    }
    let _ = pool.refresh(0);
    Ok(match crate::found(pool.lookup_storage_vol_by_name(v.get("name").as_str().unwrap_or_default()))? {
        Some(vol) => Lookup::Found(vol),
        None => Lookup::Missing,
    })
}

/// Whether a create of `planned` would take a name nobody uses. A missing
/// pool counts as free (the create then fails naming the pool); an
/// inactive one cannot be checked.
pub fn name_is_free(conn: &Connect, planned: &Value) -> Result<bool> {
    match lookup_named(conn, planned)? {
        Lookup::Found(_) => Ok(false),
        Lookup::Missing => Ok(true),
        Lookup::PoolInactive => Err(inactive_pool(planned)),
    }
}

fn inactive_pool(v: &Value) -> ProviderError {
    ProviderError::new(format!(
        "storage pool {:?} is not active, so its volumes cannot be read; start it (a plan proposes it for a kvm_pool Strata manages)",
        v.get("pool").as_str().unwrap_or_default()
    ))
}

/// What the error of a create whose name is taken says (see [`already_exists`]).
pub(crate) const TAKEN: &str = "already exists in pool";

/// The error of a create whose name is already taken: the volume there is
/// not Strata's, and nothing touches it.
pub(crate) fn already_exists(v: &Value) -> ProviderError {
    let (pool, name) = (v.get("pool").as_str().unwrap_or_default(), v.get("name").as_str().unwrap_or_default());
    ProviderError::new(format!(
        "volume {name:?} {TAKEN} {pool:?}; Strata did not create it and leaves it untouched. To manage it, use strata import with the ID {pool}/{name}"
    ))
}

/// Refuses a create whose name is taken (see [`already_exists`]).
pub(crate) fn refuse_taken(conn: &Connect, planned: &Value) -> Result<()> {
    if name_is_free(conn, planned)? { Ok(()) } else { Err(already_exists(planned)) }
}

pub fn create(conn: &Connect, planned: &Value) -> Result<Value> {
    refuse_taken(conn, planned)?;
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
    let vol = create_xml(&pool, &xml, planned)?;
    state(&vol, planned)
}

/// `virStorageVolCreateXML`, with "the name is taken" (lost a race with
/// someone else) told as [`already_exists`].
pub(crate) fn create_xml(pool: &StoragePool, xml: &str, planned: &Value) -> Result<StorageVol> {
    use virt::enumutil::Enum;
    crate::calls::with_xml("virStorageVolCreateXML", xml, |x| StorageVol::create_xml(pool, x, 0)).map_err(|e| match e.code() {
        Enum::Known(virt::error::ErrorNumber::StorageVolExist) => already_exists(planned),
        _ => err(e),
    })
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
    let vol = create_xml(pool, &xml, planned)?;
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
    let format = volume_format(&doc);
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
    ]).into()))
}

pub fn read_all(conn: &Connect, wanted: &[(uuid::Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    // One listing per pool involved, not one lookup per volume.
    let mut pools: BTreeMap<String, Listing> = BTreeMap::new();
    for (_, v) in wanted {
        let name = v.get("pool").as_str().unwrap_or_default().to_owned();
        if pools.contains_key(&name) {
            continue;
        }
        let listing = match crate::found(conn.lookup_storage_pool_by_name(&name))? {
            Some(p) if !p.is_active().map_err(err)? => Listing::Inactive,
            Some(p) => {
                let _ = p.refresh(0);
                Listing::Volumes(crate::calls::call("virStoragePoolListAllVolumes", || p.list_all_volumes(0)).map_err(err)?)
            }
            None => Listing::NoPool,
        };
        pools.insert(name, listing);
    }
    wanted
        .iter()
        .map(|(_, v)| match pools.get(v.get("pool").as_str().unwrap_or_default()) {
            Some(Listing::Volumes(vols)) => {
                vols.iter().find(|vol| vol.name().ok().as_deref() == v.get("name").as_str()).map(|vol| state(vol, v)).transpose()
            }
            // A stopped pool hides its volumes but does not delete them:
            // they keep their recorded state until the pool runs again.
            Some(Listing::Inactive) => Ok(Some(v.clone())),
            _ => Ok(None),
        })
        .collect()
}

/// What one pool holds, for a batch refresh.
enum Listing {
    Volumes(Vec<StorageVol>),
    Inactive,
    NoPool,
}

/// Finds the volume an interrupted create of `planned` may have made. Only
/// called for creates whose name was free just before (the engine asks
/// [`name_is_free`] first), so a volume of that name is the one it made.
/// In a stopped pool nothing can be read: the volume is taken as planned
/// until the pool runs again and refresh reads the truth (an error here
/// would block the very apply that starts the pool).
pub fn find_created(conn: &Connect, planned: &Value) -> Result<Option<Value>> {
    match lookup_named(conn, planned)? {
        Lookup::Found(vol) => state(&vol, planned).map(Some),
        Lookup::Missing => Ok(None),
        Lookup::PoolInactive => Ok(Some(planned.clone())),
    }
}

/// A volume by pool and name (its identity).
pub(crate) fn find(conn: &Connect, v: &Value) -> Result<Option<StorageVol>> {
    let Some(pool) = crate::found(conn.lookup_storage_pool_by_name(v.get("pool").as_str().unwrap_or_default()))? else {
        return Ok(None);
    };
    crate::found(pool.lookup_storage_vol_by_name(v.get("name").as_str().unwrap_or_default()))
}

pub fn update(conn: &Connect, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
    let vol = find(conn, prior)?.ok_or_else(|| ProviderError::new("the volume no longer exists"))?;
    if let (Some(old), Some(new)) = (prior.get("size").as_f64(), planned.get("size").as_f64()) {
        if new != old {
            if let (Some(rec), true) = (undo, new < old) {
                // The undo point: a full copy of the volume before it shrinks.
                let copy = undo::text(rec, "copy")?;
                if find_in_pool(&vol, copy)?.is_none() {
                    copy_volume(&vol, copy)?;
                }
            }
            let flags = if new < old { sys::VIR_STORAGE_VOL_RESIZE_SHRINK } else { 0 };
            vol.resize(new as u64, flags).map_err(err)?;
            if new > old {
                resize_in_running_guests(conn, &vol, new as u64)?;
            }
        }
    }
    state(&vol, planned)
}

/// The undo record of a shrink (a copy kept aside) or of a retirement (the
/// volume itself kept aside); `None` for a grow, which re-applying the prior
/// size undoes.
pub fn prepare_undo(prior: &Value, planned: Option<&Value>) -> Option<UndoRecord> {
    let name = prior.get("name").as_str().unwrap_or_default();
    let fields = |key: &'static str, kind: &str| {
        [("pool", prior.get("pool").clone()), ("name", Value::from(name)), (key, Value::from(undo::aside_name(name, kind))), ("prior", prior.clone())]
    };
    match planned {
        None => Some(undo::record(undo::RETIRE, fields("aside", "retired"))),
        Some(planned) => {
            let shrinks = matches!((prior.get("size").as_f64(), planned.get("size").as_f64()), (Some(old), Some(new)) if new < old);
            shrinks.then(|| undo::record(undo::SHRINK, fields("copy", "unshrunk")))
        }
    }
}

/// Moves the volume out of its place, under the record's aside name.
pub fn retire(conn: &Connect, local: bool, rec: &UndoRecord) -> Result<()> {
    let at = |name: &str| Value::object([("pool", rec.0.get("pool").clone()), ("name", Value::from(name))]);
    match lookup_named(conn, &at(undo::text(rec, "name")?))? {
        Lookup::Found(vol) => move_volume(local, &vol, undo::text(rec, "aside")?).map(drop),
        // Already retired (a retry), or gone: nothing to keep aside.
        Lookup::Missing => Ok(()),
        Lookup::PoolInactive => Err(inactive_pool(&rec.0)),
    }
}

/// Puts back what the record kept aside: a retired volume, or the copy
/// taken before a shrink. Idempotent: without the kept volume there is
/// nothing to put back (the operation never got that far, or this already
/// ran), and the volume in place is the one to keep.
pub fn undo(conn: &Connect, local: bool, rec: &UndoRecord) -> Result<Value> {
    state(&put_back(conn, local, rec)?, rec.0.get("prior"))
}

/// [`undo`]'s work, shared with cloud-init seeds: returns the volume in place.
pub(crate) fn put_back(conn: &Connect, local: bool, rec: &UndoRecord) -> Result<StorageVol> {
    let name = undo::text(rec, "name")?;
    let kept_key = if undo::op(rec) == undo::SHRINK { "copy" } else { "aside" };
    let kept_name = undo::text(rec, kept_key)?;
    let at = |name: &str| Value::object([("pool", rec.0.get("pool").clone()), ("name", Value::from(name))]);
    let kept = match lookup_named(conn, &at(kept_name))? {
        Lookup::Found(vol) => Some(vol),
        Lookup::Missing => None,
        Lookup::PoolInactive => return Err(inactive_pool(&rec.0)),
    };
    let in_place = find(conn, &at(name))?;
    let restored = match (kept, in_place) {
        (Some(kept), Some(current)) if undo::op(rec) == undo::SHRINK => {
            current.delete(0).map_err(err)?;
            move_volume(local, &kept, name)?
        }
        (Some(_), Some(_)) => {
            return Err(ProviderError::new(format!(
                "cannot bring volume {name:?} back: a volume of that name exists again; the original is kept as {kept_name:?}"
            )))
        }
        (Some(kept), None) => move_volume(local, &kept, name)?,
        (None, Some(current)) => current,
        (None, None) => return Err(ProviderError::new(format!("volume {name:?} is gone and nothing was kept aside to restore it"))),
    };
    Ok(restored)
}

/// Deletes what the record kept aside, once the apply no longer needs it.
pub fn discard_undo(conn: &Connect, rec: &UndoRecord) -> Result<()> {
    let kept_key = if undo::op(rec) == undo::SHRINK { "copy" } else { "aside" };
    let kept = Value::object([("pool", rec.0.get("pool").clone()), ("name", Value::from(undo::text(rec, kept_key)?))]);
    match lookup_named(conn, &kept)? {
        Lookup::Found(vol) => vol.delete(0).map_err(err),
        Lookup::Missing => Ok(()),
        Lookup::PoolInactive => Err(inactive_pool(&rec.0)),
    }
}

fn find_in_pool(vol: &StorageVol, name: &str) -> Result<Option<StorageVol>> {
    let pool = vol.lookup_storage_pool().map_err(err)?;
    crate::found(pool.lookup_storage_vol_by_name(name))
}

/// A full copy of `vol` named `name` in the same pool (libvirt copies the
/// data; a thin clone's backing chain is flattened into the copy).
fn copy_volume(vol: &StorageVol, name: &str) -> Result<StorageVol> {
    let pool = vol.lookup_storage_pool().map_err(err)?;
    if let Some(stale) = crate::found(pool.lookup_storage_vol_by_name(name))? {
        // A copy an earlier attempt did not finish.
        stale.delete(0).map_err(err)?;
    }
    let info = vol.info().map_err(err)?;
    let desc = vol.xml_desc(0).map_err(err)?;
    let doc = xml::parse(&desc)?;
    let format = volume_format(&doc);
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{}</capacity><target><format type='{}'/></target></volume>",
        esc(name),
        info.capacity,
        esc(format)
    );
    crate::calls::with_xml("virStorageVolCreateXMLFrom", &xml, |x| StorageVol::create_xml_from(&pool, x, vol, 0)).map_err(err)
}

/// Gives a volume another name in its pool: a rename of the file in a local
/// directory pool (instant, keeps the file as it is), else a copy and a
/// delete.
fn move_volume(local: bool, vol: &StorageVol, name: &str) -> Result<StorageVol> {
    let pool = vol.lookup_storage_pool().map_err(err)?;
    let pool_doc_xml = pool.xml_desc(0).map_err(err)?;
    let is_dir = xml::parse(&pool_doc_xml)?.root_element().attribute("type") == Some("dir");
    let path = std::path::PathBuf::from(vol.path().map_err(err)?);
    if local && is_dir && path.exists() {
        let target = path.with_file_name(name);
        std::fs::rename(&path, &target).map_err(|e| ProviderError::new(format!("rename {} to {}: {e}", path.display(), target.display())))?;
        pool.refresh(0).map_err(err)?;
        return pool.lookup_storage_vol_by_name(name).map_err(err);
    }
    let copy = copy_volume(vol, name)?;
    vol.delete(0).map_err(err)?;
    Ok(copy)
}

fn volume_format<'a>(doc: &'a roxmltree::Document) -> &'a str {
    doc.descendants()
        .find(|n| n.has_tag_name("format") && n.parent().is_some_and(|p| p.has_tag_name("target") && p.parent().is_some_and(|v| v.has_tag_name("volume"))))
        .and_then(|n| n.attribute("type"))
        .unwrap_or("raw")
}

/// Tells every running guest that uses the volume about its new size, so
/// the guest sees the bigger disk without a restart.
fn resize_in_running_guests(conn: &Connect, vol: &StorageVol, size: u64) -> Result<()> {
    let name = vol.name().map_err(err)?;
    let pool = vol.lookup_storage_pool().and_then(|p| p.name()).map_err(err)?;
    let path = vol.path().map_err(err)?;
    for dom in crate::calls::call("virConnectListAllDomains", || conn.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)).map_err(err)? {
        // A guest undefined since the listing no longer uses the volume.
        let Some(desc) = crate::found(dom.xml_desc(0))? else { continue };
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
