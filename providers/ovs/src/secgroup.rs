//! `ovs_security_group`: a stateful, default-deny firewall at the attachments
//! (VM NIC MACs or OVS port names) of one bridge, compiled to conntrack flows
//! and installed like a flow set (cookie-owned, one bundle; see
//! [`crate::openflow`]).
//!
//! The pipeline, in front of whatever else the bridge does (register bits of
//! `reg7` mark the stages a packet has passed; every flow names its
//! attachment, so groups never share a flow):
//!
//! ```text
//! table 0   ip from A, not yet checked   -> ct(zone=Z_A, table=200)   (egress of A)
//!           arp from A                   -> mark egress done, resubmit(,0)
//!           anything else from A         -> drop
//!           ip to A, not yet checked     -> ct(zone=Z_A, table=201)   (ingress of A)
//!           arp to A / else to A         -> as above
//! table 200 +inv -> drop; +est/+rel -> mark, resubmit(,0);
//!           +new matching an egress rule -> ct(commit), mark, resubmit(,0); else drop
//! table 201 the same for ingress rules
//! ```
//!
//! Back in table 0 with its bits set, the packet skips the group's flows and
//! meets the bridge's own (e.g. `NORMAL`). One conntrack zone per attachment
//! (both directions) lets replies match the connection their request opened.
//! A port attachment matches its egress by `in_port` and its ingress by the
//! MAC behind the port (resolved by the caller: `attached-mac`, else
//! `mac_in_use`). IPv4 only; other ethertypes than ARP are denied.

use crate::openflow::{Cookie, FlowSpec, FlowState, OpenFlow};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use strata_provider::{Attribute, Block, Disruption, ProviderError, Result, Type, UndoRecord, Value};
use uuid::Uuid;

/// Where packets go after the egress and ingress conntrack lookups.
pub const EGRESS_TABLE: u8 = 200;
pub const INGRESS_TABLE: u8 = 201;
/// The group's table-0 flows sit above ordinary flows (NORMAL is 0, a flow
/// without a priority 32768).
const PRIORITY: u16 = 60000;
/// `reg7` bit 0: egress checked; bit 1: ingress checked.
const EGRESS_DONE: &str = "load:1->NXM_NX_REG7[0]";
const INGRESS_DONE: &str = "load:1->NXM_NX_REG7[1]";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

impl Protocol {
    fn field(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Any => "ip",
        }
    }
}

/// Whom a rule allows to talk to the attachment (ingress) or be talked to
/// (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Any,
    Cidr(String),
    /// The MACs of another group's members; an empty list allows no one.
    Members(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub direction: Direction,
    pub protocol: Protocol,
    /// Inclusive destination port range (tcp/udp); `None`: every port.
    pub ports: Option<(u16, u16)>,
    pub remote: Remote,
}

/// One attachment, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// As configured (a MAC or a port name); also seeds the zone.
    pub key: String,
    /// Matches the attachment's own traffic (`dl_src=…` or `in_port=…`).
    pub egress: String,
    /// The MAC traffic to the attachment is addressed to.
    pub mac: String,
}

impl Attachment {
    pub fn mac(mac: &str) -> Attachment {
        let mac = mac.to_ascii_lowercase();
        Attachment { key: mac.clone(), egress: format!("dl_src={mac}"), mac }
    }

    pub fn port(name: &str, mac: &str) -> Attachment {
        Attachment { key: name.to_owned(), egress: format!("in_port={name}"), mac: mac.to_ascii_lowercase() }
    }

    /// The attachment's conntrack zone: a hash of its key in 1–65535 (zone 0
    /// is the default zone other flows use).
    pub fn zone(&self) -> u16 {
        let mut h: u32 = 0x811c_9dc5; // FNV-1a
        for b in self.key.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let z = ((h >> 16) ^ h) as u16;
        if z == 0 { 1 } else { z }
    }
}

/// Which configured item a compiled flow enforces: drift of the flow is shown
/// as that item missing from the refreshed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Attachment(usize),
    Rule(usize),
}

/// The group's flows, each with its origin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Compiled {
    pub flows: Vec<FlowSpec>,
    pub origins: Vec<Origin>,
}

impl Compiled {
    fn push(&mut self, origin: Origin, table: u8, priority: u16, matches: String, actions: String) {
        self.flows.push(FlowSpec { table, priority, matches, actions });
        self.origins.push(origin);
    }
}

