//! `ceph_rbd_image`: an RBD image, or a thin clone of a snapshot. Growing is
//! live; shrinking is `data-loss` and is undone exactly from an undo
//! snapshot. A replaced image is retired to the RBD trash until the apply
//! succeeds.

use crate::client::{CephClient, ImageInfo, ImageListing, NewImage, EEXIST};
use crate::{check_name, failed, whole, whole_or, IDENTITY_KEY, UNDO_SNAPSHOT_PREFIX};
use std::collections::{BTreeMap, BTreeSet};
use strata_provider::{
    Attribute, Block, Disruption, Imported, Instance, PlanResponse, ProviderError, Result, Type, UndoRecord, Undoable, Value,
};
use uuid::Uuid;

/// Per-image QoS limits: attribute → librbd option.
const QOS: [(&str, &str); 2] = [("qos_iops_limit", "rbd_qos_iops_limit"), ("qos_bps_limit", "rbd_qos_bps_limit")];

pub fn schema() -> Block {
    let mut block = Block::new("An RBD image in a pool; with `clone_of`, a thin copy-on-write clone of a snapshot.")
        .attr("pool", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr(
            "size",
            Attribute::required(Type::Number)
                .describe("Bytes (a whole number). Growing is live; shrinking discards the image's tail (`data-loss`), and rollback restores it from a snapshot."),
        )
        .attr(
            "features",
            Attribute::optional_computed(Type::Set(Box::new(Type::String)))
                .on_change(Disruption::Replace)
                .describe("Image features (`layering`, `exclusive-lock`, `object-map`, `fast-diff`, `deep-flatten`); default the cluster's."),
        )
        .attr("object_size", Attribute::optional_computed(Type::Number).on_change(Disruption::Replace).describe("Bytes per RADOS object (a power of two, default 4 MiB)."))
        .attr("data_pool", Attribute::optional(Type::String).on_change(Disruption::Replace).describe("A separate pool (e.g. erasure-coded) for the image's data."))
        .attr(
            "clone_of",
            Attribute::optional(Type::String)
                .on_change(Disruption::Replace)
                .describe("`pool/image@snapshot` to clone (a `ceph_rbd_snapshot`'s `id`); the clone shares the parent's data until written."),
        )
        .attr(
            "flatten",
            Attribute::optional(Type::Bool)
                .describe("Copy the parent's data into the clone and unlink it from the parent (live; the data do not change). Cannot be reversed: the plan says a rollback cannot restore the link."),
        );
    for (attr, _) in QOS {
        let unit = if attr == "qos_iops_limit" { "I/O operations per second" } else { "Bytes per second" };
        block = block.attr(attr, Attribute::optional(Type::Number).describe(&format!("{unit}; null: unlimited. Set as the image's `rbd_{attr}` configuration override, and read back from it.")));
    }
    block
        .attr("id", Attribute::computed(Type::String).describe("The image's RBD id (stable across renames)."))
        .attr("spec", Attribute::computed(Type::String).stable().describe("`pool/name`, as rbd, qemu and libvirt address the image (a `kvm_domain` disk's `rbd`); known at plan time across in-place updates."))
        .attr("parent", Attribute::computed(Type::String).describe("`pool/image@snapshot` of the parent, or null once flattened."))
        .attr("provisioned_bytes", Attribute::computed(Type::Number))
        .attr("used_bytes", Attribute::computed(Type::Number).describe("Bytes allocated, as of the last apply."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_name(config, "pool", &mut out);
    check_name(config, "name", &mut out);
    for attr in ["size", "object_size", "qos_iops_limit", "qos_bps_limit"] {
        if let Err(e) = whole(config.get(attr), attr) {
            out.push(e);
        }
    }
    if whole(config.get("size"), "size") == Ok(Some(0)) {
        out.push(("size".into(), "must be at least 1 byte".into()));
    }
    if let Ok(Some(n)) = whole(config.get("object_size"), "object_size") {
        if !n.is_power_of_two() || n < 4096 {
            out.push(("object_size".into(), format!("must be a power of two of at least 4096 bytes, not {n}")));
        }
    }
    if let Some(spec) = config.get("clone_of").as_str() {
        if parse_snapshot_spec(spec).is_none() {
            out.push(("clone_of".into(), format!("{spec:?} is not `pool/image@snapshot`")));
        }
    }
    out
}

/// `pool/image@snap` → (pool, image, snap).
pub fn parse_snapshot_spec(spec: &str) -> Option<(&str, &str, &str)> {
    let (pool, rest) = spec.split_once('/')?;
    let (image, snap) = rest.split_once('@')?;
    (!pool.is_empty() && !image.is_empty() && !snap.is_empty() && !snap.contains('@')).then_some((pool, image, snap))
}

fn spec_of(v: &Value) -> String {
    format!("{}/{}", v.get("pool").as_str().unwrap_or_default(), v.get("name").as_str().unwrap_or_default())
}

pub fn plan(prior: Option<&Value>, proposed: &Value) -> PlanResponse {
    let mut response = PlanResponse::default();
    let flattening = proposed.get("flatten").as_bool() == Some(true);
    if let Some((prior, parent)) = prior.and_then(|p| Some((p, p.get("parent").as_str()?))).filter(|_| flattening) {
        // The data do not change, but the link cannot be made again: a
        // clone is only ever made from a snapshot, and the image may be in
        // use (a guest's disk), so it cannot be swapped for a copy either.
        response.irreversible = Some(format!(
            "flattening {} unlinks it from {parent} for good; its data stay the same, but a rollback cannot make it a thin clone again (it keeps a full copy's space)",
            spec_of(prior)
        ));
    }
    let (Some(prior), Some(new)) = (prior, proposed.get("size").as_i64()) else { return response };
    if let Some(old) = prior.get("size").as_i64() {
        if new < old {
            response.disruptions.insert("size".into(), Disruption::DataLoss);
            response.notes.push(format!(
                "shrinking {} discards its last {} bytes; a snapshot `{UNDO_SNAPSHOT_PREFIX}…` is taken first so that a rollback restores them",
                spec_of(prior),
                old - new
            ));
        }
    }
    response
}

/// Features as the user sees them (`operations` is an internal op-feature
/// marker of v2 clones and their parents), in the configuration's order
/// when the sets agree.
fn features(actual: &[String], config: &Value) -> Value {
    let actual: BTreeSet<&str> = actual.iter().map(String::as_str).filter(|f| *f != "operations" && !f.is_empty()).collect();
    let wanted: Option<BTreeSet<&str>> = config.get("features").as_list().map(|l| l.iter().filter_map(Value::as_str).collect());
    if wanted.as_ref() == Some(&actual) {
        return config.get("features").clone();
    }
    Value::List(actual.into_iter().map(Value::from).collect())
}

/// A QoS limit as image-meta holds it (`conf_<option>`); 0 is unlimited.
fn qos_limit(meta: &BTreeMap<String, String>, option: &str) -> Value {
    match meta.get(&format!("conf_{option}")).and_then(|v| v.trim().parse::<i64>().ok()) {
        Some(n) if n > 0 => Value::from(n),
        _ => Value::Null,
    }
}

/// The full state from `rbd info` (after a create, update, import).
fn state_from_info(pool: &str, info: &ImageInfo, config: &Value, used: i64) -> Value {
    let parent = info.parent.as_ref().map(|p| Value::from(p.spec())).unwrap_or(Value::Null);
    let clone_of = match config.get("clone_of") {
        Value::Null if config.get("name").is_null() => parent.clone(),
        other => other.clone(),
    };
    let mut m: BTreeMap<String, Value> = BTreeMap::from([
        ("pool".into(), Value::from(pool)),
        ("name".into(), Value::from(info.name.as_str())),
        ("size".into(), Value::from(info.size)),
        ("features".into(), features(&info.features, config)),
        ("object_size".into(), Value::from(info.object_size)),
        ("data_pool".into(), info.data_pool.as_deref().map(Value::from).unwrap_or(Value::Null)),
        ("clone_of".into(), clone_of),
        ("flatten".into(), config.get("flatten").clone()),
        ("id".into(), Value::from(info.id.as_str())),
        ("spec".into(), Value::from(format!("{pool}/{}", info.name))),
        ("parent".into(), parent),
        ("provisioned_bytes".into(), Value::from(info.size)),
        ("used_bytes".into(), Value::from(used)),
    ]);
    for (attr, _) in QOS {
        m.insert(attr.into(), config.get(attr).clone());
    }
    Value::Map(m.into())
}

/// The state from a pool listing: everything but usage, which moves with
/// every write and is kept from `prior` (the last apply).
fn state_from_listing(prior: &Value, pool: &str, entry: &ImageListing) -> Value {
    let mut state = prior.clone();
    if let Value::Map(m) = &mut state {
        m.insert("pool".into(), Value::from(pool));
        m.insert("name".into(), Value::from(entry.name.as_str()));
        m.insert("size".into(), Value::from(entry.size));
        m.insert("features".into(), features(&entry.features, prior));
        m.insert("object_size".into(), Value::from(entry.object_size));
        m.insert("data_pool".into(), entry.data_pool.as_deref().map(Value::from).unwrap_or(Value::Null));
        m.insert("id".into(), Value::from(entry.id.as_str()));
        m.insert("spec".into(), Value::from(format!("{pool}/{}", entry.name)));
        m.insert("parent".into(), entry.parent.as_ref().map(|p| Value::from(p.spec())).unwrap_or(Value::Null));
        m.insert("provisioned_bytes".into(), Value::from(entry.size));
        for (attr, option) in QOS {
            m.insert(attr.into(), qos_limit(&entry.meta, option));
        }
    }
    state
}

async fn read_one(c: &dyn CephClient, spec: &str, config: &Value) -> Result<Value> {
    let pool = spec.split('/').next().unwrap_or_default();
    let what = format!("image {spec}");
    let (info, usage) = tokio::try_join!(c.image_info(spec), c.usage(spec)).map_err(|e| failed(&what, e))?;
    let used = usage.iter().find(|u| u.snapshot.is_none()).map_or(0, |u| u.used_size);
    Ok(state_from_info(pool, &info, config, used))
}

async fn set_qos(c: &dyn CephClient, spec: &str, from: &Value, to: &Value) -> Result<()> {
    for (attr, option) in QOS {
        let want = whole(to.get(attr), attr).ok().flatten();
        if want != whole(from.get(attr), attr).ok().flatten() {
            let value = want.map(|n| n.to_string());
            c.image_config(spec, option, value.as_deref()).await.map_err(|e| failed(&format!("image {spec}: set {attr}"), e))?;
        }
    }
    Ok(())
}

/// A write that timed out usually met a pool over its quota: say so when
/// the pool's flags confirm it.
async fn explain_timeout(c: &dyn CephClient, pool: &str, result: Result<Value>) -> Result<Value> {
    let Err(e) = &result else { return result };
    if !e.message.contains("ETIMEDOUT") {
        return result;
    }
    let Ok(pools) = c.pools().await else { return result };
    match pools.iter().find(|p| p.pool_name == pool) {
        Some(p) if p.flags_names.split(',').any(|f| f == "full_quota" || f == "full") => Err(ProviderError::new(format!(
            "{}; pool {pool} is full (quota {} bytes, {} objects): writes block until the quota is raised or data is removed",
            e.message, p.quota_max_bytes, p.quota_max_objects
        ))),
        _ => result,
    }
}

pub async fn create(c: &dyn CephClient, id: Uuid, planned: &Value) -> Result<Value> {
    let pool = planned.get("pool").as_str().unwrap_or_default();
    explain_timeout(c, pool, create_image(c, id, planned).await).await
}

/// The name an image is made under before it takes its own: derived from
/// the identity, so an image left by a crash is still found and finished
/// (user names cannot start with '.').
fn making_name(id: Uuid) -> String {
    format!(".strata-{id}")
}

/// Makes the image under [`making_name`], tags it and sets it up, then
/// renames it into place: until the rename the final name is untouched, and
/// after it the image carries its identity.
async fn create_image(c: &dyn CephClient, id: Uuid, planned: &Value) -> Result<Value> {
    let pool = planned.get("pool").as_str().unwrap_or_default();
    let name = planned.get("name").as_str().unwrap_or_default();
    let target = format!("{pool}/{name}");
    let what = format!("image {target}");
    let making = making_name(id);
    let spec = format!("{pool}/{making}");

    let size = whole_or(planned.get("size"), 0);
    let clone_of = planned.get("clone_of").as_str();
    let features = planned.get("features").as_list().map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect());
    let new = NewImage {
        pool,
        name: &making,
        size,
        features,
        object_size: whole(planned.get("object_size"), "object_size").ok().flatten(),
        data_pool: planned.get("data_pool").as_str(),
        clone_of,
    };
    c.create_image(&new).await.map_err(|e| match (clone_of, e.is_missing()) {
        (Some(parent), true) => ProviderError::new(format!("{what}: the snapshot to clone, {parent}, does not exist ({e})")),
        _ => failed(&what, e),
    })?;
    let made = async {
        c.meta_set(&spec, IDENTITY_KEY, &id.to_string()).await.map_err(|e| failed(&what, e))?;
        if clone_of.is_some() {
            // A clone starts at its parent's size.
            let info = c.image_info(&spec).await.map_err(|e| failed(&what, e))?;
            if info.size as u64 != size {
                c.resize(&spec, size, true).await.map_err(|e| failed(&what, e))?;
            }
        }
        // A clone starts with its parent's image-meta, QoS overrides included.
        let inherited = match clone_of {
            Some(_) => c.meta_list(&spec).await.map_err(|e| failed(&what, e))?,
            None => BTreeMap::new(),
        };
        let start = Value::object(QOS.map(|(attr, option)| (attr, qos_limit(&inherited, option))));
        set_qos(c, &spec, &start, planned).await?;
        if planned.get("flatten").as_bool() == Some(true) && clone_of.is_some() {
            c.flatten(&spec).await.map_err(|e| failed(&what, e))?;
        }
        Ok::<(), ProviderError>(())
    }
    .await;
    if let Err(e) = made {
        let _ = c.remove_image(&spec).await;
        return Err(e);
    }
    if let Err(e) = c.rename(&spec, name).await {
        let _ = c.remove_image(&spec).await;
        return Err(match e.errno {
            Some(EEXIST) => ProviderError::new(format!("{what} already exists; adopt it with `strata import` instead")),
            _ => failed(&what, e),
        });
    }
    // A new image (or clone) has nothing of its own allocated yet.
    let info = c.image_info(&target).await.map_err(|e| failed(&what, e))?;
    Ok(state_from_info(pool, &info, planned, 0))
}

pub async fn read_all(c: &dyn CephClient, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
    let listings = crate::list_pools(c, instances.iter().filter_map(|i| i.state.get("pool").as_str())).await?;
    Ok(instances
        .iter()
        .map(|i| {
            let pool = i.state.get("pool").as_str()?;
            let entries = listings.get(pool)?;
            // By RBD id, which survives renames; by name for a record that
            // has none yet.
            let entry = match i.state.get("id").as_str() {
                Some(id) => entries.iter().find(|e| e.id == id),
                None => entries.iter().find(|e| Some(e.name.as_str()) == i.state.get("name").as_str()),
            }?;
            Some(state_from_listing(i.state, pool, entry))
        })
        .collect())
}

pub async fn find(c: &dyn CephClient, id: Uuid, planned: &Value) -> Result<Option<Value>> {
    let spec = spec_of(planned);
    let what = format!("image {spec}");
    match c.meta_get(&spec, IDENTITY_KEY).await {
        Ok(Some(tag)) if tag == id.to_string() => return Ok(Some(read_one(c, &spec, planned).await?)),
        Ok(_) => {}
        Err(e) if e.is_missing() => {}
        Err(e) => return Err(failed(&what, e)),
    }
    // A create interrupted before its rename: the image is ours by the
    // name it was made under. It may lack its set-up; removing it lets the
    // engine's create start over cleanly.
    let pool = planned.get("pool").as_str().unwrap_or_default();
    match c.remove_image(&format!("{pool}/{}", making_name(id))).await {
        Ok(()) => Ok(None),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(failed(&format!("{what}: remove the half-made {}", making_name(id)), e)),
    }
}

pub async fn update(c: &dyn CephClient, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
    let pool = prior.get("pool").as_str().unwrap_or_default();
    explain_timeout(c, pool, update_image(c, prior, planned, undo).await).await
}

async fn update_image(c: &dyn CephClient, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
    let spec = spec_of(prior);
    let what = format!("image {spec}");
    if let Some(record) = undo {
        // Secure the undo point before changing anything.
        let snap = undo_snapshot(record)?;
        match c.snap_create(&format!("{spec}@{snap}")).await {
            Ok(()) => {}
            Err(e) if e.errno == Some(EEXIST) => {}
            Err(e) => return Err(failed(&format!("{what}: undo snapshot {snap}"), e)),
        }
    }
    let (old, new) = (whole_or(prior.get("size"), 0), whole_or(planned.get("size"), 0));
    if old != new {
        c.resize(&spec, new, new < old).await.map_err(|e| failed(&what, e))?;
    }
    set_qos(c, &spec, prior, planned).await?;
    if planned.get("flatten").as_bool() == Some(true) && !prior.get("parent").is_null() {
        c.flatten(&spec).await.map_err(|e| failed(&what, e))?;
    }
    read_one(c, &spec, planned).await
}

pub async fn delete(c: &dyn CephClient, prior: &Value) -> Result<()> {
    let spec = spec_of(prior);
    match c.remove_image(&spec).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&format!("image {spec}"), e)),
    }
}

