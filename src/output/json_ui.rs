//! Terraform's machine-readable UI (`plan -json`, `apply -json`): one JSON
//! object per line on stdout, each with `@level`, `@message`, `@module`,
//! `@timestamp` and `type` (`version`, `planned_change`, `resource_drift`,
//! `change_summary`, `outputs`, `apply_start`, `apply_progress`,
//! `apply_complete`, `apply_errored`, `diagnostic`). Strata's rollback is
//! reported in the same style: `rollback_start`, `rollback_resource_complete`,
//! `rollback_resource_errored`, `rollback_complete`; an interrupt as
//! `apply_interrupted`. Nothing else goes to stdout in this mode, and no
//! message carries a sensitive value (outputs that are sensitive go without
//! their value; provider errors were scrubbed where `ops` received them).

use super::tf_json::{self, values::type_of};
use crate::addr::InstanceKey;
use crate::apply::{ApplyReport, Event};
use crate::config::{Diagnostic, Sources};
use crate::plan::{Action, Plan, PlanMode, ResourceChange};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use strata_provider::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// The UI format's version, as Terraform's `version` message states it.
pub const UI_VERSION: &str = "1.2";

/// How often an operation still running is reported, as Terraform does.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Writes one message: the common fields, then `fields`.
pub fn emit(level: &str, message: &str, kind: &str, fields: Map<String, Json>) {
    let mut line = Map::new();
    line.insert("@level".into(), json!(level));
    line.insert("@message".into(), json!(message));
    line.insert("@module".into(), json!("strata.ui"));
    line.insert("@timestamp".into(), json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    line.extend(fields);
    line.insert("type".into(), json!(kind));
    super::write_stdout(format!("{}\n", Json::Object(line)).as_bytes());
}

fn fields(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

/// The first message of every stream.
pub fn version() {
    let v = tf_json::strata_version();
    emit("info", &format!("Strata {v}"), "version", fields(json!({"terraform": v, "strata": v, "ui": UI_VERSION})));
}

/// A diagnostic message; `sources` gives it a range and snippet.
pub fn diagnostic(sources: Option<&Sources>, d: &Diagnostic) {
    let body = tf_json::diagnostic(sources, d);
    let (level, prefix) = if d.is_error() { ("error", "Error") } else { ("warn", "Warning") };
    emit(level, &format!("{prefix}: {}", d.message), "diagnostic", fields(json!({"diagnostic": body})));
}

/// A diagnostic without a place in the configuration (lock, state and
/// provider errors), optionally about one resource instance.
pub fn message_diagnostic(error: bool, summary: &str, address: Option<&str>) {
    let mut body = json!({"severity": if error { "error" } else { "warning" }, "summary": summary, "detail": ""});
    if let Some(a) = address {
        body["address"] = json!(a);
    }
    let (level, prefix) = if error { ("error", "Error") } else { ("warn", "Warning") };
    emit(level, &format!("{prefix}: {summary}"), "diagnostic", fields(json!({"diagnostic": body})));
}

/// Terraform's `resource` object of hooks and changes.
fn resource(address: &str) -> Json {
    let plain = address.split('~').next().unwrap_or(address);
    match crate::addr::parse_instance(plain) {
        Ok(a) => {
            let key = match &a.key {
                InstanceKey::None => Json::Null,
                InstanceKey::Index(i) => json!(i),
                InstanceKey::Key(k) => json!(k),
            };
            let resource = crate::addr::InstanceAddr { module: crate::addr::ModuleInstance::root(), ..a.clone() }.to_string();
            json!({
                "addr": plain,
                "module": a.module.to_string(),
                "resource": resource,
                "implied_provider": crate::config::provider_for_type(&a.resource.type_name),
                "resource_type": a.resource.type_name,
                "resource_name": a.resource.name,
                "resource_key": key,
            })
        }
        Err(_) => json!({"addr": plain, "module": "", "resource": plain}),
    }
}

/// An address as messages show it: a deposed object as Terraform names it.
fn shown(address: &str) -> String {
    match address.split_once('~') {
        Some((base, key)) => format!("{base} (deposed object {})", key.get(..8).unwrap_or(key)),
        None => address.to_owned(),
    }
}

/// The UI's name of a planned action.
fn ui_action(c: &ResourceChange) -> &'static str {
    match c.action {
        Action::NoOp if c.details().moved_from.is_some() => "move",
        Action::NoOp if c.details().importing.is_some() => "import",
        Action::NoOp => "noop",
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Read => "read",
        Action::Forget => "remove",
    }
}

/// The UI's spelling of a plan's `action_reason`.
fn ui_reason(reason: &str) -> &str {
    match reason {
        "replace_because_cannot_update" => "cannot_update",
        "replace_by_request" => "requested",
        "replace_by_triggers" => "replace_triggered_by",
        other => other,
    }
}

fn hook_action(action: Action) -> &'static str {
    match action {
        Action::NoOp => "noop",
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::Read => "read",
        Action::Forget => "remove",
    }
}

