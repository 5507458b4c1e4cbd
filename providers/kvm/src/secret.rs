//! `kvm_secret`: a libvirt secret of usage type `ceph`, the cephx key that
//! QEMU presents to the cluster for RBD disks (`kvm_domain` disks name it by
//! `id`).
//!
//! The secret's libvirt UUID is the instance UUID, so an interrupted create
//! is found again. Its value is handed to libvirt with `virSecretSetValue`
//! only: never in an XML document, a process argument or an error message.
//! The secret is *ephemeral* (kept in libvirtd's memory, never written to
//! `/etc/libvirt/secrets` in clear text) and readable by root only through
//! libvirt: after a libvirtd restart it is gone, the next refresh reports
//! it missing and the next apply defines it again from state.
//!
//! Undo: an update (a new value, a new description) is undone by re-applying
//! the prior values, which state holds; an import changes nothing in libvirt.

use crate::xml::{self, esc};
use crate::{err, found};
use base64::Engine;
use strata_provider::{Attribute, Block, Disruption, Imported, ProviderError, Result, Type, Value};
use uuid::Uuid;
use virt::connect::Connect;
use virt::secret::Secret;
use virt::sys;

pub fn schema() -> Block {
    Block::new("A libvirt secret of usage type ceph: the cephx key QEMU uses for RBD disks.")
        .attr(
            "usage_name",
            Attribute::required(Type::String)
                .on_change(Disruption::Replace)
                .describe("libvirt's unique usage name of the secret, e.g. `client.libvirt secret`."),
        )
        .attr("description", Attribute::optional(Type::String).describe("Changed live."))
        .attr(
            "value",
            Attribute::required(Type::String).sensitive().describe(
                "The key in base64, as Ceph prints it (`ceph_client.x.key`). Set with virSecretSetValue, never printed; changed live.",
            ),
        )
        .attr("id", Attribute::computed(Type::String).describe("The libvirt UUID (the instance's identity), as RBD disks name the secret."))
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    match config.get("value").unmarked().as_str() {
        // Never the value itself in the message.
        Some(v) if decode(v).is_none() => vec![("value".into(), "is not base64 (a Ceph key as `ceph auth get-key` prints it)".into())],
        _ => Vec::new(),
    }
}

fn decode(value: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(value.trim()).ok().filter(|b| !b.is_empty())
}

fn definition(id: Uuid, v: &Value) -> String {
    let description =
        v.get("description").as_str().map(|d| format!("<description>{}</description>", esc(d))).unwrap_or_default();
    format!(
        "<secret ephemeral='yes' private='no'><uuid>{id}</uuid>{description}<usage type='ceph'><name>{}</name></usage></secret>",
        esc(v.get("usage_name").as_str().unwrap_or_default())
    )
}

/// Sets the value; a value that is not base64 is refused without quoting it.
fn set_value(secret: &Secret, v: &Value) -> Result<()> {
    let bytes = v
        .get("value")
        .unmarked()
        .as_str()
        .and_then(decode)
        .ok_or_else(|| ProviderError::new("the secret's value is not base64 (a Ceph key as `ceph auth get-key` prints it)"))?;
    crate::calls::call("virSecretSetValue", || secret.set_value(&bytes, 0)).map_err(err)
}

pub fn create(conn: &Connect, id: Uuid, planned: &Value) -> Result<Value> {
    let secret = crate::calls::with_xml("virSecretDefineXML", &definition(id, planned), |x| conn.define_secret_xml(x, 0)).map_err(err)?;
    // A secret without its value is of no use to anyone: it goes again.
    if let Err(e) = set_value(&secret, planned) {
        let _ = secret.undefine();
        return Err(e);
    }
    state(&secret)
}

fn state(secret: &Secret) -> Result<Value> {
    let doc_text = secret.xml_desc(0).map_err(err)?;
    let doc = xml::parse(&doc_text)?;
    // A secret defined but never given a value (a create cut short) reads
    // with no value, so the next plan sets it.
    let value = match value(secret) {
        Some(bytes) if !bytes.is_empty() => Value::from(base64::engine::general_purpose::STANDARD.encode(bytes)).into_sensitive(),
        _ => Value::Null,
    };
    // The usage name from the XML: virt 0.5's `Secret::usage_id` frees the
    // string libvirt still owns (a double free that corrupts the heap).
    let usage_name = doc.descendants().find(|n| n.has_tag_name("usage")).and_then(|u| u.children().find(|c| c.has_tag_name("name")));
    Ok(Value::object([
        ("usage_name", usage_name.and_then(|n| n.text()).map(Value::from).unwrap_or(Value::Null)),
        ("description", xml::text(&doc, "description").map(Value::from).unwrap_or(Value::Null)),
        ("value", value),
        ("id", Value::from(secret.uuid().map_err(err)?.to_string())),
    ]))
}

/// The secret's value, or `None` when it has none. Called through the FFI
/// because virt 0.5's `Secret::value` never frees libvirt's copy; this one
/// wipes and frees it.
fn value(secret: &Secret) -> Option<Vec<u8>> {
    let mut size: usize = 0;
    // SAFETY: `secret` is a live virSecretPtr; on success libvirt returns a
    // malloc'd buffer of `size` bytes that the caller owns and frees.
    unsafe {
        let buf = sys::virSecretGetValue(secret.as_ptr(), &mut size, 0);
        if buf.is_null() {
            return None;
        }
        let bytes = std::slice::from_raw_parts(buf, size).to_vec();
        std::ptr::write_bytes(buf, 0, size);
        libc::free(buf.cast());
        Some(bytes)
    }
}

pub fn read_all(conn: &Connect, wanted: &[(Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    let all = crate::calls::call("virConnectListAllSecrets", || conn.list_all_secrets(0)).map_err(err)?;
    wanted
        .iter()
        .map(|(id, _)| all.iter().find(|s| s.uuid().ok() == Some(*id)).map(state).transpose())
        .collect()
}

pub fn update(conn: &Connect, id: Uuid, prior: &Value, planned: &Value) -> Result<Value> {
    let secret = conn.lookup_secret_by_uuid(id).map_err(err)?;
    if prior.get("description") != planned.get("description") {
        // Same UUID and usage: libvirt updates the definition, keeping the value.
        crate::calls::with_xml("virSecretDefineXML", &definition(id, planned), |x| conn.define_secret_xml(x, 0)).map_err(err)?;
    }
    if prior.get("value").unmarked() != planned.get("value").unmarked() {
        set_value(&secret, planned)?;
    }
    state(&secret)
}

pub fn delete(conn: &Connect, id: Uuid) -> Result<()> {
    match found(conn.lookup_secret_by_uuid(id))? {
        Some(secret) => secret.undefine().map_err(err),
        None => Ok(()),
    }
}

/// Finds a secret by UUID (or by its ceph usage name) for `import`.
pub fn lookup(conn: &Connect, import_id: &str) -> Result<Option<Imported>> {
    let ceph = sys::VIR_SECRET_USAGE_TYPE_CEPH as i32;
    let Some(secret) =
        crate::by_uuid_or_name(import_id, |u| conn.lookup_secret_by_uuid(u), |n| conn.lookup_secret_by_usage(ceph, n))?
    else {
        return Ok(None);
    };
    if secret.usage_type().map_err(err)? != sys::VIR_SECRET_USAGE_TYPE_CEPH {
        return Err(ProviderError::new(format!("libvirt secret {import_id} is not of usage type ceph")));
    }
    Ok(Some(Imported { state: state(&secret)?, id: Some(secret.uuid().map_err(err)?) }))
}
