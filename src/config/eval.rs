//! The expression evaluator: the model's expressions (`config::ast`) in,
//! [`Value`]s out.
//!
//! Strata evaluates the syntax tree itself rather than through hcl-rs,
//! because Terraform semantics need two things hcl-rs lacks: values that are
//! not known until apply ([`Value::Unknown`]), which propagate through every
//! operator, and sensitive marks, which stick to everything derived from a
//! sensitive value. Names are resolved through a [`Resolver`], so the same
//! evaluator serves validate, plan and apply.

use super::functions;
use super::types::{convert, key_string};
use super::Expr;
use crate::addr::{InstanceKey, Mode, ResourceAddr};
use super::ast::{BinaryOperator, Kind, Name, Node, ObjectKey, Operator, UnaryOperator};
use std::collections::BTreeMap;
use std::ops::Range;
use strata_provider::{Number, Type, Value};

/// An evaluation failure, with the byte range of the sub-expression at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub message: String,
    pub range: Option<Range<usize>>,
}

impl EvalError {
    pub(crate) fn at(expr: &Node, message: impl Into<String>) -> EvalError {
        EvalError { message: message.into(), range: expr.span() }
    }
}

pub type EvalResult = Result<Value, EvalError>;

/// Where names come from. Implemented by the planner (config-known values)
/// and the applier (values of instances as they complete).
pub trait Resolver {
    fn variable(&self, name: &str) -> Option<Value>;
    fn local(&self, name: &str) -> Result<Value, String>;
    /// One instance (`key` = `Some`) or the whole expanded block (`None`: an
    /// object, a list for `count`, a map for `for_each`).
    fn resource(&self, addr: &ResourceAddr, key: Option<&InstanceKey>) -> Result<Value, String>;
    /// The same, followed into by the attribute `names` after it as far as
    /// [`read_path`] goes, with how many it followed: a resolver that holds
    /// instances can read `r.x.id` without copying all of `r.x`.
    fn resource_path(&self, addr: &ResourceAddr, key: Option<&InstanceKey>, names: &[&str]) -> Result<(Value, usize), String> {
        let _ = names;
        self.resource(addr, key).map(|v| (v, 0))
    }
    fn path(&self, name: &str) -> Option<Value>;
    /// The selected workspace (`terraform.workspace`), if known here.
    fn workspace(&self) -> Option<String> {
        None
    }
    /// The outputs of a module call: an object, or a list/map of objects for
    /// `count`/`for_each`; `key` selects one instance.
    fn module(&self, name: &str, _key: Option<&InstanceKey>) -> Result<Value, String> {
        Err(format!("module.{name} is not available here"))
    }
    /// What functions may know: where relative paths start, and the phase.
    fn functions(&self) -> functions::FunctionContext {
        let base_dir = self.path("module").and_then(|p| p.as_str().map(std::path::PathBuf::from)).unwrap_or_default();
        functions::FunctionContext { base_dir, apply: false }
    }
}

/// A resolver that knows nothing: for constant expressions.
pub struct NoNames;

impl Resolver for NoNames {
    fn variable(&self, _: &str) -> Option<Value> {
        None
    }
    fn local(&self, name: &str) -> Result<Value, String> {
        Err(format!("local.{name} is not available here"))
    }
    fn resource(&self, addr: &ResourceAddr, _: Option<&InstanceKey>) -> Result<Value, String> {
        Err(format!("{addr} is not available here"))
    }
    fn path(&self, _: &str) -> Option<Value> {
        None
    }
}

/// The names visible to one expression.
#[derive(Clone)]
pub struct Scope<'a> {
    pub resolver: &'a dyn Resolver,
    pub count_index: Option<i64>,
    pub each: Option<(Value, Value)>,
    pub self_value: Option<Value>,
    /// Variables of enclosing `for` expressions and template `for` directives.
    bound: Vec<(Name, Value)>,
}

impl<'a> Scope<'a> {
    pub fn new(resolver: &'a dyn Resolver) -> Scope<'a> {
        Scope { resolver, count_index: None, each: None, self_value: None, bound: Vec::new() }
    }

    /// A scope with `name` bound to `value` (dynamic block iterators).
    pub fn with_bound(&self, name: &str, value: Value) -> Scope<'a> {
        self.bind(&[(&Name::from(name), value)])
    }

