//! `kvm_domain`: a libvirt domain (virtual machine).
//!
//! Changes are applied the least disruptive way libvirt allows: memory up to
//! `max_memory` (balloon) and vCPUs up to `max_vcpus` (hot-plug) change live,
//! disks and interfaces appended or removed at the end are hot-plugged, the
//! power state changes live; everything else updates the persistent
//! definition and restarts the guest gracefully (ACPI, then destroy after
//! `shutdown_timeout`). The definition is replaced with `defineXML` on the
//! same UUID, never undefined first, so it is never lost mid-update, and
//! its NICs keep their MACs.
//!
//! Refresh reads the persistent definition and reports `pending_restart`
//! when the running guest still runs an older one (`domain_restart.rs`).
//! The XML is written in `domain_xml.rs`; undo records in `domain_undo.rs`.

use crate::domain_xml::{disk_xml, domain_xml, interface_xml, ovs_bridge, tag_elements, vlan_of, with_vlans, TAGS_URI};
use crate::xml;
use crate::err;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use strata_provider::{Attribute, Block, Disruption, Imported, PlanResponse, ProviderError, Result, Type, Value};
use uuid::Uuid;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

const RESTART: &str = "Changing it restarts the guest (graceful shutdown, then start).";

pub fn schema() -> Block {
    let opt = |t: Type| Type::Optional(Box::new(t), None);
    let disk = Type::Object(BTreeMap::from([
        ("pool".into(), opt(Type::String)),
        ("volume".into(), opt(Type::String)),
        ("rbd".into(), opt(Type::String)),
        ("monitors".into(), opt(Type::List(Box::new(Type::String)))),
        ("auth_user".into(), opt(Type::String)),
        ("secret".into(), opt(Type::String)),
        ("size".into(), opt(Type::Number)),
        ("readonly".into(), Type::Optional(Box::new(Type::Bool), Some(Box::new(Value::Bool(false))))),
        ("bus".into(), opt(Type::String)),
        ("boot_order".into(), opt(Type::Number)),
    ]));
    let interface = Type::Object(BTreeMap::from([
        ("network".into(), opt(Type::String)),
        ("bridge".into(), opt(Type::String)),
        ("openvswitch".into(), opt(Type::Bool)),
        ("ovs_bridge".into(), opt(Type::String)),
        ("vlan".into(), opt(Type::Number)),
        ("trunks".into(), opt(Type::List(Box::new(Type::Number)))),
        ("mac".into(), opt(Type::String)),
        ("model".into(), opt(Type::String)),
    ]));
    Block::new("A libvirt domain (virtual machine).")
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
        .attr(
            "type",
            Attribute::optional_computed(Type::String)
                .on_change(Disruption::Restart)
                .describe("kvm or qemu; by default kvm where it can boot a guest on this host, else qemu (TCG)."),
        )
        .attr("vcpus", Attribute::optional(Type::Number).describe("Online vCPUs (default 1); up to max_vcpus changes live."))
        .attr("max_vcpus", Attribute::optional(Type::Number).on_change(Disruption::Restart).describe(RESTART))
        .attr("memory", Attribute::required(Type::Number).describe("MiB; up to max_memory changes live (balloon)."))
        .attr("max_memory", Attribute::optional(Type::Number).on_change(Disruption::Restart).describe(RESTART))
        .attr("machine", Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe(RESTART))
        .attr("cpu_mode", Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe("host-passthrough, host-model or custom (with cpu_model)."))
        .attr("cpu_model", Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe(RESTART))
        .attr(
            "vcpu_pinning",
            Attribute::optional_computed(Type::Map(Box::new(Type::String))).on_change(Disruption::Restart).describe("vCPU index → host CPU set, e.g. { \"0\" = \"0-1\" }."),
        )
        .attr("hugepages", Attribute::optional_computed(Type::Bool).on_change(Disruption::Restart).describe("Back guest memory with huge pages."))
        .attr("firmware", Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe("bios (default) or uefi (needs OVMF on the host)."))
        .attr("graphics", Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe("none (default), vnc or spice, listening on 127.0.0.1."))
        .attr("tags", Attribute::optional_computed(Type::Map(Box::new(Type::String))).describe("User tags, kept in the domain's metadata; changed live."))
        .attr("kernel", Attribute::optional(Type::String).on_change(Disruption::Restart).describe("Direct kernel boot; changing it restarts the guest."))
        .attr("initrd", Attribute::optional(Type::String).on_change(Disruption::Restart).describe(RESTART))
        .attr("cmdline", Attribute::optional(Type::String).on_change(Disruption::Restart).describe(RESTART))
        .attr(
            "disks",
            Attribute::optional(Type::List(Box::new(disk))).describe(
                "Volumes (pool, volume) or RBD images (rbd = `POOL/IMAGE`, e.g. ceph_rbd_image.x.spec, which stays known while the image is updated in place; monitors = data.ceph_cluster.x.monitors, auth_user = ceph_client.x.entity, secret = kvm_secret.x.id, size = ceph_rbd_image.x.size: a grown image is resized live in the guest); readonly, bus virtio/sata/scsi, boot_order. Adding or removing the last ones is hot-plugged, other changes restart.",
            ),
        )
        .attr(
            "interfaces",
            Attribute::optional(Type::List(Box::new(interface))).describe(
                "NICs on a kvm_network (network), a host bridge (bridge), or an Open vSwitch bridge (ovs_bridge, e.g. ovs_bridge.lan.name; or bridge + openvswitch) with an access VLAN (vlan, 0-4095) or a trunk (trunks; with vlan as its untagged native VLAN); mac, model (virtio). Changing an Open vSwitch NIC's vlan or trunks is live (the port is re-tagged), adding or removing the last NICs is hot-plugged, other changes restart.",
            ),
        )
        .attr("serial_log", Attribute::optional(Type::String).on_change(Disruption::Restart).describe("File the serial console is written to."))
        .attr("running", Attribute::optional(Type::Bool).describe("Desired power state (default true); changed live."))
        .attr(
            "pending_restart",
            Attribute::optional(Type::Bool).on_change(Disruption::Restart).describe(
                "Reported, not set: true when the running guest still runs an older definition than its persistent one (a restart that was interrupted, or a change made with virsh --config); the next apply restarts it.",
            ),
        )
        .attr("autostart", Attribute::optional(Type::Bool))
        .attr("shutdown_timeout", Attribute::optional(Type::Number).describe("Seconds to wait for an ACPI shutdown before forcing it (default 60)."))
        .attr("wait_for_ip", Attribute::optional(Type::Number).describe("Seconds to wait for a DHCP lease after start (default 0: do not wait)."))
        .attr("id", Attribute::computed(Type::String).describe("The libvirt UUID (the instance's identity)."))
        .attr(
            "macs",
            Attribute::computed(Type::List(Box::new(Type::String)))
                .describe("The NICs' MAC addresses, in the order of interfaces (e.g. for an ovs_security_group's attachments: kvm_domain.web.macs[0])."),
        )
        .attr("ip_addresses", Attribute::computed(Type::List(Box::new(Type::String))).describe("From the networks' DHCP leases."))
}

