//! Executing a plan: walking the instance graph on tokio with bounded
//! parallelism, journaling every provider call, and rolling back on failure.
//!
//! Phases:
//! 1. **main**: reads, creates, in-place updates and replacements, each node
//!    starting the moment its dependencies finish;
//! 2. **cleanup**: destroys (and the destroy half of `create_before_destroy`
//!    replacements), in reverse dependency order;
//! 3. on a failure in the main phase: **rollback** of this apply's completed
//!    operations in reverse order, unless `--no-rollback`.
//!
//! Invariant: every provider call is preceded by a durable [`Intent`] and
//! followed by one transaction that records its effect and resolves the
//! intent, so a crash at any instant leaves either a known object in state or
//! a pending intent that `ops::reconcile` resolves by identity.

mod journal;

pub use journal::Journal;

use crate::addr::{parse_instance, InstanceAddr, InstanceKey, ResourceAddr};
use crate::config::eval::Scope;
use crate::config::{Config, Diagnostics};
use crate::plan::{eval_body, mark_result, mark_sensitive, propose, Action, Expansion, Plan, ResourceChange, Schemas, World};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_provider::{Block, Provider, Value};
use strata_state::{InstanceRecord, Intent, Operation, StateStore, Write};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What the apply reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    Started { address: String, action: Action },
    Finished { address: String, action: Action, elapsed: Duration },
    Failed { address: String, action: Action, error: String },
    RollingBack { operations: usize },
    RolledBack { address: String, what: String },
    RollbackFailed { address: String, error: String },
    Interrupted { in_flight: Vec<String> },
}

/// Everything apply needs besides the plan.
pub struct ApplyContext {
    pub config: Arc<Config>,
    pub schemas: Schemas,
    /// Configured providers by configuration address.
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub store: Arc<dyn StateStore>,
    pub journal: Journal,
    pub events: UnboundedSender<Event>,
    pub parallelism: usize,
    pub rollback: bool,
    pub cancel: CancellationToken,
    /// Addresses of operations in flight, for the second Ctrl-C.
    pub in_flight: Arc<Mutex<BTreeSet<String>>>,
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub completed: Vec<(String, Action)>,
    pub failed: Vec<(String, String)>,
    pub rolled_back: Vec<String>,
    /// Operations rollback could not undo, with the reason.
    pub not_rolled_back: Vec<(String, String)>,
    pub interrupted: bool,
    pub outputs: BTreeMap<String, Value>,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && !self.interrupted && self.not_rolled_back.is_empty()
    }
}

/// A completed operation, as rollback needs to undo it.
#[derive(Debug, Clone)]
enum Undo {
    Created(InstanceRecord),
    Updated { prior: InstanceRecord, current: InstanceRecord },
    /// A create_before_destroy replacement: the new object is in state at
    /// the address, the old one deposed.
    Replaced { old: InstanceRecord, new: InstanceRecord },
    /// Destroyed in the main phase (replacement without
    /// create_before_destroy): cannot be undone.
    Destroyed(InstanceRecord),
}

struct Shared {
    cx: ApplyContext,
    apply_id: Uuid,
    plan_changes: HashMap<String, ResourceChange>,
    /// Current values of every instance, for evaluating dependents.
    world: Mutex<HashMap<InstanceAddr, Value>>,
    expansions: HashMap<(crate::addr::ModuleInstance, ResourceAddr), Expansion>,
    calls: crate::plan::Calls,
    variables: BTreeMap<String, Value>,
    undo: Mutex<Vec<Undo>>,
}

