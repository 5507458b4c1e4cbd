//! `ovs_port`: a Port row on a bridge and its Interface rows: one interface
//! of the same name (internal, system, patch, vxlan/gre/geneve tunnel), or
//! several for a bond.

use crate::datum::{
    self, atoms, external_ids_with_identity, int_of, map_of, named, opt_i64, opt_str, row_name, row_uuid, set, str_of,
    string_map, strings_value, user_ids, uuid, value_strings, Row, Scope, Snapshot, STRATA_ID,
};
use crate::txn::{by_uuid, cond, guard};
use crate::{bridge, Context, Kind};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use strata_provider::{Attribute, Block, Disruption, PlanRequest, PlanResponse, ProviderError, Result, Type, Value};
use uuid::Uuid;

pub struct Port;

const TYPES: [&str; 7] = ["internal", "system", "patch", "vxlan", "gre", "geneve", "bond"];
const TUNNELS: [&str; 3] = ["vxlan", "gre", "geneve"];
const VLAN_MODES: [&str; 4] = ["access", "trunk", "native-tagged", "native-untagged"];
const BOND_MODES: [&str; 3] = ["active-backup", "balance-slb", "balance-tcp"];
const LACP: [&str; 3] = ["active", "passive", "off"];
/// Interface options that have their own attribute.
const OPTION_ATTRS: [&str; 5] = ["peer", "remote_ip", "local_ip", "key", "dst_port"];

