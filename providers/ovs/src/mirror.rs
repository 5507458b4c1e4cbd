//! `ovs_mirror`: a Mirror row on a bridge (SPAN to an output port, RSPAN to
//! an output VLAN), selecting traffic by source/destination port and VLAN.
//! Ports are named in the configuration and referenced by row UUID in the
//! database.

use crate::datum::{self, atoms, external_ids_with_identity, row_name, row_uuid, set, strata_id, string_map, user_ids, uuid, uuids, value_strings, Row, Snapshot};
use crate::txn::{by_uuid, cond, guard};
use crate::{Context, Kind};
use serde_json::{json, Value as Json};
use strata_provider::{Attribute, Block, Disruption, ProviderError, Result, Type, Value};
use uuid::Uuid;

pub struct Mirror;

/// Port-set columns and their attributes.
const PORT_SETS: [(&str, &str); 2] = [("select_src_port", "select_src_ports"), ("select_dst_port", "select_dst_ports")];

impl Kind for Mirror {
    fn schema(&self) -> Block {
        let names = || Type::Set(Box::new(Type::String));
        Block::new("A port mirror (SPAN/RSPAN) on a bridge.")
            .attr("bridge", Attribute::required(Type::String).on_change(Disruption::Replace).describe("Name of the bridge."))
            .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace).describe("Mirror name."))
            .attr("select_all", Attribute::optional(Type::Bool).describe("Mirror every packet on the bridge (unset means false). Live."))
            .attr("select_src_ports", Attribute::optional(names()).describe("Ports whose received packets are mirrored. Live."))
            .attr("select_dst_ports", Attribute::optional(names()).describe("Ports whose sent packets are mirrored. Live."))
            .attr("select_vlans", Attribute::optional(Type::Set(Box::new(Type::Number))).describe("Mirror only these VLANs. Live."))
            .attr("output_port", Attribute::optional(Type::String).describe("SPAN: the port that receives the copies. Live."))
            .attr("output_vlan", Attribute::optional(Type::Number).describe("RSPAN: the VLAN that carries the copies. Live."))
            .attr("external_ids", Attribute::optional(Type::Map(Box::new(Type::String))).describe("External IDs (besides strata-id). Live."))
            .attr("id", Attribute::computed(Type::String).describe("UUID of the Mirror row."))
    }

    fn validate(&self, config: &Value, _ctx: &Context) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let has = |a: &str| !config.get(a).is_null();
        match (has("output_port"), has("output_vlan")) {
            (false, false) => out.push(("output_port".into(), "a mirror needs output_port (SPAN) or output_vlan (RSPAN)".into())),
            (true, true) => out.push(("output_vlan".into(), "set output_port or output_vlan, not both".into())),
            _ => {}
        }
        if config.get("select_all").as_bool() != Some(true) && !["select_src_ports", "select_dst_ports", "select_vlans"].iter().any(|a| has(a)) {
            out.push(("select_all".into(), "select something: select_all, select_src_ports, select_dst_ports or select_vlans".into()));
        }
        let vlan_ok = |v: &Value| v.as_i64().is_some_and(|n| (0..=4095).contains(&n));
        if has("output_vlan") && !config.get("output_vlan").is_unknown() && !vlan_ok(config.get("output_vlan")) {
            out.push(("output_vlan".into(), format!("VLAN {} is outside 0-4095", config.get("output_vlan").to_hcl())));
        }
        for v in config.get("select_vlans").as_list().unwrap_or_default() {
            if !v.is_unknown() && !vlan_ok(v) {
                out.push(("select_vlans".into(), format!("VLAN {} is outside 0-4095", v.to_hcl())));
            }
        }
        out
    }

    fn read(&self, snap: &Snapshot, id: Uuid, state: &Value) -> Option<Value> {
        let row = state.get("id").as_str().and_then(|u| snap.mirrors.get(u)).or_else(|| by_identity(snap, id))?;
        Some(decode(snap, row))
    }

    fn find(&self, snap: &Snapshot, id: Uuid) -> Option<Value> {
        by_identity(snap, id).map(|r| decode(snap, r))
    }

    fn lookup(&self, snap: &Snapshot, name: &str) -> Option<Value> {
        snap.mirrors.values().find(|m| row_name(m) == name).map(|r| decode(snap, r))
    }

    fn create(&self, snap: &Snapshot, id: Uuid, planned: &Value) -> Result<Vec<Json>> {
        let bridge = bridge_row(snap, planned)?;
        let mut row = columns(snap, planned, bridge)?;
        row.insert("name".into(), json!(planned.get("name").as_str().unwrap_or_default()));
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        Ok(vec![
            json!({"op": "insert", "table": "Mirror", "uuid-name": "mirror", "row": row}),
            json!({"op": "mutate", "table": "Bridge", "where": by_uuid(&row_uuid(bridge)),
                   "mutations": [["mirrors", "insert", set(vec![datum::named("mirror")])]]}),
        ])
    }

    fn update(&self, snap: &Snapshot, id: Uuid, prior: &Value, planned: &Value, guarded: bool) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        let bridge = bridge_row(snap, planned)?;
        let mut ops = if guarded { vec![guard_op(snap, prior, row_id)?] } else { Vec::new() };
        let mut row = columns(snap, planned, bridge)?;
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "update", "table": "Mirror", "where": by_uuid(row_id), "row": row}));
        Ok(ops)
    }

    fn delete(&self, snap: &Snapshot, prior: &Value) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        let holder = snap.bridges.iter().find(|b| uuids(b.get("mirrors")).iter().any(|m| m == row_id)).map(row_uuid).unwrap_or_default();
        Ok(vec![
            guard_op(snap, prior, row_id)?,
            json!({"op": "mutate", "table": "Bridge", "where": by_uuid(&holder), "mutations": [["mirrors", "delete", set(vec![uuid(row_id)])]]}),
        ])
    }
}