/// Applies `plan`. Never panics on provider failure: everything is reported.
pub async fn apply(plan: &Plan, state: &strata_state::Snapshot, cx: ApplyContext) -> ApplyReport {
    let mut world = HashMap::new();
    for (address, record) in &state.instances {
        if let Ok(addr) = parse_instance(address) {
            world.insert(addr, record.attributes.clone());
        }
    }
    let mut expansions: HashMap<(crate::addr::ModuleInstance, ResourceAddr), Vec<InstanceKey>> = HashMap::new();
    for c in &plan.changes {
        if c.action == Action::Delete {
            continue;
        }
        if let Ok(addr) = parse_instance(&c.address) {
            if c.data {
                if let Some(v) = &c.planned {
                    world.insert(addr.clone(), v.clone());
                }
            }
            expansions.entry((addr.module, addr.resource)).or_default().push(addr.key);
        }
    }
    let expansions = expansions
        .into_iter()
        .map(|(r, keys)| {
            let e = match keys.first() {
                Some(InstanceKey::Index(_)) => Expansion::Count(keys.len() as i64),
                Some(InstanceKey::Key(_)) => {
                    Expansion::ForEach(keys.iter().filter_map(|k| if let InstanceKey::Key(k) = k { Some(k.clone()) } else { None }).collect())
                }
                _ => Expansion::Single,
            };
            (r, e)
        })
        .collect();
    let shared = Arc::new(Shared {
        apply_id: Uuid::new_v4(),
        plan_changes: plan.changes.iter().map(|c| (c.address.clone(), c.clone())).collect(),
        world: Mutex::new(world),
        expansions,
        calls: plan.module_calls.iter().map(|(m, name, c)| ((m.clone(), name.clone()), c.clone())).collect(),
        variables: plan.variables.clone(),
        undo: Mutex::new(Vec::new()),
        cx,
    });
    let mut report = ApplyReport::default();

    let main: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace | Action::Read))
        .collect();
    walk(&shared, &main, false, &mut report).await;

    let main_ok = report.failed.is_empty() && !report.interrupted;
    if !main_ok {
        if shared.cx.rollback && !report.interrupted {
            rollback(&shared, &mut report).await;
        }
        return report;
    }

    // Cleanup: plain deletes, plus deposed objects of create_before_destroy.
    let mut cleanup: Vec<ResourceChange> =
        plan.changes.iter().filter(|c| matches!(c.action, Action::Delete | Action::Forget)).cloned().collect();
    for c in &plan.changes {
        if c.action == Action::Replace && c.create_before_destroy {
            if let (Some(prior_id), Some(prior)) = (c.prior_id, &c.prior) {
                cleanup.push(ResourceChange {
                    address: deposed_key(&c.address, prior_id),
                    action: Action::Delete,
                    id: prior_id,
                    prior: Some(prior.clone()),
                    planned: None,
                    dependencies: Vec::new(),
                    ..c.clone()
                });
            }
        }
    }
    let cleanup_refs: Vec<&ResourceChange> = cleanup.iter().collect();
    walk(&shared, &cleanup_refs, true, &mut report).await;

    if report.failed.is_empty() && !report.interrupted && plan.mode != crate::plan::PlanMode::Destroy {
        report.outputs = evaluate_outputs(&shared);
        let outputs = report.outputs.clone();
        if let Err(e) = shared.cx.journal.commit(vec![Write::SetOutputs(outputs)]).await {
            report.failed.push(("outputs".into(), e));
        }
    } else if plan.mode == crate::plan::PlanMode::Destroy && report.failed.is_empty() {
        let _ = shared.cx.journal.commit(vec![Write::SetOutputs(BTreeMap::new())]).await;
    }
    report
}

/// The state key of a deposed object: the address, `~`, the old identity.
pub fn deposed_key(address: &str, id: Uuid) -> String {
    format!("{address}~{id}")
}

