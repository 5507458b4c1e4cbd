//! `plan`: reconcile, refresh, look up imports, plan (pure), read data
//! sources, let providers refine; and saved plan files.

use super::*;

pub struct PlanRequest {
    pub vars: Vec<VarArg>,
    pub options: PlanOptions,
    pub refresh: bool,
    /// Provider reads in flight at once (`plan -parallelism`).
    pub parallelism: usize,
}

/// The result of planning, with what it took to make it.
pub struct Planned {
    pub plan: Plan,
    pub loaded: Loaded,
    pub providers: HashMap<String, Arc<dyn Provider>>,
    pub state: strata_state::Snapshot,
    pub reconciled: Vec<String>,
    /// Warnings of planning (failed `check` assertions...).
    pub warnings: Diagnostics,
}

impl Planned {
    /// Ends a command that planned. The providers are dropped (they may hold
    /// connections to close); the plan, the state and the configuration are
    /// left to the exit of the process, which frees them at once, instead of
    /// freeing every value one by one (a tenth of a large no-op plan).
    pub fn release(self) {
        let Planned { plan, loaded, providers, state, .. } = self;
        drop(providers);
        std::mem::forget((plan, loaded, state));
    }
}

/// Reconciles, refreshes and plans. The caller holds the lock.
pub async fn plan(ws: &Workspace, req: &PlanRequest) -> OpResult<Planned> {
    // State is read on a second thread while the configuration is checked
    // and its providers are configured: none needs the others. At 100,000
    // instances reading and checking are each about a second; for a small
    // apply, opening the database for writing (a few fdatasyncs) costs as
    // much as configuring a provider (a connection and a first read). A
    // configuration error is still the one reported first, then a state
    // error, then a provider's. Providers only state names are configured
    // once it is read.
    let store = ws.store.clone();
    let reading = tokio::task::spawn_blocking(move || store.snapshot());
    let read = || async { reading.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())) };
    let loaded = match load(ws, &req.vars) {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = read().await;
            return Err(e);
        }
    };
    let (configured, prior) = tokio::join!(configure_providers(ws, &loaded, Vec::new()), read());
    let prior = prior?;
    crate::redact::remember(prior.instances.values().map(|r| &r.attributes));
    let mut providers = configured?;
    configure_more_providers(ws, &loaded, providers_in_use(ws, &prior)?, &mut providers).await?;
    let reconciled = reconcile(ws, &providers, &loaded.schemas).await?;
    let state = if reconciled.is_empty() { prior } else { ws.store.snapshot()? };
    let (state, drift, refreshed) = if req.refresh { refresh(state, &providers, req.parallelism).await? } else { (state, Vec::new(), BTreeMap::new()) };

    let mut state = state;
    let moved = plan::apply_moves(&loaded.config, &mut state);
    let importing = lookup_imports(&loaded, &providers, &mut state).await?;

    // Read data sources whose configuration is known, then plan again so
    // their values flow into dependents; repeat while new reads appear.
    let mut data: BTreeMap<String, Value> = BTreeMap::new();
    let (mut plan, warnings) = loop {
        let input = PlanInput {
            config: &loaded.config,
            analysis: &loaded.analysis,
            variables: &loaded.variables,
            state: &state,
            schemas: &loaded.schemas,
            options: &req.options,
            data: &data,
            drift: drift.clone(),
            refreshed: refreshed.clone(),
            moved: &moved,
            importing: &importing,
        };
        let (plan, mut diags) = plan::plan(input);
        crate::redact::remember(plan.changes.iter().flat_map(|c| c.planned.iter().chain(&c.prior)));
        validate_with_providers(&plan, &loaded, &providers, &mut diags);
        if diags.has_errors() {
            return Err(OpError::Config(Box::new(loaded.config.sources.clone()), diags));
        }
        let reads: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Read && !c.planned.as_ref().is_some_and(Value::contains_unknown))
            .collect();
        if reads.is_empty() || req.options.mode == PlanMode::Destroy {
            break (plan, diags);
        }
        for c in reads {
            let provider = providers.get(&*c.provider).ok_or_else(|| format!("provider {} is not configured", c.provider))?;
            let config = c.planned.clone().unwrap_or_default().deep_unmark();
            let value = if *c.type_name == *remote_state::REMOTE_STATE {
                remote_state::read_remote_state(ws, &c.address, &config)?
            } else {
                provider.read_data(&c.type_name, &config).await.map_err(|e| format!("reading {}: {}", c.address, crate::redact::provider_error(e, c.planned.iter())))?
            };
            data.insert(c.address.clone(), value);
        }
    };
    refine_with_providers(&mut plan, &loaded.schemas, &providers).await?;
    let mut warnings = warnings;
    warnings.extend(review_with_providers(&mut plan, &loaded, &providers).await?);
    plan::mark_irreversible(&mut plan, &loaded.schemas);
    Ok(Planned { plan, loaded, providers, state, reconciled, warnings })
}

