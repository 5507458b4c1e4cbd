//! Operations: what the commands do, composed from the layers below. This is
//! the only engine layer that touches the world (files, state store,
//! providers); commands are thin wrappers over these functions.

use crate::apply::{self, ApplyContext, ApplyReport, Event, Journal};
use crate::config::vars::{self, VarArg};
use crate::config::{self, Config, Diagnostics, Sources};
use crate::graph::Analysis;
use crate::plan::{self, Action, Drift, Plan, PlanInput, PlanMode, PlanOptions, Schemas};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strata_provider::{Instance, Provider, ProviderFactory, Value};
use strata_state::{InstanceRecord, LocalStore, LockInfo, Operation, StateError, StateStore, Write};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Why an operation failed.
#[derive(Debug)]
pub enum OpError {
    /// Problems in the configuration, with the sources to render them.
    Config(Box<Sources>, Diagnostics),
    State(StateError),
    Message(String),
}

impl From<StateError> for OpError {
    fn from(e: StateError) -> OpError {
        OpError::State(e)
    }
}

impl From<String> for OpError {
    fn from(e: String) -> OpError {
        OpError::Message(e)
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// A working directory: its configuration files and its state.
pub struct Workspace {
    pub dir: PathBuf,
    pub store: Arc<dyn StateStore>,
    factories: Vec<Arc<dyn ProviderFactory>>,
}

impl Workspace {
    /// The workspace in `dir`, with state in `.strata/` (or the local
    /// backend's `path`).
    pub fn open(dir: &Path) -> Workspace {
        // `terraform { backend "local" { path = "..." } }` moves the state.
        let (config, _) = Config::load(dir);
        let state_dir = match config.backend.and_then(|b| b.path) {
            Some(path) => dir.join(path),
            None => dir.join(".strata"),
        };
        Workspace {
            dir: dir.to_owned(),
            store: Arc::new(LocalStore::new(&state_dir)),
            factories: providers(),
        }
    }

    pub fn schemas(&self) -> Schemas {
        Schemas(self.factories.iter().map(|f| (f.name().to_owned(), f.schema())).collect())
    }

    fn factory(&self, name: &str) -> Option<&Arc<dyn ProviderFactory>> {
        self.factories.iter().find(|f| f.name() == name)
    }
}

/// Every provider this build of Strata knows.
fn providers() -> Vec<Arc<dyn ProviderFactory>> {
    let mut all = strata_provider_builtin::factories();
    all.push(Arc::new(strata_provider_kvm::KvmFactory));
    all.push(Arc::new(strata_provider_ovs::OvsFactory));
    all
}

/// A configuration loaded, checked and with its variables resolved.
pub struct Loaded {
    pub config: Arc<Config>,
    pub analysis: Analysis,
    pub variables: BTreeMap<String, Value>,
    pub schemas: Schemas,
    /// Warnings (errors make loading fail).
    pub warnings: Diagnostics,
}

/// Loads and validates the configuration with the given variables.
pub fn load(ws: &Workspace, var_args: &[VarArg]) -> OpResult<Loaded> {
    let (mut config, mut diags) = Config::load(&ws.dir);
    let schemas = ws.schemas();
    let (analysis, more) = plan::validate(&config, &schemas);
    diags.extend(more);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (variables, more) = vars::resolve(&mut config, var_args, &env);
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(config.sources), diags));
    }
    Ok(Loaded { config: Arc::new(config), analysis, variables, schemas, warnings: diags })
}

/// `strata validate`: every problem at once, without touching state.
pub fn validate(ws: &Workspace) -> OpResult<Diagnostics> {
    let (config, mut diags) = Config::load(&ws.dir);
    let (_, more) = plan::validate(&config, &ws.schemas());
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(config.sources), diags));
    }
    Ok(diags)
}