/// The smallest set of `value/mask` matches that covers `lo..=hi` exactly.
pub fn port_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        // The largest aligned block starting at lo that stays within hi.
        let mut size = if lo == 0 { 1 << 16 } else { 1u32 << lo.trailing_zeros() };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        out.push((lo as u16, (0x1_0000 - size) as u16));
        lo += size;
    }
    out
}

fn port_match(ports: Option<(u16, u16)>) -> Vec<String> {
    match ports {
        None | Some((0, 65535)) => vec![String::new()],
        Some((lo, hi)) => port_masks(lo, hi)
            .into_iter()
            .map(|(v, m)| if m == 0xffff { format!(",tp_dst={v}") } else { format!(",tp_dst={v:#x}/{m:#x}") })
            .collect(),
    }
}

/// The remote side of a rule as matches: `nw_dst`/`dl_dst` for egress,
/// `nw_src`/`dl_src` for ingress. An empty member list yields no match, so
/// the rule allows nothing.
fn remote_matches(remote: &Remote, direction: Direction) -> Vec<String> {
    let (nw, dl) = match direction {
        Direction::Egress => ("nw_dst", "dl_dst"),
        Direction::Ingress => ("nw_src", "dl_src"),
    };
    match remote {
        Remote::Any => vec![String::new()],
        Remote::Cidr(c) if c == "0.0.0.0/0" => vec![String::new()],
        Remote::Cidr(c) => vec![format!(",{nw}={c}")],
        Remote::Members(macs) => macs.iter().map(|m| format!(",{dl}={}", m.to_ascii_lowercase())).collect(),
    }
}

/// Compiles the group to flows (pure; see the module doc for the pipeline).
pub fn compile(attachments: &[Attachment], rules: &[Rule]) -> Compiled {
    let mut out = Compiled::default();
    for (a, att) in attachments.iter().enumerate() {
        let origin = Origin::Attachment(a);
        let zone = att.zone();
        let ingress = format!("dl_dst={}", att.mac);
        let sides = [
            (Direction::Egress, &att.egress, "reg7=0/0x1", EGRESS_TABLE, EGRESS_DONE, 20),
            (Direction::Ingress, &ingress, "reg7=0/0x2", INGRESS_TABLE, INGRESS_DONE, 10),
        ];
        for (_, who, unchecked, table, done, offset) in &sides {
            out.push(origin, 0, PRIORITY + offset, format!("ip,{who},{unchecked}"), format!("ct(table={table},zone={zone})"));
            out.push(origin, 0, PRIORITY + offset - 1, format!("arp,{who},{unchecked}"), format!("{done},resubmit(,0)"));
            out.push(origin, 0, PRIORITY + offset - 2, format!("{who},{unchecked}"), "drop".into());
        }
        for (direction, who, _, table, done, _) in &sides {
            let accept = format!("{done},resubmit(,0)");
            out.push(origin, *table, PRIORITY + 30, format!("ct_state=+inv+trk,ip,{who}"), "drop".into());
            out.push(origin, *table, PRIORITY + 20, format!("ct_state=+est+trk,ip,{who}"), accept.clone());
            out.push(origin, *table, PRIORITY + 20, format!("ct_state=+rel+trk,ip,{who}"), accept);
            for (r, rule) in rules.iter().enumerate().filter(|(_, r)| r.direction == *direction) {
                let ports = if matches!(rule.protocol, Protocol::Tcp | Protocol::Udp) { port_match(rule.ports) } else { vec![String::new()] };
                for remote in remote_matches(&rule.remote, *direction) {
                    for port in &ports {
                        out.push(
                            Origin::Rule(r),
                            *table,
                            PRIORITY + 10,
                            format!("ct_state=+new-est+trk,{},{who}{remote}{port}", rule.protocol.field()),
                            format!("ct(commit,zone={zone}),{done},resubmit(,0)"),
                        );
                    }
                }
            }
            out.push(origin, *table, PRIORITY, format!("ip,{who}"), "drop".into());
        }
    }
    out
}

