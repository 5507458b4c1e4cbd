//! Dependency graphs.
//!
//! Two levels: the *block* graph of variables, locals, resources and outputs
//! (built statically from references; it orders evaluation and finds cycles),
//! and the *instance* graph of one plan's changes, which apply walks.

use crate::addr::{Mode, ResourceAddr};
use crate::config::refs::{references, RefTarget};
use crate::config::{Config, Diagnostic, Diagnostics, Expr, Span};
use crate::config::ast;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use foldhash::{HashMap, HashSet, HashSetExt};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A block of the configuration that takes part in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Variable(String),
    Local(String),
    Resource(ResourceAddr),
    Output(String),
    Check(String),
    /// A `module` block of the calling module.
    ModuleCall(String),
}

/// A node within its module (static path: module call names from the root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GNode {
    pub module: Vec<String>,
    pub node: Node,
}

impl GNode {
    fn new(module: &[String], node: Node) -> GNode {
        GNode { module: module.to_vec(), node }
    }
}

impl fmt::Display for GNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.module {
            write!(f, "module.{m}.")?;
        }
        match &self.node {
            Node::Variable(v) => write!(f, "var.{v}"),
            Node::Local(l) => write!(f, "local.{l}"),
            Node::Resource(r) => r.fmt(f),
            Node::Output(o) => write!(f, "output.{o}"),
            Node::Check(c) => write!(f, "check.{c}"),
            Node::ModuleCall(m) => write!(f, "module.{m}"),
        }
    }
}

/// A dependency of a resource on another resource, directly or through
/// locals, variables, module calls and module outputs, as the planner reads
/// it: borrowed from the analysis (see [`StoredDep`]).
#[derive(Debug, Clone, Copy)]
pub struct ResourceDep<'a> {
    /// The module (static path) the depended-on resource is in.
    pub module: &'a [String],
    pub addr: &'a ResourceAddr,
    /// The index in `addr[index]` when referenced directly, in the same
    /// module, with one; lets the planner link single instances.
    pub index: Option<&'a ast::Node>,
}

/// A resource dependency as the analysis keeps it for the whole plan: the
/// depended-on resource's position in [`Analysis::order`], whose node holds
/// its module path and address, instead of a copy of both (over a hundred
/// bytes and two strings per dependency, a sixth of the plan's configuration
/// side at 100,000 blocks; issue 12). The index expression, which few
/// references have, is boxed.
#[derive(Debug, Clone)]
struct StoredDep {
    target: u32,
    index: Option<Box<ast::Node>>,
}

const _: () = assert!(std::mem::size_of::<StoredDep>() <= 16);

/// The result of analysing a configuration's references.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Evaluation order of the blocks of every module (dependencies first).
    pub order: Vec<GNode>,
    /// The resources each block of `order` depends on, at the block's
    /// position (empty for blocks other than resources): the planner walks
    /// `order`, so a position finds them without a map keyed by a copy of
    /// every resource's module path and address. See [`Analysis::resource_deps`].
    resource_deps: Vec<Box<[StoredDep]>>,
    /// Resources each module call depends on (its inputs, count, for_each
    /// and depends_on), so the module's resources wait for them.
    module_call_deps: BTreeMap<(Vec<String>, String), Box<[StoredDep]>>,
}

impl Analysis {
    /// The resources the block at `order[i]` depends on.
    pub fn resource_deps(&self, i: usize) -> impl Iterator<Item = ResourceDep<'_>> + '_ {
        self.resource_deps.get(i).into_iter().flat_map(|deps| deps.iter()).filter_map(|d| self.dep(d))
    }

