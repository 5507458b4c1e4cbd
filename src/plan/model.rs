//! The plan: what will change, instance by instance. Serializable so that
//! `plan -out` can save it and `apply` can run it later.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_provider::{Disruption, Value};
use uuid::Uuid;

pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    /// Destroy and create; the order depends on `create_before_destroy`.
    Replace,
    Delete,
    /// Read a data source at apply time.
    Read,
    /// Drop from state without destroying (`removed` with `destroy = false`).
    Forget,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Read => "<=",
            Action::Forget => ".",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanMode {
    Normal,
    Destroy,
    RefreshOnly,
}

/// The planned change of one resource instance.
///
/// There is one per instance, so its size is paid 100,000 times in a large
/// plan: what only a few changes have (replacements, moves, imports,
/// provider notes...) lives in [`ChangeDetails`], boxed and absent for the
/// rest. Serialized as one flat object in the field order of the saved plan
/// format (see [`SavedChange`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "SavedChange")]
pub struct ResourceChange {
    pub address: String,
    /// The resource's address without the instance key. This and the next
    /// two are the same for every instance of a block, so they are shared
    /// (and serialized as plain strings).
    pub resource: Arc<str>,
    pub type_name: Arc<str>,
    /// Provider configuration address (`strata`, `kvm.remote`).
    pub provider: Arc<str>,
    pub data: bool,
    pub action: Action,
    /// The instance's identity: the existing one, or a fresh one for a create.
    pub id: Uuid,
    pub prior: Option<Value>,
    pub planned: Option<Value>,
    /// The most disruptive effect of the change.
    pub disruption: Option<Disruption>,
    /// Instances this one depends on.
    pub dependencies: Vec<String>,
    pub create_before_destroy: bool,
    /// For `for_each` instances, `each.value` (needed to re-evaluate at apply).
    /// Boxed: most instances have none, and every change carries the field
    /// (an `Option<Value>` inline is 24 bytes, the box 8).
    pub each_value: Option<Box<Value>>,
    /// The rarely set parts; `None` when all of them are unset (never a box
    /// of nothing, so that equal changes compare equal). Read with
    /// [`ResourceChange::details`], write with [`ResourceChange::edit_details`]
    /// (the planner, which builds changes, sets it directly).
    pub(super) details: Option<Box<ChangeDetails>>,
}

// A change with every detail inline was 360 bytes.
const _: () = assert!(std::mem::size_of::<ResourceChange>() <= 192);

/// The parts of a [`ResourceChange`] that most changes leave unset (a no-op
/// or an in-place update has none of them, except the disruptions of an
/// update).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeDetails {
    /// For a replacement, the identity of the object being replaced.
    pub prior_id: Option<Uuid>,
    /// Attributes whose change forces the replacement.
    pub replace_because: Vec<String>,
    /// Per changed attribute, its effect.
    pub attribute_disruptions: BTreeMap<String, Disruption>,
    /// Why, when the reason is not an attribute (`-replace`, removed from
    /// configuration, `replace_triggered_by`...).
    pub reason: Option<String>,
    /// The address this instance had in state before a `moved` block.
    pub moved_from: Option<String>,
    /// The import ID when an `import` block adopts the object in this apply.
    pub importing: Option<String>,
    /// The provider's notes on this change.
    pub notes: Vec<String>,
    /// Why rollback could not undo this change, when it could not (see
    /// [`crate::plan::mark_irreversible`]).
    pub irreversible: Option<String>,
}

/// What [`ResourceChange::details`] lends when a change has none.
static NO_DETAILS: ChangeDetails = ChangeDetails {
    prior_id: None,
    replace_because: Vec::new(),
    attribute_disruptions: BTreeMap::new(),
    reason: None,
    moved_from: None,
    importing: None,
    notes: Vec::new(),
    irreversible: None,
};

impl ChangeDetails {
    /// Whether every detail is unset.
    pub fn is_empty(&self) -> bool {
        *self == NO_DETAILS
    }
}

impl ResourceChange {
    pub fn is_change(&self) -> bool {
        self.action != Action::NoOp || self.details().moved_from.is_some() || self.details().importing.is_some()
    }

    /// The rarely set parts of the change (all unset for most changes).
    pub fn details(&self) -> &ChangeDetails {
        self.details.as_deref().unwrap_or(&NO_DETAILS)
    }

