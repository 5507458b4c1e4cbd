//! The kvm provider's undo records (see `strata_provider::UndoRecord`): a map
//! with the operation it undoes (`op`) and what that takes, e.g. the previous
//! persistent XML of a domain or network, or the name a volume is kept
//! aside under. A record holds what `read` cannot read back (a cloud-init
//! seed's configuration), marked sensitive, and no other secret.

use strata_provider::{ProviderError, Result, UndoRecord, Value};

/// An update: restore the object as it was before.
pub const UPDATE: &str = "update";
/// A retirement: bring the object back from where it was kept aside.
pub const RETIRE: &str = "retire";
/// A volume shrink: put the copy kept aside back in place.
pub const SHRINK: &str = "shrink";

pub fn record<'a>(op: &str, fields: impl IntoIterator<Item = (&'a str, Value)>) -> UndoRecord {
    let mut v = Value::object(fields);
    if let Value::Map(m) = &mut v {
        m.insert("op".into(), Value::from(op));
    }
    UndoRecord(v)
}

pub fn op(rec: &UndoRecord) -> &str {
    rec.0.get("op").as_str().unwrap_or_default()
}

/// A text field the record must have.
pub fn text<'a>(rec: &'a UndoRecord, key: &str) -> Result<&'a str> {
    rec.0.get(key).as_str().ok_or_else(|| malformed(rec))
}

pub fn flag(rec: &UndoRecord, key: &str) -> bool {
    rec.0.get(key).as_bool() == Some(true)
}

pub fn malformed(rec: &UndoRecord) -> ProviderError {
    ProviderError::new(format!("malformed kvm undo record (op {:?})", op(rec)))
}

/// The name an object is kept aside under until the apply ends: the
/// original name with a marker and a token, so it cannot clash.
pub fn aside_name(name: &str, kind: &str) -> String {
    let token = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}.strata-{kind}-{}", &token[..12])
}