/// Terraform's progress words for an action: (running, done, noun).
fn words(action: Action) -> (&'static str, &'static str, &'static str) {
    match action {
        Action::Create => ("Creating", "Creation complete", "Creation"),
        Action::Update => ("Modifying", "Modifications complete", "Modifications"),
        Action::Replace => ("Replacing", "Replacement complete", "Replacement"),
        Action::Delete => ("Destroying", "Destruction complete", "Destruction"),
        Action::Read => ("Reading", "Read complete", "Read"),
        Action::NoOp => ("Checking", "Check complete", "Check"),
        Action::Forget => ("Removing", "Removal complete", "Removal"),
    }
}

/// The plan's messages: drift, one `planned_change` per change, the
/// `change_summary` and the `outputs`.
pub fn plan(plan: &Plan) {
    for d in &plan.drift {
        let action = if d.after.is_some() { "update" } else { "delete" };
        emit(
            "info",
            &format!("{}: Drift detected ({action})", d.address),
            "resource_drift",
            fields(json!({"change": {"resource": resource(&d.address), "action": action}})),
        );
    }
    for c in plan.changes.iter().filter(|c| c.is_change()) {
        let action = ui_action(c);
        let mut change = Map::new();
        change.insert("resource".into(), resource(&c.address));
        change.insert("action".into(), json!(action));
        if let Some(from) = &c.details().moved_from {
            change.insert("previous_resource".into(), resource(from));
        }
        if let Some(reason) = tf_json::action_reason(c) {
            change.insert("reason".into(), json!(ui_reason(reason)));
        }
        if let Some(id) = &c.details().importing {
            change.insert("importing".into(), json!({"id": id}));
        }
        tf_json::strata_extras(c, &mut change);
        let verb = match action {
            "noop" => "No changes".to_owned(),
            other => format!("Plan to {other}"),
        };
        emit("info", &format!("{}: {verb}", c.address), "planned_change", fields(json!({"change": change})));
    }
    let import = plan.changes.iter().filter(|c| c.details().importing.is_some()).count();
    let add = plan.count(Action::Create) + plan.count(Action::Replace);
    let change = plan.count(Action::Update);
    let remove = plan.count(Action::Delete) + plan.count(Action::Replace);
    let forget = plan.count(Action::Forget);
    let operation = if plan.mode == PlanMode::Destroy { "destroy" } else { "plan" };
    let message = if plan.has_changes() {
        format!("Plan: {add} to add, {change} to change, {remove} to destroy.")
    } else {
        "No changes. Your infrastructure matches the configuration.".to_owned()
    };
    emit(
        "info",
        &message,
        "change_summary",
        fields(json!({"changes": {"add": add, "change": change, "import": import, "remove": remove, "forget": forget, "operation": operation}})),
    );
    if !plan.outputs.is_empty() {
        let outputs: Map<String, Json> = plan
            .outputs
            .iter()
            .map(|(k, o)| {
                let action = match &o.before {
                    None => "create",
                    Some(b) if *b == o.after => "noop",
                    Some(_) => "update",
                };
                (k.clone(), json!({"sensitive": o.sensitive || o.after.is_sensitive(), "action": action}))
            })
            .collect();
        emit("info", &format!("Outputs: {}", outputs.len()), "outputs", fields(json!({"outputs": outputs})));
    }
}

