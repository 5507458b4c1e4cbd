//! Executing a plan: walking the instance graph on tokio with bounded
//! parallelism, journaling every provider call, and rolling back on failure.
//!
//! An apply is a transaction recorded in the store (`strata_state::ApplyLog`):
//! 1. **main**: imports, reads, creates, in-place updates and replacements,
//!    each node starting the moment its dependencies finish. Every completed
//!    operation leaves an undo step, with the provider's undo record where it
//!    gave one (a snapshot, an object kept aside, a previous definition);
//! 2. **cleanup**, once the main phase succeeded: destroys (and the old half
//!    of `create_before_destroy` replacements) in reverse dependency order,
//!    then the undo points are discarded;
//! 3. on a failure in the main phase: **rollback** of the undo steps, newest
//!    first ([`rollback`]), unless `--no-rollback`.
//!
//! Invariant: every provider call is preceded by a durable intent and
//! followed by one transaction that records its effect (and its undo step)
//! and resolves the intent, so a crash at any instant leaves either a known
//! object in state or a pending intent that `ops::reconcile` resolves by
//! identity; the apply log then tells recovery to finish, or roll back.

mod burst;
mod journal;
mod node;
pub mod rollback;

pub use journal::Journal;
pub use rollback::Undoer;

use crate::addr::{parse_instance, InstanceAddr, InstanceKey, ResourceAddr};
use crate::config::eval::Scope;
use crate::config::Config;
use crate::plan::{Action, Expansion, Plan, ResourceChange, Schemas, World};
use node::{destroy_node, import_node, main_node};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_provider::{Provider, Scheduling, Value};
use strata_state::{ApplyPhase, ApplyRecord, StateStore, Write};
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
    /// A failure happened in the cleanup phase, after the changes stood:
    /// nothing was rolled back, and `left_to_clean` says what remains.
    pub cleanup_failed: bool,
    /// Destroys that did not happen and undo points that could not be
    /// removed, after a cleanup-phase failure.
    pub left_to_clean: Vec<String>,
    pub interrupted: bool,
    pub outputs: BTreeMap<String, Value>,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && !self.interrupted && self.not_rolled_back.is_empty() && self.left_to_clean.is_empty()
    }
}

