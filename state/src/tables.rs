//! The tables of the state database and checked access to them: every
//! record is sealed with its checksum on write and verified on read, and
//! every table's [`Digest`] is kept current by the writes and compared when a
//! table is read whole (see [`crate::record`]).

use crate::record::{self, Digest, Opened};
use crate::{Encryption, Result, StateError};
use redb::{Key, ReadTransaction, ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(crate) type StrTable = TableDefinition<'static, &'static str, &'static [u8]>;
pub(crate) type SeqTable = TableDefinition<'static, u64, &'static [u8]>;

pub(crate) const META: StrTable = TableDefinition::new("meta");
pub(crate) const INSTANCES: StrTable = TableDefinition::new("instances");
pub(crate) const OUTPUTS: StrTable = TableDefinition::new("outputs");
pub(crate) const JOURNAL: SeqTable = TableDefinition::new("journal");
pub(crate) const HISTORY: SeqTable = TableDefinition::new("history");
/// The apply in progress (key [`APPLY_KEY`]) and its undo steps by sequence.
pub(crate) const APPLY: StrTable = TableDefinition::new("apply");
pub(crate) const STEPS: SeqTable = TableDefinition::new("steps");
/// One [`Digest`] per table above, by table name.
pub(crate) const DIGESTS: StrTable = TableDefinition::new("digests");

pub(crate) const APPLY_KEY: &str = "current";
pub(crate) const META_KEY: &str = "meta";
pub(crate) const CURRENT_VERSION_KEY: &str = "current_version";

pub(crate) const STR_TABLES: [StrTable; 4] = [META, INSTANCES, OUTPUTS, APPLY];
pub(crate) const SEQ_TABLES: [SeqTable; 3] = [JOURNAL, HISTORY, STEPS];

/// Whether records carry checksums. Databases written before checksums
/// existed are read as they are and sealed on their first writable open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Checked,
    Legacy,
}

pub(crate) fn db_err(e: impl Into<redb::Error>) -> StateError {
    match e.into() {
        redb::Error::Corrupted(m) => StateError::Corrupt(m),
        // A read past the end of a truncated file, or bytes that make no sense.
        redb::Error::Io(source) if matches!(source.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) => {
            StateError::Corrupt(source.to_string())
        }
        redb::Error::Io(source) => StateError::Io { context: "state database".into(), source },
        e => StateError::Database(e.to_string()),
    }
}

/// Decrypts a verified payload of a record (digests are never encrypted:
/// they hold counts and checksums only).
fn decrypt(enc: &Encryption, table: &str, key: &[u8], payload: Vec<u8>) -> Result<Vec<u8>> {
    if table == DIGESTS.name() {
        return Ok(payload);
    }
    record::decode_payload(enc, table, key, &payload).map(|o| o.plain).map_err(|e| StateError::Encryption(e.to_string()))
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(what: &str, payload: &[u8]) -> Result<T> {
    // Reading bytes, serde_json checks the UTF-8 of every string it meets
    // (a call per string: a tenth of decoding state); one check of the
    // whole payload is cheaper. A payload that is not UTF-8 is left to
    // `from_slice`, for its message.
    let decoded = match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(payload),
    };
    decoded.map_err(|e| StateError::Corrupt(format!("{what}: {e}")))
}

fn key_bytes<K: Key>(key: &K::SelfType<'_>) -> Vec<u8> {
    K::as_bytes(key).as_ref().to_vec()
}

/// A verified record's payload and checksum.
fn verify(table: &str, key: &[u8], bytes: &[u8], format: Format) -> Result<(Vec<u8>, Option<u64>)> {
    verify_in_place(table, key, bytes, format).map(|(payload, checksum)| (payload.to_vec(), checksum))
}