    pub(crate) fn bind(&self, names: &[(&Name, Value)]) -> Scope<'a> {
        let mut s = self.clone();
        for (n, v) in names {
            s.bound.push(((*n).clone(), v.clone()));
        }
        s
    }

    fn bound(&self, name: &str) -> Option<&Value> {
        self.bound.iter().rev().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }
}

/// What a `condition` + `error_message` pair came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Passed,
    /// The condition is false; the evaluated error message.
    Failed(String),
    /// Not known until apply.
    Unknown,
    Error(EvalError),
}

/// Evaluates a validation, precondition, postcondition or check assertion.
pub fn condition(v: &super::Validation, scope: &Scope) -> Condition {
    match eval(&v.condition.expr, scope) {
        Ok(c) if c.is_unknown() => Condition::Unknown,
        Ok(c) => match convert(&c, &Type::Bool).ok().and_then(|b| b.as_bool()) {
            Some(true) => Condition::Passed,
            Some(false) => {
                let message = match eval(&v.error_message.expr, scope) {
                    Ok(m) if m.contains_sensitive() => "(the error message refers to sensitive values)".to_owned(),
                    Ok(m) => m.as_str().map(str::to_owned).unwrap_or_else(|| m.to_hcl()),
                    Err(e) => format!("condition failed, and its error message does not evaluate: {}", e.message),
                };
                Condition::Failed(message)
            }
            None => Condition::Error(EvalError::at(&v.condition.expr, format!("a condition must be a bool, found {}", c.kind()))),
        },
        Err(e) => Condition::Error(e),
    }
}

/// Evaluates an expression that may only use literals and functions.
pub fn constant(expr: &Expr) -> EvalResult {
    eval(&expr.expr, &Scope::new(&NoNames))
}

/// Evaluates `expr` in `scope`.
pub fn eval(expr: &Node, scope: &Scope) -> EvalResult {
    match &expr.kind {
        Kind::Null => Ok(Value::Null),
        Kind::Bool(b) => Ok(Value::Bool(*b)),
        Kind::Number(n) => Ok(Value::Number(n.clone())),
        Kind::BadNumber(message) => Err(EvalError::at(expr, &**message)),
        Kind::String(s) => Ok(Value::String((**s).to_owned())),
        Kind::Array(items) => items.iter().map(|e| eval(e, scope)).collect::<Result<_, _>>().map(Value::List),
        Kind::Object(obj) => {
            let mut out = BTreeMap::new();
            let mut sensitive_key = false;
            for (key, value) in obj.iter() {
                let k = match key {
                    ObjectKey::Ident(i) => Value::String((**i).to_owned()),
                    ObjectKey::Expr(e) => eval(e, scope)?,
                };
                if k.is_unknown() {
                    return Ok(Value::Unknown);
                }
                sensitive_key |= k.is_sensitive();
                let k = key_string(&k)
                    .ok_or_else(|| EvalError::at(value, format!("an object key must be a string, found {}", k.kind())))?;
                out.insert(k, eval(value, scope)?);
            }
            Ok(mark(Value::Map(out.into()), sensitive_key))
        }
        Kind::Template(t) => super::template::render(t, scope),
        Kind::Parenthesis(inner) => eval(inner, scope),
        Kind::Variable(v) => match scope.bound(v) {
            Some(value) => Ok(value.clone()),
            None => match &**v {
                "count" | "each" | "var" | "local" | "path" | "data" | "terraform" | "module" => {
                    Err(EvalError::at(expr, format!("{v} must be followed by an attribute")))
                }
                "self" => scope.self_value.clone().ok_or_else(|| EvalError::at(expr, "self is not available here")),
                name => Err(EvalError::at(expr, format!("a reference to a resource type must be followed by a name: {name}.NAME"))),
            },
        },
        Kind::Conditional(c) => {
            let cond = eval(&c.cond, scope)?;
            if cond.is_unknown() {
                return Ok(Value::Unknown);
            }
            let sensitive = cond.is_sensitive();
            let b = convert(&cond, &Type::Bool)
                .ok()
                .and_then(|v| v.as_bool())
                .ok_or_else(|| EvalError::at(&c.cond, format!("the condition must be a bool, found {}", cond.kind())))?;
            let (chosen, other) = if b { (&c.if_true, &c.if_false) } else { (&c.if_false, &c.if_true) };
            let result = eval(chosen, scope)?;
            Ok(mark(conditional_result(result, other, b, scope).map_err(|m| EvalError::at(expr, m))?, sensitive))
        }
        Kind::FuncCall(call) if matches!(&*call.name, "can" | "try") => {
            // Both need their arguments unevaluated: an error in an argument
            // is their input, not a failure.
            let args = &call.args[..];
            if &*call.name == "can" {
                let [arg] = args else { return Err(EvalError::at(expr, "can: expects 1 argument")) };
                return Ok(match eval(arg, scope) {
                    Ok(v) if v.contains_unknown() => Value::Unknown,
                    Ok(_) => Value::Bool(true),
                    Err(_) => Value::Bool(false),
                });
            }
            let mut errors = Vec::new();
            for arg in args {
                match eval(arg, scope) {
                    Ok(v) if v.contains_unknown() => return Ok(Value::Unknown),
                    Ok(v) => return Ok(v),
                    Err(e) => errors.push(e.message),
                }
            }
            Err(EvalError::at(expr, format!("try: no argument succeeded: {}", errors.join("; "))))
        }
        Kind::FuncCall(call) => {
            let name = &*call.name;
            let mut args = Vec::with_capacity(call.args.len());
            for a in call.args.iter() {
                args.push(eval(a, scope)?);
            }
            if call.expand_final {
                let last = args.pop().unwrap_or_default();
                let sensitive = last.is_sensitive();
                match last.unmarked() {
                    Value::List(rest) => args.extend(rest.iter().map(|v| mark(v.clone(), sensitive))),
                    Value::Unknown => return Ok(Value::Unknown),
                    _ => return Err(EvalError::at(expr, "the final argument of f(x...) must be a list")),
                }
            }
            let sensitive_args: Vec<usize> =
                args.iter().enumerate().filter(|(_, a)| a.contains_sensitive()).map(|(i, _)| i + 1).collect();
            functions::call(name, args, &scope.resolver.functions()).map_err(|m| {
                let message = if sensitive_args.is_empty() { format!("{name}: {m}") } else { withheld(name, &sensitive_args) };
                EvalError::at(expr, message)
            })
        }
        Kind::Traversal(t) => traversal(expr, &t.root, &t.ops, scope),
        Kind::Unary(op) => {
            let v = eval(&op.expr, scope)?;
            if v.is_unknown() {
                return Ok(Value::Unknown);
            }
            let sensitive = v.is_sensitive();
            let result = match op.op {
                UnaryOperator::Neg => number(&v, &op.expr).map(|n| Value::Number(n.neg())),
                UnaryOperator::Not => boolean(&v, &op.expr).map(|b| Value::Bool(!b)),
            }?;
            Ok(mark(result, sensitive))
        }
        Kind::Binary(op) => binary(&op.op, &op.lhs, &op.rhs, scope),
        Kind::For(f) => for_expr(f, scope),
    }
}