struct Shared {
    cx: ApplyContext,
    apply_id: Uuid,
    /// Current values of every instance, for evaluating dependents.
    world: Mutex<HashMap<InstanceAddr, Value>>,
    expansions: HashMap<(crate::addr::ModuleInstance, ResourceAddr), Expansion>,
    calls: crate::plan::Calls,
    variables: BTreeMap<String, Value>,
    /// The locals and module variables that read nothing apply changes,
    /// evaluated once for the whole apply (`World::remembering_stable`).
    /// Locked after `world`, only by `node::final_values`.
    stable: Mutex<crate::plan::Memo>,
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
        world: Mutex::new(world),
        expansions,
        calls: plan.module_calls.iter().map(|(m, name, c)| ((m.clone(), name.clone()), c.clone())).collect(),
        variables: plan.variables.clone(),
        stable: Mutex::default(),
        cx,
    });
    let mut report = ApplyReport::default();

    let begin = ApplyRecord {
        apply_id: shared.apply_id,
        phase: ApplyPhase::Main,
        rollback: shared.cx.rollback,
        started_at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        pid: std::process::id(),
    };
    // Durable with the first intent, in the same transaction: an apply that
    // has called no provider yet has nothing for recovery to end.
    shared.cx.journal.defer(vec![Write::BeginApply(begin)]);

    // Imports first: what they adopt is then known to every other node.
    for change in plan.changes.iter().filter(|c| c.details().importing.is_some()) {
        if let Err(e) = import_node(&shared, change).await {
            report.failed.push((change.address.clone(), e));
            break;
        }
    }
    let main: Vec<&ResourceChange> = plan.changes.iter().filter(|c| in_main_phase(c)).collect();
    if report.failed.is_empty() {
        walk(&shared, &main, false, &mut report).await;
    }

    let main_ok = report.failed.is_empty() && !report.interrupted;
    if !main_ok {
        // What was deferred (the apply's beginning when no intent was
        // written, the refresh's drift) is written before the log is read.
        if let Err(e) = shared.cx.journal.commit(Vec::new()).await {
            report.failed.push(("state".into(), e));
            return report;
        }
        let undoer = undoer(&shared);
        let ending = if shared.cx.rollback && !report.interrupted { undoer.roll_back().await } else { undoer.keep().await };
        match ending {
            Ok(outcome) if shared.cx.rollback && !report.interrupted => {
                report.rolled_back.extend(outcome.done.into_iter().map(|(address, _)| address));
                report.not_rolled_back.extend(outcome.failed);
            }
            Ok(outcome) => report.left_to_clean.extend(outcome.failed.into_iter().map(|(a, why)| format!("{a}: {why}"))),
            Err(e) => report.failed.push(("state".into(), e)),
        }
        return report;
    }

    // Cleanup: the changes stand from here on. Durable with the next commit
    // (the first destroy's intent, or the end): until then a crash finds the
    // apply in its main phase, as it would a crash just before this point.
    shared.cx.journal.defer(vec![Write::SetApplyPhase(ApplyPhase::Cleanup)]);
    let mut cleanup: Vec<ResourceChange> = plan.changes.iter().filter(|c| in_cleanup_phase(c)).cloned().collect();
    for c in &plan.changes {
        if deposes(c) {
            if let (Some(prior_id), Some(prior)) = (c.details().prior_id, &c.prior) {
                let mut deposed = c.clone();
                deposed.address = deposed_key(&c.address, prior_id);
                deposed.action = Action::Delete;
                deposed.id = prior_id;
                deposed.prior = Some(prior.clone());
                deposed.planned = None;
                deposed.dependencies = Vec::new();
                cleanup.push(deposed);
            }
        }
    }
    let cleanup_refs: Vec<&ResourceChange> = cleanup.iter().collect();
    walk(&shared, &cleanup_refs, true, &mut report).await;
    if !report.failed.is_empty() || report.interrupted {
        report.cleanup_failed = !report.failed.is_empty();
        let done: BTreeSet<&str> = report.completed.iter().map(|(a, _)| a.as_str()).collect();
        let failed: BTreeSet<&str> = report.failed.iter().map(|(a, _)| a.as_str()).collect();
        for c in &cleanup {
            if !done.contains(c.address.as_str()) {
                let why = if failed.contains(c.address.as_str()) { "its destroy failed" } else { "not destroyed yet" };
                report.left_to_clean.push(format!("{} ({why}; the next apply destroys it)", c.address));
            }
        }
    }
    // Outputs first, so that a crash after them leaves only the discards:
    // they go with the next commit, the first discard's intent or the end.
    if report.failed.is_empty() && !report.interrupted && plan.mode != crate::plan::PlanMode::Destroy {
        report.outputs = evaluate_outputs(&shared);
        shared.cx.journal.defer(vec![Write::SetOutputs(report.outputs.clone())]);
    } else if plan.mode == crate::plan::PlanMode::Destroy && report.failed.is_empty() {
        shared.cx.journal.defer(vec![Write::SetOutputs(BTreeMap::new())]);
    }
    // The log is read back only when it may hold undo points to discard:
    // reading and decoding every step of a large apply for nothing was 8 %
    // of a 100,000-instance first apply.
    let kept = if shared.cx.journal.wrote_undo_points() { undoer(&shared).keep().await } else { undoer(&shared).keep_without_undo_points().await };
    match kept {
        Ok(outcome) => {
            report.cleanup_failed |= !outcome.failed.is_empty();
            report.left_to_clean.extend(outcome.failed.into_iter().map(|(a, why)| format!("{a}: {why}")));
        }
        Err(e) => report.failed.push(("state".into(), e)),
    }
    // Every instance's values, left to the exit of the process, which frees
    // them at once (as `ops::Planned::release` does with the plan) instead
    // of one by one.
    std::mem::forget(std::mem::take(&mut *shared.world.lock().expect("world lock")));
    report
}

/// Walked in the main phase.
fn in_main_phase(c: &ResourceChange) -> bool {
    matches!(c.action, Action::Create | Action::Update | Action::Replace | Action::Read)
}

/// Walked in the cleanup phase.
fn in_cleanup_phase(c: &ResourceChange) -> bool {
    matches!(c.action, Action::Delete | Action::Forget)
}

/// A `create_before_destroy` replacement, whose old object is destroyed in
/// the cleanup phase as a deposed object of its own.
fn deposes(c: &ResourceChange) -> bool {
    c.action == Action::Replace && c.create_before_destroy && c.details().prior_id.is_some() && c.prior.is_some()
}

