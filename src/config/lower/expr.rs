//! hcl-edit's expressions into the model's own tree (`config::ast`): spans
//! narrowed, names shared through a per-file table, number literals read
//! and string literals normalised once, templates flattened (`template.rs`).

use super::template::{self, Layout};
use crate::config::ast::{self, Kind, Name, Node, ObjectKey, Operator};
use crate::config::eval::nfc;
use hcl::edit::expr::{Expression, TraversalOperator};
use hcl::edit::Span as _;
use strata_provider::Number;

/// The names of one file (or piece of one), each kept once. A table per
/// lowering, not a global one, so pieces can be lowered on threads of
/// their own; the names are `Arc`s, so the trees they end up in are
/// `Send + Sync` whichever table made them. Hashed with foldhash: SipHash
/// was most of the table's cost, and names are not attacker-chosen keys of
/// a long-lived map.
#[derive(Default)]
pub struct Names(foldhash::HashSet<Name>);

impl Names {
    pub fn name(&mut self, text: &str) -> Name {
        if let Some(name) = self.0.get(text) {
            return name.clone();
        }
        let name: Name = text.into();
        self.0.insert(name.clone());
        name
    }

    /// A string literal's text in normal form C, kept once.
    fn literal(&mut self, text: &str) -> Name {
        if text.is_ascii() {
            self.name(text)
        } else {
            self.name(&nfc(text))
        }
    }
}

/// Converts one expression (and everything under it).
pub fn node(expr: &Expression, names: &mut Names) -> Node {
    Node::new(kind(expr, names), expr.span())
}

fn nodes<'e>(exprs: impl Iterator<Item = &'e Expression>, names: &mut Names) -> Box<[Node]> {
    exprs.map(|e| node(e, names)).collect()
}

fn kind(expr: &Expression, names: &mut Names) -> Kind {
    match expr {
        Expression::Null(_) => Kind::Null,
        Expression::Bool(b) => Kind::Bool(*b.value()),
        Expression::Number(n) => match int_literal(n) {
            Some(i) => Kind::Number(Number::from_i64(i)),
            None => match number_literal(n) {
                Ok(n) => Kind::Number(n),
                Err(message) => Kind::BadNumber(message.into()),
            },
        },
        Expression::String(s) => Kind::String(names.literal(s.value())),
        Expression::Array(items) => Kind::Array(nodes(items.iter(), names)),
        Expression::Object(obj) => Kind::Object(
            obj.iter()
                .map(|(key, value)| {
                    let key = match key {
                        hcl::edit::expr::ObjectKey::Ident(i) => ObjectKey::Ident(names.name(i.as_str())),
                        hcl::edit::expr::ObjectKey::Expression(e) => ObjectKey::Expr(Box::new(node(e, names))),
                    };
                    (key, node(value.expr(), names))
                })
                .collect(),
        ),
        Expression::StringTemplate(t) => Kind::Template(Box::new(template::lower(t, Layout::Quoted, names))),
        Expression::HeredocTemplate(h) => {
            let layout = if h.indent().is_some() { Layout::FlushHeredoc } else { Layout::Lines };
            Kind::Template(Box::new(template::lower(&h.template, layout, names)))
        }
        Expression::Parenthesis(p) => Kind::Parenthesis(Box::new(node(p.inner(), names))),
        Expression::Variable(v) => Kind::Variable(names.name(v.as_str())),
        Expression::Conditional(c) => Kind::Conditional(Box::new(ast::Conditional {
            cond: node(&c.cond_expr, names),
            if_true: node(&c.true_expr, names),
            if_false: node(&c.false_expr, names),
        })),
        Expression::FuncCall(call) => Kind::FuncCall(Box::new(ast::FuncCall {
            name: names.name(call.name.name.as_str()),
            args: nodes(call.args.iter(), names),
            expand_final: call.args.expand_final(),
        })),
        Expression::Traversal(t) => Kind::Traversal(Box::new(ast::Traversal {
            root: node(&t.expr, names),
            ops: t.operators.iter().map(|op| operator(op.value(), names)).collect(),
        })),
        Expression::UnaryOp(op) => Kind::Unary(Box::new(ast::Unary { op: *op.operator.value(), expr: node(&op.expr, names) })),
        Expression::BinaryOp(op) => Kind::Binary(Box::new(ast::Binary {
            op: *op.operator.value(),
            lhs: node(&op.lhs_expr, names),
            rhs: node(&op.rhs_expr, names),
        })),
        Expression::ForExpr(f) => Kind::For(Box::new(ast::ForExpr {
            key_var: f.intro.key_var.as_ref().map(|k| names.name(k.as_str())),
            value_var: names.name(f.intro.value_var.as_str()),
            collection: node(&f.intro.collection_expr, names),
            key: f.key_expr.as_ref().map(|k| node(k, names)),
            value: node(&f.value_expr, names),
            cond: f.cond.as_ref().map(|c| node(&c.expr, names)),
            grouping: f.grouping,
        })),
    }
}

fn operator(op: &TraversalOperator, names: &mut Names) -> Operator {
    match op {
        TraversalOperator::GetAttr(name) => Operator::GetAttr(names.name(name.as_str())),
        TraversalOperator::Index(e) => Operator::Index(Box::new(node(e, names))),
        TraversalOperator::LegacyIndex(i) => Operator::LegacyIndex(*i.value()),
        TraversalOperator::AttrSplat(_) => Operator::AttrSplat,
        TraversalOperator::FullSplat(_) => Operator::FullSplat,
    }
}

/// A literal of at most 18 decimal digits (so it fits an `i64`), maybe
/// negated, other than `-0`: the same value [`number_literal`] reads,
/// without its general parse.
fn int_literal(n: &hcl::edit::Formatted<hcl::Number>) -> Option<i64> {
    let raw = n.as_repr().map(|raw| &**raw)?;
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(digits) => (true, digits.trim_start()),
        None => (false, raw),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    match (negative, value) {
        (true, 0) => None,
        (true, v) => Some(-v),
        (false, v) => Some(v),
    }
}

/// A number literal's exact value: from its source text (the patched
/// parser keeps it; `1e400` and 30-digit integers are beyond its `f64`),
/// from the `f64` only for literals built in code. A negated literal's text
/// is `-` then optional blanks then the digits.
fn number_literal(n: &hcl::edit::Formatted<hcl::Number>) -> Result<Number, String> {
    match n.as_repr().map(|raw| &**raw).filter(|raw| !raw.is_empty()) {
        Some(raw) => match raw.strip_prefix('-') {
            Some(digits) => digits.trim_start().parse::<Number>().map(|n| n.neg()),
            None => raw.parse(),
        },
        None => n.value().to_string().parse(),
    }
}
