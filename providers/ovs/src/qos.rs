//! `ovs_qos`: a QoS row and its Queue rows (both root tables: they live
//! until deleted, even when no port uses them). Ports refer to it by UUID.
//!
//! vswitchd accepts any QoS type into the database and silently ignores one
//! the port's netdev cannot do (egress-policer outside DPDK, for one), so
//! whether a QoS is *in force* is checked per port, through vswitchd's
//! control socket ([`enforcement_problem`]).

use crate::client::Client;
use crate::datum::{self, external_ids_with_identity, map_of, named, row_uuid, strata_id, string_map, user_ids, uuid, value_strings, Row, Snapshot};
use crate::txn::{by_uuid, cond};
use crate::{Context, Kind};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use strata_provider::{Attribute, Block, Disruption, ProviderError, Result, Type, Value};
use uuid::Uuid;

pub struct Qos;

const TYPES: [&str; 4] = ["linux-htb", "linux-hfsc", "egress-policer", "linux-noop"];
/// Queue attributes and the `other_config` keys they set.
const QUEUE_KEYS: [(&str, &str); 4] = [("min_rate", "min-rate"), ("max_rate", "max-rate"), ("burst", "burst"), ("priority", "priority")];

impl Kind for Qos {
    fn schema(&self) -> Block {
        let number = || Type::Optional(Box::new(Type::Number), None);
        let queue = Type::Object(BTreeMap::from([
            ("id".into(), Type::Number),
            ("min_rate".into(), number()),
            ("max_rate".into(), number()),
            ("burst".into(), number()),
            ("priority".into(), number()),
        ]));
        Block::new("A QoS policy with queues, for ports to use (`qos = ovs_qos.NAME.id`).")
            .attr(
                "type",
                Attribute::required(Type::String).on_change(Disruption::Replace).describe(
                    "linux-htb, linux-hfsc, egress-policer (DPDK ports only) or linux-noop. Ports check at apply time that vswitchd put it in force.",
                ),
            )
            .attr("max_rate", Attribute::optional(Type::Number).describe("linux-htb/hfsc: the port's total rate, bit/s. Live."))
            .attr("cir", Attribute::optional(Type::Number).describe("egress-policer: committed rate, bytes/s. Live."))
            .attr("cbs", Attribute::optional(Type::Number).describe("egress-policer: committed burst, bytes. Live."))
            .attr(
                "queues",
                Attribute::optional(Type::List(Box::new(queue)))
                    .describe("Queues by number (`id`, used by `set_queue` / `enqueue` flows): min_rate, max_rate (bit/s), burst (bits), priority. Live."),
            )
            .attr("external_ids", Attribute::optional(Type::Map(Box::new(Type::String))).describe("External IDs (besides strata-id). Live."))
            .attr("id", Attribute::computed(Type::String).describe("UUID of the QoS row (what `ovs_port.qos` takes)."))
    }