/// How many operations applying `plan` reports (one [`Event::Started`]
/// each when it runs to the end), for progress as `N/M`.
pub fn operation_count(plan: &Plan) -> usize {
    plan.changes.iter().map(|c| usize::from(in_main_phase(c)) + usize::from(in_cleanup_phase(c)) + usize::from(deposes(c))).sum()
}

fn undoer(shared: &Shared) -> Undoer<'_> {
    Undoer {
        providers: &shared.cx.providers,
        schemas: &shared.cx.schemas,
        store: &shared.cx.store,
        journal: &shared.cx.journal,
        events: Some(&shared.cx.events),
    }
}

/// The state key of a deposed object: the address, `~`, the old identity.
pub fn deposed_key(address: &str, id: Uuid) -> String {
    format!("{address}~{id}")
}

/// Walks `nodes` in dependency order (reversed for destroys), stopping new
/// starts after a failure or Ctrl-C. Operations of resource types whose
/// provider coalesces them ([`Scheduling::Coalescing`]) all start as soon as
/// they are ready, up to the provider's bound, and take no slot; every other
/// operation takes one of `parallelism` slots. The coalescing operations
/// started in one pass form a [`burst::Burst`]: their intents are journaled
/// in one commit, then they all call the provider at once.
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
    let by_index: HashMap<NodeIndex, &ResourceChange> = nodes.iter().map(|c| (index[c.address.as_str()], *c)).collect();
    let mut lanes = Lanes::new(shared, nodes.iter().copied().map(|c| (index[c.address.as_str()], c)));
    let mut initial: Vec<NodeIndex> = graph.node_indices().filter(|n| waiting[n.index()] == 0).collect();
    initial.reverse();
    for n in initial {
        lanes.push(n);
    }
    let mut running = JoinSet::new();
    let mut stop = false;
    loop {
        // The coalescing operations started in this pass, one burst per lane.
        let mut bursts: HashMap<usize, Arc<burst::Burst>> = HashMap::new();
        while !stop {
            if shared.cx.cancel.is_cancelled() {
                stop = true;
                report.interrupted = true;
                break;
            }
            let Some(n) = lanes.next_to_start() else { break };
            let member = match lanes.lane(n) {
                0 => None,
                lane => Some(bursts.entry(lane).or_insert_with(|| burst::Burst::open(shared.cx.journal.clone())).join()),
            };
            let change = by_index[&n].clone();
            let s = shared.clone();
            running.spawn(async move {
                let started = Instant::now();
                let _ = s.cx.events.send(Event::Started { address: change.address.clone(), action: change.action });
                s.cx.in_flight.lock().expect("in-flight lock").insert(change.address.clone());
                let node = async { if reverse { destroy_node(&s, &change).await } else { main_node(&s, &change).await } };
                let result = match member {
                    Some(member) => member.scope(node).await,
                    None => node.await,
                };
                s.cx.in_flight.lock().expect("in-flight lock").remove(&change.address);
                (n, change, result, started.elapsed())
            });
        }
        for burst in bursts.values() {
            burst.seal();
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
        lanes.finished(n);
        match result {
            Ok(()) => {
                tracing::info!(address = %change.address, action = ?change.action, ?elapsed, "operation complete");
                let _ = shared.cx.events.send(Event::Finished { address: change.address.clone(), action: change.action, elapsed });
                report.completed.push((change.address.clone(), change.action));
                let dependents: Vec<NodeIndex> = graph.neighbors_directed(n, petgraph::Outgoing).collect();
                for d in dependents {
                    waiting[d.index()] -= 1;
                    if waiting[d.index()] == 0 {
                        lanes.push(d);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(address = %change.address, action = ?change.action, ?elapsed, %error, "operation failed");
                let _ = shared.cx.events.send(Event::Failed { address: change.address.clone(), action: change.action, error: error.clone() });
                report.failed.push((change.address.clone(), error));
                stop = true;
            }
        }
    }
}

/// The ready queues of a walk, one per way of scheduling: lane 0 holds the
/// operations that take a `-parallelism` slot, every other lane one
/// coalescing resource type (per provider configuration) with its own bound.
struct Lanes {
    /// Per lane: ready nodes (popped from the end), running count, bound.
    ready: Vec<Vec<NodeIndex>>,
    running: Vec<usize>,
    bound: Vec<usize>,
    lane_of: HashMap<NodeIndex, usize>,
}

impl Lanes {
    /// The lanes of `nodes`, asking each resource type's provider once.
    fn new<'a>(shared: &Shared, nodes: impl Iterator<Item = (NodeIndex, &'a ResourceChange)>) -> Lanes {
        let mut asked: HashMap<(&str, &str), Scheduling> = HashMap::new();
        let scheduled: Vec<(NodeIndex, (&str, &str), Scheduling)> = nodes
            .map(|(n, c)| {
                let key = (&*c.provider, &*c.type_name);
                let scheduling = *asked.entry(key).or_insert_with(|| match shared.cx.providers.get(&*c.provider) {
                    Some(p) if !c.data => p.scheduling(&c.type_name),
                    _ => Scheduling::PerSlot,
                });
                (n, key, scheduling)
            })
            .collect();
        Lanes::of(shared.cx.parallelism, scheduled)
    }

    /// Lanes for `parallelism` slots and nodes keyed by resource type.
    fn of<K: std::hash::Hash + Eq>(parallelism: usize, nodes: impl IntoIterator<Item = (NodeIndex, K, Scheduling)>) -> Lanes {
        let mut lanes = Lanes { ready: vec![Vec::new()], running: vec![0], bound: vec![parallelism.max(1)], lane_of: HashMap::new() };
        let mut by_type: HashMap<K, usize> = HashMap::new();
        for (n, key, scheduling) in nodes {
            let lane = match scheduling {
                Scheduling::PerSlot => 0,
                Scheduling::Coalescing { max_in_flight } => *by_type.entry(key).or_insert_with(|| {
                    lanes.ready.push(Vec::new());
                    lanes.running.push(0);
                    lanes.bound.push(max_in_flight.max(1));
                    lanes.ready.len() - 1
                }),
            };
            lanes.lane_of.insert(n, lane);
        }
        lanes
    }

    /// The lane of `n`: 0 for the slots, else a coalescing type's.
    fn lane(&self, n: NodeIndex) -> usize {
        self.lane_of.get(&n).copied().unwrap_or(0)
    }

    fn push(&mut self, n: NodeIndex) {
        let lane = self.lane_of.get(&n).copied().unwrap_or(0);
        self.ready[lane].push(n);
    }

    /// A ready node whose lane has room, now counted as running.
    fn next_to_start(&mut self) -> Option<NodeIndex> {
        let lane = (0..self.ready.len()).find(|&l| self.running[l] < self.bound[l] && !self.ready[l].is_empty())?;
        self.running[lane] += 1;
        self.ready[lane].pop()
    }

    fn finished(&mut self, n: NodeIndex) {
        let lane = self.lane_of.get(&n).copied().unwrap_or(0);
        self.running[lane] -= 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn started(lanes: &mut Lanes) -> Vec<usize> {
        std::iter::from_fn(|| lanes.next_to_start()).map(|n| n.index()).collect()
    }

    #[test]
    fn coalescing_operations_take_no_slot_and_keep_their_bound() {
        // Nodes 0-3 take slots (parallelism 1); 4-9 are one coalescing type
        // with a bound of 4.
        let nodes = (0..10).map(|i| {
            let scheduling = if i < 4 { Scheduling::PerSlot } else { Scheduling::Coalescing { max_in_flight: 4 } };
            (NodeIndex::new(i), if i < 4 { "slow" } else { "rows" }, scheduling)
        });
        let mut lanes = Lanes::of(1, nodes);
        for i in 0..10 {
            lanes.push(NodeIndex::new(i));
        }
        let first = started(&mut lanes);
        assert_eq!(first.iter().filter(|&&i| i < 4).count(), 1, "one slot: {first:?}");
        assert_eq!(first.iter().filter(|&&i| i >= 4).count(), 4, "the coalescing bound, not the slot count: {first:?}");
        // One row change ends: one more row change starts, no slow one.
        lanes.finished(NodeIndex::new(first[first.len() - 1]));
        let next = started(&mut lanes);
        assert!(next.len() == 1 && next[0] >= 4, "{next:?}");
    }

    #[test]
    fn each_coalescing_type_has_its_own_bound() {
        let nodes = (0..6).map(|i| (NodeIndex::new(i), i % 2, Scheduling::Coalescing { max_in_flight: 2 }));
        let mut lanes = Lanes::of(1, nodes);
        for i in 0..6 {
            lanes.push(NodeIndex::new(i));
        }
        assert_eq!(started(&mut lanes).len(), 4, "two types, two each");
    }
}
