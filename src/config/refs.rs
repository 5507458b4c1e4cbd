//! Which names an expression refers to, found statically on the model's tree.
//! The graph is built from these; evaluation resolves them.

use super::ast::{Kind, Name, Node, ObjectKey, Operator, Part, Template};
use crate::addr::{Mode, ResourceAddr};
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum RefTarget {
    Variable(String),
    Local(String),
    /// A resource or data block; `index` is the expression in
    /// `type.name[index]`, if any, so the graph can link single instances.
    Resource { addr: ResourceAddr, index: Option<Node> },
    /// `module.NAME` or `module.NAME.OUTPUT` (possibly with an instance key).
    Module { name: String, output: Option<String> },
    CountIndex,
    Each,
    SelfRef,
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub target: RefTarget,
    pub range: Option<Range<usize>>,
}

/// Every reference in `expr`, in source order. Variables bound by `for`
/// expressions and template `for` directives are not references.
pub fn references(expr: &Node) -> Vec<Reference> {
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out
}

fn walk<'e>(expr: &'e Node, bound: &mut Vec<&'e Name>, out: &mut Vec<Reference>) {
    match &expr.kind {
        Kind::Null | Kind::Bool(_) | Kind::Number(_) | Kind::BadNumber(_) | Kind::String(_) => {}
        Kind::Array(items) => items.iter().for_each(|e| walk(e, bound, out)),
        Kind::Object(obj) => {
            for (k, v) in obj.iter() {
                if let ObjectKey::Expr(e) = k {
                    // A bare identifier in parentheses is a key expression, a
                    // bare one a literal key: only walk real expressions.
                    if !matches!(e.kind, Kind::Variable(_)) {
                        walk(e, bound, out);
                    }
                }
                walk(v, bound, out);
            }
        }
        Kind::Template(t) => template(t, bound, out),
        Kind::Parenthesis(inner) => walk(inner, bound, out),
        Kind::Variable(v) => root(expr, v, &[], bound, out),
        Kind::Conditional(c) => {
            walk(&c.cond, bound, out);
            walk(&c.if_true, bound, out);
            walk(&c.if_false, bound, out);
        }
        Kind::FuncCall(call) => call.args.iter().for_each(|a| walk(a, bound, out)),
        Kind::Traversal(t) => {
            match &t.root.kind {
                Kind::Variable(v) => root(expr, v, &t.ops, bound, out),
                _ => walk(&t.root, bound, out),
            }
            for op in t.ops.iter() {
                if let Operator::Index(e) = op {
                    walk(e, bound, out);
                }
            }
        }
        Kind::Unary(op) => walk(&op.expr, bound, out),
        Kind::Binary(op) => {
            walk(&op.lhs, bound, out);
            walk(&op.rhs, bound, out);
        }
        Kind::For(f) => {
            walk(&f.collection, bound, out);
            let n = bound.len();
            bound.extend(&f.key_var);
            bound.push(&f.value_var);
            if let Some(k) = &f.key {
                walk(k, bound, out);
            }
            walk(&f.value, bound, out);
            if let Some(c) = &f.cond {
                walk(c, bound, out);
            }
            bound.truncate(n);
        }
    }
}

/// A template's parts in order; a `for` directive's names are bound from
/// it to its `EndFor`.
fn template<'e>(t: &'e Template, bound: &mut Vec<&'e Name>, out: &mut Vec<Reference>) {
    let mut scopes = Vec::new();
    for part in t.parts.iter() {
        match part {
            Part::Text(_) | Part::Else | Part::EndIf => {}
            Part::Interpolation(e) => walk(e, bound, out),
            Part::If { cond, .. } => walk(cond, bound, out),
            Part::For(f) => {
                walk(&f.collection, bound, out);
                scopes.push(bound.len());
                bound.extend(&f.key_var);
                bound.push(&f.value_var);
            }
            Part::EndFor => {
                if let Some(n) = scopes.pop() {
                    bound.truncate(n);
                }
            }
        }
    }
}

fn root(expr: &Node, name: &str, ops: &[Operator], bound: &[&Name], out: &mut Vec<Reference>) {
    if bound.iter().any(|b| &***b == name) {
        return;
    }
    let attr = |i: usize| match ops.get(i) {
        Some(Operator::GetAttr(a)) => Some(a.to_string()),
        _ => None,
    };
    let index_at = |i: usize| match ops.get(i) {
        Some(Operator::Index(e)) => Some((**e).clone()),
        Some(Operator::LegacyIndex(n)) => Some(Node::number(strata_provider::Number::from(*n as i64))),
        _ => None,
    };
    let target = match name {
        "var" => attr(0).map(RefTarget::Variable),
        "local" => attr(0).map(RefTarget::Local),
        "count" => Some(RefTarget::CountIndex),
        "each" => Some(RefTarget::Each),
        "self" => Some(RefTarget::SelfRef),
        "module" => attr(0).map(|m| {
            let output = if index_at(1).is_some() { attr(2) } else { attr(1) };
            RefTarget::Module { name: m, output }
        }),
        "path" | "terraform" | "strata" => Some(RefTarget::Other(name.to_owned())),
        "data" => match (attr(0), attr(1)) {
            (Some(t), Some(n)) => {
                Some(RefTarget::Resource { addr: ResourceAddr::new(Mode::Data, &t, &n), index: index_at(2) })
            }
            _ => None,
        },
        type_name => attr(0).map(|n| RefTarget::Resource {
            addr: ResourceAddr::new(Mode::Managed, type_name, &n),
            index: index_at(1),
        }),
    };
    if let Some(target) = target {
        out.push(Reference { target, range: expr.span() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_and_skips_bound_names() {
        let src = r#"[for x in var.list : "${x}-${local.p}-${strata_data.a[count.index].id}-%{ for y in var.ys }${y}%{ endfor }"]"#;
        let refs = references(&crate::config::parse::parse_expr(src).unwrap());
        let names: Vec<String> = refs
            .iter()
            .map(|r| match &r.target {
                RefTarget::Variable(v) => format!("var.{v}"),
                RefTarget::Local(l) => format!("local.{l}"),
                RefTarget::Resource { addr, index } => format!("{addr}{}", if index.is_some() { "[i]" } else { "" }),
                RefTarget::CountIndex => "count".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["var.list", "local.p", "strata_data.a[i]", "count", "var.ys"]);
    }
}