/// The chosen branch of a conditional, converted to the type both branches
/// unify to (`true ? 1 : "a"` is `"1"`), as Terraform does; branches
/// without a common type are an error even when the condition is known.
/// The other branch is evaluated for its type only: its errors are not the
/// result's (it then counts as unknown, as in HCL).
fn conditional_result(result: Value, other: &Node, chose_true: bool, scope: &Scope) -> Result<Value, String> {
    use super::unify::{friendly_name, type_of, unify};
    if result.is_null() || result.is_unknown() {
        return Ok(result);
    }
    let other = eval(other, scope).unwrap_or(Value::Unknown);
    let (chosen_ty, other_ty) = (type_of(&result), type_of(&other));
    if chosen_ty == other_ty || other_ty == Type::Any {
        return Ok(result);
    }
    let Some(ty) = unify(&[chosen_ty.clone(), other_ty.clone()]) else {
        let (t, f) = if chose_true { (&chosen_ty, &other_ty) } else { (&other_ty, &chosen_ty) };
        return Err(format!(
            "Inconsistent conditional result types: the true and false result expressions must have consistent types; the 'true' value is {}, but the 'false' value is {}",
            friendly_name(t),
            friendly_name(f)
        ));
    };
    convert(&result, &ty)
}

/// The message of a function that failed on sensitive arguments. Its own
/// message is withheld, not scrubbed: functions quote their arguments
/// decoded, parsed or normalised, which no text replacement recognises.
fn withheld(name: &str, positions: &[usize]) -> String {
    let which = positions.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    let (noun, verb) = if positions.len() == 1 { ("argument", "is") } else { ("arguments", "are") };
    format!("{name}: the call failed; its error is not shown because {noun} {which} {verb} sensitive")
}

pub(crate) fn mark(v: Value, sensitive: bool) -> Value {
    if sensitive {
        v.into_sensitive()
    } else {
        v
    }
}

