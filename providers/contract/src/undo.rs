//! Undo records: how a provider undoes one of its operations exactly.
//!
//! Re-applying prior values cannot bring back a destroyed object or
//! overwritten data. So before the engine makes a change it may not be able to
//! reverse, it asks the provider for an [`UndoRecord`]
//! ([`crate::Provider::prepare_undo`]). The record is opaque to the engine: it
//! is journaled in the operation's intent *before* the call, handed to the
//! call itself (so the provider keeps what it promised: takes the snapshot the
//! record names, keeps the old object aside under the name it chose), kept
//! with the operation's outcome, and handed back to
//! [`crate::Provider::undo`] by rollback (also after a crash during an apply
//! or its rollback), or to [`crate::Provider::discard_undo`] once the apply
//! has succeeded.
//!
//! Protocol, and what each side promises:
//! 1. `prepare_undo` reads what it needs and **changes nothing**; a crash
//!    right after it leaves nothing behind.
//! 2. The operation (`update` with the record, or `retire`) first secures the
//!    undo point, then changes the object.
//! 3. `undo` and `discard_undo` are **idempotent** and tolerate an operation
//!    that never ran or stopped half-way: after a crash the engine cannot
//!    know how far the operation got, so it may call either one again.

use crate::Value;
use serde::{Deserialize, Serialize};

/// A provider's opaque record of how to undo one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoRecord(pub Value);

/// The change an undo record is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Undoable<'a> {
    /// An in-place update from `prior` to `planned` (a `data-loss` shrink, a
    /// definition replaced, rows overwritten...).
    Update { prior: &'a Value, planned: &'a Value },
    /// Removing the object in the main phase of an apply because it is being
    /// replaced (a replacement without `create_before_destroy`). With a
    /// record, the engine calls [`crate::Provider::retire`] instead of
    /// `delete`: the object is kept aside until the apply succeeds.
    Retire { prior: &'a Value },
    /// Adopting an existing object (`import`), which the provider may re-tag
    /// with the instance identity. Undo puts the object back as it was, so
    /// that a rolled-back import leaves it exactly as unmanaged as before.
    Import { import_id: &'a str },
}

/// What rollback can restore for one resource type, declared in the schema so
/// that the (pure) planner can say before an apply which changes rollback
/// could not undo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoSupport {
    /// Updates classed `data-loss` are undone exactly (e.g. from a snapshot).
    /// Without it, rollback re-applies the prior values, which cannot bring
    /// lost data back.
    pub data_loss: bool,
    /// A replaced object is kept aside ([`crate::Provider::retire`]) until the
    /// apply succeeds, so rollback brings the original back. Without it, a
    /// replacement without `create_before_destroy` destroys the original
    /// before its successor exists, and rollback cannot restore it.
    pub retire: bool,
}