pub fn schema() -> Block {
    let optional = |t: Type| Type::Optional(Box::new(t), None);
    let rule = Type::Object(BTreeMap::from([
        ("direction".into(), Type::String),
        ("protocol".into(), Type::Optional(Box::new(Type::String), Some(Box::new(Value::from("any"))))),
        ("port_min".into(), optional(Type::Number)),
        ("port_max".into(), optional(Type::Number)),
        ("remote_cidr".into(), optional(Type::String)),
        ("remote_group".into(), optional(Type::List(Box::new(Type::String)))),
        ("description".into(), optional(Type::String)),
    ]));
    Block::new(
        "A stateful, default-deny firewall for the attachments (VM NIC MACs or port names) of one bridge, compiled \
         to conntrack OpenFlow rules: replies of allowed connections pass, new connections must match a rule, \
         everything else to or from an attachment is dropped (ARP passes). Installed atomically under the \
         instance's cookie; flows lost when ovs-vswitchd restarts show up as drift.",
    )
    .attr("bridge", Attribute::required(Type::String).on_change(Disruption::Replace).describe("The bridge the attachments are on."))
    .attr(
        "attachments",
        Attribute::required(Type::List(Box::new(Type::String)))
            .describe("MAC addresses (e.g. kvm_domain.web.macs[0]) or OVS port names. An attachment belongs to one group."),
    )
    .attr(
        "rules",
        Attribute::optional(Type::List(Box::new(rule))).describe(
            "Allowed new connections: direction (ingress or egress), protocol (tcp, udp, icmp or any; default any), \
             port_min/port_max (tcp/udp destination ports; default all), and at most one of remote_cidr (IPv4 CIDR) \
             and remote_group (another group's members, e.g. ovs_security_group.db.members).",
        ),
    )
    .attr("members", Attribute::computed(Type::List(Box::new(Type::String))).describe("The MACs of the attachments, for other groups' remote_group."))
    .attr("cookie", Attribute::computed(Type::String).describe("The owner cookie of the compiled flows (upper 48 bits)."))
    .attr(
        "installed_flows",
        Attribute::computed(Type::List(Box::new(Type::String))).describe("The compiled flows as ovs-vswitchd reported them after installation."),
    )
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_port_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.bytes().any(|b| b.is_ascii_whitespace() || b"=,()/\"".contains(&b))
}

fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else { return s.parse::<Ipv4Addr>().is_ok() };
    addr.parse::<Ipv4Addr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 32)
}

/// One configured rule, checked; `Ok(None)` when a part is not known yet.
fn rule(v: &Value) -> std::result::Result<Option<Rule>, String> {
    if v.contains_unknown() {
        return Ok(None);
    }
    let direction = match v.get("direction").as_str() {
        Some("ingress") => Direction::Ingress,
        Some("egress") => Direction::Egress,
        other => return Err(format!("direction {other:?} is neither \"ingress\" nor \"egress\"")),
    };
    let protocol = match v.get("protocol").as_str().unwrap_or("any") {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => Protocol::Icmp,
        "any" => Protocol::Any,
        other => return Err(format!("protocol {other:?} is not one of tcp, udp, icmp, any")),
    };
    let port = |name: &str| -> std::result::Result<Option<u16>, String> {
        match v.get(name) {
            Value::Null => Ok(None),
            p => p.as_i64().and_then(|n| u16::try_from(n).ok()).map(Some).ok_or_else(|| format!("{name} {} is not a port (0–65535)", p.to_hcl())),
        }
    };
    let ports = match (port("port_min")?, port("port_max")?) {
        (None, None) => None,
        (Some(lo), None) => Some((lo, lo)),
        (None, Some(hi)) => Some((0, hi)),
        (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
        (Some(lo), Some(hi)) => return Err(format!("port_min {lo} is above port_max {hi}")),
    };
    if ports.is_some() && !matches!(protocol, Protocol::Tcp | Protocol::Udp) {
        return Err(format!("ports need protocol tcp or udp, not {}", v.get("protocol").as_str().unwrap_or("any")));
    }
    let remote = match (v.get("remote_cidr"), v.get("remote_group")) {
        (Value::Null, Value::Null) => Remote::Any,
        (cidr, Value::Null) => {
            let c = cidr.as_str().unwrap_or_default();
            if !is_cidr(c) {
                return Err(format!("remote_cidr {c:?} is not an IPv4 CIDR such as 198.18.0.0/24"));
            }
            Remote::Cidr(c.to_owned())
        }
        (Value::Null, group) => {
            let members: Vec<String> = group.as_list().unwrap_or_default().iter().map(|m| m.as_str().unwrap_or_default().to_owned()).collect();
            if let Some(bad) = members.iter().find(|m| !is_mac(m)) {
                return Err(format!("remote_group member {bad:?} is not a MAC address (use another group's members)"));
            }
            Remote::Members(members)
        }
        _ => return Err("set remote_cidr or remote_group, not both".into()),
    };
    Ok(Some(Rule { direction, protocol, ports, remote }))
}

/// The configured rules, or what is wrong with them (numbered from 1).
fn rules(config: &Value) -> std::result::Result<Option<Vec<Rule>>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut known = true;
    for (i, v) in config.get("rules").as_list().unwrap_or_default().iter().enumerate() {
        match rule(v) {
            Ok(Some(r)) => out.push(r),
            Ok(None) => known = false,
            Err(e) => errors.push(format!("rule {}: {e}", i + 1)),
        }
    }
    if errors.is_empty() { Ok(known.then_some(out)) } else { Err(errors) }
}

