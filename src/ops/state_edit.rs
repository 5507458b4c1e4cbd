//! State edits that touch no infrastructure: `state rm`, `state mv`.

use super::*;

/// `strata state rm`: forgets instances without destroying them.
pub fn state_rm(ws: &Workspace, targets: &[crate::addr::Target]) -> OpResult<Vec<String>> {
    let state = ws.store.snapshot()?;
    let removed: Vec<String> = state
        .instances
        .keys()
        .filter(|a| crate::addr::parse_instance(a.split('~').next().unwrap_or(a)).is_ok_and(|i| targets.iter().any(|t| t.matches(&i))))
        .cloned()
        .collect();
    if removed.is_empty() {
        return Err(OpError::Message("no instance in state matches".into()));
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version("state rm", &user)?;
    ws.store.commit(removed.iter().map(|a| Write::RemoveInstance { address: a.clone() }).collect())?;
    Ok(removed)
}

/// `strata state mv`: renames an instance in state.
pub fn state_mv(ws: &Workspace, from: &str, to: &str) -> OpResult<()> {
    let state = ws.store.snapshot()?;
    let to_addr = crate::addr::parse_instance(to)?;
    let record = state.instances.get(from).ok_or_else(|| format!("{from} is not in state"))?;
    if state.instances.contains_key(to) {
        return Err(OpError::Message(format!("{to} is already in state")));
    }
    if to_addr.resource.type_name != record.type_name {
        return Err(OpError::Message(format!("cannot move a {} to a {}", record.type_name, to_addr.resource.type_name)));
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version("state mv", &user)?;
    let moved = InstanceRecord { address: to.to_owned(), ..record.clone() };
    ws.store.commit(vec![Write::RemoveInstance { address: from.to_owned() }, Write::PutInstance(moved)])?;
    Ok(())
}
