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

/// `strata state mv`: renames in state one instance, a whole resource (all
/// its instances) or a whole module instance (everything in it), as
/// Terraform's `state mv` does. Returns the (from, to) addresses moved.
pub fn state_mv(ws: &Workspace, from: &str, to: &str) -> OpResult<Vec<(String, String)>> {
    let state = ws.store.snapshot()?;
    let moves = plan_moves(&state, from, to)?;
    for (_, new) in &moves {
        if state.instances.contains_key(new) {
            return Err(OpError::Message(format!("cannot move to {new}: it is already in state")));
        }
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version("state mv", &user)?;
    let mut writes = Vec::new();
    for (old, new) in &moves {
        let record = &state.instances[old];
        writes.push(Write::RemoveInstance { address: old.clone() });
        writes.push(Write::PutInstance(InstanceRecord { address: new.clone(), ..record.clone() }));
    }
    ws.store.commit(writes)?;
    Ok(moves)
}

/// The state addresses `from` names and where each goes.
fn plan_moves(state: &strata_state::Snapshot, from: &str, to: &str) -> OpResult<Vec<(String, String)>> {
    use crate::addr::{InstanceAddr, ModuleInstance, Target};
    let source: Target = from.parse()?;
    let dest: Target = to.parse()?;
    let exact_module = |t: &Target, what: &str| -> OpResult<ModuleInstance> {
        t.module
            .iter()
            .map(|(n, k)| Some((n.clone(), k.clone().unwrap_or(crate::addr::InstanceKey::None))))
            .collect::<Option<Vec<_>>>()
            .map(ModuleInstance)
            .ok_or_else(|| OpError::Message(format!("{what} {t} must name one module instance")))
    };
    // Deposed objects (`ADDR~ID`) move with their instance.
    let in_state: Vec<(String, InstanceAddr, &str)> = state
        .instances
        .keys()
        .filter_map(|a| {
            let (base, deposed) = a.split_once('~').map_or((a.as_str(), ""), |(b, _)| (b, &a[b.len()..]));
            crate::addr::parse_instance(base).ok().map(|i| (a.clone(), i, deposed))
        })
        .collect();
    let mut moves = Vec::new();
    match (&source.resource, &dest.resource) {
        // One instance (or a resource without count/for_each) to another.
        (Some(resource), Some(target)) if source.key.is_some() || state.instances.contains_key(from) => {
            let key = |t: &Target| t.key.clone().unwrap_or(crate::addr::InstanceKey::None);
            let old = InstanceAddr { module: exact_module(&source, "the source")?, resource: resource.clone(), key: key(&source) };
            let new = InstanceAddr { module: exact_module(&dest, "the destination")?, resource: target.clone(), key: key(&dest) };
            for (address, addr, deposed) in &in_state {
                if *addr == old {
                    moves.push((address.clone(), format!("{new}{deposed}")));
                }
            }
        }
        // Every instance of a resource, keys kept.
        (Some(resource), Some(target)) => {
            if dest.key.is_some() {
                return Err(OpError::Message(format!("cannot move the whole resource {from} to one instance {to}")));
            }
            let from_module = exact_module(&source, "the source")?;
            let to_module = exact_module(&dest, "the destination")?;
            for (address, addr, deposed) in &in_state {
                if addr.module == from_module && &addr.resource == resource {
                    let new = InstanceAddr { module: to_module.clone(), resource: target.clone(), key: addr.key.clone() };
                    moves.push((address.clone(), format!("{new}{deposed}")));
                }
            }
        }
        // Everything in a module instance, nested modules included.
        (None, None) => {
            let from_module = exact_module(&source, "the source")?;
            let to_module = exact_module(&dest, "the destination")?;
            for (address, addr, deposed) in &in_state {
                if addr.module.0.starts_with(&from_module.0) {
                    let mut path = to_module.0.clone();
                    path.extend(addr.module.0[from_module.0.len()..].iter().cloned());
                    let new = InstanceAddr { module: ModuleInstance(path), resource: addr.resource.clone(), key: addr.key.clone() };
                    moves.push((address.clone(), format!("{new}{deposed}")));
                }
            }
        }
        _ => return Err(OpError::Message(format!("cannot move {from} to {to}: both must be resources, or both modules"))),
    }
    if moves.is_empty() {
        return Err(OpError::Message(format!("cannot move {from}: it does not match anything in the state")));
    }
    if let (Some(a), Some(b)) = (&source.resource, &dest.resource) {
        if a.type_name != b.type_name || a.mode != b.mode {
            return Err(OpError::Message(format!("cannot move a {} to a {}", a.type_name, b.type_name)));
        }
    }
    Ok(moves)
}
