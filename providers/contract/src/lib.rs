//! The contract between the Strata engine and its providers.
//!
//! A provider is a plug-in that manages one family of real objects (libvirt
//! domains, OVS bridges, Ceph images...). The engine knows nothing about any of
//! them: it only speaks through this crate. The crate holds
//!
//! - [`Value`], the dynamically typed values that flow between configuration,
//!   state and providers, with the `Unknown` and `Sensitive` marks;
//! - the [`schema`] a provider declares, including for every attribute the
//!   [`Disruption`] a change to it causes (`live`, `restart`, `replace`,
//!   `data-loss`), which is what lets a Strata plan say whether a change is
//!   live, needs a reboot or loses data;
//! - the async [`Provider`] trait and the [`ProviderFactory`] that makes one
//!   instance per `provider` block.
//!
//! Identity is part of the contract: the engine gives every resource instance a
//! UUID *before* it asks for the create, the provider tags the real object with
//! it, and [`Provider::find_by_identity`] finds it again after a crash.

mod collection;
mod number;
pub mod schema;
mod undo;
mod value;
pub mod vec_map;

pub use schema::{Attribute, Block, Disruption, Nesting, Presence, ProviderSchema, Type};
pub use number::{Number, NumberError};
pub use undo::{UndoRecord, UndoSupport, Undoable};
pub use collection::{ListKind, ListValue, MapKind, MapValue};
pub use value::Value;
pub use vec_map::VecMap;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// An error from a provider, shown to the user with the resource address.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub message: String,
}

impl ProviderError {
    pub fn new(message: impl Into<String>) -> ProviderError {
        ProviderError { message: message.into() }
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// The engine's proposal for one resource instance, for the provider to refine.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    pub type_name: &'a str,
    /// The refreshed prior state, `None` for a create.
    pub prior: Option<&'a Value>,
    /// Configuration merged over prior computed values; computed attributes
    /// the engine cannot know are `Value::Unknown`.
    pub proposed: &'a Value,
}

/// A provider's refinement of a proposed change.
#[derive(Debug, Clone, Default)]
pub struct PlanResponse {
    /// The planned new state; `None` keeps the engine's proposal.
    pub planned: Option<Value>,
    /// Per changed top-level attribute, a disruption that overrides the
    /// schema's static `on_change` (e.g. growing a disk is `live`, shrinking it
    /// is `data-loss`).
    pub disruptions: BTreeMap<String, Disruption>,
    /// What the user should know about this change, shown under it in the
    /// plan (e.g. "attached guests lose their link").
    pub notes: Vec<String>,
    /// What a rollback could not restore of this change, when part of it
    /// cannot be undone by nature (e.g. unlinking a clone from its parent).
    /// The plan shows it as it shows the engine's own such warnings.
    pub irreversible: Option<String>,
}

/// What a planned change does, as a provider's plan review sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeAction {
    Create,
    Update,
    Replace,
    Delete,
    /// Unchanged: listed so that a review sees every instance it manages.
    NoOp,
}

/// One planned change, for [`Provider::review_plan`].
#[derive(Debug, Clone)]
pub struct ReviewedChange<'a> {
    pub address: &'a str,
    pub type_name: &'a str,
    pub action: ChangeAction,
    /// The refreshed state before the change; `None` for a create.
    pub prior: Option<&'a Value>,
    /// The planned state; `None` for a delete. May hold unknowns.
    pub planned: Option<&'a Value>,
}

/// A provider's verdict on a whole plan: per instance address, errors that
/// refuse the plan and warnings shown under the change.
#[derive(Debug, Clone, Default)]
pub struct Review {
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
}

/// One instance to refresh.
#[derive(Debug, Clone)]
pub struct Instance<'a> {
    pub id: Uuid,
    pub state: &'a Value,
}

/// An object adopted by `strata import` or an `import` block.
#[derive(Debug, Clone)]
pub struct Imported {
    pub state: Value,
    /// The identity the object already carries (e.g. a libvirt UUID), which
    /// the engine adopts; `None` when the provider tagged it with the
    /// engine's or identifies it otherwise (by name).
    pub id: Option<Uuid>,
}

/// How the engine schedules the operations (create, update, delete) of one
/// resource type during an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// Each operation takes one of the apply's `-parallelism` slots while it
    /// runs: the right thing for calls that each cost the outside world real
    /// work (booting a guest, copying an image).
    #[default]
    PerSlot,
    /// The provider coalesces the operations that are in flight together
    /// into one commit of the real system (one database transaction, one
    /// reconfiguration of a daemon), so one operation costs little by itself
    /// and many at once cost little more than one. The engine then starts
    /// every ready operation of the type at once, up to `max_in_flight`, and
    /// they take no `-parallelism` slot.
    ///
    /// What the provider promises in return: each operation still succeeds
    /// or fails on its own (a shared commit that fails is retried per
    /// operation, so one bad object fails only its own instance and the
    /// others stand), and each call returns only once its own effect is
    /// committed, so the engine's journal (a durable intent before every
    /// call, the outcome after it) is unchanged.
    Coalescing { max_in_flight: usize },
}