/// Finds the objects `import` blocks name and puts them in the planning
/// state under fresh identities. Nothing is changed until apply.
async fn lookup_imports(
    loaded: &Loaded,
    providers: &HashMap<String, Arc<dyn Provider>>,
    state: &mut strata_state::Snapshot,
) -> OpResult<BTreeMap<String, String>> {
    let mut importing = BTreeMap::new();
    for import in &loaded.config.imports {
        let address = import.to.to_string();
        if state.instances.contains_key(&address) {
            continue; // Already managed: the block has done its work.
        }
        let resource = loaded.config.resource(&import.to.resource).ok_or_else(|| {
            OpError::Config(
                Box::new(loaded.config.sources.clone()),
                Diagnostics(vec![config::Diagnostic::error(
                    format!("import into {address}, which is not in the configuration"),
                    import.span.clone(),
                    "add a resource block for it",
                )]),
            )
        })?;
        let instances = HashMap::new();
        let expansions = HashMap::new();
        let calls = HashMap::new();
        let names = plan::World::new(&loaded.config, &loaded.variables, &instances, &expansions, &calls);
        let id = config::eval::eval(&import.id.expr, &config::eval::Scope::new(&names))
            .ok()
            .and_then(|v| v.to_template_string())
            .ok_or_else(|| format!("the id of the import into {address} must be a string known at plan time"))?;
        let provider_addr = resource.provider_config_addr();
        let provider = providers.get(&provider_addr).ok_or_else(|| format!("provider {provider_addr} is not configured"))?;
        let found = provider
            .lookup(&import.to.resource.type_name, &id)
            .await
            .map_err(|e| format!("import into {address}: {e}"))?
            .ok_or_else(|| format!("import into {address}: no object with ID {id:?}"))?;
        state.instances.insert(
            address.clone(),
            InstanceRecord {
                address: address.clone(),
                id: found.id.unwrap_or_else(uuid::Uuid::new_v4),
                type_name: import.to.resource.type_name.clone(),
                provider: provider_addr,
                attributes: found.state,
                dependencies: Vec::new(),
                create_before_destroy: resource.lifecycle.create_before_destroy,
            },
        );
        importing.insert(address, id);
    }
    Ok(importing)
}

/// Provider-specific validation of every planned instance, reported at the
/// resource's block.
fn validate_with_providers(plan: &Plan, loaded: &Loaded, providers: &HashMap<String, Arc<dyn Provider>>, diags: &mut Diagnostics) {
    for change in &plan.changes {
        let (Some(planned), Some(provider)) = (&change.planned, providers.get(&*change.provider)) else { continue };
        if !change.is_change() {
            continue;
        }
        for (attr, message) in provider.validate(&change.type_name, &planned.clone().deep_unmark()) {
            let span = crate::addr::parse_instance(&change.address)
                .ok()
                .and_then(|a| loaded.config.module(&a.module.static_path()).and_then(|c| c.resource(&a.resource)))
                .map(|r| r.body.attr(&attr).map(|a| a.span.clone()).unwrap_or(r.header.clone()))
                .unwrap_or_default();
            let message = crate::redact::scrub(&message, [planned]);
            diags.push(config::Diagnostic::error(format!("{}: {message}", change.address), span, format!("invalid {attr}")));
        }
    }
}

