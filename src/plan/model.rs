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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// For a replacement, the identity of the object being replaced.
    pub prior_id: Option<Uuid>,
    pub prior: Option<Value>,
    pub planned: Option<Value>,
    /// Attributes whose change forces the replacement.
    pub replace_because: Vec<String>,
    /// The most disruptive effect of the change.
    pub disruption: Option<Disruption>,
    /// Per changed attribute, its effect.
    pub attribute_disruptions: BTreeMap<String, Disruption>,
    /// Why, when the reason is not an attribute (`-replace`, removed from
    /// configuration, `replace_triggered_by`...).
    pub reason: Option<String>,
    /// Instances this one depends on.
    pub dependencies: Vec<String>,
    pub create_before_destroy: bool,
    /// For `for_each` instances, `each.value` (needed to re-evaluate at apply).
    /// Boxed: most instances have none, and every change carries the field
    /// (an `Option<Value>` inline is 24 bytes, the box 8).
    pub each_value: Option<Box<Value>>,
    /// The address this instance had in state before a `moved` block.
    #[serde(default)]
    pub moved_from: Option<String>,
    /// The import ID when an `import` block adopts the object in this apply.
    #[serde(default)]
    pub importing: Option<String>,
    /// The provider's notes on this change.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Why rollback could not undo this change, when it could not (see
    /// [`crate::plan::mark_irreversible`]).
    #[serde(default)]
    pub irreversible: Option<String>,
}

impl ResourceChange {
    pub fn is_change(&self) -> bool {
        self.action != Action::NoOp || self.moved_from.is_some() || self.importing.is_some()
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