    /// The resources the call of module `name` in module `module` (static
    /// path) depends on.
    pub fn module_call_deps<'s>(&'s self, module: &[String], name: &str) -> impl Iterator<Item = ResourceDep<'s>> + 's {
        // The map is small (one entry per module call), and keyed by owned
        // paths; a lookup builds one key.
        let key = (module.to_vec(), name.to_owned());
        self.module_call_deps.get(&key).into_iter().flat_map(|deps| deps.iter()).filter_map(|d| self.dep(d))
    }

    fn dep<'s>(&'s self, d: &'s StoredDep) -> Option<ResourceDep<'s>> {
        let target = self.order.get(d.target as usize)?;
        let Node::Resource(addr) = &target.node else { return None };
        Some(ResourceDep { module: &target.module, addr, index: d.index.as_deref() })
    }
}

/// The block graph's nodes of one module, by name, borrowed from its
/// configuration: references are resolved to node indices without building
/// (and hashing) a [`GNode`] per reference.
#[derive(Default)]
struct ModuleNodes<'c> {
    variables: HashMap<&'c str, NodeIndex>,
    locals: HashMap<&'c str, NodeIndex>,
    resources: HashMap<&'c ResourceAddr, NodeIndex>,
    outputs: HashMap<&'c str, NodeIndex>,
    checks: HashMap<&'c str, NodeIndex>,
    calls: HashMap<&'c str, NodeIndex>,
}

