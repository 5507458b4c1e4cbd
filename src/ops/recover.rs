//! Crash recovery: resolving the intents an interrupted apply left pending,
//! by identity, before anything else reads the state.

use super::*;

/// Resolves the intents a crashed apply left pending, by identity. Returns a
/// line per intent saying what was done.
pub async fn reconcile(ws: &Workspace, providers: &HashMap<String, Arc<dyn Provider>>) -> OpResult<Vec<String>> {
    let pending = ws.store.pending_intents()?;
    let mut report = Vec::new();
    let current = if pending.is_empty() { return Ok(report) } else { ws.store.snapshot()? };
    for (seq, intent) in pending {
        let provider = providers
            .get(&intent.provider)
            .ok_or_else(|| format!("cannot reconcile {}: provider {} is not configured", intent.address, intent.provider))?;
        let planned = intent.planned.clone().unwrap_or_default().deep_unmark();
        let found = provider
            .find_by_identity(&intent.type_name, intent.id, &planned)
            .await
            .map_err(|e| format!("reconciling {}: {e}", intent.address))?;
        let mut writes = Vec::new();
        let record = |attributes: Value| InstanceRecord {
            address: intent.address.clone(),
            id: intent.id,
            type_name: intent.type_name.clone(),
            provider: intent.provider.clone(),
            attributes,
            dependencies: intent.dependencies.clone(),
            create_before_destroy: intent.create_before_destroy,
        };
        let line = match (intent.operation, found) {
            (Operation::Create, Some(state)) => {
                if let Some(old) = current.instances.get(&intent.address).filter(|old| old.id != intent.id) {
                    // A create_before_destroy replacement was in flight.
                    let deposed = apply::deposed_key(&old.address, old.id);
                    writes.push(Write::PutInstance(InstanceRecord { address: deposed, ..old.clone() }));
                }
                writes.push(Write::PutInstance(record(state)));
                format!("adopted {} ({}), created by an interrupted apply", intent.address, intent.id)
            }
            (Operation::Create, None) => format!("{} was not created by the interrupted apply; nothing to adopt", intent.address),
            (Operation::Update, Some(state)) => {
                writes.push(Write::PutInstance(InstanceRecord {
                    address: intent.prior.as_ref().map(|p| p.address.clone()).unwrap_or(intent.address.clone()),
                    ..record(state)
                }));
                format!("refreshed {} after an interrupted update", intent.address)
            }
            (Operation::Update, None) | (Operation::Delete, None) => {
                writes.push(Write::RemoveInstance { address: intent.address.clone() });
                format!("{} no longer exists; removed from state", intent.address)
            }
            (Operation::Delete, Some(_)) => format!("{} still exists after an interrupted delete; it stays in state", intent.address),
            (op, _) => format!("{} had an interrupted {op:?}", intent.address),
        };
        writes.push(Write::Resolve { seq });
        ws.store.commit(writes)?;
        report.push(line);
    }
    Ok(report)
}
