//! `ovs_bridge`: a Bridge row with its own internal Port and Interface of
//! the same name, referenced from the root `Open_vSwitch.bridges`.

use crate::datum::{self, atoms, external_ids_with_identity, map_of, named, opt_str, row_name, row_uuid, set, str_of, strata_id, string_map, strings_value, user_ids, uuid, uuids, value_strings, Row, Scope, Snapshot, STRATA_ID};
use crate::txn::{by_uuid, cond, guard};
use crate::{Context, Kind};
use serde_json::{json, Value as Json};
use strata_provider::{Attribute, Block, Disruption, PlanRequest, PlanResponse, ProviderError, Result, Type, Value};
use uuid::Uuid;

pub struct Bridge;

const FAIL_MODES: [&str; 2] = ["standalone", "secure"];
const PROTOCOLS: [&str; 6] = ["OpenFlow10", "OpenFlow11", "OpenFlow12", "OpenFlow13", "OpenFlow14", "OpenFlow15"];

/// Boolean columns, set as given, false when unset.
const FLAGS: [&str; 3] = ["stp_enable", "rstp_enable", "mcast_snooping_enable"];

impl Kind for Bridge {
    fn schema(&self) -> Block {
        let strings = || Type::Map(Box::new(Type::String));
        Block::new("An Open vSwitch bridge, with its own internal port of the same name.")
            .attr(
                "name",
                Attribute::required(Type::String)
                    .on_change(Disruption::Replace)
                    .describe("Bridge name; also the name of its internal port and of the host device."),
            )
            .attr(
                "datapath_type",
                Attribute::optional_computed(Type::String).on_change(Disruption::Restart).describe(
                    "`system` (kernel datapath) or `netdev` (userspace). Default: `system` where the kernel has the OVS datapath, else `netdev`. A change recreates the datapath: traffic stops while ports are re-added.",
                ),
            )
            .attr(
                "fail_mode",
                Attribute::optional(Type::String)
                    .describe("`standalone` (default: act as a learning switch without a controller) or `secure`. Live."),
            )
            .attr(
                "protocols",
                Attribute::optional(Type::List(Box::new(Type::String)))
                    .describe("OpenFlow versions the bridge speaks, e.g. [\"OpenFlow10\", \"OpenFlow13\"]. Live."),
            )
            .attr("stp_enable", Attribute::optional_computed(Type::Bool).describe("Spanning tree (802.1D). Live."))
            .attr("rstp_enable", Attribute::optional_computed(Type::Bool).describe("Rapid spanning tree (802.1w). Live."))
            .attr(
                "mcast_snooping_enable",
                Attribute::optional_computed(Type::Bool).describe("IGMP/MLD snooping. Live."),
            )
            .attr("other_config", Attribute::optional(strings()).describe("Bridge other_config, e.g. hwaddr. Live."))
            .attr(
                "external_ids",
                Attribute::optional(strings()).describe("External IDs (besides Strata's own strata-id). Live."),
            )
            .attr("id", Attribute::computed(Type::String).describe("UUID of the Bridge row."))
            .attr("datapath_id", Attribute::computed(Type::String).describe("OpenFlow datapath ID ovs-vswitchd assigned."))
            .attr("ofport", Attribute::computed(Type::Number).describe("OpenFlow port of the bridge's own port (65534)."))
    }