pub async fn lookup(c: &dyn CephClient, import_id: &str) -> Result<Option<Imported>> {
    let Some((pool, _)) = import_id.split_once('/').filter(|(p, n)| !p.is_empty() && !n.is_empty() && !n.contains('@')) else {
        return Err(ProviderError::new(format!("import ID {import_id:?} is not `pool/image`")));
    };
    match c.image_info(import_id).await {
        Ok(_) => {}
        Err(e) if e.is_missing() => return Ok(None),
        Err(e) => return Err(failed(&format!("image {import_id}"), e)),
    }
    // No configuration yet (null name): `clone_of` reads as the parent.
    let config = Value::object([("pool", Value::from(pool))]);
    Ok(Some(Imported { state: read_one(c, import_id, &config).await?, id: None }))
}

/// Adopts an image by `pool/image` and tags it with the engine's identity.
pub async fn import(c: &dyn CephClient, id: Uuid, import_id: &str) -> Result<Imported> {
    let imported = lookup(c, import_id).await?.ok_or_else(|| ProviderError::new(format!("no image {import_id:?} to import")))?;
    c.meta_set(import_id, IDENTITY_KEY, &id.to_string()).await.map_err(|e| failed(&format!("image {import_id}"), e))?;
    Ok(imported)
}

// Undo points.

