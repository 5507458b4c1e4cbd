//! Checksummed records: how every value is stored in the state database.
//!
//! redb checks its pages only when it repairs a file, so a flipped byte in a
//! record would otherwise be read back as a different id, address or key.
//! Every record therefore carries a checksum over its table, key and payload,
//! and every table a [`Digest`] (record count and the XOR of their
//! checksums), so that a record that went missing or appeared is caught too,
//! not only one that changed.
//!
//! With encryption on, the payload is the record's JSON sealed by
//! [`Encryption`] with the table and key as associated data; the checksum
//! covers the stored (encrypted) bytes, so damage is found without the key.
//! A remote backend stores the same payloads and is encrypted alike.

use crate::encryption::{EncryptionError, Opened as Decrypted};
use crate::Encryption;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The associated data that binds a payload to its table and key.
pub fn aad(table: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(table.len() + 1 + key.len());
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

/// A record's value as a backend stores it: JSON, encrypted when configured.
pub fn encode_payload<T: Serialize>(enc: &Encryption, table: &str, key: &[u8], value: &T) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("state records serialize");
    enc.encrypt(&aad(table, key), &json)
}

/// The JSON of a stored payload, decrypted; `current` is false for data
/// written under the fallback method.
pub fn decode_payload(enc: &Encryption, table: &str, key: &[u8], stored: &[u8]) -> Result<Decrypted, EncryptionError> {
    enc.decrypt("state", &aad(table, key), stored)
}

/// Marks a checksummed record. No JSON document starts with this byte, so a
/// record of the unchecked format that came before is recognised as such.
const MAGIC: u8 = 0x01;
const HEADER: usize = 1 + 8;

/// The checksum of one record: the first 8 bytes of SHA-256 over table,
/// key (as redb encodes it) and payload.
pub(crate) fn checksum(table: &str, key: &[u8], payload: &[u8]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(table.as_bytes());
    hasher.update([0]);
    hasher.update((key.len() as u64).to_be_bytes());
    hasher.update(key);
    hasher.update(payload);
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

/// A record ready to store, with its checksum.
pub(crate) struct Sealed {
    pub bytes: Vec<u8>,
    pub checksum: u64,
}

pub(crate) fn seal<T: Serialize>(table: &str, key: &[u8], value: &T) -> Sealed {
    seal_bytes(table, key, serde_json::to_vec(value).expect("state records serialize"))
}

/// Seals an already encoded payload.
pub(crate) fn seal_bytes(table: &str, key: &[u8], payload: Vec<u8>) -> Sealed {
    let checksum = checksum(table, key, &payload);
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.push(MAGIC);
    bytes.extend_from_slice(&checksum.to_be_bytes());
    bytes.extend_from_slice(&payload);
    Sealed { bytes, checksum }
}

/// Encodes a value as every backend stores it: JSON sealed with its
/// checksum over table, key and payload. Remote backends (PostgreSQL) keep
/// these bytes opaque, so what changes here (e.g. encryption) applies to all.
pub fn seal_record<T: Serialize>(table: &str, key: &[u8], value: &T) -> Vec<u8> {
    seal(table, key, value).bytes
}

/// [`seal_record`] with the payload encrypted by `enc` when it encrypts:
/// what a remote backend stores, byte for byte what the local store keeps.
pub fn seal_record_with<T: Serialize>(enc: &Encryption, table: &str, key: &[u8], value: &T) -> Vec<u8> {
    seal_bytes(table, key, encode_payload(enc, table, key, value)).bytes
}

/// Seals a record's JSON as it is (already encoded), encrypted anew by `enc`.
pub fn reseal_json(enc: &Encryption, table: &str, key: &[u8], json: &[u8]) -> Vec<u8> {
    seal_bytes(table, key, enc.encrypt(&aad(table, key), json)).bytes
}

/// The JSON inside bytes made by [`seal_record_with`], checksum verified and
/// decrypted, and whether it was written under the primary method (`false`:
/// the fallback key or no key wrote it, and it is due to be rewritten).
/// A wrong or missing key is [`crate::StateError::Encryption`].
pub fn open_record_json(enc: &Encryption, table: &str, key: &[u8], bytes: &[u8]) -> crate::Result<(Vec<u8>, bool)> {
    let describe = || format!("record {:?} of table {table}", String::from_utf8_lossy(key));
    match open(table, key, bytes) {
        Ok(Opened::Checked { payload, .. }) => {
            let opened = decode_payload(enc, table, key, payload).map_err(|e| crate::StateError::Encryption(e.to_string()))?;
            Ok((opened.plain, opened.current))
        }
        Ok(Opened::Unchecked(_)) => Err(crate::StateError::Corrupt(format!("{} has no checksum", describe()))),
        Err(why) => Err(crate::StateError::Corrupt(format!("{}: {why}", describe()))),
    }
}

/// Decodes bytes made by [`seal_record_with`] under the same table, key and
/// encryption.
pub fn open_record_with<T: serde::de::DeserializeOwned>(enc: &Encryption, table: &str, key: &[u8], bytes: &[u8]) -> crate::Result<T> {
    let (json, _) = open_record_json(enc, table, key, bytes)?;
    serde_json::from_slice(&json)
        .map_err(|e| crate::StateError::Corrupt(format!("record {:?} of table {table}: {e}", String::from_utf8_lossy(key))))
}

/// Decodes bytes made by [`seal_record`] under the same table and key,
/// refusing a record whose checksum does not match.
pub fn open_record<T: serde::de::DeserializeOwned>(table: &str, key: &[u8], bytes: &[u8]) -> crate::Result<T> {
    let describe = || format!("record {:?} of table {table}", String::from_utf8_lossy(key));
    match open(table, key, bytes) {
        Ok(Opened::Checked { payload, .. }) => {
            serde_json::from_slice(payload).map_err(|e| crate::StateError::Corrupt(format!("{}: {e}", describe())))
        }
        Ok(Opened::Unchecked(_)) => Err(crate::StateError::Corrupt(format!("{} has no checksum", describe()))),
        Err(why) => Err(crate::StateError::Corrupt(format!("{}: {why}", describe()))),
    }
}

/// What a stored record turned out to be.
pub(crate) enum Opened<'a> {
    /// Checksum verified.
    Checked { payload: &'a [u8], checksum: u64 },
    /// A record written before checksums existed (plain JSON).
    Unchecked(&'a [u8]),
}

/// Splits a stored record, verifying its checksum. `Err` says what is wrong.
pub(crate) fn open<'a>(table: &str, key: &[u8], bytes: &'a [u8]) -> Result<Opened<'a>, String> {
    match bytes.first() {
        Some(&MAGIC) if bytes.len() >= HEADER => {
            let stored = u64::from_be_bytes(bytes[1..HEADER].try_into().expect("8 bytes"));
            let payload = &bytes[HEADER..];
            let actual = checksum(table, key, payload);
            if actual == stored {
                Ok(Opened::Checked { payload, checksum: actual })
            } else {
                Err("checksum mismatch".into())
            }
        }
        Some(b'{' | b'[' | b'"') => Ok(Opened::Unchecked(bytes)),
        // Encrypted payloads only ever come sealed with a checksum.
        _ => Err("not a state record".into()),
    }
}