/// Walks `nodes` in dependency order (reversed for destroys), at most
/// `parallelism` at a time, stopping new starts after a failure or Ctrl-C.
async fn walk(shared: &Arc<Shared>, nodes: &[&ResourceChange], reverse: bool, report: &mut ApplyReport) {
    if nodes.is_empty() {
        return;
    }
    let mut graph: DiGraph<String, ()> = DiGraph::with_capacity(nodes.len(), nodes.len());
    let index: HashMap<&str, NodeIndex> = nodes.iter().map(|c| (c.address.as_str(), graph.add_node(c.address.clone()))).collect();
    for c in nodes {
        for d in &c.dependencies {
            if let Some(&dep) = index.get(d.as_str()) {
                let me = index[c.address.as_str()];
                // Edges point from what must run first to what waits for it.
                if reverse {
                    graph.add_edge(me, dep, ());
                } else {
                    graph.add_edge(dep, me, ());
                }
            }
        }
    }
    let mut waiting: Vec<usize> = graph.node_indices().map(|n| graph.neighbors_directed(n, petgraph::Incoming).count()).collect();
    let mut ready: Vec<NodeIndex> = graph.node_indices().filter(|n| waiting[n.index()] == 0).collect();
    ready.reverse();
    let by_index: HashMap<NodeIndex, &ResourceChange> = nodes.iter().map(|c| (index[c.address.as_str()], *c)).collect();
    let mut running = JoinSet::new();
    let mut stop = false;
    loop {
        while !stop && running.len() < shared.cx.parallelism.max(1) {
            if shared.cx.cancel.is_cancelled() {
                stop = true;
                report.interrupted = true;
                break;
            }
            let Some(n) = ready.pop() else { break };
            let change = by_index[&n].clone();
            let s = shared.clone();
            running.spawn(async move {
                let started = Instant::now();
                let _ = s.cx.events.send(Event::Started { address: change.address.clone(), action: change.action });
                s.cx.in_flight.lock().expect("in-flight lock").insert(change.address.clone());
                let result = if reverse { destroy_node(&s, &change).await } else { main_node(&s, &change).await };
                s.cx.in_flight.lock().expect("in-flight lock").remove(&change.address);
                (n, change, result, started.elapsed())
            });
        }
        let next = tokio::select! {
            joined = running.join_next() => joined,
            _ = shared.cx.cancel.cancelled(), if !stop => {
                stop = true;
                report.interrupted = true;
                continue;
            }
        };
        let Some(joined) = next else { break };
        let (n, change, result, elapsed) = joined.expect("apply tasks do not panic");
        match result {
            Ok(()) => {
                let _ = shared.cx.events.send(Event::Finished { address: change.address.clone(), action: change.action, elapsed });
                report.completed.push((change.address.clone(), change.action));
                let dependents: Vec<NodeIndex> = graph.neighbors_directed(n, petgraph::Outgoing).collect();
                for d in dependents {
                    waiting[d.index()] -= 1;
                    if waiting[d.index()] == 0 {
                        ready.push(d);
                    }
                }
            }
            Err(error) => {
                let _ = shared.cx.events.send(Event::Failed { address: change.address.clone(), action: change.action, error: error.clone() });
                report.failed.push((change.address.clone(), error));
                stop = true;
            }
        }
    }
}

fn provider<'a>(shared: &'a Shared, change: &ResourceChange) -> Result<&'a Arc<dyn Provider>, String> {
    shared
        .cx
        .providers
        .get(&change.provider)
        .ok_or_else(|| format!("provider {} is not configured", change.provider))
}

fn schema<'a>(shared: &'a Shared, change: &ResourceChange) -> Result<&'a Block, String> {
    let name = crate::config::provider_for_type(&change.type_name);
    let provider_name = change.provider.split('.').next().unwrap_or(name);
    let mode = if change.data { crate::addr::Mode::Data } else { crate::addr::Mode::Managed };
    shared.cx.schemas.resource(provider_name, mode, &change.type_name).ok_or_else(|| format!("no schema for {}", change.type_name))
}

/// Checks the instance's preconditions (`self_value` = `None`) or
/// postconditions (`self_value` = its new state) with real values.
fn check_conditions(shared: &Shared, change: &ResourceChange, self_value: Option<Value>) -> Result<(), String> {
    let addr = parse_instance(&change.address)?;
    let Some(resource) = shared.cx.config.module(&addr.module.static_path()).and_then(|c| c.resource(&addr.resource)) else {
        return Ok(());
    };
    let (kind, conditions) = match self_value {
        None => ("precondition", &resource.lifecycle.preconditions),
        Some(_) => ("postcondition", &resource.lifecycle.postconditions),
    };
    if conditions.is_empty() {
        return Ok(());
    }
    let world = shared.world.lock().expect("world lock");
    let root = World::new(&shared.cx.config, &shared.variables, &world, &shared.expansions, &shared.calls).applying();
    let names = root.at(&addr.module).ok_or_else(|| format!("module {} is not in the configuration", addr.module))?;
    let mut scope = Scope::new(&names);
    scope.self_value = self_value;
    match &addr.key {
        InstanceKey::Index(i) => scope.count_index = Some(*i),
        InstanceKey::Key(k) => scope.each = Some((Value::from(k.as_str()), change.each_value.clone().unwrap_or_default())),
        InstanceKey::None => {}
    }
    for v in conditions {
        match crate::config::eval::condition(v, &scope) {
            crate::config::eval::Condition::Failed(message) => return Err(format!("{kind} failed: {message}")),
            crate::config::eval::Condition::Error(e) => return Err(format!("{kind} could not be evaluated: {}", e.message)),
            crate::config::eval::Condition::Unknown => return Err(format!("{kind} is still unknown after apply")),
            crate::config::eval::Condition::Passed => {}
        }
    }
    Ok(())
}