pub(crate) fn num(v: &Value, key: &str, default: i64) -> i64 {
    v.get(key).as_i64().unwrap_or(default)
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (vcpus, max_vcpus) = (num(config, "vcpus", 1), num(config, "max_vcpus", num(config, "vcpus", 1)));
    if vcpus > max_vcpus {
        out.push(("vcpus".into(), format!("vcpus ({vcpus}) exceeds max_vcpus ({max_vcpus})")));
    }
    let memory = num(config, "memory", 0);
    if memory > num(config, "max_memory", memory) {
        out.push(("memory".into(), "memory exceeds max_memory".into()));
    }
    for (i, d) in config.get("disks").as_list().unwrap_or_default().iter().enumerate() {
        crate::domain_rbd::validate(i, d, &mut out);
    }
    for (i, n) in config.get("interfaces").as_list().unwrap_or_default().iter().enumerate() {
        out.extend(validate_interface(n).into_iter().map(|m| ("interfaces".to_owned(), format!("interface {i}: {m}"))));
    }
    if let Some(f) = config.get("firmware").as_str() {
        if f != "bios" && f != "uefi" {
            out.push(("firmware".into(), format!("firmware must be bios or uefi, not {f:?}")));
        }
    }
    if let Some(g) = config.get("graphics").as_str() {
        if !matches!(g, "none" | "vnc" | "spice") {
            out.push(("graphics".into(), format!("graphics must be none, vnc or spice, not {g:?}")));
        }
    }
    if !config.get("pending_restart").is_null() {
        out.push(("pending_restart".into(), "pending_restart is reported by Strata, not set; remove it".into()));
    }
    if let Some(t) = config.get("type").as_str() {
        if t != "kvm" && t != "qemu" {
            out.push(("type".into(), format!("type must be kvm or qemu, not {t:?}")));
        }
    }
    out
}

/// What is wrong with one NIC of `interfaces`.
fn validate_interface(n: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let sources = ["network", "bridge", "ovs_bridge"].iter().filter(|k| !n.get(k).is_null()).count();
    if sources != 1 {
        out.push("needs exactly one of network, bridge and ovs_bridge".to_owned());
    }
    if !n.get("ovs_bridge").is_null() && !n.get("openvswitch").is_null() {
        out.push("openvswitch goes with bridge; an ovs_bridge is always Open vSwitch".to_owned());
    }
    let ovs = !n.get("ovs_bridge").is_null() || n.get("openvswitch").as_bool() == Some(true);
    if !ovs && (!n.get("vlan").is_null() || !n.get("trunks").is_null()) {
        out.push("vlan and trunks need an Open vSwitch bridge (ovs_bridge)".to_owned());
    }
    let in_range = |v: &Value| v.as_i64().is_some_and(|t| (0..=4095).contains(&t));
    let vlan = n.get("vlan");
    if !vlan.is_null() && !vlan.is_unknown() && !in_range(vlan) {
        out.push(format!("vlan {} is outside 0-4095", vlan.to_hcl()));
    }
    let trunks = n.get("trunks").as_list().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for t in trunks.iter().filter(|t| !t.is_unknown()) {
        if !in_range(t) {
            out.push(format!("trunk VLAN {} is outside 0-4095", t.to_hcl()));
        } else if !seen.insert(t.as_i64()) {
            out.push(format!("trunk VLAN {} is listed twice", t.to_hcl()));
        }
    }
    if n.get("trunks").as_list().is_some_and(|l| l.is_empty()) {
        out.push("trunks is empty: leave it out for an access port".to_owned());
    }
    out
}

