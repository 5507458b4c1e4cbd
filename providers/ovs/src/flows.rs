//! `ovs_flow_set`: a named set of OpenFlow rules on one bridge, owned through
//! a cookie derived from the instance UUID (see [`crate::openflow`]).
//!
//! - Create and update install the whole set in one OpenFlow bundle, so the
//!   switch holds the old set or the new one, never a mix.
//! - vswitchd keeps flows only in memory: after a restart, or after someone
//!   deletes or modifies a flow, refresh reports the set as it is (missing
//!   flows left out, altered ones as the switch shows them), so the next plan
//!   shows the difference and the apply installs the set again.
//! - Syntax is checked at plan time with `ovs-ofctl parse-flows`; what only
//!   the switch can know (port names, groups, meters) fails the bundle, and
//!   with it the whole operation, with vswitchd's message.

use crate::openflow::{Cookie, FlowSpec, FlowState, OpenFlow, MAX_FLOWS};
use std::collections::{BTreeMap, BTreeSet};
use strata_provider::{Attribute, Block, Disruption, PlanResponse, ProviderError, Result, Type, UndoRecord, Value};
use uuid::Uuid;

/// The priority OpenFlow gives a flow that names none.
const DEFAULT_PRIORITY: i64 = 32768;

pub fn schema() -> Block {
    let optional = |t: Type, default: Value| Type::Optional(Box::new(t), Some(Box::new(default)));
    let flow = Type::Object(BTreeMap::from([
        ("table".into(), optional(Type::Number, Value::from(0))),
        ("priority".into(), optional(Type::Number, Value::from(DEFAULT_PRIORITY))),
        ("match".into(), optional(Type::String, Value::from(""))),
        ("actions".into(), Type::String),
    ]));
    Block::new(
        "A set of OpenFlow rules on a bridge, owned by a cookie derived from the instance identity: Strata reads, \
         replaces and deletes only its own flows. The set is replaced atomically (one OpenFlow bundle); flows lost \
         when ovs-vswitchd restarts show up as drift and are installed again by the next apply.",
    )
    .attr("bridge", Attribute::required(Type::String).on_change(Disruption::Replace).describe("The bridge the flows are on."))
    .attr(
        "flows",
        Attribute::required(Type::List(Box::new(flow))).describe(
            "The rules, each with table (default 0), priority (default 32768), match (ovs-ofctl syntax, default: \
             everything) and actions (ovs-ofctl syntax, e.g. \"ct(commit),NORMAL\"). Replaced in one bundle.",
        ),
    )
    .attr("cookie", Attribute::computed(Type::String).describe("The owner cookie; the flows carry it in their upper 48 bits (dump them with cookie=COOKIE/0xffffffffffff0000)."))
    .attr(
        "installed_flows",
        Attribute::computed(Type::List(Box::new(Type::String))).describe("The flows as ovs-vswitchd reported them after installation (ovs-ofctl dump-flows syntax)."),
    )
}

/// A declared flow's fields, checked; `Ok(None)` when a part is not known yet.
fn spec(flow: &Value) -> std::result::Result<Option<FlowSpec>, String> {
    if flow.contains_unknown() {
        return Ok(None);
    }
    let table = flow.get("table").as_i64().unwrap_or(0);
    let priority = flow.get("priority").as_i64().unwrap_or(DEFAULT_PRIORITY);
    let matches = flow.get("match").as_str().unwrap_or_default().trim().to_owned();
    let actions = flow.get("actions").as_str().unwrap_or_default().trim().to_owned();
    if !(0..=254).contains(&table) {
        return Err(format!("table {table} is outside 0–254"));
    }
    if !(0..=65535).contains(&priority) {
        return Err(format!("priority {priority} is outside 0–65535"));
    }
    if actions.is_empty() {
        return Err("actions are empty (use \"drop\" to drop)".into());
    }
    for (what, text) in [("match", &matches), ("actions", &actions)] {
        if text.contains(['\n', '\r']) {
            return Err(format!("{what} must be one line"));
        }
    }
    for field in matches.split(',').map(|f| f.split('=').next().unwrap_or_default().trim()) {
        if matches!(field, "cookie" | "table" | "priority" | "actions") {
            return Err(format!("match must not set {field}: {}", if field == "cookie" { "Strata owns the cookie" } else { "use the flow's own attribute" }));
        }
    }
    Ok(Some(FlowSpec { table: table as u8, priority: priority as u16, matches, actions }))
}