/// The text of a string literal in Unicode normal form C, as HCL reads
/// every literal (so `"e\u0301" == "\u00e9"`).
pub(crate) fn nfc(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    if text.is_ascii() {
        text.to_owned()
    } else {
        text.nfc().collect()
    }
}

fn number(v: &Value, at: &Node) -> Result<Number, EvalError> {
    convert(v, &Type::Number)
        .ok()
        .and_then(|v| v.as_number().cloned())
        .ok_or_else(|| EvalError::at(at, format!("expected a number, found {}", describe(v))))
}

pub(crate) fn boolean(v: &Value, at: &Node) -> Result<bool, EvalError> {
    convert(v, &Type::Bool)
        .ok()
        .and_then(|v| v.as_bool())
        .ok_or_else(|| EvalError::at(at, format!("expected a bool, found {}", describe(v))))
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Sensitive(_) => "a sensitive value".into(),
        Value::String(s) => format!("string {s:?}"),
        v => v.kind().to_owned(),
    }
}

/// An arithmetic result, or Terraform's error for infinities and `0/0`.
fn arithmetic(result: Result<Number, strata_provider::NumberError>, at: &Node) -> Result<Number, EvalError> {
    result.map_err(|e| EvalError::at(at, format!("error during operation: {e}")))
}

fn binary(op: &BinaryOperator, lhs: &Node, rhs: &Node, scope: &Scope) -> EvalResult {
    let l = eval(lhs, scope)?;
    // `&&` and `||` short-circuit on a known left side, as in Terraform.
    match (op, l.unmarked()) {
        (BinaryOperator::And, Value::Bool(false)) => return Ok(mark(Value::Bool(false), l.is_sensitive())),
        (BinaryOperator::Or, Value::Bool(true)) => return Ok(mark(Value::Bool(true), l.is_sensitive())),
        _ => {}
    }
    let r = eval(rhs, scope)?;
    if l.is_unknown() || r.is_unknown() {
        return Ok(Value::Unknown);
    }
    let sensitive = l.is_sensitive() || r.is_sensitive();
    let result = match op {
        BinaryOperator::Eq => Value::Bool(super::unify::equal(&l, &r)),
        BinaryOperator::NotEq => Value::Bool(!super::unify::equal(&l, &r)),
        BinaryOperator::And => Value::Bool(boolean(&l, lhs)? && boolean(&r, rhs)?),
        BinaryOperator::Or => Value::Bool(boolean(&l, lhs)? || boolean(&r, rhs)?),
        arith => {
            let (a, b) = (number(&l, lhs)?, number(&r, rhs)?);
            match arith {
                BinaryOperator::Plus => Value::Number(arithmetic(a.add(&b), rhs)?),
                BinaryOperator::Minus => Value::Number(arithmetic(a.sub(&b), rhs)?),
                BinaryOperator::Mul => Value::Number(arithmetic(a.mul(&b), rhs)?),
                BinaryOperator::Div => Value::Number(arithmetic(a.div(&b), rhs)?),
                BinaryOperator::Mod => Value::Number(arithmetic(a.rem(&b), rhs)?),
                BinaryOperator::Less => Value::Bool(a < b),
                BinaryOperator::LessEq => Value::Bool(a <= b),
                BinaryOperator::Greater => Value::Bool(a > b),
                BinaryOperator::GreaterEq => Value::Bool(a >= b),
                BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::And | BinaryOperator::Or => {
                    unreachable!("handled above")
                }
            }
        }
    };
    Ok(mark(result, sensitive))
}

/// The (key, value) pairs a `for` iterates: indexes of a list, keys of a map.
pub(crate) fn iterate(coll: &Value, at: &Node) -> Result<Vec<(Value, Value)>, EvalError> {
    let sensitive = coll.is_sensitive();
    match coll.unmarked() {
        Value::List(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (mark(Value::from(i as i64), sensitive), mark(v.clone(), sensitive)))
            .collect()),
        // The keys of a sensitive map are as secret as its values.
        Value::Map(m) => Ok(m.iter().map(|(k, v)| (mark(Value::String(k.clone()), sensitive), mark(v.clone(), sensitive))).collect()),
        Value::Null => Err(EvalError::at(at, "cannot iterate over null")),
        other => Err(EvalError::at(at, format!("cannot iterate over a {}", other.kind()))),
    }
}

