//! Dependency graphs.
//!
//! Two levels: the *block* graph of variables, locals, resources and outputs
//! (built statically from references; it orders evaluation and finds cycles),
//! and the *instance* graph of one plan's changes, which apply walks.

use crate::addr::{Mode, ResourceAddr};
use crate::config::refs::{references, RefTarget};
use crate::config::{Config, Diagnostic, Diagnostics, Expr, Span};
use hcl::edit::expr::Expression;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// locals, variables, module calls and module outputs.
#[derive(Debug, Clone)]
pub struct ResourceDep {
    /// The module (static path) the depended-on resource is in.
    pub module: Vec<String>,
    pub addr: ResourceAddr,
    /// The index in `addr[index]` when referenced directly, in the same
    /// module, with one; lets the planner link single instances.
    pub index: Option<Expression>,
}

/// The result of analysing a configuration's references.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Evaluation order of the blocks of every module (dependencies first).
    pub order: Vec<GNode>,
    /// Resources each resource (by module and address) depends on.
    pub resource_deps: BTreeMap<(Vec<String>, ResourceAddr), Vec<ResourceDep>>,
    /// Resources each module call depends on (its inputs, count, for_each
    /// and depends_on), so the module's resources wait for them.
    pub module_call_deps: BTreeMap<(Vec<String>, String), Vec<ResourceDep>>,
}

