//! Values in Terraform's JSON representation: the known part of a value,
//! and the parallel trees of `true` marks that say where it is unknown
//! (`after_unknown`) and where it is sensitive (`before_sensitive`,
//! `after_sensitive`, `sensitive_values`).
//!
//! Terraform prints sensitive values themselves and marks them; Strata never
//! prints a secret, so a sensitive value is left out exactly as an unknown
//! one is (an object attribute is omitted, a list element becomes `null`)
//! and its path is marked `true` in the sensitivity tree.

use serde_json::{Map, Value as Json};
use strata_provider::{Number, Value};

/// The printable part of `v`: `None` when the value as a whole is unknown
/// or sensitive.
pub fn known(v: &Value) -> Option<Json> {
    match v {
        Value::Unknown | Value::Sensitive(_) => None,
        Value::Null => Some(Json::Null),
        Value::Bool(b) => Some(Json::Bool(*b)),
        Value::Number(n) => Some(number(n)),
        Value::String(s) => Some(Json::String(s.clone())),
        Value::List(items) => Some(Json::Array(items.iter().map(|i| known(i).unwrap_or(Json::Null)).collect())),
        Value::Map(m) => Some(Json::Object(m.iter().filter_map(|(k, v)| Some((k.clone(), known(v)?))).collect())),
    }
}

/// `known`, with `null` for a value that is wholly unknown or sensitive.
pub fn known_or_null(v: &Value) -> Json {
    known(v).unwrap_or(Json::Null)
}

/// A number as JSON, encoded as the value's own serialisation encodes it (so
/// saved plans, state and this output agree on precision).
pub fn number(n: &Number) -> Json {
    serde_json::to_value(Value::Number(n.clone())).unwrap_or(Json::Null)
}

/// Where `v` is unknown: `true` for an unknown value; for objects, an object
/// of the attributes that are (or contain) unknowns; for lists, an array of
/// per-element marks when any element is marked; `false` otherwise.
pub fn unknown_marks(v: &Value) -> Json {
    marks(v, &|v| matches!(v, Value::Unknown), false)
}

/// Where `v` is sensitive, in the same shape as [`unknown_marks`].
pub fn sensitive_marks(v: &Value) -> Json {
    marks(v, &|v| matches!(v, Value::Sensitive(_)), true)
}

/// The mark tree of an object-valued attribute set: always an object, as
/// Terraform prints `after_unknown`/`after_sensitive` of a resource.
pub fn object_marks(v: Option<&Value>, of: fn(&Value) -> Json) -> Json {
    match v.map(of) {
        Some(Json::Bool(false)) | None => Json::Object(Map::new()),
        Some(other) => other,
    }
}

/// `marked` says whether a value is itself marked. A sensitive value is
/// looked through when searching for unknowns (a secret not yet known is
/// both), but not when searching for sensitivity (everything inside it is).
fn marks(v: &Value, marked: &dyn Fn(&Value) -> bool, stop_at_sensitive: bool) -> Json {
    if marked(v) {
        return Json::Bool(true);
    }
    match v {
        Value::Sensitive(inner) if !stop_at_sensitive => marks(inner, marked, stop_at_sensitive),
        Value::Map(m) => {
            let inner: Map<String, Json> = m
                .iter()
                .map(|(k, v)| (k.clone(), marks(v, marked, stop_at_sensitive)))
                .filter(|(_, m)| *m != Json::Bool(false))
                .collect();
            if inner.is_empty() {
                Json::Bool(false)
            } else {
                Json::Object(inner)
            }
        }
        Value::List(items) => {
            let inner: Vec<Json> = items.iter().map(|i| marks(i, marked, stop_at_sensitive)).collect();
            if inner.iter().all(|m| *m == Json::Bool(false)) {
                Json::Bool(false)
            } else {
                Json::Array(inner)
            }
        }
        _ => Json::Bool(false),
    }
}

