//! Values exchanged between configuration, engine, state and providers.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;
use crate::collection::{ListKind, ListValue, MapKind, MapValue};
use crate::{Number, VecMap};

/// A dynamically typed value, as HCL and Terraform know them, plus two marks:
/// `Unknown` (not known until apply) and `Sensitive` (redacted whenever printed).
///
/// Objects and maps share one representation (`Map`); tuples, lists and sets
/// share `List`. Each carries its kind ([`ListKind`], [`MapKind`]), which the
/// language's `==` and conversions use and equality here ignores.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    List(ListValue),
    Map(MapValue),
    /// A value that will only be known once the apply has run.
    Unknown,
    /// A value that must never be printed.
    Sensitive(Box<Value>),
}

// Values are most of a plan's and a state's memory. The largest payload is
// a string (24 bytes); numbers (see `number`), lists and maps are 16, so
// the tag lives in the string's capacity niche and a value is 24 bytes.
const _: () = assert!(std::mem::size_of::<Value>() <= 24);

impl Value {
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A tuple: the kind of a `[...]` literal and of what providers return.
    pub fn tuple(items: Vec<Value>) -> Value {
        Value::List(ListValue::new(items, ListKind::Tuple))
    }

    /// A list (every element of one type), as `tolist` makes.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(ListValue::new(items, ListKind::List))
    }

    /// A set; `items` must already be sorted and unique.
    pub fn set(items: Vec<Value>) -> Value {
        Value::List(ListValue::new(items, ListKind::Set))
    }

    /// A map (every element of one type), as `tomap` makes.
    pub fn map(entries: VecMap<String, Value>) -> Value {
        Value::Map(MapValue::new(entries, MapKind::Map))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.unmarked(), Value::Null)
    }

    /// True when the value, or anything inside it, is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::Sensitive(v) => v.contains_unknown(),
            Value::List(items) => items.iter().any(Value::contains_unknown),
            Value::Map(m) => m.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self.unmarked(), Value::Unknown)
    }

    /// True when the value, or anything inside it, is sensitive.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(items) => items.iter().any(Value::contains_sensitive),
            Value::Map(m) => m.values().any(Value::contains_sensitive),
            _ => false,
        }
    }

    pub fn is_sensitive(&self) -> bool {
        matches!(self, Value::Sensitive(_))
    }

    /// The value without its outermost sensitive mark.
    pub fn unmarked(&self) -> &Value {
        match self {
            Value::Sensitive(v) => v.unmarked(),
            v => v,
        }
    }

    /// Marks the value sensitive (idempotent).
    pub fn into_sensitive(self) -> Value {
        match self {
            Value::Sensitive(_) => self,
            v => Value::Sensitive(Box::new(v)),
        }
    }

    /// Removes every sensitive mark, deeply. Used where the raw value is needed,
    /// e.g. when a provider receives it.
    /// Equality ignoring sensitive marks, without copying either side
    /// (`a.clone().deep_unmark() == b.clone().deep_unmark()`, cheaply).
    pub fn eq_unmarked(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Sensitive(a), b) => a.eq_unmarked(b),
            (a, Value::Sensitive(b)) => a.eq_unmarked(b),
            (Value::List(a), Value::List(b)) => {
                a.shares(b) || a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.eq_unmarked(b))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.shares(b) || a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && va.eq_unmarked(vb))
            }
            (a, b) => a == b,
        }
    }

    /// Equality that also compares the kinds of collections and sensitive
    /// marks (`==` ignores kinds, [`Value::eq_unmarked`] marks too): one
    /// value can stand for the other anywhere, so a planner may keep a shared
    /// copy of the prior value instead of the one it just computed.
    pub fn identical(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Sensitive(a), Value::Sensitive(b)) => a.identical(b),
            (Value::List(a), Value::List(b)) => {
                a.kind == b.kind && (a.shares(b) || a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.identical(b)))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.kind == b.kind
                    && (a.shares(b) || a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && va.identical(vb)))
            }
            (a, b) => a == b,
        }
    }

    pub fn deep_unmark(self) -> Value {
        // A value without marks is kept as it is, still shared.
        if !self.contains_sensitive() {
            return self;
        }
        self.unmark_all()
    }

    fn unmark_all(self) -> Value {
        match self {
            Value::Sensitive(v) => v.unmark_all(),
            Value::List(list) => {
                let kind = list.kind;
                Value::List(ListValue::new(list.into_vec().into_iter().map(Value::unmark_all).collect(), kind))
            }
            Value::Map(map) => {
                let kind = map.kind;
                Value::Map(MapValue::new(map.into_map().into_iter().map(|(k, v)| (k, v.unmark_all())).collect(), kind))
            }
            v => v,
        }
    }

    /// Copies the sensitive marks of `template` onto `self`, recursively, so
    /// a provider's (unmarked) result keeps the marks of what was planned.
    pub fn with_marks_from(self, template: &Value) -> Value {
        // Nothing to copy: keep the value as it is, still shared.
        if !template.contains_sensitive() {
            return self;
        }
        self.copy_marks(template)
    }

    fn copy_marks(self, template: &Value) -> Value {
        match (self, template) {
            (v, Value::Sensitive(_)) => v.into_sensitive(),
            (Value::Map(map), Value::Map(t)) => {
                let kind = map.kind;
                Value::Map(MapValue::new(
                    map.into_map()
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match t.get(&k) {
                                Some(tv) => v.copy_marks(tv),
                                None => v,
                            };
                            (k, v)
                        })
                        .collect(),
                    kind,
                ))
            }
            (Value::List(list), Value::List(t)) => {
                let kind = list.kind;
                Value::List(ListValue::new(
                    list.into_vec().into_iter().enumerate().map(|(i, v)| match t.get(i) {
                        Some(tv) => v.copy_marks(tv),
                        None => v,
                    }).collect(),
                    kind,
                ))
            }
            (v, _) => v,
        }
    }

    /// The text of every string and number under a sensitive mark, map keys
    /// included, so that an error message can be scrubbed of them. Empty
    /// strings, bools and null are left out: they reveal nothing by text.
    pub fn sensitive_strings(&self) -> Vec<String> {
        fn walk(v: &Value, inside: bool, out: &mut Vec<String>) {
            match v {
                Value::Sensitive(inner) => walk(inner, true, out),
                Value::String(s) if inside && !s.is_empty() => out.push(s.clone()),
                Value::Number(n) if inside => out.push(n.to_string()),
                Value::List(items) => items.iter().for_each(|item| walk(item, inside, out)),
                Value::Map(m) => {
                    for (k, item) in m {
                        if inside && !k.is_empty() {
                            out.push(k.clone());
                        }
                        walk(item, inside, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(self, false, &mut out);
        out.sort();
        out.dedup();
        out
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unmarked() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unmarked() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an `f64` (for providers; precision may be lost).
    pub fn as_f64(&self) -> Option<f64> {
        match self.unmarked() {
            Value::Number(n) => Some(n.to_f64()),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.unmarked() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an integer, if it is a whole number that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::to_i64)
    }

    pub fn as_map(&self) -> Option<&VecMap<String, Value>> {
        match self.unmarked() {
            Value::Map(m) => Some(&m.entries),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self.unmarked() {
            Value::List(l) => Some(&l.items),
            _ => None,
        }
    }

    /// Looks up an attribute of an object value; `Null` for anything else.
    pub fn get(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.as_map().and_then(|m| m.get(key)).unwrap_or(&NULL)
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
            Value::Sensitive(v) => v.kind(),
        }
    }

    /// Renders the value in HCL literal syntax, redacting sensitive parts.
    pub fn to_hcl(&self) -> String {
        let mut out = String::new();
        write_hcl(self, &mut out);
        out
    }

    /// The string form used by string interpolation and `tostring`, if the
    /// value is a primitive.
    pub fn to_template_string(&self) -> Option<String> {
        match self.unmarked() {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

fn write_hcl(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push_str(&serde_json::to_string(s).expect("strings serialize"));
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_hcl(item, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(" = ");
                write_hcl(item, out);
            }
            out.push('}');
        }
        Value::Unknown => out.push_str("(known after apply)"),
        Value::Sensitive(_) => out.push_str("(sensitive value)"),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hcl())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
/// Non-finite floats have no HCL value: they become null.
impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(Number::from_i64(n))
    }
}
impl From<Number> for Value {
    fn from(n: Number) -> Value {
        Value::Number(n)
    }
}

const UNKNOWN_KEY: &str = "$unknown";
const SENSITIVE_KEY: &str = "$sensitive";

/// Plain JSON, except for the two marks: `{"$unknown": true}` and
/// `{"$sensitive": <value>}`. State never holds `Unknown`; saved plans do.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            // Every digit, as Terraform writes numbers (an infinity, which
            // JSON cannot hold, becomes null).
            Value::Number(n) => match n.to_i64() {
                Some(i) => s.serialize_i64(i),
                None => match n.to_json() {
                    Some(json) => json.serialize(s),
                    None => s.serialize_unit(),
                },
            },
            Value::String(v) => s.serialize_str(v),
            Value::List(items) => items.as_slice().serialize(s),
            Value::Map(m) => (**m).serialize(s),
            Value::Unknown => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(UNKNOWN_KEY, &true)?;
                map.end()
            }
            Value::Sensitive(v) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(SENSITIVE_KEY, v)?;
                map.end()
            }
        }
    }
}

