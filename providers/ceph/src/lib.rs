//! Strata's Ceph provider: pools, RBD images (thin clones included),
//! snapshots, cephx clients and facts about the cluster.
//!
//! Design points:
//! - **Behind a client trait.** Resources speak to [`client::CephClient`];
//!   [`cli::CliClient`] implements it with the `rbd` tool and, for monitor
//!   commands, a few lines of Python on the librados bindings the `ceph`
//!   CLI itself runs on (the CLI spends five times as much CPU fetching and
//!   parsing every command description on each call). No maintained crate
//!   binds librbd, and a crashing child process cannot take the engine
//!   down. Every call has a deadline.
//! - **Identity.** Images carry `image-meta strata-id=<instance UUID>`,
//!   pools carry it in their application metadata; snapshots and cephx
//!   clients cannot carry it and are found by name (the engine asks
//!   [`strata_provider::Provider::name_is_free`] first).
//! - **Batch refresh.** `read` lists the images and snapshots of all the
//!   pools involved in one call (the helper asks every image header through
//!   the `rbd` object class, without opening the images), the pools once
//!   (`osd pool ls detail`), the clients once (`auth ls`).
//! - **Undo points.** A data-loss update of an image (a shrink) first takes
//!   a snapshot `strata-undo-<token>`, which rollback rolls the image back
//!   to; a replaced image is moved to the RBD trash until the apply succeeds.
//! - **Secrets.** Keys never reach a process argument: connections use
//!   keyring files, and a new client's key comes back on the CLI's stdout.

mod auth;
pub mod cli;
pub mod client;
mod cluster;
mod image;
mod pool;
mod review;
mod snapshot;

use async_trait::async_trait;
use client::{CephClient, ClientError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use strata_provider::{
    Attribute, Block, Imported, Instance, PlanRequest, PlanResponse, Provider, ProviderError, ProviderFactory,
    ProviderSchema, Result, Type, UndoRecord, UndoSupport, Undoable, Value,
};
use uuid::Uuid;

/// The key under which objects carry the engine's instance identity.
pub const IDENTITY_KEY: &str = "strata-id";
/// The prefix of the snapshots that make undo points.
pub const UNDO_SNAPSHOT_PREFIX: &str = "strata-undo-";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Factory of the `ceph` provider.
pub struct CephFactory;

impl ProviderFactory for CephFactory {
    fn name(&self) -> &'static str {
        "ceph"
    }

    fn schema(&self) -> ProviderSchema {
        let provider = Block::new("A Ceph cluster, reached with the rbd and ceph command-line tools.")
            .attr("conf", Attribute::optional(Type::String).describe("Path of ceph.conf; default the CEPH_CONF environment variable, else Ceph's own default (/etc/ceph/ceph.conf)."))
            .attr("user", Attribute::optional(Type::String).describe("The cephx client name without `client.` (default `admin`)."))
            .attr("keyring", Attribute::optional(Type::String).describe("Path of the keyring holding the user's key (mode 0600); default the CEPH_KEYRING environment variable, else what ceph.conf says. Keys are never passed on a command line."))
            .attr("timeout", Attribute::optional(Type::Number).describe("Seconds one cluster call may take before it is killed (default 30): a pool over its quota blocks writes forever."));
        let mut schema = ProviderSchema { provider, ..ProviderSchema::default() };
        schema.resources.insert("ceph_pool".into(), pool::schema());
        schema.resources.insert("ceph_rbd_image".into(), image::schema());
        schema.resources.insert("ceph_rbd_snapshot".into(), snapshot::schema());
        schema.resources.insert("ceph_client".into(), auth::schema());
        schema.data_sources.insert("ceph_cluster".into(), cluster::schema());
        schema.undo.insert("ceph_rbd_image".into(), UndoSupport { data_loss: true, retire: true });
        schema
    }

    fn instantiate(&self) -> Arc<dyn Provider> {
        Arc::new(CephProvider::default())
    }
}

/// The provider; public so that tests can drive it through the contract.
#[derive(Default)]
pub struct CephProvider {
    client: RwLock<Option<Arc<dyn CephClient>>>,
}

impl CephProvider {
    /// A provider on an already made client (tests, other backends).
    pub fn with_client(client: Arc<dyn CephClient>) -> CephProvider {
        CephProvider { client: RwLock::new(Some(client)) }
    }

    fn client(&self) -> Result<Arc<dyn CephClient>> {
        self.client.read().expect("client lock").clone().ok_or_else(|| ProviderError::new("the ceph provider is not configured"))
    }