/// [`verify`] without copying the payload out of `bytes`.
fn verify_in_place<'b>(table: &str, key: &[u8], bytes: &'b [u8], format: Format) -> Result<(&'b [u8], Option<u64>)> {
    let describe = || format!("record {:?} of table {table}", String::from_utf8_lossy(key));
    match record::open(table, key, bytes) {
        Ok(Opened::Checked { payload, checksum }) => Ok((payload, Some(checksum))),
        Ok(Opened::Unchecked(payload)) if format == Format::Legacy => Ok((payload, None)),
        Ok(Opened::Unchecked(_)) => Err(StateError::Corrupt(format!("{} has no checksum", describe()))),
        Err(why) => Err(StateError::Corrupt(format!("{}: {why}", describe()))),
    }
}

fn read_digest(tx: &ReadTransaction, table: &str) -> Result<Option<Digest>> {
    let digests = tx.open_table(DIGESTS).map_err(db_err)?;
    let Some(bytes) = digests.get(table).map_err(db_err)? else {
        return Ok(None);
    };
    let (payload, _) = verify(DIGESTS.name(), table.as_bytes(), bytes.value(), Format::Checked)?;
    decode("table digest", &payload).map(Some)
}

/// Reads a table whole, verifying every record and the table's digest.
/// Returns (key bytes as redb encodes them, payload) in key order.
pub(crate) fn read_all<K: Key + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
    format: Format,
    enc: &Encryption,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let name = def.name().to_owned();
    let Some(table) = open_for_read(tx, def, format)? else {
        return Ok(Vec::new());
    };
    let mut digest = Digest::default();
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        let key = key_bytes::<K>(&k.value());
        let (payload, checksum) = verify(&name, &key, v.value(), format)?;
        if let Some(c) = checksum {
            digest.add(c);
        }
        out.push((key, payload));
    }
    // Decrypted only once the table is known whole and intact.
    if format == Format::Checked {
        check_digest(tx, &name, &digest)?;
    }
    out.into_iter().map(|(key, payload)| decrypt(enc, &name, &key, payload).map(|p| (key, p))).collect()
}

/// [`read_all`] followed by `decode` of every record, in key order, into
/// `C`, without holding a copy of every payload. The records are gathered
/// in key order and `C` is built from them at once: a `BTreeMap` built from
/// sorted entries packs its nodes full, where inserting one record at a
/// time leaves them about half empty (a sixth of a decoded state's memory
/// at 100,000 instances). Where the configuration decrypts
/// nothing (no key and no fallback: a plain payload is read as it is),
/// each payload is decoded straight from redb's page, as it is verified.
/// The result, errors included, is the one of `read_all` and then a loop
/// of `decode` over its records: a damaged record (first in key order),
/// then the table's digest, then the first record that does not decrypt,
/// then the first that `decode` refuses.
pub(crate) fn read_decoded<K: Key + 'static, T, C: FromIterator<T>>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
    format: Format,
    enc: &Encryption,
    mut decode: impl FnMut(&[u8], &[u8]) -> Result<T>,
) -> Result<C> {
    if !enc.reads_as_stored() {
        return read_all(tx, def, format, enc)?.into_iter().map(|(key, payload)| decode(&key, &payload)).collect();
    }
    let name = def.name();
    let Some(table) = open_for_read(tx, def, format)? else {
        return Ok(C::from_iter(std::iter::empty()));
    };
    let mut out = Vec::new();
    let mut digest = Digest::default();
    // Reported only once the table is known whole and intact, in the
    // order `read_all` and a decoding loop after it report them.
    let (mut undecryptable, mut undecodable) = (None, None);
    for entry in table.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        let key_value = k.value();
        let key_bytes = K::as_bytes(&key_value);
        let key = key_bytes.as_ref();
        let (payload, checksum) = verify_in_place(name, key, v.value(), format)?;
        if let Some(c) = checksum {
            digest.add(c);
        }
        if undecryptable.is_some() {
            continue;
        }
        if crate::encryption::is_encrypted(payload) {
            // No key to open it with: the error `decrypt` gives.
            undecryptable = decrypt(enc, name, key, payload.to_vec()).err();
            continue;
        }
        if undecodable.is_some() {
            continue;
        }
        match decode(key, payload) {
            Ok(value) => out.push(value),
            Err(e) => undecodable = Some(e),
        }
    }
    if format == Format::Checked {
        check_digest(tx, name, &digest)?;
    }
    match undecryptable.or(undecodable) {
        Some(e) => Err(e),
        None => Ok(out.into_iter().collect()),
    }
}