    fn validate(&self, config: &Value, ctx: &Context) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(name) = config.get("name").as_str() {
            ctx.planned_bridges.lock().expect("bridges lock").insert(name.to_owned());
            if let Some(problem) = device_name_problem(name) {
                out.push(("name".into(), problem));
            }
        }
        if let Some(dp) = config.get("datapath_type").as_str() {
            if !matches!(dp, "system" | "netdev") {
                out.push(("datapath_type".into(), format!("unknown datapath type {dp:?} (system or netdev)")));
            } else if !ctx.host.supports_datapath(dp) {
                out.push((
                    "datapath_type".into(),
                    format!(
                        "this host has no {dp} datapath (it supports {}): the kernel lacks the openvswitch module; use datapath_type = \"netdev\"",
                        ctx.host.datapath_types.join(", ")
                    ),
                ));
            }
        }
        if let Some(mode) = config.get("fail_mode").as_str() {
            if !FAIL_MODES.contains(&mode) {
                out.push(("fail_mode".into(), format!("unknown fail_mode {mode:?} (standalone or secure)")));
            }
        }
        for p in config.get("protocols").as_list().unwrap_or_default() {
            if let Some(p) = p.as_str() {
                if !PROTOCOLS.contains(&p) {
                    out.push(("protocols".into(), format!("unknown OpenFlow version {p:?} ({})", PROTOCOLS.join(", "))));
                }
            }
        }
        if config.get("stp_enable").as_bool() == Some(true) && config.get("rstp_enable").as_bool() == Some(true) {
            out.push(("rstp_enable".into(), "STP and RSTP cannot both be enabled".into()));
        }
        out
    }

    fn plan(&self, req: &PlanRequest<'_>, ctx: &Context) -> Result<PlanResponse> {
        let mut response = PlanResponse::default();
        let mut planned = req.proposed.clone();
        if req.prior.is_none() {
            self.defaults(&mut planned, ctx);
            response.planned = Some(planned);
        } else if let Some(prior) = req.prior {
            let mut keep = vec!["id", "ofport"];
            if prior.get("datapath_type") == req.proposed.get("datapath_type") {
                keep.push("datapath_id");
            }
            response.planned = Some(crate::keep_computed(req.proposed, prior, &keep));
            if prior.get("datapath_type") != req.proposed.get("datapath_type") {
                response.notes.push("the datapath is recreated: every port of the bridge stops forwarding until it is re-added".into());
            }
        }
        Ok(response)
    }

    fn defaults(&self, planned: &mut Value, ctx: &Context) {
        let Value::Map(m) = planned else { return };
        let unset = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.is_unknown());
        if unset(m.get("datapath_type")) {
            m.insert("datapath_type".into(), Value::from(ctx.host.default_datapath()));
        }
        for flag in FLAGS {
            if unset(m.get(flag)) {
                m.insert(flag.into(), Value::Bool(false));
            }
        }
    }

    fn read(&self, snap: &Snapshot, id: Uuid, state: &Value) -> Option<Value> {
        let row = state
            .get("id")
            .as_str()
            .and_then(|u| snap.bridges.iter().find(|b| row_uuid(b) == u))
            .or_else(|| by_identity(snap, id))?;
        Some(decode(snap, row))
    }

    fn find(&self, snap: &Snapshot, id: Uuid) -> Option<Value> {
        by_identity(snap, id).map(|r| decode(snap, r))
    }

    fn lookup(&self, snap: &Snapshot, name: &str) -> Option<Value> {
        snap.bridge_named(name).map(|r| decode(snap, r))
    }

    fn scope(&self, v: &Value) -> Option<Scope> {
        // The bridge row, and its own port and interface (same name).
        let mut scope = Scope::default();
        if let Some(name) = v.get("name").as_str() {
            scope.bridges.insert(name.to_owned());
            scope.ports.insert(name.to_owned());
            scope.interfaces.insert(name.to_owned());
        }
        scope.bridge_ids.extend(v.get("id").as_str().map(str::to_owned));
        Some(scope)
    }

    fn create(&self, snap: &Snapshot, id: Uuid, planned: &Value) -> Result<Vec<Json>> {
        let name = planned.get("name").as_str().ok_or_else(|| ProviderError::new("ovs_bridge needs a name"))?;
        let mut row = columns(planned);
        row.insert("name".into(), json!(name));
        row.insert("ports".into(), named("port"));
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        let identity = string_map(&[(STRATA_ID.to_owned(), id.to_string())].into());
        Ok(vec![
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface", "row": {"name": name, "type": "internal", "external_ids": identity}}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": {"name": name, "interfaces": named("iface"), "external_ids": identity}}),
            json!({"op": "insert", "table": "Bridge", "uuid-name": "bridge", "row": row}),
            json!({"op": "mutate", "table": "Open_vSwitch", "where": by_uuid(&snap.root_uuid()),
                   "mutations": [["bridges", "insert", set(vec![named("bridge")])]]}),
        ])
    }

    fn update(&self, _snap: &Snapshot, id: Uuid, prior: &Value, planned: &Value, guarded: bool) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        let mut ops = Vec::new();
        if guarded {
            ops.push(guard_op(prior, row_id));
        }
        let mut row = columns(planned);
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "update", "table": "Bridge", "where": by_uuid(row_id), "row": row}));
        Ok(ops)
    }

    fn delete(&self, snap: &Snapshot, prior: &Value) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        Ok(vec![
            guard_op(prior, row_id),
            json!({"op": "mutate", "table": "Open_vSwitch", "where": by_uuid(&snap.root_uuid()),
                   "mutations": [["bridges", "delete", set(vec![uuid(row_id)])]]}),
        ])
    }

    fn rejection(&self, snap: &Snapshot, state: &Value) -> Option<String> {
        let name = state.get("name").as_str()?;
        let row = snap.bridge_named(name)?;
        let iface = own_interface(snap, row);
        if let Some(error) = iface.and_then(|i| opt_str(i.get("error"))) {
            return Some(error);
        }
        let no_datapath = opt_str(row.get("datapath_id")).is_none();
        let no_ofport = iface.and_then(|i| datum::opt_i64(i.get("ofport"))).is_none_or(|p| p < 0);
        (no_datapath || no_ofport).then(|| {
            let dp = opt_str(row.get("datapath_type")).unwrap_or_else(|| "system".into());
            format!("it could not create the bridge's datapath (type {dp}); see the ovs-vswitchd log")
        })
    }
}

