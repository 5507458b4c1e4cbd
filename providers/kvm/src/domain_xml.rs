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

/// The bridge an Open vSwitch NIC plugs into: `ovs_bridge`, or the older
/// spelling `bridge` + `openvswitch = true`.
pub(crate) fn ovs_bridge(n: &Value) -> Option<&str> {
    n.get("ovs_bridge").as_str().or_else(|| n.get("bridge").as_str().filter(|_| n.get("openvswitch").as_bool() == Some(true)))
}

/// The `<vlan>` element of an Open vSwitch NIC: an access tag (`vlan`), a
/// trunk (`trunks`), or a trunk whose untagged traffic is on `vlan`.
/// libvirt hands it to `ovs-vsctl` as the port's tag, trunks and vlan_mode.
pub(crate) fn vlan_xml(n: &Value) -> String {
    let tag = n.get("vlan").as_i64();
    let trunks: Vec<i64> = n.get("trunks").as_list().unwrap_or_default().iter().filter_map(Value::as_i64).collect();
    match (tag, trunks.is_empty()) {
        (None, true) => String::new(),
        (Some(t), true) => format!("<vlan><tag id='{t}'/></vlan>"),
        (native, false) => {
            let native = native.map(|t| format!("<tag id='{t}' nativeMode='untagged'/>")).unwrap_or_default();
            let tags: String = trunks.iter().map(|t| format!("<tag id='{t}'/>")).collect();
            format!("<vlan trunk='yes'>{native}{tags}</vlan>")
        }
    }
}

/// What an `<interface>` element's `<vlan>` says: `(vlan, trunks)` as the
/// schema spells them (the native VLAN of a trunk is `vlan`).
pub(crate) fn vlan_of(interface: &roxmltree::Node) -> (Option<i64>, Vec<i64>) {
    let Some(vlan) = interface.children().find(|c| c.has_tag_name("vlan")) else { return (None, Vec::new()) };
    let tags = vlan.children().filter(|c| c.has_tag_name("tag"));
    let id = |t: roxmltree::Node| t.attribute("id").and_then(|i| i.parse::<i64>().ok());
    if vlan.attribute("trunk") != Some("yes") {
        return (tags.clone().find_map(id), Vec::new());
    }
    let native = tags.clone().find(|t| t.attribute("nativeMode").is_some()).and_then(id);
    (native, tags.filter(|t| t.attribute("nativeMode").is_none()).filter_map(id).collect())
}

/// `live_interface` (an `<interface>` element of the running guest's XML,
/// with its interface ID, target and address) with the VLANs of `n`: what
/// `virDomainUpdateDeviceFlags` takes to re-tag the port live. libvirt
/// refuses anything that differs from the running device in more than the
/// VLANs, so the device's own XML is kept whole.
pub(crate) fn with_vlans(live_xml: &str, live_interface: &roxmltree::Node, n: &Value) -> String {
    let element = &live_xml[live_interface.range()];
    let offset = live_interface.range().start;
    let vlans = vlan_xml(n);
    if let Some(old) = live_interface.children().find(|c| c.has_tag_name("vlan")) {
        let r = old.range();
        return format!("{}{vlans}{}", &element[..r.start - offset], &element[r.end - offset..]);
    }
    // No VLAN yet: the new element goes where libvirt writes it, before the
    // closing tag (libvirt does not mind the order of device children).
    let close = element.rfind("</interface>").unwrap_or(element.len());
    format!("{}{vlans}{}", &element[..close], &element[close..])
}

pub(crate) fn interface_xml(n: &Value) -> String {
    let mac = n.get("mac").as_str().map(|m| format!("<mac address='{}'/>", esc(m))).unwrap_or_default();
    let model = esc(n.get("model").as_str().unwrap_or("virtio"));
    if let Some(bridge) = ovs_bridge(n) {
        let vlan = vlan_xml(n);
        return format!(
            "<interface type='bridge'><source bridge='{}'/><virtualport type='openvswitch'/>{vlan}{mac}<model type='{model}'/></interface>",
            esc(bridge)
        );
    }
    match n.get("bridge").as_str() {
        Some(bridge) => format!("<interface type='bridge'><source bridge='{}'/>{mac}<model type='{model}'/></interface>", esc(bridge)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(vlan: Option<i64>, trunks: &[i64]) -> Value {
        let mut fields = vec![("ovs_bridge", Value::from("lan"))];
        if let Some(v) = vlan {
            fields.push(("vlan", Value::from(v)));
        }
        if !trunks.is_empty() {
            fields.push(("trunks", Value::List(trunks.iter().map(|t| Value::from(*t)).collect())));
        }
        Value::object(fields)
    }

    #[test]
    fn vlans_read_back_as_written() {
        for (vlan, trunks) in [(None, vec![]), (Some(10), vec![]), (None, vec![10, 20]), (Some(5), vec![10, 20])] {
            let xml = interface_xml(&nic(vlan, &trunks));
            assert!(xml.contains("<virtualport type='openvswitch'/>"), "{xml}");
            let doc = roxmltree::Document::parse(&xml).unwrap();
            assert_eq!(vlan_of(&doc.root_element()), (vlan, trunks), "{xml}");
        }
    }

    #[test]
    fn retagging_keeps_the_live_device_and_swaps_its_vlans() {
        let live = "<domain><devices><interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='lan'/>\
            <vlan><tag id='10'/></vlan><virtualport type='openvswitch'><parameters interfaceid='x'/></virtualport>\
            <target dev='vnet0'/></interface></devices></domain>";
        let doc = roxmltree::Document::parse(live).unwrap();
        let iface = doc.descendants().find(|n| n.has_tag_name("interface")).unwrap();
        let moved = with_vlans(live, &iface, &nic(Some(20), &[]));
        assert!(moved.contains("<vlan><tag id='20'/></vlan>") && !moved.contains("'10'"), "{moved}");
        assert!(moved.contains("interfaceid='x'") && moved.contains("vnet0") && moved.starts_with("<interface"), "{moved}");
        let untagged = with_vlans(live, &iface, &nic(None, &[]));
        assert!(!untagged.contains("<vlan") && untagged.ends_with("</interface>"), "{untagged}");
        let again = roxmltree::Document::parse(&untagged).unwrap();
        let tagged = with_vlans(&untagged, &again.root_element(), &nic(None, &[30, 40]));
        assert!(tagged.contains("<vlan trunk='yes'><tag id='30'/><tag id='40'/></vlan></interface>"), "{tagged}");
    }
}
