//! Terraform's JSON output format (`format_version` 1.x), so that policy
//! tools written for `terraform show -json` (OPA/conftest, Checkov,
//! Sentinel-style jq scripts) read Strata's plans and state unchanged:
//! the plan representation (`planned_values`, `prior_state`,
//! `resource_changes` with `change.actions`, `output_changes`, `variables`,
//! `configuration`), the state representation, `validate -json`,
//! `output -json` and `version -json`.
//!
//! Strata's own facts (disruption per change and per attribute, provider
//! notes, what rollback cannot restore, the state's lineage) are carried in
//! additional keys, which Terraform's consumers ignore. Secrets are never
//! printed: see [`values`].

mod config;
mod diag;
pub mod values;

pub use config::configuration;
pub use diag::{diagnostic, validate_document};

use crate::addr::{parse_instance, InstanceAddr, InstanceKey, Mode, ModuleInstance};
use crate::plan::{Action, OutputChange, Plan, ResourceChange};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use strata_provider::Value;
use strata_state::Snapshot;
use values::{known, known_or_null, object_marks, sensitive_marks, type_of, unknown_marks};

/// The plan representation's version: the fields of Terraform 1.x that
/// Strata fills (1.2 added `checks`-free `relevant_attributes` and
/// `errored`).
pub const PLAN_FORMAT_VERSION: &str = "1.2";
/// The state and configuration representations' version.
pub const STATE_FORMAT_VERSION: &str = "1.0";

/// What goes in `terraform_version`: Strata's own version. Consumers check
/// only that it is present.
pub fn strata_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The provider source address Terraform's `provider_name` holds, for a
/// provider configuration address (`kvm`, `kvm.remote`).
pub fn provider_source(provider_config: &str) -> String {
    let name = provider_config.split('.').next().unwrap_or(provider_config);
    format!("strata/builtin/{name}")
}

/// An instance address as stored by Strata, split into Terraform's fields.
/// Deposed objects (the old half of a `create_before_destroy` replacement)
/// are stored as `ADDR~UUID`: the UUID is Terraform's deposed key.
struct Located {
    addr: Option<InstanceAddr>,
    address: String,
    deposed: Option<String>,
}

fn locate(address: &str) -> Located {
    let (address, deposed) = match address.split_once('~') {
        Some((a, d)) => (a, Some(d.to_owned())),
        None => (address, None),
    };
    Located { addr: parse_instance(address).ok(), address: address.to_owned(), deposed }
}

/// The fields every resource object shares: address, module, mode, type,
/// name, index, deposed key, provider.
fn resource_header(address: &str, provider_config: &str) -> (Map<String, Json>, ModuleInstance) {
    let at = locate(address);
    let mut out = Map::new();
    out.insert("address".into(), json!(at.address));
    let module = at.addr.as_ref().map(|a| a.module.clone()).unwrap_or_default();
    if let Some(a) = &at.addr {
        if !a.module.is_root() {
            out.insert("module_address".into(), json!(a.module.to_string()));
        }
        out.insert("mode".into(), json!(if a.resource.mode == Mode::Data { "data" } else { "managed" }));
        out.insert("type".into(), json!(a.resource.type_name));
        out.insert("name".into(), json!(a.resource.name));
        match &a.key {
            InstanceKey::None => {}
            InstanceKey::Index(i) => {
                out.insert("index".into(), json!(i));
            }
            InstanceKey::Key(k) => {
                out.insert("index".into(), json!(k));
            }
        }
    }
    if let Some(d) = at.deposed {
        out.insert("deposed".into(), json!(d));
    }
    out.insert("provider_name".into(), json!(provider_source(provider_config)));
    (out, module)
}

/// A resource in `planned_values`, `prior_state` or the state: its values
/// (known and not sensitive) and where it is sensitive.
fn resource_values(address: &str, provider_config: &str, values: &Value) -> (Json, ModuleInstance) {
    let (mut out, module) = resource_header(address, provider_config);
    out.remove("module_address");
    out.insert("schema_version".into(), json!(0));
    out.insert("values".into(), known(values).unwrap_or_else(|| json!({})));
    out.insert("sensitive_values".into(), object_marks(Some(values), sensitive_marks));
    (Json::Object(out), module)
}