fn check_digest(tx: &ReadTransaction, name: &str, digest: &Digest) -> Result<()> {
    match read_digest(tx, name)? {
        Some(expected) if expected == *digest => Ok(()),
        Some(expected) => Err(StateError::Corrupt(format!(
            "table {name} holds {} record(s) that do not match its digest (it should hold {})",
            digest.count, expected.count
        ))),
        None => Err(StateError::Corrupt(format!("table {name} has no digest"))),
    }
}

/// Reads one record, verifying its checksum.
pub(crate) fn read_one<'k, K: Key + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
    key: K::SelfType<'k>,
    format: Format,
    enc: &Encryption,
) -> Result<Option<Vec<u8>>> {
    let Some(table) = open_for_read(tx, def, format)? else {
        return Ok(None);
    };
    let kb = key_bytes::<K>(&key);
    let Some(bytes) = table.get(key).map_err(db_err)? else {
        return Ok(None);
    };
    let (payload, _) = verify(def.name(), &kb, bytes.value(), format)?;
    decrypt(enc, def.name(), &kb, payload).map(Some)
}

/// Opens a table to read; a table missing from an old database is empty,
/// from a checked one it is damage.
fn open_for_read<K: Key + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
    format: Format,
) -> Result<Option<redb::ReadOnlyTable<K, &'static [u8]>>> {
    match tx.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) if format == Format::Legacy => Ok(None),
        Err(redb::TableError::TableDoesNotExist(name)) => Err(StateError::Corrupt(format!("table {name} is missing"))),
        Err(e) => Err(db_err(e)),
    }
}

pub(crate) fn str_key(bytes: &[u8]) -> Result<String> {
    str_key_ref(bytes).map(str::to_owned)
}

pub(crate) fn str_key_ref(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| StateError::Corrupt("a record key is not UTF-8".into()))
}

pub(crate) fn seq_key(bytes: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| StateError::Corrupt("a sequence key is not 8 bytes".into()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// The tables a [`Writer`] keeps open between its writes: opening one looks
/// it up in redb's table tree and closing it writes its root back, which
/// cost a tenth of a large apply's journal work when done for every record.
#[derive(Default)]
pub(crate) struct OpenTables<'t> {
    by_name: Vec<(String, redb::Table<'t, &'static str, &'static [u8]>)>,
    by_seq: Vec<(String, redb::Table<'t, u64, &'static [u8]>)>,
}

/// The key types of the state's tables, each with its kind of open table.
pub(crate) trait TableKey: Key + Sized + 'static {
    fn kept<'c, 't>(open: &'c mut OpenTables<'t>) -> &'c mut Vec<(String, redb::Table<'t, Self, &'static [u8]>)>;
}

impl TableKey for &'static str {
    fn kept<'c, 't>(open: &'c mut OpenTables<'t>) -> &'c mut Vec<(String, redb::Table<'t, Self, &'static [u8]>)> {
        &mut open.by_name
    }
}

impl TableKey for u64 {
    fn kept<'c, 't>(open: &'c mut OpenTables<'t>) -> &'c mut Vec<(String, redb::Table<'t, Self, &'static [u8]>)> {
        &mut open.by_seq
    }
}

/// Checked writes within one write transaction; [`Writer::finish`] stores
/// the digests of the tables it touched. The tables it writes stay open
/// until it is finished or dropped, or until it opens another way
/// ([`Writer::close_tables`]); meanwhile only the writer may open tables of
/// the transaction (redb refuses a table that is open already).
pub(crate) struct Writer<'t> {
    tx: &'t WriteTransaction,
    enc: &'t Encryption,
    digests: BTreeMap<String, Digest>,
    open: OpenTables<'t>,
}

