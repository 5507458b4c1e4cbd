//! The libvirt XML of a `kvm_domain`, written from its attributes: the whole
//! definition, and the disk and NIC devices that are hot-plugged alone.

use crate::domain::num;
use crate::xml::esc;
use strata_provider::{Result, Value};
use uuid::Uuid;
use virt::connect::Connect;

/// The device name of the `i`th disk on `bus`: vda... for virtio, sda... else.
fn target(i: usize, bus: &str) -> String {
    let prefix = if bus == "virtio" { "vd" } else { "sd" };
    format!("{prefix}{}", (b'a' + i as u8) as char)
}

/// The device name of the `i`th disk `d`.
pub(crate) fn disk_target(i: usize, d: &Value) -> String {
    target(i, d.get("bus").as_str().unwrap_or("virtio"))
}

pub(crate) fn disk_xml(conn: &Connect, i: usize, d: &Value) -> Result<String> {
    if !d.get("rbd").is_null() {
        let readonly = if d.get("readonly").as_bool() == Some(true) { "<readonly/>" } else { "" };
        let boot = d.get("boot_order").as_i64().map(|o| format!("<boot order='{o}'/>")).unwrap_or_default();
        let bus = d.get("bus").as_str().unwrap_or("virtio");
        return Ok(crate::domain_rbd::disk_xml(d, &target(i, bus), bus, &format!("{boot}{readonly}")));
    }
    let pool = d.get("pool").as_str().unwrap_or_default();
    let volume = d.get("volume").as_str().unwrap_or_default();
    // The driver type must match the volume's format.
    let format = conn
        .lookup_storage_pool_by_name(pool)
        .and_then(|p| p.lookup_storage_vol_by_name(volume))
        .and_then(|v| v.xml_desc(0))
        .ok()
        .and_then(|x| {
            let doc = roxmltree::Document::parse(&x).ok()?;
            let f = doc.descendants().find(|n| n.has_tag_name("format"))?.attribute("type")?.to_owned();
            Some(f)
        })
        .unwrap_or_else(|| "raw".into());
    let format = if format == "iso" { "raw".to_owned() } else { format };
    let readonly = if d.get("readonly").as_bool() == Some(true) { "<readonly/>" } else { "" };
    let bus = d.get("bus").as_str().unwrap_or("virtio");
    let boot = d.get("boot_order").as_i64().map(|o| format!("<boot order='{o}'/>")).unwrap_or_default();
    Ok(format!(
        "<disk type='volume' device='disk'><driver name='qemu' type='{}'/><source pool='{}' volume='{}'/><target dev='{}' bus='{}'/>{boot}{readonly}</disk>",
        esc(&format),
        esc(pool),
        esc(volume),
        target(i, bus),
        esc(bus)
    ))
}

pub(crate) fn interface_xml(n: &Value) -> String {
    let mac = n.get("mac").as_str().map(|m| format!("<mac address='{}'/>", esc(m))).unwrap_or_default();
    let model = esc(n.get("model").as_str().unwrap_or("virtio"));
    match n.get("bridge").as_str() {
        Some(bridge) => {
            let ovs = if n.get("openvswitch").as_bool() == Some(true) { "<virtualport type='openvswitch'/>" } else { "" };
            let vlan = n.get("vlan").as_i64().map(|t| format!("<vlan><tag id='{t}'/></vlan>")).unwrap_or_default();
            format!("<interface type='bridge'><source bridge='{}'/>{ovs}{vlan}{mac}<model type='{model}'/></interface>", esc(bridge))
        }
        None => format!(
            "<interface type='network'><source network='{}'/>{mac}<model type='{model}'/></interface>",
            esc(n.get("network").as_str().unwrap_or_default())
        ),
    }
}

/// Strata's namespace for user tags in a domain's metadata.
pub(crate) const TAGS_URI: &str = "https://strata.dev/xmlns/tags/1";