/// Checks every reference of the configuration and its modules, orders the
/// blocks, and reports undeclared names and cycles (naming every member).
pub fn analyze(root: &Config) -> (Analysis, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut graph: DiGraph<GNode, ()> = DiGraph::new();
    let mut spans: Vec<Span> = Vec::new();
    let modules = root.modules();
    let module_index: HashMap<&[String], usize> = modules.iter().enumerate().map(|(i, (path, _))| (path.as_slice(), i)).collect();
    let mut nodes: Vec<ModuleNodes> = Vec::with_capacity(modules.len());
    for (path, config) in &modules {
        let mut add = |n: Node, span: &Span| {
            spans.push(span.clone());
            graph.add_node(GNode::new(path, n))
        };
        let mut m = ModuleNodes::default();
        for v in config.variables.values() {
            m.variables.insert(&v.name, add(Node::Variable(v.name.clone()), &v.span));
        }
        for l in config.locals.values() {
            m.locals.insert(&l.name, add(Node::Local(l.name.clone()), &l.span));
        }
        for r in config.resources.values() {
            m.resources.insert(&r.addr, add(Node::Resource(r.addr.clone()), &r.header));
        }
        for o in config.outputs.values() {
            m.outputs.insert(&o.name, add(Node::Output(o.name.clone()), &o.span));
        }
        for c in &config.checks {
            m.checks.insert(&c.name, add(Node::Check(c.name.clone()), &c.span));
        }
        for call in config.module_calls.values() {
            m.calls.insert(&call.name, add(Node::ModuleCall(call.name.clone()), &call.header));
        }
        nodes.push(m);
    }
    // The references of every block, found on every core: the blocks of each module in
    // chunks, handed back in order, so edges and diagnostics come in the order of one pass.
    let cx = Resolver { modules: &modules, module_index: &module_index, nodes: &nodes, graph: &graph };
    let mut jobs = Vec::new();
    let mut blocks = 0;
    for (mi, (_, config)) in modules.iter().enumerate() {
        let locals: Vec<&crate::config::Local> = config.locals.values().collect();
        let resources: Vec<&crate::config::Resource> = config.resources.values().collect();
        blocks += locals.len() + resources.len() + config.outputs.len();
        jobs.extend(locals.chunks(CHUNK).map(|chunk| (mi, Blocks::Locals(chunk.to_vec()))));
        jobs.extend(resources.chunks(CHUNK).map(|chunk| (mi, Blocks::Resources(chunk.to_vec()))));
        jobs.push((mi, Blocks::Rest));
    }
    let threads = if blocks < 4 * CHUNK { 1 } else { crate::config::pieces::threads() };
    let mut direct: Vec<Vec<(NodeIndex, Option<ast::Node>)>> = vec![Vec::new(); graph.node_count()];
    let mut call_edges: Vec<(NodeIndex, NodeIndex)> = Vec::new();
    crate::config::pieces::in_order(&jobs, threads, |(mi, blocks)| cx.references(*mi, blocks), |_, found| {
        for (from, to) in found.edges {
            direct[from.index()].extend(to);
        }
        call_edges.extend(found.calls);
        diags.extend(found.diags);
    });
    drop(jobs);

    for (var, call) in call_edges {
        direct[var.index()].push((call, None));
    }
    // One edge per pair, added in the order of the blocks' names (as the
    // map this replaced had them), so evaluation order stays the same. The
    // edges into a block all come from its own list of references, so
    // duplicates are looked for there: `update_edge` would scan the node's
    // edges, which is quadratic for a local or variable every block names,
    // and one hash set of every edge cost a hashing per reference.
    let mut by_name: Vec<NodeIndex> = graph.node_indices().filter(|i| !direct[i.index()].is_empty()).collect();
    by_name.sort_by(|a, b| graph[*a].cmp(&graph[*b]));
    let mut seen: HashSet<NodeIndex> = HashSet::new();
    for from in by_name {
        let to = &direct[from.index()];
        seen.clear();
        for (i, &(dep, _)) in to.iter().enumerate() {
            // A handful of references: a look back costs less than hashing.
            let first = if to.len() <= 16 { !to[..i].iter().any(|(d, _)| *d == dep) } else { seen.insert(dep) };
            if first {
                graph.add_edge(dep, from, ());
            }
        }
    }

    let mut analysis = Analysis::default();
    analysis.resource_deps.reserve(graph.node_count());
    let order = match toposort(&graph, None) {
        Ok(order) => order,
        Err(_) => {
            for scc in tarjan_scc(&graph) {
                if scc.len() < 2 {
                    continue;
                }
                let mut members: Vec<NodeIndex> = scc;
                members.sort_by(|a, b| graph[*a].cmp(&graph[*b]));
                let names: Vec<String> = members.iter().map(|n| graph[*n].to_string()).collect();
                let span = members.first().map(|n| spans[n.index()].clone()).unwrap_or_default();
                diags.push(Diagnostic::error(
                    format!("dependency cycle: {}", names.join(" -> ")),
                    span,
                    "part of the cycle",
                ).with_help("break the cycle by removing one of these references"));
            }
            return (analysis, diags);
        }
    };

    // Resource-to-resource dependencies, following every other kind of node.
    // A dependency names its resource by the resource's position in `order`.
    let mut position = vec![0u32; graph.node_count()];
    for (p, &i) in order.iter().enumerate() {
        position[i.index()] = u32::try_from(p).unwrap_or(u32::MAX);
    }
    let mut reach: Vec<Option<BTreeSet<u32>>> = vec![None; graph.node_count()];
    for &i in &order {
        let node = &graph[i];
        // Sized exactly: the dependencies stay in the analysis for the
        // whole plan, and a vector grown by pushing has room for four where
        // most have one or two.
        let len = direct[i.index()]
            .iter()
            .map(|(to, _)| match &graph[*to].node {
                Node::Resource(_) => 1,
                _ => reach[to.index()].as_ref().map_or(0, BTreeSet::len),
            })
            .sum();
        let mut deps: Vec<StoredDep> = Vec::with_capacity(len);
        for (to, index) in &direct[i.index()] {
            let target = &graph[*to];
            match &target.node {
                Node::Resource(_) => deps.push(StoredDep {
                    target: position[to.index()],
                    index: if target.module == node.module { index.clone().map(Box::new) } else { None },
                }),
                _ => deps.extend(reach[to.index()].iter().flatten().map(|&target| StoredDep { target, index: None })),
            }
        }
        match &node.node {
            Node::Resource(_) => {
                // Anything that depends on this resource depends on it alone.
                analysis.resource_deps.push(deps.into_boxed_slice());
            }
            other => {
                analysis.resource_deps.push(Box::default());
                let reached = deps.iter().map(|d| d.target).collect();
                if let Node::ModuleCall(name) = other {
                    analysis.module_call_deps.insert((node.module.clone(), name.clone()), deps.into_boxed_slice());
                }
                reach[i.index()] = Some(reached);
            }
        }
    }
    drop(reach);
    // The graph is done with: its nodes move into the order.
    let mut nodes: Vec<Option<GNode>> = graph.into_nodes_edges().0.into_iter().map(|n| Some(n.weight)).collect();
    analysis.order = order.into_iter().filter_map(|i| nodes[i.index()].take()).collect();
    (analysis, diags)
}

