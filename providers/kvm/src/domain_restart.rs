//! Whether a running domain still runs an older definition than its
//! persistent one: a restart Strata began but did not finish (killed during
//! the graceful shutdown, after the new definition was stored), or a change
//! made with `virsh ... --config`. Refresh reports it as `pending_restart`
//! so that the plan proposes the restart instead of "No changes".
//!
//! The live XML is not the persistent XML plus nothing: libvirt expands it
//! when the guest starts (aliases, PCI addresses, a `host-model` CPU becomes
//! `custom` with features, `firmware='efi'` becomes a `<loader>`, a network
//! NIC names its bridge). So both are reduced to the parts a restart
//! changes, normalised the same way, and those are compared.

use crate::err;
use crate::xml;
use strata_provider::Result;
use virt::domain::Domain;

/// True when `dom` runs, and what it runs differs from `persistent` in
/// something only a restart applies.
pub fn pending(dom: &Domain, persistent: &roxmltree::Document) -> Result<bool> {
    if !dom.is_active().map_err(err)? {
        return Ok(false);
    }
    let live_xml = dom.xml_desc(0).map_err(err)?;
    let live = xml::parse(&live_xml)?;
    Ok(differs(persistent, &live))
}

/// Compares the restart-relevant parts of a persistent and a live definition.
pub fn differs(persistent: &roxmltree::Document, live: &roxmltree::Document) -> bool {
    // A host-model CPU is expanded into the host's model when the guest
    // starts: the live CPU cannot be compared with it.
    let host_model = cpu_mode(persistent) == Some("host-model");
    let (p, l) = (view(persistent, host_model), view(live, host_model));
    // Disks and NICs added or removed at the end are hot-plugged (and a
    // guest acknowledges an unplug only later): only a change within the
    // devices both have takes a restart.
    let common = |a: &[String], b: &[String]| {
        let n = a.len().min(b.len());
        a[..n] != b[..n]
    };
    p.scalars != l.scalars || common(&p.disks, &l.disks) || common(&p.nics, &l.nics)
}

struct View {
    scalars: Vec<(&'static str, String)>,
    disks: Vec<String>,
    nics: Vec<String>,
}

fn cpu_mode<'a>(doc: &'a roxmltree::Document) -> Option<&'a str> {
    doc.root_element().children().find(|c| c.has_tag_name("cpu")).and_then(|c| c.attribute("mode"))
}

fn view(doc: &roxmltree::Document, skip_cpu: bool) -> View {
    let root = doc.root_element();
    let child = |tag: &str| root.children().find(|c| c.has_tag_name(tag));
    let text = |tag: &str| xml::text(doc, tag).unwrap_or_default().to_owned();
    let os = child("os");
    let uefi = os.is_some_and(|o| {
        o.attribute("firmware") == Some("efi") || o.children().any(|c| c.has_tag_name("loader") && c.attribute("type") == Some("pflash"))
    });
    let mut scalars = vec![
        ("type", root.attribute("type").unwrap_or_default().to_owned()),
        ("max_vcpus", child("vcpu").and_then(|n| n.text()).unwrap_or_default().to_owned()),
        ("max_memory", child("memory").and_then(|n| n.text()).unwrap_or_default().to_owned()),
        ("machine", xml::attr(doc, "type", "machine").unwrap_or_default().to_owned()),
        ("kernel", text("kernel")),
        ("initrd", text("initrd")),
        ("cmdline", text("cmdline")),
        ("serial_log", xml::attr(doc, "log", "file").unwrap_or_default().to_owned()),
        ("firmware", if uefi { "uefi" } else { "bios" }.to_owned()),
        ("hugepages", doc.descendants().any(|n| n.has_tag_name("hugepages")).to_string()),
        (
            "vcpu_pinning",
            doc.descendants()
                .filter(|n| n.has_tag_name("vcpupin"))
                .map(|n| format!("{}={};", n.attribute("vcpu").unwrap_or_default(), n.attribute("cpuset").unwrap_or_default()))
                .collect(),
        ),
        (
            "graphics",
            doc.descendants().filter(|n| n.has_tag_name("graphics")).filter_map(|n| n.attribute("type")).collect::<Vec<_>>().join(","),
        ),
    ];
    if !skip_cpu {
        let cpu = child("cpu");
        let model = cpu.and_then(|c| c.children().find(|m| m.has_tag_name("model"))).and_then(|m| m.text()).unwrap_or_default();
        scalars.push(("cpu", format!("{}/{model}", cpu.and_then(|c| c.attribute("mode")).unwrap_or_default())));
    }
    let devices = root.children().find(|c| c.has_tag_name("devices"));
    let devices: Vec<roxmltree::Node> = devices.map(|d| d.children().filter(|c| c.is_element()).collect()).unwrap_or_default();
    let sub = |n: &roxmltree::Node, tag: &str, attr: &str| {
        n.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.attribute(attr)).unwrap_or_default().to_owned()
    };
    let disks = devices
        .iter()
        .filter(|n| n.has_tag_name("disk"))
        .map(|d| {
            let src = d.children().find(|c| c.has_tag_name("source"));
            let src = |a: &str| src.and_then(|s| s.attribute(a)).unwrap_or_default();
            format!(
                "{}/{}/{}/{}|{}|{}|{}",
                src("name"),
                src("pool"),
                src("volume"),
                src("file"),
                sub(d, "target", "bus"),
                sub(d, "boot", "order"),
                d.children().any(|c| c.has_tag_name("readonly"))
            )
        })
        .collect();
    let nics = devices
        .iter()
        .filter(|n| n.has_tag_name("interface"))
        .map(|n| {
            let kind = n.attribute("type").unwrap_or_default();
            let source = if kind == "network" { sub(n, "source", "network") } else { sub(n, "source", "bridge") };
            let vlan = crate::domain_xml::vlan_of(n);
            format!("{kind}:{source}|{}|{}|{}|{vlan:?}", sub(n, "mac", "address"), sub(n, "model", "type"), sub(n, "virtualport", "type"))
        })
        .collect();
    View { scalars, disks, nics }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(s).unwrap()
    }

    #[test]
    fn live_expansions_are_not_a_pending_restart_but_a_changed_cmdline_is() {
        let persistent = "<domain type='qemu'><vcpu>1</vcpu><memory>131072</memory><os firmware='efi'><type machine='pc-q35-7.2'>hvm</type><cmdline>a</cmdline></os>\
            <cpu mode='host-model'/><devices><interface type='network'><source network='n'/><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface></devices></domain>";
        let live = "<domain type='qemu' id='3'><vcpu>1</vcpu><memory>131072</memory><os><type machine='pc-q35-7.2'>hvm</type><loader type='pflash'>/x.fd</loader><cmdline>a</cmdline></os>\
            <cpu mode='custom'><model>EPYC</model></cpu><devices><interface type='network'><source network='n' bridge='virbr1'/><target dev='vnet0'/><mac address='52:54:00:00:00:01'/><model type='virtio'/><alias name='net0'/></interface></devices></domain>";
        assert!(!differs(&doc(persistent), &doc(live)));
        assert!(differs(&doc(&persistent.replace("<cmdline>a", "<cmdline>b")), &doc(live)));
        // A NIC still being unplugged is not a restart.
        let extra_nic = live.replace("</devices>", "<interface type='network'><source network='n'/></interface></devices>");
        assert!(!differs(&doc(persistent), &doc(&extra_nic)));
    }
}