/// The modules a configuration calls, resolved from their local sources:
/// (address, directory).
pub fn modules(ws: &Workspace) -> Vec<(String, PathBuf)> {
    let (config, _) = Config::load(&ws.dir);
    config
        .modules()
        .into_iter()
        .skip(1)
        .map(|(path, c)| (path.iter().map(|m| format!("module.{m}")).collect::<Vec<_>>().join("."), c.dir.clone()))
        .collect()
}

/// Holds the state lock for the lifetime of the guard.
pub struct LockGuard {
    store: Arc<dyn StateStore>,
    info: LockInfo,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.store.unlock(&self.info);
    }
}

/// Takes the state lock; returns a warning if a dead holder's lock was broken.
pub fn lock(ws: &Workspace, operation: &str) -> OpResult<(LockGuard, Option<String>)> {
    let info = LockInfo::for_this_process(operation);
    let broken = ws.store.lock(&info)?;
    let warning = broken.map(|b| format!("broke a stale state lock left by a process that no longer runs: {b}"));
    Ok((LockGuard { store: ws.store.clone(), info }, warning))
}

/// Configures one provider instance per configuration address that any
/// resource, state record or pending intent uses.
pub async fn configure_providers(
    ws: &Workspace,
    loaded: &Loaded,
    extra: impl IntoIterator<Item = String>,
) -> OpResult<HashMap<String, Arc<dyn Provider>>> {
    let mut wanted: BTreeSet<String> = loaded
        .config
        .modules()
        .into_iter()
        .flat_map(|(_, c)| c.resources.values().map(|r| r.provider_config_addr()).collect::<Vec<_>>())
        .collect();
    wanted.extend(loaded.config.providers.iter().map(|p| p.config_addr()));
    wanted.extend(extra);
    let mut out = HashMap::new();
    for addr in wanted {
        let name = addr.split('.').next().unwrap_or(&addr).to_owned();
        let factory = ws.factory(&name).ok_or_else(|| format!("unknown provider {name:?} (used by {addr})"))?;
        let provider = factory.instantiate();
        let schema = factory.schema();
        let config_value = match loaded.config.provider_block(&addr) {
            Some(block) => {
                let world_instances = HashMap::new();
                let expansions = HashMap::new();
                let calls = HashMap::new();
                let names = plan::World::new(&loaded.config, &loaded.variables, &world_instances, &expansions, &calls);
                let scope = config::eval::Scope::new(&names);
                let mut diags = Diagnostics::default();
                let v = plan::eval_body(&block.body, &schema.provider, &scope, &mut diags);
                if diags.has_errors() {
                    return Err(OpError::Config(Box::new(loaded.config.sources.clone()), diags));
                }
                v
            }
            None => Value::Map(BTreeMap::new()),
        };
        provider
            .configure(&config_value.deep_unmark())
            .await
            .map_err(|e| format!("configuring provider {addr}: {e}"))?;
        out.insert(addr, provider);
    }
    Ok(out)
}

