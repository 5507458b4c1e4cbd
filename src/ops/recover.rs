//! Crash recovery, before anything else reads the state: resolving the
//! intents an interrupted apply left pending, by identity, then ending the
//! interrupted apply itself as its log says.
//!
//! An apply killed in its main phase is rolled back (unless it ran with
//! `--no-rollback`): its completed steps are undone exactly as a failed
//! apply's are, so the infrastructure returns to what it was before. An apply
//! killed during its rollback has the rollback finished. An apply killed in
//! its cleanup phase had already succeeded: its undo points are discarded and
//! the next plan proposes the destroys that remain.

use super::*;
use crate::apply::Undoer;
use strata_state::{ApplyLog, ApplyPhase, Intent, UndoStep};

/// Resolves pending intents and ends an interrupted apply. Returns a line per
/// thing done, for the user.
pub async fn reconcile(ws: &Workspace, providers: &HashMap<String, Arc<dyn Provider>>, schemas: &Schemas) -> OpResult<Vec<String>> {
    let pending = ws.store.pending_intents()?;
    let log = ws.store.apply_log()?;
    let mut report = Vec::new();
    if pending.is_empty() && log.is_none() {
        return Ok(report);
    }
    let journal = Journal::start(ws.store.clone());
    let current = ws.store.snapshot()?;
    crate::redact::remember(pending.iter().flat_map(|(_, i)| i.planned.iter().chain(i.prior.iter().map(|p| &p.attributes))));
    for (seq, intent) in pending {
        let provider = providers
            .get(&intent.provider)
            .ok_or_else(|| format!("cannot reconcile {}: provider {} is not configured", intent.address, intent.provider))?;
        let (mut writes, line) = resolve(provider, &intent, seq, log.as_ref(), &current).await?;
        writes.push(Write::Resolve { seq });
        journal.commit(writes).await?;
        report.extend(line);
    }
    let Some(log) = ws.store.apply_log()? else { return Ok(report) };
    let undoer = Undoer { providers, schemas, store: &ws.store, journal: &journal, events: None };
    let started = describe_apply(&log);
    match log.record.phase {
        ApplyPhase::Main if log.record.rollback => {
            report.push(format!("{started} was interrupted; rolling it back ({} operation(s) to undo)", log.steps.len()));
            let outcome = undoer.roll_back().await?;
            report.extend(outcome.done.into_iter().map(|(a, what)| format!("  {a}: rolled back ({what})")));
            report.extend(outcome.failed.into_iter().map(|(a, why)| format!("  {a}: could NOT be rolled back: {why}")));
        }
        ApplyPhase::RollingBack => {
            report.push(format!("{started} was interrupted while rolling back; finishing the rollback"));
            let outcome = undoer.roll_back().await?;
            report.extend(outcome.done.into_iter().map(|(a, what)| format!("  {a}: rolled back ({what})")));
            report.extend(outcome.failed.into_iter().map(|(a, why)| format!("  {a}: could NOT be rolled back: {why}")));
        }
        phase @ (ApplyPhase::Main | ApplyPhase::Cleanup) => {
            let what = if phase == ApplyPhase::Cleanup { "did not finish its cleanup" } else { "was interrupted (with --no-rollback)" };
            report.push(format!("{started} {what}; its changes stand, and its undo points are discarded (the plan shows what remains)"));
            let outcome = undoer.keep().await?;
            report.extend(outcome.failed.into_iter().map(|(a, why)| format!("  {a}: {why}")));
        }
    }
    Ok(report)
}

fn describe_apply(log: &ApplyLog) -> String {
    format!("an apply (process {}, started at {} s since the epoch)", log.record.pid, log.record.started_at)
}