    fn validate(&self, config: &Value, _ctx: &Context) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let ty = config.get("type").as_str().unwrap_or_default();
        if !config.get("type").is_unknown() && !TYPES.contains(&ty) {
            out.push(("type".into(), format!("unknown QoS type {ty:?} ({})", TYPES.join(", "))));
        }
        for attr in ["max_rate", "cir", "cbs"] {
            if config.get(attr).as_f64().is_some_and(|n| n < 0.0 || n.fract() != 0.0) {
                out.push((attr.into(), format!("{attr} must be a whole number >= 0")));
            }
        }
        if ty == "egress-policer" && !config.get("queues").is_null() {
            out.push(("queues".into(), "an egress-policer has no queues".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for q in config.get("queues").as_list().unwrap_or_default() {
            match q.get("id").as_i64() {
                Some(n) if (0..=0xFFFF_FFFF).contains(&n) => {
                    if !seen.insert(n) {
                        out.push(("queues".into(), format!("queue {n} is listed twice")));
                    }
                }
                _ => out.push(("queues".into(), "every queue needs an id from 0 to 4294967295".into())),
            }
            if let (Some(min), Some(max)) = (q.get("min_rate").as_f64(), q.get("max_rate").as_f64()) {
                if min > max {
                    out.push(("queues".into(), format!("queue {}: min_rate {min} is above max_rate {max}", q.get("id").to_hcl())));
                }
            }
        }
        out
    }

    fn read(&self, snap: &Snapshot, id: Uuid, state: &Value) -> Option<Value> {
        let row = state.get("id").as_str().and_then(|u| snap.qos.get(u)).or_else(|| by_identity(snap, id))?;
        Some(decode(snap, row))
    }

    fn find(&self, snap: &Snapshot, id: Uuid) -> Option<Value> {
        by_identity(snap, id).map(|r| decode(snap, r))
    }

    fn lookup(&self, snap: &Snapshot, import_id: &str) -> Option<Value> {
        snap.qos.get(import_id).map(|r| decode(snap, r))
    }

    fn describe(&self, v: &Value) -> String {
        match v.get("id").as_str() {
            Some(id) => format!("{} {id}", v.get("type").as_str().unwrap_or_default()),
            None => v.get("type").as_str().unwrap_or_default().to_owned(),
        }
    }

    fn create(&self, _snap: &Snapshot, id: Uuid, planned: &Value) -> Result<Vec<Json>> {
        let mut ops = Vec::new();
        let mut queues = Vec::new();
        for (i, q) in planned.get("queues").as_list().unwrap_or_default().iter().enumerate() {
            let handle = format!("queue{i}");
            ops.push(json!({"op": "insert", "table": "Queue", "uuid-name": handle, "row": queue_row(q, id)}));
            queues.push(json!([q.get("id").as_i64().unwrap_or(0), named(&handle)]));
        }
        let mut row = columns(planned);
        row.insert("queues".into(), json!(["map", queues]));
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "insert", "table": "QoS", "row": row}));
        Ok(ops)
    }

    fn update(&self, snap: &Snapshot, id: Uuid, prior: &Value, planned: &Value, guarded: bool) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        let mut ops = if guarded { vec![guard_op(prior, row_id)] } else { Vec::new() };
        let existing = snap.qos.get(row_id).map(queue_rows).unwrap_or_default();
        let mut queues = Vec::new();
        for (i, q) in planned.get("queues").as_list().unwrap_or_default().iter().enumerate() {
            let number = q.get("id").as_i64().unwrap_or(0);
            if let Some(queue_id) = existing.get(&number) {
                ops.push(json!({"op": "update", "table": "Queue", "where": by_uuid(queue_id), "row": queue_row(q, id)}));
                queues.push(json!([number, uuid(queue_id)]));
            } else {
                let handle = format!("queue{i}");
                ops.push(json!({"op": "insert", "table": "Queue", "uuid-name": handle, "row": queue_row(q, id)}));
                queues.push(json!([number, named(&handle)]));
            }
        }
        let mut row = columns(planned);
        row.insert("queues".into(), json!(["map", queues]));
        row.insert("external_ids".into(), external_ids_with_identity(planned.get("external_ids"), &id.to_string()));
        ops.push(json!({"op": "update", "table": "QoS", "where": by_uuid(row_id), "row": row}));
        let kept: Vec<i64> = planned.get("queues").as_list().unwrap_or_default().iter().filter_map(|q| q.get("id").as_i64()).collect();
        for (number, queue_id) in &existing {
            if !kept.contains(number) {
                ops.push(json!({"op": "delete", "table": "Queue", "where": by_uuid(queue_id)}));
            }
        }
        Ok(ops)
    }

    fn delete(&self, snap: &Snapshot, prior: &Value) -> Result<Vec<Json>> {
        let row_id = row_id(prior)?;
        let mut ops = vec![guard_op(prior, row_id), json!({"op": "delete", "table": "QoS", "where": by_uuid(row_id)})];
        for queue_id in snap.qos.get(row_id).map(queue_rows).unwrap_or_default().values() {
            ops.push(json!({"op": "delete", "table": "Queue", "where": by_uuid(queue_id)}));
        }
        Ok(ops)
    }
}

fn row_id(prior: &Value) -> Result<&str> {
    prior.get("id").as_str().ok_or_else(|| ProviderError::new("ovs_qos state has no row id; refresh first"))
}

fn by_identity(snap: &Snapshot, id: Uuid) -> Option<&Row> {
    let id = id.to_string();
    snap.qos.values().find(|r| strata_id(r) == Some(id.as_str()))
}

