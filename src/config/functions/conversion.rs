//! Type conversion functions, `type`, and the sensitivity functions.

use super::{one, Args, Function, FunctionContext, Result, Table};
use crate::config::types::convert;
use crate::config::unify::{type_of, unify as unify_types};
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

/// Converts values to the one type they unify to, as Terraform does for
/// `coalesce`: equal types stay, mixed primitives become strings.
pub(super) fn unify(values: Vec<Value>) -> Result<Vec<Value>> {
    let types: Vec<Type> = values.iter().map(type_of).collect();
    let ty = unify_types(&types).ok_or("all arguments must have the same type")?;
    values.iter().map(|v| convert(v, &ty)).collect()
}

/// Converts a collection to a list, set or map whose element type the
/// elements unify to.
fn to_collection(args: Args, ty: Type) -> Result {
    let v = one(args)?;
    let from = type_name(&v);
    let any_single = |to: &str| format!("cannot convert {} to {to} of any single type", short_kind(&from));
    match (&v, &ty) {
        (Value::Null, _) => Ok(Value::Null),
        (Value::List(_), Type::List(_)) => convert(&v, &ty).map_err(|_| any_single("list")),
        (Value::List(_), Type::Set(_)) => convert(&v, &ty).map_err(|_| any_single("set")),
        (Value::Map(_), Type::Map(_)) => convert(&v, &ty).map_err(|_| any_single("map")),
        _ => Err(format!("cannot convert {from} to {}", short_kind(&ty.to_string()))),
    }
}

/// `tuple([string])` → `tuple`, as Terraform names the kind in messages.
fn short_kind(name: &str) -> &str {
    name.split('(').next().unwrap_or(name)
}

fn tolist(args: Args) -> Result {
    to_collection(args, Type::List(Box::new(Type::Any)))
}

fn toset(args: Args) -> Result {
    to_collection(args, Type::Set(Box::new(Type::Any)))
}

fn tomap(args: Args) -> Result {
    to_collection(args, Type::Map(Box::new(Type::Any)))
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

/// The type of a value in type-constraint syntax, on one line
/// (`tuple([string, number])`, `list(string)`); `null` and unknown values
/// are `dynamic`.
pub(super) fn type_name(v: &Value) -> String {
    fn name(t: &Type) -> String {
        match t {
            Type::Any | Type::Optional(..) => "dynamic".into(),
            Type::String | Type::Number | Type::Bool => t.to_string(),
            Type::List(e) => format!("list({})", name(e)),
            Type::Set(e) => format!("set({})", name(e)),
            Type::Map(e) => format!("map({})", name(e)),
            Type::Tuple(es) => format!("tuple([{}])", es.iter().map(name).collect::<Vec<_>>().join(", ")),
            Type::Object(attrs) => {
                format!("object({{{}}})", attrs.iter().map(|(k, t)| format!("{k} = {}", name(t))).collect::<Vec<_>>().join(", "))
            }
        }
    }
    name(&type_of(v))
}

/// Known even for unknown values (`dynamic`); sensitive if the value is.
fn type_fn(args: Args, _: &FunctionContext) -> Result {
    let v = one(args)?;
    let name = Value::String(type_name(&v));
    Ok(if v.contains_sensitive() { name.into_sensitive() } else { name })
}