/// The attachments as configured (`None` when not all are known yet).
fn attachment_keys(config: &Value) -> Option<Vec<String>> {
    let list = config.get("attachments");
    if list.contains_unknown() {
        return None;
    }
    Some(list.as_list().unwrap_or_default().iter().map(|a| a.as_str().unwrap_or_default().to_owned()).collect())
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Err(errors) = rules(config) {
        out.extend(errors.into_iter().map(|e| ("rules".to_owned(), e)));
    }
    let mut seen = BTreeSet::new();
    for key in attachment_keys(config).unwrap_or_default() {
        if !is_mac(&key) && !is_port_name(&key) {
            out.push(("attachments".into(), format!("{key:?} is neither a MAC address nor a port name")));
        } else if !seen.insert(key.to_ascii_lowercase()) {
            out.push(("attachments".into(), format!("{key:?} is listed twice")));
        }
    }
    out
}

/// The port names among the attachments, whose MACs the caller resolves.
pub fn port_names(config: &Value) -> Vec<String> {
    attachment_keys(config).unwrap_or_default().into_iter().filter(|k| !is_mac(k)).collect()
}

fn bridge(v: &Value) -> Result<&str> {
    v.get("bridge").as_str().ok_or_else(|| ProviderError::new("ovs_security_group needs a bridge"))
}

