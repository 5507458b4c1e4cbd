//! `strata console`: expressions evaluated against the configuration and
//! the current state.

use super::*;

/// `strata console`: expressions evaluated against the configuration and the
/// current state, as `terraform console` does.
pub struct Console {
    loaded: Loaded,
    instances: HashMap<crate::addr::InstanceAddr, Value>,
    expansions: HashMap<(crate::addr::ModuleInstance, crate::addr::ResourceAddr), plan::Expansion>,
    calls: plan::Calls,
}

impl Console {
    pub fn open(ws: &Workspace, vars: &[VarArg]) -> OpResult<Console> {
        let loaded = load(ws, vars)?;
        let state = ws.store.snapshot()?;
        let mut instances = HashMap::new();
        let mut keys: BTreeMap<(crate::addr::ModuleInstance, crate::addr::ResourceAddr), Vec<crate::addr::InstanceKey>> = BTreeMap::new();
        let mut call_keys: BTreeMap<(crate::addr::ModuleInstance, String), BTreeSet<crate::addr::InstanceKey>> = BTreeMap::new();
        for (address, record) in &state.instances {
            let Ok(addr) = crate::addr::parse_instance(address) else { continue };
            let mut module = addr.module.clone();
            while let Some((parent, name, key)) = module.parent() {
                call_keys.entry((parent.clone(), name.to_owned())).or_default().insert(key.clone());
                module = parent;
            }
            keys.entry((addr.module.clone(), addr.resource.clone())).or_default().push(addr.key.clone());
            instances.insert(addr, record.attributes.clone());
        }
        let expansion = |keys: Vec<crate::addr::InstanceKey>| match keys.first() {
            Some(crate::addr::InstanceKey::Index(_)) => plan::Expansion::Count(keys.len() as i64),
            Some(crate::addr::InstanceKey::Key(_)) => plan::Expansion::ForEach(
                keys.into_iter().filter_map(|k| if let crate::addr::InstanceKey::Key(k) = k { Some(k) } else { None }).collect(),
            ),
            _ => plan::Expansion::Single,
        };
        let expansions = keys.into_iter().map(|(k, v)| (k, expansion(v))).collect();
        let calls = call_keys
            .into_iter()
            .map(|(k, v)| (k, plan::CallExpansion { expansion: expansion(v.into_iter().collect()), each: BTreeMap::new() }))
            .collect();
        Ok(Console { loaded, instances, expansions, calls })
    }

    /// Evaluates one expression in the root module.
    pub fn eval(&self, source: &str) -> Result<Value, String> {
        let expr = crate::config::parse::parse_expr(source).map_err(|e| format!("syntax error: {}", e.message))?;
        let world = plan::World::new(&self.loaded.config, &self.loaded.variables, &self.instances, &self.expansions, &self.calls);
        config::eval::eval(&expr, &config::eval::Scope::new(&world)).map_err(|e| e.message)
    }
}
