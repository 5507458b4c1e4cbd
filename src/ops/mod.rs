//! Operations: what the commands do, composed from the layers below. This is
//! the only engine layer that touches the world (files, state store,
//! providers); commands are thin wrappers over these functions.

use crate::apply::{self, ApplyContext, ApplyReport, Event, Journal};
use crate::config::vars::{self, VarArg};
use crate::config::{self, Config, Diagnostics, Sources};
use crate::graph::Analysis;
use crate::plan::{self, Action, Drift, Plan, PlanInput, PlanMode, PlanOptions, Schemas};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strata_provider::{Instance, Provider, ProviderFactory, Value};
use strata_state::{Access, Backend, InstanceRecord, LockInfo, Operation, StateError, StateStore, Write};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

mod applying;
mod backend_init;
mod console;
mod encryption;
mod import;
mod logged;
mod planning;
mod recover;
mod refresh;
mod remote_state;
mod state_edit;
mod state_move;
mod workspaces;

pub use applying::{apply, ApplyOptions};
pub use backend_init::{init_backend, migrate_state, BackendInit};
pub use console::Console;
pub use encryption::{ciphers, Ciphers};
pub use import::import;
pub use planning::{load_saved_plan, plan, read_plan_file, save_plan, PlanRequest, Planned};
pub use recover::reconcile;
pub use refresh::refresh;
pub use state_edit::{state_mv, state_rm};
pub use state_move::{state_pull, state_push, Pushed};
pub use workspaces::{delete_workspace, remember_workspace, selected_workspace, workspace_overridden, DeleteRefusal, WORKSPACE_ENV};

/// Why an operation failed.
#[derive(Debug)]
pub enum OpError {
    /// Problems in the configuration, with the sources to render them.
    Config(Box<Sources>, Diagnostics),
    State(StateError),
    Message(String),
}

impl From<StateError> for OpError {
    fn from(e: StateError) -> OpError {
        OpError::State(e)
    }
}

impl From<String> for OpError {
    fn from(e: String) -> OpError {
        OpError::Message(e)
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// A working directory: its configuration files, its backend, and the
/// state of the workspace selected in it.
pub struct Workspace {
    pub dir: PathBuf,
    pub backend: Arc<dyn Backend>,
    /// The selected workspace (`terraform.workspace` in expressions).
    pub name: String,
    pub store: Arc<dyn StateStore>,
    /// How saved plans are encrypted (the store encrypts the state itself).
    pub plan_encryption: Arc<strata_state::Encryption>,
    factories: Vec<Arc<dyn ProviderFactory>>,
    /// The configuration opening read (for the backend), kept for the first
    /// operation that loads it, so a command parses its files once.
    opened: std::sync::Mutex<Option<(Config, Diagnostics)>>,
}

impl Workspace {
    /// The working directory `dir`, with the selected workspace's state open
    /// for commands that change it.
    pub fn open(dir: &Path) -> OpResult<Workspace> {
        Self::open_with(dir, Access::ReadWrite)
    }

    /// The workspace for commands that take the lock but mostly read the
    /// state (plan): as [`Workspace::open`], and the backend may keep less
    /// of what it reads in memory. `apply` plans too, and keeps `open`'s
    /// buffers for its writes.
    pub fn open_read_mostly(dir: &Path) -> OpResult<Workspace> {
        Self::open_with(dir, Access::ReadMostly)
    }

    /// The workspace for commands that only read the state: they write
    /// nothing, and work on a read-only state and during another's apply.
    pub fn open_read_only(dir: &Path) -> OpResult<Workspace> {
        Self::open_with(dir, Access::ReadOnly)
    }

    fn open_with(dir: &Path, access: Access) -> OpResult<Workspace> {
        let (config, diags) = Config::load(dir);
        let ciphers = ciphers(&config)?;
        let backend = backend_for(dir, config.backend.as_ref(), ciphers.state)?;
        let name = selected_workspace(dir)?;
        let store = backend.open(&name, access)?;
        Ok(Workspace { dir: dir.to_owned(), backend, name, store, plan_encryption: ciphers.plan, factories: crate::providers::factories(), opened: std::sync::Mutex::new(Some((config, diags))) })
    }

    /// The workspace's configuration: the one read when it was opened the
    /// first time, read again from the files after that.
    pub fn load_config(&self) -> (Config, Diagnostics) {
        let opened = self.opened.lock().map(|mut o| o.take()).unwrap_or_default();
        opened.unwrap_or_else(|| Config::load(&self.dir))
    }

    pub fn schemas(&self) -> Schemas {
        Schemas(self.factories.iter().map(|f| (f.name().to_owned(), f.schema())).collect())
    }

    fn factory(&self, name: &str) -> Option<&Arc<dyn ProviderFactory>> {
        self.factories.iter().find(|f| f.name() == name)
    }
}

/// The backend a configuration names, with the settings `strata init`
/// saved; the backends themselves are chosen in [`crate::backend`].
/// `encryption` is the state's cipher: the backend stores what it seals.
pub fn backend_for(
    dir: &Path,
    config: Option<&config::Backend>,
    encryption: Arc<strata_state::Encryption>,
) -> OpResult<Arc<dyn Backend>> {
    Ok(crate::backend::open(dir, &crate::backend::Choice::for_dir(dir, config), encryption))
}

/// A configuration loaded, checked and with its variables resolved.
pub struct Loaded {
    pub config: Arc<Config>,
    pub analysis: Analysis,
    pub variables: BTreeMap<String, Value>,
    pub schemas: Schemas,
    /// Warnings (errors make loading fail).
    pub warnings: Diagnostics,
}

/// Loads and validates the configuration with the given variables.
pub fn load(ws: &Workspace, var_args: &[VarArg]) -> OpResult<Loaded> {
    let (mut config, mut diags) = ws.load_config();
    config.workspace = Some(ws.name.clone());
    let schemas = ws.schemas();
    let (analysis, more) = plan::validate(&config, &schemas);
    diags.extend(more);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let (variables, more) = vars::resolve(&mut config, var_args, &env);
    crate::redact::remember(variables.values());
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(config.sources), diags));
    }
    Ok(Loaded { config: Arc::new(config), analysis, variables, schemas, warnings: diags })
}