/// Resources grouped into Terraform's module tree: the root module's
/// `resources`, and `child_modules` nested by module path.
fn module_tree(resources: Vec<(Json, ModuleInstance)>) -> Json {
    let mut by_module: BTreeMap<ModuleInstance, Vec<Json>> = BTreeMap::new();
    let mut modules: BTreeSet<ModuleInstance> = BTreeSet::new();
    for (r, m) in resources {
        let mut ancestor = m.clone();
        while let Some((parent, _, _)) = ancestor.parent() {
            modules.insert(ancestor.clone());
            ancestor = parent;
        }
        by_module.entry(m).or_default().push(r);
    }
    fn build(m: &ModuleInstance, by_module: &mut BTreeMap<ModuleInstance, Vec<Json>>, modules: &BTreeSet<ModuleInstance>) -> Map<String, Json> {
        let mut out = Map::new();
        let resources = by_module.remove(m).unwrap_or_default();
        if !resources.is_empty() {
            out.insert("resources".into(), Json::Array(resources));
        }
        if !m.is_root() {
            out.insert("address".into(), json!(m.to_string()));
        }
        let children: Vec<Json> = modules
            .iter()
            .filter(|c| c.parent().is_some_and(|(p, _, _)| &p == m))
            .map(|c| Json::Object(build(c, by_module, modules)))
            .collect();
        if !children.is_empty() {
            out.insert("child_modules".into(), Json::Array(children));
        }
        out
    }
    Json::Object(build(&ModuleInstance::root(), &mut by_module, &modules))
}

/// An output in a values representation: `sensitive`, `type`, and `value`
/// unless it is sensitive or unknown.
pub fn output_value(v: &Value, sensitive: bool) -> Json {
    let sensitive = sensitive || v.is_sensitive();
    let mut out = Map::new();
    out.insert("sensitive".into(), json!(sensitive));
    out.insert("type".into(), type_of(v));
    if !sensitive {
        if let Some(value) = known(v).filter(|_| !v.is_unknown()) {
            out.insert("value".into(), value);
        }
    }
    Json::Object(out)
}

/// Terraform's action list for a change. A replacement is
/// `["delete","create"]`, or `["create","delete"]` under
/// `create_before_destroy`.
pub fn actions(c: &ResourceChange) -> Json {
    match c.action {
        Action::NoOp => json!(["no-op"]),
        Action::Create => json!(["create"]),
        Action::Update => json!(["update"]),
        Action::Replace if c.create_before_destroy => json!(["create", "delete"]),
        Action::Replace => json!(["delete", "create"]),
        Action::Delete => json!(["delete"]),
        Action::Read => json!(["read"]),
        Action::Forget => json!(["forget"]),
    }
}

/// Terraform's `action_reason` for a change, where one of its reasons fits.
pub fn action_reason(c: &ResourceChange) -> Option<&'static str> {
    let reason = c.details().reason.as_deref().unwrap_or_default();
    match c.action {
        Action::Replace if reason == "requested with -replace" => Some("replace_by_request"),
        Action::Replace if !c.details().replace_because.is_empty() => Some("replace_because_cannot_update"),
        Action::Replace if c.details().reason.is_some() => Some("replace_by_triggers"),
        Action::Delete if reason.contains("count/for_each") => {
            match locate(&c.address).addr.map(|a| a.key) {
                Some(InstanceKey::Key(_)) => Some("delete_because_each_key"),
                _ => Some("delete_because_count_index"),
            }
        }
        Action::Delete if reason.contains("no longer in the configuration") => Some("delete_because_no_resource_config"),
        _ => None,
    }
}