    /// Edits the rarely set parts: boxed only when the edit leaves some of
    /// them set, and freed when it unsets the last one.
    pub fn edit_details<R>(&mut self, edit: impl FnOnce(&mut ChangeDetails) -> R) -> R {
        match &mut self.details {
            Some(details) => {
                let out = edit(details);
                if details.is_empty() {
                    self.details = None;
                }
                out
            }
            None => {
                let mut details = ChangeDetails::default();
                let out = edit(&mut details);
                if !details.is_empty() {
                    self.details = Some(Box::new(details));
                }
                out
            }
        }
    }
}

/// A [`ResourceChange`] as the saved plan format has it: one flat object,
/// the details among the other fields. Read through this; written through
/// [`SavedChangeRef`], its borrowed twin, so the two cannot disagree on a
/// name (a test checks the order).
#[derive(Deserialize)]
struct SavedChange {
    address: String,
    resource: Arc<str>,
    type_name: Arc<str>,
    provider: Arc<str>,
    data: bool,
    action: Action,
    id: Uuid,
    prior_id: Option<Uuid>,
    prior: Option<Value>,
    planned: Option<Value>,
    replace_because: Vec<String>,
    disruption: Option<Disruption>,
    attribute_disruptions: BTreeMap<String, Disruption>,
    reason: Option<String>,
    dependencies: Vec<String>,
    create_before_destroy: bool,
    each_value: Option<Box<Value>>,
    // Plans saved before these fields existed have none of them.
    #[serde(default)]
    moved_from: Option<String>,
    #[serde(default)]
    importing: Option<String>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    irreversible: Option<String>,
}

impl From<SavedChange> for ResourceChange {
    fn from(s: SavedChange) -> ResourceChange {
        let details = ChangeDetails {
            prior_id: s.prior_id,
            replace_because: s.replace_because,
            attribute_disruptions: s.attribute_disruptions,
            reason: s.reason,
            moved_from: s.moved_from,
            importing: s.importing,
            notes: s.notes,
            irreversible: s.irreversible,
        };
        ResourceChange {
            address: s.address,
            resource: s.resource,
            type_name: s.type_name,
            provider: s.provider,
            data: s.data,
            action: s.action,
            id: s.id,
            prior: s.prior,
            planned: s.planned,
            disruption: s.disruption,
            dependencies: s.dependencies,
            create_before_destroy: s.create_before_destroy,
            each_value: s.each_value,
            details: (!details.is_empty()).then(|| Box::new(details)),
        }
    }
}

/// The borrowed twin of [`SavedChange`], in the same order: what a change
/// serializes as.
#[derive(Serialize)]
struct SavedChangeRef<'a> {
    address: &'a str,
    resource: &'a str,
    type_name: &'a str,
    provider: &'a str,
    data: bool,
    action: Action,
    id: &'a Uuid,
    prior_id: &'a Option<Uuid>,
    prior: &'a Option<Value>,
    planned: &'a Option<Value>,
    replace_because: &'a [String],
    disruption: &'a Option<Disruption>,
    attribute_disruptions: &'a BTreeMap<String, Disruption>,
    reason: &'a Option<String>,
    dependencies: &'a [String],
    create_before_destroy: bool,
    each_value: &'a Option<Box<Value>>,
    moved_from: &'a Option<String>,
    importing: &'a Option<String>,
    notes: &'a [String],
    irreversible: &'a Option<String>,
}

impl Serialize for ResourceChange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let d = self.details();
        SavedChangeRef {
            address: &self.address,
            resource: &self.resource,
            type_name: &self.type_name,
            provider: &self.provider,
            data: self.data,
            action: self.action,
            id: &self.id,
            prior_id: &d.prior_id,
            prior: &self.prior,
            planned: &self.planned,
            replace_because: &d.replace_because,
            disruption: &self.disruption,
            attribute_disruptions: &d.attribute_disruptions,
            reason: &d.reason,
            dependencies: &self.dependencies,
            create_before_destroy: self.create_before_destroy,
            each_value: &self.each_value,
            moved_from: &d.moved_from,
            importing: &d.importing,
            notes: &d.notes,
            irreversible: &d.irreversible,
        }
        .serialize(serializer)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub before: Option<Value>,
    pub after: Value,
    pub sensitive: bool,
}