/// Blocks per job of the reference search: a few milliseconds of work.
const CHUNK: usize = 2048;

/// Some blocks of one module, whose references are looked up together.
enum Blocks<'c> {
    Locals(Vec<&'c crate::config::Local>),
    Resources(Vec<&'c crate::config::Resource>),
    /// Its outputs, checks, module calls and provider configurations.
    Rest,
}

/// What the references of some blocks resolve to.
#[derive(Default)]
struct Found {
    /// Each block's direct references: (to, index expression).
    edges: Vec<(NodeIndex, Vec<(NodeIndex, Option<ast::Node>)>)>,
    /// (node of a called module, the call): everything in a module comes
    /// after the call that expands it.
    calls: Vec<(NodeIndex, NodeIndex)>,
    diags: Diagnostics,
}

/// Resolves references to the nodes of the block graph (shared, read-only,
/// by the threads that look them up).
struct Resolver<'a, 'c> {
    modules: &'a [(Vec<String>, &'c Config)],
    module_index: &'a HashMap<&'a [String], usize>,
    nodes: &'a [ModuleNodes<'c>],
    graph: &'a DiGraph<GNode, ()>,
}

impl Resolver<'_, '_> {
    /// The module (by index into `modules`) a call of module `m` runs.
    fn child_of(&self, m: usize, name: &str) -> Option<usize> {
        let mut path = self.modules[m].0.clone();
        path.push(name.to_owned());
        self.module_index.get(path.as_slice()).copied()
    }

    /// The references of `blocks` of module `mi`, checked.
    fn references(&self, mi: usize, blocks: &Blocks) -> Found {
        let mut found = Found::default();
        let (path, config) = &self.modules[mi];
        let here = &self.nodes[mi];
        match blocks {
            Blocks::Locals(locals) => {
                for l in locals {
                    self.check(mi, &mut found, here.locals[l.name.as_str()], [(&l.expr, &[][..])], None);
                }
            }
            Blocks::Resources(resources) => {
                for r in resources {
                    let from = here.resources[&r.addr];
                    let counted = Some((r.count.is_some(), r.for_each.is_some()));
                    for e in r.count.iter().chain(&r.for_each) {
                        self.check(mi, &mut found, from, [(e, &[][..])], None);
                    }
                    let body = all_body_exprs(&r.body);
                    self.check(mi, &mut found, from, body.iter().map(|(e, bound)| (*e, bound.as_slice())), counted);
                    let rest = r.depends_on.iter().chain(&r.lifecycle.replace_triggered_by);
                    let conditions = r.lifecycle.preconditions.iter().chain(&r.lifecycle.postconditions);
                    let rest = rest.chain(conditions.flat_map(|v| [&v.condition, &v.error_message]));
                    self.check(mi, &mut found, from, rest.map(|e| (e, &[][..])), counted);
                }
            }
            Blocks::Rest => self.rest(mi, path, config, here, &mut found),
        }
        found
    }

