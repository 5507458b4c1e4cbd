//! Undoing an apply, or keeping it, from its durable log.
//!
//! Every completed main-phase operation left an [`UndoStep`] in the store,
//! written in the same transaction as its outcome. [`Undoer::roll_back`]
//! undoes them newest first, each under an intent marked `rollback`, and each
//! step leaves the log in the transaction that records its undo. So the same
//! code serves a failed apply and recovery after a crash at any instant,
//! during the rollback too: re-running a step is safe because deletes of
//! missing objects succeed, re-applied values are idempotent, and providers'
//! `undo` must be idempotent (see `strata_provider::UndoRecord`).
//!
//! [`Undoer::keep`] is the other ending: the changes stand, so the undo
//! points (snapshots, objects kept aside) are discarded.

use super::{deposed_key, Event, Journal};
use crate::plan::{mark_result, Schemas};
use std::collections::HashMap;
use std::sync::Arc;
use strata_provider::{Provider, UndoRecord, Value};
use strata_state::{InstanceRecord, Intent, Operation, StateStore, UndoStep, Write};
use tokio::sync::mpsc::UnboundedSender;
use uuid::Uuid;

/// What undoing or discarding needs: the configured providers, schemas (to
/// restore sensitive marks), the store and its journal.
pub struct Undoer<'a> {
    pub providers: &'a HashMap<String, Arc<dyn Provider>>,
    pub schemas: &'a Schemas,
    pub store: &'a Arc<dyn StateStore>,
    pub journal: &'a Journal,
    pub events: Option<&'a UnboundedSender<Event>>,
}

/// What a rollback (or a discard) did, per instance address.
#[derive(Debug, Default)]
pub struct Outcome {
    pub done: Vec<(String, String)>,
    /// What could not be undone (or discarded), and why.
    pub failed: Vec<(String, String)>,
}

