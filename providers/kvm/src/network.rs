//! `kvm_network`: a libvirt virtual network.
//!
//! Whether the network is started is part of its state (`active`): a
//! network left defined but stopped (an interrupted create, a host
//! restart without autostart) is started by the next apply. Undo records
//! keep the previous persistent XML: an update is undone by restoring the
//! DHCP and DNS hosts live and the definition exactly; a retired network
//! (destroyed and undefined for its replacement) is defined and started
//! again.

use crate::undo;
use crate::xml::{self, esc};
use crate::err;
use std::collections::BTreeMap;
use std::net::IpAddr;
use strata_provider::{Attribute, Block, Disruption, Imported, Result, Type, UndoRecord, Value};
use uuid::Uuid;
use virt::connect::Connect;
use virt::network::Network;
use virt::sys;

const RECREATE: &str = "Recreates the network: attached guests lose their link until re-attached.";

pub fn schema() -> Block {
    let host = Type::Object(BTreeMap::from([
        ("mac".into(), Type::String),
        ("ip".into(), Type::String),
        ("name".into(), Type::Optional(Box::new(Type::String), None)),
    ]));
    let dns = Type::Object(BTreeMap::from([("ip".into(), Type::String), ("hostnames".into(), Type::List(Box::new(Type::String)))]));
    Block::new("A libvirt virtual network.")
        .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace).describe(RECREATE))
        .attr(
            "mode",
            Attribute::optional(Type::String)
                .on_change(Disruption::Replace)
                .describe("isolated (default), nat, route, bridge (to an existing bridge) or openvswitch."),
        )
        .attr(
            "bridge",
            Attribute::optional_computed(Type::String)
                .on_change(Disruption::Replace)
                .describe("The host bridge; libvirt picks virbrN when unset (isolated, nat, route)."),
        )
        .attr(
            "addresses",
            Attribute::optional(Type::List(Box::new(Type::String)))
                .on_change(Disruption::Replace)
                .describe("IPv4/IPv6 CIDRs; the first host address of each is the gateway."),
        )
        .attr(
            "dhcp",
            Attribute::optional(Type::Bool).on_change(Disruption::Replace).describe("Serve DHCP on the first IPv4 address."),
        )
        .attr(
            "dhcp_ranges",
            Attribute::optional(Type::List(Box::new(Type::Object(BTreeMap::from([
                ("start".into(), Type::String),
                ("end".into(), Type::String),
            ])))))
            .on_change(Disruption::Replace)
            .describe("Address ranges DHCP hands out; default: the whole first IPv4 subnet but the gateway."),
        )
        .attr(
            "dhcp_hosts",
            Attribute::optional(Type::List(Box::new(host)))
                .describe("Static leases (mac, ip, name); changed live with virNetworkUpdate."),
        )
        .attr(
            "dns_hosts",
            Attribute::optional(Type::List(Box::new(dns))).describe("DNS host entries; changed live."),
        )
        .attr("domain", Attribute::optional(Type::String).on_change(Disruption::Replace).describe(RECREATE))
        .attr("mtu", Attribute::optional(Type::Number).on_change(Disruption::Replace).describe(RECREATE))
        .attr("autostart", Attribute::optional(Type::Bool).describe("Start with libvirtd; changed live."))
        .attr(
            "active",
            Attribute::optional(Type::Bool)
                .describe("Whether the network is started (default true); a stopped network is started by the next apply. Changed live."),
        )
        .attr("id", Attribute::computed(Type::String).describe("The libvirt UUID (the instance's identity)."))
}

