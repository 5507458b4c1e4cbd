//! OVSDB's JSON encoding of values (RFC 7047 §5.1) in both directions, and
//! the snapshot of the tables this provider manages.
//!
//! Encoding: a set of one element is the bare atom, any other set is
//! `["set", [..]]`, a map is `["map", [[k, v], ..]]`, references are
//! `["uuid", ".."]` (or `["named-uuid", ".."]` inside a transaction).

use crate::client::{Client, OvsdbError};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use strata_provider::Value;

/// The `external_ids` key that carries the Strata instance identity.
pub const STRATA_ID: &str = "strata-id";

pub type Row = Map<String, Json>;

pub fn uuid(id: &str) -> Json {
    json!(["uuid", id])
}

pub fn named(name: &str) -> Json {
    json!(["named-uuid", name])
}

/// A set of atoms in OVSDB's encoding.
pub fn set(items: Vec<Json>) -> Json {
    if items.len() == 1 {
        items.into_iter().next().unwrap_or(Json::Null)
    } else {
        json!(["set", items])
    }
}

/// An optional value: the atom, or the empty set.
pub fn optional(item: Option<Json>) -> Json {
    set(item.into_iter().collect())
}

/// A string-to-string map.
pub fn string_map(entries: &BTreeMap<String, String>) -> Json {
    json!(["map", entries.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])
}

/// The atoms of a set (a bare atom is a set of one).
pub fn atoms(datum: Option<&Json>) -> Vec<Json> {
    match datum {
        None => Vec::new(),
        Some(Json::Array(a)) if a.len() == 2 && a[0] == "set" => a[1].as_array().cloned().unwrap_or_default(),
        Some(other) => vec![other.clone()],
    }
}

/// The UUID a reference atom names.
pub fn uuid_of(atom: &Json) -> Option<&str> {
    match atom.as_array() {
        Some(a) if a.len() == 2 && a[0] == "uuid" => a[1].as_str(),
        _ => None,
    }
}

/// The UUIDs of a reference set.
pub fn uuids(datum: Option<&Json>) -> Vec<String> {
    atoms(datum).iter().filter_map(|a| uuid_of(a).map(str::to_owned)).collect()
}