/// Resolves the intents a crashed apply left pending, by identity. Returns a
/// line per intent saying what was done.
pub async fn reconcile(ws: &Workspace, providers: &HashMap<String, Arc<dyn Provider>>) -> OpResult<Vec<String>> {
    let pending = ws.store.pending_intents()?;
    let mut report = Vec::new();
    let current = if pending.is_empty() { return Ok(report) } else { ws.store.snapshot()? };
    for (seq, intent) in pending {
        let provider = providers
            .get(&intent.provider)
            .ok_or_else(|| format!("cannot reconcile {}: provider {} is not configured", intent.address, intent.provider))?;
        let planned = intent.planned.clone().unwrap_or_default().deep_unmark();
        let found = provider
            .find_by_identity(&intent.type_name, intent.id, &planned)
            .await
            .map_err(|e| format!("reconciling {}: {e}", intent.address))?;
        let mut writes = Vec::new();
        let record = |attributes: Value| InstanceRecord {
            address: intent.address.clone(),
            id: intent.id,
            type_name: intent.type_name.clone(),
            provider: intent.provider.clone(),
            attributes,
            dependencies: intent.dependencies.clone(),
            create_before_destroy: intent.create_before_destroy,
        };
        let line = match (intent.operation, found) {
            (Operation::Create, Some(state)) => {
                if let Some(old) = current.instances.get(&intent.address).filter(|old| old.id != intent.id) {
                    // A create_before_destroy replacement was in flight.
                    let deposed = apply::deposed_key(&old.address, old.id);
                    writes.push(Write::PutInstance(InstanceRecord { address: deposed, ..old.clone() }));
                }
                writes.push(Write::PutInstance(record(state)));
                format!("adopted {} ({}), created by an interrupted apply", intent.address, intent.id)
            }
            (Operation::Create, None) => format!("{} was not created by the interrupted apply; nothing to adopt", intent.address),
            (Operation::Update, Some(state)) => {
                writes.push(Write::PutInstance(InstanceRecord {
                    address: intent.prior.as_ref().map(|p| p.address.clone()).unwrap_or(intent.address.clone()),
                    ..record(state)
                }));
                format!("refreshed {} after an interrupted update", intent.address)
            }
            (Operation::Update, None) | (Operation::Delete, None) => {
                writes.push(Write::RemoveInstance { address: intent.address.clone() });
                format!("{} no longer exists; removed from state", intent.address)
            }
            (Operation::Delete, Some(_)) => format!("{} still exists after an interrupted delete; it stays in state", intent.address),
            (op, _) => format!("{} had an interrupted {op:?}", intent.address),
        };
        writes.push(Write::Resolve { seq });
        ws.store.commit(writes)?;
        report.push(line);
    }
    Ok(report)
}

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
        let results = provider.read(&type_name, &instances).await.map_err(|e| format!("refreshing {type_name}: {e}"))?;
        for (record, now) in records.iter().zip(results) {
            match now {
                Some(now) if now == record.attributes.clone().deep_unmark() => {}
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

pub struct PlanRequest {
    pub vars: Vec<VarArg>,
    pub options: PlanOptions,
    pub refresh: bool,
}

/// The result of planning, with what it took to make it.
pub struct Planned {
    pub plan: Plan,
    pub loaded: Loaded,
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub state: strata_state::Snapshot,
    pub reconciled: Vec<String>,
    /// Warnings of planning (failed `check` assertions...).
    pub warnings: Diagnostics,
}

/// Reconciles, refreshes and plans. The caller holds the lock.
pub async fn plan(ws: &Workspace, req: &PlanRequest) -> OpResult<Planned> {
    let loaded = load(ws, &req.vars)?;
    let prior = ws.store.snapshot()?;
    let extra: Vec<String> = prior
        .instances
        .values()
        .map(|r| r.provider.clone())
        .chain(ws.store.pending_intents()?.into_iter().map(|(_, i)| i.provider))
        .collect();
    let providers = configure_providers(ws, &loaded, extra).await?;
    let reconciled = reconcile(ws, &providers).await?;
    let state = if reconciled.is_empty() { prior } else { ws.store.snapshot()? };
    let (state, drift, refreshed) = if req.refresh { refresh(&state, &providers).await? } else { (state, Vec::new(), BTreeMap::new()) };

    let mut state = state;
    let moved = plan::apply_moves(&loaded.config, &mut state);
    let importing = lookup_imports(&loaded, &providers, &mut state).await?;

    // Read data sources whose configuration is known, then plan again so
    // their values flow into dependents; repeat while new reads appear.
    let mut data: BTreeMap<String, Value> = BTreeMap::new();
    let (mut plan, warnings) = loop {
        let input = PlanInput {
            config: &loaded.config,
            analysis: &loaded.analysis,
            variables: &loaded.variables,
            state: &state,
            schemas: &loaded.schemas,
            options: &req.options,
            data: &data,
            drift: drift.clone(),
            refreshed: refreshed.clone(),
            moved: &moved,
            importing: &importing,
        };
        let (plan, mut diags) = plan::plan(input);
        validate_with_providers(&plan, &loaded, &providers, &mut diags);
        if diags.has_errors() {
            return Err(OpError::Config(Box::new(loaded.config.sources.clone()), diags));
        }
        let reads: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Read && !c.planned.as_ref().is_some_and(Value::contains_unknown))
            .collect();
        if reads.is_empty() || req.options.mode == PlanMode::Destroy {
            break (plan, diags);
        }
        for c in reads {
            let provider = providers.get(&c.provider).ok_or_else(|| format!("provider {} is not configured", c.provider))?;
            let config = c.planned.clone().unwrap_or_default().deep_unmark();
            let value = provider.read_data(&c.type_name, &config).await.map_err(|e| format!("reading {}: {e}", c.address))?;
            data.insert(c.address.clone(), value);
        }
    };
    refine_with_providers(&mut plan, &loaded.schemas, &providers).await?;
    Ok(Planned { plan, loaded, providers, state, reconciled, warnings })
}

/// Finds the objects `import` blocks name and puts them in the planning
/// state under fresh identities. Nothing is changed until apply.
async fn lookup_imports(
    loaded: &Loaded,
    providers: &HashMap<String, Arc<dyn Provider>>,
    state: &mut strata_state::Snapshot,
) -> OpResult<BTreeMap<String, String>> {
    let mut importing = BTreeMap::new();
    for import in &loaded.config.imports {
        let address = import.to.to_string();
        if state.instances.contains_key(&address) {
            continue; // Already managed: the block has done its work.
        }
        let resource = loaded.config.resource(&import.to.resource).ok_or_else(|| {
            OpError::Config(
                Box::new(loaded.config.sources.clone()),
                Diagnostics(vec![config::Diagnostic::error(
                    format!("import into {address}, which is not in the configuration"),
                    import.span.clone(),
                    "add a resource block for it",
                )]),
            )
        })?;
        let instances = HashMap::new();
        let expansions = HashMap::new();
        let calls = HashMap::new();
        let names = plan::World::new(&loaded.config, &loaded.variables, &instances, &expansions, &calls);
        let id = config::eval::eval(&import.id.expr, &config::eval::Scope::new(&names))
            .ok()
            .and_then(|v| v.to_template_string())
            .ok_or_else(|| format!("the id of the import into {address} must be a string known at plan time"))?;
        let provider_addr = resource.provider_config_addr();
        let provider = providers.get(&provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
        let found = provider
            .lookup(&import.to.resource.type_name, &id)
            .await
            .map_err(|e| format!("import into {address}: {e}"))?
            .ok_or_else(|| format!("import into {address}: no object with ID {id:?}"))?;
        state.instances.insert(
            address.clone(),
            InstanceRecord {
                address: address.clone(),
                id: found.id.unwrap_or_else(uuid::Uuid::new_v4),
                type_name: import.to.resource.type_name.clone(),
                provider: provider_addr,
                attributes: found.state,
                dependencies: Vec::new(),
                create_before_destroy: resource.lifecycle.create_before_destroy,
            },
        );
        importing.insert(address, id);
    }
    Ok(importing)
}

/// Provider-specific validation of every planned instance, reported at the
/// resource's block.
fn validate_with_providers(plan: &Plan, loaded: &Loaded, providers: &HashMap<String, Arc<dyn Provider>>, diags: &mut Diagnostics) {
    for change in &plan.changes {
        let (Some(planned), Some(provider)) = (&change.planned, providers.get(&change.provider)) else { continue };
        if !change.is_change() {
            continue;
        }
        for (attr, message) in provider.validate(&change.type_name, &planned.clone().deep_unmark()) {
            let span = crate::addr::parse_instance(&change.address)
                .ok()
                .and_then(|a| loaded.config.module(&a.module.static_path()).and_then(|c| c.resource(&a.resource)))
                .map(|r| r.body.attr(&attr).map(|a| a.span.clone()).unwrap_or(r.header.clone()))
                .unwrap_or_default();
            diags.push(config::Diagnostic::error(format!("{}: {message}", change.address), span, format!("invalid {attr}")));
        }
    }
}

/// Lets each provider refine its updates (e.g. a disk shrink is data-loss).
async fn refine_with_providers(plan: &mut Plan, schemas: &Schemas, providers: &HashMap<String, Arc<dyn Provider>>) -> OpResult<()> {
    for change in &mut plan.changes {
        if change.data || !matches!(change.action, Action::Create | Action::Update | Action::Replace) {
            continue;
        }
        let Some(planned) = change.planned.clone() else { continue };
        let provider_name = change.provider.split('.').next().unwrap_or_default().to_owned();
        let Some(schema) = schemas.resource(&provider_name, crate::addr::Mode::Managed, &change.type_name) else { continue };
        let Some(provider) = providers.get(&change.provider) else { continue };
        let prior_raw = change.prior.clone().map(Value::deep_unmark);
        let proposed_raw = planned.clone().deep_unmark();
        let response = provider
            .plan(strata_provider::PlanRequest { type_name: &change.type_name, prior: prior_raw.as_ref(), proposed: &proposed_raw })
            .await
            .map_err(|e| format!("planning {}: {e}", change.address))?;
        change.notes = response.notes;
        // The provider saw unmarked values; its planned values get the marks back.
        let refined_planned = response.planned.map(|p| plan::mark_result(p, &planned, schema));
        let (Some(prior), false) = (change.prior.clone(), change.reason.is_some() || change.action == Action::Create) else {
            if let Some(p) = refined_planned {
                change.planned = Some(p);
            }
            continue;
        };
        if response.disruptions.is_empty() && refined_planned.is_none() {
            continue;
        }
        let compare_to = if change.action == Action::Replace { plan::propose(&planned, Some(&prior), schema) } else { planned.clone() };
        let changed = plan::changed_attributes(&prior, &compare_to, schema);
        let was_replace = change.action == Action::Replace;
        plan::refine(change, schema, &changed, &response.disruptions);
        if was_replace && change.action != Action::Replace {
            // The provider can do it in place after all: keep the identity.
            if let Some(prior_id) = change.prior_id.take() {
                change.id = prior_id;
            }
        }
        if let Some(p) = refined_planned {
            change.planned = Some(p);
        }
    }
    Ok(())
}

/// Options of an apply.
pub struct ApplyOptions {
    pub parallelism: usize,
    pub rollback: bool,
    pub allow_data_loss: bool,
    pub cancel: CancellationToken,
    pub in_flight: Arc<Mutex<BTreeSet<String>>>,
}

/// Applies a plan made by [`plan`] (or loaded from a file and re-checked).
pub async fn apply(ws: &Workspace, planned: &Planned, opts: ApplyOptions, events: UnboundedSender<Event>) -> OpResult<ApplyReport> {
    let plan = &planned.plan;
    let data_loss: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.disruption == Some(strata_provider::Disruption::DataLoss))
        .map(|c| c.address.as_str())
        .collect();
    if !data_loss.is_empty() && !opts.allow_data_loss {
        return Err(OpError::Message(format!(
            "the plan destroys data ({}); re-run with --allow-data-loss to go ahead",
            data_loss.join(", ")
        )));
    }
    let current = ws.store.snapshot()?;
    if current.meta.lineage != plan.lineage || current.meta.serial != plan.serial {
        return Err(OpError::Message(format!(
            "the saved plan is stale: it was made from state version {} and the state is now at version {}; plan again",
            plan.serial, current.meta.serial
        )));
    }
    if plan.config_fingerprint != planned.loaded.config.fingerprint() {
        return Err(OpError::Message("the configuration changed since the plan was made; plan again".into()));
    }
    let operation = match plan.mode {
        PlanMode::Destroy => "destroy",
        PlanMode::RefreshOnly => "apply -refresh-only",
        PlanMode::Normal => "apply",
    };
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    ws.store.begin_version(operation, &user)?;
    // Drift found by refresh becomes state first: it is the truth.
    let mut writes = Vec::new();
    for (address, value) in &plan.refreshed {
        match (value, planned.state.instances.get(address)) {
            (Some(_), Some(record)) => writes.push(Write::PutInstance(record.clone())),
            (None, _) => writes.push(Write::RemoveInstance { address: address.clone() }),
            _ => {}
        }
    }
    // Renames from `moved` blocks, then adoptions from `import` blocks.
    for change in plan.changes.iter().filter(|c| c.moved_from.is_some()) {
        let from = change.moved_from.clone().expect("filtered on moved_from");
        if let Some(record) = planned.state.instances.get(&change.address) {
            writes.push(Write::RemoveInstance { address: from });
            writes.push(Write::PutInstance(record.clone()));
        }
    }
    ws.store.commit(writes)?;
    for change in plan.changes.iter().filter(|c| c.importing.is_some()) {
        let import_id = change.importing.as_deref().expect("filtered on importing");
        let provider = planned.providers.get(&change.provider).ok_or_else(|| format!("provider {} is not configured", change.provider))?;
        let imported = provider
            .import(&change.type_name, change.id, import_id)
            .await
            .map_err(|e| format!("importing {}: {e}", change.address))?;
        let record = InstanceRecord {
            address: change.address.clone(),
            id: change.id,
            type_name: change.type_name.clone(),
            provider: change.provider.clone(),
            attributes: imported.state,
            dependencies: change.dependencies.clone(),
            create_before_destroy: change.create_before_destroy,
        };
        ws.store.commit(vec![Write::PutInstance(record)])?;
    }
    if plan.mode == PlanMode::RefreshOnly {
        return Ok(ApplyReport::default());
    }
    let journal = Journal::start(ws.store.clone());
    let cx = ApplyContext {
        config: planned.loaded.config.clone(),
        schemas: planned.loaded.schemas.clone(),
        providers: planned.providers.clone(),
        store: ws.store.clone(),
        journal,
        events,
        parallelism: opts.parallelism,
        rollback: opts.rollback,
        cancel: opts.cancel,
        in_flight: opts.in_flight,
    };
    Ok(apply::apply(plan, &planned.state, cx).await)
}

/// Re-plans from a saved plan file's variables and checks it still holds.
pub async fn load_saved_plan(ws: &Workspace, path: &Path) -> OpResult<Planned> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read plan {}: {e}", path.display()))?;
    let saved: Plan = serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a Strata plan: {e}", path.display()))?;
    if saved.format_version != plan::PLAN_FORMAT_VERSION {
        return Err(OpError::Message(format!("plan format {} is not supported", saved.format_version)));
    }
    let (mut config, mut diags) = Config::load(&ws.dir);
    let schemas = ws.schemas();
    let (analysis, more) = plan::validate(&config, &schemas);
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(std::mem::take(&mut config.sources)), diags));
    }
    let loaded = Loaded { config: Arc::new(config), analysis, variables: saved.variables.clone(), schemas, warnings: diags };
    let state = ws.store.snapshot()?;
    let extra: Vec<String> = state.instances.values().map(|r| r.provider.clone()).collect();
    let providers = configure_providers(ws, &loaded, extra).await?;
    Ok(Planned { plan: saved, loaded, providers, state, reconciled: Vec::new(), warnings: Diagnostics::default() })
}

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

/// Writes a plan file (mode 0600: it holds variable values).
pub fn save_plan(plan: &Plan, path: &Path) -> OpResult<()> {
    let bytes = serde_json::to_vec_pretty(plan).map_err(|e| format!("encoding plan: {e}"))?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&tmp).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

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
        let expr = hcl::edit::parser::parse_expr(source).map_err(|e| format!("syntax error: {}", e.message()))?;
        let world = plan::World::new(&self.loaded.config, &self.loaded.variables, &self.instances, &self.expansions, &self.calls);
        config::eval::eval(&expr, &config::eval::Scope::new(&world)).map_err(|e| e.message)
    }
}