fn for_expr(f: &super::ast::ForExpr, scope: &Scope) -> EvalResult {
    let coll = eval(&f.collection, scope)?;
    if coll.is_unknown() {
        return Ok(Value::Unknown);
    }
    let mut list = Vec::new();
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    // A map key is plain text and cannot carry a mark: a map with a key made
    // from a sensitive value is sensitive as a whole (as in Terraform). So is
    // a result filtered by a sensitive condition or made from a sensitive
    // collection: which elements it has tells about the secret.
    let mut sensitive = coll.is_sensitive();
    for (k, v) in iterate(&coll, &f.collection)? {
        let inner = match &f.key_var {
            Some(kv) => scope.bind(&[(kv, k), (&f.value_var, v)]),
            None => scope.bind(&[(&f.value_var, v)]),
        };
        if let Some(cond) = &f.cond {
            let c = eval(cond, &inner)?;
            if c.is_unknown() {
                return Ok(Value::Unknown);
            }
            sensitive |= c.is_sensitive();
            if !boolean(&c, cond)? {
                continue;
            }
        }
        let value = eval(&f.value, &inner)?;
        match &f.key {
            None => list.push(value),
            Some(key_expr) => {
                let key = eval(key_expr, &inner)?;
                if key.is_unknown() {
                    return Ok(Value::Unknown);
                }
                let secret_key = key.is_sensitive();
                sensitive |= secret_key;
                let key = key_string(&key)
                    .ok_or_else(|| EvalError::at(key_expr, format!("a key must be a string, found {}", key.kind())))?;
                if f.grouping {
                    match map.entry(key).or_insert_with(|| Value::List(Vec::new().into())) {
                        Value::List(items) => items.push(value),
                        _ => unreachable!("grouped entries are lists"),
                    }
                } else if map.insert(key.clone(), value).is_some() {
                    let which = if secret_key { "a sensitive key".to_owned() } else { format!("key {key:?}") };
                    return Err(EvalError::at(
                        key_expr,
                        format!("duplicate {which}; use `...` after the value to group values by key"),
                    ));
                }
            }
        }
    }
    Ok(mark(if f.key.is_some() { Value::Map(map.into()) } else { Value::List(list.into()) }, sensitive))
}

/// Evaluates a traversal, resolving its root name.
fn traversal(whole: &Node, root: &Node, ops: &[Operator], scope: &Scope) -> EvalResult {
    let attr = |i: usize| match ops.get(i) {
        Some(Operator::GetAttr(a)) => Some(&**a),
        _ => None,
    };
    let (value, rest) = match &root.kind {
        Kind::Variable(v) if scope.bound(v).is_none() => match &**v {
            "var" => {
                let name = attr(0).ok_or_else(|| EvalError::at(whole, "expected var.NAME"))?;
                let value = scope
                    .resolver
                    .variable(name)
                    .ok_or_else(|| EvalError::at(whole, format!("undeclared input variable var.{name}")))?;
                (value, 1)
            }
            "local" => {
                let name = attr(0).ok_or_else(|| EvalError::at(whole, "expected local.NAME"))?;
                (scope.resolver.local(name).map_err(|m| EvalError::at(whole, m))?, 1)
            }
            "count" => match attr(0) {
                Some("index") => {
                    let i = scope.count_index.ok_or_else(|| {
                        EvalError::at(whole, "count.index is only available in blocks that set count")
                    })?;
                    (Value::from(i), 1)
                }
                _ => return Err(EvalError::at(whole, "count has only the attribute index")),
            },
            "each" => {
                let (k, v) = scope
                    .each
                    .clone()
                    .ok_or_else(|| EvalError::at(whole, "each is only available in blocks that set for_each"))?;
                match attr(0) {
                    Some("key") => (k, 1),
                    Some("value") => (v, 1),
                    _ => return Err(EvalError::at(whole, "each has only the attributes key and value")),
                }
            }
            "path" => {
                let name = attr(0).unwrap_or_default();
                let v = scope
                    .resolver
                    .path(name)
                    .ok_or_else(|| EvalError::at(whole, format!("path.{name} does not exist (module, root, cwd)")))?;
                (v, 1)
            }
            "terraform" | "strata" => match attr(0) {
                Some("workspace") => (Value::from(scope.resolver.workspace().unwrap_or_else(|| "default".to_owned())), 1),
                _ => return Err(EvalError::at(whole, "expected terraform.workspace")),
            },
            "self" => (scope.self_value.clone().ok_or_else(|| EvalError::at(whole, "self is not available here"))?, 0),
            "module" => {
                let Some(name) = attr(0) else { return Err(EvalError::at(whole, "expected module.NAME")) };
                let key = match ops.get(1) {
                    Some(Operator::Index(e)) => Some(eval(e, scope)?),
                    Some(Operator::LegacyIndex(i)) => Some(Value::from(*i as i64)),
                    _ => None,
                };
                match key {
                    Some(k) if k.is_unknown() => return Ok(Value::Unknown),
                    Some(k) => {
                        let key = match k.unmarked() {
                            Value::Number(n) => InstanceKey::Index(n.to_i64().unwrap_or(-1)),
                            Value::String(s) => InstanceKey::Key(s.clone()),
                            other => return Err(EvalError::at(whole, format!("a module key must be a number or a string, found {}", other.kind()))),
                        };
                        let v = scope.resolver.module(name, Some(&key)).map_err(|m| EvalError::at(whole, crate::redact::scrub(&m, [&k])))?;
                        (mark(v, k.is_sensitive()), 2)
                    }
                    None => (scope.resolver.module(name, None).map_err(|m| EvalError::at(whole, m))?, 1),
                }
            }
            "data" => {
                let (Some(t), Some(n)) = (attr(0), attr(1)) else {
                    return Err(EvalError::at(whole, "expected data.TYPE.NAME"));
                };
                resource_value(whole, &ResourceAddr::new(Mode::Data, t, n), &ops[2..], scope).map(|(v, used)| (v, 2 + used))?
            }
            type_name => {
                let Some(n) = attr(0) else {
                    return Err(EvalError::at(whole, format!("expected {type_name}.NAME")));
                };
                resource_value(whole, &ResourceAddr::new(Mode::Managed, type_name, n), &ops[1..], scope)
                    .map(|(v, used)| (v, 1 + used))?
            }
        },
        _ => (eval(root, scope)?, 0),
    };
    apply_ops(whole, value, &ops[rest..], scope)
}