/// Decodes straight into a value, without building a `serde_json::Value`
/// first (that copy was half the cost of reading state); the result is the
/// one [`Value::from_json`] gives for the same JSON.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// How serde_json (with `arbitrary_precision`) hands a number over: as a
/// one-entry map under this key, holding the number's text.
const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A number from its JSON text, as [`Value::from_json`] reads it.
fn number_from_text(text: &str) -> Value {
    match text.parse::<i64>() {
        Ok(i) => Value::from(i),
        Err(_) => text.parse::<Number>().map(Value::Number).unwrap_or(Value::Null),
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(match i64::try_from(n) {
            Ok(i) => Value::from(i),
            Err(_) => number_from_text(&n.to_string()),
        })
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map(|n| Value::from_json_number(&n)).unwrap_or(Value::Null))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        // JSON gives no length, so a short list grew to room for four: state
        // holds a few hundred thousand of them (dependency lists, mostly of
        // one id), each kept as long as the snapshot is.
        items.shrink_to_fit();
        Ok(Value::tuple(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(first) = map.next_key::<String>()? else { return Ok(Value::Map(VecMap::new().into())) };
        if first == JSON_NUMBER_TOKEN {
            let text: String = map.next_value()?;
            return Ok(number_from_text(&text));
        }
        let value: Value = map.next_value()?;
        // Collected, then sorted once (a no-op for the sorted objects state
        // holds), so a large object in any order decodes in O(n log n).
        let mut pairs = Vec::with_capacity(map.size_hint().map_or(0, |rest| rest.saturating_add(1)).min(4096));
        let mut siblings = RecentComposites::default();
        siblings.note(&pairs, &value);
        pairs.push((first, value));
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            let value = siblings.share(&pairs, value);
            siblings.note(&pairs, &value);
            pairs.push((key, value));
        }
        let mut entries: VecMap<String, Value> = pairs.into_iter().collect();
        // The two marks, exactly as `from_json` reads them.
        if entries.len() == 1 {
            if entries.contains_key(UNKNOWN_KEY) {
                return Ok(Value::Unknown);
            }
            if let Some(inner) = entries.remove(SENSITIVE_KEY) {
                return Ok(inner.into_sensitive());
            }
        }
        Ok(Value::Map(entries.into()))
    }
}