impl Kind for Port {
    fn schema(&self) -> Block {
        let strings = || Type::Map(Box::new(Type::String));
        let live = |ty: Type, text: &str| Attribute::optional(ty).describe(text);
        Block::new("A port on an Open vSwitch bridge: an internal port, a host interface, a patch port, a tunnel or a bond.")
            .attr("bridge", Attribute::required(Type::String).on_change(Disruption::Replace).describe("Name of the bridge (e.g. `ovs_bridge.lan.name`)."))
            .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace).describe("Port name (and interface name, except for bonds). Renaming replaces the port."))
            .attr(
                "type",
                Attribute::optional_computed(Type::String).on_change(Disruption::Replace).describe(
                    "internal (default), system (an existing host interface of that name), patch, vxlan, gre, geneve, or bond.",
                ),
            )
            .attr("peer", live(Type::String, "patch: the peer patch port's name. Live."))
            .attr("remote_ip", live(Type::String, "Tunnels: the remote VTEP address (or `flow`). Live."))
            .attr("local_ip", live(Type::String, "Tunnels: the local VTEP address. Live."))
            .attr("key", live(Type::String, "Tunnels: the key / VNI (a number, or `flow`). Live."))
            .attr("dst_port", live(Type::Number, "Tunnels: the UDP destination port (vxlan, geneve). Live."))
            .attr("options", live(strings(), "Further interface options (e.g. `csum`, `tos`). Live."))
            .attr(
                "interfaces",
                Attribute::optional(Type::Set(Box::new(Type::String)))
                    .on_change(Disruption::Replace)
                    .describe("bond: the host interfaces bonded (at least two)."),
            )
            .attr("bond_mode", live(Type::String, "bond: active-backup (default), balance-slb or balance-tcp (needs LACP). Live."))
            .attr("lacp", live(Type::String, "bond: active, passive or off. Live."))
            .attr("vlan_mode", live(Type::String, "access, trunk, native-tagged or native-untagged. Live."))
            .attr("tag", live(Type::Number, "VLAN tag (0-4095): the access VLAN, or the native VLAN. Live: traffic moves to the new VLAN at once."))
            .attr("trunks", live(Type::List(Box::new(Type::Number)), "VLANs a trunk port carries (empty: all). Live."))
            .attr("mtu_request", live(Type::Number, "Requested MTU of the interface(s). Live."))
            .attr("ofport_request", live(Type::Number, "Requested OpenFlow port number (1-65279). Live, but flows that match the old number stop matching."))
            .attr("qos", live(Type::String, "UUID of an `ovs_qos` (e.g. `ovs_qos.limit.id`). Live."))
            .attr("external_ids", live(strings(), "External IDs (besides Strata's own strata-id). Live."))
            .attr("id", Attribute::computed(Type::String).describe("UUID of the Port row."))
            .attr("ofport", Attribute::computed(Type::Number).describe("OpenFlow port number ovs-vswitchd assigned (null for a bond)."))
            .attr("mac", Attribute::computed(Type::String).describe("MAC address in use (first interface)."))
            .attr("status", Attribute::computed(strings()).describe("Interface status ovs-vswitchd reports (driver, tunnel egress interface...)."))
    }

    fn validate(&self, config: &Value, _ctx: &Context) -> Vec<(String, String)> {
        validate(config)
    }

    fn plan(&self, req: &PlanRequest<'_>, ctx: &Context) -> Result<PlanResponse> {
        let mut response = PlanResponse::default();
        if let Some(bridge) = req.proposed.get("bridge").as_str() {
            let known = ctx.snapshot.bridge_named(bridge).is_some() || ctx.planned_bridges.lock().expect("bridges lock").contains(bridge);
            if !known {
                return Err(ProviderError::new(format!(
                    "bridge {bridge:?} does not exist and this configuration does not create it"
                )));
            }
        }
        if req.prior.is_none() {
            let mut planned = req.proposed.clone();
            self.defaults(&mut planned, ctx);
            response.planned = Some(planned);
        }
        if let Some(prior) = req.prior {
            // An in-place change keeps the row, and the OpenFlow port unless
            // it asks for another one.
            let mut keep = vec!["id", "mac"];
            if prior.get("ofport_request") == req.proposed.get("ofport_request") {
                keep.push("ofport");
            }
            response.planned = Some(crate::keep_computed(req.proposed, prior, &keep));
            if prior.get("ofport_request") != req.proposed.get("ofport_request") {
                response.notes.push("the port's OpenFlow number changes: flows that match the old number stop matching".into());
            }
            if prior.get("tag") != req.proposed.get("tag") || prior.get("vlan_mode") != req.proposed.get("vlan_mode") {
                response.notes.push("the port moves to another VLAN at once".into());
            }
        }
        Ok(response)
    }

    fn defaults(&self, planned: &mut Value, _ctx: &Context) {
        if let Value::Map(m) = planned {
            if m.get("type").is_none_or(|v| v.is_null() || v.is_unknown()) {
                m.insert("type".into(), Value::from("internal"));
            }
        }
    }

    fn read(&self, snap: &Snapshot, id: Uuid, state: &Value) -> Option<Value> {
        let row = state.get("id").as_str().and_then(|u| snap.ports.get(u)).or_else(|| by_identity(snap, id))?;
        Some(keep_trunk_order(decode(snap, row), state))
    }

    fn find(&self, snap: &Snapshot, id: Uuid) -> Option<Value> {
        by_identity(snap, id).map(|r| decode(snap, r))
    }

    fn lookup(&self, snap: &Snapshot, name: &str) -> Option<Value> {
        snap.port_named(name).map(|r| decode(snap, r))
    }

    fn scope(&self, v: &Value) -> Option<Scope> {
        // A QoS reference needs the QoS table to check enforcement.
        if !v.get("qos").is_null() {
            return None;
        }
        let mut scope = Scope::default();
        scope.bridges.extend(v.get("bridge").as_str().map(str::to_owned));
        scope.ports.extend(v.get("name").as_str().map(str::to_owned));
        if let Some(id) = v.get("id").as_str() {
            scope.port_ids.insert(id.to_owned());
            scope.holders_of.insert(id.to_owned());
        }
        scope.interfaces.extend(interface_names(v));
        Some(scope)
    }

    fn create(&self, snap: &Snapshot, id: Uuid, planned: &Value) -> Result<Vec<Json>> {
        let name = planned.get("name").as_str().ok_or_else(|| ProviderError::new("ovs_port needs a name"))?;
        let bridge_name = planned.get("bridge").as_str().unwrap_or_default();
        let bridge = snap
            .bridge_named(bridge_name)
            .ok_or_else(|| ProviderError::new(format!("port {name:?}: bridge {bridge_name:?} does not exist")))?;
        let identity = string_map(&[(STRATA_ID.to_owned(), id.to_string())].into());
        let mut ops = Vec::new();
        let mut refs = Vec::new();
        for (i, iface) in interface_names(planned).iter().enumerate() {
            let handle = format!("iface{i}");
            let mut row = interface_columns(planned);
            row.insert("name".into(), json!(iface));
            row.insert("external_ids".into(), identity.clone());
            ops.push(json!({"op": "insert", "table": "Interface", "uuid-name": handle, "row": row}));
            refs.push(named(&handle));
        }
        let mut row = port_columns(planned);
        row.insert("name".into(), json!(name));
        row.insert("interfaces".into(), json!(["set", refs]));
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": row}));
        ops.push(json!({"op": "mutate", "table": "Bridge", "where": by_uuid(&row_uuid(bridge)),
                        "mutations": [["ports", "insert", set(vec![named("port")])]]}));
        Ok(ops)
    }

    fn update(&self, snap: &Snapshot, id: Uuid, prior: &Value, planned: &Value, guarded: bool) -> Result<Vec<Json>> {
        let port_id = row_id(prior)?;
        let mut ops = if guarded { guards(prior, port_id) } else { Vec::new() };
        let mut row = port_columns(planned);
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "update", "table": "Port", "where": by_uuid(port_id), "row": row}));
        let port = snap.ports.get(port_id);
        for iface in port.map(|p| snap.interfaces_of(p)).unwrap_or_default() {
            ops.push(json!({"op": "update", "table": "Interface", "where": by_uuid(&row_uuid(iface)), "row": interface_columns(planned)}));
        }
        Ok(ops)
    }

    fn delete(&self, snap: &Snapshot, prior: &Value) -> Result<Vec<Json>> {
        let port_id = row_id(prior)?;
        let mut ops = guards(prior, port_id);
        let holder = snap.bridge_of(port_id).map(row_uuid).unwrap_or_default();
        ops.push(json!({"op": "mutate", "table": "Bridge", "where": by_uuid(&holder),
                        "mutations": [["ports", "delete", set(vec![uuid(port_id)])]]}));
        Ok(ops)
    }

    fn rejection(&self, snap: &Snapshot, state: &Value) -> Option<String> {
        let port = snap.ports.get(state.get("id").as_str()?)?;
        let problems: Vec<String> = snap
            .interfaces_of(port)
            .iter()
            .filter_map(|i| {
                let error = opt_str(i.get("error"));
                let ofport = opt_i64(i.get("ofport"));
                let patch = opt_str(i.get("type")).as_deref() == Some("patch");
                match (error, ofport) {
                    // A patch port's peer may be created after it, in the
                    // same apply; vswitchd links them once both exist.
                    (Some(e), _) if patch && e.starts_with("No usable peer") => None,
                    (None, _) if patch => None,
                    (Some(e), _) => Some(e),
                    (None, Some(p)) if p < 0 => Some(format!("interface {:?} got no OpenFlow port", row_name(i))),
                    (None, None) => Some(format!("interface {:?} was not created (no OpenFlow port)", row_name(i))),
                    _ => None,
                }
            })
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut bad = |attr: &str, message: String| out.push((attr.to_owned(), message));
    // Unset (unknown until the provider fills it in) means internal.
    let ty = config.get("type").as_str().unwrap_or("internal");
    if !TYPES.contains(&ty) {
        bad("type", format!("unknown port type {ty:?} ({})", TYPES.join(", ")));
    }
    if let Some(name) = config.get("name").as_str() {
        if ty != "bond" {
            if let Some(problem) = bridge::device_name_problem(name) {
                bad("name", problem);
            }
        }
    }
    let tunnel = TUNNELS.contains(&ty);
    if tunnel && config.get("remote_ip").is_null() {
        bad("remote_ip", format!("a {ty} tunnel needs remote_ip (the peer's VTEP address, or \"flow\")"));
    }
    for attr in ["remote_ip", "local_ip"] {
        if let Some(ip) = config.get(attr).as_str() {
            if !tunnel {
                bad(attr, format!("{attr} applies to tunnels only (type is {ty})"));
            } else if ip != "flow" && ip.parse::<std::net::IpAddr>().is_err() {
                bad(attr, format!("{ip:?} is not an IP address"));
            }
        }
    }
    if let Some(key) = config.get("key").as_str() {
        if !tunnel {
            bad("key", format!("key applies to tunnels only (type is {ty})"));
        } else if key != "flow" && key.parse::<u64>().map_or(true, |k| ty == "vxlan" && k > 0xFF_FFFF || k > u32::MAX as u64) {
            bad("key", format!("{key:?} is not a valid {ty} key (a number, or \"flow\")"));
        }
    }
    if let Some(port) = config.get("dst_port").as_f64() {
        if !tunnel || ty == "gre" {
            bad("dst_port", format!("dst_port applies to vxlan and geneve tunnels only (type is {ty})"));
        } else if !(1.0..=65535.0).contains(&port) || port.fract() != 0.0 {
            bad("dst_port", format!("{port} is not a UDP port (1-65535)"));
        }
    }
    if ty == "patch" && config.get("peer").is_null() {
        bad("peer", "a patch port needs peer (the name of the patch port on the other bridge)".into());
    }
    if ty != "patch" && !config.get("peer").is_null() {
        bad("peer", format!("peer applies to patch ports only (type is {ty})"));
    }
    let members = config.get("interfaces").as_list().unwrap_or_default();
    if ty == "bond" {
        if members.len() < 2 && !config.get("interfaces").is_unknown() {
            bad("interfaces", "a bond needs at least two interfaces".into());
        }
        let names: BTreeSet<&str> = members.iter().filter_map(Value::as_str).collect();
        if names.len() != members.iter().filter(|m| m.as_str().is_some()).count() {
            bad("interfaces", "the bond lists an interface twice".into());
        }
    } else {
        if !members.is_empty() {
            bad("interfaces", format!("interfaces apply to bonds only (type is {ty})"));
        }
        for attr in ["bond_mode", "lacp"] {
            if !config.get(attr).is_null() {
                bad(attr, format!("{attr} applies to bonds only (type is {ty})"));
            }
        }
    }
    if let Some(mode) = config.get("bond_mode").as_str() {
        if !BOND_MODES.contains(&mode) {
            bad("bond_mode", format!("unknown bond_mode {mode:?} ({})", BOND_MODES.join(", ")));
        } else if mode == "balance-tcp" && !matches!(config.get("lacp").as_str(), Some("active" | "passive")) {
            bad("lacp", "bond_mode balance-tcp needs LACP (lacp = \"active\" or \"passive\")".into());
        }
    }
    if let Some(lacp) = config.get("lacp").as_str() {
        if !LACP.contains(&lacp) {
            bad("lacp", format!("unknown lacp {lacp:?} (active, passive, off)"));
        }
    }
    if let Some(mode) = config.get("vlan_mode").as_str() {
        if !VLAN_MODES.contains(&mode) {
            bad("vlan_mode", format!("unknown vlan_mode {mode:?} ({})", VLAN_MODES.join(", ")));
        }
    }
    if let Some(tag) = config.get("tag").as_number() {
        if !vlan_id(tag) {
            bad("tag", format!("VLAN tag {tag} is outside 0-4095"));
        }
    }
    let mut seen = BTreeSet::new();
    for t in config.get("trunks").as_list().unwrap_or_default() {
        if let Some(n) = t.as_number() {
            if !vlan_id(n) {
                bad("trunks", format!("VLAN {n} is outside 0-4095"));
            } else if !seen.insert(n.to_string()) {
                bad("trunks", format!("VLAN {n} is listed twice"));
            }
        }
    }
    if config.get("vlan_mode").as_str() == Some("access") && config.get("trunks").as_list().is_some_and(|t| !t.is_empty()) {
        bad("trunks", "an access port carries no trunks".into());
    }
    if let Some(mtu) = config.get("mtu_request").as_f64() {
        if !(68.0..=65535.0).contains(&mtu) || mtu.fract() != 0.0 {
            bad("mtu_request", format!("MTU {mtu} is outside 68-65535"));
        }
    }
    if let Some(p) = config.get("ofport_request").as_f64() {
        if ty == "bond" {
            bad("ofport_request", "a bond has no single OpenFlow port".into());
        } else if !(1.0..=65279.0).contains(&p) || p.fract() != 0.0 {
            bad("ofport_request", format!("OpenFlow port {p} is outside 1-65279"));
        }
    }
    if let Some(q) = config.get("qos").as_str() {
        if Uuid::parse_str(q).is_err() {
            bad("qos", format!("{q:?} is not a QoS row UUID (use ovs_qos.NAME.id)"));
        }
    }
    out
}