/// Looks up a resource, asking for one instance when the next operator is an
/// index, so that `r.name[count.index]` does not build the whole collection.
fn resource_value(whole: &Node, addr: &ResourceAddr, ops: &[Operator], scope: &Scope) -> Result<(Value, usize), EvalError> {
    let index = match ops.first() {
        Some(Operator::Index(e)) => Some(eval(e, scope)?),
        Some(Operator::LegacyIndex(i)) => Some(Value::from(*i as i64)),
        _ => None,
    };
    match index {
        Some(Value::Unknown) => Ok((Value::Unknown, 1)),
        Some(idx) => {
            let key = match idx.unmarked() {
                Value::Number(n) => InstanceKey::Index(
                    n.to_i64().ok_or_else(|| EvalError::at(whole, format!("an instance index must be a whole number, found {n}")))?,
                ),
                Value::String(s) => InstanceKey::Key(s.clone()),
                other => return Err(EvalError::at(whole, format!("an instance key must be a number or a string, found {}", other.kind()))),
            };
            let names = attribute_names(&ops[1..]);
            let (v, read) =
                scope.resolver.resource_path(addr, Some(&key), &names).map_err(|m| EvalError::at(whole, crate::redact::scrub(&m, [&idx])))?;
            Ok((mark(v, idx.is_sensitive()), 1 + read))
        }
        None => {
            let names = attribute_names(ops);
            scope.resolver.resource_path(addr, None, &names).map_err(|m| EvalError::at(whole, m))
        }
    }
}

/// The attribute names at the start of `ops` (`.a.b` of `r.x.a.b[0]`).
fn attribute_names<'o>(ops: &'o [Operator]) -> Vec<&'o str> {
    ops.iter()
        .map_while(|op| match op {
            Operator::GetAttr(name) => Some(&**name),
            _ => None,
        })
        .collect()
}

/// Follows attribute names into `value` as far as plain (unmarked) objects
/// have them, and copies only what it reaches: the same value `apply_ops`
/// would reach by those names, without copying the rest of an instance.
/// Returns how many names it followed; `apply_ops` does the rest (and
/// reports what is missing).
pub fn read_path(value: &Value, names: &[&str]) -> (Value, usize) {
    let mut at = value;
    let mut read = 0;
    for name in names {
        match at {
            Value::Map(m) => match m.get(*name) {
                Some(v) => {
                    at = v;
                    read += 1;
                }
                None => break,
            },
            _ => break,
        }
    }
    (at.clone(), read)
}