/// Re-evaluates the instance's configuration now that its dependencies have
/// their real values, and merges it over the prior state.
fn final_values(shared: &Shared, change: &ResourceChange, prior: Option<&Value>) -> Result<Value, String> {
    let schema = schema(shared, change)?;
    let addr = parse_instance(&change.address)?;
    let resource = shared
        .cx
        .config
        .module(&addr.module.static_path())
        .and_then(|c| c.resource(&addr.resource))
        .ok_or_else(|| format!("{} is not in the configuration", change.address))?;
    let world = shared.world.lock().expect("world lock");
    let root = World::new(&shared.cx.config, &shared.variables, &world, &shared.expansions, &shared.calls).applying();
    let names = root.at(&addr.module).ok_or_else(|| format!("module {} is not in the configuration", addr.module))?;
    let mut scope = Scope::new(&names);
    match &addr.key {
        InstanceKey::Index(i) => scope.count_index = Some(*i),
        InstanceKey::Key(k) => scope.each = Some((Value::from(k.as_str()), change.each_value.clone().unwrap_or_default())),
        InstanceKey::None => {}
    }
    let mut diags = Diagnostics::default();
    let config_value = eval_body(&resource.body, schema, &scope, &mut diags);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(format!("evaluating {}: {}", change.address, d.message));
    }
    let mut values = if change.data { config_value } else { propose(&config_value, prior, schema) };
    // ignore_changes keeps prior values at apply time too.
    if let (Some(p), Value::Map(m)) = (prior, &mut values) {
        for (name, v) in m.iter_mut() {
            if resource.lifecycle.ignore_all_changes || resource.lifecycle.ignore_changes.contains(name) {
                *v = p.get(name).clone();
            }
        }
    }
    if values.contains_unknown() && change.data {
        return Err(format!("{} still has unknown values at apply time", change.address));
    }
    Ok(values)
}

fn record(change: &ResourceChange, id: Uuid, attributes: Value) -> InstanceRecord {
    InstanceRecord {
        address: change.address.clone(),
        id,
        type_name: change.type_name.clone(),
        provider: change.provider.clone(),
        attributes,
        dependencies: change.dependencies.clone(),
        create_before_destroy: change.create_before_destroy,
    }
}

fn intent(shared: &Shared, change: &ResourceChange, op: Operation, id: Uuid, planned: Option<Value>, prior: Option<InstanceRecord>, rollback: bool) -> Intent {
    Intent {
        apply_id: shared.apply_id,
        operation: op,
        address: prior.as_ref().map(|p| p.address.clone()).unwrap_or_else(|| change.address.clone()),
        id,
        type_name: change.type_name.clone(),
        provider: change.provider.clone(),
        planned,
        prior,
        rollback,
        dependencies: change.dependencies.clone(),
        create_before_destroy: change.create_before_destroy,
        undo: None,
    }
}

async fn journaled<T>(
    shared: &Shared,
    intent: Intent,
    call: impl std::future::Future<Output = Result<T, String>>,
) -> Result<(u64, T), (u64, String)> {
    let seq = shared.cx.store.next_seq(1).map_err(|e| (0, e.to_string()))?;
    shared.cx.journal.commit(vec![Write::Intent { seq, intent }]).await.map_err(|e| (seq, e))?;
    call.await.map(|v| (seq, v)).map_err(|e| (seq, e))
}

