//! Terraform's types of values, and their unification: the one type that
//! the branches of a conditional, the elements of `list(any)` or the
//! arguments of `coalesce` are converted to (cty's `convert.Unify`).
//!
//! A value's type is read off the value: primitives by their variant,
//! collections by their kind ([`ListKind`], [`MapKind`]) and elements. A
//! `null` or unknown value has no type of its own here (cty would carry
//! one), so it counts as `any`, which unifies with everything.

use std::collections::BTreeMap;
use strata_provider::{ListKind, MapKind, Type, Value};

/// The type of `value`, as Terraform's `type()` would give it.
pub fn type_of(value: &Value) -> Type {
    match value {
        Value::Null | Value::Unknown => Type::Any,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::Sensitive(inner) => type_of(inner),
        Value::List(list) => match list.kind {
            ListKind::Tuple => Type::Tuple(list.iter().map(type_of).collect()),
            ListKind::List => Type::List(Box::new(element_type(list.iter()))),
            ListKind::Set => Type::Set(Box::new(element_type(list.iter()))),
        },
        Value::Map(map) => match map.kind {
            MapKind::Object => Type::Object(map.iter().map(|(k, v)| (k.clone(), type_of(v))).collect()),
            MapKind::Map => Type::Map(Box::new(element_type(map.values()))),
        },
    }
}

/// The element type of a list, set or map: that of its first element that
/// is not null (all have one type).
fn element_type<'a>(mut items: impl Iterator<Item = &'a Value>) -> Type {
    items.find(|v| !v.is_null() && !v.is_unknown()).map(type_of).unwrap_or(Type::Any)
}

/// Whether two values are equal as Terraform's `==` sees them: equal
/// elements and equal types (`tolist(["a"]) == ["a"]` is false).
pub fn equal(a: &Value, b: &Value) -> bool {
    a.eq_unmarked(b) && same_type(a, b)
}

/// Whether two values have the same type (kinds of collections included).
pub fn same_type(a: &Value, b: &Value) -> bool {
    match (a.unmarked(), b.unmarked()) {
        (Value::List(x), Value::List(y)) => x.kind == y.kind && x.iter().zip(y.iter()).all(|(a, b)| same_type(a, b)),
        (Value::Map(x), Value::Map(y)) => x.kind == y.kind && x.values().zip(y.values()).all(|(a, b)| same_type(a, b)),
        (a, b) => type_of(a) == type_of(b),
    }
}

/// The type all of `types` convert to, preferring the most specific, or
/// `None` when there is none (a string and an object). `any` stands for
/// a null or unknown value and unifies with anything.
pub fn unify(types: &[Type]) -> Option<Type> {
    let known: Vec<&Type> = types.iter().filter(|t| **t != Type::Any).collect();
    let Some(first) = known.first() else { return Some(Type::Any) };
    if known.iter().all(|t| t == first) {
        return Some((*first).clone());
    }
    let count = |pred: fn(&Type) -> bool| known.iter().filter(|t| pred(t)).count();
    let (maps, objects) = (count(|t| matches!(t, Type::Map(_))), count(|t| matches!(t, Type::Object(_))));
    let (lists, tuples) = (count(|t| matches!(t, Type::List(_))), count(|t| matches!(t, Type::Tuple(_))));
    let sets = count(|t| matches!(t, Type::Set(_)));
    let n = known.len();
    if maps > 0 && maps + objects == n {
        if let Some(elem) = unify(&known.iter().flat_map(|t| member_types(t)).collect::<Vec<_>>()) {
            return Some(Type::Map(Box::new(elem)));
        }
    } else if lists > 0 && lists + tuples == n {
        if let Some(elem) = unify(&known.iter().flat_map(|t| member_types(t)).collect::<Vec<_>>()) {
            return Some(Type::List(Box::new(elem)));
        }
    } else if sets == n {
        return unify(&known.iter().flat_map(|t| member_types(t)).collect::<Vec<_>>()).map(|e| Type::Set(Box::new(e)));
    } else if objects == n {
        return unify_objects(&known);
    } else if tuples == n {
        return unify_tuples(&known);
    } else if objects > 0 && tuples > 0 {
        return None;
    }
    // Otherwise the first of the given types, most general first, that
    // every other converts to (a number and a string unify as a string).
    let mut candidates = known.clone();
    candidates.sort_by_key(|t| generality(t));
    candidates.into_iter().find(|want| known.iter().all(|t| converts(t, want))).cloned()
}