/// `strata validate`: every problem at once, without touching state.
pub fn validate(ws: &Workspace) -> OpResult<Diagnostics> {
    let (config, mut diags) = ws.load_config();
    let (analysis, more) = plan::validate(&config, &ws.schemas());
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(config.sources), diags));
    }
    // Validation ends the command: the model and its analysis are left to
    // the exit of the process, which frees them at once, instead of freeing
    // every expression one by one (as `Planned::release` does for a plan).
    std::mem::forget((config, analysis));
    Ok(diags)
}

/// The modules a configuration calls, resolved from their local sources:
/// (address, directory).
pub fn modules(ws: &Workspace) -> Vec<(String, PathBuf)> {
    let (config, _) = ws.load_config();
    config
        .modules()
        .into_iter()
        .skip(1)
        .map(|(path, c)| (path.iter().map(|m| format!("module.{m}")).collect::<Vec<_>>().join("."), c.dir.clone()))
        .collect()
}

/// Holds the state lock for the lifetime of the guard.
pub struct LockGuard {
    store: Arc<dyn StateStore>,
    info: LockInfo,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.store.unlock(&self.info);
    }
}

/// Takes the state lock; returns a warning if a dead holder's lock was broken.
pub fn lock(ws: &Workspace, operation: &str) -> OpResult<(LockGuard, Option<String>)> {
    let info = LockInfo::for_this_process(operation);
    let started = std::time::Instant::now();
    let broken = ws.store.lock(&info)?;
    tracing::debug!(operation, duration = ?started.elapsed(), broke_stale = broken.is_some(), "state lock acquired");
    let warning = broken.map(|b| format!("broke a stale state lock left by a process that no longer runs: {b}"));
    Ok((LockGuard { store: ws.store.clone(), info }, warning))
}

/// Takes the state lock like [`lock`], but while another process holds it,
/// retries until `timeout` has passed (`-lock-timeout`, Terraform's
/// behaviour); other errors end it at once. Any [`StateStore`] whose `lock`
/// reports [`StateError::Locked`] gets the waiting for free.
pub fn lock_waiting(ws: &Workspace, operation: &str, timeout: std::time::Duration) -> OpResult<(LockGuard, Option<String>)> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        match lock(ws, operation) {
            Err(OpError::State(StateError::Locked(_))) if std::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Configures one provider instance per configuration address that any
/// resource, state record or pending intent uses.
pub async fn configure_providers(
    ws: &Workspace,
    loaded: &Loaded,
    extra: impl IntoIterator<Item = String>,
) -> OpResult<HashMap<String, Arc<dyn Provider>>> {
    let mut wanted: BTreeSet<String> = loaded
        .config
        .modules()
        .into_iter()
        .flat_map(|(_, c)| c.resources.values().map(|r| r.provider_config_addr()).collect::<Vec<_>>())
        .collect();
    wanted.extend(loaded.config.providers.iter().map(|p| p.config_addr()));
    wanted.extend(extra);
    let mut out = HashMap::new();
    configure_more_providers(ws, loaded, wanted, &mut out).await?;
    Ok(out)
}

/// Configures a provider instance for each address of `wanted` that
/// `configured` does not hold yet, and adds it there.
pub async fn configure_more_providers(
    ws: &Workspace,
    loaded: &Loaded,
    wanted: impl IntoIterator<Item = String>,
    configured: &mut HashMap<String, Arc<dyn Provider>>,
) -> OpResult<()> {
    let wanted: BTreeSet<String> = wanted.into_iter().filter(|addr| !configured.contains_key(addr)).collect();
    for addr in wanted {
        let name = addr.split('.').next().unwrap_or(&addr).to_owned();
        let factory = ws.factory(&name).ok_or_else(|| match crate::providers::left_out(&name) {
            Some(why) => format!("{addr}: {why}"),
            None => format!("unknown provider {name:?} (used by {addr})"),
        })?;
        let provider = logged::Logged::wrap(&addr, factory.instantiate());
        let schema = factory.schema();
        let config_value = match loaded.config.provider_block(&addr) {
            Some(block) => {
                let world_instances = HashMap::new();
                let expansions = HashMap::new();
                let calls = HashMap::new();
                let names = plan::World::new(&loaded.config, &loaded.variables, &world_instances, &expansions, &calls);
                let scope = config::eval::Scope::new(&names);
                let mut diags = Diagnostics::default();
                let v = plan::eval_body(&block.body, &schema.provider, &scope, &mut diags);
                if diags.has_errors() {
                    return Err(OpError::Config(Box::new(loaded.config.sources.clone()), diags));
                }
                v
            }
            None => Value::Map(BTreeMap::new().into()),
        };
        crate::redact::remember([&config_value]);
        provider
            .configure(&config_value.clone().deep_unmark())
            .await
            .map_err(|e| format!("configuring provider {addr}: {}", crate::redact::provider_error(e, [&config_value])))?;
        configured.insert(addr, provider);
    }
    Ok(())
}