fn apply_ops(whole: &Node, mut value: Value, ops: &[Operator], scope: &Scope) -> EvalResult {
    for (i, op) in ops.iter().enumerate() {
        if value.is_unknown() {
            return Ok(Value::Unknown);
        }
        let sensitive = value.is_sensitive();
        value = match op {
            Operator::GetAttr(name) => match value.unmarked() {
                Value::Map(m) => m
                    .get(&**name)
                    .cloned()
                    .ok_or_else(|| EvalError::at(whole, format!("this object has no attribute {:?}", &**name)))?,
                Value::Null => return Err(EvalError::at(whole, format!("cannot read attribute {:?} of null", &**name))),
                other => return Err(EvalError::at(whole, format!("cannot read attribute {:?} of a {}", &**name, other.kind()))),
            },
            Operator::Index(e) => index(whole, &value, eval(e, scope)?)?,
            Operator::LegacyIndex(n) => index(whole, &value, Value::from(*n as i64))?,
            Operator::AttrSplat | Operator::FullSplat => {
                // The result keeps the kind of what was splatted (a list
                // stays a list, a set becomes one); a single value becomes a
                // one-element tuple.
                let (items, kind) = match value.unmarked() {
                    Value::List(items) if items.kind == strata_provider::ListKind::Set => (items.to_vec(), strata_provider::ListKind::List),
                    Value::List(items) => (items.to_vec(), items.kind),
                    Value::Null => (Vec::new(), strata_provider::ListKind::Tuple),
                    other => (vec![other.clone()], strata_provider::ListKind::Tuple),
                };
                let rest = &ops[i + 1..];
                // A full splat (`[*]`) applies everything after it to each
                // element; the legacy one (`.*`) only the attribute names
                // right after it, and the rest to the list it made, as in HCL
                // (`x.*.a[0]` is the first `a`, `x[*].a[0]` each `a`'s first).
                let each = match op {
                    Operator::AttrSplat => rest.iter().take_while(|o| matches!(o, Operator::GetAttr(_))).count(),
                    _ => rest.len(),
                };
                let mapped = items
                    .into_iter()
                    .map(|item| apply_ops(whole, item, &rest[..each], scope))
                    .collect::<Result<Vec<_>, _>>()?;
                let mapped = Value::List(strata_provider::ListValue::new(mapped, kind));
                return apply_ops(whole, mark(mapped, sensitive), &rest[each..], scope);
            }
        };
        value = mark(value, sensitive);
    }
    Ok(value)
}

