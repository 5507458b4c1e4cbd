//! The OpenFlow resource types (`ovs_flow_set`, `ovs_security_group`) as the
//! provider dispatches them. They live in the switch's flow tables, not in
//! OVSDB, so they bypass the row machinery of [`crate::Kind`]: each call goes
//! to [`crate::flows`] or [`crate::secgroup`] through [`OpenFlow`]. OVSDB is
//! read only to resolve a port attachment's MAC.

use crate::datum::{self, Snapshot};
use crate::openflow::OpenFlow;
use crate::{flows, secgroup, OvsProvider};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use strata_provider::{PlanRequest, PlanResponse, ProviderError, ProviderSchema, Result, UndoRecord, UndoSupport, Undoable, Value};
use uuid::Uuid;

const FLOW_SET: &str = "ovs_flow_set";
const SECURITY_GROUP: &str = "ovs_security_group";

/// Whether `type_name` is one of the OpenFlow resource types.
pub(crate) fn handles(type_name: &str) -> bool {
    matches!(type_name, FLOW_SET | SECURITY_GROUP)
}

pub(crate) fn add_schemas(schema: &mut ProviderSchema) {
    schema.resources.insert(FLOW_SET.into(), flows::schema());
    schema.resources.insert(SECURITY_GROUP.into(), secgroup::schema());
    // Updates are undone exactly from the record (the flows as they were);
    // a replaced set is simply installed again, nothing is kept aside.
    for name in [FLOW_SET, SECURITY_GROUP] {
        schema.undo.insert(name.into(), UndoSupport { data_loss: true, retire: false });
    }
}

/// Where the bridges' management sockets are, once configured.
#[derive(Default)]
pub(crate) struct FlowAccess(Mutex<Option<Result<OpenFlow>>>);

impl FlowAccess {
    /// Management sockets sit next to the database socket (`unix:RUNDIR/db.sock`).
    pub(crate) fn configure(&self, db: &str, timeout: Duration) {
        let access = OpenFlow::rundir_for_db(db).map(|dir| OpenFlow::new(dir, timeout)).ok_or_else(|| {
            ProviderError::new(format!(
                "OpenFlow flows need the bridges' management sockets, which are local files; db {db:?} is not a unix socket on this host"
            ))
        });
        *self.0.lock().expect("openflow lock") = Some(access);
    }

    fn get(&self) -> Result<OpenFlow> {
        self.0.lock().expect("openflow lock").clone().unwrap_or_else(|| Err(ProviderError::new("the ovs provider is not configured")))
    }
}

/// The MAC behind each named port: the Interface's `external_ids:attached-mac`
/// (libvirt sets it to the guest's MAC), else its `mac_in_use` (an internal
/// port's own device).
fn port_macs(snap: &Snapshot, config: &Value) -> BTreeMap<String, String> {
    secgroup::port_names(config)
        .into_iter()
        .filter_map(|name| {
            let port = snap.port_named(&name)?;
            let iface = snap.interfaces_of(port).into_iter().next()?;
            let mac = datum::map_of(iface.get("external_ids"))
                .remove("attached-mac")
                .or_else(|| datum::opt_str(iface.get("mac_in_use")))?;
            Some((name, mac))
        })
        .collect()
}

pub(crate) fn validate(type_name: &str, config: &Value) -> Vec<(String, String)> {
    match type_name {
        FLOW_SET => flows::validate(config),
        _ => secgroup::validate(config),
    }
}

impl OvsProvider {
    pub(crate) async fn flow_plan(&self, req: &PlanRequest<'_>) -> Result<PlanResponse> {
        match req.type_name {
            FLOW_SET => flows::plan(&self.openflow.get()?, req.proposed).await,
            _ => Ok(PlanResponse::default()),
        }
    }

    /// Installs the planned flows (create and update alike: the set is
    /// always replaced whole).
    pub(crate) async fn flow_apply(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        let of = self.openflow.get()?;
        match type_name {
            FLOW_SET => flows::apply(&of, id, planned).await,
            _ => {
                let snap = self.fresh_snapshot().await?;
                secgroup::apply(&of, id, planned, &port_macs(&snap, planned)).await
            }
        }
    }

    pub(crate) async fn flow_read(&self, type_name: &str, instances: &[strata_provider::Instance<'_>]) -> Result<Vec<Option<Value>>> {
        let of = self.openflow.get()?;
        let snap = self.cached_snapshot().await?;
        let mut out = Vec::with_capacity(instances.len());
        for i in instances {
            // A bridge that exists but has no management socket is not gone:
            // vswitchd is not serving it, and its flows cannot be known.
            let bridge = i.state.get("bridge").as_str().unwrap_or_default();
            if !of.bridge_reachable(bridge) && snap.bridge_named(bridge).is_some() {
                return Err(ProviderError::new(format!(
                    "{type_name} on bridge {bridge}: the bridge exists, but ovs-vswitchd does not serve it (no OpenFlow management socket); is ovs-vswitchd running?"
                )));
            }
            out.push(match type_name {
                FLOW_SET => flows::read(&of, i.id, i.state).await?,
                _ => secgroup::read(&of, i.id, i.state, &port_macs(&snap, i.state)).await?,
            });
        }
        Ok(out)
    }

    pub(crate) async fn flow_delete(&self, type_name: &str, id: Uuid, prior: &Value) -> Result<()> {
        let of = self.openflow.get()?;
        match type_name {
            FLOW_SET => flows::delete(&of, id, prior).await,
            _ => secgroup::delete(&of, id, prior).await,
        }
    }

    /// The set tagged with `id`'s cookie. An interrupted delete's intent
    /// holds no planned values, so without a bridge every bridge is searched.
    pub(crate) async fn flow_find(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Option<Value>> {
        let of = self.openflow.get()?;
        let snap = self.fresh_snapshot().await?;
        let bridges: Vec<String> = match planned.get("bridge").as_str() {
            Some(b) => vec![b.to_owned()],
            None => snap.bridges.iter().map(|b| datum::row_name(b).to_owned()).collect(),
        };
        for bridge in bridges {
            let mut planned = planned.as_map().cloned().unwrap_or_default();
            planned.insert("bridge".into(), Value::from(bridge));
            let planned = Value::Map(planned.into());
            let found = match type_name {
                FLOW_SET => flows::find_by_identity(&of, id, &planned).await?,
                _ => secgroup::find_by_identity(&of, id, &planned, &port_macs(&snap, &planned)).await?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    pub(crate) async fn flow_prepare_undo(&self, type_name: &str, id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        let Undoable::Update { prior, .. } = change else { return Ok(None) };
        let of = self.openflow.get()?;
        match type_name {
            FLOW_SET => flows::prepare_undo(&of, id, prior).await,
            _ => secgroup::prepare_undo(&of, id, prior).await,
        }
    }

    pub(crate) async fn flow_undo(&self, id: Uuid, undo: &UndoRecord) -> Result<Value> {
        flows::undo(&self.openflow.get()?, id, undo).await
    }
}
