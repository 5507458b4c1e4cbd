//! Strata's Open vSwitch provider: bridges, ports, QoS and mirrors, spoken to
//! ovsdb-server natively (OVSDB, RFC 7047) over its unix or TCP socket.
//!
//! Design points:
//! - **One change, one transaction.** Every create, update and delete is a
//!   single OVSDB transaction that starts with `wait` guards on the rows as
//!   the plan saw them; if someone changed them since, nothing is written and
//!   the error names the row and attribute ([`txn`]).
//! - **Realization is checked.** The transaction bumps `next_cfg`; the
//!   provider waits until ovs-vswitchd caught up (`cur_cfg`) and reads back
//!   what it reported (`Interface.error`, `ofport`). A rejected change is
//!   undone in a second transaction and fails with vswitchd's own message.
//!   Without a running vswitchd the provider refuses to write at all.
//! - **Identity.** Rows Strata creates carry `external_ids:strata-id`; state
//!   keeps the row UUID too, so refresh finds rows either way and
//!   `find_by_identity` only by the tag.
//! - **One round trip per refresh.** All managed tables are read in one
//!   transaction of `select`s; the snapshot is reused until this provider
//!   writes.
//!
//! Each resource type is a [`Kind`] in its own module; the flow that drives
//! it (guard, commit, realize, read back, undo on rejection) lives here.

mod bridge;
mod client;
mod datum;
mod flow_resources;
mod flows;
mod host;
mod mirror;
mod openflow;
mod port;
mod qos;
mod secgroup;
mod txn;

pub use client::{Client, OvsdbError};

use async_trait::async_trait;
use datum::{ReadBack, Scope, Snapshot};
use host::HostFacts;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_provider::{
    Attribute, Block, Imported, Instance, PlanRequest, PlanResponse, Provider, ProviderError, ProviderFactory,
    ProviderSchema, Result, Scheduling, Type, UndoRecord, UndoSupport, Undoable, Value,
};
use uuid::Uuid;

pub const DEFAULT_DB: &str = "unix:/var/run/openvswitch/db.sock";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many row changes the engine may hand over at once: one transaction
/// of this many ports is still well under a second of vswitchd's work.
const MAX_COALESCED: usize = 512;

/// What a resource type knows about its rows. The provider drives it.
pub(crate) trait Kind: Send + Sync {
    fn schema(&self) -> Block;
    fn validate(&self, _config: &Value, _ctx: &Context) -> Vec<(String, String)> {
        Vec::new()
    }
    fn plan(&self, _req: &PlanRequest<'_>, _ctx: &Context) -> Result<PlanResponse> {
        Ok(PlanResponse::default())
    }
    /// Fills what the user left to the provider (the engine re-evaluates the
    /// configuration at apply time, so create applies this again).
    fn defaults(&self, _planned: &mut Value, _ctx: &Context) {}
    /// The current state of the object `state` describes: by row UUID,
    /// else by identity.
    fn read(&self, snap: &Snapshot, id: Uuid, state: &Value) -> Option<Value>;
    /// The object tagged with `id`.
    fn find(&self, snap: &Snapshot, id: Uuid) -> Option<Value>;
    /// An existing object by name (import).
    fn lookup(&self, snap: &Snapshot, name: &str) -> Option<Value>;
    /// The rows a write of the object `v` describes (a plan or a state)
    /// reads; `None`: every table (see [`Snapshot::take_scoped`]).
    fn scope(&self, _v: &Value) -> Option<Scope> {
        None
    }
    /// The operations that create the object.
    fn create(&self, snap: &Snapshot, id: Uuid, planned: &Value) -> Result<Vec<Json>>;
    /// The operations that change it from `prior` to `planned`; with `guard`,
    /// they first assert that the rows still hold `prior`.
    fn update(&self, snap: &Snapshot, id: Uuid, prior: &Value, planned: &Value, guard: bool) -> Result<Vec<Json>>;
    /// The operations that delete it (guarded by `prior`).
    fn delete(&self, snap: &Snapshot, prior: &Value) -> Result<Vec<Json>>;
    /// What vswitchd reported when it could not realize `state`.
    fn rejection(&self, _snap: &Snapshot, _state: &Value) -> Option<String> {
        None
    }
    /// A short description for ovsdb-server's log and error messages.
    fn describe(&self, v: &Value) -> String {
        format!("{:?}", v.get("name").as_str().unwrap_or_default())
    }
}

