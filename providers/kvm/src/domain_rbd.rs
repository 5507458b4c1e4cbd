//! `kvm_domain` disks that are RBD images in a Ceph cluster: the libvirt
//! network disk written from a disk's `rbd`, `monitors`, `auth_user` and
//! `secret`, read back from a definition, and the live resize that lets a
//! running guest see an image that grew.
//!
//! QEMU opens the image itself (librbd) with the key of the `kvm_secret`
//! that `secret` names, which libvirt hands to QEMU; QEMU needs no file on
//! the host. A disk's `size` (normally `ceph_rbd_image.x.size`) is not
//! part of the definition: it only makes the domain depend on the image's
//! size, so that when the image grows the domain is updated too, and the
//! update tells the guest with `virDomainBlockResize`.

use crate::xml::esc;
use crate::err;
use strata_provider::{Result, Value};
use virt::domain::Domain;
use virt::sys;

/// The libvirt XML of an RBD disk at device `target`.
pub(crate) fn disk_xml(d: &Value, target: &str, bus: &str, extra: &str) -> String {
    let hosts: String = d
        .get("monitors")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.as_str())
        .map(|m| {
            let (host, port) = split_monitor(m);
            let port = port.map(|p| format!(" port='{}'", esc(p))).unwrap_or_default();
            format!("<host name='{}'{port}/>", esc(host))
        })
        .collect();
    let auth = match (d.get("auth_user").as_str(), d.get("secret").as_str()) {
        (Some(user), Some(uuid)) => format!(
            "<auth username='{}'><secret type='ceph' uuid='{}'/></auth>",
            esc(user.trim_start_matches("client.")),
            esc(uuid)
        ),
        _ => String::new(),
    };
    format!(
        "<disk type='network' device='disk'><driver name='qemu' type='raw' cache='writeback' discard='unmap'/>\
         <source protocol='rbd' name='{}'>{hosts}</source>{auth}<target dev='{target}' bus='{}'/>{extra}</disk>",
        esc(d.get("rbd").as_str().unwrap_or_default()),
        esc(bus)
    )
}

/// `host:port` → (host, port); `[v6]:port` keeps the address without brackets.
fn split_monitor(m: &str) -> (&str, Option<&str>) {
    if let Some(rest) = m.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            return (host, Some(port));
        }
        return (rest.trim_end_matches(']'), None);
    }
    match m.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (m, None),
    }
}