/// Consumes apply events until the sender is dropped: `apply_start`,
/// `apply_progress` every ten seconds per operation still running,
/// `apply_complete`/`apply_errored`, and the rollback's messages.
pub async fn apply_events(mut events: UnboundedReceiver<Event>) {
    let mut running: HashMap<String, (Action, Instant, u64)> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            e = events.recv() => match e { Some(e) => e, None => break },
            _ = tick.tick() => {
                for (address, (action, started, reported)) in running.iter_mut() {
                    let elapsed = started.elapsed().as_secs();
                    if elapsed >= *reported + PROGRESS_EVERY.as_secs() {
                        *reported = elapsed - elapsed % PROGRESS_EVERY.as_secs();
                        emit(
                            "info",
                            &format!("{}: Still {}... [{}s elapsed]", shown(address), words(*action).0.to_lowercase(), *reported),
                            "apply_progress",
                            fields(json!({"hook": {"resource": resource(address), "action": hook_action(*action), "elapsed_seconds": *reported}})),
                        );
                    }
                }
                continue;
            }
        };
        match event {
            Event::Started { address, action } => {
                emit(
                    "info",
                    &format!("{}: {}...", shown(&address), words(action).0),
                    "apply_start",
                    fields(json!({"hook": {"resource": resource(&address), "action": hook_action(action)}})),
                );
                running.insert(address, (action, Instant::now(), 0));
            }
            Event::Finished { address, action, elapsed } => {
                running.remove(&address);
                let secs = elapsed.as_secs();
                emit(
                    "info",
                    &format!("{}: {} after {secs}s", shown(&address), words(action).1),
                    "apply_complete",
                    fields(json!({"hook": {"resource": resource(&address), "action": hook_action(action), "elapsed_seconds": secs}})),
                );
            }
            Event::Failed { address, action, error } => {
                let secs = running.remove(&address).map_or(0, |(_, started, _)| started.elapsed().as_secs());
                emit(
                    "error",
                    &format!("{}: {} errored after {secs}s", shown(&address), words(action).2),
                    "apply_errored",
                    fields(json!({"hook": {"resource": resource(&address), "action": hook_action(action), "elapsed_seconds": secs}})),
                );
                message_diagnostic(true, &error, Some(&address));
            }
            Event::RollingBack { operations } => emit(
                "info",
                &format!("Rolling back {operations} completed operation(s)..."),
                "rollback_start",
                fields(json!({"rollback": {"operations": operations}})),
            ),
            Event::RolledBack { address, what } => emit(
                "info",
                &format!("{address}: Rolled back ({what})"),
                "rollback_resource_complete",
                fields(json!({"hook": {"resource": resource(&address), "what": what}})),
            ),
            Event::RollbackFailed { address, error } => emit(
                "error",
                &format!("{address}: Could not be rolled back: {error}"),
                "rollback_resource_errored",
                fields(json!({"hook": {"resource": resource(&address), "error": error}})),
            ),
            Event::Interrupted { in_flight } => emit(
                "warn",
                &format!("Interrupted. Still in flight, finishing: {}", if in_flight.is_empty() { "nothing".into() } else { in_flight.join(", ") }),
                "apply_interrupted",
                fields(json!({"in_flight": in_flight})),
            ),
        }
    }
}

/// The end of an apply: failures as diagnostics, `rollback_complete` when
/// something was rolled back (or could not be), the `change_summary` of
/// what was done, and the `outputs` with their values (sensitive ones
/// without).
pub fn apply_report(report: &ApplyReport, destroy: bool) {
    if !report.rolled_back.is_empty() || !report.not_rolled_back.is_empty() {
        let not: BTreeMap<&String, &String> = report.not_rolled_back.iter().map(|(a, w)| (a, w)).collect();
        emit(
            if not.is_empty() { "info" } else { "error" },
            &format!("Rollback complete: {} operation(s) undone, {} could not be.", report.rolled_back.len(), not.len()),
            "rollback_complete",
            fields(json!({"rollback": {"rolled_back": report.rolled_back, "not_rolled_back": not}})),
        );
    }
    for what in &report.left_to_clean {
        message_diagnostic(true, &format!("left to clean up: {what}"), None);
    }
    // The old half of a create_before_destroy replacement is destroyed as
    // a deposed object of its own; the replacement already counts it.
    let replaced: Vec<&str> = report.completed.iter().filter(|(_, a)| *a == Action::Replace).map(|(addr, _)| addr.as_str()).collect();
    let counted = report.completed.iter().filter(|(addr, a)| {
        !(*a == Action::Delete && addr.split_once('~').is_some_and(|(base, _)| replaced.contains(&base)))
    });
    let counted: Vec<Action> = counted.map(|(_, a)| *a).collect();
    let count = |pred: fn(Action) -> bool| counted.iter().filter(|a| pred(**a)).count();
    let add = count(|a| matches!(a, Action::Create | Action::Replace));
    let change = count(|a| a == Action::Update);
    let remove = count(|a| matches!(a, Action::Delete | Action::Replace));
    let forget = count(|a| a == Action::Forget);
    let operation = if destroy { "destroy" } else { "apply" };
    let message = match (report.succeeded(), destroy) {
        (true, true) => format!("Destroy complete! Resources: {remove} destroyed."),
        (true, false) => format!("Apply complete! Resources: {add} added, {change} changed, {remove} destroyed."),
        (false, _) => format!("Apply failed. Resources: {add} added, {change} changed, {remove} destroyed before the failure."),
    };
    emit(
        if report.succeeded() { "info" } else { "error" },
        &message,
        "change_summary",
        fields(json!({"changes": {"add": add, "change": change, "import": 0, "remove": remove, "forget": forget, "operation": operation}})),
    );
    if report.succeeded() && !report.outputs.is_empty() {
        emit("info", &format!("Outputs: {}", report.outputs.len()), "outputs", fields(json!({"outputs": outputs(&report.outputs)})));
    }
}

fn outputs(values: &BTreeMap<String, Value>) -> Map<String, Json> {
    values
        .iter()
        .map(|(k, v)| {
            let mut o = Map::new();
            o.insert("sensitive".into(), json!(v.is_sensitive()));
            o.insert("type".into(), type_of(v));
            if !v.is_sensitive() {
                if let Some(known) = tf_json::values::known(v) {
                    o.insert("value".into(), known);
                }
            }
            (k.clone(), Json::Object(o))
        })
        .collect()
}
