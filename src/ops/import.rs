//! `strata import ADDR ID`: adopting an existing object.

use super::*;

/// `strata import ADDR ID`: adopts an existing object into state.
pub async fn import(ws: &Workspace, vars: &[VarArg], address: &str, import_id: &str) -> OpResult<InstanceRecord> {
    let loaded = load(ws, vars)?;
    let addr = crate::addr::parse_instance(address)?;
    let resource = loaded
        .config
        .resource(&addr.resource)
        .ok_or_else(|| format!("{} is not in the configuration; add a resource block for it first", addr.resource))?;
    let state = ws.store.snapshot()?;
    if state.instances.contains_key(address) {
        return Err(OpError::Message(format!("{address} is already managed by Strata")));
    }
    let providers = configure_providers(ws, &loaded, state.instances.values().map(|r| r.provider.clone())).await?;
    let reconciled = reconcile(ws, &providers, &loaded.schemas).await?;
    if !reconciled.is_empty() {
        return Err(OpError::Message(format!("an interrupted apply was recovered first:\n{}\nrun the import again", reconciled.join("\n"))));
    }
    let provider_addr = resource.provider_config_addr();
    let provider = providers.get(&provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
    let id = uuid::Uuid::new_v4();
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version("import", &user)?;
    // Journaled like every change: a crash after the provider re-tagged the
    // object leaves an intent that recovery resolves by the new identity.
    let intent = strata_state::Intent {
        apply_id: uuid::Uuid::new_v4(),
        operation: Operation::Import,
        address: address.to_owned(),
        id,
        type_name: addr.resource.type_name.clone(),
        provider: provider_addr.clone(),
        planned: Some(Value::object([("import_id", Value::from(import_id))])),
        prior: None,
        rollback: false,
        dependencies: Vec::new(),
        create_before_destroy: resource.lifecycle.create_before_destroy,
        undo: None,
    };
    let seq = ws.store.next_seq(1)?;
    ws.store.commit(vec![Write::Intent { seq, intent }])?;
    let imported = match provider.import(&addr.resource.type_name, id, import_id).await {
        Ok(imported) => imported,
        Err(e) => {
            ws.store.commit(vec![Write::Resolve { seq }])?;
            return Err(OpError::Message(format!("importing {address}: {e}")));
        }
    };
    let schema = loaded.schemas.resource(provider_addr.split('.').next().unwrap_or_default(), crate::addr::Mode::Managed, &addr.resource.type_name);
    let record = InstanceRecord {
        address: address.to_owned(),
        id: imported.id.unwrap_or(id),
        type_name: addr.resource.type_name.clone(),
        provider: provider_addr,
        attributes: match schema {
            Some(schema) => plan::mark_sensitive(imported.state, schema),
            None => imported.state,
        },
        dependencies: Vec::new(),
        create_before_destroy: resource.lifecycle.create_before_destroy,
    };
    ws.store.commit(vec![Write::PutInstance(record.clone()), Write::Resolve { seq }])?;
    Ok(record)
}
