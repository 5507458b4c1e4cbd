//! One node of the walk: the provider calls for one instance, each under a
//! durable intent, each recorded with its undo step in one transaction.

use super::{deposed_key, Shared};
use crate::addr::{parse_instance, InstanceAddr, InstanceKey};
use crate::config::eval::Scope;
use crate::config::{Diagnostics, Resource};
use crate::plan::{eval_body, mark_result, mark_sensitive, propose, Action, ResourceChange, World};
use std::borrow::Cow;
use std::sync::Arc;
use strata_provider::{Block, Provider, UndoRecord, Undoable, Value};
use strata_state::{InstanceRecord, Intent, Operation, UndoStep, Write};
use uuid::Uuid;

fn provider<'a>(shared: &'a Shared, change: &ResourceChange) -> Result<&'a Arc<dyn Provider>, String> {
    shared
        .cx
        .providers
        .get(&*change.provider)
        .ok_or_else(|| format!("provider {} is not configured", change.provider))
}

fn schema<'a>(shared: &'a Shared, change: &ResourceChange) -> Result<&'a Block, String> {
    let name = crate::config::provider_for_type(&change.type_name);
    let provider_name = change.provider.split('.').next().unwrap_or(name);
    let mode = if change.data { crate::addr::Mode::Data } else { crate::addr::Mode::Managed };
    shared.cx.schemas.resource(provider_name, mode, &change.type_name).ok_or_else(|| format!("no schema for {}", change.type_name))
}

/// Makes an instance's current values known to its dependents (and their
/// secrets to the log scrubber).
fn remember_in_world(shared: &Shared, addr: crate::addr::InstanceAddr, value: Value) {
    crate::redact::remember([&value]);
    shared.world.lock().expect("world lock").insert(addr, value);
}

/// Which of an instance's conditions to check.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conditions {
    /// Before the call, with the values its dependencies have now.
    Pre,
    /// After it, with the instance's new state (from the world) as `self`.
    Post,
}

/// Checks the instance's preconditions or postconditions with real values.
fn check_conditions(shared: &Shared, change: &ResourceChange, node: &Node<'_>, which: Conditions) -> Result<(), String> {
    let Some(resource) = node.resource else { return Ok(()) };
    let (kind, conditions) = match which {
        Conditions::Pre => ("precondition", &resource.lifecycle.preconditions),
        Conditions::Post => ("postcondition", &resource.lifecycle.postconditions),
    };
    if conditions.is_empty() {
        return Ok(());
    }
    let addr = &node.addr;
    let world = shared.world.lock().expect("world lock");
    let root = World::new(&shared.cx.config, &shared.variables, &world, &shared.expansions, &shared.calls).applying();
    let names = root.at(&addr.module).ok_or_else(|| format!("module {} is not in the configuration", addr.module))?;
    let mut scope = Scope::new(&names);
    if which == Conditions::Post {
        scope.self_value = Some(world.get(addr).cloned().unwrap_or_default());
    }
    match &addr.key {
        InstanceKey::Index(i) => scope.count_index = Some(*i),
        InstanceKey::Key(k) => scope.each = Some((Value::from(k.as_str()), change.each_value.as_deref().cloned().unwrap_or_default())),
        InstanceKey::None => {}
    }
    for v in conditions {
        match crate::config::eval::condition(v, &scope) {
            crate::config::eval::Condition::Failed(message) => return Err(format!("{kind} failed: {message}")),
            crate::config::eval::Condition::Error(e) => return Err(format!("{kind} could not be evaluated: {}", e.message)),
            crate::config::eval::Condition::Unknown => return Err(format!("{kind} is still unknown after apply")),
            crate::config::eval::Condition::Passed => {}
        }
    }
    Ok(())
}

