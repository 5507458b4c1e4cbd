//! Strata's KVM provider: libvirt networks, storage pools, volumes, domains
//! (with file or RBD disks) and Ceph secrets, managed through the `virt` crate.
//!
//! Design points:
//! - **Identity.** Networks, pools and domains take the engine's instance
//!   UUID as their libvirt UUID, so an interrupted create is found again by
//!   UUID. Volumes (and cloud-init seeds) cannot carry it and are found by
//!   pool and name, so a name that is taken is never adopted: the engine
//!   asks `name_is_free` before a create, a create refuses a taken name
//!   without touching the volume there, and a create that failed on a taken
//!   name finds nothing.
//! - **Undo records.** Domains and networks keep their previous XML; a
//!   replaced volume, seed, pool, network or domain is kept aside until the
//!   apply ends; a volume shrink first keeps a copy (see `undo.rs`).
//! - **Started is state.** Networks and pools report `active`, domains
//!   `running` and `pending_restart`, so a half-made or interrupted object
//!   is converged by the next plan instead of being taken as done.
//! - **Batch refresh.** `read` lists all objects of a kind in one call and
//!   matches them to instances, instead of one lookup per instance.
//! - **libvirt is loaded on first use.** The patched `virt-sys`
//!   (vendor/virt-sys) opens `libvirt.so.0` with dlopen when `configure`
//!   runs, so commands that use no kvm resource never pay for mapping it.
//! - **Blocking calls stay off the runtime.** Every libvirt call runs in
//!   `spawn_blocking`; libvirt's default error printer is disabled, so its
//!   messages reach the user only through Strata's diagnostics.
//! - **Live where libvirt allows.** DHCP hosts and DNS hosts of a network
//!   change with `virNetworkUpdate`; growing a volume is a live resize,
//!   shrinking it is classed `data-loss`.

mod calls;
mod cloudinit;
mod domain;
mod domain_rbd;
mod domain_restart;
mod domain_undo;
mod domain_xml;
mod network;
mod ovs_vlan;
mod pool;
mod secret;
mod undo;
mod volume;
mod xml;

use async_trait::async_trait;
use std::collections::BTreeSet;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};
use strata_provider::{
    Attribute, Block, Imported, Instance, PlanRequest, PlanResponse, Provider, ProviderError, ProviderFactory,
    ProviderSchema, Result, Type, UndoRecord, UndoSupport, Undoable, Value,
};
use uuid::Uuid;
use virt::connect::Connect;

pub const DEFAULT_URI: &str = "qemu:///system";

/// Factory of the `kvm` provider.
pub struct KvmFactory;

impl ProviderFactory for KvmFactory {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn schema(&self) -> ProviderSchema {
        let provider = Block::new("A libvirt connection.").attr(
            "uri",
            Attribute::optional(Type::String)
                .describe("libvirt URI; default qemu:///system. Remote URIs such as qemu+ssh://host/system work the same."),
        );
        let mut schema = ProviderSchema { provider, ..ProviderSchema::default() };
        schema.resources.insert("kvm_network".into(), network::schema());
        schema.resources.insert("kvm_pool".into(), pool::schema());
        schema.resources.insert("kvm_volume".into(), volume::schema());
        schema.resources.insert("kvm_cloudinit_disk".into(), cloudinit::schema());
        schema.resources.insert("kvm_domain".into(), domain::schema());
        schema.resources.insert("kvm_secret".into(), secret::schema());
        schema.data_sources.insert("kvm_host".into(), host_schema());
        // What rollback restores exactly (see undo.rs and each module).
        let kept_aside = UndoSupport { data_loss: false, retire: true };
        schema.undo.insert("kvm_network".into(), kept_aside);
        schema.undo.insert("kvm_pool".into(), kept_aside);
        schema.undo.insert("kvm_cloudinit_disk".into(), kept_aside);
        schema.undo.insert("kvm_domain".into(), kept_aside);
        schema.undo.insert("kvm_volume".into(), UndoSupport { data_loss: true, retire: true });
        // Re-applying the prior values (state holds them) undoes an update.
        schema.undo.insert("kvm_secret".into(), UndoSupport::default());
        schema
    }

    fn instantiate(&self) -> Arc<dyn Provider> {
        Arc::new(KvmProvider::default())
    }
}

