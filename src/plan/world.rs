//! Name resolution over planned (or applied) instance values: the
//! [`Resolver`] the planner and the applier evaluate expressions with.

use crate::addr::{InstanceAddr, InstanceKey, ResourceAddr};
use crate::config::eval::{eval, Resolver, Scope};
use crate::config::Config;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use strata_provider::Value;

/// How a resource block expanded into instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Expansion {
    Single,
    Count(i64),
    ForEach(Vec<String>),
}

impl Expansion {
    pub fn keys(&self) -> Vec<InstanceKey> {
        match self {
            Expansion::Single => vec![InstanceKey::None],
            Expansion::Count(n) => (0..*n).map(InstanceKey::Index).collect(),
            Expansion::ForEach(keys) => keys.iter().cloned().map(InstanceKey::Key).collect(),
        }
    }
}

/// Values of variables, locals and resource instances.
pub struct World<'a> {
    config: &'a Config,
    variables: &'a BTreeMap<String, Value>,
    instances: &'a HashMap<InstanceAddr, Value>,
    expansions: &'a HashMap<ResourceAddr, Expansion>,
    /// Locals are evaluated on first use and remembered; the analysis has
    /// already rejected cycles, so the recursion ends.
    locals: RefCell<HashMap<String, Value>>,
    /// Evaluating during apply: `timestamp()` and friends become known.
    apply: bool,
}

impl<'a> World<'a> {
    pub fn new(
        config: &'a Config,
        variables: &'a BTreeMap<String, Value>,
        instances: &'a HashMap<InstanceAddr, Value>,
        expansions: &'a HashMap<ResourceAddr, Expansion>,
    ) -> World<'a> {
        World { config, variables, instances, expansions, locals: RefCell::new(HashMap::new()), apply: false }
    }

    /// The same, for evaluating during apply.
    pub fn applying(mut self) -> World<'a> {
        self.apply = true;
        self
    }
}

impl Resolver for World<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        self.variables.get(name).cloned()
    }

    fn local(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.locals.borrow().get(name) {
            return Ok(v.clone());
        }
        let local = self.config.locals.get(name).ok_or_else(|| format!("undeclared local value local.{name}"))?;
        let v = eval(&local.expr.expr, &Scope::new(self)).map_err(|e| format!("in local.{name}: {}", e.message))?;
        self.locals.borrow_mut().insert(name.to_owned(), v.clone());
        Ok(v)
    }

    fn resource(&self, addr: &ResourceAddr, key: Option<&InstanceKey>) -> Result<Value, String> {
        let Some(expansion) = self.expansions.get(addr) else {
            // Not planned (an earlier error, or excluded): nothing is known.
            return Ok(Value::Unknown);
        };
        let instance = |k: InstanceKey| self.instances.get(&addr.instance(k)).cloned().unwrap_or(Value::Unknown);
        match (expansion, key) {
            (Expansion::Single, None) => Ok(instance(InstanceKey::None)),
            (Expansion::Count(_), None) => Ok(Value::List(expansion.keys().into_iter().map(instance).collect())),
            (Expansion::ForEach(keys), None) => Ok(Value::Map(
                keys.iter().map(|k| (k.clone(), instance(InstanceKey::Key(k.clone())))).collect(),
            )),
            (Expansion::Single, Some(k)) => Err(format!("{addr} does not set count or for_each, so it cannot be indexed with {k}")),
            (Expansion::Count(n), Some(InstanceKey::Index(i))) if *i >= 0 && i < n => Ok(instance(InstanceKey::Index(*i))),
            (Expansion::Count(n), Some(k)) => Err(format!("{addr}{k} does not exist: {addr} has count = {n}")),
            (Expansion::ForEach(keys), Some(InstanceKey::Key(k))) if keys.contains(k) => Ok(instance(InstanceKey::Key(k.clone()))),
            (Expansion::ForEach(_), Some(k)) => Err(format!("{addr}{k} does not exist in its for_each")),
        }
    }

    fn functions(&self) -> crate::config::functions::FunctionContext {
        crate::config::functions::FunctionContext { base_dir: self.config.dir.clone(), apply: self.apply }
    }

    fn path(&self, name: &str) -> Option<Value> {
        match name {
            "module" | "root" => Some(Value::from(self.config.dir.display().to_string())),
            "cwd" => std::env::current_dir().ok().map(|d| Value::from(d.display().to_string())),
            _ => None,
        }
    }
}
