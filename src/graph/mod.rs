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
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Variable(v) => write!(f, "var.{v}"),
            Node::Local(l) => write!(f, "local.{l}"),
            Node::Resource(r) => r.fmt(f),
            Node::Output(o) => write!(f, "output.{o}"),
            Node::Check(c) => write!(f, "check.{c}"),
        }
    }
}

/// A dependency of a resource on another resource, directly or through locals.
#[derive(Debug, Clone)]
pub struct ResourceDep {
    pub addr: ResourceAddr,
    /// The index in `addr[index]` when referenced directly with one; lets the
    /// planner link single instances instead of whole blocks.
    pub index: Option<Expression>,
}

/// The result of analysing a configuration's references.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Evaluation order of the blocks (dependencies first).
    pub order: Vec<Node>,
    /// Resources each resource depends on, through any path of locals.
    pub resource_deps: BTreeMap<ResourceAddr, Vec<ResourceDep>>,
    /// Resources each output depends on.
    pub output_deps: BTreeMap<String, Vec<ResourceAddr>>,
}

/// Checks every reference of the configuration, orders the blocks, and reports
/// undeclared names and cycles (naming every member).
pub fn analyze(config: &Config) -> (Analysis, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut graph: DiGraph<Node, ()> = DiGraph::new();
    let mut index: HashMap<Node, NodeIndex> = HashMap::new();
    let mut spans: HashMap<Node, Span> = HashMap::new();
    let mut add = |g: &mut DiGraph<Node, ()>, n: Node| *index.entry(n.clone()).or_insert_with(|| g.add_node(n));

    for v in config.variables.values() {
        add(&mut graph, Node::Variable(v.name.clone()));
    }
    for l in config.locals.values() {
        add(&mut graph, Node::Local(l.name.clone()));
        spans.insert(Node::Local(l.name.clone()), l.span.clone());
    }
    for r in config.resources.values() {
        add(&mut graph, Node::Resource(r.addr.clone()));
        spans.insert(Node::Resource(r.addr.clone()), r.header.clone());
    }
    for o in config.outputs.values() {
        add(&mut graph, Node::Output(o.name.clone()));
    }
    for c in &config.checks {
        add(&mut graph, Node::Check(c.name.clone()));
    }

    // Direct references of every block: (from, to, index-expression).
    let mut direct: BTreeMap<Node, Vec<(Node, Option<Expression>)>> = BTreeMap::new();
    let mut check = |from: &Node, expr: &Expr, bound: &[String], in_resource: Option<&crate::config::Resource>, diags: &mut Diagnostics| {
        for r in references(&expr.expr) {
            if let RefTarget::Resource { addr, .. } = &r.target {
                if addr.mode == Mode::Managed && bound.contains(&addr.type_name) {
                    continue;
                }
            }
            let span = Span::new(expr.file, r.range.clone());
            let to = match r.target {
                RefTarget::Variable(name) => {
                    if !config.variables.contains_key(&name) {
                        diags.push(Diagnostic::error(format!("reference to undeclared input variable var.{name}"), span, "not declared").with_help(format!("declare it with variable \"{name}\" {{}}")));
                        continue;
                    }
                    (Node::Variable(name), None)
                }
                RefTarget::Local(name) => {
                    if !config.locals.contains_key(&name) {
                        diags.push(Diagnostic::error(format!("reference to undeclared local value local.{name}"), span, "not declared"));
                        continue;
                    }
                    (Node::Local(name), None)
                }
                RefTarget::Resource { addr, index } => {
                    if !config.resources.contains_key(&addr) {
                        let what = if addr.mode == Mode::Data { "data source" } else { "resource" };
                        diags.push(Diagnostic::error(format!("reference to undeclared {what} {addr}"), span, "not declared"));
                        continue;
                    }
                    (Node::Resource(addr), index)
                }
                RefTarget::CountIndex => {
                    if !in_resource.is_some_and(|r| r.count.is_some()) {
                        diags.push(Diagnostic::error("count.index is only available in resources that set count", span, "here"));
                    }
                    continue;
                }
                RefTarget::Each => {
                    if !in_resource.is_some_and(|r| r.for_each.is_some()) {
                        diags.push(Diagnostic::error("each is only available in resources that set for_each", span, "here"));
                    }
                    continue;
                }
                RefTarget::SelfRef | RefTarget::Other(_) => continue,
            };
            if &to.0 == from {
                diags.push(Diagnostic::error(format!("{from} refers to itself"), span, "self-reference"));
                continue;
            }
            direct.entry(from.clone()).or_default().push(to);
        }
    };
    for l in config.locals.values() {
        check(&Node::Local(l.name.clone()), &l.expr, &[], None, &mut diags);
    }
    for r in config.resources.values() {
        let from = Node::Resource(r.addr.clone());
        for e in r.count.iter().chain(&r.for_each) {
            check(&from, e, &[], None, &mut diags);
        }
        for (e, bound) in all_body_exprs(&r.body) {
            check(&from, e, &bound, Some(r), &mut diags);
        }
        for e in r.depends_on.iter().chain(&r.lifecycle.replace_triggered_by) {
            check(&from, e, &[], Some(r), &mut diags);
        }
        for v in r.lifecycle.preconditions.iter().chain(&r.lifecycle.postconditions) {
            check(&from, &v.condition, &[], Some(r), &mut diags);
            check(&from, &v.error_message, &[], Some(r), &mut diags);
        }
    }
    for o in config.outputs.values() {
        let from = Node::Output(o.name.clone());
        for e in std::iter::once(&o.value).chain(&o.depends_on) {
            check(&from, e, &[], None, &mut diags);
        }
    }
    for c in &config.checks {
        let from = Node::Check(c.name.clone());
        for v in &c.asserts {
            check(&from, &v.condition, &[], None, &mut diags);
            check(&from, &v.error_message, &[], None, &mut diags);
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
    }

    for (from, tos) in &direct {
        for (to, _) in tos {
            let (a, b) = (index[to], index[from]);
            graph.update_edge(a, b, ());
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
                let mut members: Vec<&Node> = scc.iter().map(|i| &graph[*i]).collect();
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

    // Resource-to-resource dependencies, following locals transitively.
    let mut local_resources: HashMap<String, BTreeSet<ResourceAddr>> = HashMap::new();
    for node in &analysis.order {
        if let Node::Local(name) = node {
            let mut set = BTreeSet::new();
            for (to, _) in direct.get(node).into_iter().flatten() {
                match to {
                    Node::Resource(r) => {
                        set.insert(r.clone());
                    }
                    Node::Local(l) => set.extend(local_resources.get(l).cloned().unwrap_or_default()),
                    _ => {}
                }
            }
            local_resources.insert(name.clone(), set);
        }
    }
    let deps_of = |node: &Node| -> Vec<ResourceDep> {
        let mut out = Vec::new();
        for (to, index) in direct.get(node).into_iter().flatten() {
            match to {
                Node::Resource(r) => out.push(ResourceDep { addr: r.clone(), index: index.clone() }),
                Node::Local(l) => out.extend(
                    local_resources.get(l).into_iter().flatten().map(|r| ResourceDep { addr: r.clone(), index: None }),
                ),
                _ => {}
            }
        }
        out
    };
    for r in config.resources.keys() {
        analysis.resource_deps.insert(r.clone(), deps_of(&Node::Resource(r.clone())));
    }
    for o in config.outputs.keys() {
        let deps = deps_of(&Node::Output(o.clone())).into_iter().map(|d| d.addr).collect();
        analysis.output_deps.insert(o.clone(), deps);
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