/// Resolves the attachments with `port_macs` (port name → MAC) and compiles.
fn compiled(config: &Value, port_macs: &BTreeMap<String, String>) -> Result<(Vec<Attachment>, Compiled)> {
    let keys = attachment_keys(config).ok_or_else(|| ProviderError::new("attachments are not known yet"))?;
    let rules = match rules(config) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(ProviderError::new("rules are not known yet")),
        Err(e) => return Err(ProviderError::new(e.join("; "))),
    };
    let attachments = keys
        .iter()
        .map(|k| {
            if is_mac(k) {
                Ok(Attachment::mac(k))
            } else {
                port_macs
                    .get(k)
                    .map(|mac| Attachment::port(k, mac))
                    .ok_or_else(|| ProviderError::new(format!("port {k:?} has no known MAC (neither external_ids:attached-mac nor mac_in_use)")))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let compiled = compile(&attachments, &rules);
    Ok((attachments, compiled))
}

fn in_bridge(bridge: &str, e: ProviderError) -> ProviderError {
    ProviderError::new(format!("ovs-ofctl on bridge {bridge}: {e}"))
}

/// Compiles and installs the group (create and update alike).
pub async fn apply(of: &OpenFlow, id: Uuid, planned: &Value, port_macs: &BTreeMap<String, String>) -> Result<Value> {
    let bridge = bridge(planned)?;
    let (attachments, compiled) = compiled(planned, port_macs)?;
    let cookie = Cookie::of(id);
    // Two groups on one attachment would compile to flows with the same
    // match and priority, and each install would take the other's over.
    let ingress = of.dump_table(bridge, INGRESS_TABLE).await.map_err(|e| in_bridge(bridge, e))?;
    if let Some((mac, other)) = claimed_elsewhere(&attachments, &ingress, cookie) {
        return Err(ProviderError::new(format!(
            "attachment {mac} is already in another security group on bridge {bridge} (cookie {other:#x}); an attachment belongs to one group"
        )));
    }
    let installed = of.install(bridge, cookie, &compiled.flows).await.map_err(|e| in_bridge(bridge, e))?;
    let mut m = planned.as_map().cloned().unwrap_or_default();
    m.insert("members".into(), Value::List(attachments.iter().map(|a| Value::from(a.mac.clone())).collect()));
    m.insert("cookie".into(), Value::from(cookie.hex()));
    m.insert("installed_flows".into(), Value::List(installed.into_iter().map(Value::from).collect()));
    Ok(Value::Map(m.into()))
}

/// An attachment whose ingress flows carry another owner's cookie: its MAC
/// and that cookie.
fn claimed_elsewhere(attachments: &[Attachment], ingress_flows: &[crate::openflow::DumpedFlow], ours: Cookie) -> Option<(String, u64)> {
    attachments.iter().find_map(|a| {
        let needle = format!("dl_dst={}", a.mac);
        ingress_flows
            .iter()
            .find(|f| ours.index_of(f.cookie).is_none() && f.spec.matches.split(',').any(|m| m == needle))
            .map(|f| (a.mac.clone(), f.cookie & Cookie::OWNER_MASK))
    })
}

/// The group as the switch enforces it now: an attachment or rule with a
/// missing or altered flow is left out, so the plan shows it to be restored.
/// `None` when the bridge is not there.
pub async fn read(of: &OpenFlow, id: Uuid, prior: &Value, port_macs: &BTreeMap<String, String>) -> Result<Option<Value>> {
    let bridge = bridge(prior)?;
    let cookie = Cookie::of(id);
    let Some(dumped) = of.dump(bridge, cookie).await.map_err(|e| in_bridge(bridge, e))? else { return Ok(None) };
    let installed: Vec<String> = prior.get("installed_flows").as_list().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let found = crate::openflow::reconcile(cookie, &installed, dumped);
    if found.is_intact() {
        return Ok(Some(prior.clone()));
    }
    // What the prior state compiles to tells which item each flow enforced.
    let origins = compiled(prior, port_macs).map(|(_, c)| c.origins).unwrap_or_default();
    let every_attachment = 0..prior.get("attachments").as_list().map_or(0, <[Value]>::len);
    let (mut lost_attachments, mut lost_rules) = (BTreeSet::new(), BTreeSet::new());
    for (i, state) in found.flows.iter().enumerate() {
        if *state == FlowState::Intact {
            continue;
        }
        match origins.get(i) {
            Some(Origin::Rule(r)) => {
                lost_rules.insert(*r);
            }
            Some(Origin::Attachment(a)) => {
                lost_attachments.insert(*a);
            }
            // Installed from a configuration that no longer compiles the same
            // (e.g. a port's MAC changed): nothing is known to be enforced.
            None => lost_attachments.extend(every_attachment.clone()),
        }
    }
    if !found.extra.is_empty() || origins.len() != installed.len() {
        lost_attachments.extend(every_attachment);
    }
    let keep = |list: &Value, lost: &BTreeSet<usize>| {
        Value::List(list.as_list().unwrap_or_default().iter().enumerate().filter(|(i, _)| !lost.contains(i)).map(|(_, v)| v.clone()).collect())
    };
    let mut m = prior.as_map().cloned().unwrap_or_default();
    m.insert("attachments".into(), keep(prior.get("attachments"), &lost_attachments));
    if !prior.get("rules").is_null() {
        m.insert("rules".into(), keep(prior.get("rules"), &lost_rules));
    }
    Ok(Some(Value::Map(m.into())))
}

pub async fn delete(of: &OpenFlow, id: Uuid, prior: &Value) -> Result<()> {
    let bridge = bridge(prior)?;
    of.delete(bridge, Cookie::of(id)).await.map_err(|e| in_bridge(bridge, e))
}

/// After an interrupted create: flows under the cookie mean the (atomic)
/// install happened; refresh then compares them.
pub async fn find_by_identity(of: &OpenFlow, id: Uuid, planned: &Value, port_macs: &BTreeMap<String, String>) -> Result<Option<Value>> {
    let bridge = bridge(planned)?;
    let dumped = of.dump(bridge, Cookie::of(id)).await.map_err(|e| in_bridge(bridge, e))?.unwrap_or_default();
    if dumped.is_empty() {
        return Ok(None);
    }
    let (attachments, _) = compiled(planned, port_macs)?;
    let mut m = planned.as_map().cloned().unwrap_or_default();
    m.insert("members".into(), Value::List(attachments.iter().map(|a| Value::from(a.mac.clone())).collect()));
    m.insert("cookie".into(), Value::from(Cookie::of(id).hex()));
    m.insert("installed_flows".into(), Value::List(dumped.iter().map(|d| Value::from(d.canonical.clone())).collect()));
    Ok(Some(Value::Map(m.into())))
}

/// The undo record of an update: the flows installed now and the prior state.
pub async fn prepare_undo(of: &OpenFlow, id: Uuid, prior: &Value) -> Result<Option<UndoRecord>> {
    let bridge = bridge(prior)?;
    let dumped = of.dump(bridge, Cookie::of(id)).await.map_err(|e| in_bridge(bridge, e))?.unwrap_or_default();
    Ok(Some(crate::flows::undo_record(bridge, &dumped, prior)))
}

#[cfg(test)]
mod tests;
