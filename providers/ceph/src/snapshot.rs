//! `ceph_rbd_snapshot`: a snapshot of an RBD image, optionally protected (a
//! golden image's snapshot that clones are made from). Snapshots cannot
//! carry the instance identity, so they are found by `image@name`.

use crate::client::{CephClient, ImageListing, SnapshotListing};
use crate::image::parse_snapshot_spec;
use crate::{check_name, failed};
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, Imported, Instance, ProviderError, Result, Type, Value};

pub fn schema() -> Block {
    Block::new("A snapshot of an RBD image.")
        .attr("image", Attribute::required(Type::String).on_change(Disruption::Replace).describe("`pool/image` (a `ceph_rbd_image`'s `spec`)."))
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("protected", Attribute::optional(Type::Bool).describe("Protect the snapshot from removal (needed for clones by pre-Mimic clients)."))
        .attr("id", Attribute::computed(Type::String).describe("`pool/image@name`, what `ceph_rbd_image.clone_of` takes."))
        .attr("size", Attribute::computed(Type::Number).describe("The image's size when the snapshot was taken."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    check_name(config, "name", &mut out);
    if let Some(image) = config.get("image").as_str() {
        if image.split_once('/').is_none_or(|(p, i)| p.is_empty() || i.is_empty() || i.contains(['/', '@'])) {
            out.push(("image".into(), format!("{image:?} is not `pool/image`")));
        }
    }
    out
}

fn spec(v: &Value) -> String {
    format!("{}@{}", v.get("image").as_str().unwrap_or_default(), v.get("name").as_str().unwrap_or_default())
}

fn state(image: &str, entry: &SnapshotListing, config: &Value) -> Value {
    Value::object([
        ("image", Value::from(image)),
        ("name", Value::from(entry.name.as_str())),
        // Unprotected reads back as false; keep the user's null.
        ("protected", if !entry.protected && config.get("protected").is_null() { Value::Null } else { Value::Bool(entry.protected) }),
        ("id", Value::from(format!("{image}@{}", entry.name))),
        ("size", Value::from(entry.size)),
    ])
}

/// The images (with their snapshots) of the pools the instances live in,
/// in one listing.
async fn listings<'a>(c: &dyn CephClient, images: impl Iterator<Item = &'a str>) -> Result<BTreeMap<String, Vec<ImageListing>>> {
    crate::list_pools(c, images.filter_map(|i| i.split('/').next())).await
}

fn find<'a>(all: &'a BTreeMap<String, Vec<ImageListing>>, image: &str, name: &str) -> Option<&'a SnapshotListing> {
    let (pool, image) = image.split_once('/')?;
    all.get(pool)?.iter().find(|e| e.name == image)?.snapshots.iter().find(|s| s.name == name)
}

pub async fn read_all(c: &dyn CephClient, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
    let all = listings(c, instances.iter().filter_map(|i| i.state.get("image").as_str())).await?;
    Ok(instances
        .iter()
        .map(|i| {
            let image = i.state.get("image").as_str()?;
            find(&all, image, i.state.get("name").as_str()?).map(|e| state(image, e, i.state))
        })
        .collect())
}

async fn read_one(c: &dyn CephClient, config: &Value) -> Result<Value> {
    let image = config.get("image").as_str().unwrap_or_default();
    let all = listings(c, std::iter::once(image)).await?;
    find(&all, image, config.get("name").as_str().unwrap_or_default())
        .map(|e| state(image, e, config))
        .ok_or_else(|| ProviderError::new(format!("snapshot {} vanished", spec(config))))
}

pub async fn name_is_free(c: &dyn CephClient, planned: &Value) -> Result<bool> {
    let image = planned.get("image").as_str().unwrap_or_default();
    let all = listings(c, std::iter::once(image)).await?;
    Ok(find(&all, image, planned.get("name").as_str().unwrap_or_default()).is_none())
}

async fn set_protected(c: &dyn CephClient, snap: &str, protect: bool) -> Result<()> {
    match c.snap_protect(snap, protect).await {
        Ok(()) => Ok(()),
        // Already in the wanted state.
        Err(e) if e.errno == Some(16) || e.errno == Some(22) => Ok(()),
        Err(e) => Err(failed(&format!("snapshot {snap}"), e)),
    }
}

pub async fn create(c: &dyn CephClient, planned: &Value) -> Result<Value> {
    let snap = spec(planned);
    c.snap_create(&snap).await.map_err(|e| failed(&format!("snapshot {snap}"), e))?;
    if planned.get("protected").as_bool() == Some(true) {
        if let Err(e) = set_protected(c, &snap, true).await {
            let _ = c.snap_remove(&snap).await;
            return Err(e);
        }
    }
    read_one(c, planned).await
}

pub async fn update(c: &dyn CephClient, planned: &Value) -> Result<Value> {
    set_protected(c, &spec(planned), planned.get("protected").as_bool() == Some(true)).await?;
    read_one(c, planned).await
}

pub async fn delete(c: &dyn CephClient, prior: &Value) -> Result<()> {
    let snap = spec(prior);
    if prior.get("protected").as_bool() == Some(true) {
        match c.snap_protect(&snap, false).await {
            Ok(()) => {}
            Err(e) if e.is_missing() => return Ok(()),
            Err(e) if e.errno == Some(22) => {} // not protected any more
            Err(e) => return Err(failed(&format!("snapshot {snap}: unprotect"), e)),
        }
    }
    match c.snap_remove(&snap).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_missing() => Ok(()),
        Err(e) => Err(failed(&format!("snapshot {snap}"), e)),
    }
}

/// Finds a snapshot by `pool/image@snap`.
pub async fn lookup(c: &dyn CephClient, import_id: &str) -> Result<Option<Imported>> {
    let (pool, image, name) =
        parse_snapshot_spec(import_id).ok_or_else(|| ProviderError::new(format!("import ID {import_id:?} is not `pool/image@snapshot`")))?;
    let config = Value::object([("image", Value::from(format!("{pool}/{image}"))), ("name", Value::from(name))]);
    let all = listings(c, std::iter::once(config.get("image").as_str().unwrap_or_default())).await?;
    Ok(find(&all, &format!("{pool}/{image}"), name).map(|e| Imported { state: state(&format!("{pool}/{image}"), e, &config), id: None }))
}