fn columns(v: &Value) -> serde_json::Map<String, Json> {
    let mut config = BTreeMap::new();
    for (attr, key) in [("max_rate", "max-rate"), ("cir", "cir"), ("cbs", "cbs")] {
        if let Some(n) = v.get(attr).as_i64() {
            config.insert(key.to_owned(), n.to_string());
        }
    }
    let mut row = serde_json::Map::new();
    row.insert("type".into(), json!(v.get("type").as_str().unwrap_or_default()));
    row.insert("other_config".into(), string_map(&config));
    row
}

fn queue_row(q: &Value, id: Uuid) -> Json {
    let mut config = BTreeMap::new();
    for (attr, key) in QUEUE_KEYS {
        if let Some(n) = q.get(attr).as_i64() {
            config.insert(key.to_owned(), n.to_string());
        }
    }
    json!({"other_config": string_map(&config), "external_ids": string_map(&[(datum::STRATA_ID.to_owned(), id.to_string())].into())})
}

/// Queue number → Queue row UUID.
fn queue_rows(qos: &Row) -> BTreeMap<i64, String> {
    let Some(Json::Array(a)) = qos.get("queues") else { return BTreeMap::new() };
    a.get(1)
        .and_then(Json::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| Some((p.get(0)?.as_i64()?, datum::uuid_of(p.get(1)?)?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn guard_op(prior: &Value, row_id: &str) -> Json {
    let mut conditions = by_uuid(row_id);
    for (column, datum) in columns(prior) {
        conditions.push(cond(&column, "==", datum));
    }
    conditions.push(cond("external_ids", "includes", string_map(&value_strings(prior.get("external_ids")))));
    // QoS rows have no name column: guard on the type instead.
    json!({"op": "wait", "table": "QoS", "timeout": 0, "where": conditions, "columns": ["type"], "until": "==",
           "rows": [{"type": prior.get("type").as_str().unwrap_or_default()}]})
}

fn number(map: &BTreeMap<String, String>, key: &str) -> Value {
    map.get(key).and_then(|s| s.parse::<i64>().ok()).map(Value::from).unwrap_or(Value::Null)
}

fn decode(snap: &Snapshot, row: &Row) -> Value {
    let config = map_of(row.get("other_config"));
    let queues: Vec<Value> = queue_rows(row)
        .iter()
        .filter_map(|(n, u)| {
            let q = map_of(snap.queues.get(u)?.get("other_config"));
            let mut entries = vec![("id", Value::from(*n))];
            for (attr, key) in QUEUE_KEYS {
                entries.push((attr, number(&q, key)));
            }
            Some(Value::object(entries))
        })
        .collect();
    Value::object([
        ("type", datum::str_value(datum::opt_str(row.get("type")))),
        ("max_rate", number(&config, "max-rate")),
        ("cir", number(&config, "cir")),
        ("cbs", number(&config, "cbs")),
        ("queues", if queues.is_empty() { Value::Null } else { Value::List(queues.into()) }),
        ("external_ids", user_ids(row)),
        ("id", Value::from(row_uuid(row))),
    ])
}

/// Why the QoS `qos_type` is not in force on `port`, asked of ovs-vswitchd
/// over its control socket (`qos/show-types`, `qos/show`); `None` when it is.
pub async fn enforcement_problem(ctl: &Client, port: &str, qos_type: &str) -> Option<String> {
    let types = match ctl.request("qos/show-types", json!([port])).await {
        Ok(t) => t.as_str().unwrap_or_default().to_owned(),
        Err(e) => return Some(format!("could not ask ovs-vswitchd whether it is in force: {e}")),
    };
    let supported: Vec<&str> = types.lines().filter_map(|l| l.strip_prefix("QoS type: ")).collect();
    if !supported.contains(&qos_type) {
        return Some(format!(
            "port {port:?} cannot enforce QoS type {qos_type} (its netdev supports {}); ovs-vswitchd stored it but ignores it",
            supported.join(", ")
        ));
    }
    match ctl.request("qos/show", json!([port])).await {
        Ok(text) if text.as_str().is_some_and(|t| t.contains("not configured")) => {
            Some(format!("ovs-vswitchd reports no QoS in force on port {port:?}: {}", text.as_str().unwrap_or_default().trim()))
        }
        Ok(_) => None,
        Err(e) => Some(format!("qos/show {port}: {e}")),
    }
}

/// The QoS type of the row `qos_id`, if it exists.
pub fn type_of(snap: &Snapshot, qos_id: &str) -> Option<String> {
    snap.qos.get(qos_id).and_then(|r| datum::opt_str(r.get("type")))
}