/// Checks every reference of the configuration and its modules, orders the
/// blocks, and reports undeclared names and cycles (naming every member).
pub fn analyze(root: &Config) -> (Analysis, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut graph: DiGraph<GNode, ()> = DiGraph::new();
    let mut index: HashMap<GNode, NodeIndex> = HashMap::new();
    let mut spans: HashMap<GNode, Span> = HashMap::new();
    let modules = root.modules();
    for (path, config) in &modules {
        let mut add = |n: Node, span: Option<Span>| {
            let g = GNode::new(path, n);
            if let Some(s) = span {
                spans.insert(g.clone(), s);
            }
            let i = graph.add_node(g.clone());
            index.insert(g, i);
        };
        for v in config.variables.values() {
            add(Node::Variable(v.name.clone()), Some(v.span.clone()));
        }
        for l in config.locals.values() {
            add(Node::Local(l.name.clone()), Some(l.span.clone()));
        }
        for r in config.resources.values() {
            add(Node::Resource(r.addr.clone()), Some(r.header.clone()));
        }
        for o in config.outputs.values() {
            add(Node::Output(o.name.clone()), Some(o.span.clone()));
        }
        for c in &config.checks {
            add(Node::Check(c.name.clone()), Some(c.span.clone()));
        }
        for m in config.module_calls.values() {
            add(Node::ModuleCall(m.name.clone()), Some(m.header.clone()));
        }
    }

    // Direct references of every block: (from, to, index-expression).
    let mut direct: BTreeMap<GNode, Vec<(GNode, Option<Expression>)>> = BTreeMap::new();
    let mut call_edges: Vec<(GNode, GNode)> = Vec::new();
    for (path, config) in &modules {
        let mut check = |from: &GNode, expr: &Expr, bound: &[String], counted: Option<(bool, bool)>, diags: &mut Diagnostics| {
            for r in references(&expr.expr) {
                let span = Span::new(expr.file, r.range.clone());
                let targets: Vec<(GNode, Option<Expression>)> = match r.target {
                    RefTarget::Variable(name) => {
                        if !config.variables.contains_key(&name) {
                            diags.push(Diagnostic::error(format!("reference to undeclared input variable var.{name}"), span, "not declared").with_help(format!("declare it with variable \"{name}\" {{}}")));
                            continue;
                        }
                        vec![(GNode::new(path, Node::Variable(name)), None)]
                    }
                    RefTarget::Local(name) => {
                        if !config.locals.contains_key(&name) {
                            diags.push(Diagnostic::error(format!("reference to undeclared local value local.{name}"), span, "not declared"));
                            continue;
                        }
                        vec![(GNode::new(path, Node::Local(name)), None)]
                    }
                    RefTarget::Resource { addr, index } => {
                        if addr.mode == Mode::Managed && bound.contains(&addr.type_name) {
                            continue;
                        }
                        if !config.resources.contains_key(&addr) {
                            let what = if addr.mode == Mode::Data { "data source" } else { "resource" };
                            diags.push(Diagnostic::error(format!("reference to undeclared {what} {addr}"), span, "not declared"));
                            continue;
                        }
                        vec![(GNode::new(path, Node::Resource(addr)), index)]
                    }
                    RefTarget::Module { name, output } => {
                        let Some(child) = config.children.get(&name) else {
                            if !config.module_calls.contains_key(&name) {
                                diags.push(Diagnostic::error(format!("reference to undeclared module module.{name}"), span, "not declared"));
                            }
                            continue;
                        };
                        let mut child_path = path.clone();
                        child_path.push(name.clone());
                        match output {
                            Some(o) if !child.outputs.contains_key(&o) => {
                                diags.push(Diagnostic::error(format!("module {name:?} has no output {o:?}"), span, "no such output"));
                                continue;
                            }
                            Some(o) => vec![(GNode::new(&child_path, Node::Output(o)), None)],
                            None => child.outputs.keys().map(|o| (GNode::new(&child_path, Node::Output(o.clone())), None)).collect(),
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
                };
                for to in targets {
                    if &to.0 == from {
                        diags.push(Diagnostic::error(format!("{from} refers to itself"), span.clone(), "self-reference"));
                        continue;
                    }
                    direct.entry(from.clone()).or_default().push(to);
                }
            }
        };
        for l in config.locals.values() {
            check(&GNode::new(path, Node::Local(l.name.clone())), &l.expr, &[], None, &mut diags);
        }
        for r in config.resources.values() {
            let from = GNode::new(path, Node::Resource(r.addr.clone()));
            let counted = Some((r.count.is_some(), r.for_each.is_some()));
            for e in r.count.iter().chain(&r.for_each) {
                check(&from, e, &[], None, &mut diags);
            }
            for (e, bound) in all_body_exprs(&r.body) {
                check(&from, e, &bound, counted, &mut diags);
            }
            for e in r.depends_on.iter().chain(&r.lifecycle.replace_triggered_by) {
                check(&from, e, &[], counted, &mut diags);
            }
            for v in r.lifecycle.preconditions.iter().chain(&r.lifecycle.postconditions) {
                check(&from, &v.condition, &[], counted, &mut diags);
                check(&from, &v.error_message, &[], counted, &mut diags);
            }
        }
        for o in config.outputs.values() {
            let from = GNode::new(path, Node::Output(o.name.clone()));
            for e in std::iter::once(&o.value).chain(&o.depends_on) {
                check(&from, e, &[], None, &mut diags);
            }
        }
        for c in &config.checks {
            let from = GNode::new(path, Node::Check(c.name.clone()));
            for v in &c.asserts {
                check(&from, &v.condition, &[], None, &mut diags);
                check(&from, &v.error_message, &[], None, &mut diags);
            }
        }
        for call in config.module_calls.values() {
            let from = GNode::new(path, Node::ModuleCall(call.name.clone()));
            let counted = Some((call.count.is_some(), call.for_each.is_some()));
            for e in call.count.iter().chain(&call.for_each) {
                check(&from, e, &[], None, &mut diags);
            }
            for e in call.inputs.iter().map(|a| &a.expr).chain(&call.depends_on) {
                check(&from, e, &[], counted, &mut diags);
            }
            // The child's variables take their values from this call.
            let Some(child) = config.children.get(&call.name) else { continue };
            let mut child_path = path.clone();
            child_path.push(call.name.clone());
            // Everything in the child module comes after the call expands it.
            let child_nodes = child
                .variables
                .keys()
                .map(|n| Node::Variable(n.clone()))
                .chain(child.locals.keys().map(|n| Node::Local(n.clone())))
                .chain(child.resources.keys().map(|a| Node::Resource(a.clone())))
                .chain(child.outputs.keys().map(|n| Node::Output(n.clone())))
                .chain(child.module_calls.keys().map(|n| Node::ModuleCall(n.clone())));
            for node in child_nodes {
                call_edges.push((GNode::new(&child_path, node), from.clone()));
            }
            for v in child.variables.values() {
                if v.default.is_none() && !call.inputs.iter().any(|a| a.name == v.name) {
                    diags.push(Diagnostic::error(
                        format!("module {:?} needs a value for its variable {:?}", call.name, v.name),
                        call.header.clone(),
                        format!("add `{} = ...`", v.name),
                    ));
                }
            }
            for input in &call.inputs {
                if !child.variables.contains_key(&input.name) {
                    diags.push(Diagnostic::error(
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
                        diags.push(Diagnostic::error(
                            format!("provider configuration cannot refer to {addr}: it must be known before any resource"),
                            Span::new(a.expr.file, r.range),
                            "not allowed here",
                        ));
                    }
                }
            }
            if !path.is_empty() {
                diags.push(Diagnostic::error(
                    "configure providers in the root module; modules use the root's configurations",
                    p.span.clone(),
                    "provider block in a module",
                ));
            }
        }
    }

    for (var, call) in call_edges {
        direct.entry(var).or_default().push((call, None));
    }
    // One edge per pair. `update_edge` would find duplicates by scanning the
    // node's edges, which is quadratic for a local or variable every block
    // names.
    let mut edges: std::collections::HashSet<(NodeIndex, NodeIndex)> = std::collections::HashSet::new();
    for (from, tos) in &direct {
        for (to, _) in tos {
            if let (Some(&a), Some(&b)) = (index.get(to), index.get(from)) {
                if edges.insert((a, b)) {
                    graph.add_edge(a, b, ());
                }
            }
        }
    }

    let mut analysis = Analysis::default();
    match toposort(&graph, None) {
        Ok(order) => analysis.order = order.into_iter().map(|i| graph[i].clone()).collect(),
        Err(_) => {
            for scc in tarjan_scc(&graph) {
                if scc.len() < 2 {
                    continue;
                }
                let mut members: Vec<&GNode> = scc.iter().map(|i| &graph[*i]).collect();
                members.sort();
                let names: Vec<String> = members.iter().map(|n| n.to_string()).collect();
                let span = members.iter().find_map(|n| spans.get(*n)).cloned().unwrap_or_default();
                diags.push(Diagnostic::error(
                    format!("dependency cycle: {}", names.join(" -> ")),
                    span,
                    "part of the cycle",
                ).with_help("break the cycle by removing one of these references"));
            }
            return (analysis, diags);
        }
    }

    // Resource-to-resource dependencies, following every other kind of node.
    let mut reach: HashMap<&GNode, BTreeSet<(Vec<String>, ResourceAddr)>> = HashMap::new();
    let deps_of = |node: &GNode, reach: &HashMap<&GNode, BTreeSet<(Vec<String>, ResourceAddr)>>| -> Vec<ResourceDep> {
        let mut out = Vec::new();
        for (to, index) in direct.get(node).into_iter().flatten() {
            match &to.node {
                Node::Resource(r) => out.push(ResourceDep {
                    module: to.module.clone(),
                    addr: r.clone(),
                    index: if to.module == node.module { index.clone() } else { None },
                }),
                _ => out.extend(
                    reach.get(to).into_iter().flatten().map(|(m, r)| ResourceDep { module: m.clone(), addr: r.clone(), index: None }),
                ),
            }
        }
        out
    };
    for node in &analysis.order {
        let deps = deps_of(node, &reach);
        match &node.node {
            Node::Resource(r) => {
                analysis.resource_deps.insert((node.module.clone(), r.clone()), deps);
                // Anything that depends on this resource depends on it alone.
                let _ = r;
            }
            other => {
                if let Node::ModuleCall(name) = other {
                    analysis.module_call_deps.insert((node.module.clone(), name.clone()), deps.clone());
                }
                reach.insert(node, deps.into_iter().map(|d| (d.module, d.addr)).collect());
            }
        }
    }
    (analysis, diags)
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