/// A shrink gets a snapshot to roll back to; a replacement gets the trash.
/// Nothing is changed here.
pub fn prepare_undo(change: Undoable<'_>) -> Option<UndoRecord> {
    let token = &Uuid::new_v4().simple().to_string()[..12];
    match change {
        Undoable::Update { prior, planned } => {
            let (old, new) = (whole_or(prior.get("size"), 0), whole_or(planned.get("size"), 0));
            (new < old).then(|| {
                UndoRecord(Value::object([
                    ("kind", Value::from("snapshot")),
                    ("snapshot", Value::from(format!("{UNDO_SNAPSHOT_PREFIX}{token}"))),
                    ("size", Value::from(old as i64)),
                    ("prior", prior.clone().deep_unmark()),
                ]))
            })
        }
        Undoable::Retire { prior } => Some(UndoRecord(Value::object([("kind", Value::from("trash")), ("prior", prior.clone().deep_unmark())]))),
        // An import only adds the strata-id image-meta; a forgotten import
        // leaves it, naming no live instance.
        Undoable::Import { .. } => None,
    }
}

fn undo_snapshot(record: &UndoRecord) -> Result<&str> {
    match record.0.get("snapshot").as_str() {
        Some(s) if s.starts_with(UNDO_SNAPSHOT_PREFIX) && !s.contains(['/', '@']) => Ok(s),
        _ => Err(malformed(record)),
    }
}