/// How many earlier composite entries of the same object a decoded entry is
/// compared with: enough for `input` and `output` side by side, few enough
/// that a wide object still decodes in linear time.
const SIBLINGS_COMPARED: usize = 4;

/// The positions of the last few entries of an object being decoded whose
/// value is a non-empty list or map (possibly under a sensitive mark): the
/// candidates [`RecentComposites::share`] compares a new entry with.
///
/// A `strata_data` record (and `terraform_data`-style records in general)
/// holds an `output` equal to its `input`. In memory at apply the two share
/// one tree, but their JSON is two copies, and decoding it made two trees,
/// a third of a decoded state's memory. Values are shared immutably (an
/// [`Arc`](std::sync::Arc) and copy on write), so decoding an entry equal
/// to an earlier sibling into a copy of that sibling's tree changes nothing
/// anyone can observe but the memory.
#[derive(Default)]
struct RecentComposites {
    /// Indices into the object's entries, oldest first; `len` are in use.
    at: [usize; SIBLINGS_COMPARED],
    len: usize,
}

impl RecentComposites {
    /// Whether `value` holds a tree worth sharing: a scalar is copied as
    /// cheaply as it is compared, and an empty collection allocates nothing.
    fn is_composite(value: &Value) -> bool {
        match value {
            Value::List(items) => !items.is_empty(),
            Value::Map(entries) => !entries.is_empty(),
            Value::Sensitive(inner) => Self::is_composite(inner),
            _ => false,
        }
    }

