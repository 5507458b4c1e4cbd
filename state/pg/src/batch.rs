//! A batch of [`Write`]s folded into its net effect per table, so that a
//! group commit of any size is a handful of array statements in one
//! transaction rather than one round trip per write.
//!
//! Folding keeps the batch's meaning: writes apply in order, and the last
//! write to a key wins (an intent recorded and resolved in the same batch
//! leaves nothing; `BeginApply` and `EndApply` clear the steps written
//! before them).

use std::collections::BTreeMap;
use strata_provider::Value;
use strata_state::{seal_record_with, ApplyPhase, ApplyRecord, Encryption, InstanceRecord, Write};

/// What a batch does to the apply record.
pub(crate) enum ApplyChange {
    Put(ApplyRecord),
    /// Move the stored record (if any) to this phase.
    Phase(ApplyPhase),
    Remove,
}

#[derive(Default)]
pub(crate) struct NetEffect {
    /// Address → the record to keep (`None`: removed).
    pub instances: BTreeMap<String, Option<InstanceRecord>>,
    pub outputs: Option<BTreeMap<String, Value>>,
    pub intents: BTreeMap<u64, Option<Vec<u8>>>,
    pub apply: Option<ApplyChange>,
    /// The steps stored before the batch are all removed first.
    pub clear_steps: bool,
    pub steps: BTreeMap<u64, Option<Vec<u8>>>,
}

/// The key bytes a sequence-numbered record is sealed under.
pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

impl NetEffect {
    pub fn fold(writes: Vec<Write>, enc: &Encryption) -> NetEffect {
        let mut net = NetEffect::default();
        for write in writes {
            match write {
                Write::Intent { seq, intent } => {
                    net.intents.insert(seq, Some(seal_record_with(enc, "journal", &seq_key(seq), &intent)));
                }
                Write::Resolve { seq } => {
                    net.intents.insert(seq, None);
                }
                Write::PutInstance(record) => {
                    net.instances.insert(record.address.clone(), Some(record));
                }
                Write::RemoveInstance { address } => {
                    net.instances.insert(address, None);
                }
                Write::SetOutputs(outputs) => net.outputs = Some(outputs),
                Write::BeginApply(record) => {
                    net.apply = Some(ApplyChange::Put(record));
                    net.clear_steps = true;
                    net.steps.clear();
                }
                Write::SetApplyPhase(phase) => {
                    net.apply = Some(match net.apply.take() {
                        Some(ApplyChange::Put(record)) => ApplyChange::Put(ApplyRecord { phase, ..record }),
                        Some(ApplyChange::Remove) => ApplyChange::Remove,
                        Some(ApplyChange::Phase(_)) | None => ApplyChange::Phase(phase),
                    });
                }
                Write::EndApply => {
                    net.apply = Some(ApplyChange::Remove);
                    net.clear_steps = true;
                    net.steps.clear();
                }
                Write::PutStep { seq, step } => {
                    net.steps.insert(seq, Some(seal_record_with(enc, "steps", &seq_key(seq), &step)));
                }
                Write::RemoveStep { seq } => {
                    net.steps.insert(seq, None);
                }
            }
        }
        net
    }
}

/// Splits keyed changes into (every key touched, the keys and payloads to insert).
pub(crate) fn split<K: Clone>(changes: &BTreeMap<K, Option<Vec<u8>>>) -> (Vec<K>, Vec<K>, Vec<Vec<u8>>) {
    let touched = changes.keys().cloned().collect();
    let (keys, payloads) = changes.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))).unzip();
    (touched, keys, payloads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_state::UndoStep;
    use uuid::Uuid;

    fn record(address: &str) -> InstanceRecord {
        InstanceRecord {
            address: address.into(),
            id: Uuid::new_v4(),
            type_name: "t".into(),
            provider: "p".into(),
            attributes: Value::Null,
            dependencies: vec![],
            create_before_destroy: false,
        }
    }

    #[test]
    fn last_write_to_a_key_wins_and_apply_boundaries_clear_steps() {
        let step = UndoStep::Created { record: record("a") };
        let net = NetEffect::fold(vec![
            Write::PutInstance(record("a")),
            Write::PutStep { seq: 1, step: step.clone() },
            Write::BeginApply(ApplyRecord { apply_id: Uuid::new_v4(), phase: ApplyPhase::Main, rollback: true, started_at: 0, pid: 1 }),
            Write::PutStep { seq: 2, step },
            Write::RemoveInstance { address: "a".into() },
            Write::SetApplyPhase(ApplyPhase::Cleanup),
            Write::Resolve { seq: 9 },
        ], &Encryption::none());
        assert_eq!(net.instances.get("a"), Some(&None), "the removal after the put stands");
        assert!(net.clear_steps);
        assert_eq!(net.steps.keys().copied().collect::<Vec<_>>(), vec![2], "the step before BeginApply is gone");
        assert!(matches!(net.apply, Some(ApplyChange::Put(ApplyRecord { phase: ApplyPhase::Cleanup, .. }))));
        assert_eq!(net.intents.get(&9), Some(&None));
    }
}