/// Names the kernel will not take for the bridge's device.
pub fn device_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 15 {
        Some(format!("{name:?} must be 1 to 15 characters: it names a network device"))
    } else if name.chars().any(|c| c == '/' || c.is_whitespace()) || name == "." || name == ".." {
        Some(format!("{name:?} cannot name a network device (no '/', no spaces)"))
    } else {
        None
    }
}

fn row_id(prior: &Value) -> Result<&str> {
    prior.get("id").as_str().ok_or_else(|| ProviderError::new("ovs_bridge state has no row id; refresh first"))
}

fn by_identity(snap: &Snapshot, id: Uuid) -> Option<&Row> {
    let id = id.to_string();
    snap.bridges.iter().find(|b| strata_id(b) == Some(id.as_str()))
}

/// The columns Strata sets, from a state or plan (name and refs excluded).
fn columns(v: &Value) -> serde_json::Map<String, Json> {
    let mut row = serde_json::Map::new();
    row.insert("datapath_type".into(), json!(v.get("datapath_type").as_str().unwrap_or_default()));
    row.insert("fail_mode".into(), datum::optional(str_of(v.get("fail_mode"))));
    let protocols: Vec<Json> = v.get("protocols").as_list().unwrap_or_default().iter().filter_map(str_of).collect();
    row.insert("protocols".into(), json!(["set", protocols]));
    for flag in FLAGS {
        row.insert(flag.into(), json!(v.get(flag).as_bool().unwrap_or(false)));
    }
    row.insert("other_config".into(), string_map(&value_strings(v.get("other_config"))));
    row
}

/// Asserts the Bridge row still holds what `prior` says.
fn guard_op(prior: &Value, row_id: &str) -> Json {
    let mut conditions = by_uuid(row_id);
    let name = prior.get("name").as_str().unwrap_or_default();
    conditions.push(cond("name", "==", json!(name)));
    for (column, datum) in columns(prior) {
        if column == "datapath_type" && datum == "system" {
            // "" means system too.
            conditions.push(cond(&column, "!=", json!("netdev")));
        } else {
            conditions.push(cond(&column, "==", datum));
        }
    }
    conditions.push(cond("external_ids", "includes", string_map(&value_strings(prior.get("external_ids")))));
    guard("Bridge", conditions, name)
}

/// The bridge's own Interface (same name as the bridge).
fn own_interface<'a>(snap: &'a Snapshot, bridge: &Row) -> Option<&'a Row> {
    let name = row_name(bridge);
    uuids(bridge.get("ports"))
        .iter()
        .filter_map(|u| snap.ports.get(u))
        .find(|p| row_name(p) == name)
        .and_then(|p| snap.interfaces_of(p).into_iter().find(|i| row_name(i) == name))
}

fn decode(snap: &Snapshot, row: &Row) -> Value {
    let protocols: Vec<Value> = atoms(row.get("protocols")).iter().filter_map(|a| a.as_str().map(Value::from)).collect();
    let flag = |c: &str| Value::Bool(atoms(row.get(c)).first().and_then(Json::as_bool).unwrap_or(false));
    let ofport = own_interface(snap, row).and_then(|i| datum::opt_i64(i.get("ofport")));
    Value::object([
        ("name", Value::from(row_name(row))),
        ("datapath_type", Value::from(opt_str(row.get("datapath_type")).filter(|s| !s.is_empty()).unwrap_or_else(|| "system".into()))),
        ("fail_mode", datum::str_value(opt_str(row.get("fail_mode")))),
        ("protocols", if protocols.is_empty() { Value::Null } else { Value::List(protocols.into()) }),
        ("stp_enable", flag("stp_enable")),
        ("rstp_enable", flag("rstp_enable")),
        ("mcast_snooping_enable", flag("mcast_snooping_enable")),
        ("other_config", strings_value(map_of(row.get("other_config")))),
        ("external_ids", user_ids(row)),
        ("id", Value::from(row_uuid(row))),
        ("datapath_id", datum::str_value(opt_str(row.get("datapath_id")))),
        ("ofport", datum::int_value(ofport)),
    ])
}