fn malformed(record: &UndoRecord) -> ProviderError {
    ProviderError::new(format!("malformed ceph_rbd_image undo record {}", record.0))
}

fn record_prior(record: &UndoRecord) -> Result<&Value> {
    let prior = record.0.get("prior");
    if prior.get("pool").as_str().is_none() || prior.get("name").as_str().is_none() {
        return Err(malformed(record));
    }
    Ok(prior)
}

/// The image as the prior state names it, and whether it has `snapshot`.
async fn find_in_pool(c: &dyn CephClient, prior: &Value, snapshot: Option<&str>) -> Result<(Option<ImageListing>, bool)> {
    let pool = prior.get("pool").as_str().unwrap_or_default();
    let name = prior.get("name").as_str().unwrap_or_default();
    let mut listings = crate::list_pools(c, [pool]).await?;
    let image = listings.remove(pool).unwrap_or_default().into_iter().find(|e| e.name == name);
    let has_snap = snapshot.is_some_and(|s| image.as_ref().is_some_and(|i| i.snapshots.iter().any(|snap| snap.name == s)));
    Ok((image, has_snap))
}

pub async fn retire(c: &dyn CephClient, prior: &Value, _record: &UndoRecord) -> Result<()> {
    let spec = spec_of(prior);
    match c.trash_move(&spec).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&format!("image {spec}: move to trash"), e)),
    }
}