/// Live, restart or hot-plug, from what changes.
pub fn plan(prior: Option<&Value>, proposed: &Value) -> PlanResponse {
    let mut response = PlanResponse::default();
    let Some(prior) = prior else { return response };
    let within = |key: &str, max_key: &str| {
        let max_same = prior.get(max_key) == proposed.get(max_key);
        let new = num(proposed, key, 1);
        max_same && new <= num(proposed, max_key, new)
    };
    for (key, max_key) in [("memory", "max_memory"), ("vcpus", "max_vcpus")] {
        if prior.get(key) != proposed.get(key) {
            let d = if within(key, max_key) && !proposed.get(max_key).is_null() { Disruption::Live } else { Disruption::Restart };
            response.disruptions.insert(key.into(), d);
        }
    }
    if prior.get("disks") != proposed.get("disks") {
        let d = if tail_change(prior.get("disks"), proposed.get("disks")).is_some() { Disruption::Live } else { Disruption::Restart };
        response.disruptions.insert("disks".into(), d);
    }
    if prior.get("interfaces") != proposed.get("interfaces") {
        let d = if nic_change(prior.get("interfaces"), proposed.get("interfaces")).is_some() { Disruption::Live } else { Disruption::Restart };
        response.disruptions.insert("interfaces".into(), d);
    }
    let mut planned = proposed.clone();
    if let Value::Map(m) = &mut planned {
        if proposed.get("type").is_unknown() {
            m.insert("type".into(), prior.get("type").clone());
        }
        // A NIC added or removed, or given another MAC, changes `macs`:
        // what refers to it (a security group) waits for the new list.
        let nic_macs = |v: &Value| v.get("interfaces").as_list().unwrap_or_default().iter().map(|n| n.get("mac").clone()).collect::<Vec<_>>();
        if nic_macs(prior) != nic_macs(proposed) {
            m.insert("macs".into(), Value::Unknown);
        }
    }
    if planned != *proposed {
        response.planned = Some(planned);
    }
    response
}

/// `(added, removed)` when `new` differs from `old` only at the end.
/// (A disk's `size` changes live and is not compared.)
fn tail_change(old: &Value, new: &Value) -> Option<(Vec<Value>, Vec<Value>)> {
    let (old, new) = (crate::domain_rbd::without_sizes(old), crate::domain_rbd::without_sizes(new));
    let (old, new) = (old.as_list().unwrap_or_default(), new.as_list().unwrap_or_default());
    let common = old.len().min(new.len());
    (old[..common] == new[..common]).then(|| (new[common..].to_vec(), old[common..].to_vec()))
}

/// The NICs that `new` changes live from `old`: `(retagged, added, removed)`
/// when the NICs both have differ at most in the VLANs of an Open vSwitch
/// NIC (re-tagged with `virDomainUpdateDeviceFlags`; `retagged` holds their
/// positions) and the rest are added or removed at the end (hot-plugged).
/// libvirt cannot move a running NIC to another bridge: that restarts.
type NicChange = (Vec<usize>, Vec<Value>, Vec<Value>);

fn nic_change(old: &Value, new: &Value) -> Option<NicChange> {
    let (old_list, new_list) = (old.as_list().unwrap_or_default(), new.as_list().unwrap_or_default());
    let common = old_list.len().min(new_list.len());
    let without_vlans = |n: &Value| {
        let mut n = n.clone();
        if let Value::Map(m) = &mut n {
            m.remove("vlan");
            m.remove("trunks");
        }
        n
    };
    let mut retagged = Vec::new();
    for (i, (a, b)) in old_list[..common].iter().zip(&new_list[..common]).enumerate() {
        if a == b {
            continue;
        }
        if ovs_bridge(a).is_none() || ovs_bridge(b).is_none() || without_vlans(a) != without_vlans(b) {
            return None;
        }
        retagged.push(i);
    }
    Some((retagged, new_list[common..].to_vec(), old_list[common..].to_vec()))
}

