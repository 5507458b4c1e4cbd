//! Name resolution over planned (or applied) instance values: the
//! [`Resolver`] the planner and the applier evaluate expressions with.
//!
//! A [`World`] sees the names of one module instance. Module variables are
//! evaluated lazily from the calling module's arguments, and module outputs
//! from the child's output expressions, so the same resolver serves plan time
//! (planned values, unknowns) and apply time (real values as they arrive).

use crate::addr::{InstanceAddr, InstanceKey, ModuleInstance, ResourceAddr};
use crate::config::eval::{eval, read_path, Resolver, Scope};
use crate::config::types::convert;
use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use strata_provider::Value;

/// How a resource block or a module call expanded into instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The expansion of one module call in one module instance, with the
/// `each.value` of every `for_each` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallExpansion {
    pub expansion: Expansion,
    pub each: BTreeMap<String, Value>,
}

/// Module call expansions, by calling module instance and call name.
pub type Calls = HashMap<(ModuleInstance, String), CallExpansion>;

/// The locals of one module instance evaluated so far, each with its error.
type LocalValues = HashMap<String, Result<Value, String>>;

/// Locals and module variables of every module instance, evaluated once for
/// a whole plan instead of once per resource instance that names them.
///
/// Sound because the planner walks blocks in dependency order: a local (or a
/// module variable) is first evaluated by a block that depends on it, after
/// everything it depends on has been planned, and nothing it reads changes
/// afterwards. Apply evaluates with values that arrive as it goes, so it
/// shares only what reads none of them ([`World::remembering_stable`]).
#[derive(Debug, Default)]
pub struct Memo {
    locals: RefCell<HashMap<ModuleInstance, LocalValues>>,
    module_vars: RefCell<HashMap<ModuleInstance, HashMap<String, Value>>>,
}

/// Values of variables, locals, resource instances and module outputs, as
/// seen from one module instance. `H` hashes the maps of planned instances
/// and expansions: the planner's own use a faster hash than the standard
/// one (every reference to an instance looks up both).
pub struct World<'a, H = RandomState> {
    root: &'a Config,
    config: &'a Config,
    module: ModuleInstance,
    variables: &'a BTreeMap<String, Value>,
    instances: &'a HashMap<InstanceAddr, Value, H>,
    expansions: &'a HashMap<(ModuleInstance, ResourceAddr), Expansion, H>,
    calls: &'a Calls,
    /// Locals and module variables are evaluated on first use and
    /// remembered (locals with their error); the analysis has already
    /// rejected cycles.
    locals: RefCell<HashMap<String, Result<Value, String>>>,
    module_vars: RefCell<HashMap<String, Value>>,
    /// Shared with every other view of the same plan, when there is one.
    memo: Option<&'a Memo>,
    /// The memo holds only the locals and module variables whose value
    /// read nothing that changes as apply goes (see [`World::remembering_stable`]).
    stable_only: bool,
    /// Whether what is being evaluated has read something that changes as
    /// apply goes: an instance, a module's outputs, a function's result
    /// (`uuid()` differs per call), or a local or module variable that did.
    read_changing: Cell<bool>,
    /// Evaluating during apply: `timestamp()` and friends become known.
    apply: bool,
}