fn vlan_id(n: &strata_provider::Number) -> bool {
    n.is_integer() && n.to_i64().is_some_and(|v| (0..=4095).contains(&v))
}

fn row_id(prior: &Value) -> Result<&str> {
    prior.get("id").as_str().ok_or_else(|| ProviderError::new("ovs_port state has no row id; refresh first"))
}

fn by_identity(snap: &Snapshot, id: Uuid) -> Option<&Row> {
    snap.port_tagged(&id.to_string())
}

fn interface_names(v: &Value) -> Vec<String> {
    if v.get("type").as_str() == Some("bond") {
        v.get("interfaces").as_list().unwrap_or_default().iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
    } else {
        v.get("name").as_str().map(|n| vec![n.to_owned()]).unwrap_or_default()
    }
}

/// The Interface type column for a port type.
fn interface_type(port_type: &str) -> &str {
    match port_type {
        "system" | "bond" => "",
        other => other,
    }
}

/// Interface columns Strata sets (the same on every member of a bond).
fn interface_columns(v: &Value) -> Map<String, Json> {
    let ty = v.get("type").as_str().unwrap_or("internal");
    let mut options = value_strings(v.get("options"));
    for attr in OPTION_ATTRS {
        let val = v.get(attr);
        let text = val.as_str().map(str::to_owned).or_else(|| val.as_i64().map(|n| n.to_string()));
        if let Some(text) = text {
            options.insert(attr.to_owned(), text);
        }
    }
    let mut row = Map::new();
    row.insert("type".into(), json!(interface_type(ty)));
    row.insert("options".into(), string_map(&options));
    row.insert("mtu_request".into(), datum::optional(int_of(v.get("mtu_request"))));
    row.insert(
        "ofport_request".into(),
        datum::optional(if ty == "bond" { None } else { int_of(v.get("ofport_request")) }),
    );
    row
}