/// Element types of a collection type, attribute types of an object.
fn member_types(t: &Type) -> Vec<Type> {
    match t {
        Type::List(e) | Type::Set(e) | Type::Map(e) => vec![(**e).clone()],
        Type::Tuple(elems) => elems.clone(),
        Type::Object(attrs) => attrs.values().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Objects with the same attribute names unify attribute by attribute;
/// otherwise they may all fit one map type.
fn unify_objects(types: &[&Type]) -> Option<Type> {
    let attrs: Vec<&BTreeMap<String, Type>> = types.iter().filter_map(|t| match t {
        Type::Object(a) => Some(a),
        _ => None,
    }).collect();
    let same_names = attrs.iter().all(|a| a.len() == attrs[0].len() && a.keys().all(|k| attrs[0].contains_key(k)));
    if !same_names {
        let all: Vec<Type> = attrs.iter().flat_map(|a| a.values().cloned()).collect();
        return unify(&all).map(|e| Type::Map(Box::new(e)));
    }
    let mut out = BTreeMap::new();
    for name in attrs[0].keys() {
        let each: Vec<Type> = attrs.iter().map(|a| a[name].clone()).collect();
        out.insert(name.clone(), unify(&each)?);
    }
    Some(Type::Object(out))
}

/// Tuples of one length unify element by element; otherwise they may all
/// fit one list type.
fn unify_tuples(types: &[&Type]) -> Option<Type> {
    let elems: Vec<&Vec<Type>> = types.iter().filter_map(|t| match t {
        Type::Tuple(e) => Some(e),
        _ => None,
    }).collect();
    if elems.iter().any(|e| e.len() != elems[0].len()) {
        let all: Vec<Type> = elems.iter().flat_map(|e| e.iter().cloned()).collect();
        return unify(&all).map(|e| Type::List(Box::new(e)));
    }
    (0..elems[0].len())
        .map(|i| unify(&elems.iter().map(|e| e[i].clone()).collect::<Vec<_>>()))
        .collect::<Option<Vec<_>>>()
        .map(Type::Tuple)
}

/// Sort key: strings before the primitives that convert to them, lists
/// before sets (`true ? toset(["a"]) : tolist(["b"])` is a list).
fn generality(t: &Type) -> u8 {
    match t {
        Type::String => 0,
        Type::Number | Type::Bool => 1,
        Type::List(_) => 2,
        Type::Set(_) => 3,
        _ => 4,
    }
}

/// Whether a value of type `from` converts to `to` (cty's unsafe
/// conversions: a string may become a number if its text is one).
pub fn converts(from: &Type, to: &Type) -> bool {
    match (from, to) {
        (_, Type::Any) | (Type::Any, _) => true,
        (a, b) if a == b => true,
        (Type::Optional(inner, _), b) => converts(inner, b),
        (a, Type::Optional(inner, _)) => converts(a, inner),
        (Type::Number | Type::Bool, Type::String) => true,
        (Type::String, Type::Number | Type::Bool) => true,
        (Type::List(e) | Type::Set(e), Type::List(w) | Type::Set(w)) => converts(e, w),
        (Type::Tuple(es), Type::List(w) | Type::Set(w)) => es.iter().all(|e| converts(e, w)),
        (Type::Tuple(es), Type::Tuple(ws)) => es.len() == ws.len() && es.iter().zip(ws).all(|(e, w)| converts(e, w)),
        (Type::List(e) | Type::Set(e), Type::Tuple(ws)) => ws.iter().all(|w| converts(e, w)),
        (Type::Map(e), Type::Map(w)) => converts(e, w),
        (Type::Object(attrs), Type::Map(w)) => attrs.values().all(|a| converts(a, w)),
        (Type::Map(e), Type::Object(ws)) => ws.values().all(|w| converts(e, w)),
        (Type::Object(attrs), Type::Object(ws)) => ws.iter().all(|(k, w)| match attrs.get(k) {
            Some(a) => converts(a, w),
            None => matches!(w, Type::Optional(..)),
        }),
        _ => false,
    }
}

/// How Terraform names a type in a message (`string`, `object`, `tuple`).
pub fn friendly_name(t: &Type) -> &'static str {
    match t {
        Type::String => "string",
        Type::Number => "number",
        Type::Bool => "bool",
        Type::List(_) => "list",
        Type::Set(_) => "set",
        Type::Map(_) => "map",
        Type::Object(_) => "object",
        Type::Tuple(_) => "tuple",
        Type::Any | Type::Optional(..) => "dynamic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str) -> Type {
        crate::config::types::parse_type_constraint(&hcl::edit::parser::parse_expr(src).unwrap()).unwrap()
    }

    #[test]
    fn unification_follows_cty() {
        assert_eq!(unify(&[Type::Number, Type::String]), Some(Type::String));
        assert_eq!(unify(&[Type::Number, Type::Bool]), None);
        assert_eq!(unify(&[Type::String, t("object({})")]), None);
        assert_eq!(unify(&[t("tuple([])"), t("tuple([string])")]), Some(t("list(string)")));
        assert_eq!(unify(&[t("object({a = number})"), t("object({b = string})")]), Some(t("map(string)")));
        assert_eq!(unify(&[t("object({a = number})"), t("object({a = string})")]), Some(t("object({a = string})")));
        assert_eq!(unify(&[t("list(string)"), t("tuple([number])")]), Some(t("list(string)")));
        assert_eq!(unify(&[Type::Any, Type::Number]), Some(Type::Number));
    }
}
