//! Refresh: reading every managed instance through its provider, batched
//! per provider and type, and reporting drift.

use super::*;

/// Refreshes every managed instance through its provider, one batched read
/// per provider and type, up to `parallelism` types at once. Returns the
/// refreshed state and the drift found.
pub async fn refresh(
    state: &strata_state::Snapshot,
    providers: &HashMap<String, Arc<dyn Provider>>,
    parallelism: usize,
) -> OpResult<(strata_state::Snapshot, Vec<Drift>, BTreeMap<String, Option<Value>>)> {
    let mut groups: BTreeMap<(String, String), Vec<&InstanceRecord>> = BTreeMap::new();
    for r in state.instances.values() {
        groups.entry((r.provider.clone(), r.type_name.clone())).or_default().push(r);
    }
    // The reads of all groups run at once: each is one batched call (or a
    // few) into a different API, so their latencies overlap instead of adding
    // up (a Ceph refresh waits on `ceph` for pools and `rbd` for images).
    let mut reads = tokio::task::JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(parallelism.max(1)));
    for (index, ((provider_addr, type_name), records)) in groups.iter().enumerate() {
        let provider = providers.get(provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?.clone();
        let type_name = type_name.clone();
        let owned: Vec<(uuid::Uuid, Value)> = records.iter().map(|r| (r.id, r.attributes.clone().deep_unmark())).collect();
        let slots = slots.clone();
        reads.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let instances: Vec<Instance> = owned.iter().map(|(id, s)| Instance { id: *id, state: s }).collect();
            (index, provider.read(&type_name, &instances).await)
        });
    }
    let mut results: Vec<Option<strata_provider::Result<Vec<Option<Value>>>>> = (0..groups.len()).map(|_| None).collect();
    while let Some(joined) = reads.join_next().await {
        let (index, result) = joined.map_err(|e| format!("a refresh task failed: {e}"))?;
        results[index] = Some(result);
    }
    let mut refreshed = state.clone();
    let mut drift = Vec::new();
    let mut changed = BTreeMap::new();
    for (((_, type_name), records), result) in groups.iter().zip(results) {
        let result = result.ok_or_else(|| format!("refreshing {type_name}: no result"))?;
        let results = result.map_err(|e| format!("refreshing {type_name}: {}", crate::redact::provider_error(e, records.iter().map(|r| &r.attributes))))?;
        for (record, now) in records.iter().zip(results) {
            match now {
                Some(now) if now.clone().deep_unmark() == record.attributes.clone().deep_unmark() => {}
                Some(now) => {
                    let marked = remark(&record.attributes, now);
                    drift.push(Drift { address: record.address.clone(), before: record.attributes.clone(), after: Some(marked.clone()) });
                    changed.insert(record.address.clone(), Some(marked.clone()));
                    refreshed.instances.get_mut(&record.address).expect("refreshing known records").attributes = marked;
                }
                None => {
                    drift.push(Drift { address: record.address.clone(), before: record.attributes.clone(), after: None });
                    changed.insert(record.address.clone(), None);
                    refreshed.instances.remove(&record.address);
                }
            }
        }
    }
    Ok((refreshed, drift, changed))
}

/// Carries the sensitive marks of `before` over to `after`.
fn remark(before: &Value, after: Value) -> Value {
    after.with_marks_from(before)
}