    /// Records that `value` is about to be pushed at `pairs.len()`.
    fn note(&mut self, pairs: &[(String, Value)], value: &Value) {
        if !Self::is_composite(value) {
            return;
        }
        if self.len == SIBLINGS_COMPARED {
            self.at.rotate_left(1);
            self.len -= 1;
        }
        self.at[self.len] = pairs.len();
        self.len += 1;
    }

    /// `value`, or a copy of the most recent earlier entry that is
    /// [`identical`](Value::identical) to it (kinds and sensitive marks
    /// included), which shares that entry's tree.
    fn share(&self, pairs: &[(String, Value)], value: Value) -> Value {
        if !Self::is_composite(&value) {
            return value;
        }
        let earlier = self.at[..self.len].iter().rev().filter_map(|&i| pairs.get(i)).map(|(_, v)| v);
        for sibling in earlier {
            if sibling.identical(&value) {
                return sibling.clone();
            }
        }
        value
    }
}

impl Value {
    /// Converts JSON into a value, decoding the `$unknown`/`$sensitive` marks.
    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::from(i),
                None => Value::from_json_number(&n),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(items) => {
                Value::tuple(items.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(mut m) => {
                if m.len() == 1 {
                    if m.contains_key(UNKNOWN_KEY) {
                        return Value::Unknown;
                    }
                    if let Some(inner) = m.remove(SENSITIVE_KEY) {
                        return Value::from_json(inner).into_sensitive();
                    }
                }
                Value::Map(m.into_iter().map(|(k, v)| (k, Value::from_json(v))).collect())
            }
        }
    }

    /// A JSON number with all its digits (serde_json keeps the source text).
    pub fn from_json_number(n: &serde_json::Number) -> Value {
        n.to_string().parse::<Number>().map(Value::Number).unwrap_or(Value::Null)
    }