/// The `<tag>` elements of the user tags, if any are set.
pub(crate) fn tag_elements(v: &Value) -> Option<String> {
    let tags = v.get("tags").as_map().filter(|t| !t.is_empty())?;
    Some(tags.iter().map(|(k, t)| format!("<tag name='{}'>{}</tag>", esc(k), esc(t.as_str().unwrap_or_default()))).collect())
}

pub(crate) fn domain_xml(conn: &Connect, id: Uuid, v: &Value, domain_type: &str) -> Result<String> {
    let memory = num(v, "memory", 128);
    let max_memory = num(v, "max_memory", memory);
    let vcpus = num(v, "vcpus", 1);
    let max_vcpus = num(v, "max_vcpus", vcpus);
    let machine = v.get("machine").as_str().unwrap_or("pc");
    let mut os = format!("<type arch='x86_64' machine='{}'>hvm</type>", esc(machine));
    let firmware = if v.get("firmware").as_str() == Some("uefi") { " firmware='efi'" } else { "" };
    for key in ["kernel", "initrd", "cmdline"] {
        if let Some(s) = v.get(key).as_str() {
            os.push_str(&format!("<{key}>{}</{key}>", esc(s)));
        }
    }
    let boot_orders = v.get("disks").as_list().unwrap_or_default().iter().any(|d| !d.get("boot_order").is_null());
    if v.get("kernel").is_null() && !boot_orders {
        os.push_str("<boot dev='hd'/>");
    }
    let mut extra = String::new();
    match (v.get("cpu_mode").as_str(), v.get("cpu_model").as_str()) {
        (Some(mode), Some(model)) => extra.push_str(&format!("<cpu mode='{}'><model>{}</model></cpu>", esc(mode), esc(model))),
        (Some(mode), None) => extra.push_str(&format!("<cpu mode='{}'/>", esc(mode))),
        (None, Some(model)) => extra.push_str(&format!("<cpu mode='custom'><model>{}</model></cpu>", esc(model))),
        (None, None) => {}
    }
    if let Some(pins) = v.get("vcpu_pinning").as_map().filter(|p| !p.is_empty()) {
        let pins: String = pins.iter().map(|(vcpu, set)| format!("<vcpupin vcpu='{}' cpuset='{}'/>", esc(vcpu), esc(set.as_str().unwrap_or_default()))).collect();
        extra.push_str(&format!("<cputune>{pins}</cputune>"));
    }
    if v.get("hugepages").as_bool() == Some(true) {
        extra.push_str("<memoryBacking><hugepages/></memoryBacking>");
    }
    if let Some(tags) = tag_elements(v) {
        extra.push_str(&format!("<metadata><strata:tags xmlns:strata='{TAGS_URI}'>{tags}</strata:tags></metadata>"));
    }
    let mut devices = String::new();
    for (i, d) in v.get("disks").as_list().unwrap_or_default().iter().enumerate() {
        devices.push_str(&disk_xml(conn, i, d)?);
    }
    for n in v.get("interfaces").as_list().unwrap_or_default() {
        devices.push_str(&interface_xml(n));
    }
    let log = v.get("serial_log").as_str().map(|p| format!("<log file='{}' append='off'/>", esc(p))).unwrap_or_default();
    devices.push_str(&format!("<serial type='pty'>{log}<target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>"));
    match v.get("graphics").as_str() {
        Some("vnc") => devices.push_str("<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>"),
        Some("spice") => devices.push_str("<graphics type='spice' autoport='yes' listen='127.0.0.1'/>"),
        _ => {}
    }
    devices.push_str("<memballoon model='virtio'/>");
    Ok(format!(
        "<domain type='{domain_type}'><name>{}</name><uuid>{id}</uuid>\
         <memory unit='MiB'>{max_memory}</memory><currentMemory unit='MiB'>{memory}</currentMemory>\
         <vcpu placement='static' current='{vcpus}'>{max_vcpus}</vcpu>\
         {extra}<os{firmware}>{os}</os><features><acpi/><apic/></features>\
         <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
         <devices>{devices}</devices></domain>",
        esc(v.get("name").as_str().unwrap_or_default())
    ))
}