/// The declared flows, or what is wrong with them (flow numbers from 1).
fn specs(config: &Value) -> std::result::Result<Option<Vec<FlowSpec>>, Vec<String>> {
    let flows = config.get("flows").as_list().unwrap_or_default();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut known = true;
    if flows.len() > MAX_FLOWS {
        errors.push(format!("{} flows are more than one set may hold ({MAX_FLOWS})", flows.len()));
    }
    for (i, flow) in flows.iter().enumerate() {
        match spec(flow) {
            Ok(Some(s)) => {
                if !seen.insert((s.table, s.priority, s.matches.clone())) {
                    errors.push(format!("flow {}: another flow has the same table, priority and match; OpenFlow would keep only one", i + 1));
                }
                out.push(s);
            }
            Ok(None) => known = false,
            Err(e) => errors.push(format!("flow {}: {e}", i + 1)),
        }
    }
    if !errors.is_empty() {
        Err(errors)
    } else {
        Ok(known.then_some(out))
    }
}

pub fn validate(config: &Value) -> Vec<(String, String)> {
    match specs(config) {
        Err(errors) => errors.into_iter().map(|e| ("flows".to_owned(), e)).collect(),
        Ok(_) => Vec::new(),
    }
}

/// Plan-time syntax check of every flow (ovs-ofctl's parser, no switch).
pub async fn plan(of: &OpenFlow, proposed: &Value) -> Result<PlanResponse> {
    if let Ok(Some(flows)) = specs(proposed) {
        if let Some(problem) = of.check_syntax(&flows).await? {
            return Err(ProviderError::new(problem));
        }
    }
    Ok(PlanResponse::default())
}

fn bridge(v: &Value) -> Result<&str> {
    v.get("bridge").as_str().ok_or_else(|| ProviderError::new("ovs_flow_set needs a bridge"))
}

fn checked_specs(planned: &Value) -> Result<Vec<FlowSpec>> {
    match specs(planned) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(ProviderError::new("flows are not known yet")),
        Err(e) => Err(ProviderError::new(e.join("; "))),
    }
}

fn state(planned: &Value, cookie: Cookie, installed: Vec<String>) -> Value {
    let mut m = planned.as_map().cloned().unwrap_or_default();
    m.insert("cookie".into(), Value::from(cookie.hex()));
    m.insert("installed_flows".into(), Value::List(installed.into_iter().map(Value::from).collect()));
    Value::Map(m.into())
}

fn in_bridge(bridge: &str, e: ProviderError) -> ProviderError {
    ProviderError::new(format!("ovs-ofctl on bridge {bridge}: {e}"))
}

/// Installs the planned set (create and update alike).
pub async fn apply(of: &OpenFlow, id: Uuid, planned: &Value) -> Result<Value> {
    let bridge = bridge(planned)?;
    let flows = checked_specs(planned)?;
    let cookie = Cookie::of(id);
    let installed = of.install(bridge, cookie, &flows).await.map_err(|e| in_bridge(bridge, e))?;
    Ok(state(planned, cookie, installed))
}

/// The set as the switch holds it now; `None` when the bridge is not there.
pub async fn read(of: &OpenFlow, id: Uuid, prior: &Value) -> Result<Option<Value>> {
    let bridge = bridge(prior)?;
    let cookie = Cookie::of(id);
    let Some(dumped) = of.dump(bridge, cookie).await.map_err(|e| in_bridge(bridge, e))? else { return Ok(None) };
    let installed: Vec<String> = prior.get("installed_flows").as_list().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let declared = prior.get("flows").as_list().unwrap_or_default();
    let found = crate::openflow::reconcile(cookie, &installed, dumped);
    let mut flows = Vec::new();
    for (i, flow_state) in found.flows.iter().enumerate() {
        match flow_state {
            FlowState::Intact => flows.extend(declared.get(i).cloned()),
            FlowState::Altered(d) => flows.push(flow_value(&d.spec)),
            FlowState::Missing => {}
        }
    }
    flows.extend(found.extra.iter().map(|d| flow_value(&d.spec)));
    let mut m = prior.as_map().cloned().unwrap_or_default();
    m.insert("flows".into(), Value::List(flows.into()));
    m.insert("cookie".into(), Value::from(cookie.hex()));
    Ok(Some(Value::Map(m.into())))
}

fn flow_value(spec: &FlowSpec) -> Value {
    Value::object([
        ("table", Value::from(i64::from(spec.table))),
        ("priority", Value::from(i64::from(spec.priority))),
        ("match", Value::from(spec.matches.clone())),
        ("actions", Value::from(spec.actions.clone())),
    ])
}

