//! Type conversion functions, `type`, and the sensitivity functions.

use super::collection::into_set;
use super::{map, one, Args, Function, FunctionContext, Result, Table};
use crate::config::types::convert;
use strata_provider::{Type, Value};

pub(super) const FUNCTIONS: Table = &[
    ("ephemeralasnull", Function::Raw(ephemeralasnull)),
    ("issensitive", Function::Raw(issensitive)),
    ("nonsensitive", Function::Raw(nonsensitive)),
    ("sensitive", Function::Raw(sensitive)),
    ("tobool", Function::Pure(tobool)),
    ("tolist", Function::Pure(tolist)),
    ("tomap", Function::Pure(tomap)),
    ("tonumber", Function::Pure(tonumber)),
    ("toset", Function::Pure(toset)),
    ("tostring", Function::Pure(tostring)),
    ("type", Function::Raw(type_fn)),
];

fn sensitive(args: Args, _: &FunctionContext) -> Result {
    one(args).map(Value::into_sensitive)
}

/// Whether the value itself is marked sensitive (not something inside it).
fn issensitive(args: Args, _: &FunctionContext) -> Result {
    let v = one(args)?;
    Ok(match v {
        Value::Sensitive(_) => Value::Bool(true),
        Value::Unknown => Value::Unknown,
        _ => Value::Bool(false),
    })
}

/// Strata has no ephemeral values, so every value is returned as it is,
/// as Terraform does for values that are not ephemeral.
fn ephemeralasnull(args: Args, _: &FunctionContext) -> Result {
    one(args)
}

/// Deviation: Terraform rejects a value that is not sensitive; this accepts it.
fn nonsensitive(args: Args, _: &FunctionContext) -> Result {
    one(args).map(Value::deep_unmark)
}

fn primitive(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Converts values to one common type, as Terraform does when a tuple
/// becomes a list: equal types stay, mixed primitives become strings.
pub(super) fn unify(values: Vec<Value>) -> Result<Vec<Value>> {
    let mut types = values.iter().filter(|v| !v.is_null()).map(type_name);
    let first = types.next();
    if types.all(|t| Some(t) == first) {
        return Ok(values);
    }
    if values.iter().all(|v| v.is_null() || primitive(v)) {
        return values.iter().map(|v| convert(v, &Type::String)).collect();
    }
    Err("all elements must have the same type".into())
}

fn tolist(args: Args) -> Result {
    match one(args)? {
        Value::Null => Ok(Value::Null),
        Value::List(items) => unify(items).map(Value::List).map_err(|e| format!("cannot convert tuple to list: {e}")),
        other => Err(format!("cannot convert {} to list", type_name(&other))),
    }
}

fn toset(args: Args) -> Result {
    match one(args)? {
        Value::Null => Ok(Value::Null),
        Value::List(items) => {
            let items = unify(items).map_err(|e| format!("cannot convert tuple to set: {e}"))?;
            Ok(Value::List(into_set(items)))
        }
        other => Err(format!("cannot convert {} to set", type_name(&other))),
    }
}

fn tomap(args: Args) -> Result {
    let v = one(args)?;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let m = map(&v).map_err(|_| format!("cannot convert {} to map", type_name(&v)))?;
    let (names, values): (Vec<String>, Vec<Value>) = m.clone().into_iter().unzip();
    let values = unify(values).map_err(|e| format!("cannot convert object to map: {e}"))?;
    Ok(Value::Map(names.into_iter().zip(values).collect()))
}

fn to(args: Args, ty: &Type) -> Result {
    let v = one(args)?;
    convert(&v, ty).map_err(|_| match &v {
        Value::String(s) => format!("cannot convert {s:?} to {ty}"),
        other => format!("cannot convert {} to {ty}", type_name(other)),
    })
}

fn tobool(args: Args) -> Result {
    to(args, &Type::Bool)
}

fn tonumber(args: Args) -> Result {
    to(args, &Type::Number)
}

fn tostring(args: Args) -> Result {
    to(args, &Type::String)
}

/// The type of a value in type-constraint syntax, on one line. Values do
/// not remember whether they were built as lists or tuples, maps or
/// objects, so collections are described structurally, as Terraform
/// describes literals: `tuple([string, number])`, `object({a = bool})`.
/// `null` and unknown values are `dynamic`.
pub(super) fn type_name(v: &Value) -> String {
    match v {
        Value::Null | Value::Unknown => "dynamic".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::List(items) => format!("tuple([{}])", items.iter().map(type_name).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => {
            format!("object({{{}}})", m.iter().map(|(k, v)| format!("{k} = {}", type_name(v))).collect::<Vec<_>>().join(", "))
        }
        Value::Sensitive(inner) => type_name(inner),
    }
}

/// Known even for unknown values (`dynamic`); sensitive if the value is.
fn type_fn(args: Args, _: &FunctionContext) -> Result {
    let v = one(args)?;
    let name = Value::String(type_name(&v));
    Ok(if v.contains_sensitive() { name.into_sensitive() } else { name })
}