/// Re-evaluates the instance's configuration now that its dependencies have
/// their real values, and merges it over the prior state.
fn final_values(shared: &Shared, change: &ResourceChange, node: &Node<'_>, prior: Option<&Value>) -> Result<Value, String> {
    let (addr, schema) = (&node.addr, node.schema);
    let resource = node.resource.ok_or_else(|| format!("{} is not in the configuration", change.address))?;
    let world = shared.world.lock().expect("world lock");
    let stable = shared.stable.lock().expect("stable values lock");
    let root = World::new(&shared.cx.config, &shared.variables, &world, &shared.expansions, &shared.calls).applying().remembering_stable(&stable);
    let names = root.at(&addr.module).ok_or_else(|| format!("module {} is not in the configuration", addr.module))?;
    let mut scope = Scope::new(&names);
    match &addr.key {
        InstanceKey::Index(i) => scope.count_index = Some(*i),
        InstanceKey::Key(k) => scope.each = Some((Value::from(k.as_str()), change.each_value.as_deref().cloned().unwrap_or_default())),
        InstanceKey::None => {}
    }
    let mut diags = Diagnostics::default();
    let config_value = eval_body(&resource.body, schema, &scope, &mut diags);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(format!("evaluating {}: {}", change.address, d.message));
    }
    let mut values = if change.data { config_value } else { propose(&config_value, prior, schema) };
    // ignore_changes keeps prior values at apply time too.
    if let (Some(p), Value::Map(m)) = (prior, &mut values) {
        for (name, v) in m.iter_mut() {
            if resource.lifecycle.ignore_all_changes || resource.lifecycle.ignore_changes.contains(name) {
                *v = p.get(name).clone();
            }
        }
    }
    if values.contains_unknown() && change.data {
        return Err(format!("{} still has unknown values at apply time", change.address));
    }
    crate::redact::remember([&values]);
    Ok(values)
}

fn record(change: &ResourceChange, id: Uuid, attributes: Value) -> InstanceRecord {
    InstanceRecord {
        address: change.address.clone(),
        id,
        type_name: change.type_name.to_string(),
        provider: change.provider.to_string(),
        attributes,
        dependencies: change.dependencies.clone(),
        create_before_destroy: change.create_before_destroy,
    }
}

fn intent(shared: &Shared, change: &ResourceChange, op: Operation, id: Uuid, planned: Option<Value>, prior: Option<InstanceRecord>) -> Intent {
    Intent {
        apply_id: shared.apply_id,
        operation: op,
        address: prior.as_ref().map(|p| p.address.clone()).unwrap_or_else(|| change.address.clone()),
        id,
        type_name: change.type_name.to_string(),
        provider: change.provider.to_string(),
        planned,
        prior,
        rollback: false,
        dependencies: change.dependencies.clone(),
        create_before_destroy: change.create_before_destroy,
        undo: None,
    }
}

/// Journals `intent`, then makes the call. Errors carry the intent's
/// sequence number (0 when the intent could not even be written).
async fn journaled<T>(
    shared: &Shared,
    intent: Intent,
    call: impl std::future::Future<Output = Result<T, String>>,
) -> Result<(u64, T), (u64, String)> {
    let seq = shared.cx.store.next_seq(1).map_err(|e| (0, e.to_string()))?;
    super::burst::commit_intent(&shared.cx.journal, vec![Write::Intent { seq, intent }]).await.map_err(|e| (seq, e))?;
    call.await.map(|v| (seq, v)).map_err(|e| (seq, e))
}

/// Resolves a failed call's intent together with `writes` (what the object
/// looks like now).
async fn resolve_failed(shared: &Shared, seq: u64, mut writes: Vec<Write>) -> Result<(), String> {
    if seq == 0 {
        return Ok(());
    }
    writes.push(Write::Resolve { seq });
    super::burst::commit_outcome(&shared.cx.journal, writes).await
}

/// What a node looks up once about its instance: the address, the
/// configuration block (absent for an orphan), the schema and provider.
struct Node<'a> {
    addr: InstanceAddr,
    resource: Option<&'a Resource>,
    schema: &'a Block,
    provider: &'a Arc<dyn Provider>,
}

impl<'a> Node<'a> {
    fn of(shared: &'a Shared, change: &ResourceChange) -> Result<Node<'a>, String> {
        let addr = parse_instance(&change.address)?;
        let resource = shared.cx.config.module(&addr.module.static_path()).and_then(|c| c.resource(&addr.resource));
        Ok(Node { resource, schema: schema(shared, change)?, provider: provider(shared, change)?, addr })
    }
}

/// `value` without its sensitive marks: borrowed when it has none, which is
/// the usual case, instead of copied.
fn unmarked(value: &Value) -> Cow<'_, Value> {
    if value.contains_sensitive() {
        Cow::Owned(value.clone().deep_unmark())
    } else {
        Cow::Borrowed(value)
    }
}