/// A drifted attribute set found by refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub address: String,
    pub before: Value,
    /// `None`: the object was deleted outside Strata.
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub mode: PlanMode,
    /// The state version the plan was made from; apply refuses it if the
    /// state has moved since.
    pub lineage: Uuid,
    pub serial: u64,
    /// Fingerprint of the configuration files the plan was made from.
    pub config_fingerprint: String,
    pub variables: BTreeMap<String, Value>,
    pub changes: Vec<ResourceChange>,
    pub outputs: BTreeMap<String, OutputChange>,
    pub drift: Vec<Drift>,
    /// The refreshed state of instances whose refresh found drift, applied to
    /// state by an apply (this is all `-refresh-only` applies).
    pub refreshed: BTreeMap<String, Option<Value>>,
    /// How every module call expanded, for evaluating module instances at
    /// apply time.
    #[serde(default)]
    pub module_calls: Vec<(crate::addr::ModuleInstance, String, super::CallExpansion)>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.is_change() && c.action != Action::Read)
            || self.outputs.values().any(|o| o.before.as_ref() != Some(&o.after))
            || !self.refreshed.is_empty() && self.mode == PlanMode::RefreshOnly
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn count_disruption(&self, d: Disruption) -> usize {
        self.changes.iter().filter(|c| c.disruption == Some(d)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> ResourceChange {
        ResourceChange {
            address: "strata_data.a[0]".into(),
            resource: "strata_data.a".into(),
            type_name: "strata_data".into(),
            provider: "strata".into(),
            data: false,
            action: Action::NoOp,
            id: Uuid::nil(),
            prior: Some(Value::from("p")),
            planned: Some(Value::from("p")),
            disruption: None,
            dependencies: vec!["strata_data.b".into()],
            create_before_destroy: false,
            each_value: None,
            details: None,
        }
    }

    /// The saved plan format: every field, flat, in this order, whether or
    /// not the change has details.
    const SAVED_KEYS: [&str; 21] = [
        "address", "resource", "type_name", "provider", "data", "action", "id", "prior_id", "prior", "planned",
        "replace_because", "disruption", "attribute_disruptions", "reason", "dependencies", "create_before_destroy",
        "each_value", "moved_from", "importing", "notes", "irreversible",
    ];

    fn keys(json: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(json).expect("a change serializes as JSON");
        // serde_json's map keeps the document's order only with
        // `preserve_order`; read the keys off the text instead.
        let object = v.as_object().expect("a change is an object");
        let mut found: Vec<(usize, String)> =
            object.keys().map(|k| (json.find(&format!("\"{k}\":")).expect("key in text"), k.clone())).collect();
        found.sort();
        found.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn serializes_flat_in_the_saved_order() {
        let plain = change();
        let mut detailed = change();
        detailed.action = Action::Replace;
        detailed.edit_details(|d| {
            d.prior_id = Some(Uuid::from_u128(7));
            d.replace_because = vec!["size".into()];
            d.attribute_disruptions = BTreeMap::from([("size".into(), Disruption::Replace)]);
            d.reason = Some("why".into());
            d.moved_from = Some("strata_data.old".into());
            d.importing = Some("id-1".into());
            d.notes = vec!["note".into()];
            d.irreversible = Some("gone".into());
        });
        for c in [plain, detailed] {
            let json = serde_json::to_string(&c).expect("serializes");
            assert_eq!(keys(&json), SAVED_KEYS);
            let back: ResourceChange = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, c);
            assert_eq!(serde_json::to_string(&back).expect("serializes"), json);
        }
    }

    #[test]
    fn reads_plans_saved_before_the_later_fields() {
        let json = serde_json::to_string(&change()).expect("serializes");
        let mut v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        for k in ["moved_from", "importing", "notes", "irreversible"] {
            v.as_object_mut().expect("object").remove(k);
        }
        let back: ResourceChange = serde_json::from_value(v).expect("an older change reads");
        assert_eq!(back, change());
        assert!(back.details.is_none(), "no details, no box");
    }

    #[test]
    fn unsetting_the_last_detail_frees_the_box() {
        let mut c = change();
        c.edit_details(|d| d.reason = Some("why".into()));
        assert!(c.details.is_some());
        assert_eq!(c.details().reason.as_deref(), Some("why"));
        c.edit_details(|d| d.reason = None);
        assert!(c.details.is_none());
        assert_eq!(c, change());
    }
}