/// Terraform's JSON encoding of the type of `v` (`"string"`,
/// `["list","string"]`, `["object",{...}]`), as inferred from the value:
/// Strata keeps one representation for lists and tuples and one for maps
/// and objects, so a list whose elements share a type is a `list`, any
/// other a `tuple`, and every map an `object`. A sensitive collection is
/// `dynamic`.
pub fn type_of(v: &Value) -> Json {
    match v {
        Value::Null | Value::Unknown => Json::from("dynamic"),
        Value::Bool(_) => Json::from("bool"),
        Value::Number(_) => Json::from("number"),
        Value::String(_) => Json::from("string"),
        // A collection's type names its keys, which may come from the secret
        // (a map is marked whole when a key does): only a primitive's type
        // is shown for a sensitive value.
        Value::Sensitive(inner) => match inner.unmarked() {
            Value::List(_) | Value::Map(_) => Json::from("dynamic"),
            other => type_of(other),
        },
        Value::List(items) => {
            let types: Vec<Json> = items.iter().map(type_of).collect();
            match types.first() {
                Some(first) if types.iter().all(|t| t == first) => serde_json::json!(["list", first]),
                _ => serde_json::json!(["tuple", types]),
            }
        }
        Value::Map(m) => {
            let attrs: Map<String, Json> = m.iter().map(|(k, v)| (k.clone(), type_of(v))).collect();
            serde_json::json!(["object", attrs])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        Value::object([
            ("name", Value::from("web")),
            ("id", Value::Unknown),
            ("password", Value::from("hunter2").into_sensitive()),
            (
                "disk",
                Value::List(vec![
                    Value::object([("size", Value::from(8i64)), ("path", Value::Unknown)]),
                    Value::object([("size", Value::from(16i64)), ("key", Value::from("k").into_sensitive())]),
                ].into()),
            ),
        ])
    }

    #[test]
    fn unknown_and_sensitive_values_are_left_out() {
        let v = known(&sample()).unwrap();
        assert_eq!(v, json!({"name": "web", "disk": [{"size": 8}, {"size": 16}]}));
        assert!(!v.to_string().contains("hunter2"));
        assert_eq!(known(&Value::List(vec![Value::Unknown, Value::from(1i64)].into())), Some(json!([null, 1])));
    }

    #[test]
    fn marks_sit_at_the_nested_path() {
        assert_eq!(unknown_marks(&sample()), json!({"id": true, "disk": [{"path": true}, false]}));
        assert_eq!(sensitive_marks(&sample()), json!({"password": true, "disk": [false, {"key": true}]}));
        assert_eq!(object_marks(Some(&Value::object([("a", Value::from(1i64))])), unknown_marks), json!({}));
        // A secret not known yet is both.
        let both = Value::object([("k", Value::Unknown.into_sensitive())]);
        assert_eq!(unknown_marks(&both), json!({"k": true}));
        assert_eq!(sensitive_marks(&both), json!({"k": true}));
    }

    #[test]
    fn types_follow_terraforms_encoding() {
        assert_eq!(type_of(&Value::from("a")), json!("string"));
        assert_eq!(type_of(&Value::List(vec![Value::from("a"), Value::from("b")].into())), json!(["list", "string"]));
        assert_eq!(type_of(&Value::List(vec![Value::from("a"), Value::from(1i64)].into())), json!(["tuple", ["string", "number"]]));
        assert_eq!(type_of(&Value::object([("n", Value::from(true))])), json!(["object", {"n": "bool"}]));
        assert_eq!(type_of(&Value::from("pw").into_sensitive()), json!("string"));
        let secret_keys = Value::object([("hunter2", Value::from(1i64))]).into_sensitive();
        assert_eq!(type_of(&secret_keys), json!("dynamic"));
        assert_eq!(type_of(&Value::List(vec![secret_keys].into())), json!(["list", "dynamic"]));
    }
}