    /// Plain JSON for machine-readable output: sensitive values are redacted,
    /// unknowns become `null` (callers report unknown-ness separately).
    pub fn to_redacted_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => n.to_json().map(serde_json::Value::Number).unwrap_or_default(),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => items.iter().map(Value::to_redacted_json).collect(),
            Value::Map(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.clone(), v.to_redacted_json())).collect(),
            ),
            Value::Sensitive(_) => serde_json::Value::String("(sensitive value)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_through_json() {
        let v = Value::object([
            ("a", Value::Unknown),
            ("b", Value::from("x").into_sensitive()),
            ("c", Value::tuple(vec![Value::from(1i64), Value::from(1.5)])),
        ]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"a":{"$unknown":true},"b":{"$sensitive":"x"},"c":[1,1.5]}"#);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn kinds_are_not_stored_so_old_state_still_reads() {
        let typed = Value::object([("l", Value::list(vec![Value::from("a")])), ("m", Value::map(VecMap::new()))]);
        let text = serde_json::to_string(&typed).unwrap();
        assert_eq!(text, r#"{"l":["a"],"m":{}}"#, "the same JSON as before kinds existed");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, typed, "equality is of data, not kinds");
        assert_eq!(back.get("l"), &Value::tuple(vec![Value::from("a")]));
        assert!(matches!(back.get("l"), Value::List(l) if l.kind == ListKind::Tuple));
        assert!(matches!(back.get("m"), Value::Map(m) if m.kind == MapKind::Object));
        // A kind fits beside the pointer of a list or map, so kinds make
        // values no larger (the static assertion after `Value` holds them
        // to 24 bytes).
        assert!(std::mem::size_of::<ListValue>() <= 16 && std::mem::size_of::<MapValue>() <= 16);
    }

    #[test]
    fn decoding_agrees_with_from_json() {
        let texts = [
            r#"null"#,
            r#"[true, false, 0, -0, 1, -7, 9223372036854775807, 9223372036854775808, -9223372036854775809]"#,
            r#"[1.5, 1.0, 1e3, -2.5E-3, 0.1, 123456789012345678901234567890.5]"#,
            r#"{"a": {"$unknown": true}, "b": {"$sensitive": {"c": [1, "x"]}}, "d": {"$unknown": true, "e": 1}}"#,
            r#"{"$sensitive": {"$sensitive": "x"}}"#,
            r#"{"$unknown": false}"#,
            r#"{"k": "v", "k": "w", "": {}, "l": [[], {}, [null]]}"#,
            r#""a string with \"quotes\" and \u00e9""#,
        ];
        for text in texts {
            let direct: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let via_json = Value::from_json(serde_json::from_str::<serde_json::Value>(text).unwrap());
            assert_eq!(direct, via_json, "{text}");
            assert_eq!(format!("{direct:?}"), format!("{via_json:?}"), "{text}");
            assert_eq!(serde_json::to_string(&direct).unwrap(), serde_json::to_string(&via_json).unwrap(), "{text}");
        }
    }

    #[test]
    fn decoding_shares_an_entry_equal_to_an_earlier_sibling() {
        let text = r#"{"id": "x", "input": {"deps": ["a"], "n": 1}, "output": {"deps": ["a"], "n": 1},
            "other": {"deps": ["a"], "n": 2}, "secret": {"$sensitive": {"deps": ["a"], "n": 1}},
            "again": {"$sensitive": {"deps": ["a"], "n": 1}}, "list": [1, 2], "list2": [1, 2], "e": {}, "f": {}}"#;
        let decoded: Value = serde_json::from_str(text).unwrap();
        assert_eq!(decoded, Value::from_json(serde_json::from_str(text).unwrap()), "the same value as before");
        let map = |key: &str| match decoded.get(key).unmarked() {
            Value::Map(m) => m.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert!(map("input").shares(&map("output")), "output shares input's tree");
        assert!(!map("input").shares(&map("other")), "a different value is its own tree");
        assert!(decoded.get("secret").is_sensitive() && decoded.get("again").is_sensitive());
        assert!(!map("input").shares(&map("secret")), "a sensitive value is not shared with a plain one");
        assert!(map("secret").shares(&map("again")), "two equal sensitive values share");
        let (Value::List(a), Value::List(b)) = (decoded.get("list"), decoded.get("list2")) else { panic!("lists") };
        assert!(a.shares(b));
        // A write through one copy leaves the other as it was.
        let mut output = decoded.get("output").clone();
        if let Value::Map(m) = &mut output {
            m.insert("n".into(), Value::from(3i64));
        }
        assert_eq!(decoded.get("output").get("n"), &Value::from(1i64));
        assert_eq!(decoded.get("input").get("n"), &Value::from(1i64));
        assert_eq!(output.get("n"), &Value::from(3i64));
    }

    #[test]
    fn a_wide_object_of_equal_values_decodes_whole() {
        let text = format!("{{{}}}", (0..1000).map(|i| format!(r#""k{i:04}": {{"v": [{}]}}"#, i % 7)).collect::<Vec<_>>().join(","));
        let decoded: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(decoded, Value::from_json(serde_json::from_str(&text).unwrap()));
        assert_eq!(serde_json::to_string(&decoded).unwrap(), serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap());
    }

    #[test]
    fn copies_share_and_writes_do_not_leak_into_other_copies() {
        let original = Value::object([("a", Value::tuple(vec![Value::from(1i64)])), ("b", Value::from("x"))]);
        let mut copy = original.clone();
        let (Value::Map(o), Value::Map(c)) = (&original, &copy) else { panic!("maps") };
        assert!(o.shares(c), "a copy shares the entries");
        if let Value::Map(m) = &mut copy {
            m.insert("b".into(), Value::from("y"));
            if let Some(Value::List(l)) = m.get_mut("a") {
                l.push(Value::from(2i64));
            }
        }
        assert_eq!(original.get("b"), &Value::from("x"), "the original is unchanged");
        assert_eq!(original.get("a"), &Value::tuple(vec![Value::from(1i64)]));
        assert_eq!(copy.get("b"), &Value::from("y"));
        assert_eq!(copy.get("a"), &Value::tuple(vec![Value::from(1i64), Value::from(2i64)]));
        assert_ne!(original, copy);
        let unmarked = original.clone().deep_unmark();
        let (Value::Map(o), Value::Map(u)) = (&original, &unmarked) else { panic!("maps") };
        assert!(o.shares(u), "unmarking a value without marks keeps it shared");
    }

    #[test]
    fn identical_compares_kinds_and_marks_too() {
        let tuple = Value::tuple(vec![Value::from("a")]);
        let list = Value::list(vec![Value::from("a")]);
        assert_eq!(tuple, list);
        assert!(!tuple.identical(&list), "kinds differ");
        assert!(tuple.identical(&tuple.clone()));
        assert!(!Value::from("x").identical(&Value::from("x").into_sensitive()), "marks differ");
        let a = Value::object([("k", Value::from("x").into_sensitive()), ("l", tuple.clone())]);
        let b = Value::object([("k", Value::from("x").into_sensitive()), ("l", Value::tuple(vec![Value::from("a")]))]);
        assert!(a.identical(&b));
        assert!(!a.identical(&Value::map(a.as_map().unwrap().clone())), "object against map");
    }

    #[test]
    fn hcl_rendering_redacts_sensitive() {
        let v = Value::object([("pw", Value::from("hunter2").into_sensitive())]);
        assert_eq!(v.to_hcl(), "{pw = (sensitive value)}");
        assert!(!v.to_redacted_json().to_string().contains("hunter2"));
    }

    #[test]
    fn sensitive_strings_are_found_wherever_they_sit() {
        let v = Value::object([
            ("plain", Value::from("visible")),
            ("pw", Value::from("hunter2").into_sensitive()),
            ("deep", Value::tuple(vec![Value::object([("k", Value::from(42i64).into_sensitive())])])),
            ("keys", Value::object([("secret-key", Value::Bool(true))]).into_sensitive()),
        ]);
        assert_eq!(v.sensitive_strings(), vec!["42", "hunter2", "secret-key"]);
    }

    #[test]
    fn equality_without_marks_agrees_with_unmarking_copies() {
        let marked = Value::object([
            ("a", Value::from("x").into_sensitive()),
            ("b", Value::tuple(vec![Value::from(1i64), Value::object([("c", Value::Bool(true).into_sensitive())])])),
        ]);
        let plain = marked.clone().deep_unmark();
        let cases = [
            (&marked, &plain, true),
            (&plain, &marked, true),
            (&marked, &marked, true),
            (&marked, &Value::object([("a", Value::from("x"))]), false),
            (&Value::from("x").into_sensitive(), &Value::from("y"), false),
            (&Value::tuple(vec![Value::Null]), &Value::Map(VecMap::new().into()), false),
            (&Value::Unknown, &Value::Unknown.into_sensitive(), true),
        ];
        for (a, b, equal) in cases {
            assert_eq!(a.eq_unmarked(b), equal, "{a:?} vs {b:?}");
            assert_eq!(a.clone().deep_unmark() == b.clone().deep_unmark(), equal, "{a:?} vs {b:?}");
        }
    }
}
