//! The planner: configuration + (refreshed) state + provider schemas in, a
//! [`Plan`] out. It does no I/O: refreshing, reading data sources and asking
//! providers to refine changes are done by `ops`, which calls in here.

mod model;
mod world;

pub use model::*;
pub use world::{CallExpansion, Calls, Expansion, Memo, World};

use crate::addr::{InstanceAddr, InstanceKey, ModuleInstance, Mode, ResourceAddr, Target};
use crate::config::eval::{eval, Scope};
use crate::config::types::convert_strict;
use crate::config::{BodyExprs, Config, Diagnostic, Diagnostics, Resource, Span};
use crate::graph::{self, Analysis, Node};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use strata_provider::{Block, Disruption, Nesting, Presence, ProviderSchema, Type, Value};
use strata_state::{InstanceRecord, Snapshot};
use uuid::Uuid;

/// The planner's own maps, keyed by addresses: hashed with foldhash (no
/// untrusted keys, and iteration order is never observed).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Provider schemas by provider name.
#[derive(Debug, Clone, Default)]
pub struct Schemas(pub BTreeMap<String, ProviderSchema>);

impl Schemas {
    pub fn resource(&self, provider: &str, mode: Mode, type_name: &str) -> Option<&Block> {
        let p = self.0.get(provider)?;
        match mode {
            Mode::Managed => p.resources.get(type_name),
            Mode::Data => p.data_sources.get(type_name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub mode: PlanMode,
    pub targets: Vec<Target>,
    pub excludes: Vec<Target>,
    pub replace: Vec<Target>,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions { mode: PlanMode::Normal, targets: Vec::new(), excludes: Vec::new(), replace: Vec::new() }
    }
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub analysis: &'a Analysis,
    pub variables: &'a BTreeMap<String, Value>,
    /// State after refresh.
    pub state: &'a Snapshot,
    pub schemas: &'a Schemas,
    pub options: &'a PlanOptions,
    /// Data source results read so far, by instance address.
    pub data: &'a BTreeMap<String, Value>,
    pub drift: Vec<Drift>,
    pub refreshed: BTreeMap<String, Option<Value>>,
    /// New address → old address, for instances `moved` blocks renamed in
    /// `state` (see [`apply_moves`]).
    pub moved: &'a BTreeMap<String, String>,
    /// Address → import ID, for instances `import` blocks put in `state`.
    pub importing: &'a BTreeMap<String, String>,
}

/// Static checks that need no state: references, cycles, and every resource
/// against its provider's schema.
pub fn validate(config: &Config, schemas: &Schemas) -> (Analysis, Diagnostics) {
    let (analysis, mut diags) = graph::analyze(config);
    for r in config.modules().into_iter().flat_map(|(_, c)| c.resources.values()) {
        let provider = r.provider_name();
        if !schemas.0.contains_key(provider) {
            diags.push(match crate::providers::left_out(provider) {
                Some(why) => Diagnostic::error(format!("{}: {why}", r.addr), r.header.clone(), "provider not in this build"),
                None => Diagnostic::error(format!("unknown provider {provider:?} for {}", r.addr), r.header.clone(), "no such provider")
                    .with_help(format!("available providers: {}", schemas.0.keys().cloned().collect::<Vec<_>>().join(", "))),
            });
            continue;
        }
        let Some(schema) = schemas.resource(provider, r.addr.mode, &r.addr.type_name) else {
            let kind = if r.addr.mode == Mode::Data { "data source" } else { "resource" };
            diags.push(Diagnostic::error(
                format!("the {provider} provider has no {kind} type {:?}", r.addr.type_name),
                r.header.clone(),
                "unknown type",
            ));
            continue;
        };
        check_body(&r.body, schema, &r.header, &r.addr, &mut diags);
        if let Some((name, alias, span)) = &r.provider {
            if alias.is_some() && config.provider_block(&r.provider_config_addr()).is_none() {
                diags.push(Diagnostic::error(
                    format!("no provider configuration {}", r.provider_config_addr()),
                    span.clone(),
                    "not configured",
                ).with_help(format!("add provider \"{name}\" {{ alias = \"{}\" }}", alias.as_deref().unwrap_or_default())));
            }
        }
    }
    for rm in &config.removed {
        let Some(addr) = rm.from.resource.clone().filter(|_| rm.from.module.is_empty()) else { continue };
        if config.resources.contains_key(&addr) {
            diags.push(Diagnostic::error(
                format!("removed block for {addr}, which is still in the configuration"),
                rm.span.clone(),
                "remove the resource block, or this removed block",
            ));
        }
    }
    for p in &config.providers {
        match schemas.0.get(&p.name) {
            None => diags.push(match crate::providers::left_out(&p.name) {
                Some(why) => Diagnostic::error(format!("provider {:?}: {why}", p.name), p.span.clone(), "provider not in this build"),
                None => Diagnostic::error(format!("unknown provider {:?}", p.name), p.span.clone(), "no such provider"),
            }),
            Some(schema) => check_body(&p.body, &schema.provider, &p.span, &format!("provider {}", p.name), &mut diags),
        }
    }
    (analysis, diags)
}

/// Unknown attributes and blocks, and missing required attributes; `what`
/// names the block in messages (printed only for a problem).
fn check_body(body: &BodyExprs, schema: &Block, block_span: &Span, what: &dyn std::fmt::Display, diags: &mut Diagnostics) {
    for a in &body.attrs {
        match schema.attributes.get(&a.name) {
            None => diags.push(
                Diagnostic::error(format!("{what} has no attribute {:?}", a.name), a.span.clone(), "unknown attribute")
                    .with_help(suggest(&a.name, schema.attributes.keys())),
            ),
            Some(attr) if attr.presence == Presence::Computed => diags.push(Diagnostic::error(
                format!("{:?} of {what} is computed by the provider and cannot be set", a.name),
                a.span.clone(),
                "computed attribute",
            )),
            Some(_) => {}
        }
    }
    for (name, attr) in &schema.attributes {
        if attr.presence == Presence::Required && body.attr(name).is_none() {
            diags.push(Diagnostic::error(
                format!("{what} is missing the required attribute {name:?}"),
                block_span.clone(),
                format!("add `{name} = ...`"),
            ));
        }
    }
    for b in &body.blocks {
        match schema.blocks.get(&b.name) {
            None => diags.push(Diagnostic::error(format!("{what} has no block type {:?}", b.name), b.span.clone(), "unknown block")),
            Some(nested) => check_body(&b.body, &nested.block, &b.span, &NestedName(what, &b.name), diags),
        }
        if schema.blocks.get(&b.name).is_some_and(|n| n.nesting == Nesting::Single)
            && body.blocks.iter().filter(|o| o.name == b.name).count() > 1
        {
            diags.push(Diagnostic::error(format!("{what} allows at most one {:?} block", b.name), b.span.clone(), "repeated"));
        }
    }
}

/// A nested block's name in messages: `what.name`.
struct NestedName<'a>(&'a dyn std::fmt::Display, &'a str);

impl std::fmt::Display for NestedName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> String {
    let list: Vec<&String> = candidates.collect();
    let close = list.iter().find(|c| c.contains(name) || name.contains(c.as_str()) || edit_distance(c, name) <= 2);
    match close {
        Some(c) => format!("did you mean {c:?}?"),
        None => format!("valid attributes: {}", list.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Evaluates a body against its schema into an object value: every schema
/// attribute present (`null` when unset), nested blocks as objects or lists,
/// values converted to their declared types and marked where sensitive.
pub fn eval_body(body: &BodyExprs, schema: &Block, scope: &Scope, diags: &mut Diagnostics) -> Value {
    let mut out = BTreeMap::new();
    for (name, attr) in &schema.attributes {
        let value = match body.attr(name) {
            Some(a) => match eval(&a.expr.expr, scope) {
                // `convert` to `any` is a copy; keep the value instead.
                Ok(v) if attr.ty == Type::Any => v,
                Ok(v) => match convert_strict(&v, &attr.ty) {
                    Ok(v) => v,
                    Err(e) => {
                        diags.push(Diagnostic::error(format!("invalid value for {name:?}: {e}"), a.expr.span(), format!("expected {}", attr.ty)));
                        Value::Null
                    }
                },
                Err(e) => {
                    diags.push(Diagnostic::error(e.message.clone(), Span::new(a.expr.file, e.range.or(Some(a.span.range.clone()))), "here"));
                    Value::Null
                }
            },
            None => Value::Null,
        };
        out.insert(name.clone(), if attr.sensitive && !value.is_null() { value.into_sensitive() } else { value });
    }
    for (name, nested) in &schema.blocks {
        let mut blocks: Vec<Value> = Vec::new();
        let mut unknown = false;
        for b in body.blocks.iter().filter(|b| &b.name == name) {
            let Some(dynamic) = &b.dynamic else {
                blocks.push(eval_body(&b.body, &nested.block, scope, diags));
                continue;
            };
            let elements = match eval(&dynamic.for_each.expr, scope) {
                Ok(v) if v.is_unknown() => {
                    unknown = true;
                    continue;
                }
                // The elements of a sensitive collection, keys included, keep its mark.
                Ok(v) => match (v.unmarked(), v.is_sensitive()) {
                    (Value::List(items), secret) => {
                        items.iter().enumerate().map(|(i, v)| (marked(Value::from(i as i64), secret), marked(v.clone(), secret))).collect()
                    }
                    (Value::Map(m), secret) => {
                        m.iter().map(|(k, v)| (marked(Value::from(k.as_str()), secret), marked(v.clone(), secret))).collect::<Vec<_>>()
                    }
                    (Value::Null, _) => Vec::new(),
                    (other, _) => {
                        diags.push(Diagnostic::error(format!("for_each of a dynamic block needs a collection, found {}", other.kind()), dynamic.for_each.span(), "here"));
                        continue;
                    }
                },
                Err(e) => {
                    diags.push(Diagnostic::error(e.message, Span::new(dynamic.for_each.file, e.range), "in for_each"));
                    continue;
                }
            };
            for (key, value) in elements {
                let inner = scope.with_bound(&dynamic.iterator, Value::object([("key", key), ("value", value)]));
                blocks.push(eval_body(&b.body, &nested.block, &inner, diags));
            }
        }
        if unknown {
            out.insert(name.clone(), Value::Unknown);
            continue;
        }
        let value = match nested.nesting {
            Nesting::Single => blocks.into_iter().next().unwrap_or(Value::Null),
            Nesting::List => Value::List(blocks.into()),
        };
        out.insert(name.clone(), value);
    }
    Value::Map(out.into())
}

fn marked(v: Value, sensitive: bool) -> Value {
    if sensitive {
        v.into_sensitive()
    } else {
        v
    }
}

/// Whether `propose` gives an attribute the prior's value (unknown when
/// there is none) rather than the configured one: computed attributes, and
/// optional-computed ones left unset. `proposes_prior` follows the same rule.
fn keeps_prior(attr: &strata_provider::Attribute, configured: &Value) -> bool {
    match attr.presence {
        Presence::Computed => true,
        Presence::OptionalComputed => configured.is_null(),
        _ => false,
    }
}

/// Merges evaluated configuration with prior state: computed attributes keep
/// their prior values (or are unknown for a create), so the result is what
/// the instance will look like after apply as far as the engine knows.
pub fn propose(config_value: &Value, prior: Option<&Value>, schema: &Block) -> Value {
    let mut out = BTreeMap::new();
    for (name, attr) in &schema.attributes {
        let configured = config_value.get(name);
        // Copied only for the attributes that keep it.
        let v = if keeps_prior(attr, configured) {
            prior.map_or(Value::Unknown, |p| p.get(name).clone())
        } else {
            configured.clone()
        };
        out.insert(name.clone(), v);
    }
    for name in schema.blocks.keys() {
        out.insert(name.clone(), config_value.get(name).clone());
    }
    Value::Map(out.into())
}

/// Replaces the attributes of `proposed` that are identical to the prior
/// ones (kinds and marks included) by the prior values, which state, the
/// change's prior and the planner's instance values already share: an
/// unchanged instance then costs no copy of its value. When every attribute
/// is identical, the whole prior value is taken.
fn share_unchanged(proposed: &mut Value, prior: &Value) {
    let (Value::Map(m), Value::Map(p)) = (&mut *proposed, prior) else { return };
    if m.kind != p.kind {
        return;
    }
    let mut all = m.len() == p.len();
    for (name, v) in m.iter_mut() {
        match p.get(name) {
            Some(pv) if v.identical(pv) => *v = pv.clone(),
            _ => all = false,
        }
    }
    if all {
        *proposed = prior.clone();
    }
}

/// Whether [`propose`], then `ignore_changes` (`ignored`), then
/// [`share_unchanged`] would give the prior value whole: every attribute of
/// the proposal identical to the prior's, and no other. Answers without
/// building the proposal.
fn proposes_prior(config_value: &Value, prior: &Value, schema: &Block, ignored: impl Fn(&str) -> bool) -> bool {
    let Value::Map(p) = prior else { return false };
    // What `propose` builds is an object.
    if p.kind != strata_provider::MapKind::Object {
        return false;
    }
    let mut names = 0;
    for (name, attr) in &schema.attributes {
        if schema.blocks.contains_key(name) {
            return false; // a name both ways: left to the general path
        }
        names += 1;
        let Some(pv) = p.get(name) else { return false };
        if ignored(name) {
            continue; // takes the prior's value
        }
        let configured = config_value.get(name);
        let v = if keeps_prior(attr, configured) { pv } else { configured };
        if !v.identical(pv) {
            return false;
        }
    }
    for name in schema.blocks.keys() {
        names += 1;
        let Some(pv) = p.get(name) else { return false };
        if !ignored(name) && !config_value.get(name).identical(pv) {
            return false;
        }
    }
    names == p.len()
}

/// The attributes whose values differ between prior and proposed, ignoring
/// sensitive marks.
pub fn changed_attributes(prior: &Value, proposed: &Value, schema: &Block) -> Vec<String> {
    schema
        .attributes
        .keys()
        .chain(schema.blocks.keys())
        .filter(|name| !prior.get(name).eq_unmarked(proposed.get(name)))
        .cloned()
        .collect()
}

/// Classifies a change from its changed attributes, the schema's static
/// effects, and a provider's refinements.
pub fn classify(
    changed: &[String],
    schema: &Block,
    overrides: &BTreeMap<String, Disruption>,
) -> (BTreeMap<String, Disruption>, Option<Disruption>) {
    let mut per_attr = BTreeMap::new();
    for name in changed {
        let d = overrides.get(name).copied().unwrap_or_else(|| {
            schema
                .attributes
                .get(name)
                .map(|a| a.on_change)
                .or_else(|| schema.blocks.get(name).map(|b| b.on_change))
                .unwrap_or(Disruption::Replace)
        });
        per_attr.insert(name.clone(), d);
    }
    let max = per_attr.values().copied().max();
    (per_attr, max)
}

/// Plans every instance. Returns the plan plus diagnostics; a plan with error
/// diagnostics must not be applied.
pub fn plan(input: PlanInput<'_>) -> (Plan, Diagnostics) {
    let mut planner = Planner {
        input: &input,
        diags: Diagnostics::default(),
        // Sized for a plan that keeps what state has: growing a map of
        // 100,000 instances rehashes every key about seventeen times.
        instances: FastMap::with_capacity_and_hasher(input.state.instances.len(), Default::default()),
        expansions: FastMap::default(),
        calls: HashMap::new(),
        module_instances: HashMap::from([(Vec::new(), vec![ModuleInstance::root()])]),
        // Sized like the maps: a change is a few hundred bytes, and growing
        // by doubling would leave up to half of the vector's room unused.
        changes: Vec::with_capacity(input.state.instances.len()),
        by_addr: ByAddress::with_capacity(input.state.instances.len()),
        memo: world::Memo::default(),
        prior: input.state.instances.iter().map(|(address, record)| (address.as_str(), record)).collect(),
    };
    let state = input.state;
    if input.options.mode != PlanMode::Destroy {
        for (i, node) in input.analysis.order.iter().enumerate() {
            let Some(config) = input.config.module(&node.module) else { continue };
            let instances = planner.module_instances.get(&node.module).cloned().unwrap_or_default();
            match &node.node {
                Node::Resource(addr) => {
                    if let Some(r) = config.resource(addr) {
                        for m in &instances {
                            planner.plan_resource(m, r, i);
                        }
                    }
                }
                Node::ModuleCall(name) => {
                    if let Some(call) = config.module_calls.get(name) {
                        for m in &instances {
                            planner.expand_call(m, call);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // Instances in state but not (or no longer) in configuration.
    for (address, record) in &state.instances {
        if planner.by_addr.get(&planner.changes, address).is_some() {
            continue;
        }
        let instance_addr = crate::addr::parse_instance(address.split('~').next().unwrap_or(address)).ok();
        let resource_addr = instance_addr.as_ref().map(|i| i.resource.clone());
        let block = instance_addr
            .as_ref()
            .and_then(|i| input.config.module(&i.module.static_path()))
            .and_then(|c| resource_addr.as_ref().and_then(|r| c.resource(r)));
        let reason = if address.contains('~') {
            "deposed object left by an earlier replacement".to_owned()
        } else if input.options.mode == PlanMode::Destroy {
            "destroy".to_owned()
        } else if block.is_some() {
            "its index is no longer in count/for_each".to_owned()
        } else {
            "it is no longer in the configuration".to_owned()
        };
        if let Some(b) = block {
            if b.lifecycle.prevent_destroy && input.options.mode != PlanMode::RefreshOnly && !address.contains('~') {
                planner.diags.push(Diagnostic::error(
                    format!("{address} has lifecycle.prevent_destroy set, but the plan would destroy it"),
                    b.header.clone(),
                    "prevent_destroy is set",
                ).with_help("remove prevent_destroy to destroy it, or leave it in the configuration"));
            }
        }
        let removed = instance_addr.as_ref().and_then(|instance| input.config.removed.iter().find(|rm| rm.from.matches(instance)));
        let (action, reason) = match removed {
            Some(rm) if !rm.destroy && input.options.mode != PlanMode::Destroy => {
                (Action::Forget, "a removed block with destroy = false".to_owned())
            }
            _ => (Action::Delete, reason),
        };
        let change = ResourceChange {
            address: address.clone(),
            resource: instance_addr
                .as_ref()
                .map(|i| InstanceAddr { key: InstanceKey::None, ..i.clone() }.to_string())
                .unwrap_or_default()
                .into(),
            type_name: record.type_name.as_str().into(),
            provider: record.provider.as_str().into(),
            data: false,
            action,
            id: record.id,
            prior: Some(record.attributes.clone()),
            planned: None,
            disruption: None,
            dependencies: record.dependencies.iter().filter(|d| state.instances.contains_key(*d)).cloned().collect(),
            create_before_destroy: record.create_before_destroy,
            each_value: None,
            details: Some(Box::new(ChangeDetails { reason: Some(reason), ..ChangeDetails::default() })),
        };
        planner.push(change);
    }
    planner.apply_targeting();
    if input.options.mode == PlanMode::RefreshOnly {
        for c in &mut planner.changes {
            c.action = if c.prior.is_some() { Action::NoOp } else { c.action };
            if c.prior.is_none() && !c.data {
                c.action = Action::NoOp;
            }
        }
        planner.changes.retain(|c| c.prior.is_some() || c.data);
    }
    let outputs = planner.plan_outputs();
    planner.run_checks();
    let Planner { mut changes, diags, calls, .. } = planner;
    let mut module_calls: Vec<(ModuleInstance, String, CallExpansion)> =
        calls.into_iter().map(|((m, name), c)| (m, name, c)).collect();
    module_calls.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    sort_by_address(&mut changes);
    let plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        mode: input.options.mode,
        lineage: state.meta.lineage,
        serial: state.meta.serial,
        config_fingerprint: input.config.fingerprint(),
        variables: input.variables.clone(),
        changes,
        outputs,
        drift: input.drift.clone(),
        refreshed: input.refreshed.clone(),
        module_calls,
    };
    (plan, diags)
}

/// The changes in address order, sorted in place. Sorts their positions,
/// then moves the changes along the permutation's cycles: sorting the
/// changes themselves moves every one of them about log n times (a change
/// is a few hundred bytes), and collecting them into a second vector would
/// hold two vectors of every change at once (the plan's peak at 100,000
/// instances). Stable, as before.
fn sort_by_address(changes: &mut [ResourceChange]) {
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by(|&a, &b| changes[a].address.cmp(&changes[b].address));
    apply_permutation(changes, &mut order);
}

/// Reorders `items` so that position `i` holds what was at `order[i]`,
/// with swaps along each cycle of the permutation. Leaves `order` the
/// identity.
fn apply_permutation<T>(items: &mut [T], order: &mut [usize]) {
    debug_assert_eq!(items.len(), order.len());
    for start in 0..order.len() {
        // Position `j` wants what was at `order[j]`; after the swap, the
        // item that was at `start` travels on to the next position of the
        // cycle, until the cycle closes at `start`.
        let mut j = start;
        while order[j] != start {
            let k = order[j];
            items.swap(j, k);
            order[j] = j;
            j = k;
        }
        order[j] = j;
    }
}

/// The planner's changes by address: positions in its vector, hashed by
/// the changes' own address strings. A map keyed by address would hold a
/// second copy of every address (100,000 small strings for a large plan).
struct ByAddress {
    table: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl ByAddress {
    fn with_capacity(n: usize) -> ByAddress {
        ByAddress { table: hashbrown::HashTable::with_capacity(n), hasher: Default::default() }
    }

    fn hash(&self, address: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(address)
    }

    /// Indexes `changes[i]`; a later change of the same address takes the
    /// place of the earlier one, as a map's insert would.
    fn insert(&mut self, changes: &[ResourceChange], i: usize) {
        let address = changes[i].address.as_str();
        let hash = self.hash(address);
        let hasher = &self.hasher;
        let rehash = |&j: &usize| {
            use std::hash::BuildHasher;
            hasher.hash_one(changes[j].address.as_str())
        };
        match self.table.entry(hash, |&j| changes[j].address == address, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = i,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }

    /// The position of the change of `address` in `changes` (the vector the
    /// positions were indexed from).
    fn get(&self, changes: &[ResourceChange], address: &str) -> Option<usize> {
        self.table.find(self.hash(address), |&j| changes[j].address == address).copied()
    }
}

/// The names every change of one block has: built once per block and
/// shared by its instances' changes.
struct BlockNames {
    resource: std::sync::Arc<str>,
    type_name: std::sync::Arc<str>,
    provider: std::sync::Arc<str>,
}

/// One instance of an expanded block: its key and, for `for_each`, `each.value`.
type Expanded = (InstanceKey, Option<Value>);

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    diags: Diagnostics,
    /// Planned values of every instance planned so far, for references.
    instances: FastMap<InstanceAddr, Value>,
    expansions: FastMap<(ModuleInstance, ResourceAddr), Expansion>,
    calls: Calls,
    /// Instances of each module (by static path) expanded so far.
    module_instances: HashMap<Vec<String>, Vec<ModuleInstance>>,
    changes: Vec<ResourceChange>,
    by_addr: ByAddress,
    /// Locals and module variables, evaluated once per module instance.
    memo: world::Memo,
    /// State's records by address, hashed: state's own map is a B-tree of
    /// strings, where a lookup among 100,000 addresses compares about forty
    /// keys, each behind a pointer.
    prior: FastMap<&'a str, &'a InstanceRecord>,
}

impl Planner<'_> {
    fn world(&self) -> World<'_, foldhash::fast::RandomState> {
        World::new(self.input.config, self.input.variables, &self.instances, &self.expansions, &self.calls).remembering(&self.memo)
    }

    fn world_at(&self, module: &ModuleInstance) -> World<'_, foldhash::fast::RandomState> {
        self.world().at(module).expect("planned module instances have configurations")
    }

    /// Expands a module call in one module instance.
    fn expand_call(&mut self, module: &ModuleInstance, call: &crate::config::ModuleCall) {
        let what = format!("module.{}", call.name);
        let Some((expansion, keys)) = self.expand(module, call.count.as_ref(), call.for_each.as_ref(), &what) else { return };
        let each: BTreeMap<String, Value> = keys
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (InstanceKey::Key(k), Some(v)) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        self.calls.insert((module.clone(), call.name.clone()), CallExpansion { expansion, each });
        let mut path = module.static_path();
        path.push(call.name.clone());
        // Report errors in the arguments here, where they are written.
        let mut diags = Diagnostics::default();
        {
            let world = self.world_at(module);
            for (key, _) in &keys {
                let scope = world.call_scope(Scope::new(&world), module, &call.name, key);
                for input in &call.inputs {
                    if let Err(e) = eval(&input.expr.expr, &scope) {
                        diags.push(Diagnostic::error(e.message, Span::new(input.expr.file, e.range), format!("in module {:?}", call.name)));
                    }
                }
            }
        }
        self.diags.extend(diags);
        let children = self.module_instances.entry(path).or_default();
        children.extend(keys.into_iter().map(|(k, _)| module.child(&call.name, k)));
    }

    /// Whether module instance `other` belongs with `module`: their keys
    /// agree wherever their paths go through the same calls.
    fn compatible(module: &ModuleInstance, other: &ModuleInstance) -> bool {
        module.0.iter().zip(&other.0).take_while(|(a, b)| a.0 == b.0).all(|(a, b)| a.1 == b.1)
    }

    /// The planned instances of a resource dependency, as seen from `module`.
    fn dependency_instances(&self, module: &ModuleInstance, dep: &graph::ResourceDep<'_>, scope: &Scope) -> Vec<InstanceAddr> {
        if dep.module == module.static_path() {
            return self.dependency_keys(module, dep, scope).into_iter().map(|k| InstanceAddr::in_module(module, dep.addr, k)).collect();
        }
        let mut out = Vec::new();
        for other in self.module_instances.get(dep.module).into_iter().flatten() {
            if !Self::compatible(module, other) {
                continue;
            }
            if let Some(e) = self.expansions.get(&(other.clone(), dep.addr.clone())) {
                out.extend(e.keys().into_iter().map(|k| InstanceAddr::in_module(other, dep.addr, k)));
            }
        }
        out
    }

    fn push(&mut self, change: ResourceChange) {
        self.changes.push(change);
        self.by_addr.insert(&self.changes, self.changes.len() - 1);
    }

    /// Evaluates `count`/`for_each` into the instance keys (with each.value).
    fn expand(
        &mut self,
        module: &ModuleInstance,
        count: Option<&crate::config::Expr>,
        for_each: Option<&crate::config::Expr>,
        what: &str,
    ) -> Option<(Expansion, Vec<Expanded>)> {
        let world = self.world_at(module);
        let scope = Scope::new(&world);
        if let Some(count) = count {
            let v = match eval(&count.expr, &scope) {
                Ok(v) => v,
                Err(e) => {
                    self.diags.push(Diagnostic::error(e.message, Span::new(count.file, e.range), "in count"));
                    return None;
                }
            };
            if v.contains_unknown() {
                self.diags.push(unknown_expansion("count", what, count));
                return None;
            }
            let n = match v.as_i64() {
                Some(n) if n > MAX_INSTANCES as i64 => {
                    self.diags.push(
                        Diagnostic::error(format!("count = {n} is more than the {MAX_INSTANCES} instances one block may have"), count.span(), "too many instances")
                            .with_help("split the block, or check the expression: a count this large is usually a mistake"),
                    );
                    return None;
                }
                Some(n) if n >= 0 => n,
                _ => {
                    self.diags.push(Diagnostic::error(format!("count must be a whole number ≥ 0, found {}", v.to_hcl()), count.span(), "invalid count"));
                    return None;
                }
            };
            return Some((Expansion::Count(n), (0..n).map(|i| (InstanceKey::Index(i), None)).collect()));
        }
        if let Some(fe) = for_each {
            let v = match eval(&fe.expr, &scope) {
                Ok(v) => v,
                Err(e) => {
                    self.diags.push(Diagnostic::error(e.message, Span::new(fe.file, e.range), "in for_each"));
                    return None;
                }
            };
            if v.is_unknown() || matches!(v.unmarked(), Value::List(l) if l.iter().any(Value::contains_unknown)) {
                self.diags.push(unknown_expansion("for_each", what, fe));
                return None;
            }
            // A map's keys carry no marks of their own (a map keyed by
            // secrets is marked as a whole); a set's elements are its keys.
            let sensitive_keys = match v.unmarked() {
                Value::List(items) => items.iter().any(Value::is_sensitive),
                _ => false,
            };
            if v.is_sensitive() || sensitive_keys {
                self.diags.push(Diagnostic::error("for_each cannot use a sensitive value: its keys would appear in addresses", fe.span(), "sensitive"));
                return None;
            }
            let entries: Vec<(String, Value)> = match v.unmarked() {
                Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                // Values carry no set type: a list literal is refused by its
                // syntax, a list with duplicates because no set has them
                // (`toset` is the explicit way to drop them).
                Value::List(_) if is_tuple_syntax(&fe.expr) => {
                    self.diags.push(invalid_for_each(fe, "tuple"));
                    return None;
                }
                Value::List(items) => {
                    let mut keys = Vec::new();
                    for item in items {
                        match item.unmarked() {
                            Value::String(s) => keys.push((s.clone(), item.clone())),
                            other => {
                                self.diags.push(Diagnostic::error(format!("for_each over a set needs strings, found {}", other.kind()), fe.span(), "use toset([...]) of strings or a map"));
                                return None;
                            }
                        }
                    }
                    keys.sort_by(|a, b| a.0.cmp(&b.0));
                    if let Some(pair) = keys.windows(2).find(|w| w[0].0 == w[1].0) {
                        self.diags.push(invalid_for_each(fe, "list").with_help(format!(
                            "the list has {:?} more than once; toset(...) removes duplicates if that is intended",
                            pair[0].0
                        )));
                        return None;
                    }
                    keys
                }
                Value::Null => {
                    self.diags.push(Diagnostic::error("for_each must not be null", fe.span(), "null"));
                    return None;
                }
                other => {
                    self.diags.push(Diagnostic::error(format!("for_each needs a map or a set of strings, found {}", other.kind()), fe.span(), "here"));
                    return None;
                }
            };
            let keys = entries.iter().map(|(k, _)| k.clone()).collect();
            return Some((Expansion::ForEach(keys), entries.into_iter().map(|(k, v)| (InstanceKey::Key(k), Some(v))).collect()));
        }
        Some((Expansion::Single, vec![(InstanceKey::None, None)]))
    }

    /// Plans every instance of block `r` in one module instance; `position`
    /// is the block's in the analysis's order, which has its dependencies.
    fn plan_resource(&mut self, module: &ModuleInstance, r: &Resource, position: usize) {
        let input = self.input;
        let Some(schema) = input.schemas.resource(r.provider_name(), r.addr.mode, &r.addr.type_name) else { return };
        let what = InstanceAddr::in_module(module, &r.addr, InstanceKey::None).to_string();
        let Some((expansion, keys)) = self.expand(module, r.count.as_ref(), r.for_each.as_ref(), &what) else { return };
        self.expansions.insert((module.clone(), r.addr.clone()), expansion);
        let static_path = module.static_path();
        let mut deps: Vec<graph::ResourceDep> = input.analysis.resource_deps(position).collect();
        // Resources in a module also wait for what its calls depend on.
        for depth in 0..static_path.len() {
            deps.extend(input.analysis.module_call_deps(&static_path[..depth], &static_path[depth]));
        }
        // Shared by the changes of every instance of the block.
        let names = BlockNames { resource: what.as_str().into(), type_name: r.addr.type_name.as_str().into(), provider: r.provider_config_addr().into() };
        for (key, each_value) in keys {
            let addr = InstanceAddr::in_module(module, &r.addr, key.clone());
            let address = addr.to_string();
            let world = self.world_at(module);
            let mut scope = Scope::new(&world);
            if let InstanceKey::Index(i) = key {
                scope.count_index = Some(i);
            }
            if let (InstanceKey::Key(k), Some(v)) = (&key, &each_value) {
                scope.each = Some((Value::from(k.as_str()), v.clone()));
            }
            let mut diags = Diagnostics::default();
            let config_value = eval_body(&r.body, schema, &scope, &mut diags);
            // Dependencies: single instances where the index is known here.
            let mut dependencies = BTreeSet::new();
            for d in &deps {
                dependencies.extend(self.dependency_instances(module, d, &scope).into_iter().map(|a| a.to_string()));
            }
            let triggered = self.replace_triggered(module, r, &scope);
            for v in &r.lifecycle.preconditions {
                condition_diagnostic(&address, "precondition", v, &scope, &mut diags);
            }
            drop(scope);
            drop(world);
            let failed = diags.has_errors();
            self.diags.extend(diags);
            if failed {
                continue;
            }
            let change = if r.addr.mode == Mode::Data {
                self.plan_data(&names, &address, config_value, dependencies)
            } else {
                self.plan_managed(r, &names, schema, &address, config_value, triggered, dependencies, each_value)
            };
            if !r.lifecycle.postconditions.is_empty() {
                if let Some(planned) = change.planned.clone() {
                    let world = self.world_at(module);
                    let mut scope = Scope::new(&world);
                    scope.self_value = Some(planned);
                    if let InstanceKey::Index(i) = key {
                        scope.count_index = Some(i);
                    }
                    let mut diags = Diagnostics::default();
                    for v in &r.lifecycle.postconditions {
                        condition_diagnostic(&address, "postcondition", v, &scope, &mut diags);
                    }
                    drop(scope);
                    drop(world);
                    self.diags.extend(diags);
                }
            }
            // A data source not read yet: its results are not known, so what
            // uses them waits (is unknown) rather than sees null.
            let visible = match &change.planned {
                Some(Value::Map(m)) if change.data && change.action == Action::Read => {
                    let mut m = m.clone();
                    for (name, a) in &schema.attributes {
                        if a.presence == strata_provider::Presence::Computed {
                            m.insert(name.clone(), Value::Unknown);
                        }
                    }
                    Value::Map(m)
                }
                planned => planned.clone().unwrap_or(Value::Unknown),
            };
            self.instances.insert(addr, visible);
            self.push(change);
        }
    }

    /// The instance keys of a dependency in the same module instance,
    /// narrowed by its index expression.
    fn dependency_keys(&self, module: &ModuleInstance, dep: &graph::ResourceDep<'_>, scope: &Scope) -> Vec<InstanceKey> {
        let expansion = self.expansions.get(&(module.clone(), dep.addr.clone()));
        let all = || expansion.map(|e| e.keys()).unwrap_or_default();
        let Some(index) = dep.index else { return all() };
        match eval(index, scope).map(|v| v.deep_unmark()) {
            Ok(Value::Number(n)) if matches!(expansion, Some(Expansion::Count(_))) && n.is_integer() => {
                vec![InstanceKey::Index(n.to_i64().unwrap_or(-1))]
            }
            Ok(Value::String(s)) if matches!(expansion, Some(Expansion::ForEach(_))) => vec![InstanceKey::Key(s)],
            _ => all(),
        }
    }

    /// Whether a `replace_triggered_by` reference changes in this plan.
    fn replace_triggered(&self, module: &ModuleInstance, r: &Resource, scope: &Scope) -> Option<String> {
        for e in &r.lifecycle.replace_triggered_by {
            for reference in crate::config::refs::references(&e.expr) {
                let crate::config::refs::RefTarget::Resource { addr, index } = reference.target else { continue };
                let static_path = module.static_path();
                let dep = graph::ResourceDep { module: &static_path, addr: &addr, index: index.as_ref() };
                for k in self.dependency_keys(module, &dep, scope) {
                    let a = InstanceAddr::in_module(module, &addr, k).to_string();
                    if let Some(i) = self.by_addr.get(&self.changes, &a) {
                        if matches!(self.changes[i].action, Action::Create | Action::Update | Action::Replace) {
                            return Some(format!("replace_triggered_by: {a} changes"));
                        }
                    }
                }
            }
        }
        None
    }

    fn plan_data(&mut self, names: &BlockNames, address: &str, config_value: Value, dependencies: BTreeSet<String>) -> ResourceChange {
        let (action, planned) = match self.input.data.get(address) {
            Some(v) => (Action::NoOp, v.clone()),
            None => (Action::Read, config_value),
        };
        ResourceChange {
            address: address.to_owned(),
            resource: names.resource.clone(),
            type_name: names.type_name.clone(),
            provider: names.provider.clone(),
            data: true,
            action,
            id: Uuid::nil(),
            prior: None,
            planned: Some(planned),
            disruption: None,
            dependencies: dependencies.into_iter().collect(),
            create_before_destroy: false,
            each_value: None,
            details: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_managed(
        &mut self,
        r: &Resource,
        names: &BlockNames,
        schema: &Block,
        address: &str,
        config_value: Value,
        triggered: Option<String>,
        dependencies: BTreeSet<String>,
        each_value: Option<Value>,
    ) -> ResourceChange {
        let prior = self.prior.get(address).copied();
        let prior_value = prior.map(|p| &p.attributes);
        let ignored = |name: &str| r.lifecycle.ignore_all_changes || r.lifecycle.ignore_changes.iter().any(|n| n == name);
        let proposed = match prior_value {
            // The common case of a no-op plan, without building the value
            // the general path below would build and then drop.
            Some(p) if proposes_prior(&config_value, p, schema, ignored) => p.clone(),
            _ => {
                let mut proposed = propose(&config_value, prior_value, schema);
                // ignore_changes: keep the prior value of the ignored attributes.
                if let (Some(p), Value::Map(m)) = (prior_value, &mut proposed) {
                    for (name, v) in m.iter_mut() {
                        if ignored(name) {
                            *v = p.get(name).clone();
                        }
                    }
                }
                if let Some(p) = prior_value {
                    share_unchanged(&mut proposed, p);
                }
                proposed
            }
        };
        let mut change = ResourceChange {
            address: address.to_owned(),
            resource: names.resource.clone(),
            type_name: names.type_name.clone(),
            provider: names.provider.clone(),
            data: false,
            action: Action::Create,
            id: prior.map(|p| p.id).unwrap_or_else(Uuid::new_v4),
            prior: prior_value.cloned(),
            planned: None,
            disruption: None,
            dependencies: dependencies.into_iter().collect(),
            create_before_destroy: r.lifecycle.create_before_destroy,
            each_value: each_value.map(Box::new),
            details: None,
        };
        let (moved_from, importing) = (self.input.moved.get(address), self.input.importing.get(address));
        if moved_from.is_some() || importing.is_some() {
            change.edit_details(|d| {
                d.moved_from = moved_from.cloned();
                d.importing = importing.cloned();
            });
        }
        let Some(prior_value) = prior_value else {
            change.planned = Some(proposed);
            return change;
        };
        let changed = changed_attributes(prior_value, &proposed, schema);
        change.planned = Some(proposed);
        let forced = self.input.options.replace.iter().any(|t| t.to_string() == address || t.matches(&crate::addr::parse_instance(address).unwrap_or_else(|_| r.addr.instance(InstanceKey::None))));
        refine(&mut change, schema, &changed, &BTreeMap::new());
        if forced {
            change.action = Action::Replace;
            change.edit_details(|d| d.reason = Some("requested with -replace".into()));
        } else if let Some(reason) = triggered {
            change.action = Action::Replace;
            change.edit_details(|d| d.reason = Some(reason));
        }
        if change.action == Action::Replace {
            self.mark_replacement(&mut change, schema, r);
        } else if change.action == Action::Update {
            // Computed attributes may change with the update, unless the
            // provider declares them stable (they change only by replacement).
            if let Some(Value::Map(m)) = &mut change.planned {
                for (name, attr) in &schema.attributes {
                    if attr.presence == Presence::Computed && name != "id" && !attr.stable {
                        m.insert(name.clone(), Value::Unknown);
                    }
                }
            }
        }
        change
    }

    fn mark_replacement(&mut self, change: &mut ResourceChange, schema: &Block, r: &Resource) {
        let replaced = change.id;
        change.edit_details(|d| d.prior_id = Some(replaced));
        change.id = Uuid::new_v4();
        change.planned = Some(propose(
            change.planned.as_ref().expect("managed changes have planned values"),
            None,
            schema,
        ));
        if let Some(Value::Map(m)) = &mut change.planned {
            for (name, attr) in &schema.attributes {
                if attr.presence == Presence::Computed {
                    m.insert(name.clone(), Value::Unknown);
                }
            }
        }
        if r.lifecycle.prevent_destroy {
            self.diags.push(Diagnostic::error(
                format!("{} has lifecycle.prevent_destroy set, but the plan would replace it", change.address),
                r.header.clone(),
                "prevent_destroy is set",
            ));
        }
    }

    fn apply_targeting(&mut self) {
        let opts = self.input.options;
        if opts.targets.is_empty() && opts.excludes.is_empty() {
            return;
        }
        let matches = |targets: &[Target], address: &str| {
            crate::addr::parse_instance(address.split('~').next().unwrap_or(address))
                .is_ok_and(|a| targets.iter().any(|t| t.matches(&a)))
        };
        let mut keep: BTreeSet<String> = self.changes.iter().map(|c| c.address.clone()).collect();
        if !opts.targets.is_empty() {
            // Targets plus everything they depend on; when destroying,
            // targets plus everything that depends on them.
            let mut stack: Vec<String> = keep.iter().filter(|a| matches(&opts.targets, a)).cloned().collect();
            keep.clear();
            while let Some(a) = stack.pop() {
                if !keep.insert(a.clone()) {
                    continue;
                }
                if opts.mode == PlanMode::Destroy {
                    stack.extend(self.changes.iter().filter(|c| c.dependencies.contains(&a)).map(|c| c.address.clone()));
                } else if let Some(i) = self.by_addr.get(&self.changes, &a) {
                    stack.extend(self.changes[i].dependencies.iter().cloned());
                }
            }
        }
        if !opts.excludes.is_empty() {
            // Excluded instances and everything that depends on them.
            let mut excluded: BTreeSet<String> = keep.iter().filter(|a| matches(&opts.excludes, a)).cloned().collect();
            loop {
                let more: Vec<String> = self
                    .changes
                    .iter()
                    .filter(|c| !excluded.contains(&c.address) && c.dependencies.iter().any(|d| excluded.contains(d)))
                    .map(|c| c.address.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                excluded.extend(more);
            }
            keep.retain(|a| !excluded.contains(a));
        }
        for c in &mut self.changes {
            if !keep.contains(&c.address) {
                c.action = Action::NoOp;
                c.planned = c.prior.clone();
                if let Some(prior_id) = c.edit_details(|d| d.prior_id.take()) {
                    c.id = prior_id;
                }
            }
        }
        self.changes.retain(|c| c.prior.is_some() || c.action != Action::NoOp);
    }

    /// `check` blocks: a failed assertion is a warning, never an error.
    fn run_checks(&mut self) {
        let world = self.world();
        let scope = Scope::new(&world);
        let mut diags = Diagnostics::default();
        for c in &self.input.config.checks {
            for v in &c.asserts {
                match crate::config::eval::condition(v, &scope) {
                    crate::config::eval::Condition::Failed(message) => diags.push(
                        Diagnostic::error(format!("check {:?} failed: {message}", c.name), v.condition.span(), "this assertion is false").warning(),
                    ),
                    crate::config::eval::Condition::Error(e) => diags.push(
                        Diagnostic::error(format!("check {:?} could not be evaluated: {}", c.name, e.message), Span::new(v.condition.file, e.range), "here").warning(),
                    ),
                    _ => {}
                }
            }
        }
        drop(scope);
        drop(world);
        self.diags.extend(diags);
    }

    fn plan_outputs(&mut self) -> BTreeMap<String, OutputChange> {
        let mut out = BTreeMap::new();
        if self.input.options.mode == PlanMode::Destroy {
            return out;
        }
        let world = self.world();
        let scope = Scope::new(&world);
        let mut diags = Diagnostics::default();
        for o in self.input.config.outputs.values() {
            let value = match eval(&o.value.expr, &scope) {
                Ok(v) => v,
                Err(e) => {
                    diags.push(Diagnostic::error(e.message, Span::new(o.value.file, e.range), "here"));
                    continue;
                }
            };
            if value.contains_sensitive() && !o.sensitive {
                diags.push(Diagnostic::error(
                    format!("output {:?} refers to sensitive values", o.name),
                    o.value.span(),
                    "sensitive",
                ).with_help("set sensitive = true in the output block to confirm it may hold secrets"));
                continue;
            }
            let value = if o.sensitive { value.into_sensitive() } else { value };
            out.insert(
                o.name.clone(),
                OutputChange { before: self.input.state.outputs.get(&o.name).cloned(), after: value, sensitive: o.sensitive },
            );
        }
        drop(scope);
        drop(world);
        self.diags.extend(diags);
        out
    }
}

/// Marks a provider result: the schema's sensitive attributes, the marks of
/// the planned values, and any attribute that echoes a sensitive planned
/// value (a provider that copies a secret must not reveal it).
pub fn mark_result(value: Value, planned: &Value, schema: &Block) -> Value {
    let secrets: Vec<&Value> =
        planned.as_map().map(|m| m.values().filter(|v| v.contains_sensitive()).collect()).unwrap_or_default();
    match mark_sensitive(value.with_marks_from(planned), schema) {
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let plain = v.clone().deep_unmark();
                    let source: Option<Value> = if v.contains_sensitive() {
                        None
                    } else {
                        secrets.iter().find(|s| (**s).clone().deep_unmark() == plain).map(|s| (*s).clone())
                    };
                    match source {
                        Some(source) => (k, v.with_marks_from(&source)),
                        None => (k, v),
                    }
                })
                .collect(),
        ),
        v => v,
    }
}

/// Marks the schema's sensitive attributes in a provider result.
pub fn mark_sensitive(value: Value, schema: &Block) -> Value {
    match value {
        Value::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let v = if schema.is_sensitive(&k) && !v.is_null() { v.into_sensitive() } else { v };
                    (k, v)
                })
                .collect(),
        ),
        v => v,
    }
}

/// Renames state records as the configuration's `moved` blocks say: an
/// instance moves when its old address is in state and its new one is not.
/// Returns new address → old address.
pub fn apply_moves(config: &Config, state: &mut Snapshot) -> BTreeMap<String, String> {
    let mut moved = BTreeMap::new();
    for m in &config.moved {
        let pairs: Vec<(String, String)> = state
            .instances
            .keys()
            .filter_map(|a| crate::addr::parse_instance(a).ok())
            .filter_map(|i| retarget(&i, &m.from, &m.to).map(|to| (i.to_string(), to.to_string())))
            .collect();
        for (from, to) in pairs {
            if state.instances.contains_key(&to) {
                continue;
            }
            if let Some(mut record) = state.instances.remove(&from) {
                record.address = to.clone();
                state.instances.insert(to.clone(), record);
                let origin = moved.remove(&from).unwrap_or(from);
                moved.insert(to, origin);
            }
        }
    }
    moved
}

/// Where `addr` goes when `from` moves to `to`, if `from` covers it.
fn retarget(addr: &InstanceAddr, from: &Target, to: &Target) -> Option<InstanceAddr> {
    if !from.matches(addr) {
        return None;
    }
    let mut module: Vec<(String, InstanceKey)> = to
        .module
        .iter()
        .enumerate()
        .map(|(i, (name, key))| (name.clone(), key.clone().or_else(|| addr.module.0.get(i).map(|(_, k)| k.clone())).unwrap_or(InstanceKey::None)))
        .collect();
    if from.resource.is_none() {
        // A whole module moves: what is inside it comes along.
        module.extend(addr.module.0[from.module.len()..].iter().cloned());
        return Some(InstanceAddr { module: crate::addr::ModuleInstance(module), ..addr.clone() });
    }
    let key = match &from.key {
        Some(_) => to.key.clone().unwrap_or(InstanceKey::None),
        None => addr.key.clone(),
    };
    Some(InstanceAddr { module: crate::addr::ModuleInstance(module), resource: to.resource.clone()?, key })
}

/// Reports a failed or broken pre/postcondition; unknown ones wait for apply.
fn condition_diagnostic(address: &str, kind: &str, v: &crate::config::Validation, scope: &Scope, diags: &mut Diagnostics) {
    match crate::config::eval::condition(v, scope) {
        crate::config::eval::Condition::Failed(message) => {
            diags.push(Diagnostic::error(format!("{kind} of {address} failed: {message}"), v.condition.span(), "this condition is false"))
        }
        crate::config::eval::Condition::Error(e) => {
            diags.push(Diagnostic::error(format!("{kind} of {address}: {}", e.message), Span::new(v.condition.file, e.range), "here"))
        }
        _ => {}
    }
}

/// Says, per change, what a rollback of this apply could not restore, from
/// each resource type's declared `UndoSupport`: a replacement without
/// `create_before_destroy` whose type cannot keep the old object aside, and a
/// `data-loss` update whose type cannot undo it exactly. Run once the
/// disruptions are final (after providers refined them). A provider's own
/// reason (set while refining) stands when the engine has none.
pub fn mark_irreversible(plan: &mut Plan, schemas: &Schemas) {
    for change in plan.changes.iter_mut().filter(|c| !c.data) {
        let provider = change.provider.split('.').next().unwrap_or_default();
        let support = schemas.0.get(provider).and_then(|p| p.undo.get(&*change.type_name)).copied().unwrap_or_default();
        let from_provider = change.edit_details(|d| d.irreversible.take()).filter(|_| change.action != Action::NoOp);
        let irreversible = match change.action {
            Action::Replace if !change.create_before_destroy && !support.retire => Some(format!(
                "the old object is destroyed before its replacement is created and {} cannot keep it aside; \
                 create_before_destroy = true avoids this",
                change.type_name
            )),
            Action::Update | Action::Replace if change.disruption == Some(Disruption::DataLoss) && !support.data_loss => Some(format!(
                "{} cannot undo this data-loss change exactly; rollback restores its settings, not the lost data",
                change.type_name
            )),
            _ => from_provider,
        };
        if irreversible.is_some() {
            change.edit_details(|d| d.irreversible = irreversible);
        }
    }
}

/// Sets a change's action and disruption from its changed attributes.
pub fn refine(change: &mut ResourceChange, schema: &Block, changed: &[String], overrides: &BTreeMap<String, Disruption>) {
    if change.prior.is_none() || change.data {
        return;
    }
    let (per_attr, max) = classify(changed, schema, overrides);
    let replace_because: Vec<String> = per_attr.iter().filter(|(_, d)| **d == Disruption::Replace).map(|(n, _)| n.clone()).collect();
    change.action = if !replace_because.is_empty() {
        Action::Replace
    } else if max.is_some() {
        Action::Update
    } else {
        Action::NoOp
    };
    change.disruption = max;
    // An unchanged instance (most of a plan) has neither: no details to box.
    if replace_because.is_empty() && per_attr.is_empty() && change.details.is_none() {
        return;
    }
    change.edit_details(|d| {
        d.replace_because = replace_because;
        d.attribute_disruptions = per_attr;
    });
}

fn unknown_expansion(what: &str, addr: &str, expr: &crate::config::Expr) -> Diagnostic {
    // Name what is unknown: the resources and modules the expression reads.
    let mut sources: Vec<String> = crate::config::refs::references(&expr.expr)
        .into_iter()
        .filter_map(|r| match r.target {
            crate::config::refs::RefTarget::Resource { addr, .. } => Some(addr.to_string()),
            crate::config::refs::RefTarget::Module { name, output } => {
                Some(format!("module.{name}{}", output.map(|o| format!(".{o}")).unwrap_or_default()))
            }
            _ => None,
        })
        .collect();
    sources.dedup();
    let from = if sources.is_empty() { String::new() } else { format!(" ({})", sources.join(", ")) };
    Diagnostic::error(
        format!("the {what} of {addr} depends on values that are not known until apply{from}"),
        expr.span(),
        "not known until apply",
    )
    .with_help(format!(
        "use values known at plan time, or first apply what it depends on with -target{}, then plan again",
        sources.first().map(|s| format!(" {s}")).unwrap_or_default()
    ))
}

/// The most instances one `count` may ask for: beyond this, a typo
/// (`count = 1e9`) would exhaust memory before anything could be reported.
pub const MAX_INSTANCES: usize = 100_000;

/// Terraform's refusal of a `for_each` that is neither a map nor a set of
/// strings.
fn invalid_for_each(fe: &crate::config::Expr, found: &str) -> Diagnostic {
    Diagnostic::error(
        format!(
            "Invalid for_each argument: the \"for_each\" argument must be a map, or set of strings, and you have provided a value of type {found}"
        ),
        fe.span(),
        "not a map or a set of strings",
    )
    .with_help("convert it with toset(...) or build a map")
}

/// A list written as one (`[...]`, `[for ...]`), as opposed to a set from
/// `toset`, a variable or a reference.
fn is_tuple_syntax(expr: &crate::config::ast::Node) -> bool {
    use crate::config::ast::Kind;
    match &expr.kind {
        Kind::Array(_) => true,
        Kind::For(f) => f.key.is_none(),
        Kind::Parenthesis(inner) => is_tuple_syntax(inner),
        _ => false,
    }
}

#[cfg(test)]
mod permutation_tests {
    use super::apply_permutation;

    /// What `apply_permutation` must do, the plain way.
    fn by_collecting(items: &[u32], order: &[usize]) -> Vec<u32> {
        order.iter().map(|&i| items[i]).collect()
    }

    #[test]
    fn reorders_along_every_cycle() {
        let cases: Vec<Vec<usize>> = vec![
            vec![],
            vec![0],
            vec![0, 1, 2],
            vec![1, 0],
            vec![2, 0, 1],
            vec![1, 2, 0],
            // Two cycles and a fixed point.
            vec![1, 0, 2, 5, 3, 4],
            vec![4, 3, 2, 1, 0],
        ];
        for order in cases {
            let items: Vec<u32> = (0..order.len() as u32).map(|i| i * 10).collect();
            let expected = by_collecting(&items, &order);
            let (mut got, mut order) = (items, order);
            apply_permutation(&mut got, &mut order);
            assert_eq!(got, expected);
            assert!(order.iter().enumerate().all(|(i, &o)| i == o), "order left as the identity");
        }
    }

    #[test]
    fn agrees_with_collecting_on_every_permutation_of_five() {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut out = Vec::new();
            for p in permutations(n - 1) {
                for at in 0..n {
                    let mut q = p.clone();
                    q.insert(at, n - 1);
                    out.push(q);
                }
            }
            out
        }
        for order in permutations(5) {
            let items: Vec<u32> = vec![7, 3, 9, 1, 5];
            let expected = by_collecting(&items, &order);
            let (mut got, mut order) = (items, order);
            apply_permutation(&mut got, &mut order);
            assert_eq!(got, expected);
        }
    }
}