pub async fn delete(of: &OpenFlow, id: Uuid, prior: &Value) -> Result<()> {
    let bridge = bridge(prior)?;
    of.delete(bridge, Cookie::of(id)).await.map_err(|e| in_bridge(bridge, e))
}

/// After an interrupted create: the bundle installed all planned flows or
/// none, so flows under the instance's cookie mean the create happened.
pub async fn find_by_identity(of: &OpenFlow, id: Uuid, planned: &Value) -> Result<Option<Value>> {
    let bridge = bridge(planned)?;
    let cookie = Cookie::of(id);
    let dumped = of.dump(bridge, cookie).await.map_err(|e| in_bridge(bridge, e))?.unwrap_or_default();
    if dumped.is_empty() {
        return Ok(None);
    }
    let mut found = state(planned, cookie, dumped.iter().map(|d| d.canonical.clone()).collect());
    if planned.get("flows").is_null() {
        // Nothing planned (an interrupted delete): the flows as they are.
        if let Value::Map(m) = &mut found {
            m.insert("flows".into(), Value::List(dumped.iter().map(|d| flow_value(&d.spec)).collect()));
        }
    }
    // Refresh compares against what is there; a mismatch shows as drift.
    Ok(Some(found))
}

/// The undo record of an update: the flows the switch holds under the
/// instance's cookie now (as `add-flows` lines) and the prior state.
pub async fn prepare_undo(of: &OpenFlow, id: Uuid, prior: &Value) -> Result<Option<UndoRecord>> {
    let bridge = bridge(prior)?;
    let dumped = of.dump(bridge, Cookie::of(id)).await.map_err(|e| in_bridge(bridge, e))?.unwrap_or_default();
    Ok(Some(undo_record(bridge, &dumped, prior)))
}

pub(crate) fn undo_record(bridge: &str, dumped: &[crate::openflow::DumpedFlow], prior: &Value) -> UndoRecord {
    UndoRecord(Value::object([
        ("bridge", Value::from(bridge)),
        ("flows", Value::List(dumped.iter().map(|d| Value::from(d.with_cookie())).collect())),
        ("prior", prior.clone()),
    ]))
}

/// Puts the recorded flows back (idempotent: the set is replaced whole).
pub async fn undo(of: &OpenFlow, id: Uuid, record: &UndoRecord) -> Result<Value> {
    let bridge = record.0.get("bridge").as_str().ok_or_else(|| ProviderError::new("undo record without a bridge"))?;
    let lines: Vec<String> = record.0.get("flows").as_list().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    of.replace_lines(bridge, Cookie::of(id), &lines).await.map_err(|e| in_bridge(bridge, e))?;
    Ok(record.0.get("prior").clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(table: i64, priority: i64, m: &str, actions: &str) -> Value {
        Value::object([("table", Value::from(table)), ("priority", Value::from(priority)), ("match", Value::from(m)), ("actions", Value::from(actions))])
    }

    fn config(flows: Vec<Value>) -> Value {
        Value::object([("bridge", Value::from("br0")), ("flows", Value::List(flows.into()))])
    }

    #[test]
    fn good_flows_validate() {
        assert!(validate(&config(vec![flow(0, 100, "ip,nw_src=198.18.0.1", "drop"), flow(1, 100, "ip,nw_src=198.18.0.1", "NORMAL")])).is_empty());
    }

    #[test]
    fn bad_flows_are_named() {
        let errors = validate(&config(vec![
            flow(300, 1, "", "drop"),
            flow(0, 70000, "", "drop"),
            flow(0, 1, "ip", " "),
            flow(0, 1, "cookie=0x5,ip", "drop"),
            flow(0, 5, "ip", "drop"),
            flow(0, 5, "ip", "NORMAL"),
        ]));
        let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "flow 1: table 300 is outside 0–254",
                "flow 2: priority 70000 is outside 0–65535",
                "flow 3: actions are empty (use \"drop\" to drop)",
                "flow 4: match must not set cookie: Strata owns the cookie",
                "flow 6: another flow has the same table, priority and match; OpenFlow would keep only one",
            ]
        );
    }

    #[test]
    fn unknown_flows_wait_for_apply() {
        let mut f = flow(0, 1, "", "drop");
        if let Value::Map(m) = &mut f {
            m.insert("match".into(), Value::Unknown);
        }
        assert!(validate(&config(vec![f.clone()])).is_empty());
        assert_eq!(specs(&config(vec![f])), Ok(None));
    }
}