pub fn create(conn: &Connect, id: Uuid, planned: &Value, default_type: &str) -> Result<Value> {
    let domain_type = planned.get("type").as_str().unwrap_or(default_type).to_owned();
    let dom = crate::calls::with_xml("virDomainDefineXML", &domain_xml(conn, id, planned, &domain_type)?, |x| conn.define_domain_xml(x)).map_err(err)?;
    let started = (|| {
        dom.set_autostart(planned.get("autostart").as_bool().unwrap_or(false)).map_err(err)?;
        if planned.get("running").as_bool() != Some(false) {
            crate::calls::call("virDomainCreate", || dom.create()).map_err(err)?;
            wait_for_ip(&dom, planned)?;
        }
        Ok(())
    })();
    // A domain that cannot start is removed again: nothing half-made stays.
    if let Err(e) = started {
        let _ = crate::calls::call("virDomainDestroy", || dom.destroy());
        let _ = crate::calls::call("virDomainUndefineFlags", || dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA));
        return Err(e);
    }
    state(&dom, planned)
}

/// Whether libvirt's machine type `actual` is what the alias `wanted` names.
fn machine_matches(wanted: &str, actual: &str) -> bool {
    let alias = match wanted {
        "pc" => "pc-i440fx",
        "q35" => "pc-q35",
        other => other,
    };
    actual == wanted || actual == alias || actual.starts_with(&format!("{alias}-"))
}

fn wait_for_ip(dom: &Domain, v: &Value) -> Result<()> {
    let seconds = num(v, "wait_for_ip", 0);
    if seconds <= 0 || v.get("interfaces").as_list().unwrap_or_default().is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    while Instant::now() < deadline {
        if !addresses(dom).is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(ProviderError::new(format!("no DHCP lease within {seconds} s (wait_for_ip)")))
}

fn addresses(dom: &Domain) -> Vec<Value> {
    let mut out: Vec<Value> = dom
        .interface_addresses(sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|i| i.addrs.into_iter().map(|a| Value::from(a.addr)))
        .collect();
    out.sort_by_key(|v| v.to_hcl());
    out
}

pub(crate) fn state(dom: &Domain, config: &Value) -> Result<Value> {
    // The persistent definition: what the domain will be after a restart.
    let desc = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).map_err(err)?;
    let doc = xml::parse(&desc)?;
    let running = dom.is_active().map_err(err)?;
    let keep = |key: &str| config.get(key).clone();
    let mut m = definition_values(&doc, config);
    // A running guest's Open vSwitch ports may have been re-tagged behind
    // libvirt's back: their VLANs are read where they are in force.
    let on_ovs = doc.descendants().any(|n| n.has_tag_name("virtualport") && n.attribute("type") == Some("openvswitch"));
    if running && on_ovs {
        let live = dom.xml_desc(0).map_err(err)?;
        if let Some(Value::List(interfaces)) = m.get_mut("interfaces") {
            crate::ovs_vlan::overlay(interfaces, &xml::parse(&live)?)?;
        }
    }
    m.extend([
        ("name".to_owned(), Value::from(dom.name().map_err(err)?)),
        ("running".to_owned(), if config.get("running").is_null() && running { Value::Null } else { Value::Bool(running) }),
        ("pending_restart".to_owned(), if running && crate::domain_restart::pending(dom, &doc)? { Value::Bool(true) } else { Value::Null }),
        ("autostart".to_owned(), {
            let on = dom.autostart().map_err(err)?;
            if !on && config.get("autostart").is_null() { Value::Null } else { Value::Bool(on) }
        }),
        ("shutdown_timeout".to_owned(), keep("shutdown_timeout")),
        ("wait_for_ip".to_owned(), keep("wait_for_ip")),
        ("id".to_owned(), Value::from(dom.uuid().map_err(err)?.to_string())),
        ("ip_addresses".to_owned(), Value::List(if running { addresses(dom).into() } else { Vec::new().into() })),
    ]);
    Ok(Value::Map(m.into()))
}