/// Indexes a list or map. A sensitive key marks the element it selects, and
/// neither a sensitive key nor the length of a sensitive list is quoted in
/// an error.
fn index(whole: &Node, value: &Value, idx: Value) -> EvalResult {
    if idx.is_unknown() {
        return Ok(Value::Unknown);
    }
    let secret_key = idx.contains_sensitive();
    let element = match (value.unmarked(), idx.unmarked()) {
        (Value::List(items), k) => {
            let n = convert(k, &Type::Number)
                .ok()
                .and_then(|v| v.as_number().cloned())
                .ok_or_else(|| EvalError::at(whole, format!("a list index must be a number, found {}", k.kind())))?;
            match n.to_i64().and_then(|i| usize::try_from(i).ok()).filter(|i| *i < items.len()) {
                Some(i) => items[i].clone(),
                None if secret_key => return Err(EvalError::at(whole, "the sensitive index is out of range for this list")),
                None if value.is_sensitive() => return Err(EvalError::at(whole, format!("index {n} is out of range for this sensitive list"))),
                None => return Err(EvalError::at(whole, format!("index {n} is out of range for a list of {} elements", items.len()))),
            }
        }
        (Value::Map(m), k) => {
            let k = key_string(k).ok_or_else(|| EvalError::at(whole, format!("a map key must be a string, found {}", k.kind())))?;
            match m.get(&k) {
                Some(v) => v.clone(),
                None if secret_key => return Err(EvalError::at(whole, "no element with this sensitive key")),
                None => return Err(EvalError::at(whole, format!("no element with key {k:?}"))),
            }
        }
        (Value::Null, _) => return Err(EvalError::at(whole, "cannot index null")),
        (other, _) => return Err(EvalError::at(whole, format!("cannot index a {}", other.kind()))),
    };
    Ok(mark(element, secret_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Resolver for Names {
        fn variable(&self, name: &str) -> Option<Value> {
            match name {
                "n" => Some(Value::from(2i64)),
                "pw" => Some(Value::from("hunter2").into_sensitive()),
                "tags" => Some(Value::object([("env", Value::from("dev"))])),
                _ => None,
            }
        }
        fn local(&self, name: &str) -> Result<Value, String> {
            Err(format!("no local {name}"))
        }
        fn resource(&self, addr: &ResourceAddr, key: Option<&InstanceKey>) -> Result<Value, String> {
            let inst = |i: i64| Value::object([("name", Value::from(format!("{}-{i}", addr.name))), ("id", Value::Unknown)]);
            match key {
                Some(InstanceKey::Index(i)) => Ok(inst(*i)),
                None => Ok(Value::List(vec![inst(0), inst(1)].into())),
                Some(k) => Err(format!("no instance {k}")),
            }
        }
        fn path(&self, _: &str) -> Option<Value> {
            None
        }
    }

    fn check(src: &str, expected: Value) {
        let expr = crate::config::parse::parse_expr(src).unwrap();
        let mut scope = Scope::new(&Names);
        scope.count_index = Some(1);
        assert_eq!(eval(&expr, &scope).unwrap(), expected, "{src}");
    }

    #[test]
    fn expressions_evaluate_as_in_terraform() {
        check("var.n * 3 + 1", Value::from(7i64));
        check("0.1 + 0.2 == 0.3", Value::Bool(true));
        check(r#""1" + 1"#, Value::from(2i64));
        check(r#""web-${count.index}""#, Value::from("web-1"));
        check("strata_data.a[count.index].name", Value::from("a-1"));
        check("strata_data.a[*].name", Value::List(vec!["a-0".into(), "a-1".into()].into()));
        check("[for i, s in [\"x\", \"y\"] : \"${i}${s}\" if s != \"x\"]", Value::List(vec!["1y".into()].into()));
        check("{for k, v in var.tags : upper(k) => v}", Value::object([("ENV", Value::from("dev"))]));
        check("var.n > 1 ? \"big\" : \"small\"", Value::from("big"));
        check("\"a %{ if var.n == 2 ~} two %{~ endif } b\"", Value::from("a two b"));
        check("try(var.tags.nope, \"fallback\")", Value::from("fallback"));
        check("can(var.tags.env)", Value::Bool(true));
        check("can(var.tags.nope)", Value::Bool(false));
        check("try(strata_data.a[0].id, 1)", Value::Unknown);
    }

    #[test]
    fn unknowns_and_secrets_propagate() {
        check("strata_data.a[0].id", Value::Unknown);
        check(r#""id-${strata_data.a[0].id}""#, Value::Unknown);
        check("strata_data.a[0].id == \"x\" ? 1 : 2", Value::Unknown);
        check(r#""pw=${var.pw}""#, Value::from("pw=hunter2").into_sensitive());
        check("length(var.pw)", Value::from(7i64).into_sensitive());
        // Map keys cannot carry a mark: a map keyed by a secret is marked whole.
        check("{for k, v in {x = var.pw} : v => k}", Value::object([("hunter2", Value::from("x"))]).into_sensitive());
        check("{(var.pw) = 1}", Value::object([("hunter2", Value::from(1i64))]).into_sensitive());
        check("[for k, v in sensitive({a = 1}) : k]", Value::List(vec![Value::from("a").into_sensitive()].into()).into_sensitive());
        check("{a = 1, hunter2 = 2}[var.pw]", Value::from(2i64).into_sensitive());
        check("concat(sensitive([[\"a\"]])...)", Value::List(vec![Value::from("a")].into()).into_sensitive());
    }

    #[test]
    fn errors_never_quote_a_secret() {
        for src in ["tonumber(var.pw)", "{a = 1}[var.pw]", "[1][var.pw]", "{for k in [var.pw, var.pw] : k => 1}", "var.pw + 1"] {
            let expr = crate::config::parse::parse_expr(src).unwrap();
            let err = eval(&expr, &Scope::new(&Names)).unwrap_err();
            assert!(!err.message.contains("hunter2"), "{src}: {}", err.message);
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let expr = crate::config::parse::parse_expr("var.nope + 1").unwrap();
        let err = eval(&expr, &Scope::new(&Names)).unwrap_err();
        assert_eq!(err.message, "undeclared input variable var.nope");
        assert_eq!(err.range, Some(0..8));
        let expr = crate::config::parse::parse_expr("var.tags.nope").unwrap();
        assert!(eval(&expr, &Scope::new(&Names)).unwrap_err().message.contains("no attribute \"nope\""));
    }
}