/// One entry of `resource_changes`.
pub fn resource_change(c: &ResourceChange) -> Json {
    let (mut out, _) = resource_header(&c.address, &c.provider);
    if c.data {
        out.insert("mode".into(), json!("data"));
    }
    let (before, after) = match c.action {
        Action::Delete | Action::Forget => (c.prior.as_ref(), None),
        _ => (c.prior.as_ref(), c.planned.as_ref()),
    };
    let mut change = Map::new();
    change.insert("actions".into(), actions(c));
    change.insert("before".into(), before.map_or(Json::Null, known_or_null));
    change.insert("after".into(), after.map_or(Json::Null, known_or_null));
    change.insert("after_unknown".into(), object_marks(after, unknown_marks));
    change.insert("before_sensitive".into(), before.map_or(json!(false), |b| object_marks(Some(b), sensitive_marks)));
    change.insert("after_sensitive".into(), after.map_or(json!(false), |a| object_marks(Some(a), sensitive_marks)));
    if c.action == Action::Replace && !c.details().replace_because.is_empty() {
        let paths: Vec<Json> = c.details().replace_because.iter().map(|p| json!(p.split('.').collect::<Vec<_>>())).collect();
        change.insert("replace_paths".into(), Json::Array(paths));
    }
    if let Some(id) = &c.details().importing {
        change.insert("importing".into(), json!({"id": id}));
    }
    out.insert("change".into(), Json::Object(change));
    if let Some(reason) = action_reason(c) {
        out.insert("action_reason".into(), json!(reason));
    }
    if let Some(from) = &c.details().moved_from {
        out.insert("previous_address".into(), json!(from));
    }
    strata_extras(c, &mut out);
    Json::Object(out)
}

/// Strata's additional keys on a change, beside Terraform's.
pub fn strata_extras(c: &ResourceChange, out: &mut Map<String, Json>) {
    out.insert("disruption".into(), json!(c.disruption));
    out.insert("attribute_disruptions".into(), json!(c.details().attribute_disruptions));
    out.insert("notes".into(), json!(c.details().notes));
    out.insert("rollback_cannot_restore".into(), json!(c.details().irreversible));
    if let Some(reason) = &c.details().reason {
        out.insert("reason_detail".into(), json!(reason));
    }
}

/// The change of one output value.
fn output_change(o: &OutputChange) -> Json {
    let mark = |v: &Value| if o.sensitive { v.clone().into_sensitive() } else { v.clone() };
    let before = o.before.as_ref().map(mark);
    let after = mark(&o.after);
    let action = match &o.before {
        None => "create",
        Some(b) if *b == o.after => "no-op",
        Some(_) => "update",
    };
    json!({
        "actions": [action],
        "before": before.as_ref().map_or(Json::Null, known_or_null),
        "after": known_or_null(&after),
        "after_unknown": unknown_marks(&after),
        "before_sensitive": before.as_ref().map_or(json!(false), sensitive_marks),
        "after_sensitive": sensitive_marks(&after),
    })
}

/// What a drifted instance looked like before and after refresh.
fn resource_drift(plan: &Plan, d: &crate::plan::Drift) -> Json {
    let provider = plan.changes.iter().find(|c| c.address == d.address).map_or("", |c| &*c.provider);
    let (mut out, _) = resource_header(&d.address, provider);
    out.insert(
        "change".into(),
        json!({
            "actions": [if d.after.is_some() { "update" } else { "delete" }],
            "before": known_or_null(&d.before),
            "after": d.after.as_ref().map_or(Json::Null, known_or_null),
            "after_unknown": json!({}),
            "before_sensitive": object_marks(Some(&d.before), sensitive_marks),
            "after_sensitive": d.after.as_ref().map_or(json!(false), |a| object_marks(Some(a), sensitive_marks)),
        }),
    );
    Json::Object(out)
}