/// A map column's entries (values rendered as strings).
pub fn map_of(datum: Option<&Json>) -> BTreeMap<String, String> {
    let Some(Json::Array(a)) = datum else { return BTreeMap::new() };
    if a.len() != 2 || a[0] != "map" {
        return BTreeMap::new();
    }
    a[1].as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((text(p.first()?), text(p.get(1)?)))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(j: &Json) -> String {
    j.as_str().map(str::to_owned).unwrap_or_else(|| j.to_string())
}

/// An optional string column.
pub fn opt_str(datum: Option<&Json>) -> Option<String> {
    atoms(datum).first().and_then(Json::as_str).map(str::to_owned)
}

/// An optional integer column.
pub fn opt_i64(datum: Option<&Json>) -> Option<i64> {
    atoms(datum).first().and_then(Json::as_i64)
}

/// The row's own UUID.
pub fn row_uuid(row: &Row) -> String {
    row.get("_uuid").and_then(uuid_of).unwrap_or_default().to_owned()
}

pub fn row_name(row: &Row) -> &str {
    row.get("name").and_then(Json::as_str).unwrap_or_default()
}

/// The Strata identity a row carries, if any (read in place: refresh and
/// every write's read-back ask it of every port in the snapshot).
pub fn strata_id(row: &Row) -> Option<&str> {
    let Some(Json::Array(a)) = row.get("external_ids") else { return None };
    if a.len() != 2 || a[0] != "map" {
        return None;
    }
    a[1].as_array()?.iter().find_map(|pair| match pair.as_array().map(Vec::as_slice) {
        Some([Json::String(k), Json::String(v)]) if k == STRATA_ID => Some(v.as_str()),
        _ => None,
    })
}

/// `external_ids` as the user sees them: without Strata's identity key;
/// null when empty.
pub fn user_ids(row: &Row) -> Value {
    let mut ids = map_of(row.get("external_ids"));
    ids.remove(STRATA_ID);
    strings_value(ids)
}

/// A string map as a Strata value; null when empty.
pub fn strings_value(map: BTreeMap<String, String>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Map(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
    }
}

/// A Strata map of strings (null → empty) as a `BTreeMap`.
pub fn value_strings(v: &Value) -> BTreeMap<String, String> {
    v.as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let s = v.as_str().map(str::to_owned).or_else(|| v.to_template_string())?;
                    Some((k.clone(), s))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `external_ids` to write: the user's entries plus the identity.
pub fn external_ids_with_identity(v: &Value, id: &str) -> Json {
    let mut ids = value_strings(v);
    ids.insert(STRATA_ID.into(), id.to_owned());
    string_map(&ids)
}

/// The tables this provider reads, all rows, all columns, taken in one
/// transaction (one round trip) so that a refresh is consistent.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub root: Row,
    pub bridges: Vec<Row>,
    pub ports: HashMap<String, Row>,
    pub interfaces: HashMap<String, Row>,
    pub qos: HashMap<String, Row>,
    pub queues: HashMap<String, Row>,
    pub mirrors: HashMap<String, Row>,
    /// Whether ovs-vswitchd held its lock on the database when this was
    /// read: a read for a write asks in the same round trip, so that the
    /// write need not ask again ([`crate::txn::Batcher`]).
    pub vswitchd_serving: bool,
    /// Port UUID → index in `bridges` of the bridge holding it, built on
    /// first use: refreshing N ports asks N times.
    holders: std::sync::OnceLock<HashMap<String, usize>>,
    /// Strata identity → UUID of the port row tagged with it, built on first
    /// use: a burst of 100 creates looks up 100 identities in one snapshot.
    tagged_ports: std::sync::OnceLock<HashMap<String, String>>,
}

/// The rows one write touches, named so that ovsdb-server finds them by its
/// indexes (names are unique in Bridge, Port and Interface).
#[derive(Debug, Default, Clone)]
pub struct Scope {
    pub bridges: BTreeSet<String>,
    pub bridge_ids: BTreeSet<String>,
    /// Port UUIDs whose holding bridge is needed, whatever its name now.
    pub holders_of: BTreeSet<String>,
    pub ports: BTreeSet<String>,
    pub port_ids: BTreeSet<String>,
    pub interfaces: BTreeSet<String>,
}

impl Scope {
    pub fn merge(&mut self, other: Scope) {
        self.bridges.extend(other.bridges);
        self.bridge_ids.extend(other.bridge_ids);
        self.holders_of.extend(other.holders_of);
        self.ports.extend(other.ports);
        self.port_ids.extend(other.port_ids);
        self.interfaces.extend(other.interfaces);
    }
}

/// What a write reads back in the transaction that finds it realized
/// (see [`crate::txn::Batcher`]).
#[derive(Debug, Clone)]
pub enum ReadBack {
    Nothing,
    /// The rows a [`Scope`] names.
    Rows(Scope),
    /// Every managed table.
    Everything,
}

impl ReadBack {
    /// What reads both `self` and `other`.
    pub fn merge(self, other: ReadBack) -> ReadBack {
        match (self, other) {
            (ReadBack::Everything, _) | (_, ReadBack::Everything) => ReadBack::Everything,
            (ReadBack::Nothing, other) | (other, ReadBack::Nothing) => other,
            (ReadBack::Rows(mut a), ReadBack::Rows(b)) => {
                a.merge(b);
                ReadBack::Rows(a)
            }
        }
    }
}

/// The selects of a snapshot, to run alone or at the end of another
/// transaction, and how to build the snapshot from their results.
pub struct Read {
    ops: Vec<Json>,
    shape: ReadShape,
}

enum ReadShape {
    Nothing,
    /// One select per table of [`TABLES`].
    Everything,
    /// The root's `_uuid`, then one select per entry.
    Rows(Vec<&'static str>),
}

impl Read {
    pub fn of(back: &ReadBack) -> Read {
        match back {
            ReadBack::Nothing => Read { ops: Vec::new(), shape: ReadShape::Nothing },
            ReadBack::Everything => Read { ops: TABLES.iter().map(|t| select(t, Vec::new())).collect(), shape: ReadShape::Everything },
            ReadBack::Rows(scope) => {
                let by_name = |name: &String| vec![json!(["name", "==", name])];
                let mut ops = vec![json!({"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["_uuid"]})];
                let mut tables = Vec::new();
                let mut push = |table: &'static str, conditions: Vec<Json>| {
                    ops.push(select(table, conditions));
                    tables.push(table);
                };
                for name in &scope.bridges {
                    push("Bridge", by_name(name));
                }
                for id in &scope.bridge_ids {
                    push("Bridge", vec![json!(["_uuid", "==", uuid(id)])]);
                }
                for port in &scope.holders_of {
                    push("Bridge", vec![json!(["ports", "includes", uuid(port)])]);
                }
                for name in &scope.ports {
                    push("Port", by_name(name));
                }
                for id in &scope.port_ids {
                    push("Port", vec![json!(["_uuid", "==", uuid(id)])]);
                }
                for name in &scope.interfaces {
                    push("Interface", by_name(name));
                }
                Read { ops, shape: ReadShape::Rows(tables) }
            }
        }
    }

    /// The selects, to append to a transaction.
    pub fn ops(&self) -> impl Iterator<Item = Json> + '_ {
        self.ops.iter().cloned()
    }

    /// Runs the selects as a transaction of their own.
    pub async fn run(self, client: &Client) -> Result<Snapshot, OvsdbError> {
        let results = if self.ops.is_empty() { Vec::new() } else { client.transact(self.ops.clone()).await? };
        self.finish(client, results).await
    }

    /// The snapshot, from the results of [`Read::ops`] (a scoped read may
    /// need one more round trip: see [`Snapshot::take_scoped`]).
    pub async fn finish(self, client: &Client, results: Vec<Json>) -> Result<Snapshot, OvsdbError> {
        match self.shape {
            ReadShape::Nothing => Ok(Snapshot::default()),
            ReadShape::Everything => Ok(Snapshot::of_tables(results)),
            ReadShape::Rows(tables) => {
                let mut snap = Snapshot::of_scoped(&tables, results);
                snap.complete_interfaces(client).await?;
                Ok(snap)
            }
        }
    }
}

/// The rows of one `select` result.
fn rows_of(result: Json) -> Vec<Row> {
    let Json::Object(mut m) = result else { return Vec::new() };
    let Some(Json::Array(rows)) = m.remove("rows") else { return Vec::new() };
    rows.into_iter()
        .filter_map(|r| match r {
            Json::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

const TABLES: [&str; 7] = ["Open_vSwitch", "Bridge", "Port", "Interface", "QoS", "Queue", "Mirror"];

/// The columns this provider reads from the tables that grow with the
/// switch. Counters and link state (`statistics`, `lacp_current`,
/// `link_speed`...) are most of a row's bytes and change all the time, so a
/// refresh of a few hundred ports would otherwise move about a megabyte.
/// Every name a resource module reads must be here.
const PORT_COLUMNS: &[&str] =
    &["_uuid", "name", "interfaces", "trunks", "tag", "vlan_mode", "qos", "mac", "bond_mode", "lacp", "status", "other_config", "external_ids"];
const INTERFACE_COLUMNS: &[&str] = &[
    "_uuid", "name", "type", "options", "mac_in_use", "mac", "external_ids", "ofport", "ofport_request", "other_config", "status", "mtu_request",
    "error",
];

/// A `select` of the rows of `table` matching `conditions`, limited to the
/// columns the provider reads where the table has a list of them.
fn select(table: &str, conditions: Vec<Json>) -> Json {
    let columns = match table {
        "Port" => Some(PORT_COLUMNS),
        "Interface" => Some(INTERFACE_COLUMNS),
        _ => None,
    };
    match columns {
        Some(columns) => json!({"op": "select", "table": table, "where": conditions, "columns": columns}),
        None => json!({"op": "select", "table": table, "where": conditions}),
    }
}

impl Snapshot {
    pub async fn take(client: &Client) -> Result<Snapshot, OvsdbError> {
        Read::of(&ReadBack::Everything).run(client).await
    }

    /// Only the rows `scope` names, in one transaction: what a write of one
    /// object needs, so that its cost does not grow with the database. A
    /// second round trip fetches interfaces the names did not reach (a bond
    /// whose members changed outside Strata).
    pub async fn take_scoped(client: &Client, scope: &Scope) -> Result<Snapshot, OvsdbError> {
        Read::of(&ReadBack::Rows(scope.clone())).run(client).await
    }

    /// Every table, from the results of [`Read`]'s selects of them.
    fn of_tables(results: Vec<Json>) -> Snapshot {
        let mut tables = results.into_iter().map(rows_of);
        let mut next = || tables.next().unwrap_or_default();
        let by_uuid = |rows: Vec<Row>| rows.into_iter().map(|r| (row_uuid(&r), r)).collect::<HashMap<_, _>>();
        let root = next().into_iter().next().unwrap_or_default();
        let bridges = next();
        Snapshot {
            root,
            bridges,
            ports: by_uuid(next()),
            interfaces: by_uuid(next()),
            qos: by_uuid(next()),
            queues: by_uuid(next()),
            mirrors: by_uuid(next()),
            ..Snapshot::default()
        }
    }

    /// The rows of a scoped read, from the results of its selects (the
    /// root's first, then one per entry of `tables`).
    fn of_scoped(tables: &[&'static str], results: Vec<Json>) -> Snapshot {
        let mut results = results.into_iter();
        let mut snap = Snapshot { root: results.next().map(rows_of).and_then(|r| r.into_iter().next()).unwrap_or_default(), ..Snapshot::default() };
        for (table, result) in tables.iter().zip(results) {
            for row in rows_of(result) {
                match *table {
                    "Bridge" if snap.bridges.iter().any(|b| row_uuid(b) == row_uuid(&row)) => {}
                    "Bridge" => snap.bridges.push(row),
                    "Port" => {
                        snap.ports.insert(row_uuid(&row), row);
                    }
                    _ => {
                        snap.interfaces.insert(row_uuid(&row), row);
                    }
                }
            }
        }
        snap
    }

    /// Reads the interfaces of its ports that the names did not reach.
    async fn complete_interfaces(&mut self, client: &Client) -> Result<(), OvsdbError> {
        let missing: BTreeSet<String> =
            self.ports.values().flat_map(|p| uuids(p.get("interfaces"))).filter(|u| !self.interfaces.contains_key(u)).collect();
        if !missing.is_empty() {
            let ops = missing.iter().map(|u| select("Interface", vec![json!(["_uuid", "==", uuid(u)])])).collect();
            for row in client.transact(ops).await?.into_iter().flat_map(rows_of) {
                self.interfaces.insert(row_uuid(&row), row);
            }
        }
        Ok(())
    }

    pub fn root_uuid(&self) -> String {
        row_uuid(&self.root)
    }

    pub fn bridge_named(&self, name: &str) -> Option<&Row> {
        self.bridges.iter().find(|b| row_name(b) == name)
    }

    pub fn port_named(&self, name: &str) -> Option<&Row> {
        self.ports.values().find(|p| row_name(p) == name)
    }

    /// The bridge that holds the port row `port_uuid`.
    pub fn bridge_of(&self, port_uuid: &str) -> Option<&Row> {
        let holders = self.holders.get_or_init(|| {
            let mut holders = HashMap::new();
            for (i, b) in self.bridges.iter().enumerate() {
                for p in uuids(b.get("ports")) {
                    holders.entry(p).or_insert(i);
                }
            }
            holders
        });
        holders.get(port_uuid).map(|&i| &self.bridges[i])
    }

    /// The port row tagged with the Strata identity `id`.
    pub fn port_tagged(&self, id: &str) -> Option<&Row> {
        let tagged = self.tagged_ports.get_or_init(|| {
            let mut tagged = HashMap::new();
            for (uuid, row) in &self.ports {
                if let Some(tag) = strata_id(row) {
                    tagged.entry(tag.to_owned()).or_insert_with(|| uuid.clone());
                }
            }
            tagged
        });
        tagged.get(id).and_then(|uuid| self.ports.get(uuid))
    }

    /// The interface rows of a port, in the port's order.
    pub fn interfaces_of(&self, port: &Row) -> Vec<&Row> {
        let mut rows: Vec<&Row> = uuids(port.get("interfaces")).iter().filter_map(|u| self.interfaces.get(u)).collect();
        rows.sort_by(|a, b| row_name(a).cmp(row_name(b)));
        rows
    }
}

/// A strata number or null as an optional JSON integer.
pub fn int_of(v: &Value) -> Option<Json> {
    v.as_i64().map(|n| json!(n))
}

/// A strata string or null as an optional JSON string.
pub fn str_of(v: &Value) -> Option<Json> {
    v.as_str().map(|s| json!(s))
}

/// An optional JSON integer as a Strata value.
pub fn int_value(n: Option<i64>) -> Value {
    n.map(Value::from).unwrap_or(Value::Null)
}

pub fn str_value(s: Option<String>) -> Value {
    s.map(Value::from).unwrap_or(Value::Null)
}

/// Where a queued read gets its snapshot.
type SharedRead = tokio::sync::oneshot::Sender<Result<std::sync::Arc<Snapshot>, OvsdbError>>;

/// Scoped reads for writes that are asked for at the same time share one
/// transaction: a burst of creates reads its rows before its commit
/// together (one round trip, one pass of ovsdb-server) instead of one read
/// each, and asks in the same round trip whether ovs-vswitchd serves the
/// database. Each caller gets a snapshot taken after it asked, of at least
/// its rows.
#[derive(Default)]
pub struct ReadBatcher {
    queue: std::sync::Mutex<Vec<(Scope, SharedRead)>>,
    leader: tokio::sync::Mutex<()>,
}

impl ReadBatcher {
    pub async fn take(&self, client: &Client, scope: Scope) -> Result<std::sync::Arc<Snapshot>, OvsdbError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.queue.lock().expect("read queue").push((scope, done));
        {
            // Whoever leads reads for everything queued so far.
            let _lead = self.leader.lock().await;
            if !self.queue.lock().expect("read queue").is_empty() {
                crate::txn::settle(|| self.queue.lock().expect("read queue").len()).await;
                let batch = std::mem::take(&mut *self.queue.lock().expect("read queue"));
                let mut merged = Scope::default();
                for (s, _) in &batch {
                    merged.merge(s.clone());
                }
                // The probe goes out first: the server answers a connection's
                // requests in order, and it is the cheaper one.
                let (serving, snapshot) = tokio::join!(crate::txn::vswitchd_serves(client), Snapshot::take_scoped(client, &merged));
                let snapshot = snapshot.map(|mut s| {
                    s.vswitchd_serving = serving.is_ok();
                    std::sync::Arc::new(s)
                });
                for (_, done) in batch {
                    let _ = done.send(snapshot.clone());
                }
            }
        }
        outcome.await.unwrap_or_else(|_| Err(OvsdbError::Transport("the shared read was dropped".into())))
    }
}