    /// How many cluster calls were made (for benchmarks).
    pub fn calls(&self) -> u64 {
        self.client().map(|c| c.calls()).unwrap_or(0)
    }
}

/// A client error as the user sees it, naming the object.
pub(crate) fn failed(what: &str, e: ClientError) -> ProviderError {
    ProviderError::new(format!("{what}: {e}"))
}

/// A whole, non-negative number of bytes (or objects, or a limit).
pub(crate) fn whole(value: &Value, attr: &str) -> std::result::Result<Option<u64>, (String, String)> {
    if value.is_null() || value.is_unknown() {
        return Ok(None);
    }
    match value.as_number() {
        Some(n) if n.is_integer() && !n.is_negative() => {
            n.to_i64().map(|i| Some(i as u64)).ok_or_else(|| (attr.to_owned(), format!("{value} is too large")))
        }
        Some(_) => Err((attr.to_owned(), format!("must be a whole, non-negative number, not {value}"))),
        None => Err((attr.to_owned(), format!("must be a number, not {}", value.kind()))),
    }
}

/// [`whole`] for the operations, once validation has passed.
pub(crate) fn whole_or(value: &Value, default: u64) -> u64 {
    whole(value, "").ok().flatten().unwrap_or(default)
}

/// Checks a name Ceph would accept but `rbd` specs (`pool/image@snap`) could
/// not address.
pub(crate) fn check_name(config: &Value, attr: &str, out: &mut Vec<(String, String)>) {
    let Some(name) = config.get(attr).as_str() else { return };
    let bad = name.is_empty()
        || name.starts_with('.')
        || name.len() > 250
        || name.chars().any(|c| c == '/' || c == '@' || c.is_whitespace() || c.is_control());
    if bad {
        out.push((
            attr.to_owned(),
            format!("{name:?} is not a usable Ceph name: it must be 1-250 characters without '/', '@' or spaces, and not start with '.'"),
        ));
    }
}

/// Every image and snapshot of each pool, in one cluster call for all of
/// them. A pool that does not exist lists nothing.
pub(crate) async fn list_pools<'a>(
    c: &dyn CephClient,
    pools: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, Vec<client::ImageListing>>> {
    let pools: Vec<&str> = pools.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    if pools.is_empty() {
        return Ok(BTreeMap::new());
    }
    c.list_images(&pools).await.map_err(|e| failed(&format!("images of pool(s) {}", pools.join(", ")), e))
}

fn unknown(type_name: &str) -> ProviderError {
    ProviderError::new(format!("the ceph provider has no resource type {type_name}"))
}

fn path_setting(config: &Value, key: &str, env: &str) -> Option<PathBuf> {
    config.get(key).as_str().map(PathBuf::from).or_else(|| std::env::var_os(env).map(PathBuf::from))
}