/// `show -json PLANFILE`: the plan in Terraform's plan representation.
/// `config` is the configuration the plan was made from, when it loads.
pub fn plan_document(plan: &Plan, config: Option<&crate::config::Config>) -> Json {
    let mut planned = Vec::new();
    let mut prior = Vec::new();
    for c in &plan.changes {
        if let Some(p) = &c.prior {
            if !c.data {
                prior.push(resource_values(&c.address, &c.provider, p));
            }
        }
        if let Some(p) = c.planned.as_ref().filter(|_| !matches!(c.action, Action::Delete | Action::Forget)) {
            let (mut r, m) = resource_values(&c.address, &c.provider, p);
            if c.data {
                r["mode"] = json!("data");
            }
            planned.push((r, m));
        }
    }
    let planned_outputs: Map<String, Json> = plan.outputs.iter().map(|(k, o)| (k.clone(), output_value(&o.after, o.sensitive))).collect();
    let prior_outputs: Map<String, Json> = plan
        .outputs
        .iter()
        .filter_map(|(k, o)| Some((k.clone(), output_value(o.before.as_ref()?, o.sensitive))))
        .collect();
    let sensitive_var = |name: &str| config.and_then(|c| c.variables.get(name)).is_some_and(|v| v.sensitive);
    let variables: Map<String, Json> = plan
        .variables
        .iter()
        .map(|(k, v)| {
            let value = if sensitive_var(k) { Json::Null } else { known_or_null(v) };
            (k.clone(), json!({"value": value}))
        })
        .collect();
    let mut doc = json!({
        "format_version": PLAN_FORMAT_VERSION,
        "terraform_version": strata_version(),
        "strata_version": strata_version(),
        "variables": variables,
        "planned_values": {"outputs": planned_outputs, "root_module": module_tree(planned)},
        "resource_drift": plan.drift.iter().map(|d| resource_drift(plan, d)).collect::<Vec<_>>(),
        "resource_changes": plan.changes.iter().map(resource_change).collect::<Vec<_>>(),
        "output_changes": plan.outputs.iter().map(|(k, o)| (k.clone(), output_change(o))).collect::<Map<_, _>>(),
        "prior_state": {
            "format_version": STATE_FORMAT_VERSION,
            "terraform_version": strata_version(),
            "values": {"outputs": prior_outputs, "root_module": module_tree(prior)},
        },
        "relevant_attributes": [],
        "applyable": plan.has_changes(),
        "complete": true,
        "errored": false,
        "strata": {"mode": plan.mode, "lineage": plan.lineage, "serial": plan.serial},
    });
    if let Some(config) = config {
        doc["configuration"] = configuration(config);
    }
    doc
}

/// `show -json`: the state in Terraform's state representation.
pub fn state_document(snap: &Snapshot) -> Json {
    let resources = snap
        .instances
        .values()
        .map(|r| {
            let (mut v, m) = resource_values(&r.address, &r.provider, &r.attributes);
            if !r.dependencies.is_empty() {
                v["depends_on"] = json!(r.dependencies);
            }
            v["strata_id"] = json!(r.id);
            (v, m)
        })
        .collect();
    let outputs: Map<String, Json> = snap.outputs.iter().map(|(k, v)| (k.clone(), output_value(v, false))).collect();
    json!({
        "format_version": STATE_FORMAT_VERSION,
        "terraform_version": strata_version(),
        "values": {"outputs": outputs, "root_module": module_tree(resources)},
        "strata": {"lineage": snap.meta.lineage, "serial": snap.meta.serial},
    })
}

/// `output -json`: every output by name.
pub fn outputs_document(outputs: &BTreeMap<String, Value>) -> Json {
    Json::Object(outputs.iter().map(|(k, v)| (k.clone(), output_value(v, false))).collect())
}

/// `version -json`.
pub fn version_document(providers: impl IntoIterator<Item = String>) -> Json {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    let selections: Map<String, Json> = providers.into_iter().map(|p| (provider_source(&p), json!(strata_version()))).collect();
    json!({
        "terraform_version": strata_version(),
        "strata_version": strata_version(),
        "platform": format!("{}_{arch}", std::env::consts::OS),
        "provider_selections": selections,
        "terraform_outdated": false,
    })
}
