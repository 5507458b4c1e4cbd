//! `kvm_cloudinit_disk`: a NoCloud seed (user-data, meta-data,
//! network-config) built into an ISO and uploaded into a pool as a volume.
//! It is found by pool and name like a volume, and kept aside like one when
//! it is replaced (see `volume.rs`).

use crate::err;
use crate::undo;
use crate::volume::{self, Lookup};
use std::collections::BTreeMap;
use rustix::fs::{memfd_create, MemfdFlags};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use strata_provider::{Attribute, Block, Disruption, ProviderError, Result, Type, UndoRecord, Value};
use virt::connect::Connect;
use virt::storage_vol::StorageVol;

const NOTE: &str = "A change builds a new seed ISO and replaces the volume; cloud-init in an existing guest will not run again.";

pub fn schema() -> Block {
    Block::new("A cloud-init NoCloud seed ISO in a storage pool.")
        .attr("pool", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr("user_data", Attribute::required(Type::String).on_change(Disruption::Replace).describe(NOTE))
        .attr(
            "meta_data",
            Attribute::optional(Type::String).on_change(Disruption::Replace).describe("Default: instance-id and local-hostname from name."),
        )
        .attr("network_config", Attribute::optional(Type::String).on_change(Disruption::Replace).describe(NOTE))
        .attr("path", Attribute::computed(Type::String))
        .attr("id", Attribute::computed(Type::String).describe("The libvirt volume key."))
}

/// A new seed does not re-run cloud-init in guests that already booted.
pub fn plan(prior: Option<&Value>, proposed: &Value) -> strata_provider::PlanResponse {
    let mut response = strata_provider::PlanResponse::default();
    if prior.is_some_and(|p| ["user_data", "meta_data", "network_config"].iter().any(|k| p.get(k) != proposed.get(k))) {
        response.notes.push("a new seed ISO replaces this one: cloud-init in an existing guest will not run again".into());
    }
    response
}

fn meta_data(v: &Value) -> String {
    match v.get("meta_data").as_str() {
        Some(m) => m.to_owned(),
        None => {
            let name = v.get("name").as_str().unwrap_or("seed").trim_end_matches(".iso");
            format!("instance-id: {name}\nlocal-hostname: {name}\n")
        }
    }
}

/// Builds the ISO with genisoimage (volume label `cidata`, as NoCloud wants)
/// without writing anything to disk: user-data may hold secrets, and a
/// temporary directory would outlive a killed process. Each file is an
/// anonymous in-memory file (memfd, mode 0600) that genisoimage reads through
/// this process's `/proc/PID/fd/N`; the image comes back on its stdout.
fn build_iso(v: &Value) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| ProviderError::new(format!("building the seed ISO (genisoimage): {e}"));
    let mut files = vec![
        ("user-data", memory_file("user-data", v.get("user_data").as_str().unwrap_or_default()).map_err(fail)?),
        ("meta-data", memory_file("meta-data", &meta_data(v)).map_err(fail)?),
    ];
    if let Some(nc) = v.get("network_config").as_str() {
        files.push(("network-config", memory_file("network-config", nc).map_err(fail)?));
    }
    let pid = std::process::id();
    let grafts = files.iter().map(|(name, file)| format!("{name}=/proc/{pid}/fd/{}", file.as_raw_fd()));
    let out = Command::new("genisoimage")
        .args(["-quiet", "-volid", "cidata", "-joliet", "-rock", "-graft-points", "-follow-links"])
        .args(grafts)
        .stdin(Stdio::null())
        .output()
        .map_err(fail)?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(fail(std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned())));
    }
    Ok(out.stdout)
}

/// An anonymous file holding `content`, gone when it is dropped (or the
/// process dies). Close-on-exec: no child inherits it.
fn memory_file(name: &str, content: &str) -> std::io::Result<File> {
    let mut file = File::from(memfd_create(name, MemfdFlags::CLOEXEC)?);
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(content.as_bytes())?;
    Ok(file)
}

pub fn create(conn: &Connect, planned: &Value) -> Result<Value> {
    volume::refuse_taken(conn, planned)?;
    let iso = build_iso(planned)?;
    let pool_name = planned.get("pool").as_str().unwrap_or_default();
    let pool = conn.lookup_storage_pool_by_name(pool_name).map_err(|e| ProviderError::new(format!("pool {pool_name:?}: {}", e.message())))?;
    let xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{}</capacity><target><format type='raw'/></target></volume>",
        crate::xml::esc(planned.get("name").as_str().unwrap_or_default()),
        iso.len()
    );
    let vol = volume::create_xml(&pool, &xml, planned)?;
    if let Err(e) = volume::upload(conn, &vol, &iso) {
        let _ = vol.delete(0);
        return Err(e);
    }
    state(&vol, planned)
}

fn state(vol: &StorageVol, config: &Value) -> Result<Value> {
    // The ISO's content cannot be read back cheaply; it is what was built.
    Ok(Value::Map(BTreeMap::from([
        ("pool".to_owned(), config.get("pool").clone()),
        ("name".to_owned(), Value::from(vol.name().map_err(err)?)),
        ("user_data".to_owned(), config.get("user_data").clone()),
        ("meta_data".to_owned(), config.get("meta_data").clone()),
        ("network_config".to_owned(), config.get("network_config").clone()),
        ("path".to_owned(), Value::from(vol.path().map_err(err)?)),
        ("id".to_owned(), Value::from(vol.key().map_err(err)?)),
    ]).into()))
}

pub fn read_all(conn: &Connect, wanted: &[(uuid::Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    wanted
        .iter()
        .map(|(_, v)| match volume::lookup_named(conn, v)? {
            Lookup::Found(vol) => state(&vol, v).map(Some),
            Lookup::Missing => Ok(None),
            // A stopped pool hides the seed but does not delete it.
            Lookup::PoolInactive => Ok(Some(v.clone())),
        })
        .collect()
}

/// Finds the seed an interrupted create made: the engine asked
/// `name_is_free` just before, so a volume of that name is its own.
pub fn find_created(conn: &Connect, planned: &Value) -> Result<Option<Value>> {
    match volume::find_created(conn, planned)? {
        Some(_) => read_all(conn, &[(uuid::Uuid::nil(), planned.clone())]).map(|mut v| v.remove(0)),
        None => Ok(None),
    }
}

pub fn delete(conn: &Connect, prior: &Value) -> Result<()> {
    match volume::find(conn, prior)? {
        Some(vol) => vol.delete(0).map_err(err),
        None => Ok(()),
    }
}

/// A replaced seed is kept aside as a volume under another name. The seed's
/// content is what the volume holds; the record keeps the configuration it
/// was built from (the state `read` reports, which the ISO is not read back
/// for), marked sensitive: user data may hold secrets.
pub fn prepare_retire(prior: &Value) -> UndoRecord {
    let name = prior.get("name").as_str().unwrap_or_default();
    let content = |key: &str| prior.get(key).clone().into_sensitive();
    undo::record(undo::RETIRE, [
        ("pool", prior.get("pool").clone()),
        ("name", Value::from(name)),
        ("aside", Value::from(undo::aside_name(name, "retired"))),
        ("user_data", content("user_data")),
        ("meta_data", content("meta_data")),
        ("network_config", content("network_config")),
    ])
}

/// Brings a retired seed back, with the state it had.
pub fn undo(conn: &Connect, local: bool, rec: &UndoRecord) -> Result<Value> {
    let vol = volume::put_back(conn, local, rec)?;
    let config = rec.0.clone().deep_unmark();
    state(&vol, &config)
}