#[derive(Default)]
struct KvmProvider {
    /// Never closed: the connection lives as long as the process, and
    /// `virt`'s `Drop` for it (virConnectClose) was seen to abort in glibc's
    /// malloc when the process ended; libvirtd drops the connection itself
    /// when the process exits.
    conn: Mutex<Option<Arc<ManuallyDrop<Connect>>>>,
    uri: Mutex<String>,
    /// `kvm` where it can boot a guest on this host, else `qemu`.
    domain_type: Mutex<String>,
    /// Volumes (pool, name) whose create failed in this process without
    /// making them: someone else's, which `find_by_identity` must not
    /// return to the failed create.
    not_created: Mutex<BTreeSet<(String, String)>>,
}

/// A libvirt error as the user sees it: libvirt's own message.
pub(crate) fn err(e: virt::error::Error) -> ProviderError {
    ProviderError::new(e.message())
}

/// True when libvirt says the object does not exist.
pub(crate) fn is_missing(e: &virt::error::Error) -> bool {
    use virt::enumutil::Enum;
    use virt::error::ErrorNumber as N;
    matches!(e.code(), Enum::Known(N::NoNetwork | N::NoStoragePool | N::NoStorageVolume | N::NoDomain | N::NoSecret))
}

/// A lookup's result, with "no such object" as `None`.
pub(crate) fn found<T>(r: std::result::Result<T, virt::error::Error>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// For `import`: an object by UUID when `import_id` is one, else by name.
pub(crate) fn by_uuid_or_name<T>(
    import_id: &str,
    by_uuid: impl FnOnce(Uuid) -> std::result::Result<T, virt::error::Error>,
    by_name: impl FnOnce(&str) -> std::result::Result<T, virt::error::Error>,
) -> Result<Option<T>> {
    found(match Uuid::parse_str(import_id) {
        Ok(u) => by_uuid(u),
        Err(_) => by_name(import_id),
    })
}

impl KvmProvider {
    fn conn(&self) -> Result<Arc<ManuallyDrop<Connect>>> {
        self.conn.lock().expect("connection lock").clone().ok_or_else(|| ProviderError::new("the kvm provider is not configured"))
    }

    fn domain_type(&self) -> String {
        self.domain_type.lock().expect("type lock").clone()
    }

    /// Whether libvirt runs on this host, so pool directories are local files.
    fn local(&self) -> bool {
        self.uri.lock().expect("uri lock").contains(":///")
    }

    fn pool_and_name(v: &Value) -> (String, String) {
        (v.get("pool").as_str().unwrap_or_default().to_owned(), v.get("name").as_str().unwrap_or_default().to_owned())
    }

    /// Creates a volume or seed, remembering a name its create did not take.
    async fn create_named(&self, planned: Value, create: fn(&Connect, &Value) -> Result<Value>) -> Result<Value> {
        let key = Self::pool_and_name(&planned);
        let result = self.blocking(move |c| create(c, &planned)).await;
        match &result {
            Err(e) if e.message.contains(volume::TAKEN) => {
                self.not_created.lock().expect("names lock").insert(key);
            }
            _ => {
                self.not_created.lock().expect("names lock").remove(&key);
            }
        }
        result
    }

    /// Runs blocking libvirt work on the blocking pool.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Connect) -> Result<T> + Send + 'static) -> Result<T> {
        let conn = self.conn()?;
        tokio::task::spawn_blocking(move || f(&conn))
            .await
            .map_err(|e| ProviderError::new(format!("libvirt call panicked: {e}")))?
    }
}

