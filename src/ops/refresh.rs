//! Refresh: reading every managed instance through its provider, batched
//! per provider and type, and reporting drift.

use super::*;

/// Refreshes every managed instance through its provider, one batched read
/// per provider and type, up to `parallelism` types at once. Returns the
/// refreshed state and the drift found.
///
/// The state is refreshed in place: the records a provider confirms are not
/// copied, and providers read the records themselves unless they carry
/// sensitive marks (providers see unmarked values).
pub async fn refresh(
    mut state: strata_state::Snapshot,
    providers: &HashMap<String, Arc<dyn Provider>>,
    parallelism: usize,
) -> OpResult<(strata_state::Snapshot, Vec<Drift>, BTreeMap<String, Option<Value>>)> {
    let mut groups: BTreeMap<(&str, &str), Vec<&InstanceRecord>> = BTreeMap::new();
    for r in state.instances.values() {
        groups.entry((r.provider.as_str(), r.type_name.as_str())).or_default().push(r);
    }
    // The reads of all groups run at once: each is one batched call (or a
    // few) into a different API, so their latencies overlap instead of adding
    // up (a Ceph refresh waits on `ceph` for pools and `rbd` for images).
    let mut unmarked: Vec<Vec<std::borrow::Cow<'_, Value>>> = Vec::with_capacity(groups.len());
    for records in groups.values() {
        unmarked.push(
            records
                .iter()
                .map(|r| {
                    if r.attributes.contains_sensitive() {
                        std::borrow::Cow::Owned(r.attributes.clone().deep_unmark())
                    } else {
                        std::borrow::Cow::Borrowed(&r.attributes)
                    }
                })
                .collect(),
        );
    }
    let slots = tokio::sync::Semaphore::new(parallelism.max(1));
    let slots = &slots;
    let mut reads = Vec::with_capacity(groups.len());
    for (((provider_addr, type_name), records), values) in groups.iter().zip(&unmarked) {
        let provider = providers.get(*provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
        let instances: Vec<Instance> = records.iter().zip(values).map(|(r, v)| Instance { id: r.id, state: v }).collect();
        reads.push(async move {
            let _slot = slots.acquire().await;
            provider.read(type_name, &instances).await
        });
    }
    let results = futures_util::future::join_all(reads).await;
    drop(unmarked);
    let mut drift = Vec::new();
    let mut changed = BTreeMap::new();
    for (((_, type_name), records), result) in groups.iter().zip(results) {
        let results = result.map_err(|e| format!("refreshing {type_name}: {}", crate::redact::provider_error(e, records.iter().map(|r| &r.attributes))))?;
        for (record, now) in records.iter().zip(results) {
            match now {
                Some(now) if now.eq_unmarked(&record.attributes) => {}
                Some(now) => {
                    let marked = remark(&record.attributes, now);
                    drift.push(Drift { address: record.address.clone(), before: record.attributes.clone(), after: Some(marked.clone()) });
                    changed.insert(record.address.clone(), Some(marked));
                }
                None => {
                    drift.push(Drift { address: record.address.clone(), before: record.attributes.clone(), after: None });
                    changed.insert(record.address.clone(), None);
                }
            }
        }
    }
    drop(groups);
    for (address, now) in &changed {
        match now {
            Some(now) => {
                if let Some(record) = state.instances.get_mut(address) {
                    record.attributes = now.clone();
                }
            }
            None => {
                state.instances.remove(address);
            }
        }
    }
    Ok((state, drift, changed))
}

/// Carries the sensitive marks of `before` over to `after`.
fn remark(before: &Value, after: Value) -> Value {
    after.with_marks_from(before)
}