async fn main_node(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    let schema = schema(shared, change)?.clone();
    let provider = provider(shared, change)?.clone();
    let addr = parse_instance(&change.address)?;
    match change.action {
        Action::Read => {
            let config = final_values(shared, change, None)?;
            let value = provider.read_data(&change.type_name, &config.clone().deep_unmark()).await.map_err(|e| e.message)?;
            shared.world.lock().expect("world lock").insert(addr, mark_sensitive(value, &schema));
            Ok(())
        }
        Action::Create => {
            let planned = final_values(shared, change, None)?;
            check_conditions(shared, change, None)?;
            let created = create(shared, &provider, &schema, change, change.id, planned).await?;
            shared.world.lock().expect("world lock").insert(addr, created.attributes.clone());
            shared.undo.lock().expect("undo lock").push(Undo::Created(created.clone()));
            check_conditions(shared, change, Some(created.attributes))
        }
        Action::Update => {
            let prior = shared.cx.store_record(change)?;
            let planned = final_values(shared, change, Some(&prior.attributes))?;
            check_conditions(shared, change, None)?;
            if planned.clone().deep_unmark() == prior.attributes.clone().deep_unmark() {
                return Ok(()); // The plan's unknowns resolved to the prior values.
            }
            let intent = intent(shared, change, Operation::Update, change.id, Some(planned.clone()), Some(prior.clone()), false);
            let unmarked_prior = prior.attributes.clone().deep_unmark();
            let call = async {
                provider.update(&change.type_name, change.id, &unmarked_prior, &planned.clone().deep_unmark(), None).await.map_err(|e| e.message)
            };
            match journaled(shared, intent, call).await {
                Ok((seq, value)) => {
                    let current = record(change, change.id, mark_result(value, &planned, &schema));
                    shared.cx.journal.commit(vec![Write::PutInstance(current.clone()), Write::Resolve { seq }]).await?;
                    shared.world.lock().expect("world lock").insert(addr, current.attributes.clone());
                    shared.undo.lock().expect("undo lock").push(Undo::Updated { prior, current: current.clone() });
                    check_conditions(shared, change, Some(current.attributes))
                }
                Err((seq, e)) => {
                    // Record what the object looks like now, whatever happened.
                    let mut writes = vec![Write::Resolve { seq }];
                    if let Ok(Some(now)) = provider.find_by_identity(&change.type_name, change.id, &prior.attributes).await {
                        let current = record(change, change.id, mark_result(now, &planned, &schema));
                        writes.push(Write::PutInstance(current.clone()));
                        shared.undo.lock().expect("undo lock").push(Undo::Updated { prior, current });
                    }
                    shared.cx.journal.commit(writes).await?;
                    Err(e)
                }
            }
        }
        Action::Replace => {
            let prior = shared.cx.store_record(change)?;
            let old_id = change.prior_id.unwrap_or(prior.id);
            if !change.create_before_destroy {
                destroy(shared, &provider, change, &prior, false).await?;
                shared.undo.lock().expect("undo lock").push(Undo::Destroyed(prior.clone()));
            }
            let planned = final_values(shared, change, None)?;
            check_conditions(shared, change, None)?;
            let deposed = change.create_before_destroy.then(|| InstanceRecord { address: deposed_key(&change.address, old_id), ..prior.clone() });
            let created = create_with(shared, &provider, &schema, change, change.id, planned, deposed.clone()).await?;
            shared.world.lock().expect("world lock").insert(addr, created.attributes.clone());
            let new_state = created.attributes.clone();
            let undo = match deposed {
                Some(_) => Undo::Replaced { old: prior, new: created },
                None => Undo::Created(created),
            };
            shared.undo.lock().expect("undo lock").push(undo);
            check_conditions(shared, change, Some(new_state))
        }
        Action::NoOp | Action::Delete | Action::Forget => Ok(()),
    }
}

impl ApplyContext {
    /// The current state record of the instance a change is about.
    fn store_record(&self, change: &ResourceChange) -> Result<InstanceRecord, String> {
        let prior = change.prior.clone().ok_or_else(|| format!("{} has no prior state", change.address))?;
        Ok(record(change, change.prior_id.unwrap_or(change.id), prior))
    }
}

async fn create(shared: &Shared, provider: &Arc<dyn Provider>, schema: &Block, change: &ResourceChange, id: Uuid, planned: Value) -> Result<InstanceRecord, String> {
    create_with(shared, provider, schema, change, id, planned, None).await
}