/// What validation and planning may know about the host and the plan.
#[derive(Default)]
pub(crate) struct Context {
    pub host: HostFacts,
    /// The snapshot taken at configure time (existing bridges for validation).
    pub snapshot: Arc<Snapshot>,
    /// Bridges this plan creates or keeps (seen by `validate`).
    pub planned_bridges: Mutex<BTreeSet<String>>,
}

/// Every resource type, in the order the schema lists them.
const RESOURCE_TYPES: [&str; 4] = ["ovs_bridge", "ovs_port", "ovs_qos", "ovs_mirror"];

fn kind(type_name: &str) -> Result<&'static dyn Kind> {
    Ok(match type_name {
        "ovs_bridge" => &bridge::Bridge,
        "ovs_port" => &port::Port,
        "ovs_qos" => &qos::Qos,
        "ovs_mirror" => &mirror::Mirror,
        other => return Err(ProviderError::new(format!("the ovs provider has no resource type {other}"))),
    })
}

/// Factory of the `ovs` provider.
pub struct OvsFactory;

impl ProviderFactory for OvsFactory {
    fn name(&self) -> &'static str {
        "ovs"
    }

    fn schema(&self) -> ProviderSchema {
        let provider = Block::new("An Open vSwitch database (ovsdb-server), and the ovs-vswitchd it serves.")
            .attr(
                "db",
                Attribute::optional(Type::String)
                    .describe("OVSDB address: unix:PATH or tcp:HOST:PORT; default unix:/var/run/openvswitch/db.sock."),
            )
            .attr(
                "vswitchd_ctl",
                Attribute::optional(Type::String).describe(
                    "ovs-vswitchd's control socket, to check that QoS is in force; default: found next to a unix: database socket.",
                ),
            )
            .attr(
                "timeout",
                Attribute::optional(Type::Number)
                    .describe("Seconds to wait for a reply from ovsdb-server, and for ovs-vswitchd to apply a change; default 10."),
            );
        let mut schema = ProviderSchema { provider, ..ProviderSchema::default() };
        for name in RESOURCE_TYPES {
            if let Ok(k) = kind(name) {
                schema.resources.insert(name.into(), k.schema());
                // An update is undone exactly by writing back the previous
                // row values; nothing is classed data-loss, and a replaced
                // row cannot be kept aside (a row no root references is
                // garbage-collected at commit).
                schema.undo.insert(name.into(), UndoSupport { data_loss: true, retire: false });
            }
        }
        flow_resources::add_schemas(&mut schema);
        schema.data_sources.insert("ovs_host".into(), host::schema());
        schema
    }

    fn instantiate(&self) -> Arc<dyn Provider> {
        Arc::new(OvsProvider::default())
    }
}

#[derive(Default)]
struct OvsProvider {
    client: Mutex<Option<Arc<Client>>>,
    db: Mutex<String>,
    vswitchd_ctl: Mutex<Option<String>>,
    timeout: Mutex<Duration>,
    context: Mutex<Arc<Context>>,
    /// Concurrent changes share a transaction (see [`txn::Batcher`]).
    batcher: txn::Batcher,
    /// And so do their reads (see [`datum::ReadBatcher`]).
    reads: datum::ReadBatcher,
    /// The last refresh, until this provider writes.
    cached: tokio::sync::Mutex<Option<Arc<Snapshot>>>,
    /// OpenFlow access for the flow resources.
    openflow: flow_resources::FlowAccess,
}

impl OvsProvider {
    /// Takes the identity tag `id` off every row that carries it (the undo
    /// of an import), in one transaction; rows tagged otherwise are left.
    async fn untag(&self, id: Uuid) -> Result<Value> {
        let tag = serde_json::json!(["map", [[datum::STRATA_ID, id.to_string()]]]);
        let ops = ["Bridge", "Port", "Interface", "QoS", "Queue", "Mirror"]
            .iter()
            .map(|table| {
                serde_json::json!({
                    "op": "mutate", "table": table,
                    "where": [["external_ids", "includes", tag]],
                    "mutations": [["external_ids", "delete", tag]],
                })
            })
            .collect();
        self.client()?
            .transact(ops)
            .await
            .map_err(|e| ProviderError::new(format!("taking the strata-id tag {id} off the imported rows: {e}")))?;
        Ok(Value::Null)
    }