/// [`mark_result`] without its walks when the plan held nothing sensitive:
/// then only the schema's sensitive attributes are marked.
fn marked_result(value: Value, planned: &Value, schema: &Block) -> Value {
    if planned.contains_sensitive() {
        mark_result(value, planned, schema)
    } else {
        mark_sensitive(value, schema)
    }
}

pub(super) async fn main_node(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    let node = Node::of(shared, change)?;
    let (schema, provider) = (node.schema, node.provider);
    match change.action {
        Action::Read => {
            let config = final_values(shared, change, &node, None)?;
            let value = provider.read_data(&change.type_name, &unmarked(&config)).await.map_err(|e| crate::redact::provider_error(e, [&config]))?;
            remember_in_world(shared, node.addr, mark_sensitive(value, schema));
            Ok(())
        }
        Action::Create => {
            let planned = final_values(shared, change, &node, None)?;
            check_conditions(shared, change, &node, Conditions::Pre)?;
            let created = create(shared, provider, schema, change, planned, None).await?;
            remember_in_world(shared, node.addr.clone(), created);
            check_conditions(shared, change, &node, Conditions::Post)
        }
        Action::Update => {
            let prior = shared.cx.store_record(change)?;
            let planned = final_values(shared, change, &node, Some(&prior.attributes))?;
            check_conditions(shared, change, &node, Conditions::Pre)?;
            if *unmarked(&planned) == *unmarked(&prior.attributes) {
                return Ok(()); // The plan's unknowns resolved to the prior values.
            }
            let current = update(shared, provider, schema, change, &prior, planned).await?;
            remember_in_world(shared, node.addr.clone(), current.attributes);
            check_conditions(shared, change, &node, Conditions::Post)
        }
        Action::Replace => {
            let prior = shared.cx.store_record(change)?;
            let old_id = change.details().prior_id.unwrap_or(prior.id);
            if !change.create_before_destroy {
                retire(shared, provider, change, &prior).await?;
            }
            let planned = final_values(shared, change, &node, None)?;
            check_conditions(shared, change, &node, Conditions::Pre)?;
            let deposed = change.create_before_destroy.then(|| InstanceRecord { address: deposed_key(&change.address, old_id), ..prior.clone() });
            let created = create(shared, provider, schema, change, planned, deposed.map(|d| (d, prior))).await?;
            remember_in_world(shared, node.addr.clone(), created);
            check_conditions(shared, change, &node, Conditions::Post)
        }
        Action::NoOp | Action::Delete | Action::Forget => Ok(()),
    }
}

impl super::ApplyContext {
    /// The current state record of the instance a change is about.
    fn store_record(&self, change: &ResourceChange) -> Result<InstanceRecord, String> {
        let prior = change.prior.clone().ok_or_else(|| format!("{} has no prior state", change.address))?;
        Ok(record(change, change.details().prior_id.unwrap_or(change.id), prior))
    }
}