/// Creates an object under a durable intent. With `deposed`, the prior object
/// moves to its deposed key in the same transaction that records the new one.
async fn create_with(
    shared: &Shared,
    provider: &Arc<dyn Provider>,
    schema: &Block,
    change: &ResourceChange,
    id: Uuid,
    planned: Value,
    deposed: Option<InstanceRecord>,
) -> Result<InstanceRecord, String> {
    let intent = intent(shared, change, Operation::Create, id, Some(planned.clone()), None, false);
    let raw = planned.clone().deep_unmark();
    let call = async { provider.create(&change.type_name, id, &raw).await.map_err(|e| e.message) };
    match journaled(shared, intent, call).await {
        Ok((seq, value)) => {
            let created = record(change, id, mark_result(value, &planned, schema));
            let mut writes = vec![Write::PutInstance(created.clone())];
            writes.extend(deposed.map(Write::PutInstance));
            writes.push(Write::Resolve { seq });
            shared.cx.journal.commit(writes).await?;
            Ok(created)
        }
        Err((seq, e)) => {
            // A failed create may still have left an object: adopt it so that
            // nothing exists that the state does not know about.
            let mut writes = vec![Write::Resolve { seq }];
            if let Ok(Some(left)) = provider.find_by_identity(&change.type_name, id, &raw).await {
                let created = record(change, id, mark_result(left, &planned, schema));
                writes.insert(0, Write::PutInstance(created.clone()));
                writes.extend(deposed.map(Write::PutInstance));
                shared.undo.lock().expect("undo lock").push(Undo::Created(created));
            }
            if seq != 0 {
                shared.cx.journal.commit(writes).await?;
            }
            Err(e)
        }
    }
}

/// Deletes an object under a durable intent and removes it from state.
async fn destroy(shared: &Shared, provider: &Arc<dyn Provider>, change: &ResourceChange, prior: &InstanceRecord, rollback: bool) -> Result<(), String> {
    let intent = intent(shared, change, Operation::Delete, prior.id, None, Some(prior.clone()), rollback);
    let attrs = prior.attributes.clone().deep_unmark();
    let call = async { provider.delete(&prior.type_name, prior.id, &attrs).await.map_err(|e| e.message) };
    match journaled(shared, intent, call).await {
        Ok((seq, ())) => {
            shared.cx.journal.commit(vec![Write::RemoveInstance { address: prior.address.clone() }, Write::Resolve { seq }]).await
        }
        Err((seq, e)) => {
            if seq != 0 {
                shared.cx.journal.commit(vec![Write::Resolve { seq }]).await?;
            }
            Err(e)
        }
    }
}

async fn destroy_node(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    if change.action == Action::Forget {
        return shared.cx.journal.commit(vec![Write::RemoveInstance { address: change.address.clone() }]).await;
    }
    let provider = provider(shared, change)?.clone();
    let prior = InstanceRecord {
        address: change.address.clone(),
        ..record(change, change.id, change.prior.clone().ok_or_else(|| format!("{} has no prior state", change.address))?)
    };
    destroy(shared, &provider, change, &prior, false).await?;
    if let Ok(addr) = parse_instance(&change.address) {
        shared.world.lock().expect("world lock").remove(&addr);
    }
    Ok(())
}

/// Undoes this apply's completed operations, newest first.
async fn rollback(shared: &Arc<Shared>, report: &mut ApplyReport) {
    let undo: Vec<Undo> = std::mem::take(&mut *shared.undo.lock().expect("undo lock"));
    if undo.is_empty() {
        return;
    }
    let _ = shared.cx.events.send(Event::RollingBack { operations: undo.len() });
    for step in undo.into_iter().rev() {
        let (address, result) = match &step {
            Undo::Created(rec) => (rec.address.clone(), undo_create(shared, rec, None).await.map(|_| "deleted".to_owned())),
            Undo::Replaced { old, new } => {
                (new.address.clone(), undo_create(shared, new, Some(old)).await.map(|_| "replacement deleted, original kept".to_owned()))
            }
            Undo::Updated { prior, current } => (prior.address.clone(), undo_update(shared, prior, current).await.map(|_| "restored".to_owned())),
            Undo::Destroyed(rec) => (
                rec.address.clone(),
                Err("it was destroyed to be replaced (no create_before_destroy), so it cannot be brought back".to_owned()),
            ),
        };
        match result {
            Ok(what) => {
                let _ = shared.cx.events.send(Event::RolledBack { address: address.clone(), what });
                report.rolled_back.push(address);
            }
            Err(error) => {
                let _ = shared.cx.events.send(Event::RollbackFailed { address: address.clone(), error: error.clone() });
                report.not_rolled_back.push((address, error));
            }
        }
    }
}