/// What the interrupted call `intent` did, found by identity: the writes that
/// record it (with its undo step when it belongs to an apply's main phase)
/// and a line for the user. Calls of a rollback, and discards, only need
/// their intent resolved: the rollback (or discard) runs again from the log
/// and its steps are idempotent.
async fn resolve(
    provider: &Arc<dyn Provider>,
    intent: &Intent,
    seq: u64,
    log: Option<&ApplyLog>,
    current: &strata_state::Snapshot,
) -> OpResult<(Vec<Write>, Option<String>)> {
    if intent.rollback || matches!(intent.operation, Operation::DiscardUndo | Operation::Undo) {
        return Ok((Vec::new(), None));
    }
    let planned = intent.planned.clone().unwrap_or_default().deep_unmark();
    let found = provider
        .find_by_identity(&intent.type_name, intent.id, &planned)
        .await
        .map_err(|e| format!("reconciling {}: {}", intent.address, crate::redact::provider_error(e, intent.planned.iter().chain(intent.prior.as_ref().map(|p| &p.attributes)))))?;
    // Steps are only recorded while the interrupted apply's log is there.
    let in_apply = log.is_some_and(|l| l.record.apply_id == intent.apply_id);
    let main_phase = log.is_some_and(|l| l.record.apply_id == intent.apply_id && l.record.phase == ApplyPhase::Main);
    let record = |attributes: Value| InstanceRecord {
        address: intent.address.clone(),
        id: intent.id,
        type_name: intent.type_name.clone(),
        provider: intent.provider.clone(),
        attributes: attributes.with_marks_from(intent.planned.as_ref().unwrap_or(&Value::Null)),
        dependencies: intent.dependencies.clone(),
        create_before_destroy: intent.create_before_destroy,
    };
    let mut writes = Vec::new();
    let step = |s: UndoStep| {
        if in_apply {
            Some(Write::PutStep { seq, step: s })
        } else {
            None
        }
    };
    let line = match (intent.operation, found) {
        (Operation::Create, Some(state)) => {
            let new = record(state);
            writes.push(Write::PutInstance(new.clone()));
            match current.instances.get(&intent.address).filter(|old| old.id != intent.id) {
                Some(old) => {
                    // A create_before_destroy replacement was in flight.
                    let deposed = apply::deposed_key(&old.address, old.id);
                    writes.push(Write::PutInstance(InstanceRecord { address: deposed, ..old.clone() }));
                    writes.extend(step(UndoStep::Replaced { old: old.clone(), new }));
                }
                None => writes.extend(step(UndoStep::Created { record: new })),
            }
            format!("adopted {} ({}), created by an interrupted apply", intent.address, intent.id)
        }
        (Operation::Create, None) => format!("{} was not created by the interrupted apply; nothing to adopt", intent.address),
        (Operation::Import, Some(state)) => {
            let adopted = record(state);
            writes.push(Write::PutInstance(adopted.clone()));
            writes.extend(step(UndoStep::Imported { record: adopted, undo: intent.undo.clone() }));
            format!("adopted {} ({}), imported by an interrupted apply", intent.address, intent.id)
        }
        (Operation::Import, None) => format!("{} was not imported by the interrupted apply", intent.address),
        (Operation::Update, Some(state)) => {
            let prior = intent.prior.clone();
            let address = prior.as_ref().map(|p| p.address.clone()).unwrap_or(intent.address.clone());
            let now = InstanceRecord { address, ..record(state) };
            writes.push(Write::PutInstance(now.clone()));
            if let Some(prior) = prior {
                let changed = now.attributes.clone().deep_unmark() != prior.attributes.clone().deep_unmark();
                if changed || intent.undo.is_some() {
                    writes.extend(step(UndoStep::Updated { prior, current: now, undo: intent.undo.clone() }));
                }
            }
            format!("refreshed {} after an interrupted update", intent.address)
        }
        (Operation::Delete, None) => {
            writes.push(Write::RemoveInstance { address: intent.address.clone() });
            if let (true, Some(prior)) = (main_phase, intent.prior.clone()) {
                // The first half of a replacement: the old object was retired.
                writes.extend(step(UndoStep::Retired { prior, undo: intent.undo.clone() }));
            }
            format!("{} no longer exists; removed from state", intent.address)
        }
        (Operation::Update, None) => {
            writes.push(Write::RemoveInstance { address: intent.address.clone() });
            format!("{} no longer exists; removed from state", intent.address)
        }
        (Operation::Delete, Some(_)) => format!("{} still exists after an interrupted delete; it stays in state", intent.address),
        (Operation::Undo | Operation::DiscardUndo, _) => return Ok((Vec::new(), None)),
    };
    Ok((writes, Some(line)))
}