/// Lets each provider review its part of the plan as a whole: errors refuse
/// the plan (reported at the resource's block); warnings become notes under
/// the change, or warnings of the plan when the instance does not change.
async fn review_with_providers(plan: &mut Plan, loaded: &Loaded, providers: &HashMap<String, Arc<dyn Provider>>) -> OpResult<Diagnostics> {
    use strata_provider::{ChangeAction, ReviewedChange};
    let mut diags = Diagnostics::default();
    let mut notes: Vec<(String, String)> = Vec::new();
    for (addr, provider) in providers {
        let changes: Vec<ReviewedChange> = plan
            .changes
            .iter()
            .filter(|c| !c.data && *c.provider == **addr)
            .map(|c| ReviewedChange {
                address: &c.address,
                type_name: &c.type_name,
                action: match c.action {
                    Action::Create => ChangeAction::Create,
                    Action::Update => ChangeAction::Update,
                    Action::Replace => ChangeAction::Replace,
                    Action::Delete | Action::Forget => ChangeAction::Delete,
                    Action::NoOp | Action::Read => ChangeAction::NoOp,
                },
                prior: c.prior.as_ref(),
                planned: c.planned.as_ref(),
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        // What the provider's messages must not quote.
        let secrets: Vec<&Value> = changes.iter().flat_map(|c| c.prior.into_iter().chain(c.planned)).collect();
        // Providers see values without marks, as everywhere else; only
        // values that carry marks are copied to drop them.
        fn unmark(v: Option<&Value>) -> Option<std::borrow::Cow<'_, Value>> {
            v.map(|v| if v.contains_sensitive() { std::borrow::Cow::Owned(v.clone().deep_unmark()) } else { std::borrow::Cow::Borrowed(v) })
        }
        // An unchanged instance's planned value is its prior one, shared:
        // looked at once.
        let same_tree = |c: &ReviewedChange| match (c.prior, c.planned) {
            (Some(Value::Map(a)), Some(Value::Map(b))) => a.shares(b) && a.kind == b.kind,
            _ => false,
        };
        let unmarked: Vec<_> = changes
            .iter()
            .map(|c| {
                let prior = unmark(c.prior);
                let planned = if same_tree(c) { prior.clone() } else { unmark(c.planned) };
                (prior, planned)
            })
            .collect();
        let changes: Vec<ReviewedChange> = changes
            .iter()
            .zip(&unmarked)
            .map(|(c, (prior, planned))| ReviewedChange { prior: prior.as_deref(), planned: planned.as_deref(), ..c.clone() })
            .collect();
        let review = provider
            .review_plan(&changes)
            .await
            .map_err(|e| format!("reviewing the plan with provider {addr}: {}", crate::redact::provider_error(e, secrets.iter().copied())))?;
        for (address, message) in review.errors {
            let message = crate::redact::scrub(&message, secrets.iter().copied());
            let span = crate::addr::parse_instance(&address)
                .ok()
                .and_then(|a| loaded.config.module(&a.module.static_path()).and_then(|c| c.resource(&a.resource)).map(|r| r.header.clone()))
                .unwrap_or_default();
            diags.push(config::Diagnostic::error(format!("{address}: {message}"), span, "refused by its provider"));
        }
        notes.extend(review.warnings.into_iter().map(|(address, note)| (address, crate::redact::scrub(&note, secrets.iter().copied()))));
    }
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(loaded.config.sources.clone()), diags));
    }
    let mut warnings = Diagnostics::default();
    for (address, note) in notes {
        match plan.changes.iter_mut().find(|c| c.address == address && c.is_change()) {
            Some(change) => change.edit_details(|d| d.notes.push(note)),
            None => warnings.push(config::Diagnostic::error(format!("{address}: {note}"), Default::default(), "").warning()),
        }
    }
    Ok(warnings)
}

/// Lets each provider refine its updates (e.g. a disk shrink is data-loss).
async fn refine_with_providers(plan: &mut Plan, schemas: &Schemas, providers: &HashMap<String, Arc<dyn Provider>>) -> OpResult<()> {
    for change in &mut plan.changes {
        if change.data || !matches!(change.action, Action::Create | Action::Update | Action::Replace) {
            continue;
        }
        let Some(planned) = change.planned.clone() else { continue };
        let provider_name = change.provider.split('.').next().unwrap_or_default().to_owned();
        let Some(schema) = schemas.resource(&provider_name, crate::addr::Mode::Managed, &change.type_name) else { continue };
        let Some(provider) = providers.get(&*change.provider) else { continue };
        let prior_raw = change.prior.clone().map(Value::deep_unmark);
        let proposed_raw = planned.clone().deep_unmark();
        let response = provider
            .plan(strata_provider::PlanRequest { type_name: &change.type_name, prior: prior_raw.as_ref(), proposed: &proposed_raw })
            .await
            .map_err(|e| format!("planning {}: {}", change.address, crate::redact::provider_error(e, [&planned].into_iter().chain(change.prior.as_ref()))))?;
        let notes = response.notes.iter().map(|n| crate::redact::scrub(n, [&planned].into_iter().chain(change.prior.as_ref()))).collect();
        let irreversible = response.irreversible.as_deref().map(|n| crate::redact::scrub(n, [&planned].into_iter().chain(change.prior.as_ref())));
        change.edit_details(|d| {
            d.notes = notes;
            d.irreversible = irreversible;
        });
        // The provider saw unmarked values; its planned values get the marks back.
        let refined_planned = response.planned.map(|p| plan::mark_result(p, &planned, schema));
        let (Some(prior), false) = (change.prior.clone(), change.details().reason.is_some() || change.action == Action::Create) else {
            if let Some(p) = refined_planned {
                change.planned = Some(p);
            }
            continue;
        };
        if response.disruptions.is_empty() && refined_planned.is_none() {
            continue;
        }
        let compare_to = if change.action == Action::Replace { plan::propose(&planned, Some(&prior), schema) } else { planned.clone() };
        let changed = plan::changed_attributes(&prior, &compare_to, schema);
        let was_replace = change.action == Action::Replace;
        plan::refine(change, schema, &changed, &response.disruptions);
        if was_replace && change.action != Action::Replace {
            // The provider can do it in place after all: keep the identity.
            if let Some(prior_id) = change.edit_details(|d| d.prior_id.take()) {
                change.id = prior_id;
            }
        }
        if let Some(p) = refined_planned {
            change.planned = Some(p);
        }
    }
    Ok(())
}