/// Says what a replacement means for the guests on the network.
pub fn plan(prior: Option<&Value>, proposed: &Value) -> strata_provider::PlanResponse {
    let mut response = strata_provider::PlanResponse::default();
    let replaced = ["name", "mode", "bridge", "addresses", "dhcp", "dhcp_ranges", "domain", "mtu"]
        .iter()
        .any(|k| prior.is_some_and(|p| p.get(k) != proposed.get(k) && !proposed.get(k).is_unknown()));
    if replaced {
        response.notes.push(
            "the network is recreated: running guests attached to it lose their link until Strata re-attaches them to the new network".into(),
        );
    }
    response
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mode = config.get("mode").as_str().unwrap_or("isolated");
    if !matches!(mode, "isolated" | "nat" | "route" | "bridge" | "openvswitch") {
        out.push(("mode".into(), format!("unknown mode {mode:?} (isolated, nat, route, bridge, openvswitch)")));
    }
    if matches!(mode, "bridge" | "openvswitch") && config.get("bridge").as_str().is_none() {
        out.push(("bridge".into(), format!("mode {mode:?} needs the name of an existing bridge")));
    }
    for a in config.get("addresses").as_list().unwrap_or_default() {
        if let Some(s) = a.as_str() {
            if cidr(s).is_none() {
                out.push(("addresses".into(), format!("{s:?} is not a CIDR such as 10.0.0.0/24")));
            }
        }
    }
    out
}

/// Network address and prefix of a CIDR.
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

fn offset(addr: IpAddr, prefix: u8, n: u128, from_end: bool) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = 32 - prefix as u32;
            let base = u32::from(a) & !((1u64 << bits) as u32).wrapping_sub(1);
            let size = 1u64 << bits;
            let v = if from_end { base as u64 + size - 1 - n as u64 } else { base as u64 + n as u64 };
            IpAddr::V4((v as u32).into())
        }
        IpAddr::V6(a) => {
            let bits = 128 - prefix as u32;
            let mask = if bits == 128 { 0 } else { !((1u128 << bits) - 1) };
            let base = u128::from(a) & mask;
            let v = if from_end { base + ((1u128 << bits.min(127)) - 1) - n } else { base + n };
            IpAddr::V6(v.into())
        }
    }
}

fn network_xml(id: Uuid, v: &Value) -> String {
    let name = v.get("name").as_str().unwrap_or_default();
    let mode = v.get("mode").as_str().unwrap_or("isolated");
    let mut x = format!("<network>\n  <name>{}</name>\n  <uuid>{id}</uuid>\n", esc(name));
    match mode {
        "nat" | "route" => x.push_str(&format!("  <forward mode='{mode}'/>\n")),
        "bridge" | "openvswitch" => x.push_str("  <forward mode='bridge'/>\n"),
        _ => {}
    }
    if let Some(br) = v.get("bridge").as_str() {
        x.push_str(&format!("  <bridge name='{}'/>\n", esc(br)));
    }
    if mode == "openvswitch" {
        x.push_str("  <virtualport type='openvswitch'/>\n");
    }
    if let Some(mtu) = v.get("mtu").as_i64() {
        x.push_str(&format!("  <mtu size='{mtu}'/>\n"));
    }
    if let Some(d) = v.get("domain").as_str() {
        x.push_str(&format!("  <domain name='{}'/>\n", esc(d)));
    }
    let dns: Vec<&Value> = v.get("dns_hosts").as_list().unwrap_or_default().iter().collect();
    if !dns.is_empty() {
        x.push_str("  <dns>\n");
        for h in dns {
            x.push_str(&format!("    {}\n", dns_host_xml(h)));
        }
        x.push_str("  </dns>\n");
    }
    let mut dhcp_done = false;
    for a in v.get("addresses").as_list().unwrap_or_default() {
        let Some((addr, prefix)) = a.as_str().and_then(cidr) else { continue };
        let family = if addr.is_ipv6() { " family='ipv6'" } else { "" };
        let gateway = offset(addr, prefix, 1, false);
        x.push_str(&format!("  <ip address='{gateway}' prefix='{prefix}'{family}>\n"));
        if addr.is_ipv4() && !dhcp_done && v.get("dhcp").as_bool() == Some(true) {
            dhcp_done = true;
            x.push_str("    <dhcp>\n");
            match v.get("dhcp_ranges").as_list().filter(|r| !r.is_empty()) {
                Some(ranges) => {
                    for r in ranges {
                        let (start, end) = (r.get("start").as_str().unwrap_or_default(), r.get("end").as_str().unwrap_or_default());
                        x.push_str(&format!("      <range start='{}' end='{}'/>\n", esc(start), esc(end)));
                    }
                }
                None => {
                    let (start, end) = (offset(addr, prefix, 2, false), offset(addr, prefix, 1, true));
                    x.push_str(&format!("      <range start='{start}' end='{end}'/>\n"));
                }
            }
            for h in v.get("dhcp_hosts").as_list().unwrap_or_default() {
                x.push_str(&format!("      {}\n", dhcp_host_xml(h)));
            }
            x.push_str("    </dhcp>\n");
        }
        x.push_str("  </ip>\n");
    }
    x.push_str("</network>\n");
    x
}