    fn client(&self) -> Result<Arc<Client>> {
        self.client.lock().expect("client lock").clone().ok_or_else(|| ProviderError::new("the ovs provider is not configured"))
    }

    fn context(&self) -> Arc<Context> {
        self.context.lock().expect("context lock").clone()
    }

    fn timeout(&self) -> Duration {
        *self.timeout.lock().expect("timeout lock")
    }

    /// A snapshot for refresh: taken once, reused until a write.
    async fn cached_snapshot(&self) -> Result<Arc<Snapshot>> {
        let mut cached = self.cached.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Snapshot::take(&*self.client()?).await?);
        *cached = Some(s.clone());
        Ok(s)
    }

    /// A fresh snapshot, for a write.
    async fn fresh_snapshot(&self) -> Result<Snapshot> {
        *self.cached.lock().await = None;
        Ok(Snapshot::take(&*self.client()?).await?)
    }

    /// A fresh read for a write of the objects `values` describe: only their
    /// rows where the kind can say which, else every table; with it, whether
    /// ovs-vswitchd serves the database (one round trip for both).
    async fn write_snapshot(&self, k: &dyn Kind, values: &[&Value]) -> Result<Arc<Snapshot>> {
        *self.cached.lock().await = None;
        let client = self.client()?;
        match rows_of(k, values) {
            ReadBack::Rows(scope) => Ok(self.reads.take(&client, scope).await?),
            _ => {
                let (serving, snapshot) = tokio::join!(txn::vswitchd_serves(&client), Snapshot::take(&client));
                let mut snapshot = snapshot?;
                snapshot.vswitchd_serving = serving.is_ok();
                Ok(Arc::new(snapshot))
            }
        }
    }

    /// What keeps `state` from being in force: vswitchd's rejection, or a
    /// port's QoS that vswitchd stored but does not enforce.
    async fn problem(&self, k: &dyn Kind, type_name: &str, now: &Snapshot, state: &Value) -> Option<String> {
        if let Some(reason) = k.rejection(now, state) {
            return Some(reason);
        }
        let (Some(port), Some(qos_id)) = (state.get("name").as_str(), state.get("qos").as_str()) else { return None };
        if type_name != "ovs_port" {
            return None;
        }
        let qos_type = qos::type_of(now, qos_id)?;
        match self.vswitchd_control().await {
            Ok(ctl) => qos::enforcement_problem(&ctl, port, &qos_type).await,
            Err(e) => Some(format!("cannot check that QoS {qos_type} is in force: {e}")),
        }
    }

    /// A connection to ovs-vswitchd's control socket (unixctl, JSON-RPC).
    async fn vswitchd_control(&self) -> Result<Client> {
        let configured = self.vswitchd_ctl.lock().expect("ctl lock").clone();
        let path = match configured {
            Some(p) => p,
            None => {
                let db = self.db.lock().expect("db lock").clone();
                let dir = db
                    .strip_prefix("unix:")
                    .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_owned()))
                    .ok_or_else(|| ProviderError::new(format!("set vswitchd_ctl: {db} is not a local socket")))?;
                let pid = std::fs::read_to_string(dir.join("ovs-vswitchd.pid")).unwrap_or_default();
                [dir.join("ovs-vswitchd.ctl"), dir.join(format!("ovs-vswitchd.{}.ctl", pid.trim()))]
                    .into_iter()
                    .find(|p| p.exists())
                    .ok_or_else(|| ProviderError::new(format!("no ovs-vswitchd control socket in {} (set vswitchd_ctl)", dir.display())))?
                    .display()
                    .to_string()
            }
        };
        Ok(Client::connect(&format!("unix:{path}"), self.timeout()).await?)
    }

    /// Commits `ops` as one transaction, waits for vswitchd and returns the
    /// rows of `read_back` as they were once it had realized the change. A
    /// failed guard becomes an error that says what changed since the plan.
    async fn commit(
        &self,
        kind: &dyn Kind,
        snap: &Snapshot,
        ops: Vec<Json>,
        what: &str,
        prior: Option<(Uuid, &Value)>,
        read_back: ReadBack,
    ) -> Result<Arc<Snapshot>> {
        let client = self.client()?;
        let outcome = self.batcher.commit(&client, &snap.root_uuid(), ops, what, read_back, snap.vswitchd_serving, self.timeout()).await;
        *self.cached.lock().await = None;
        match outcome {
            Ok(now) => Ok(now),
            Err(e) if e.is_wait_failure() => {
                let Some((id, prior)) = prior else { return Err(e.into()) };
                let now = Snapshot::take(&client).await?;
                Err(ProviderError::new(format!("{what}: {}", drift_message(kind, &now, id, prior))))
            }
            Err(OvsdbError::NoVswitchd(m)) => Err(ProviderError::new(m)),
            Err(e) => Err(ProviderError::new(format!("{what}: {}", ProviderError::from(e)))),
        }
    }
}