/// The attributes a domain definition (persistent or live XML) says, read
/// against `config` (libvirt's defaults read as null where it leaves them
/// unset).
pub(crate) fn definition_values(doc: &roxmltree::Document, config: &Value) -> BTreeMap<String, Value> {
    let kib = |tag: &str| doc.descendants().find(|n| n.has_tag_name(tag)).and_then(|n| n.text()).and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    let vcpu = doc.descendants().find(|n| n.has_tag_name("vcpu"));
    let max_vcpus = vcpu.and_then(|n| n.text()).and_then(|t| t.parse::<i64>().ok()).unwrap_or(1);
    let vcpus = vcpu.and_then(|n| n.attribute("current")).and_then(|t| t.parse::<i64>().ok()).unwrap_or(max_vcpus);
    let machine = xml::attr(doc, "type", "machine").unwrap_or_default();
    let text = |tag: &str| xml::text(doc, tag).map(Value::from).unwrap_or(Value::Null);
    // What libvirt reports, except that libvirt's defaults read as null, as
    // an unset attribute does: no perpetual diffs, and an imported domain
    // shows what it really has.
    let observed = |default: Value, actual: Option<Value>| match actual {
        Some(v) if v != default => v,
        _ => Value::Null,
    };
    // Inside disks and interfaces: what the configuration manages (during an
    // import there is none yet, so everything but defaults).
    let importing = config.is_null();
    let nested = |want: &Value, key: &str, default: Value, actual: Option<Value>| {
        if importing || !want.get(key).is_null() { observed(default, actual) } else { Value::Null }
    };
    let mut disks = Vec::new();
    for d in doc.descendants().filter(|n| n.has_tag_name("disk")) {
        let Some(src) = d.children().find(|c| c.has_tag_name("source")) else { continue };
        let bus = d.children().find(|c| c.has_tag_name("target")).and_then(|t| t.attribute("bus")).map(Value::from);
        let boot = d.children().find(|c| c.has_tag_name("boot")).and_then(|b| b.attribute("order")).and_then(|o| o.parse::<i64>().ok()).map(Value::from);
        let want = config.get("disks").as_list().and_then(|l| l.get(disks.len())).cloned().unwrap_or_default();
        let mut disk = Value::object([
            ("pool", src.attribute("pool").map(Value::from).unwrap_or(Value::Null)),
            ("volume", src.attribute("volume").map(Value::from).unwrap_or(Value::Null)),
            ("readonly", Value::Bool(d.children().any(|c| c.has_tag_name("readonly")))),
            ("bus", nested(&want, "bus", Value::from("virtio"), bus)),
            ("boot_order", nested(&want, "boot_order", Value::Null, boot)),
        ]);
        if let Value::Map(m) = &mut disk {
            m.extend(crate::domain_rbd::disk_values(d, &want).map(|(k, v)| (k.to_owned(), v)));
        }
        disks.push(disk);
    }
    let config_ifaces = config.get("interfaces").as_list().unwrap_or_default();
    let mut interfaces = Vec::new();
    let mut macs = Vec::new();
    for (i, n) in doc.descendants().filter(|n| n.has_tag_name("interface")).enumerate() {
        let source = n.children().find(|c| c.has_tag_name("source"));
        let mac = n.children().find(|c| c.has_tag_name("mac")).and_then(|m| m.attribute("address")).unwrap_or_default();
        macs.push(Value::from(mac));
        let want = config_ifaces.get(i).cloned().unwrap_or_default();
        let ovs = n.children().any(|c| c.has_tag_name("virtualport") && c.attribute("type") == Some("openvswitch"));
        let (vlan, trunks) = vlan_of(&n);
        let model = n.children().find(|c| c.has_tag_name("model")).and_then(|m| m.attribute("type")).map(Value::from);
        // A network NIC's live definition names its bridge too.
        let bridge = source.filter(|_| n.attribute("type") == Some("bridge")).and_then(|s| s.attribute("bridge")).map(Value::from).unwrap_or(Value::Null);
        // An Open vSwitch NIC reads as `ovs_bridge` unless the configuration
        // spells it `bridge` + `openvswitch`.
        let as_ovs_bridge = ovs && (importing || want.get("bridge").is_null());
        let (bridge, ovs_bridge) = if as_ovs_bridge { (Value::Null, bridge) } else { (bridge, Value::Null) };
        let trunks = if trunks.is_empty() { Value::Null } else { Value::List(trunks.into_iter().map(Value::from).collect()) };
        // A MAC libvirt picked is reported in `macs`, not as drift.
        interfaces.push(Value::object([
            ("network", source.and_then(|s| s.attribute("network")).map(Value::from).unwrap_or(Value::Null)),
            ("bridge", bridge),
            ("ovs_bridge", ovs_bridge),
            ("openvswitch", if as_ovs_bridge { Value::Null } else { nested(&want, "openvswitch", Value::Bool(false), Some(Value::Bool(ovs))) }),
            ("vlan", vlan.map(Value::from).unwrap_or(Value::Null)),
            ("trunks", trunks),
            ("mac", if want.get("mac").is_null() && !config.is_null() { Value::Null } else { Value::from(mac) }),
            ("model", nested(&want, "model", Value::from("virtio"), model)),
        ]));
    }
    let cpu = doc.root_element().children().find(|c| c.has_tag_name("cpu"));
    let pins: BTreeMap<String, Value> = doc
        .descendants()
        .filter(|n| n.has_tag_name("vcpupin"))
        .filter_map(|n| Some((n.attribute("vcpu")?.to_owned(), Value::from(n.attribute("cpuset")?))))
        .collect();
    let tags: BTreeMap<String, Value> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tag") && n.parent().is_some_and(|p| p.tag_name().namespace() == Some(TAGS_URI)))
        .filter_map(|n| Some((n.attribute("name")?.to_owned(), Value::from(n.text().unwrap_or_default()))))
        .collect();
    let graphics = doc.descendants().find(|n| n.has_tag_name("graphics")).and_then(|g| g.attribute("type")).unwrap_or("none");
    let firmware = if xml::attr(doc, "os", "firmware") == Some("efi") { "uefi" } else { "bios" };
    let listed = |list: Vec<Value>, key: &str| if list.is_empty() && config.get(key).is_null() { Value::Null } else { Value::List(list.into()) };
    let or_default = |value: i64, key: &str, default: i64| {
        if config.get(key).is_null() && value == default { Value::Null } else { Value::from(value) }
    };
    let memory = kib("currentMemory") / 1024;
    let max_memory = kib("memory") / 1024;
    BTreeMap::from([
        ("type".to_owned(), Value::from(doc.root_element().attribute("type").unwrap_or("kvm"))),
        ("vcpus".to_owned(), or_default(vcpus, "vcpus", 1)),
        ("max_vcpus".to_owned(), or_default(max_vcpus, "max_vcpus", vcpus)),
        ("memory".to_owned(), Value::from(memory)),
        ("max_memory".to_owned(), or_default(max_memory, "max_memory", memory)),
        // libvirt expands aliases (`pc` to `pc-i440fx-7.2`, `q35` to
        // `pc-q35-7.2`): the alias names the expanded machine.
        ("machine".to_owned(), match config.get("machine").as_str() {
            Some(m) if machine_matches(m, machine) => Value::from(m),
            _ if machine_matches("pc", machine) => Value::from("pc"),
            _ if machine_matches("q35", machine) => Value::from("q35"),
            _ => Value::from(machine),
        }),
        ("cpu_mode".to_owned(), cpu.and_then(|c| c.attribute("mode")).map(Value::from).unwrap_or(Value::Null)),
        ("cpu_model".to_owned(), cpu.and_then(|c| c.children().find(|m| m.has_tag_name("model"))).and_then(|m| m.text()).map(Value::from).unwrap_or(Value::Null)),
        ("vcpu_pinning".to_owned(), Value::Map(pins.into())),
        ("hugepages".to_owned(), Value::Bool(doc.descendants().any(|n| n.has_tag_name("hugepages")))),
        ("firmware".to_owned(), Value::from(firmware)),
        ("graphics".to_owned(), Value::from(graphics)),
        ("tags".to_owned(), Value::Map(tags.into())),
        ("kernel".to_owned(), text("kernel")),
        ("initrd".to_owned(), text("initrd")),
        ("cmdline".to_owned(), text("cmdline")),
        ("disks".to_owned(), listed(disks, "disks")),
        ("interfaces".to_owned(), listed(interfaces, "interfaces")),
        ("serial_log".to_owned(), xml::attr(doc, "log", "file").map(Value::from).unwrap_or(Value::Null)),
        ("macs".to_owned(), Value::List(macs.into())),
    ])
}

