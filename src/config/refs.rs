//! Which names an expression refers to, found statically on the syntax tree.
//! The graph is built from these; evaluation resolves them.

use crate::addr::{Mode, ResourceAddr};
use hcl::edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl::edit::template::{Directive, Element, Template};
use hcl::edit::Span as _;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq)]
pub enum RefTarget {
    Variable(String),
    Local(String),
    /// A resource or data block; `index` is the expression in
    /// `type.name[index]`, if any, so the graph can link single instances.
    Resource { addr: ResourceAddr, index: Option<Expression> },
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
pub fn references(expr: &Expression) -> Vec<Reference> {
    let mut out = Vec::new();
    walk(expr, &mut Vec::new(), &mut out);
    out
}

fn walk(expr: &Expression, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    match expr {
        Expression::Null(_) | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => {}
        Expression::Array(items) => items.iter().for_each(|e| walk(e, bound, out)),
        Expression::Object(obj) => {
            for (k, v) in obj.iter() {
                if let ObjectKey::Expression(e) = k {
                    // A bare identifier in parentheses is a key expression, a
                    // bare one a literal key: only walk real expressions.
                    if !matches!(e, Expression::Variable(_)) {
                        walk(e, bound, out);
                    }
                }
                walk(v.expr(), bound, out);
            }
        }
        Expression::StringTemplate(t) => t.iter().for_each(|e| element(e, bound, out)),
        Expression::HeredocTemplate(h) => template(&h.template, bound, out),
        Expression::Parenthesis(p) => walk(p.inner(), bound, out),
        Expression::Variable(v) => root(expr, v.as_str(), &[], bound, out),
        Expression::Conditional(c) => {
            walk(&c.cond_expr, bound, out);
            walk(&c.true_expr, bound, out);
            walk(&c.false_expr, bound, out);
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|a| walk(a, bound, out)),
        Expression::Traversal(t) => {
            let ops: Vec<&TraversalOperator> = t.operators.iter().map(|o| o.value()).collect();
            match &t.expr {
                Expression::Variable(v) => root(expr, v.as_str(), &ops, bound, out),
                other => walk(other, bound, out),
            }
            for op in ops {
                if let TraversalOperator::Index(e) = op {
                    walk(e, bound, out);
                }
            }
        }
        Expression::UnaryOp(op) => walk(&op.expr, bound, out),
        Expression::BinaryOp(op) => {
            walk(&op.lhs_expr, bound, out);
            walk(&op.rhs_expr, bound, out);
        }
        Expression::ForExpr(f) => {
            walk(&f.intro.collection_expr, bound, out);
            let n = bound.len();
            bound.extend(f.intro.key_var.iter().map(|k| k.as_str().to_owned()));
            bound.push(f.intro.value_var.as_str().to_owned());
            if let Some(k) = &f.key_expr {
                walk(k, bound, out);
            }
            walk(&f.value_expr, bound, out);
            if let Some(c) = &f.cond {
                walk(&c.expr, bound, out);
            }
            bound.truncate(n);
        }
    }
}

fn template(t: &Template, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    t.iter().for_each(|e| element(e, bound, out));
}

fn element(e: &Element, bound: &mut Vec<String>, out: &mut Vec<Reference>) {
    match e {
        Element::Literal(_) => {}
        Element::Interpolation(i) => walk(&i.expr, bound, out),
        Element::Directive(d) => match &**d {
            Directive::If(i) => {
                walk(&i.if_expr.cond_expr, bound, out);
                template(&i.if_expr.template, bound, out);
                if let Some(e) = &i.else_expr {
                    template(&e.template, bound, out);
                }
            }
            // hcl-edit's own visitor skips this collection (see research);
            // walking the tree by hand avoids that bug.
            Directive::For(f) => {
                walk(&f.for_expr.collection_expr, bound, out);
                let n = bound.len();
                bound.extend(f.for_expr.key_var.iter().map(|k| k.as_str().to_owned()));
                bound.push(f.for_expr.value_var.as_str().to_owned());
                template(&f.for_expr.template, bound, out);
                bound.truncate(n);
            }
        },
    }
}

fn root(expr: &Expression, name: &str, ops: &[&TraversalOperator], bound: &[String], out: &mut Vec<Reference>) {
    if bound.iter().any(|b| b == name) {
        return;
    }
    let attr = |i: usize| match ops.get(i) {
        Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_owned()),
        _ => None,
    };
    let index_at = |i: usize| match ops.get(i) {
        Some(TraversalOperator::Index(e)) => Some(e.clone()),
        Some(TraversalOperator::LegacyIndex(n)) => Some(Expression::from(*n.value() as i64)),
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
        let refs = references(&hcl::edit::parser::parse_expr(src).unwrap());
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
