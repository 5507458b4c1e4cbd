//! Encoding a batch's records once: an undo step holds the same
//! [`InstanceRecord`] the batch also writes to the instances table (a create
//! records the new object and the step `Created { record }` that undoes it;
//! an update its current record and `Updated { current, .. }`), so a store
//! that encodes a batch in order keeps the JSON of the instance records it
//! just encoded and splices those bytes into the step instead of encoding
//! the record's values a second time.
//!
//! The bytes are exactly what `serde_json` makes of the step (a test checks
//! every variant), so what is stored, checksummed and encrypted does not
//! change; only the work of making it does. A record is reused only when it
//! is [`identical`](strata_provider::Value::identical) to the step's (kinds
//! and marks included), which is what makes the JSON the same.

use crate::{InstanceRecord, UndoStep};
use serde::Serialize;

/// How many of the batch's latest instance records are kept: a step follows
/// its record within the same operation's writes.
const KEPT: usize = 4;

/// The JSON of the instance records a batch encoded last, to reuse.
#[derive(Default)]
pub(crate) struct RecordJson<'w> {
    recent: Vec<(&'w InstanceRecord, Vec<u8>)>,
}

impl<'w> RecordJson<'w> {
    /// Encodes `record` (as `serde_json` does) and keeps the bytes.
    pub fn encode(&mut self, record: &'w InstanceRecord) -> &[u8] {
        if self.recent.len() == KEPT {
            self.recent.remove(0);
        }
        self.recent.push((record, to_json(record)));
        &self.recent.last().expect("just pushed").1
    }

    /// The kept JSON of a record identical to `record`.
    fn find(&self, record: &InstanceRecord) -> Option<&[u8]> {
        self.recent.iter().rev().find(|(kept, _)| same_record(kept, record)).map(|(_, json)| json.as_slice())
    }

    /// `step` as `serde_json` encodes it, with the records found among the
    /// kept ones spliced in.
    pub fn step(&self, step: &UndoStep) -> Vec<u8> {
        let mut out = Vec::new();
        let record = |out: &mut Vec<u8>, r: &InstanceRecord| match self.find(r) {
            Some(json) => out.extend_from_slice(json),
            None => serde_json::to_writer(&mut *out, r).expect("state records serialize"),
        };
        match step {
            UndoStep::Created { record: r } => {
                out.extend_from_slice(br#"{"created":{"record":"#);
                record(&mut out, r);
            }
            UndoStep::Updated { prior, current, undo } => {
                out.extend_from_slice(br#"{"updated":{"prior":"#);
                record(&mut out, prior);
                out.extend_from_slice(br#","current":"#);
                record(&mut out, current);
                out.extend_from_slice(br#","undo":"#);
                push_json(&mut out, undo);
            }
            UndoStep::Replaced { old, new } => {
                out.extend_from_slice(br#"{"replaced":{"old":"#);
                record(&mut out, old);
                out.extend_from_slice(br#","new":"#);
                record(&mut out, new);
            }
            UndoStep::Retired { prior, undo } => {
                out.extend_from_slice(br#"{"retired":{"prior":"#);
                record(&mut out, prior);
                out.extend_from_slice(br#","undo":"#);
                push_json(&mut out, undo);
            }
            UndoStep::Imported { record: r, undo } => {
                out.extend_from_slice(br#"{"imported":{"record":"#);
                record(&mut out, r);
                out.extend_from_slice(br#","undo":"#);
                push_json(&mut out, undo);
            }
        }
        out.extend_from_slice(b"}}");
        out
    }
}

/// Same fields, values identical: the same JSON.
fn same_record(a: &InstanceRecord, b: &InstanceRecord) -> bool {
    a.address == b.address
        && a.id == b.id
        && a.type_name == b.type_name
        && a.provider == b.provider
        && a.dependencies == b.dependencies
        && a.create_before_destroy == b.create_before_destroy
        && a.attributes.identical(&b.attributes)
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records serialize")
}

fn push_json<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("state records serialize");
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_provider::{UndoRecord, Value};
    use uuid::Uuid;

    fn record(address: &str, attributes: Value) -> InstanceRecord {
        InstanceRecord {
            address: address.into(),
            id: Uuid::new_v4(),
            type_name: "strata_data".into(),
            provider: "strata".into(),
            attributes,
            dependencies: vec!["strata_data.a".into()],
            create_before_destroy: true,
        }
    }

    fn attributes(n: i64) -> Value {
        Value::object([
            ("input", Value::object([("n", Value::from(n)), ("secret", Value::from("x").into_sensitive())])),
            ("list", Value::tuple(vec![Value::from("a"), Value::Null, Value::Bool(true)])),
            ("map", Value::map([("k".to_owned(), Value::from("v"))].into())),
            ("quote", Value::from("\"\\\u{1}é")),
        ])
    }

    /// Every variant, with its records kept, kept but different, or not kept.
    #[test]
    fn steps_are_encoded_exactly_as_serde_json_encodes_them() {
        let (a, b) = (record("strata_data.a", attributes(1)), record("strata_data.b", attributes(2)));
        // Identical but for the kind of one map: must not be taken for `a`.
        let mut object_not_map = a.clone();
        object_not_map.attributes = Value::object([("map", Value::object([("k", Value::from("v"))]))]);
        let undo = Some(UndoRecord(Value::object([("kept", Value::from("aside"))])));
        let steps = [
            UndoStep::Created { record: a.clone() },
            UndoStep::Created { record: object_not_map.clone() },
            UndoStep::Updated { prior: b.clone(), current: a.clone(), undo: undo.clone() },
            UndoStep::Updated { prior: a.clone(), current: b.clone(), undo: None },
            UndoStep::Replaced { old: b.clone(), new: a.clone() },
            UndoStep::Retired { prior: a.clone(), undo: undo.clone() },
            UndoStep::Retired { prior: b.clone(), undo: None },
            UndoStep::Imported { record: a.clone(), undo },
        ];
        let mut kept = RecordJson::default();
        let mut unrelated = record("strata_data.a", attributes(1));
        unrelated.attributes = Value::object([("map", Value::map([("k".to_owned(), Value::from("v"))].into()))]);
        assert_eq!(kept.encode(&a), serde_json::to_vec(&a).unwrap().as_slice());
        kept.encode(&unrelated);
        for step in &steps {
            let expected = serde_json::to_vec(step).unwrap();
            assert_eq!(String::from_utf8(kept.step(step)).unwrap(), String::from_utf8(expected.clone()).unwrap());
            assert_eq!(RecordJson::default().step(step), expected, "nothing kept");
            let back: UndoStep = serde_json::from_slice(&kept.step(step)).unwrap();
            assert_eq!(&back, step);
        }
    }

    #[test]
    fn a_record_is_reused_only_when_identical() {
        let a = record("strata_data.a", attributes(1));
        let mut kept = RecordJson::default();
        kept.encode(&a);
        assert!(kept.find(&a.clone()).is_some(), "a copy shares the values");
        let mut other = a.clone();
        other.attributes = attributes(1);
        assert!(kept.find(&other).is_some(), "equal values built apart");
        other.attributes = attributes(3);
        assert!(kept.find(&other).is_none());
        let mut unmarked = a.clone();
        unmarked.attributes = a.attributes.clone().deep_unmark();
        assert!(kept.find(&unmarked).is_none(), "a mark makes it another record");
        let mut moved = a.clone();
        moved.address = "strata_data.b".into();
        assert!(kept.find(&moved).is_none());
    }
}