/// A provider instance, configured from one `provider` block.
///
/// Every method may block on the outside world; the engine calls them
/// concurrently from a tokio runtime, so implementations that call blocking
/// APIs must move that work off the runtime (`spawn_blocking`).
#[async_trait]
pub trait Provider: Send + Sync {
    /// Receives the evaluated `provider` block.
    async fn configure(&self, config: &Value) -> Result<()>;

    /// Extra validation of a resource's configuration beyond its schema.
    /// Returns `(attribute, message)` pairs; an empty vector means valid.
    fn validate(&self, _type_name: &str, _config: &Value) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Refines the engine's proposed change. The default keeps the proposal.
    async fn plan(&self, _req: PlanRequest<'_>) -> Result<PlanResponse> {
        Ok(PlanResponse::default())
    }

    /// Looks at every planned change of this provider together, for rules no
    /// single change shows: a pool that would be destroyed while images stay
    /// in it, thin provisioning that over-commits a pool. Called once per
    /// plan, after [`Provider::plan`]; must not change anything.
    async fn review_plan(&self, _changes: &[ReviewedChange<'_>]) -> Result<Review> {
        Ok(Review::default())
    }

    /// Creates the object, tagging it with `id`, and returns its full state.
    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value>;

    /// Reads current states in one call. Returns one entry per instance, in
    /// order; `None` means the object no longer exists.
    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>>;

    /// Changes the object in place to `planned` and returns its new state.
    /// With `undo` (what [`Provider::prepare_undo`] returned for this change,
    /// already journaled), the provider first secures the undo point the
    /// record names, then changes the object.
    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value>;

    /// Deletes the object. Deleting an object that is already gone succeeds.
    async fn delete(&self, type_name: &str, id: Uuid, prior: &Value) -> Result<()>;

    /// Finds the object tagged with `id`, if it exists. Used to reconcile an
    /// operation that was interrupted before its outcome was recorded.
    ///
    /// Only objects this engine can prove it created may be returned: an
    /// object that carries `id`, or (for objects that cannot carry it, found
    /// by name) one whose name [`Provider::name_is_free`] confirmed free just
    /// before the create.
    async fn find_by_identity(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Option<Value>>;

    /// For objects that cannot carry the instance identity and are found
    /// again by name: whether the name `planned` would take is free. The
    /// engine asks just before it journals a create; `Ok(false)` fails the
    /// create, before anything is touched, with an error that suggests
    /// `strata import`. Objects that carry the identity keep the default.
    async fn name_is_free(&self, _type_name: &str, _planned: &Value) -> Result<bool> {
        Ok(true)
    }

    /// Says how this change could be undone exactly, without changing
    /// anything (see [`Undoable`] and the protocol in [`UndoRecord`]'s
    /// module). `None`: rollback re-applies the prior values of an update, and
    /// a replaced object is deleted outright.
    async fn prepare_undo(&self, _type_name: &str, _id: Uuid, _change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        Ok(None)
    }

    /// Removes a replaced object from its place but keeps it aside as
    /// `undo` says, so that [`Provider::undo`] can bring it back and
    /// [`Provider::discard_undo`] can remove it for good.
    async fn retire(&self, type_name: &str, id: Uuid, prior: &Value, _undo: &UndoRecord) -> Result<()> {
        self.delete(type_name, id, prior).await
    }

    /// Undoes an operation from its record: restores the state before the
    /// update, or brings a retired object back. Returns the object's state
    /// once restored. Idempotent; tolerates an operation that never ran or
    /// stopped half-way. The undo point itself is discarded afterwards.
    async fn undo(&self, type_name: &str, _id: Uuid, _undo: &UndoRecord) -> Result<Value> {
        Err(ProviderError::new(format!("{type_name} cannot undo from a record")))
    }

    /// Forgets an undo point once it is no longer needed (the apply
    /// succeeded, or its changes are kept): removes the snapshot, deletes the
    /// retired object for good. Idempotent.
    async fn discard_undo(&self, _type_name: &str, _id: Uuid, _undo: &UndoRecord) -> Result<()> {
        Ok(())
    }

    /// Adopts an existing object by a provider-specific identifier. The
    /// provider should tag it with `id` where the object can carry one.
    async fn import(&self, type_name: &str, _id: Uuid, import_id: &str) -> Result<Imported> {
        Err(ProviderError::new(format!("{type_name} does not support import (asked for {import_id:?})")))
    }

    /// Finds an existing object by a provider-specific identifier without
    /// changing it (for `import` blocks at plan time). `None`: no such object.
    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        Err(ProviderError::new(format!("{type_name} does not support import (asked for {import_id:?})")))
    }

    /// How the engine schedules this resource type's operations. The
    /// default gives every operation a `-parallelism` slot.
    fn scheduling(&self, _type_name: &str) -> Scheduling {
        Scheduling::PerSlot
    }

    /// Reads a data source.
    async fn read_data(&self, type_name: &str, _config: &Value) -> Result<Value> {
        Err(ProviderError::new(format!("unknown data source {type_name}")))
    }
}

/// Makes provider instances and tells their schema without configuring one.
pub trait ProviderFactory: Send + Sync {
    /// The name used in `provider "NAME"` blocks and as the resource type prefix.
    fn name(&self) -> &'static str;
    fn schema(&self) -> ProviderSchema;
    fn instantiate(&self) -> Arc<dyn Provider>;
}