impl<'a, H: BuildHasher> World<'a, H> {
    /// The root module's view.
    pub fn new(
        root: &'a Config,
        variables: &'a BTreeMap<String, Value>,
        instances: &'a HashMap<InstanceAddr, Value, H>,
        expansions: &'a HashMap<(ModuleInstance, ResourceAddr), Expansion, H>,
        calls: &'a Calls,
    ) -> World<'a, H> {
        World {
            root,
            config: root,
            module: ModuleInstance::root(),
            variables,
            instances,
            expansions,
            calls,
            locals: RefCell::new(HashMap::new()),
            module_vars: RefCell::new(HashMap::new()),
            memo: None,
            stable_only: false,
            read_changing: Cell::new(false),
            apply: false,
        }
    }

    /// The same, remembering locals and module variables in `memo` for every
    /// view derived from this one (see [`Memo`]).
    pub fn remembering(mut self, memo: &'a Memo) -> World<'a, H> {
        self.memo = Some(memo);
        self
    }

    /// Apply time, with a memo of what stays put: locals and module
    /// variables that read no instance, no module output and call no
    /// function are evaluated once for the whole apply instead of once per
    /// instance that names them (a `local.tiers` object, a module's
    /// `var.name`). Sound because nothing else they can read changes while
    /// the apply runs: variables, `path`, `terraform.workspace`, the
    /// module calls' `count.index` and `each` were fixed by the plan. The
    /// others are evaluated per view, as before.
    pub fn remembering_stable(mut self, memo: &'a Memo) -> World<'a, H> {
        self.memo = Some(memo);
        self.stable_only = true;
        self
    }

    /// A value found in this view's own cache rather than the shared memo:
    /// with `stable_only`, one that read something changing.
    fn found_in_view<T>(&self, found: Option<T>) -> Option<T> {
        if found.is_some() && self.stable_only {
            self.read_changing.set(true);
        }
        found
    }

    fn cached_local(&self, name: &str) -> Option<Result<Value, String>> {
        if let Some(memo) = self.memo {
            let shared = memo.locals.borrow().get(&self.module).and_then(|m| m.get(name)).cloned();
            if shared.is_some() || !self.stable_only {
                return shared;
            }
        }
        self.found_in_view(self.locals.borrow().get(name).cloned())
    }

    fn is_local_cached(&self, name: &str) -> bool {
        let shared = self.memo.is_some_and(|memo| memo.locals.borrow().get(&self.module).is_some_and(|m| m.contains_key(name)));
        shared || ((self.memo.is_none() || self.stable_only) && self.locals.borrow().contains_key(name))
    }

    /// Remembers a local; `stable`: its evaluation read nothing changing.
    fn remember_local(&self, name: &str, value: Result<Value, String>, stable: bool) {
        match self.memo {
            Some(memo) if stable || !self.stable_only => {
                memo.locals.borrow_mut().entry(self.module.clone()).or_default().insert(name.to_owned(), value);
            }
            _ => {
                self.locals.borrow_mut().insert(name.to_owned(), value);
            }
        }
    }

    fn cached_module_var(&self, name: &str) -> Option<Value> {
        if let Some(memo) = self.memo {
            let shared = memo.module_vars.borrow().get(&self.module).and_then(|m| m.get(name)).cloned();
            if shared.is_some() || !self.stable_only {
                return shared;
            }
        }
        self.found_in_view(self.module_vars.borrow().get(name).cloned())
    }

    fn remember_module_var(&self, name: &str, value: Value, stable: bool) {
        match self.memo {
            Some(memo) if stable || !self.stable_only => {
                memo.module_vars.borrow_mut().entry(self.module.clone()).or_default().insert(name.to_owned(), value);
            }
            _ => {
                self.module_vars.borrow_mut().insert(name.to_owned(), value);
            }
        }
    }

    /// Notes that the evaluation under way read something changing.
    fn reads_changing(&self) {
        self.read_changing.set(true);
    }

    /// The same, for evaluating during apply.
    pub fn applying(mut self) -> World<'a, H> {
        self.apply = true;
        self
    }

    /// The view of another module instance. `None` if its configuration is
    /// not loaded.
    pub fn at(&self, module: &ModuleInstance) -> Option<World<'a, H>> {
        let config = self.root.module(&module.static_path())?;
        Some(World {
            config,
            module: module.clone(),
            locals: RefCell::new(HashMap::new()),
            module_vars: RefCell::new(HashMap::new()),
            read_changing: Cell::new(false),
            ..*self
        })
    }

    pub fn module_instance(&self) -> &ModuleInstance {
        &self.module
    }

    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// `count.index` and `each` of the module call that made this instance.
    pub fn call_scope<'s>(&self, mut scope: Scope<'s>, call_owner: &ModuleInstance, name: &str, key: &InstanceKey) -> Scope<'s> {
        match key {
            InstanceKey::Index(i) => scope.count_index = Some(*i),
            InstanceKey::Key(k) => {
                let each = self.calls.get(&(call_owner.clone(), name.to_owned())).and_then(|c| c.each.get(k)).cloned();
                scope.each = Some((Value::from(k.as_str()), each.unwrap_or(Value::Unknown)));
            }
            InstanceKey::None => {}
        }
        scope
    }

    /// The value of a variable of a (non-root) module instance, from the
    /// calling module's argument or the variable's default.
    fn module_variable(&self, name: &str) -> Option<Value> {
        let decl = self.config.variables.get(name)?;
        if let Some(v) = self.cached_module_var(name) {
            return Some(v);
        }
        let (parent, call_name, key) = self.module.parent()?;
        let parent_world = self.at(&parent)?;
        let call = parent_world.config.module_calls.get(call_name)?;
        let value = match call.inputs.iter().find(|a| a.name == name) {
            Some(input) => {
                let scope = parent_world.call_scope(Scope::new(&parent_world), &parent, call_name, key);
                let value = eval(&input.expr.expr, &scope).unwrap_or(Value::Unknown);
                if parent_world.read_changing.get() {
                    self.reads_changing();
                }
                value
            }
            None => match &decl.default {
                Some(d) => crate::config::eval::constant(d).unwrap_or(Value::Unknown),
                None => Value::Null,
            },
        };
        let value = match &decl.ty {
            Some(ty) => convert(&value, ty).unwrap_or(Value::Unknown),
            None => value,
        };
        let value = if decl.sensitive { value.into_sensitive() } else { value };
        self.remember_module_var(name, value.clone(), !parent_world.read_changing.get());
        Some(value)
    }

    /// Evaluates one local and remembers the result. The error names the
    /// local where it happened, once: the locals that refer to it pass it on.
    fn evaluate_local(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.cached_local(name) {
            return v;
        }
        let local = &self.config.locals[name];
        let outer_read_changing = self.read_changing.replace(false);
        let v = eval(&local.expr.expr, &Scope::new(self)).map_err(|e| {
            if e.message.starts_with("in local.") {
                e.message
            } else {
                format!("in local.{name}: {}", e.message)
            }
        });
        let read_changing = self.read_changing.get();
        self.read_changing.set(outer_read_changing || read_changing);
        self.remember_local(name, v.clone(), !read_changing);
        v
    }

    /// The not yet evaluated locals `name` depends on, directly or not, each
    /// after everything it depends on (a depth-first post-order, walked with
    /// an explicit stack); `name` itself is not included.
    fn local_dependencies(&self, name: &str) -> Vec<String> {
        use crate::config::refs::{references, RefTarget};
        let mut order = Vec::new();
        let mut visited = std::collections::HashSet::new();
        // (local, whether its dependencies are already on the stack above it)
        let mut stack = vec![(name.to_owned(), false)];
        while let Some((local, expanded)) = stack.pop() {
            if expanded {
                if local != name {
                    order.push(local);
                }
                continue;
            }
            if !visited.insert(local.clone()) {
                continue;
            }
            stack.push((local.clone(), true));
            let Some(decl) = self.config.locals.get(&local) else { continue };
            for reference in references(&decl.expr.expr) {
                if let RefTarget::Local(dep) = reference.target {
                    if self.config.locals.contains_key(&dep) && !self.is_local_cached(&dep) && !visited.contains(&dep) {
                        stack.push((dep, false));
                    }
                }
            }
        }
        order
    }

    /// The outputs of one child module instance, as an object.
    fn outputs_of(&self, child: &ModuleInstance) -> Result<Value, String> {
        let Some(world) = self.at(child) else { return Ok(Value::Unknown) };
        let scope = Scope::new(&world);
        let mut out = BTreeMap::new();
        for o in world.config.outputs.values() {
            let v = eval(&o.value.expr, &scope).map_err(|e| format!("in output {:?} of {child}: {}", o.name, e.message))?;
            out.insert(o.name.clone(), if o.sensitive { v.into_sensitive() } else { v });
        }
        Ok(Value::Map(out.into()))
    }
}