/// Port columns Strata sets (name, interfaces and external_ids excluded).
fn port_columns(v: &Value) -> Map<String, Json> {
    let mut row = Map::new();
    row.insert("vlan_mode".into(), datum::optional(str_of(v.get("vlan_mode"))));
    row.insert("tag".into(), datum::optional(int_of(v.get("tag"))));
    let trunks: Vec<Json> = v.get("trunks").as_list().unwrap_or_default().iter().filter_map(int_of).collect();
    row.insert("trunks".into(), json!(["set", trunks]));
    row.insert("bond_mode".into(), datum::optional(str_of(v.get("bond_mode"))));
    row.insert("lacp".into(), datum::optional(str_of(v.get("lacp"))));
    row.insert("qos".into(), datum::optional(v.get("qos").as_str().map(uuid)));
    row
}

/// Asserts that the Port, its Interfaces and its place on the bridge are
/// still what `prior` says.
fn guards(prior: &Value, port_id: &str) -> Vec<Json> {
    let name = prior.get("name").as_str().unwrap_or_default();
    let mut conditions = by_uuid(port_id);
    conditions.push(cond("name", "==", json!(name)));
    for (column, datum) in port_columns(prior) {
        conditions.push(cond(&column, "==", datum));
    }
    conditions.push(cond("external_ids", "includes", string_map(&value_strings(prior.get("external_ids")))));
    let mut ops = vec![guard("Port", conditions, name)];
    for iface in interface_names(prior) {
        let mut conditions = vec![cond("name", "==", json!(iface))];
        for (column, datum) in interface_columns(prior) {
            conditions.push(cond(&column, "==", datum));
        }
        ops.push(guard("Interface", conditions, &iface));
    }
    let bridge = prior.get("bridge").as_str().unwrap_or_default();
    ops.push(guard("Bridge", vec![cond("name", "==", json!(bridge)), cond("ports", "includes", set(vec![uuid(port_id)]))], bridge));
    ops
}