impl Undoer<'_> {
    /// Undoes every step of the apply in progress, newest first, then ends
    /// the apply. `Err` only when the state itself cannot be written.
    pub async fn roll_back(&self) -> Result<Outcome, String> {
        let Some(log) = self.store.apply_log().map_err(|e| e.to_string())? else { return Ok(Outcome::default()) };
        self.journal.commit(vec![Write::SetApplyPhase(strata_state::ApplyPhase::RollingBack)]).await?;
        if let Some(events) = self.events {
            let _ = events.send(Event::RollingBack { operations: log.steps.len() });
        }
        let mut outcome = Outcome::default();
        for (seq, step) in log.steps.into_iter().rev() {
            let address = step_address(&step).to_owned();
            match self.undo_step(log.record.apply_id, seq, &step).await {
                Ok(what) => {
                    if let Some(events) = self.events {
                        let _ = events.send(Event::RolledBack { address: address.clone(), what: what.clone() });
                    }
                    outcome.done.push((address, what));
                }
                Err(error) => {
                    if let Some(events) = self.events {
                        let _ = events.send(Event::RollbackFailed { address: address.clone(), error: error.clone() });
                    }
                    outcome.failed.push((address, error));
                }
            }
        }
        self.journal.commit(vec![Write::EndApply]).await?;
        Ok(outcome)
    }

    /// Keeps the apply's changes: discards every undo point, then ends the
    /// apply. Returns what was discarded and what could not be.
    pub async fn keep(&self) -> Result<Outcome, String> {
        let Some(log) = self.store.apply_log().map_err(|e| e.to_string())? else { return Ok(Outcome::default()) };
        let mut outcome = Outcome::default();
        for (seq, step) in log.steps {
            let Some((record, undo)) = step.undo_point() else { continue };
            let intent = step_intent(log.record.apply_id, Operation::DiscardUndo, record, None, Some(undo.clone()));
            let result = self
                .journaled(intent, async {
                    let provider = self.provider(record)?;
                    provider.discard_undo(&record.type_name, record.id, undo).await.map_err(|e| crate::redact::provider_error(e, [&record.attributes]))
                })
                .await;
            match result {
                Ok(done_seq) => {
                    self.journal.commit(vec![Write::RemoveStep { seq }, Write::Resolve { seq: done_seq }]).await?;
                    outcome.done.push((record.address.clone(), "undo point discarded".into()));
                }
                Err(error) => outcome.failed.push((
                    record.address.clone(),
                    format!("its undo point could not be removed ({error}); the next command retries"),
                )),
            }
        }
        // With undo points left, the log stays (in its cleanup phase), so the
        // next command's recovery retries discarding them.
        if outcome.failed.is_empty() {
            self.journal.commit(vec![Write::EndApply]).await?;
        } else {
            self.journal.commit(vec![Write::SetApplyPhase(strata_state::ApplyPhase::Cleanup)]).await?;
        }
        Ok(outcome)
    }

    /// [`Undoer::keep`] for an apply whose log holds no undo point (its
    /// journal stored none since the apply began, see
    /// [`Journal::wrote_undo_points`]): ends the apply without reading back
    /// its steps, which there is nothing to discard in.
    pub async fn keep_without_undo_points(&self) -> Result<Outcome, String> {
        self.journal.commit(vec![Write::EndApply]).await?;
        Ok(Outcome::default())
    }

    fn provider(&self, record: &InstanceRecord) -> Result<&Arc<dyn Provider>, String> {
        self.providers.get(&record.provider).ok_or_else(|| format!("provider {} is not configured", record.provider))
    }

    /// Journals `intent`, runs `call`; on success returns the intent's
    /// sequence number for the caller to resolve with the call's effect; on
    /// failure resolves it (the step stays, so a later run can retry).
    async fn journaled(&self, intent: Intent, call: impl std::future::Future<Output = Result<(), String>>) -> Result<u64, String> {
        let seq = self.store.next_seq(1).map_err(|e| e.to_string())?;
        self.journal.commit(vec![Write::Intent { seq, intent }]).await?;
        match call.await {
            Ok(()) => Ok(seq),
            Err(e) => {
                self.journal.commit(vec![Write::Resolve { seq }]).await?;
                Err(e)
            }
        }
    }

    /// Same as [`Undoer::journaled`] for calls that return the object's state.
    async fn journaled_value(
        &self,
        intent: Intent,
        call: impl std::future::Future<Output = Result<Value, String>>,
    ) -> Result<(u64, Value), String> {
        let mut out = None;
        let seq = self
            .journaled(intent, async {
                out = Some(call.await?);
                Ok(())
            })
            .await?;
        Ok((seq, out.expect("set on success")))
    }

    /// Restores the sensitive marks a provider's result lost.
    fn marked(&self, value: Value, like: &InstanceRecord) -> Value {
        let provider_name = like.provider.split('.').next().unwrap_or_default();
        match self.schemas.resource(provider_name, crate::addr::Mode::Managed, &like.type_name) {
            Some(schema) => mark_result(value, &like.attributes, schema),
            None => value.with_marks_from(&like.attributes),
        }
    }

    async fn undo_step(&self, apply_id: Uuid, seq: u64, step: &UndoStep) -> Result<String, String> {
        match step {
            UndoStep::Created { record } => {
                let done = self.delete(apply_id, record).await?;
                let writes = vec![Write::RemoveInstance { address: record.address.clone() }, Write::RemoveStep { seq }, Write::Resolve { seq: done }];
                self.journal.commit(writes).await?;
                Ok("deleted".into())
            }
            UndoStep::Replaced { old, new } => {
                let done = self.delete(apply_id, new).await?;
                let writes = vec![
                    Write::RemoveInstance { address: new.address.clone() },
                    Write::RemoveInstance { address: deposed_key(&old.address, old.id) },
                    Write::PutInstance(old.clone()),
                    Write::RemoveStep { seq },
                    Write::Resolve { seq: done },
                ];
                self.journal.commit(writes).await?;
                Ok("replacement deleted, original kept".into())
            }
            UndoStep::Updated { prior, current, undo } => {
                let provider = self.provider(prior)?;
                let (done, value) = match undo {
                    Some(undo) => {
                        let intent = step_intent(apply_id, Operation::Undo, current, Some(prior.attributes.clone()), Some(undo.clone()));
                        self.journaled_value(intent, async {
                            provider.undo(&prior.type_name, prior.id, undo).await.map_err(|e| crate::redact::provider_error(e, [&prior.attributes, &current.attributes]))
                        })
                        .await?
                    }
                    None => {
                        let intent = step_intent(apply_id, Operation::Update, current, Some(prior.attributes.clone()), None);
                        let (from, to) = (current.attributes.clone().deep_unmark(), prior.attributes.clone().deep_unmark());
                        self.journaled_value(intent, async {
                            provider.update(&prior.type_name, prior.id, &from, &to, None).await.map_err(|e| crate::redact::provider_error(e, [&prior.attributes, &current.attributes]))
                        })
                        .await?
                    }
                };
                let restored = InstanceRecord { attributes: self.marked(value, prior), ..prior.clone() };
                self.journal.commit(vec![Write::PutInstance(restored), Write::RemoveStep { seq }, Write::Resolve { seq: done }]).await?;
                Ok("restored".into())
            }
            UndoStep::Retired { prior, undo: Some(undo) } => {
                let provider = self.provider(prior)?;
                let intent = step_intent(apply_id, Operation::Undo, prior, Some(prior.attributes.clone()), Some(undo.clone()));
                let (done, value) = self
                    .journaled_value(intent, async { provider.undo(&prior.type_name, prior.id, undo).await.map_err(|e| crate::redact::provider_error(e, [&prior.attributes])) })
                    .await?;
                let restored = InstanceRecord { attributes: self.marked(value, prior), ..prior.clone() };
                self.journal.commit(vec![Write::PutInstance(restored), Write::RemoveStep { seq }, Write::Resolve { seq: done }]).await?;
                Ok("original restored".into())
            }
            UndoStep::Retired { prior, undo: None } => {
                self.journal.commit(vec![Write::RemoveStep { seq }]).await?;
                Err(format!(
                    "it was destroyed to be replaced, and {} cannot keep a replaced object aside, so rollback cannot bring it back \
                     (create_before_destroy avoids this)",
                    prior.type_name
                ))
            }
            UndoStep::Imported { record, undo } => {
                let mut writes = vec![Write::RemoveInstance { address: record.address.clone() }, Write::RemoveStep { seq }];
                if let Some(undo) = undo {
                    let provider = self.provider(record)?;
                    let intent = step_intent(apply_id, Operation::Undo, record, None, Some(undo.clone()));
                    let (done, _) = self
                        .journaled_value(intent, async { provider.undo(&record.type_name, record.id, undo).await.map_err(|e| crate::redact::provider_error(e, [&record.attributes])) })
                        .await?;
                    writes.push(Write::Resolve { seq: done });
                }
                self.journal.commit(writes).await?;
                Ok("import undone (the object is unmanaged again, as before)".into())
            }
        }
    }

    /// Deletes an object this apply created, under a rollback intent whose
    /// sequence number it returns, to be resolved with the step's effect.
    async fn delete(&self, apply_id: Uuid, record: &InstanceRecord) -> Result<u64, String> {
        let provider = self.provider(record)?;
        let intent = step_intent(apply_id, Operation::Delete, record, None, None);
        let attrs = record.attributes.clone().deep_unmark();
        self.journaled(intent, async { provider.delete(&record.type_name, record.id, &attrs).await.map_err(|e| crate::redact::provider_error(e, [&record.attributes])) }).await
    }
}

fn step_address(step: &UndoStep) -> &str {
    match step {
        UndoStep::Created { record } | UndoStep::Imported { record, .. } => &record.address,
        UndoStep::Replaced { new, .. } => &new.address,
        UndoStep::Updated { prior, .. } | UndoStep::Retired { prior, .. } => &prior.address,
    }
}

/// The intent of a rollback call on `record`.
fn step_intent(apply_id: Uuid, operation: Operation, record: &InstanceRecord, planned: Option<Value>, undo: Option<UndoRecord>) -> Intent {
    Intent {
        apply_id,
        operation,
        address: record.address.clone(),
        id: record.id,
        type_name: record.type_name.clone(),
        provider: record.provider.clone(),
        planned,
        prior: Some(record.clone()),
        rollback: true,
        dependencies: record.dependencies.clone(),
        create_before_destroy: record.create_before_destroy,
        undo,
    }
}