impl<H: BuildHasher> World<'_, H> {
    /// One planned instance, borrowed, when `key` names it the way its block
    /// expanded (no key for a single instance); `None` leaves every other
    /// case, errors included, to [`Resolver::resource`].
    fn instance_ref(&self, addr: &ResourceAddr, key: Option<&InstanceKey>) -> Option<&Value> {
        self.reads_changing();
        let expansion = self.expansions.get(&(self.module.clone(), addr.clone()))?;
        let key = match (expansion, key) {
            (Expansion::Single, None) => InstanceKey::None,
            (Expansion::Count(_), Some(k @ InstanceKey::Index(_))) | (Expansion::ForEach(_), Some(k @ InstanceKey::Key(_))) => k.clone(),
            _ => return None,
        };
        // Planned instances are exactly the expansion's keys, so finding
        // one proves the key in range.
        self.instances.get(&InstanceAddr::in_module(&self.module, addr, key))
    }
}

impl<H: BuildHasher> Resolver for World<'_, H> {
    fn variable(&self, name: &str) -> Option<Value> {
        if self.module.is_root() {
            self.variables.get(name).cloned()
        } else {
            self.module_variable(name)
        }
    }

    fn local(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.cached_local(name) {
            return v;
        }
        if !self.config.locals.contains_key(name) {
            return Err(format!("undeclared local value local.{name}"));
        }
        // Dependencies first, deepest first, so that evaluating each local
        // finds the ones it names already computed: a chain of thousands of
        // locals would otherwise recurse once per link and overflow the stack.
        for dep in self.local_dependencies(name) {
            // An error is remembered and reported where the local is used.
            let _ = self.evaluate_local(&dep);
        }
        self.evaluate_local(name)
    }

    fn resource(&self, addr: &ResourceAddr, key: Option<&InstanceKey>) -> Result<Value, String> {
        self.reads_changing();
        if !self.config.resources.contains_key(addr) {
            return Err(format!("{addr} is not declared"));
        }
        let Some(expansion) = self.expansions.get(&(self.module.clone(), addr.clone())) else {
            // Not planned (an earlier error, or excluded): nothing is known.
            return Ok(Value::Unknown);
        };
        let instance = |k: InstanceKey| {
            self.instances.get(&InstanceAddr::in_module(&self.module, addr, k)).cloned().unwrap_or(Value::Unknown)
        };
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

    fn resource_path(&self, addr: &ResourceAddr, key: Option<&InstanceKey>, names: &[&str]) -> Result<(Value, usize), String> {
        match self.instance_ref(addr, key) {
            Some(value) => Ok(read_path(value, names)),
            None => self.resource(addr, key).map(|v| (v, 0)),
        }
    }

    fn module(&self, name: &str, key: Option<&InstanceKey>) -> Result<Value, String> {
        self.reads_changing();
        let Some(call) = self.calls.get(&(self.module.clone(), name.to_owned())) else {
            return if self.config.module_calls.contains_key(name) { Ok(Value::Unknown) } else { Err(format!("no module {name:?}")) };
        };
        let child = |k: InstanceKey| self.outputs_of(&self.module.child(name, k));
        match (&call.expansion, key) {
            (Expansion::Single, None) => child(InstanceKey::None),
            (Expansion::Count(_), None) => call.expansion.keys().into_iter().map(child).collect::<Result<_, _>>().map(Value::List),
            (Expansion::ForEach(keys), None) => keys
                .iter()
                .map(|k| child(InstanceKey::Key(k.clone())).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()
                .map(Value::Map),
            (_, Some(k)) if call.expansion.keys().contains(k) => child(k.clone()),
            (_, Some(k)) => Err(format!("module.{name}{k} does not exist")),
        }
    }

    fn functions(&self) -> crate::config::functions::FunctionContext {
        self.reads_changing();
        // Terraform resolves relative paths against the working directory,
        // which is the root module's (`file("${path.module}/x")` in a module).
        crate::config::functions::FunctionContext { base_dir: self.root.dir.clone(), apply: self.apply }
    }

    fn workspace(&self) -> Option<String> {
        self.root.workspace.clone()
    }

    fn path(&self, name: &str) -> Option<Value> {
        match name {
            "module" => Some(Value::from(relative_module_path(&self.root.dir, &self.config.dir))),
            "root" => Some(Value::from(".")),
            "cwd" => std::env::current_dir().ok().map(|d| Value::from(d.display().to_string())),
            _ => None,
        }
    }
}

/// `path.module` as Terraform gives it: the module's directory relative to
/// the root module's, cleaned lexically as Go's `filepath.Clean` does
/// (`.` for the root, `modules/x`, `../shared`). The filesystem functions
/// resolve relative paths against the root module's directory
/// (`FunctionContext::base_dir`), where the process also runs (after
/// `-chdir`), so the relative path names the same place for both.
pub(crate) fn relative_module_path(root: &std::path::Path, dir: &std::path::Path) -> String {
    use std::path::Component;
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let mut parts: Vec<String> = Vec::new();
    let absolute = rel.has_root();
    for c in rel.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir if parts.last().is_some_and(|p| p != "..") => {
                parts.pop();
            }
            Component::ParentDir if !absolute => parts.push("..".into()),
            Component::ParentDir | Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

#[cfg(test)]
mod path_tests {
    use super::relative_module_path;
    use std::path::Path;

    #[test]
    fn module_paths_are_relative_and_clean_as_in_terraform() {
        let root = Path::new("/work/env");
        assert_eq!(relative_module_path(root, root), ".");
        assert_eq!(relative_module_path(root, Path::new("/work/env/modules/x")), "modules/x");
        assert_eq!(relative_module_path(root, Path::new("/work/env/modules/a/../b")), "modules/b");
        assert_eq!(relative_module_path(root, Path::new("/work/env/../shared")), "../shared");
        assert_eq!(relative_module_path(Path::new("."), Path::new("./modules/x")), "modules/x");
        assert_eq!(relative_module_path(Path::new("."), Path::new(".")), ".");
    }
}

#[cfg(test)]
mod apply_memo_tests {
    use super::*;
    use crate::addr::parse_instance;

    #[test]
    fn apply_shares_only_the_locals_that_read_nothing_changing() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let source = r#"
locals {
  fixed  = { label = "web" }
  named  = "${local.fixed.label}-${strata_data.a.id}"
  called = upper(local.fixed.label)
}

resource "strata_data" "a" {
  input = "a"
}
"#;
        std::fs::write(dir.path().join("main.strata.hcl"), source).expect("write the configuration");
        let (config, diags) = Config::load(dir.path());
        assert!(!diags.iter().any(|d| d.is_error()), "{diags:?}");
        let a = parse_instance("strata_data.a").expect("an address");
        let expansions = HashMap::from([((a.module.clone(), a.resource.clone()), Expansion::Single)]);
        let (variables, calls, memo) = (BTreeMap::new(), Calls::default(), Memo::default());
        let planned = HashMap::from([(a.clone(), Value::object([("id", Value::Unknown)]))]);
        let created = HashMap::from([(a.clone(), Value::object([("id", Value::from("id-1"))]))]);
        let local = |instances: &HashMap<InstanceAddr, Value>, name: &str| {
            World::new(&config, &variables, instances, &expansions, &calls).applying().remembering_stable(&memo).local(name)
        };
        assert_eq!(local(&planned, "named"), Ok(Value::Unknown));
        assert_eq!(local(&planned, "called"), Ok(Value::from("WEB")));
        // The instance arrived: a local that names it sees it, one that
        // names none was kept from the first evaluation.
        assert_eq!(local(&created, "named"), Ok(Value::from("web-id-1")));
        assert_eq!(local(&created, "fixed"), Ok(Value::object([("label", Value::from("web"))])));
        let shared: Vec<String> = memo.locals.borrow()[&ModuleInstance::root()].keys().cloned().collect();
        assert_eq!(shared, vec!["fixed".to_owned()], "only the local that reads no instance and calls no function is shared");
    }
}