fn dhcp_host_xml(h: &Value) -> String {
    let name = h.get("name").as_str().map(|n| format!(" name='{}'", esc(n))).unwrap_or_default();
    format!("<host mac='{}' ip='{}'{name}/>", esc(h.get("mac").as_str().unwrap_or_default()), esc(h.get("ip").as_str().unwrap_or_default()))
}

fn dns_host_xml(h: &Value) -> String {
    let names: String = h
        .get("hostnames")
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.as_str())
        .map(|n| format!("<hostname>{}</hostname>", esc(n)))
        .collect();
    format!("<host ip='{}'>{names}</host>", esc(h.get("ip").as_str().unwrap_or_default()))
}

pub fn create(conn: &Connect, id: Uuid, planned: &Value) -> Result<Value> {
    let net = crate::calls::with_xml("virNetworkDefineXML", &network_xml(id, planned), |x| conn.define_network_xml(x)).map_err(err)?;
    // A network that cannot start is undefined again: nothing half-made stays.
    if wants_active(planned) {
        if let Err(e) = crate::calls::call("virNetworkCreate", || net.create()) {
            let _ = crate::calls::call("virNetworkUndefine", || net.undefine());
            return Err(err(e));
        }
    }
    let autostart = planned.get("autostart").as_bool().unwrap_or(false);
    net.set_autostart(autostart).map_err(err)?;
    if wants_active(planned) {
        reattach_guests(conn, planned.get("name").as_str().unwrap_or_default())?;
    }
    state(&net, planned)
}

fn wants_active(v: &Value) -> bool {
    v.get("active").as_bool() != Some(false)
}