#[async_trait]
impl Provider for KvmProvider {
    async fn configure(&self, config: &Value) -> Result<()> {
        let uri = config.get("uri").as_str().unwrap_or(DEFAULT_URI).to_owned();
        // libvirt is opened here, not at process start (vendor/virt-sys): a
        // host without it gets this error instead of an abort at the first call.
        virt::sys::load().map_err(|why| ProviderError::new(format!("libvirt is not available: {why}")))?;
        virt::error::clear_error_callback();
        let open_uri = uri.clone();
        let conn = tokio::task::spawn_blocking(move || Connect::open(Some(&open_uri)))
            .await
            .map_err(|e| ProviderError::new(e.to_string()))?
            .map_err(|e| ProviderError::new(format!("cannot connect to {uri}: {}", e.message())))?;
        let local = uri.contains(":///");
        let facts = tokio::task::spawn_blocking({
            let conn = Arc::new(ManuallyDrop::new(conn));
            let c = conn.clone();
            move || host(&c, local).map(|h| (conn, h))
        })
        .await
        .map_err(|e| ProviderError::new(e.to_string()))??;
        *self.domain_type.lock().expect("type lock") = facts.1.get("domain_type").as_str().unwrap_or("qemu").to_owned();
        *self.conn.lock().expect("connection lock") = Some(facts.0);
        *self.uri.lock().expect("uri lock") = uri;
        Ok(())
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<(String, String)> {
        match type_name {
            "kvm_network" => network::validate(config),
            "kvm_volume" => volume::validate(config),
            "kvm_domain" => domain::validate(config),
            "kvm_secret" => secret::validate(config),
            _ => Vec::new(),
        }
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse> {
        Ok(match req.type_name {
            "kvm_volume" => volume::plan(req.prior, req.proposed),
            "kvm_domain" => domain::plan(req.prior, req.proposed),
            "kvm_network" => network::plan(req.prior, req.proposed),
            "kvm_cloudinit_disk" => cloudinit::plan(req.prior, req.proposed),
            _ => PlanResponse::default(),
        })
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        let planned = planned.clone();
        match type_name {
            "kvm_network" => self.blocking(move |c| network::create(c, id, &planned)).await,
            "kvm_pool" => self.blocking(move |c| pool::create(c, id, &planned)).await,
            "kvm_secret" => self.blocking(move |c| secret::create(c, id, &planned)).await,
            "kvm_volume" => self.create_named(planned, volume::create).await,
            "kvm_cloudinit_disk" => self.create_named(planned, cloudinit::create).await,
            "kvm_domain" => {
                let t = self.domain_type();
                self.blocking(move |c| domain::create(c, id, &planned, &t)).await
            }
            other => Err(unknown(other)),
        }
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        let wanted: Vec<(Uuid, Value)> = instances.iter().map(|i| (i.id, i.state.clone())).collect();
        match type_name {
            "kvm_network" => self.blocking(move |c| network::read_all(c, &wanted)).await,
            "kvm_pool" => self.blocking(move |c| pool::read_all(c, &wanted)).await,
            "kvm_secret" => self.blocking(move |c| secret::read_all(c, &wanted)).await,
            "kvm_volume" => self.blocking(move |c| volume::read_all(c, &wanted)).await,
            "kvm_cloudinit_disk" => self.blocking(move |c| cloudinit::read_all(c, &wanted)).await,
            "kvm_domain" => self.blocking(move |c| domain::read_all(c, &wanted)).await,
            other => Err(unknown(other)),
        }
    }

    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
        let (prior, planned, undo) = (prior.clone(), planned.clone(), undo.cloned());
        match type_name {
            // The record holds the previous XML: nothing to secure first.
            "kvm_network" => self.blocking(move |c| network::update(c, id, &prior, &planned)).await,
            "kvm_pool" => self.blocking(move |c| pool::update(c, id, &planned)).await,
            "kvm_secret" => self.blocking(move |c| secret::update(c, id, &prior, &planned)).await,
            "kvm_volume" => self.blocking(move |c| volume::update(c, &prior, &planned, undo.as_ref())).await,
            "kvm_cloudinit_disk" => Err(ProviderError::new("kvm_cloudinit_disk changes replace the seed")),
            "kvm_domain" => {
                let t = self.domain_type();
                self.blocking(move |c| domain::update(c, id, &prior, &planned, &t)).await
            }
            other => Err(unknown(other)),
        }
    }

    async fn delete(&self, type_name: &str, id: Uuid, prior: &Value) -> Result<()> {
        let prior = prior.clone();
        match type_name {
            "kvm_network" => self.blocking(move |c| network::delete(c, id)).await,
            "kvm_pool" => self.blocking(move |c| pool::delete(c, id)).await,
            "kvm_secret" => self.blocking(move |c| secret::delete(c, id)).await,
            "kvm_volume" => self.blocking(move |c| volume::delete(c, &prior)).await,
            "kvm_cloudinit_disk" => self.blocking(move |c| cloudinit::delete(c, &prior)).await,
            "kvm_domain" => self.blocking(move |c| domain::delete(c, id)).await,
            other => Err(unknown(other)),
        }
    }

    async fn find_by_identity(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Option<Value>> {
        let planned = planned.clone();
        let named = matches!(type_name, "kvm_volume" | "kvm_cloudinit_disk");
        if named && self.not_created.lock().expect("names lock").contains(&Self::pool_and_name(&planned)) {
            // Its create failed on a name someone else's volume holds.
            return Ok(None);
        }
        match type_name {
            "kvm_network" => self.blocking(move |c| Ok(network::read_all(c, &[(id, planned)])?.remove(0))).await,
            "kvm_pool" => self.blocking(move |c| Ok(pool::read_all(c, &[(id, planned)])?.remove(0))).await,
            "kvm_secret" => self.blocking(move |c| Ok(secret::read_all(c, &[(id, planned)])?.remove(0))).await,
            "kvm_volume" => self.blocking(move |c| volume::find_created(c, &planned)).await,
            "kvm_cloudinit_disk" => self.blocking(move |c| cloudinit::find_created(c, &planned)).await,
            "kvm_domain" => self.blocking(move |c| Ok(domain::read_all(c, &[(id, planned)])?.remove(0))).await,
            other => Err(unknown(other)),
        }
    }

    async fn name_is_free(&self, type_name: &str, planned: &Value) -> Result<bool> {
        let planned = planned.clone();
        match type_name {
            "kvm_volume" | "kvm_cloudinit_disk" => self.blocking(move |c| volume::name_is_free(c, &planned)).await,
            _ => Ok(true),
        }
    }

    async fn prepare_undo(&self, type_name: &str, id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        let (op, prior, planned) = match change {
            Undoable::Update { prior, planned } => (undo::UPDATE, prior.clone(), Some(planned.clone())),
            Undoable::Retire { prior } => (undo::RETIRE, prior.clone(), None),
            // Importing changes nothing in libvirt (no re-tag: objects keep
            // their own UUID or are found by name): forgetting undoes it.
            Undoable::Import { .. } => return Ok(None),
        };
        match type_name {
            "kvm_domain" => self.blocking(move |c| domain_undo::prepare(c, id, op, &prior)).await,
            "kvm_network" => self.blocking(move |c| network::prepare_undo(c, id, op, &prior)).await,
            "kvm_pool" if planned.is_none() => self.blocking(move |c| pool::prepare_retire(c, id, &prior)).await,
            "kvm_volume" => Ok(volume::prepare_undo(&prior, planned.as_ref())),
            "kvm_cloudinit_disk" if planned.is_none() => Ok(Some(cloudinit::prepare_retire(&prior))),
            // Re-applying the prior values undoes the rest exactly (a
            // pool started or stopped).
            "kvm_pool" | "kvm_cloudinit_disk" | "kvm_secret" => Ok(None),
            other => Err(unknown(other)),
        }
    }

    async fn retire(&self, type_name: &str, id: Uuid, _prior: &Value, rec: &UndoRecord) -> Result<()> {
        let (rec, local) = (rec.clone(), self.local());
        expect_op(type_name, &rec, &[undo::RETIRE])?;
        match type_name {
            "kvm_domain" => self.blocking(move |c| domain_undo::retire(c, id)).await,
            "kvm_network" => self.blocking(move |c| network::retire(c, id)).await,
            "kvm_pool" => self.blocking(move |c| pool::retire(c, id)).await,
            "kvm_volume" | "kvm_cloudinit_disk" => self.blocking(move |c| volume::retire(c, local, &rec)).await,
            other => Err(unknown(other)),
        }
    }

    async fn undo(&self, type_name: &str, id: Uuid, rec: &UndoRecord) -> Result<Value> {
        let (rec, local) = (rec.clone(), self.local());
        match type_name {
            "kvm_domain" => {
                expect_op(type_name, &rec, &[undo::UPDATE, undo::RETIRE])?;
                self.blocking(move |c| domain_undo::undo(c, id, &rec)).await
            }
            "kvm_network" => {
                expect_op(type_name, &rec, &[undo::UPDATE, undo::RETIRE])?;
                self.blocking(move |c| network::undo(c, id, &rec)).await
            }
            "kvm_pool" => {
                expect_op(type_name, &rec, &[undo::RETIRE])?;
                self.blocking(move |c| pool::undo(c, id, &rec)).await
            }
            "kvm_volume" => {
                expect_op(type_name, &rec, &[undo::RETIRE, undo::SHRINK])?;
                self.blocking(move |c| volume::undo(c, local, &rec)).await
            }
            "kvm_cloudinit_disk" => {
                expect_op(type_name, &rec, &[undo::RETIRE])?;
                self.blocking(move |c| cloudinit::undo(c, local, &rec)).await
            }
            other => Err(unknown(other)),
        }
    }

    async fn discard_undo(&self, type_name: &str, _id: Uuid, rec: &UndoRecord) -> Result<()> {
        let (rec, local) = (rec.clone(), self.local());
        match type_name {
            // Their records hold everything kept: nothing exists outside.
            "kvm_domain" => domain_undo::discard(&rec),
            "kvm_network" => network::discard_undo(&rec),
            "kvm_pool" => self.blocking(move |c| pool::discard_undo(c, local, &rec)).await,
            "kvm_volume" | "kvm_cloudinit_disk" => self.blocking(move |c| volume::discard_undo(c, &rec)).await,
            other => Err(unknown(other)),
        }
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        let import_id = import_id.to_owned();
        match type_name {
            "kvm_network" => self.blocking(move |c| network::lookup(c, &import_id)).await,
            "kvm_pool" => self.blocking(move |c| pool::lookup(c, &import_id)).await,
            "kvm_secret" => self.blocking(move |c| secret::lookup(c, &import_id)).await,
            "kvm_volume" => self.blocking(move |c| volume::lookup(c, &import_id)).await,
            "kvm_domain" => self.blocking(move |c| domain::lookup(c, &import_id)).await,
            other => Err(unknown(other)),
        }
    }

    async fn import(&self, type_name: &str, _id: Uuid, import_id: &str) -> Result<Imported> {
        self.lookup(type_name, import_id)
            .await?
            .ok_or_else(|| ProviderError::new(format!("no {type_name} {import_id:?} to import")))
    }

    async fn read_data(&self, type_name: &str, _config: &Value) -> Result<Value> {
        match type_name {
            "kvm_host" => {
                let local = self.uri.lock().expect("uri lock").contains(":///");
                self.blocking(move |c| host(c, local)).await
            }
            other => Err(ProviderError::new(format!("the kvm provider has no data source {other}"))),
        }
    }
}

/// Refuses a record made for another operation than the one asked.
fn expect_op(type_name: &str, rec: &UndoRecord, ops: &[&str]) -> Result<()> {
    if ops.contains(&undo::op(rec)) {
        Ok(())
    } else {
        Err(ProviderError::new(format!("{type_name} cannot use an undo record of a {:?} operation here", undo::op(rec))))
    }
}

fn unknown(type_name: &str) -> ProviderError {
    ProviderError::new(format!("the kvm provider has no resource type {type_name}"))
}

fn host_schema() -> Block {
    Block::new("Facts about the libvirt host.")
        .attr("arch", Attribute::computed(Type::String))
        .attr("cpus", Attribute::computed(Type::Number))
        .attr("memory", Attribute::computed(Type::Number).describe("Bytes."))
        .attr("kvm", Attribute::computed(Type::Bool).describe("Whether libvirt offers KVM acceleration."))
        .attr(
            "domain_type",
            Attribute::computed(Type::String)
                .describe("The domain type guests should use: kvm when it can boot a guest here, else qemu (TCG)."),
        )
}

/// `kvm_host`: node info and capabilities.
fn host(conn: &Connect, local: bool) -> Result<Value> {
    let info = conn.node_info().map_err(err)?;
    let caps = conn.capabilities().map_err(err)?;
    let doc = roxmltree::Document::parse(&caps).map_err(|e| ProviderError::new(format!("capabilities XML: {e}")))?;
    let arch = doc
        .descendants()
        .find(|n| n.has_tag_name("arch") && n.parent().is_some_and(|p| p.has_tag_name("cpu")))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_owned();
    let kvm = doc.descendants().any(|n| n.has_tag_name("domain") && n.attribute("type") == Some("kvm"));
    // A paravirtual nested KVM (kvm_pvm) starts domains but cannot boot a
    // real kernel; guests must use TCG there.
    let pvm = local && std::path::Path::new("/sys/module/kvm_pvm").exists();
    let domain_type = if kvm && !pvm { "kvm" } else { "qemu" };
    Ok(Value::object([
        ("arch", Value::from(arch)),
        ("cpus", Value::from(info.cpus as i64)),
        ("memory", Value::from(info.memory as i64 * 1024)),
        ("kvm", Value::Bool(kvm)),
        ("domain_type", Value::from(domain_type)),
    ]))
}