/// Reads a saved plan, decrypting it if the configuration encrypts plans.
pub fn read_plan_file(ws: &Workspace, path: &Path) -> OpResult<Plan> {
    let stored = std::fs::read(path).map_err(|e| format!("cannot read plan {}: {e}", path.display()))?;
    let bytes = ws
        .plan_encryption
        .decrypt(&format!("plan {}", path.display()), PLAN_AAD, &stored)
        .map_err(|e| OpError::Message(e.to_string()))?
        .plain;
    let saved: Plan = serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a Strata plan: {e}", path.display()))?;
    if saved.format_version != plan::PLAN_FORMAT_VERSION {
        return Err(OpError::Message(format!("plan format {} is not supported", saved.format_version)));
    }
    Ok(saved)
}

/// What binds an encrypted payload to being a saved plan.
const PLAN_AAD: &[u8] = b"strata saved plan";

/// Re-plans from a saved plan file's variables and checks it still holds.
pub async fn load_saved_plan(ws: &Workspace, path: &Path) -> OpResult<Planned> {
    let saved = read_plan_file(ws, path)?;
    let (mut config, mut diags) = ws.load_config();
    config.workspace = Some(ws.name.clone());
    let schemas = ws.schemas();
    let (analysis, more) = plan::validate(&config, &schemas);
    diags.extend(more);
    if diags.has_errors() {
        return Err(OpError::Config(Box::new(std::mem::take(&mut config.sources)), diags));
    }
    let loaded = Loaded { config: Arc::new(config), analysis, variables: saved.variables.clone(), schemas, warnings: diags };
    let state = ws.store.snapshot()?;
    crate::redact::remember(loaded.variables.values().chain(state.instances.values().map(|r| &r.attributes)));
    crate::redact::remember(saved.changes.iter().flat_map(|c| c.planned.iter().chain(&c.prior)));
    let providers = configure_providers(ws, &loaded, providers_in_use(ws, &state)?).await?;
    let reconciled = reconcile(ws, &providers, &loaded.schemas).await?;
    if !reconciled.is_empty() {
        return Err(OpError::Message(format!(
            "an interrupted apply was recovered first:\n{}\nso the saved plan no longer matches the state; plan again",
            reconciled.join("\n")
        )));
    }
    Ok(Planned { plan: saved, loaded, providers, state, reconciled, warnings: Diagnostics::default() })
}

/// The provider configurations that state, pending intents and an
/// interrupted apply's log refer to (beyond those the configuration uses).
fn providers_in_use(ws: &Workspace, state: &strata_state::Snapshot) -> OpResult<Vec<String>> {
    // One entry per provider, not per instance.
    let mut out: Vec<String> = state.instances.values().map(|r| r.provider.as_str()).collect::<BTreeSet<_>>().into_iter().map(str::to_owned).collect();
    out.extend(ws.store.pending_intents()?.into_iter().map(|(_, i)| i.provider));
    if let Some(log) = ws.store.apply_log()? {
        for (_, step) in log.steps {
            out.push(match step {
                strata_state::UndoStep::Created { record } | strata_state::UndoStep::Imported { record, .. } => record.provider,
                strata_state::UndoStep::Replaced { new, .. } => new.provider,
                strata_state::UndoStep::Updated { prior, .. } | strata_state::UndoStep::Retired { prior, .. } => prior.provider,
            });
        }
    }
    Ok(out)
}

/// Writes a plan file (mode 0600: it holds variable values).
pub fn save_plan(ws: &Workspace, plan: &Plan, path: &Path) -> OpResult<()> {
    let json = serde_json::to_vec_pretty(plan).map_err(|e| format!("encoding plan: {e}"))?;
    let bytes = ws.plan_encryption.encrypt(PLAN_AAD, &json);
    crate::private_file::write_private(path, &bytes)?;
    Ok(())
}
