//! `apply`: checks a plan still holds, records refresh drift, moves and
//! imports, then runs the journaled executor.

use super::*;

/// Options of an apply.
pub struct ApplyOptions {
    pub parallelism: usize,
    pub rollback: bool,
    pub allow_data_loss: bool,
    pub cancel: CancellationToken,
    pub in_flight: Arc<Mutex<BTreeSet<String>>>,
}

/// Applies a plan made by [`plan`] (or loaded from a file and re-checked).
pub async fn apply(ws: &Workspace, planned: &Planned, opts: ApplyOptions, events: UnboundedSender<Event>) -> OpResult<ApplyReport> {
    let plan = &planned.plan;
    let data_loss: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.disruption == Some(strata_provider::Disruption::DataLoss))
        .map(|c| c.address.as_str())
        .collect();
    if !data_loss.is_empty() && !opts.allow_data_loss {
        return Err(OpError::Message(format!(
            "the plan destroys data ({}); re-run with --allow-data-loss to go ahead",
            data_loss.join(", ")
        )));
    }
    let current = ws.store.snapshot()?;
    if current.meta.lineage != plan.lineage || current.meta.serial != plan.serial {
        return Err(OpError::Message(format!(
            "the saved plan is stale: it was made from state version {} and the state is now at version {}; plan again",
            plan.serial, current.meta.serial
        )));
    }
    if plan.config_fingerprint != planned.loaded.config.fingerprint() {
        return Err(OpError::Message("the configuration changed since the plan was made; plan again".into()));
    }
    let operation = match plan.mode {
        PlanMode::Destroy => "destroy",
        PlanMode::RefreshOnly => "apply -refresh-only",
        PlanMode::Normal => "apply",
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version(operation, &user)?;
    // Drift found by refresh becomes state first: it is the truth.
    let mut writes = Vec::new();
    for (address, value) in &plan.refreshed {
        match (value, planned.state.instances.get(address)) {
            (Some(_), Some(record)) => writes.push(Write::PutInstance(record.clone())),
            (None, _) => writes.push(Write::RemoveInstance { address: address.clone() }),
            _ => {}
        }
    }
    // Renames from `moved` blocks, then adoptions from `import` blocks.
    for change in plan.changes.iter().filter(|c| c.details().moved_from.is_some()) {
        let from = change.details().moved_from.clone().expect("filtered on moved_from");
        if let Some(record) = planned.state.instances.get(&change.address) {
            writes.push(Write::RemoveInstance { address: from });
            writes.push(Write::PutInstance(record.clone()));
        }
    }
    // Imports run inside the apply, journaled like every other change.
    if plan.mode == PlanMode::RefreshOnly {
        ws.store.commit(writes)?;
        return Ok(ApplyReport::default());
    }
    // Drift and moves go into the apply's first commit: a crash before it
    // leaves the state as the plan found it, which the next refresh reads
    // again.
    let journal = Journal::start(ws.store.clone());
    journal.defer(writes);
    let cx = ApplyContext {
        config: planned.loaded.config.clone(),
        schemas: planned.loaded.schemas.clone(),
        providers: planned.providers.clone(),
        store: ws.store.clone(),
        journal,
        events,
        parallelism: opts.parallelism,
        rollback: opts.rollback,
        cancel: opts.cancel,
        in_flight: opts.in_flight,
    };
    Ok(apply::apply(plan, &planned.state, cx).await)
}