/// The RBD attributes a `<disk type='network'>` element says, or nulls for
/// a volume disk. `size` is read from `want` (the configuration), since
/// the definition does not hold it.
pub(crate) fn disk_values(d: roxmltree::Node, want: &Value) -> [(&'static str, Value); 5] {
    let src = d.children().find(|c| c.has_tag_name("source")).filter(|s| s.attribute("protocol") == Some("rbd"));
    let monitors = src.map(|s| {
        Value::List(
            s.children()
                .filter(|h| h.has_tag_name("host"))
                .map(|h| {
                    let host = h.attribute("name").unwrap_or_default();
                    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
                    Value::from(match h.attribute("port") {
                        Some(p) => format!("{host}:{p}"),
                        None => host,
                    })
                })
                .collect(),
        )
    });
    let auth = d.children().find(|c| c.has_tag_name("auth"));
    let secret = auth.and_then(|a| a.children().find(|c| c.has_tag_name("secret"))).and_then(|s| s.attribute("uuid"));
    // The user as the configuration wrote it (with or without `client.`).
    let user = auth.and_then(|a| a.attribute("username")).map(|u| match want.get("auth_user").as_str() {
        Some(w) if w.trim_start_matches("client.") == u => Value::from(w),
        _ => Value::from(u),
    });
    let or_null = |v: Option<Value>| v.unwrap_or(Value::Null);
    [
        ("rbd", or_null(src.and_then(|s| s.attribute("name")).map(Value::from))),
        ("monitors", or_null(monitors)),
        ("auth_user", or_null(user)),
        ("secret", or_null(secret.map(Value::from))),
        ("size", want.get("size").clone()),
    ]
}

pub(crate) fn validate(i: usize, d: &Value, out: &mut Vec<(String, String)>) {
    let file = !d.get("pool").is_null() || !d.get("volume").is_null();
    let rbd = !d.get("rbd").is_null();
    let mut say = |m: &str| out.push(("disks".into(), format!("disk {i}: {m}")));
    if file == rbd {
        say("needs either pool and volume, or rbd (`pool/image`, e.g. ceph_rbd_image.x.spec)");
    } else if file && (d.get("pool").is_null() || d.get("volume").is_null()) {
        say("needs both pool and volume");
    }
    if rbd {
        if d.get("rbd").as_str().is_some_and(|s| s.split_once('/').is_none_or(|(p, n)| p.is_empty() || n.is_empty())) {
            say("rbd must be `pool/image` (ceph_rbd_image.x.spec)");
        }
        if d.get("monitors").as_list().is_some_and(|m| m.is_empty()) {
            say("monitors must name at least one `host:port` (data.ceph_cluster.x.monitors)");
        }
    } else {
        for key in ["monitors", "auth_user", "secret", "size"] {
            if !d.get(key).is_null() {
                say(&format!("{key} is for rbd disks"));
            }
        }
    }
    if d.get("auth_user").is_null() != d.get("secret").is_null() {
        say("auth_user and secret go together (cephx: the client's name and the kvm_secret holding its key)");
    }
}

/// The disks as compared for hot-plug: without `size`, which changes live.
pub(crate) fn without_sizes(list: &Value) -> Value {
    match list {
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|d| match d {
                    Value::Map(m) => Value::Map(m.iter().filter(|(k, _)| k.as_str() != "size").map(|(k, v)| (k.clone(), v.clone())).collect()),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Tells a running guest about RBD disks whose `size` changed between
/// `from` and `to` (among the disks both have): `virDomainBlockResize` to
/// the new size. The image already has that size (the Ceph provider grew
/// it first), so QEMU only re-reads it and notifies the guest.
pub(crate) fn resize_live(dom: &Domain, from: &Value, to: &Value, target: impl Fn(usize, &Value) -> String) -> Result<()> {
    let (old, new) = (from.get("disks").as_list().unwrap_or_default(), to.get("disks").as_list().unwrap_or_default());
    for (i, (a, b)) in old.iter().zip(new).enumerate() {
        if b.get("rbd").is_null() || a.get("size") == b.get("size") {
            continue;
        }
        if let Some(bytes) = b.get("size").as_i64().filter(|n| *n > 0) {
            dom.block_resize(&target(i, b), bytes as u64, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitors_split_into_host_and_port() {
        assert_eq!(split_monitor("127.0.0.1:6789"), ("127.0.0.1", Some("6789")));
        assert_eq!(split_monitor("[::1]:6789"), ("::1", Some("6789")));
        assert_eq!(split_monitor("mon.example"), ("mon.example", None));
    }

    #[test]
    fn an_rbd_disk_is_a_network_disk_with_cephx() {
        let d = Value::object([
            ("rbd", Value::from("lab/db")),
            ("monitors", Value::List(vec![Value::from("127.0.0.1:6789")].into())),
            ("auth_user", Value::from("client.lab")),
            ("secret", Value::from("0b0c0d0e-0000-4000-8000-000000000001")),
        ]);
        let x = disk_xml(&d, "vdb", "virtio", "");
        assert!(x.contains("<source protocol='rbd' name='lab/db'><host name='127.0.0.1' port='6789'/></source>"), "{x}");
        assert!(x.contains("<auth username='lab'><secret type='ceph' uuid='0b0c0d0e-0000-4000-8000-000000000001'/></auth>"), "{x}");
        let doc = roxmltree::Document::parse(&x).unwrap();
        let back = disk_values(doc.root_element(), &d);
        assert_eq!(back[0].1, Value::from("lab/db"));
        assert_eq!(back[1].1, Value::List(vec![Value::from("127.0.0.1:6789")].into()));
        assert_eq!(back[2].1, Value::from("client.lab"), "the user reads back as written");
    }
}