pub fn read_all(conn: &Connect, wanted: &[(Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    let all = crate::calls::call("virConnectListAllDomains", || conn.list_all_domains(0)).map_err(err)?;
    let by_uuid: BTreeMap<Uuid, &Domain> = all.iter().filter_map(|d| d.uuid().ok().map(|u| (u, d))).collect();
    wanted
        .iter()
        .map(|(id, prior)| {
            let Some(dom) = by_uuid.get(id) else { return Ok(None) };
            match state(dom, prior) {
                Ok(s) => Ok(Some(keep_leases(s, prior))),
                // Undefined by someone else since the listing: gone, as if
                // it had not been listed.
                Err(_) if crate::found(conn.lookup_domain_by_uuid(*id))?.is_none() => Ok(None),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// Lease addresses come and go with DHCP renewals; they are reported, not
/// compared.
fn keep_leases(mut state: Value, prior: &Value) -> Value {
    if let (Value::Map(m), false) = (&mut state, prior.get("ip_addresses").is_null()) {
        if m.get("ip_addresses").and_then(|v| v.as_list()).is_some_and(|l| l.is_empty()) {
            m.insert("ip_addresses".into(), prior.get("ip_addresses").clone());
        }
    }
    state
}

/// Updates the domain. With an undo record nothing needs securing first:
/// the record itself holds the previous definition (see `domain_undo`).
pub fn update(conn: &Connect, id: Uuid, prior: &Value, planned: &Value, default_type: &str) -> Result<Value> {
    let dom = conn.lookup_domain_by_uuid(id).map_err(err)?;
    let domain_type = planned.get("type").as_str().or(prior.get("type").as_str()).unwrap_or(default_type).to_owned();
    let running = dom.is_active().map_err(err)?;
    let disruptions = plan(Some(prior), planned).disruptions;
    let restart_keys = [
        "type", "max_vcpus", "max_memory", "machine", "kernel", "initrd", "cmdline", "serial_log", "cpu_mode", "cpu_model",
        "vcpu_pinning", "hugepages", "firmware", "graphics",
    ];
    // A restart that is pending (the guest runs an older definition) is
    // done now, whatever else changes.
    let needs_restart = restart_keys.iter().any(|k| prior.get(k) != planned.get(k))
        || disruptions.values().any(|d| *d == Disruption::Restart)
        || prior.get("pending_restart").as_bool() == Some(true)
        || running && crate::domain_restart::pending(&dom, &xml::parse(&dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).map_err(err)?)?)?;
    // The new persistent definition replaces the old one in one call. NICs
    // keep the MACs libvirt gave them (by position): a new MAC would be a
    // new NIC to the guest and to DHCP.
    let kept_macs = persistent_macs(&dom)?;
    crate::calls::with_xml("virDomainDefineXML", &domain_xml(conn, id, &with_macs(planned, &kept_macs), &domain_type)?, |x| conn.define_domain_xml(x)).map_err(err)?;
    if running && needs_restart {
        shutdown(&dom, planned)?;
        crate::calls::call("virDomainCreate", || dom.create()).map_err(err)?;
        wait_for_ip(&dom, planned)?;
    } else if running {
        // Hot-plugged NICs get the MACs the new definition has.
        apply_live(conn, &dom, prior, planned, &persistent_macs(&dom)?)?;
    }
    match (dom.is_active().map_err(err)?, planned.get("running").as_bool() != Some(false)) {
        (false, true) => {
            crate::calls::call("virDomainCreate", || dom.create()).map_err(err)?;
            wait_for_ip(&dom, planned)?;
        }
        (true, false) => shutdown(&dom, planned)?,
        _ => {}
    }
    if prior.get("autostart") != planned.get("autostart") {
        dom.set_autostart(planned.get("autostart").as_bool().unwrap_or(false)).map_err(err)?;
    }
    state(&dom, planned)
}

fn set_live_tags(dom: &Domain, v: &Value) -> Result<()> {
    let tags = tag_elements(v).map(|t| format!("<tags>{t}</tags>"));
    dom.set_metadata(sys::VIR_DOMAIN_METADATA_ELEMENT as i32, tags.as_deref(), Some("strata"), Some(TAGS_URI), sys::VIR_DOMAIN_AFFECT_LIVE)
        .map_err(err)
}

/// The MACs of the NICs of the domain's persistent definition, in order.
pub(crate) fn persistent_macs(dom: &Domain) -> Result<Vec<Value>> {
    let desc = dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).map_err(err)?;
    Ok(definition_values(&xml::parse(&desc)?, &Value::Null).get("macs").and_then(|m| m.as_list()).unwrap_or_default().to_vec())
}

/// `v` with each NIC that names no MAC given the one at its position in `macs`.
fn with_macs(v: &Value, macs: &[Value]) -> Value {
    let mut v = v.clone();
    if let Value::Map(m) = &mut v {
        if let Some(Value::List(nics)) = m.get_mut("interfaces") {
            for (nic, mac) in nics.iter_mut().zip(macs) {
                if let (Value::Map(n), false) = (nic, mac.is_null()) {
                    if n.get("mac").is_none_or(|x| x.is_null()) {
                        n.insert("mac".into(), mac.clone());
                    }
                }
            }
        }
    }
    v
}

/// Changes a running guest live from `from` to `to`: memory (balloon),
/// vCPUs, disks and NICs added or removed at the end (an added NIC takes
/// the MAC at its position in `macs`, the persistent definition's), and
/// the tags. The persistent definition is not touched.
pub(crate) fn apply_live(conn: &Connect, dom: &Domain, from: &Value, to: &Value, macs: &[Value]) -> Result<()> {
    let live = sys::VIR_DOMAIN_AFFECT_LIVE;
    if from.get("memory") != to.get("memory") {
        dom.set_memory_flags(num(to, "memory", 128) as u64 * 1024, live).map_err(err)?;
    }
    if from.get("vcpus") != to.get("vcpus") {
        dom.set_vcpus_flags(num(to, "vcpus", 1) as u32, live).map_err(err)?;
    }
    if let Some((added, removed)) = tail_change(from.get("disks"), to.get("disks")) {
        let base = from.get("disks").as_list().map(|l| l.len()).unwrap_or(0) - removed.len();
        for (i, d) in removed.iter().enumerate() {
            dom.detach_device_flags(&disk_xml(conn, base + i, d)?, live).map_err(err)?;
        }
        for (i, d) in added.iter().enumerate() {
            dom.attach_device_flags(&disk_xml(conn, base + i, d)?, live).map_err(err)?;
        }
    }
    crate::domain_rbd::resize_live(dom, from, to, crate::domain_xml::disk_target)?;
    if let Some((retagged, added, removed)) = nic_change(from.get("interfaces"), to.get("interfaces")) {
        let live_xml = dom.xml_desc(0).map_err(err)?;
        let live_doc = xml::parse(&live_xml)?;
        let live_nodes: Vec<roxmltree::Node> = live_doc.descendants().filter(|n| n.has_tag_name("interface")).collect();
        // Re-tag with the device's own live XML and new VLANs; libvirt runs
        // ovs-vsctl on the port.
        let new_nics = to.get("interfaces").as_list().unwrap_or_default();
        for i in retagged {
            let node = live_nodes.get(i).ok_or_else(|| ProviderError::new(format!("the running guest has no NIC {i} to re-tag")))?;
            dom.update_device_flags(&with_vlans(&live_xml, node, &new_nics[i]), live)
                .map_err(|e| ProviderError::new(format!("re-tagging NIC {i} live: {}", err(e))))?;
            // libvirt writes the port only when its XML changes: a port
            // re-tagged outside libvirt is put back here.
            if let Some(Some(port)) = crate::ovs_vlan::ports_of(&live_doc).get(i) {
                crate::ovs_vlan::write(port, &crate::ovs_vlan::Vlans::of_nic(&new_nics[i]))
                    .map_err(|e| ProviderError::new(format!("re-tagging NIC {i} live: {e}")))?;
            }
        }
        // Detach with the device's own live XML: libvirt matches on it.
        let live_ifaces: Vec<&str> = live_nodes.iter().map(|n| &live_xml[n.range()]).collect();
        let keep = live_ifaces.len().saturating_sub(removed.len());
        for xml in &live_ifaces[keep..] {
            dom.detach_device_flags(xml, live).map_err(err)?;
        }
        let base = from.get("interfaces").as_list().map(|l| l.len()).unwrap_or(0) - removed.len();
        let added = with_macs(&Value::object([("interfaces", Value::List(added.into()))]), macs.get(base..).unwrap_or_default());
        for n in added.get("interfaces").as_list().unwrap_or_default() {
            dom.attach_device_flags(&interface_xml(n), live).map_err(err)?;
        }
    }
    if from.get("tags") != to.get("tags") {
        set_live_tags(dom, to)?;
    }
    Ok(())
}

/// ACPI shutdown, then destroy when the guest does not stop in time.
pub(crate) fn shutdown(dom: &Domain, v: &Value) -> Result<()> {
    let timeout = Duration::from_secs(num(v, "shutdown_timeout", 60).max(0) as u64);
    let _ = dom.shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !dom.is_active().map_err(err)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if dom.is_active().map_err(err)? {
        crate::calls::call("virDomainDestroy", || dom.destroy()).map_err(err)?;
    }
    Ok(())
}

pub fn delete(conn: &Connect, id: Uuid) -> Result<()> {
    let Some(dom) = crate::found(conn.lookup_domain_by_uuid(id))? else {
        return Ok(());
    };
    if dom.is_active().map_err(err)? {
        crate::calls::call("virDomainDestroy", || dom.destroy()).map_err(err)?;
    }
    dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_NVRAM)
        .map_err(err)
}

/// Finds a domain by name or UUID for `import`.
pub fn lookup(conn: &Connect, import_id: &str) -> Result<Option<Imported>> {
    let Some(dom) = crate::by_uuid_or_name(import_id, |u| conn.lookup_domain_by_uuid(u), |n| conn.lookup_domain_by_name(n))? else {
        return Ok(None);
    };
    let id = dom.uuid().map_err(err)?;
    Ok(Some(Imported { state: state(&dom, &Value::Null)?, id: Some(id) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ovs(vlan: i64) -> Value {
        Value::object([("ovs_bridge", Value::from("lan")), ("vlan", Value::from(vlan))])
    }

    #[test]
    fn bad_vlans_are_diagnostics() {
        let trunks = |t: &[i64]| Value::List(t.iter().map(|t| Value::from(*t)).collect());
        let cases = [
            (ovs(4096), "vlan 4096 is outside 0-4095"),
            (Value::object([("ovs_bridge", Value::from("lan")), ("trunks", trunks(&[10, 20, 10]))]), "trunk VLAN 10 is listed twice"),
            (Value::object([("ovs_bridge", Value::from("lan")), ("trunks", trunks(&[-1]))]), "trunk VLAN -1 is outside 0-4095"),
            (Value::object([("bridge", Value::from("br0")), ("vlan", Value::from(10))]), "vlan and trunks need an Open vSwitch bridge"),
            (Value::object([("network", Value::from("n")), ("ovs_bridge", Value::from("lan"))]), "exactly one of network, bridge and ovs_bridge"),
        ];
        for (nic, want) in cases {
            let errors = validate_interface(&nic);
            assert!(errors.iter().any(|e| e.contains(want)), "{nic:?}: {errors:?}");
        }
        assert!(validate_interface(&ovs(10)).is_empty());
    }

    #[test]
    fn a_vlan_change_is_live_and_a_bridge_change_restarts() {
        let list = |nics: Vec<Value>| Value::List(nics.into());
        let config = |nics: Vec<Value>| Value::object([("interfaces", list(nics))]);
        let live = plan(Some(&config(vec![ovs(10)])), &config(vec![ovs(20), ovs(30)]));
        assert_eq!(live.disruptions.get("interfaces"), Some(&Disruption::Live));
        assert!(live.planned.is_some_and(|p| p.get("macs").is_unknown()), "a new NIC means new macs");
        let other_bridge = Value::object([("ovs_bridge", Value::from("wan")), ("vlan", Value::from(20))]);
        let restart = plan(Some(&config(vec![ovs(10)])), &config(vec![other_bridge]));
        assert_eq!(restart.disruptions.get("interfaces"), Some(&Disruption::Restart));
        let retag = nic_change(&list(vec![ovs(10), ovs(11)]), &list(vec![ovs(10), ovs(12)]));
        assert_eq!(retag, Some((vec![1], vec![], vec![])));
    }
}