impl<'t> Writer<'t> {
    /// Writes records encrypted as `enc` says.
    pub fn new(tx: &'t WriteTransaction, enc: &'t Encryption) -> Writer<'t> {
        Writer { tx, enc, digests: BTreeMap::new(), open: OpenTables::default() }
    }

    /// Closes the tables kept open, before a table is opened another way.
    pub fn close_tables(&mut self) {
        self.open = OpenTables::default();
    }

    /// The table `def`, opened on first use and kept open.
    fn table<K: TableKey>(&mut self, def: TableDefinition<'static, K, &'static [u8]>) -> Result<&mut redb::Table<'t, K, &'static [u8]>> {
        let at = match K::kept(&mut self.open).iter().position(|(n, _)| n == def.name()) {
            Some(at) => at,
            None => {
                let table = self.tx.open_table(def).map_err(db_err)?;
                let kept = K::kept(&mut self.open);
                kept.push((def.name().to_owned(), table));
                kept.len() - 1
            }
        };
        Ok(&mut K::kept(&mut self.open)[at].1)
    }

    fn digest(&mut self, table: &str) -> Result<&mut Digest> {
        if !self.digests.contains_key(table) {
            // Never kept open: only `finish` writes digests.
            let digests = self.tx.open_table(DIGESTS).map_err(db_err)?;
            let current = match digests.get(table).map_err(db_err)? {
                Some(bytes) => {
                    let (payload, _) = verify(DIGESTS.name(), table.as_bytes(), bytes.value(), Format::Checked)?;
                    decode("table digest", &payload)?
                }
                None => return Err(StateError::Corrupt(format!("table {table} has no digest"))),
            };
            self.digests.insert(table.to_owned(), current);
        }
        Ok(self.digests.get_mut(table).expect("just loaded"))
    }

    /// Starts a table's digest from nothing (a new or rebuilt table).
    pub fn reset_digest(&mut self, table: &str) {
        self.digests.insert(table.to_owned(), Digest::default());
    }

    pub fn put<'k, K: TableKey, T: Serialize>(
        &mut self,
        def: TableDefinition<'static, K, &'static [u8]>,
        key: K::SelfType<'k>,
        value: &T,
    ) -> Result<()> {
        let name = def.name().to_owned();
        let kb = key_bytes::<K>(&key);
        let sealed = record::seal_bytes(&name, &kb, record::encode_payload(self.enc, &name, &kb, value));
        self.store(def, key, &name, &kb, sealed)
    }

    /// Stores a record's JSON as it is (already encoded), encrypted anew.
    pub fn put_json<'k, K: TableKey>(
        &mut self,
        def: TableDefinition<'static, K, &'static [u8]>,
        key: K::SelfType<'k>,
        json: &[u8],
    ) -> Result<()> {
        let name = def.name().to_owned();
        let kb = key_bytes::<K>(&key);
        let sealed = record::seal_bytes(&name, &kb, self.enc.encrypt(&record::aad(&name, &kb), json));
        self.store(def, key, &name, &kb, sealed)
    }

    fn store<'k, K: TableKey>(
        &mut self,
        def: TableDefinition<'static, K, &'static [u8]>,
        key: K::SelfType<'k>,
        name: &str,
        kb: &[u8],
        sealed: record::Sealed,
    ) -> Result<()> {
        let old = self.table(def)?.insert(key, sealed.bytes.as_slice()).map_err(db_err)?.map(|g| g.value().to_vec());
        let old = match old {
            Some(bytes) => verify(name, kb, &bytes, Format::Checked)?.1,
            None => None,
        };
        let digest = self.digest(name)?;
        if let Some(c) = old {
            digest.remove(c);
        }
        digest.add(sealed.checksum);
        Ok(())
    }

    pub fn remove<'k, K: TableKey>(&mut self, def: TableDefinition<'static, K, &'static [u8]>, key: K::SelfType<'k>) -> Result<()> {
        let name = def.name().to_owned();
        let kb = key_bytes::<K>(&key);
        let old = self.table(def)?.remove(key).map_err(db_err)?.map(|g| g.value().to_vec());
        if let Some(bytes) = old {
            let checksum = verify(&name, &kb, &bytes, Format::Checked)?.1;
            let digest = self.digest(&name)?;
            if let Some(c) = checksum {
                digest.remove(c);
            }
        }
        Ok(())
    }

    pub fn clear<K: TableKey>(&mut self, def: TableDefinition<'static, K, &'static [u8]>) -> Result<()> {
        self.table(def)?.retain(|_, _| false).map_err(db_err)?;
        self.reset_digest(def.name());
        Ok(())
    }

    /// Reads a record inside the transaction, verified.
    pub fn get<'k, K: Key + 'static>(
        &mut self,
        def: TableDefinition<'static, K, &'static [u8]>,
        key: K::SelfType<'k>,
    ) -> Result<Option<Vec<u8>>> {
        let kb = key_bytes::<K>(&key);
        self.close_tables();
        let table = self.tx.open_table(def).map_err(db_err)?;
        let Some(bytes) = table.get(key).map_err(db_err)? else {
            return Ok(None);
        };
        let (payload, _) = verify(def.name(), &kb, bytes.value(), Format::Checked)?;
        decrypt(self.enc, def.name(), &kb, payload).map(Some)
    }

    /// Rewrites every record not written under the primary method (data of
    /// a rotated-out key, or plain data after encryption was turned on).
    /// Returns how many were rewritten.
    pub fn reencrypt_stale(&mut self) -> Result<usize> {
        let mut count = 0;
        for def in STR_TABLES {
            for (key, json) in self.stale(def)? {
                self.put_json(def, str_key(&key)?.as_str(), &json)?;
                count += 1;
            }
        }
        for def in SEQ_TABLES {
            for (key, json) in self.stale(def)? {
                self.put_json(def, seq_key(&key)?, &json)?;
                count += 1;
            }
        }
        Ok(count)
    }

    fn stale<K: Key + 'static>(&mut self, def: TableDefinition<'static, K, &'static [u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.close_tables();
        let table = self.tx.open_table(def).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let key = key_bytes::<K>(&k.value());
            let (payload, _) = verify(def.name(), &key, v.value(), Format::Checked)?;
            let opened =
                record::decode_payload(self.enc, def.name(), &key, &payload).map_err(|e| StateError::Encryption(e.to_string()))?;
            if !opened.current {
                out.push((key, opened.plain));
            }
        }
        Ok(out)
    }

    pub fn finish(mut self) -> Result<()> {
        self.close_tables();
        let mut digests = self.tx.open_table(DIGESTS).map_err(db_err)?;
        for (name, digest) in &self.digests {
            let sealed = record::seal(DIGESTS.name(), name.as_bytes(), digest);
            digests.insert(name.as_str(), sealed.bytes.as_slice()).map_err(db_err)?;
        }
        Ok(())
    }
}