/// What a write of the objects `values` describe reads: their rows where
/// the kind can say which, else every table.
fn rows_of(k: &dyn Kind, values: &[&Value]) -> ReadBack {
    let mut scope = Scope::default();
    for v in values {
        match k.scope(v) {
            Some(s) => scope.merge(s),
            None => return ReadBack::Everything,
        }
    }
    ReadBack::Rows(scope)
}

/// Says which attributes of the object changed since the plan saw `prior`.
fn drift_message(kind: &dyn Kind, now: &Snapshot, id: Uuid, prior: &Value) -> String {
    let row = prior.get("id").as_str().unwrap_or_default();
    let Some(current) = kind.read(now, id, prior) else {
        return format!("row {row} was deleted outside Strata since the plan; nothing was changed, plan again");
    };
    let mut changed = Vec::new();
    if let (Some(before), Some(after)) = (prior.as_map(), current.as_map()) {
        for (attr, was) in before {
            let is = after.get(attr).unwrap_or(&Value::Null);
            if was != is && !matches!(attr.as_str(), "ofport" | "mac" | "status" | "datapath_id") {
                changed.push(format!("{attr} is now {} (the plan saw {})", is.to_hcl(), was.to_hcl()));
            }
        }
    }
    if changed.is_empty() {
        changed.push("its rows changed".into());
    }
    format!("row {row} changed outside Strata since the plan: {}; nothing was changed, plan again", changed.join(", "))
}