#[async_trait]
impl Provider for CephProvider {
    async fn configure(&self, config: &Value) -> Result<()> {
        let conf = path_setting(config, "conf", "CEPH_CONF");
        let keyring = path_setting(config, "keyring", "CEPH_KEYRING");
        for (what, path) in [("conf", &conf), ("keyring", &keyring)] {
            if let Some(p) = path {
                if !p.is_file() {
                    return Err(ProviderError::new(format!("ceph provider: {what} {} does not exist", p.display())));
                }
            }
        }
        let timeout = match whole(config.get("timeout"), "timeout") {
            Ok(Some(0)) | Err(_) => return Err(ProviderError::new("ceph provider: timeout must be a whole number of seconds above 0")),
            Ok(Some(s)) => Duration::from_secs(s),
            Ok(None) => DEFAULT_TIMEOUT,
        };
        let user = config.get("user").as_str().map(|u| u.trim_start_matches("client.").to_owned());
        let client = cli::CliClient::new(cli::Connection { conf, user, keyring, timeout });
        *self.client.write().expect("client lock") = Some(Arc::new(client));
        Ok(())
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<(String, String)> {
        match type_name {
            "ceph_pool" => pool::validate(config),
            "ceph_rbd_image" => image::validate(config),
            "ceph_rbd_snapshot" => snapshot::validate(config),
            "ceph_client" => auth::validate(config),
            _ => Vec::new(),
        }
    }

    async fn review_plan(&self, changes: &[strata_provider::ReviewedChange<'_>]) -> Result<strata_provider::Review> {
        Ok(review::review(changes))
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse> {
        Ok(match req.type_name {
            "ceph_rbd_image" => image::plan(req.prior, req.proposed),
            _ => PlanResponse::default(),
        })
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::create(&*c, id, planned).await,
            "ceph_rbd_image" => image::create(&*c, id, planned).await,
            "ceph_rbd_snapshot" => snapshot::create(&*c, planned).await,
            "ceph_client" => auth::create(&*c, planned).await,
            other => Err(unknown(other)),
        }
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::read_all(&*c, instances).await,
            "ceph_rbd_image" => image::read_all(&*c, instances).await,
            "ceph_rbd_snapshot" => snapshot::read_all(&*c, instances).await,
            "ceph_client" => auth::read_all(&*c, instances).await,
            other => Err(unknown(other)),
        }
    }

    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::update(&*c, id, prior, planned).await,
            "ceph_rbd_image" => image::update(&*c, prior, planned, undo).await,
            "ceph_rbd_snapshot" => snapshot::update(&*c, planned).await,
            "ceph_client" => auth::update(&*c, planned).await,
            other => Err(unknown(other)),
        }
    }

    async fn delete(&self, type_name: &str, _id: Uuid, prior: &Value) -> Result<()> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::delete(&*c, prior).await,
            "ceph_rbd_image" => image::delete(&*c, prior).await,
            "ceph_rbd_snapshot" => snapshot::delete(&*c, prior).await,
            "ceph_client" => auth::delete(&*c, prior).await,
            other => Err(unknown(other)),
        }
    }

    async fn find_by_identity(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Option<Value>> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::find(&*c, id).await,
            "ceph_rbd_image" => image::find(&*c, id, planned).await,
            "ceph_rbd_snapshot" => Ok(snapshot::read_all(&*c, &[Instance { id, state: planned }]).await?.remove(0)),
            "ceph_client" => Ok(auth::read_all(&*c, &[Instance { id, state: planned }]).await?.remove(0)),
            other => Err(unknown(other)),
        }
    }

    async fn name_is_free(&self, type_name: &str, planned: &Value) -> Result<bool> {
        let c = self.client()?;
        match type_name {
            "ceph_rbd_snapshot" => snapshot::name_is_free(&*c, planned).await,
            "ceph_client" => auth::name_is_free(&*c, planned).await,
            _ => Ok(true),
        }
    }

    async fn prepare_undo(&self, type_name: &str, _id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        match type_name {
            "ceph_rbd_image" => Ok(image::prepare_undo(change)),
            _ => Ok(None),
        }
    }

    async fn retire(&self, type_name: &str, id: Uuid, prior: &Value, undo: &UndoRecord) -> Result<()> {
        match type_name {
            "ceph_rbd_image" => image::retire(&*self.client()?, prior, undo).await,
            _ => self.delete(type_name, id, prior).await,
        }
    }

    async fn undo(&self, type_name: &str, _id: Uuid, undo: &UndoRecord) -> Result<Value> {
        match type_name {
            "ceph_rbd_image" => image::undo(&*self.client()?, undo).await,
            other => Err(ProviderError::new(format!("{other} cannot undo from a record"))),
        }
    }

    async fn discard_undo(&self, type_name: &str, _id: Uuid, undo: &UndoRecord) -> Result<()> {
        match type_name {
            "ceph_rbd_image" => image::discard_undo(&*self.client()?, undo).await,
            _ => Ok(()),
        }
    }

    async fn import(&self, type_name: &str, id: Uuid, import_id: &str) -> Result<Imported> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::import(&*c, id, import_id).await,
            "ceph_rbd_image" => image::import(&*c, id, import_id).await,
            _ => self.lookup(type_name, import_id).await?.ok_or_else(|| ProviderError::new(format!("no {type_name} {import_id:?} to import"))),
        }
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        let c = self.client()?;
        match type_name {
            "ceph_pool" => pool::lookup(&*c, import_id).await,
            "ceph_rbd_image" => image::lookup(&*c, import_id).await,
            "ceph_rbd_snapshot" => snapshot::lookup(&*c, import_id).await,
            "ceph_client" => auth::lookup(&*c, import_id).await,
            other => Err(unknown(other)),
        }
    }

    async fn read_data(&self, type_name: &str, _config: &Value) -> Result<Value> {
        match type_name {
            "ceph_cluster" => cluster::read(&*self.client()?).await,
            other => Err(ProviderError::new(format!("the ceph provider has no data source {other}"))),
        }
    }
}