/// OVS keeps `trunks` as a sorted set: the same VLANs in the order the
/// configuration (or state) lists them are no change.
fn keep_trunk_order(mut read: Value, like: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut n: Vec<i64> = v.as_list().unwrap_or_default().iter().filter_map(|t| t.as_f64()).map(|f| f as i64).collect();
        n.sort_unstable();
        n
    };
    if let (Value::Map(m), Some(wanted)) = (&mut read, like.get("trunks").as_list()) {
        if !wanted.is_empty() && sorted(like.get("trunks")) == sorted(m.get("trunks").unwrap_or(&Value::Null)) {
            m.insert("trunks".into(), Value::List(wanted.to_vec().into()));
        }
    }
    read
}

fn decode(snap: &Snapshot, row: &Row) -> Value {
    let interfaces = snap.interfaces_of(row);
    let first = interfaces.first().copied();
    let iface_type = first.and_then(|i| opt_str(i.get("type"))).unwrap_or_default();
    let bond = interfaces.len() > 1;
    let ty = if bond {
        "bond".to_owned()
    } else if iface_type.is_empty() || iface_type == "system" {
        "system".to_owned()
    } else {
        iface_type
    };
    let mut options: BTreeMap<String, String> = first.map(|i| map_of(i.get("options"))).unwrap_or_default();
    let mut option = |k: &str| options.remove(k).map(Value::from).unwrap_or(Value::Null);
    let peer = option("peer");
    let remote_ip = option("remote_ip");
    let local_ip = option("local_ip");
    let key = option("key");
    let dst_port = option("dst_port");
    let dst_port = dst_port.as_str().and_then(|p| p.parse::<i64>().ok()).map(Value::from).unwrap_or(Value::Null);
    let trunks: Vec<Value> = atoms(row.get("trunks")).iter().filter_map(Json::as_i64).map(Value::from).collect();
    let members: Vec<Value> = interfaces.iter().map(|i| Value::from(row_name(i))).collect();
    let status = first.map(|i| map_of(i.get("status"))).unwrap_or_default();
    Value::object([
        ("bridge", snap.bridge_of(&row_uuid(row)).map(|b| Value::from(row_name(b))).unwrap_or(Value::Null)),
        ("name", Value::from(row_name(row))),
        ("type", Value::from(ty)),
        ("peer", peer),
        ("remote_ip", remote_ip),
        ("local_ip", local_ip),
        ("key", key),
        ("dst_port", dst_port),
        ("options", strings_value(options)),
        ("interfaces", if bond { Value::List(members.into()) } else { Value::Null }),
        ("bond_mode", datum::str_value(opt_str(row.get("bond_mode")))),
        ("lacp", datum::str_value(opt_str(row.get("lacp")))),
        ("vlan_mode", datum::str_value(opt_str(row.get("vlan_mode")))),
        ("tag", datum::int_value(opt_i64(row.get("tag")))),
        ("trunks", if trunks.is_empty() { Value::Null } else { Value::List(trunks.into()) }),
        ("mtu_request", datum::int_value(first.and_then(|i| opt_i64(i.get("mtu_request"))))),
        ("ofport_request", if bond { Value::Null } else { datum::int_value(first.and_then(|i| opt_i64(i.get("ofport_request")))) }),
        ("qos", atoms(row.get("qos")).first().and_then(datum::uuid_of).map(Value::from).unwrap_or(Value::Null)),
        ("external_ids", user_ids(row)),
        ("id", Value::from(row_uuid(row))),
        ("ofport", if bond { Value::Null } else { datum::int_value(first.and_then(|i| opt_i64(i.get("ofport")))) }),
        ("mac", datum::str_value(first.and_then(|i| opt_str(i.get("mac_in_use"))))),
        ("status", strings_value(status)),
    ])
}

#[cfg(test)]
mod trunk_order_tests {
    use super::*;

    #[test]
    fn the_same_trunks_in_another_order_are_no_change_but_other_trunks_are() {
        let read = Value::object([("trunks", Value::List(vec![Value::from(10), Value::from(20)].into()))]);
        let config = Value::object([("trunks", Value::List(vec![Value::from(20), Value::from(10)].into()))]);
        assert_eq!(keep_trunk_order(read.clone(), &config), config);
        let other = Value::object([("trunks", Value::List(vec![Value::from(30), Value::from(10)].into()))]);
        assert_eq!(keep_trunk_order(read.clone(), &other), read);
    }
}