/// A table's fingerprint: how many records and the XOR of their checksums.
/// Updated incrementally by every write, compared on every full read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Digest {
    pub count: u64,
    pub xor: u64,
}

impl Digest {
    pub fn add(&mut self, checksum: u64) {
        self.count += 1;
        self.xor ^= checksum;
    }

    pub fn remove(&mut self, checksum: u64) {
        self.count = self.count.wrapping_sub(1);
        self.xor ^= checksum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_byte_flip_of_a_record_is_caught() {
        let sealed = seal("instances", b"a.b", &serde_json::json!({"id": "x", "n": 1}));
        for i in 0..sealed.bytes.len() {
            for bit in 0..8 {
                let mut bytes = sealed.bytes.clone();
                bytes[i] ^= 1 << bit;
                match open("instances", b"a.b", &bytes) {
                    Ok(Opened::Checked { .. }) => {
                        panic!("flip at byte {i} bit {bit} went unnoticed")
                    }
                    // A flip of the magic byte into a JSON start leaves bytes
                    // that are not JSON; decoding refuses them.
                    Ok(Opened::Unchecked(b)) => {
                        assert!(serde_json::from_slice::<serde_json::Value>(b).is_err())
                    }
                    Err(_) => {}
                }
            }
        }
        assert!(open("instances", b"a.c", &sealed.bytes).is_err(), "a record read under another key is caught");
        assert!(open("outputs", b"a.b", &sealed.bytes).is_err(), "a record read from another table is caught");
    }

    #[test]
    fn digest_is_order_independent_and_reversible() {
        let (a, b) = (checksum("t", &[1], b"a"), checksum("t", &[2], b"b"));
        let mut one = Digest::default();
        one.add(a);
        one.add(b);
        let mut two = Digest::default();
        two.add(b);
        two.add(a);
        assert_eq!(one, two);
        one.remove(a);
        let mut only_b = Digest::default();
        only_b.add(b);
        assert_eq!(one, only_b);
    }
}