pub async fn undo(c: &dyn CephClient, record: &UndoRecord) -> Result<Value> {
    let prior = record_prior(record)?;
    let spec = spec_of(prior);
    let what = format!("image {spec}");
    let pool = prior.get("pool").as_str().unwrap_or_default();
    match record.0.get("kind").as_str() {
        Some("snapshot") => {
            let snap = undo_snapshot(record)?;
            let (image, has_snap) = find_in_pool(c, prior, Some(snap)).await?;
            let image = image.ok_or_else(|| ProviderError::new(format!("{what} no longer exists; nothing to roll back")))?;
            if has_snap {
                // Rollback rewrites the blocks the snapshot holds; the image
                // must first be as large as it was.
                let size = whole_or(record.0.get("size"), 0);
                if (image.size as u64) < size {
                    c.resize(&spec, size, false).await.map_err(|e| failed(&what, e))?;
                }
                let snap_spec = format!("{spec}@{snap}");
                c.snap_rollback(&snap_spec).await.map_err(|e| failed(&format!("{what}: roll back to {snap}"), e))?;
                remove_snapshot(c, &snap_spec).await?;
            }
            // Without the snapshot the update never began: the image is as it was.
            read_one(c, &spec, prior).await
        }
        Some("trash") => {
            let id = prior.get("id").as_str().ok_or_else(|| malformed(record))?;
            let trashed = c.trash_list(pool).await.map_err(|e| failed(&format!("trash of pool {pool}"), e))?;
            if trashed.iter().any(|(t, _)| t == id) {
                let name = prior.get("name").as_str().unwrap_or_default();
                c.trash_restore(pool, id, name).await.map_err(|e| failed(&format!("{what}: restore from trash"), e))?;
            }
            read_one(c, &spec, prior).await
        }
        _ => Err(malformed(record)),
    }
}

async fn remove_snapshot(c: &dyn CephClient, snap_spec: &str) -> Result<()> {
    match c.snap_remove(snap_spec).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&format!("snapshot {snap_spec}"), e)),
    }
}

pub async fn discard_undo(c: &dyn CephClient, record: &UndoRecord) -> Result<()> {
    let prior = record_prior(record)?;
    let pool = prior.get("pool").as_str().unwrap_or_default();
    match record.0.get("kind").as_str() {
        Some("snapshot") => remove_snapshot(c, &format!("{}@{}", spec_of(prior), undo_snapshot(record)?)).await,
        Some("trash") => {
            let id = prior.get("id").as_str().ok_or_else(|| malformed(record))?;
            match c.trash_remove(pool, id).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_missing() => Ok(()),
                Err(e) => Err(failed(&format!("trashed image {pool}/{id}"), e)),
            }
        }
        _ => Err(malformed(record)),
    }
}