    /// Outputs, checks, module calls and provider configurations.
    fn rest(&self, mi: usize, path: &[String], config: &Config, here: &ModuleNodes, found: &mut Found) {
        for o in config.outputs.values() {
            let from = here.outputs[o.name.as_str()];
            self.check(mi, found, from, std::iter::once(&o.value).chain(&o.depends_on).map(|e| (e, &[][..])), None);
        }
        for c in &config.checks {
            let from = here.checks[c.name.as_str()];
            self.check(mi, found, from, c.asserts.iter().flat_map(|v| [&v.condition, &v.error_message]).map(|e| (e, &[][..])), None);
        }
        for call in config.module_calls.values() {
            let from = here.calls[call.name.as_str()];
            let counted = Some((call.count.is_some(), call.for_each.is_some()));
            self.check(mi, found, from, call.count.iter().chain(&call.for_each).map(|e| (e, &[][..])), None);
            self.check(mi, found, from, call.inputs.iter().map(|a| &a.expr).chain(&call.depends_on).map(|e| (e, &[][..])), counted);
            // The child's variables take their values from this call.
            let (Some(child), Some(ci)) = (config.children.get(&call.name), self.child_of(mi, &call.name)) else { continue };
            // Everything in the child module comes after the call expands it.
            let theirs = &self.nodes[ci];
            let child_nodes = child
                .variables
                .keys()
                .map(|n| theirs.variables[n.as_str()])
                .chain(child.locals.keys().map(|n| theirs.locals[n.as_str()]))
                .chain(child.resources.keys().map(|a| theirs.resources[a]))
                .chain(child.outputs.keys().map(|n| theirs.outputs[n.as_str()]))
                .chain(child.module_calls.keys().map(|n| theirs.calls[n.as_str()]));
            found.calls.extend(child_nodes.map(|node| (node, from)));
            for v in child.variables.values() {
                if v.default.is_none() && !call.inputs.iter().any(|a| a.name == v.name) {
                    found.diags.push(Diagnostic::error(
                        format!("module {:?} needs a value for its variable {:?}", call.name, v.name),
                        call.header.clone(),
                        format!("add `{} = ...`", v.name),
                    ));
                }
            }
            for input in &call.inputs {
                if !child.variables.contains_key(&input.name) {
                    found.diags.push(Diagnostic::error(
                        format!("module {:?} has no variable {:?}", call.name, input.name),
                        input.span.clone(),
                        "not declared in the module",
                    ));
                }
            }
        }
        for p in &config.providers {
            for a in &p.body.attrs {
                for r in references(&a.expr.expr) {
                    if let RefTarget::Resource { addr, .. } = r.target {
                        found.diags.push(Diagnostic::error(
                            format!("provider configuration cannot refer to {addr}: it must be known before any resource"),
                            Span::new(a.expr.file, r.range),
                            "not allowed here",
                        ));
                    }
                }
            }
            if !path.is_empty() {
                found.diags.push(Diagnostic::error(
                    "configure providers in the root module; modules use the root's configurations",
                    p.span.clone(),
                    "provider block in a module",
                ));
            }
        }
    }