fn change_for(shared: &Shared, rec: &InstanceRecord) -> ResourceChange {
    shared.plan_changes.get(&rec.address).cloned().unwrap_or_else(|| ResourceChange {
        address: rec.address.clone(),
        resource: String::new(),
        type_name: rec.type_name.clone(),
        provider: rec.provider.clone(),
        data: false,
        action: Action::Delete,
        id: rec.id,
        prior_id: None,
        prior: Some(rec.attributes.clone()),
        planned: None,
        replace_because: Vec::new(),
        disruption: None,
        attribute_disruptions: BTreeMap::new(),
        reason: None,
        dependencies: rec.dependencies.clone(),
        create_before_destroy: rec.create_before_destroy,
        each_value: None,
        moved_from: None,
        importing: None,
        notes: Vec::new(),
    })
}

async fn undo_create(shared: &Shared, created: &InstanceRecord, restore: Option<&InstanceRecord>) -> Result<(), String> {
    let change = change_for(shared, created);
    let provider = provider(shared, &change)?.clone();
    let intent = intent(shared, &change, Operation::Delete, created.id, None, Some(created.clone()), true);
    let attrs = created.attributes.clone().deep_unmark();
    let call = async { provider.delete(&created.type_name, created.id, &attrs).await.map_err(|e| e.message) };
    match journaled(shared, intent, call).await {
        Ok((seq, ())) => {
            let mut writes = vec![Write::RemoveInstance { address: created.address.clone() }];
            if let Some(old) = restore {
                writes.push(Write::RemoveInstance { address: deposed_key(&old.address, old.id) });
                writes.push(Write::PutInstance(old.clone()));
            }
            writes.push(Write::Resolve { seq });
            shared.cx.journal.commit(writes).await
        }
        Err((seq, e)) => {
            if seq != 0 {
                shared.cx.journal.commit(vec![Write::Resolve { seq }]).await?;
            }
            Err(e)
        }
    }
}

async fn undo_update(shared: &Shared, prior: &InstanceRecord, current: &InstanceRecord) -> Result<(), String> {
    let change = change_for(shared, prior);
    let provider = provider(shared, &change)?.clone();
    let intent = intent(shared, &change, Operation::Update, prior.id, Some(prior.attributes.clone()), Some(current.clone()), true);
    let (from, to) = (current.attributes.clone().deep_unmark(), prior.attributes.clone().deep_unmark());
    let call = async { provider.update(&prior.type_name, prior.id, &from, &to, None).await.map_err(|e| e.message) };
    match journaled(shared, intent, call).await {
        Ok((seq, value)) => {
            let schema = schema(shared, &change)?;
            let restored = InstanceRecord { attributes: mark_result(value, &prior.attributes, schema), ..prior.clone() };
            shared.cx.journal.commit(vec![Write::PutInstance(restored), Write::Resolve { seq }]).await
        }
        Err((seq, e)) => {
            if seq != 0 {
                shared.cx.journal.commit(vec![Write::Resolve { seq }]).await?;
            }
            Err(e)
        }
    }
}

fn evaluate_outputs(shared: &Shared) -> BTreeMap<String, Value> {
    let world = shared.world.lock().expect("world lock");
    let names = World::new(&shared.cx.config, &shared.variables, &world, &shared.expansions, &shared.calls).applying();
    let scope = Scope::new(&names);
    let mut out = BTreeMap::new();
    for o in shared.cx.config.outputs.values() {
        if let Ok(v) = crate::config::eval::eval(&o.value.expr, &scope) {
            out.insert(o.name.clone(), if o.sensitive { v.into_sensitive() } else { v });
        }
    }
    out
}