#[async_trait]
impl Provider for OvsProvider {
    async fn configure(&self, config: &Value) -> Result<()> {
        let db = config.get("db").as_str().unwrap_or(DEFAULT_DB).to_owned();
        let timeout = config.get("timeout").as_f64().filter(|t| *t > 0.0).map(Duration::from_secs_f64).unwrap_or(DEFAULT_TIMEOUT);
        let client = Arc::new(Client::connect(&db, timeout).await?);
        let snapshot = Snapshot::take(&client).await?;
        let host = HostFacts::from_snapshot(&snapshot, db.starts_with("unix:"));
        self.openflow.configure(&db, timeout);
        *self.timeout.lock().expect("timeout lock") = timeout;
        *self.db.lock().expect("db lock") = db.clone();
        *self.vswitchd_ctl.lock().expect("ctl lock") = config.get("vswitchd_ctl").as_str().map(str::to_owned);
        let snapshot = Arc::new(snapshot);
        *self.context.lock().expect("context lock") = Arc::new(Context { host, snapshot: snapshot.clone(), ..Context::default() });
        *self.cached.lock().await = Some(snapshot);
        *self.client.lock().expect("client lock") = Some(client);
        Ok(())
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<(String, String)> {
        if flow_resources::handles(type_name) {
            return flow_resources::validate(type_name, config);
        }
        let ctx = self.context();
        match kind(type_name) {
            Ok(k) => k.validate(config, &ctx),
            Err(_) => Vec::new(),
        }
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse> {
        if flow_resources::handles(req.type_name) {
            return self.flow_plan(&req).await;
        }
        kind(req.type_name)?.plan(&req, &self.context())
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        if flow_resources::handles(type_name) {
            return self.flow_apply(type_name, id, planned).await;
        }
        let k = kind(type_name)?;
        let mut planned = planned.clone();
        k.defaults(&mut planned, &self.context());
        let planned = &planned;
        let snap = self.write_snapshot(k, &[planned]).await?;
        let what = format!("create {type_name} {}", k.describe(planned));
        let ops = k.create(&snap, id, planned)?;
        let now = self.commit(k, &snap, ops, &what, None, rows_of(k, &[planned])).await?;
        let state = k
            .find(&now, id)
            .ok_or_else(|| ProviderError::new(format!("{what}: committed, but the row is not in the database")))?;
        if let Some(reason) = self.problem(k, type_name, &now, &state).await {
            // vswitchd refused it: take the rows out again before failing.
            let undo = k.delete(&now, &state)?;
            let removed =
                self.commit(k, &now, undo, &format!("remove rejected {type_name} {}", k.describe(planned)), None, ReadBack::Nothing).await;
            let cleanup = match removed {
                Ok(_) => "it was removed again".to_owned(),
                Err(e) => format!("removing it again failed too: {e}"),
            };
            return Err(ProviderError::new(format!("ovs-vswitchd rejected {type_name} {}: {reason}; {cleanup}", k.describe(planned))));
        }
        Ok(state)
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        if flow_resources::handles(type_name) {
            return self.flow_read(type_name, instances).await;
        }
        let k = kind(type_name)?;
        let snap = self.cached_snapshot().await?;
        Ok(instances.iter().map(|i| k.read(&snap, i.id, i.state)).collect())
    }

    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, _undo: Option<&UndoRecord>) -> Result<Value> {
        // The undo record is the prior state itself: nothing to secure first.
        if flow_resources::handles(type_name) {
            return self.flow_apply(type_name, id, planned).await;
        }
        let k = kind(type_name)?;
        let snap = self.write_snapshot(k, &[prior, planned]).await?;
        let what = format!("update {type_name} {}", k.describe(prior));
        let ops = k.update(&snap, id, prior, planned, true)?;
        let now = self.commit(k, &snap, ops, &what, Some((id, prior)), rows_of(k, &[prior, planned])).await?;
        let state = k.read(&now, id, prior).ok_or_else(|| ProviderError::new(format!("{what}: the row vanished after the commit")))?;
        if let Some(reason) = self.problem(k, type_name, &now, &state).await {
            let restore = k.update(&now, id, &state, prior, false)?;
            let restored =
                self.commit(k, &now, restore, &format!("restore rejected {type_name} {}", k.describe(prior)), None, ReadBack::Nothing).await;
            let cleanup = match restored {
                Ok(_) => "the previous values were restored".to_owned(),
                Err(e) => format!("restoring the previous values failed too: {e}"),
            };
            return Err(ProviderError::new(format!("ovs-vswitchd rejected the change to {type_name} {}: {reason}; {cleanup}", k.describe(prior))));
        }
        Ok(state)
    }

    async fn delete(&self, type_name: &str, id: Uuid, prior: &Value) -> Result<()> {
        if flow_resources::handles(type_name) {
            return self.flow_delete(type_name, id, prior).await;
        }
        let k = kind(type_name)?;
        let snap = self.write_snapshot(k, &[prior]).await?;
        if k.read(&snap, id, prior).is_none() {
            return Ok(());
        }
        let what = format!("delete {type_name} {}", k.describe(prior));
        let ops = k.delete(&snap, prior)?;
        self.commit(k, &snap, ops, &what, Some((id, prior)), ReadBack::Nothing).await.map(|_| ())
    }

    async fn find_by_identity(&self, type_name: &str, id: Uuid, _planned: &Value) -> Result<Option<Value>> {
        if flow_resources::handles(type_name) {
            return self.flow_find(type_name, id, _planned).await;
        }
        let k = kind(type_name)?;
        Ok(k.find(&self.fresh_snapshot().await?, id))
    }

    async fn prepare_undo(&self, _type_name: &str, _id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        if flow_resources::handles(_type_name) {
            return self.flow_prepare_undo(_type_name, _id, change).await;
        }
        Ok(match change {
            Undoable::Update { prior, planned } => {
                Some(UndoRecord(Value::object([("restore", prior.clone()), ("applied", planned.clone())])))
            }
            // Retired rows are deleted outright.
            Undoable::Retire { .. } => None,
            // An import only tags the rows with the identity; undo takes the
            // tag off again, so the rows are as they were before.
            Undoable::Import { .. } => Some(UndoRecord(Value::object([("untag", Value::Bool(true))]))),
        })
    }

    async fn undo(&self, type_name: &str, id: Uuid, undo: &UndoRecord) -> Result<Value> {
        if flow_resources::handles(type_name) {
            return self.flow_undo(id, undo).await;
        }
        let k = kind(type_name)?;
        if undo.0.get("untag").as_bool() == Some(true) {
            return self.untag(id).await;
        }
        let prior = undo.0.get("restore");
        if prior.is_null() {
            return Err(ProviderError::new(format!("{type_name}: the undo record holds no previous values")));
        }
        let snap = self.fresh_snapshot().await?;
        let Some(current) = k.read(&snap, id, prior) else {
            return Err(ProviderError::new(format!(
                "cannot restore {type_name} {}: its row is gone",
                k.describe(prior)
            )));
        };
        // Only what this apply wrote goes back: an attribute that does not
        // hold the applied value was never changed by us (the update did not
        // run, or someone else changed it since) and is left alone.
        let target = reverted(k, &current, prior, undo.0.get("applied"));
        if target == current {
            return Ok(current);
        }
        txn::require_vswitchd(&*self.client()?).await?;
        let ops = k.update(&snap, id, &current, &target, false)?;
        let now = self.commit(k, &snap, ops, &format!("restore {type_name} {}", k.describe(prior)), None, ReadBack::Everything).await?;
        k.read(&now, id, prior).ok_or_else(|| ProviderError::new(format!("restore {type_name}: the row vanished")))
    }

    async fn import(&self, type_name: &str, id: Uuid, import_id: &str) -> Result<Imported> {
        let k = kind(type_name)?;
        let snap = self.fresh_snapshot().await?;
        let found = k
            .lookup(&snap, import_id)
            .ok_or_else(|| ProviderError::new(format!("no {type_name} named {import_id:?} to import")))?;
        // Tag the row with the identity, changing nothing else.
        txn::require_vswitchd(&*self.client()?).await?;
        let ops = k.update(&snap, id, &found, &found, true)?;
        let now = self.commit(k, &snap, ops, &format!("import {type_name} {import_id:?}"), Some((id, &found)), ReadBack::Everything).await?;
        let state = k.read(&now, id, &found).unwrap_or(found);
        Ok(Imported { state, id: None })
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        let k = kind(type_name)?;
        let snap = self.cached_snapshot().await?;
        Ok(k.lookup(&snap, import_id).map(|state| Imported { state, id: None }))
    }

    /// Bridges, ports, QoS and mirrors go through [`txn::Batcher`]: changes
    /// in flight together share one transaction and one vswitchd
    /// reconfiguration, so the engine may hand over many at once. Flow sets
    /// and security groups are `ovs-ofctl` calls, one per bridge: per slot.
    fn scheduling(&self, type_name: &str) -> Scheduling {
        if RESOURCE_TYPES.contains(&type_name) {
            Scheduling::Coalescing { max_in_flight: MAX_COALESCED }
        } else {
            Scheduling::PerSlot
        }
    }

    async fn read_data(&self, type_name: &str, _config: &Value) -> Result<Value> {
        match type_name {
            "ovs_host" => {
                let client = self.client()?;
                let running = client.lock_is_held("ovs_vswitchd").await?;
                let snap = Snapshot::take(&client).await?;
                Ok(host::read(&HostFacts::from_snapshot(&snap, client.target().starts_with("unix:")), running))
            }
            other => Err(ProviderError::new(format!("the ovs provider has no data source {other}"))),
        }
    }
}

/// `current` with every settable attribute that holds its `applied` value
/// set back to its `prior` value.
fn reverted(k: &dyn Kind, current: &Value, prior: &Value, applied: &Value) -> Value {
    let mut target = current.clone();
    if let Value::Map(m) = &mut target {
        for (name, attr) in k.schema().attributes {
            let now = current.get(&name);
            let was = prior.get(&name);
            let wrote = applied.get(&name);
            if attr.is_settable() && now != was && (now == wrote || applied.is_null()) {
                m.insert(name, was.clone());
            }
        }
    }
    target
}

/// `proposed` with the unknown computed attributes `keep` taken from `prior`.
pub(crate) fn keep_computed(proposed: &Value, prior: &Value, keep: &[&str]) -> Value {
    let mut planned = proposed.clone();
    if let Value::Map(m) = &mut planned {
        for name in keep {
            if m.get(*name).is_none_or(Value::is_unknown) && !prior.get(name).is_null() {
                m.insert((*name).to_owned(), prior.get(name).clone());
            }
        }
    }
    planned
}