    /// Resolves the references of `exprs` (each with the names bound around it) of block
    /// `from` in module `mi`; `counted` says whether the block sets count and for_each.
    fn check<'e>(
        &self,
        mi: usize,
        found: &mut Found,
        from: NodeIndex,
        exprs: impl IntoIterator<Item = (&'e Expr, &'e [String])>,
        counted: Option<(bool, bool)>,
    ) {
        let (_, config) = &self.modules[mi];
        let here = &self.nodes[mi];
        let mut to: Vec<(NodeIndex, Option<ast::Node>)> = Vec::new();
        let diags = &mut found.diags;
        for (expr, bound) in exprs {
            for r in references(&expr.expr) {
                let span = Span::new(expr.file, r.range.clone());
                let before = to.len();
                match r.target {
                    RefTarget::Variable(name) => match here.variables.get(name.as_str()) {
                        Some(&i) => to.push((i, None)),
                        None => {
                            diags.push(Diagnostic::error(format!("reference to undeclared input variable var.{name}"), span, "not declared").with_help(format!("declare it with variable \"{name}\" {{}}")));
                            continue;
                        }
                    },
                    RefTarget::Local(name) => match here.locals.get(name.as_str()) {
                        Some(&i) => to.push((i, None)),
                        None => {
                            diags.push(Diagnostic::error(format!("reference to undeclared local value local.{name}"), span, "not declared"));
                            continue;
                        }
                    },
                    RefTarget::Resource { addr, index } => {
                        if addr.mode == Mode::Managed && bound.contains(&addr.type_name) {
                            continue;
                        }
                        match here.resources.get(&addr) {
                            Some(&i) => to.push((i, index)),
                            None => {
                                let what = if addr.mode == Mode::Data { "data source" } else { "resource" };
                                diags.push(Diagnostic::error(format!("reference to undeclared {what} {addr}"), span, "not declared"));
                                continue;
                            }
                        }
                    }
                    RefTarget::Module { name, output } => {
                        let (Some(child), Some(ci)) = (config.children.get(&name), self.child_of(mi, &name)) else {
                            if !config.module_calls.contains_key(&name) {
                                diags.push(Diagnostic::error(format!("reference to undeclared module module.{name}"), span, "not declared"));
                            }
                            continue;
                        };
                        match output {
                            Some(o) if !child.outputs.contains_key(&o) => {
                                diags.push(Diagnostic::error(format!("module {name:?} has no output {o:?}"), span, "no such output"));
                                continue;
                            }
                            Some(o) => to.push((self.nodes[ci].outputs[o.as_str()], None)),
                            None => to.extend(child.outputs.keys().map(|o| (self.nodes[ci].outputs[o.as_str()], None))),
                        }
                    }
                    RefTarget::CountIndex => {
                        if !counted.is_some_and(|(count, _)| count) {
                            diags.push(Diagnostic::error("count.index is only available in blocks that set count", span, "here"));
                        }
                        continue;
                    }
                    RefTarget::Each => {
                        if !counted.is_some_and(|(_, each)| each) {
                            diags.push(Diagnostic::error("each is only available in blocks that set for_each", span, "here"));
                        }
                        continue;
                    }
                    RefTarget::SelfRef | RefTarget::Other(_) => continue,
                }
                // A block that refers to itself: an error, not an edge.
                let mut i = before;
                while i < to.len() {
                    if to[i].0 == from {
                        diags.push(Diagnostic::error(format!("{} refers to itself", self.graph[from]), span.clone(), "self-reference"));
                        to.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
        }
        if !to.is_empty() {
            found.edges.push((from, to));
        }
    }
}

/// Every attribute expression of a body, nested and dynamic blocks included,
/// with the iterator names of enclosing dynamic blocks (which are not
/// references).
pub fn all_body_exprs(body: &crate::config::BodyExprs) -> Vec<(&Expr, Vec<String>)> {
    let mut out = Vec::new();
    collect_body_exprs(body, &mut Vec::new(), &mut out);
    out
}

fn collect_body_exprs<'a>(body: &'a crate::config::BodyExprs, bound: &mut Vec<String>, out: &mut Vec<(&'a Expr, Vec<String>)>) {
    out.extend(body.attrs.iter().map(|a| (&a.expr, bound.clone())));
    for b in &body.blocks {
        match &b.dynamic {
            Some(d) => {
                out.push((&d.for_each, bound.clone()));
                bound.push(d.iterator.clone());
                collect_body_exprs(&b.body, bound, out);
                bound.pop();
            }
            None => collect_body_exprs(&b.body, bound, out),
        }
    }
}

/// Renders the instance graph of a plan in Graphviz DOT.
pub fn to_dot(nodes: &[(String, Vec<String>)]) -> String {
    let mut out = String::from("digraph strata {\n  rankdir = \"RL\";\n  node [shape = box];\n");
    for (addr, _) in nodes {
        out.push_str(&format!("  {};\n", quote(addr)));
    }
    for (addr, deps) in nodes {
        for d in deps {
            out.push_str(&format!("  {} -> {};\n", quote(addr), quote(d)));
        }
    }
    out.push_str("}\n");
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