/// Seals every record of a database written before checksums existed and
/// computes the digests, in the caller's write transaction.
pub(crate) fn migrate_to_checked(tx: &WriteTransaction, enc: &Encryption) -> Result<()> {
    let mut writer = Writer::new(tx, enc);
    for def in STR_TABLES {
        writer.close_tables();
        let records = raw_records(tx, def)?;
        writer.clear(def)?;
        for (key, payload) in records {
            let value: serde_json::Value = decode(def.name(), &payload)?;
            let key = str_key(&key)?;
            writer.put(def, key.as_str(), &value)?;
        }
    }
    for def in SEQ_TABLES {
        writer.close_tables();
        let records = raw_records(tx, def)?;
        writer.clear(def)?;
        for (key, payload) in records {
            let value: serde_json::Value = decode(def.name(), &payload)?;
            writer.put(def, seq_key(&key)?, &value)?;
        }
    }
    writer.finish()
}

fn raw_records<K: Key + 'static>(
    tx: &WriteTransaction,
    def: TableDefinition<'static, K, &'static [u8]>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let table = tx.open_table(def).map_err(db_err)?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err)? {
        let (k, v) = entry.map_err(db_err)?;
        let key = key_bytes::<K>(&k.value());
        let (payload, _) = verify(def.name(), &key, v.value(), Format::Legacy)?;
        out.push((key, payload));
    }
    Ok(out)
}
