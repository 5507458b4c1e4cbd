//! Refresh: reading every managed instance through its provider, batched
//! per provider and type, and reporting drift.

use super::*;

/// Refreshes every managed instance through its provider, one batched read
/// per provider and type. Returns the refreshed state and the drift found.
pub async fn refresh(
    state: &strata_state::Snapshot,
    providers: &HashMap<String, Arc<dyn Provider>>,
) -> OpResult<(strata_state::Snapshot, Vec<Drift>, BTreeMap<String, Option<Value>>)> {
    let mut groups: BTreeMap<(String, String), Vec<&InstanceRecord>> = BTreeMap::new();
    for r in state.instances.values() {
        groups.entry((r.provider.clone(), r.type_name.clone())).or_default().push(r);
    }
    let mut refreshed = state.clone();
    let mut drift = Vec::new();
    let mut changed = BTreeMap::new();
    for ((provider_addr, type_name), records) in groups {
        let provider = providers.get(&provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
        let unmarked: Vec<Value> = records.iter().map(|r| r.attributes.clone().deep_unmark()).collect();
        let instances: Vec<Instance> = records.iter().zip(&unmarked).map(|(r, s)| Instance { id: r.id, state: s }).collect();
        let results = provider.read(&type_name, &instances).await.map_err(|e| format!("refreshing {type_name}: {}", crate::redact::provider_error(e, records.iter().map(|r| &r.attributes))))?;
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