/// Creates an object under a durable intent, after checking that an object
/// found only by name would not be someone else's. With `replacing` (the
/// deposed copy and the record it replaces), the prior object of a
/// `create_before_destroy` replacement moves to its deposed key in the same
/// transaction that records the new one. Returns the new object's values.
async fn create(
    shared: &Shared,
    provider: &Arc<dyn Provider>,
    schema: &Block,
    change: &ResourceChange,
    planned: Value,
    mut replacing: Option<(InstanceRecord, InstanceRecord)>,
) -> Result<Value, String> {
    let raw = unmarked(&planned);
    if !provider.name_is_free(&change.type_name, &raw).await.map_err(|e| crate::redact::provider_error(e, [&planned]))? {
        return Err(format!(
            "a {} with this name already exists and Strata did not create it; it is left untouched. \
             To manage it, adopt it with `strata import {} ID` (or an import block), or choose another name",
            change.type_name, change.address
        ));
    }
    let id = change.id;
    let intent = intent(shared, change, Operation::Create, id, Some(planned.clone()), None);
    let call = async { provider.create(&change.type_name, id, &raw).await.map_err(|e| crate::redact::provider_error(e, [&planned])) };
    let (seq, outcome) = match journaled(shared, intent, call).await {
        Ok((seq, value)) => (seq, Ok(value)),
        Err((seq, e)) => (seq, Err(e)),
    };
    let created = match outcome {
        Ok(value) => Ok(value),
        // A failed create may still have left an object (ours: its name was
        // free): adopt it so that nothing exists that the state does not know.
        Err(e) => Err((e, provider.find_by_identity(&change.type_name, id, &raw).await.ok().flatten())),
    };
    let mut writes = Vec::with_capacity(4);
    let mut record_created = |value: Value, writes: &mut Vec<Write>| {
        let new = record(change, id, marked_result(value, &planned, schema));
        let attributes = new.attributes.clone();
        writes.push(Write::PutInstance(new.clone()));
        let step = match replacing.take() {
            Some((deposed, old)) => {
                writes.push(Write::PutInstance(deposed));
                UndoStep::Replaced { old, new }
            }
            None => UndoStep::Created { record: new },
        };
        writes.push(Write::PutStep { seq, step });
        attributes
    };
    match created {
        Ok(value) => {
            let attributes = record_created(value, &mut writes);
            writes.push(Write::Resolve { seq });
            super::burst::commit_outcome(&shared.cx.journal, writes).await?;
            Ok(attributes)
        }
        Err((e, found)) => {
            if let Some(value) = found {
                record_created(value, &mut writes);
            }
            resolve_failed(shared, seq, writes).await?;
            Err(e)
        }
    }
}

/// Updates an object in place under a durable intent that carries the
/// provider's undo record.
async fn update(
    shared: &Shared,
    provider: &Arc<dyn Provider>,
    schema: &Block,
    change: &ResourceChange,
    prior: &InstanceRecord,
    planned: Value,
) -> Result<InstanceRecord, String> {
    let (raw_prior, raw_planned) = (unmarked(&prior.attributes), unmarked(&planned));
    let undo: Option<UndoRecord> = provider
        .prepare_undo(&change.type_name, change.id, Undoable::Update { prior: &raw_prior, planned: &raw_planned })
        .await
        .map_err(|e| crate::redact::provider_error(e, [&planned, &prior.attributes]))?;
    let mut intent = intent(shared, change, Operation::Update, change.id, Some(planned.clone()), Some(prior.clone()));
    intent.undo = undo.clone();
    let call = async { provider.update(&change.type_name, change.id, &raw_prior, &raw_planned, undo.as_ref()).await.map_err(|e| crate::redact::provider_error(e, [&planned, &prior.attributes])) };
    match journaled(shared, intent, call).await {
        Ok((seq, value)) => {
            let current = record(change, change.id, marked_result(value, &planned, schema));
            let step = UndoStep::Updated { prior: prior.clone(), current: current.clone(), undo };
            super::burst::commit_outcome(&shared.cx.journal, vec![Write::PutInstance(current.clone()), Write::PutStep { seq, step }, Write::Resolve { seq }]).await?;
            Ok(current)
        }
        Err((seq, e)) => {
            // Record what the object looks like now, whatever happened, and
            // keep the undo record: the call may have got half-way.
            let mut writes = Vec::new();
            let now = provider.find_by_identity(&change.type_name, change.id, &raw_prior).await.ok().flatten();
            let current = match now {
                Some(now) => {
                    let current = record(change, change.id, marked_result(now, &planned, schema));
                    writes.push(Write::PutInstance(current.clone()));
                    Some(current)
                }
                None => None,
            };
            let changed = current.as_ref().is_some_and(|c| *unmarked(&c.attributes) != *raw_prior);
            if changed || undo.is_some() {
                let step = UndoStep::Updated { prior: prior.clone(), current: current.unwrap_or_else(|| prior.clone()), undo };
                writes.push(Write::PutStep { seq, step });
            }
            resolve_failed(shared, seq, writes).await?;
            Err(e)
        }
    }
}