/// Running guests whose NICs use this network lost their link when an
/// earlier network of the same name was destroyed (a replacement):
/// unplugging and plugging each NIC again connects it to the new bridge.
fn reattach_guests(conn: &Connect, network: &str) -> Result<()> {
    let live = sys::VIR_DOMAIN_AFFECT_LIVE;
    for dom in crate::calls::call("virConnectListAllDomains", || conn.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)).map_err(err)? {
        // A guest undefined since the listing has no NIC left to reconnect.
        let Some(desc) = crate::found(dom.xml_desc(0))? else { continue };
        let doc = xml::parse(&desc)?;
        for iface in doc.descendants().filter(|n| n.has_tag_name("interface") && n.attribute("type") == Some("network")) {
            let uses = iface.children().any(|c| c.has_tag_name("source") && c.attribute("network") == Some(network));
            if !uses {
                continue;
            }
            let xml = &desc[iface.range()];
            if crate::found(dom.detach_device_flags(xml, live))?.is_none() {
                break;
            }
            // The guest acknowledges the unplug asynchronously.
            let mac = iface.children().find(|c| c.has_tag_name("mac")).and_then(|m| m.attribute("address")).unwrap_or_default();
            for _ in 0..100 {
                if !crate::found(dom.xml_desc(0))?.is_some_and(|now| now.contains(mac)) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let mac_xml = format!("<mac address='{mac}'/>");
            let model = iface.children().find(|c| c.has_tag_name("model")).and_then(|m| m.attribute("type")).unwrap_or("virtio");
            let fresh = format!("<interface type='network'><source network='{}'/>{mac_xml}<model type='{}'/></interface>", esc(network), esc(model));
            if crate::found(dom.attach_device_flags(&fresh, live))?.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// The state of a network, read back from libvirt. `config` supplies the
/// attributes libvirt does not report in a form we can compare (mode names).
fn state(net: &Network, config: &Value) -> Result<Value> {
    let desc = net.xml_desc(0).map_err(err)?;
    let doc = xml::parse(&desc)?;
    let forward = xml::attr(&doc, "forward", "mode");
    let ovs = doc.descendants().any(|n| n.has_tag_name("virtualport") && n.attribute("type") == Some("openvswitch"));
    let mode = match (forward, ovs) {
        (_, true) => "openvswitch",
        (Some("nat"), _) => "nat",
        (Some("route"), _) => "route",
        (Some("bridge"), _) => "bridge",
        _ => "isolated",
    };
    let mut addresses = Vec::new();
    let mut dhcp = false;
    let mut hosts = Vec::new();
    let mut ranges = Vec::new();
    for ip in doc.descendants().filter(|n| n.has_tag_name("ip")) {
        let (Some(a), Some(p)) = (ip.attribute("address").and_then(|a| a.parse::<IpAddr>().ok()), ip.attribute("prefix").and_then(|p| p.parse::<u8>().ok())) else {
            continue;
        };
        addresses.push(Value::from(format!("{}/{p}", offset(a, p, 0, false))));
        if let Some(d) = ip.children().find(|n| n.has_tag_name("dhcp")) {
            dhcp = true;
            for r in d.children().filter(|n| n.has_tag_name("range")) {
                ranges.push(Value::object([
                    ("start", Value::from(r.attribute("start").unwrap_or_default())),
                    ("end", Value::from(r.attribute("end").unwrap_or_default())),
                ]));
            }
            for h in d.children().filter(|n| n.has_tag_name("host")) {
                let mut m = BTreeMap::new();
                m.insert("mac".to_owned(), Value::from(h.attribute("mac").unwrap_or_default()));
                m.insert("ip".to_owned(), Value::from(h.attribute("ip").unwrap_or_default()));
                m.insert("name".to_owned(), h.attribute("name").map(Value::from).unwrap_or(Value::Null));
                hosts.push(Value::Map(m.into()));
            }
        }
    }
    let dns: Vec<Value> = doc
        .descendants()
        .filter(|n| n.has_tag_name("host") && n.parent().is_some_and(|p| p.has_tag_name("dns")))
        .map(|h| {
            let names = h.children().filter(|c| c.has_tag_name("hostname")).filter_map(|c| c.text()).map(Value::from).collect();
            Value::object([("ip", Value::from(h.attribute("ip").unwrap_or_default())), ("hostnames", Value::List(names))])
        })
        .collect();
    let keep_null = |list: Vec<Value>, key: &str| if list.is_empty() && config.get(key).is_null() { Value::Null } else { Value::List(list.into()) };
    Ok(Value::object([
        ("name", Value::from(net.name().map_err(err)?)),
        ("mode", if config.get("mode").is_null() && mode == "isolated" { Value::Null } else { Value::from(mode) }),
        ("bridge", xml::attr(&doc, "bridge", "name").map(Value::from).unwrap_or(Value::Null)),
        ("addresses", keep_null(addresses, "addresses")),
        ("dhcp", if !dhcp && config.get("dhcp").is_null() { Value::Null } else { Value::Bool(dhcp) }),
        ("dhcp_hosts", keep_null(hosts, "dhcp_hosts")),
        // The default range is implied by `dhcp`; only explicit ranges are managed.
        ("dhcp_ranges", if config.get("dhcp_ranges").is_null() { Value::Null } else { Value::List(ranges.into()) }),
        ("dns_hosts", keep_null(dns, "dns_hosts")),
        ("domain", xml::attr(&doc, "domain", "name").map(Value::from).unwrap_or(Value::Null)),
        ("mtu", xml::attr(&doc, "mtu", "size").and_then(|s| s.parse::<i64>().ok()).map(Value::from).unwrap_or(Value::Null)),
        ("autostart", {
            let on = net.autostart().map_err(err)?;
            if !on && config.get("autostart").is_null() { Value::Null } else { Value::Bool(on) }
        }),
        ("active", {
            let on = net.is_active().map_err(err)?;
            if on && config.get("active").is_null() { Value::Null } else { Value::Bool(on) }
        }),
        ("id", Value::from(net.uuid().map_err(err)?.to_string())),
    ]))
}

pub fn read_all(conn: &Connect, wanted: &[(Uuid, Value)]) -> Result<Vec<Option<Value>>> {
    let all = crate::calls::call("virConnectListAllNetworks", || conn.list_all_networks(0)).map_err(err)?;
    let by_uuid: BTreeMap<Uuid, &Network> = all.iter().filter_map(|n| n.uuid().ok().map(|u| (u, n))).collect();
    wanted.iter().map(|(id, prior)| by_uuid.get(id).map(|n| state(n, prior)).transpose()).collect()
}

pub fn update(conn: &Connect, id: Uuid, prior: &Value, planned: &Value) -> Result<Value> {
    let net = conn.lookup_network_by_uuid(id).map_err(err)?;
    // A stopped network is started first, so that the host changes below
    // reach the running dnsmasq too.
    if wants_active(planned) && !net.is_active().map_err(err)? {
        crate::calls::call("virNetworkCreate", || net.create()).map_err(err)?;
        reattach_guests(conn, planned.get("name").as_str().unwrap_or_default())?;
    }
    let flags = if net.is_active().map_err(err)? {
        sys::VIR_NETWORK_UPDATE_AFFECT_LIVE | sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG
    } else {
        sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG
    };
    let diff = |key: &str| {
        let old: Vec<Value> = prior.get(key).as_list().unwrap_or_default().to_vec();
        let new: Vec<Value> = planned.get(key).as_list().unwrap_or_default().to_vec();
        let removed: Vec<Value> = old.iter().filter(|h| !new.contains(h)).cloned().collect();
        let added: Vec<Value> = new.iter().filter(|h| !old.contains(h)).cloned().collect();
        (removed, added)
    };
    let (removed, added) = diff("dhcp_hosts");
    edit_hosts(&net, sys::VIR_NETWORK_SECTION_IP_DHCP_HOST, &removed, &added, dhcp_host_xml, flags)?;
    let (removed, added) = diff("dns_hosts");
    edit_hosts(&net, sys::VIR_NETWORK_SECTION_DNS_HOST, &removed, &added, dns_host_xml, flags)?;
    if prior.get("autostart") != planned.get("autostart") {
        net.set_autostart(planned.get("autostart").as_bool().unwrap_or(false)).map_err(err)?;
    }
    if !wants_active(planned) && net.is_active().map_err(err)? {
        crate::calls::call("virNetworkDestroy", || net.destroy()).map_err(err)?;
    }
    state(&net, planned)
}

/// Deletes then appends host entries of one section with `virNetworkUpdate`.
fn edit_hosts(net: &Network, section: u32, removed: &[Value], added: &[Value], to_xml: fn(&Value) -> String, flags: u32) -> Result<()> {
    for h in removed {
        net.update(sys::VIR_NETWORK_UPDATE_COMMAND_DELETE, section, -1, &to_xml(h), flags).map_err(err)?;
    }
    for h in added {
        net.update(sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, section, -1, &to_xml(h), flags).map_err(err)?;
    }
    Ok(())
}

/// The undo record of an update or a retirement: the persistent XML, and
/// whether the network ran and started with libvirtd. Changes nothing.
pub fn prepare_undo(conn: &Connect, id: Uuid, op: &str, prior: &Value) -> Result<Option<UndoRecord>> {
    let Some(net) = crate::found(conn.lookup_network_by_uuid(id))? else { return Ok(None) };
    Ok(Some(undo::record(op, [
        ("xml", Value::from(net.xml_desc(sys::VIR_NETWORK_XML_INACTIVE).map_err(err)?)),
        ("active", Value::Bool(net.is_active().map_err(err)?)),
        ("autostart", Value::Bool(net.autostart().map_err(err)?)),
        ("prior", prior.clone()),
    ])))
}

/// Removes the network for its replacement, keeping its definition in the
/// record: destroy and undefine. Idempotent.
pub fn retire(conn: &Connect, id: Uuid) -> Result<()> {
    delete(conn, id)
}

/// Restores the network the record describes. After an update: the DHCP
/// and DNS hosts are set back live, in their order, and the persistent
/// definition is restored exactly. After a retirement: the network is
/// defined again from its XML, started if it ran, and running guests on it
/// are re-attached.
pub fn undo(conn: &Connect, id: Uuid, rec: &UndoRecord) -> Result<Value> {
    let xml = undo::text(rec, "xml")?;
    let prior = rec.0.get("prior");
    let net = match crate::found(conn.lookup_network_by_uuid(id))? {
        Some(net) => net,
        None => crate::calls::with_xml("virNetworkDefineXML", xml, |x| conn.define_network_xml(x)).map_err(err)?,
    };
    let was_active = undo::flag(rec, "active");
    let active = net.is_active().map_err(err)?;
    if active {
        let now = state(&net, prior)?;
        let flags = sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
        for (key, section, to_xml) in [
            ("dhcp_hosts", sys::VIR_NETWORK_SECTION_IP_DHCP_HOST, dhcp_host_xml as fn(&Value) -> String),
            ("dns_hosts", sys::VIR_NETWORK_SECTION_DNS_HOST, dns_host_xml),
        ] {
            if now.get(key) != prior.get(key) {
                // Order matters to the definition: put them all back in order.
                let current = now.get(key).as_list().unwrap_or_default().to_vec();
                let wanted = prior.get(key).as_list().unwrap_or_default().to_vec();
                edit_hosts(&net, section, &current, &wanted, to_xml, flags)?;
            }
        }
    }
    // Defining an active network sets the definition it restarts with.
    crate::calls::with_xml("virNetworkDefineXML", xml, |x| conn.define_network_xml(x)).map_err(err)?;
    match (was_active, net.is_active().map_err(err)?) {
        (true, false) => {
            crate::calls::call("virNetworkCreate", || net.create()).map_err(err)?;
            reattach_guests(conn, net.name().map_err(err)?.as_str())?;
        }
        (false, true) => crate::calls::call("virNetworkDestroy", || net.destroy()).map_err(err)?,
        _ => {}
    }
    net.set_autostart(undo::flag(rec, "autostart")).map_err(err)?;
    state(&net, prior)
}

/// Nothing is kept outside the record: a retired network is already gone.
pub fn discard_undo(_rec: &UndoRecord) -> Result<()> {
    Ok(())
}

pub fn delete(conn: &Connect, id: Uuid) -> Result<()> {
    let Some(net) = crate::found(conn.lookup_network_by_uuid(id))? else {
        return Ok(());
    };
    if net.is_active().map_err(err)? {
        crate::calls::call("virNetworkDestroy", || net.destroy()).map_err(err)?;
    }
    crate::calls::call("virNetworkUndefine", || net.undefine()).map_err(err)
}

/// Finds a network by name or UUID for `import`.
pub fn lookup(conn: &Connect, import_id: &str) -> Result<Option<Imported>> {
    let Some(net) = crate::by_uuid_or_name(import_id, |u| conn.lookup_network_by_uuid(u), |n| conn.lookup_network_by_name(n))? else {
        return Ok(None);
    };
    let id = net.uuid().map_err(err)?;
    Ok(Some(Imported { state: state(&net, &Value::Null)?, id: Some(id) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_give_gateways_and_dhcp_ranges() {
        let (a, p) = cidr("10.7.0.0/24").unwrap();
        assert_eq!(offset(a, p, 1, false).to_string(), "10.7.0.1");
        assert_eq!(offset(a, p, 1, true).to_string(), "10.7.0.254");
        let (a, p) = cidr("fd00:7::/64").unwrap();
        assert_eq!(offset(a, p, 1, false).to_string(), "fd00:7::1");
        let v = Value::object([
            ("name", Value::from("lab")),
            ("addresses", Value::List(vec![Value::from("10.7.0.0/24")].into())),
            ("dhcp", Value::Bool(true)),
            ("dhcp_hosts", Value::List(vec![Value::object([("mac", Value::from("52:54:00:00:00:01")), ("ip", Value::from("10.7.0.10"))])].into())),
        ]);
        let x = network_xml(Uuid::nil(), &v);
        assert!(x.contains("<ip address='10.7.0.1' prefix='24'>"), "{x}");
        assert!(x.contains("<range start='10.7.0.2' end='10.7.0.254'/>"), "{x}");
        assert!(x.contains("<host mac='52:54:00:00:00:01' ip='10.7.0.10'/>"), "{x}");
        assert!(validate(&Value::object([("addresses", Value::List(vec![Value::from("10.0.0.0")].into()))]))[0].1.contains("CIDR"));
    }
}