fn row_id(prior: &Value) -> Result<&str> {
    prior.get("id").as_str().ok_or_else(|| ProviderError::new("ovs_mirror state has no row id; refresh first"))
}

fn by_identity(snap: &Snapshot, id: Uuid) -> Option<&Row> {
    let id = id.to_string();
    snap.mirrors.values().find(|r| strata_id(r) == Some(id.as_str()))
}

fn bridge_row<'a>(snap: &'a Snapshot, v: &Value) -> Result<&'a Row> {
    let name = v.get("bridge").as_str().unwrap_or_default();
    snap.bridge_named(name).ok_or_else(|| ProviderError::new(format!("mirror {:?}: bridge {name:?} does not exist", v.get("name").as_str().unwrap_or_default())))
}

/// The UUID of the port `name` on `bridge`.
fn port_on(snap: &Snapshot, bridge: &Row, name: &str) -> Result<String> {
    uuids(bridge.get("ports"))
        .into_iter()
        .find(|u| snap.ports.get(u).is_some_and(|p| row_name(p) == name))
        .ok_or_else(|| ProviderError::new(format!("port {name:?} is not on bridge {:?}", row_name(bridge))))
}

fn columns(snap: &Snapshot, v: &Value, bridge: &Row) -> Result<serde_json::Map<String, Json>> {
    let mut row = serde_json::Map::new();
    row.insert("select_all".into(), json!(v.get("select_all").as_bool().unwrap_or(false)));
    for (column, attr) in PORT_SETS {
        let mut refs = Vec::new();
        for name in v.get(attr).as_list().unwrap_or_default().iter().filter_map(Value::as_str) {
            refs.push(uuid(&port_on(snap, bridge, name)?));
        }
        row.insert(column.into(), json!(["set", refs]));
    }
    let vlans: Vec<Json> = v.get("select_vlans").as_list().unwrap_or_default().iter().filter_map(|n| n.as_i64().map(|n| json!(n))).collect();
    row.insert("select_vlan".into(), json!(["set", vlans]));
    let output = match v.get("output_port").as_str() {
        Some(name) => Some(uuid(&port_on(snap, bridge, name)?)),
        None => None,
    };
    row.insert("output_port".into(), datum::optional(output));
    row.insert("output_vlan".into(), datum::optional(v.get("output_vlan").as_i64().map(|n| json!(n))));
    Ok(row)
}

fn guard_op(snap: &Snapshot, prior: &Value, row_id: &str) -> Result<Json> {
    let name = prior.get("name").as_str().unwrap_or_default();
    let mut conditions = by_uuid(row_id);
    conditions.push(cond("name", "==", json!(name)));
    // Selections name ports; a port the plan saw that is gone fails the guard too.
    if let Ok(bridge) = bridge_row(snap, prior) {
        if let Ok(cols) = columns(snap, prior, bridge) {
            for (column, datum) in cols {
                conditions.push(cond(&column, "==", datum));
            }
        }
    }
    conditions.push(cond("external_ids", "includes", string_map(&value_strings(prior.get("external_ids")))));
    Ok(guard("Mirror", conditions, name))
}

fn decode(snap: &Snapshot, row: &Row) -> Value {
    let row_id = row_uuid(row);
    let bridge = snap.bridges.iter().find(|b| uuids(b.get("mirrors")).contains(&row_id));
    let port_names = |column: &str| -> Value {
        let mut names: Vec<Value> = uuids(row.get(column)).iter().filter_map(|u| snap.ports.get(u)).map(|p| Value::from(row_name(p))).collect();
        names.sort_by_key(|v| v.as_str().map(str::to_owned));
        if names.is_empty() {
            Value::Null
        } else {
            Value::List(names.into())
        }
    };
    let vlans: Vec<Value> = atoms(row.get("select_vlan")).iter().filter_map(Json::as_i64).map(Value::from).collect();
    Value::object([
        ("bridge", bridge.map(|b| Value::from(row_name(b))).unwrap_or(Value::Null)),
        ("name", Value::from(row_name(row))),
        // Unset and false are the same: null, so that leaving it out is no change.
        ("select_all", if atoms(row.get("select_all")).first().and_then(Json::as_bool) == Some(true) { Value::Bool(true) } else { Value::Null }),
        ("select_src_ports", port_names("select_src_port")),
        ("select_dst_ports", port_names("select_dst_port")),
        ("select_vlans", if vlans.is_empty() { Value::Null } else { Value::List(vlans.into()) }),
        (
            "output_port",
            atoms(row.get("output_port")).first().and_then(datum::uuid_of).and_then(|u| snap.ports.get(u)).map(|p| Value::from(row_name(p))).unwrap_or(Value::Null),
        ),
        ("output_vlan", datum::int_value(datum::opt_i64(row.get("output_vlan")))),
        ("external_ids", user_ids(row)),
        ("id", Value::from(row_id.clone())),
    ])
}
