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
    let providers = configure_providers(ws, &loaded, []).await?;
    let provider_addr = resource.provider_config_addr();
    let provider = providers.get(&provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
    let id = uuid::Uuid::new_v4();
    let imported = provider.import(&addr.resource.type_name, id, import_id).await.map_err(|e| format!("importing {address}: {e}"))?;
    let record = InstanceRecord {
        address: address.to_owned(),
        id: imported.id.unwrap_or(id),
        type_name: addr.resource.type_name.clone(),
        provider: provider_addr,
        attributes: imported.state,
        dependencies: Vec::new(),
        create_before_destroy: resource.lifecycle.create_before_destroy,
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version("import", &user)?;
    ws.store.commit(vec![Write::PutInstance(record.clone())])?;
    Ok(record)
}