/// Takes the old object of a replacement without `create_before_destroy`
/// out of the way: kept aside when the provider can (an undo record), else
/// deleted, which rollback cannot undo (the plan said so).
async fn retire(shared: &Shared, provider: &Arc<dyn Provider>, change: &ResourceChange, prior: &InstanceRecord) -> Result<(), String> {
    let attrs = unmarked(&prior.attributes);
    let undo = provider
        .prepare_undo(&prior.type_name, prior.id, Undoable::Retire { prior: &attrs })
        .await
        .map_err(|e| crate::redact::provider_error(e, [&prior.attributes]))?;
    let mut intent = intent(shared, change, Operation::Delete, prior.id, None, Some(prior.clone()));
    intent.undo = undo.clone();
    let call = async {
        match &undo {
            Some(undo) => provider.retire(&prior.type_name, prior.id, &attrs, undo).await,
            None => provider.delete(&prior.type_name, prior.id, &attrs).await,
        }
        .map_err(|e| crate::redact::provider_error(e, [&prior.attributes]))
    };
    match journaled(shared, intent, call).await {
        Ok((seq, ())) => {
            let step = UndoStep::Retired { prior: prior.clone(), undo };
            let writes = vec![Write::RemoveInstance { address: prior.address.clone() }, Write::PutStep { seq, step }, Write::Resolve { seq }];
            super::burst::commit_outcome(&shared.cx.journal, writes).await
        }
        Err((seq, e)) => {
            resolve_failed(shared, seq, Vec::new()).await?;
            Err(e)
        }
    }
}

/// Deletes an object under a durable intent and removes it from state
/// (cleanup phase: not undone).
async fn destroy(shared: &Shared, provider: &Arc<dyn Provider>, change: &ResourceChange, prior: &InstanceRecord) -> Result<(), String> {
    let intent = intent(shared, change, Operation::Delete, prior.id, None, Some(prior.clone()));
    let attrs = unmarked(&prior.attributes);
    let call = async { provider.delete(&prior.type_name, prior.id, &attrs).await.map_err(|e| crate::redact::provider_error(e, [&prior.attributes])) };
    match journaled(shared, intent, call).await {
        Ok((seq, ())) => {
            super::burst::commit_outcome(&shared.cx.journal, vec![Write::RemoveInstance { address: prior.address.clone() }, Write::Resolve { seq }]).await
        }
        Err((seq, e)) => {
            resolve_failed(shared, seq, Vec::new()).await?;
            Err(e)
        }
    }
}

pub(super) async fn destroy_node(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    if change.action == Action::Forget {
        return shared.cx.journal.commit(vec![Write::RemoveInstance { address: change.address.clone() }]).await;
    }
    let provider = provider(shared, change)?.clone();
    let prior = InstanceRecord {
        address: change.address.clone(),
        ..record(change, change.id, change.prior.clone().ok_or_else(|| format!("{} has no prior state", change.address))?)
    };
    destroy(shared, &provider, change, &prior).await?;
    if let Ok(addr) = parse_instance(&change.address) {
        shared.world.lock().expect("world lock").remove(&addr);
    }
    Ok(())
}

/// Adopts the object an `import` block names, under a durable intent (the
/// provider may re-tag it with the instance's identity).
pub(super) async fn import_node(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    let import_id = change.details().importing.clone().unwrap_or_default();
    let provider = provider(shared, change)?.clone();
    let planned = Value::object([("import_id", Value::from(import_id.as_str()))]);
    let undo = provider
        .prepare_undo(&change.type_name, change.id, Undoable::Import { import_id: &import_id })
        .await
        .map_err(|e| e.message)?;
    let mut intent = intent(shared, change, Operation::Import, change.id, Some(planned), None);
    intent.undo = undo.clone();
    let call = async { provider.import(&change.type_name, change.id, &import_id).await.map_err(|e| format!("importing {}: {}", change.address, e.message)) };
    match journaled(shared, intent, call).await {
        Ok((seq, imported)) => {
            let mut adopted = record(change, imported.id.unwrap_or(change.id), imported.state);
            if let Ok(schema) = schema(shared, change) {
                adopted.attributes = mark_sensitive(adopted.attributes, schema);
            }
            if let Ok(addr) = parse_instance(&change.address) {
                remember_in_world(shared, addr, adopted.attributes.clone());
            }
            let step = UndoStep::Imported { record: adopted.clone(), undo };
            super::burst::commit_outcome(&shared.cx.journal, vec![Write::PutInstance(adopted), Write::PutStep { seq, step }, Write::Resolve { seq }]).await
        }
        Err((seq, e)) => {
            resolve_failed(shared, seq, Vec::new()).await?;
            Err(e)
        }
    }
}
