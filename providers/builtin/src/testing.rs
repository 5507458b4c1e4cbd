//! The fault-injecting `testing` provider: `testing_object`s are JSON files
//! named by identity in the `dir` given in the provider block.
//!
//! It implements the whole undo contract the way a real provider should: an
//! update with an undo record first copies the object to `ID.undo-TOKEN`, a
//! retired object is renamed to `ID.retired-TOKEN`; `testing_plain` is the
//! same object without undo support, for the cases rollback cannot restore,
//! and with a stable computed `path`.
//! Faults: fail the Nth mutating call, or end the process (as `kill -9`
//! would) just before or just after the Nth call takes effect.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_provider::{
    Attribute, Block, Disruption, Imported, Instance, Nesting, PlanRequest, PlanResponse, Provider, ProviderError,
    ProviderFactory, ProviderSchema, Result, Scheduling, Type, UndoRecord, UndoSupport, Undoable, Value,
};
use uuid::Uuid;

/// Factory of the `testing` provider.
pub struct TestingFactory;

impl ProviderFactory for TestingFactory {
    fn name(&self) -> &'static str {
        "testing"
    }

    fn schema(&self) -> ProviderSchema {
        let provider = Block::new("Objects kept as files, with fault injection.")
            .attr("dir", Attribute::required(Type::String).describe("Directory holding the objects."))
            .attr("latency_ms", Attribute::optional(Type::Number).describe("Delay of every mutating call."))
            .attr("fail_on_operation", Attribute::optional(Type::Number).describe("Fail the Nth mutating call (1-based)."))
            .attr(
                "fail_from_operation",
                Attribute::optional(Type::Number).describe("Fail every mutating call from the Nth on, rollback included."),
            )
            .attr(
                "crash_on_operation",
                Attribute::optional(Type::Number).describe("End the process abruptly at the Nth mutating call (1-based)."),
            )
            .attr(
                "coalesce",
                Attribute::optional(Type::Number)
                    .describe("Declare the object types' operations coalescing, up to N in flight, as a provider that commits them together would."),
            )
            .attr(
                "crash_point",
                Attribute::optional(Type::String)
                    .describe("`before` (default) or `after` the Nth call takes effect: where crash_on_operation ends the process."),
            );
        let object = Block::new("An object stored as a file.")
            .attr("name", Attribute::required(Type::String).on_change(Disruption::Replace))
            .attr("value", Attribute::optional(Type::Any))
            .attr("restart_value", Attribute::optional(Type::String).on_change(Disruption::Restart))
            .attr("size", Attribute::optional(Type::Number).describe("Growing is live, shrinking loses data."))
            .attr("secret", Attribute::optional(Type::String).sensitive())
            .attr("fail", Attribute::optional(Type::Bool).describe("Create and update fail when true."))
            .attr("id", Attribute::computed(Type::String))
            .attr("generation", Attribute::computed(Type::Number).describe("Counts in-place updates."))
            .block(
                "disk",
                Nesting::List,
                Block::new("A disk, to exercise nested and dynamic blocks.")
                    .attr("label", Attribute::required(Type::String))
                    .attr("size", Attribute::optional(Type::Number)),
                Disruption::Live,
            );
        let lookup = Block::new("Finds an object by name.")
            .attr("name", Attribute::required(Type::String))
            .attr("id", Attribute::computed(Type::String))
            .attr("value", Attribute::computed(Type::Any));
        let mut schema = ProviderSchema { provider, ..ProviderSchema::default() };
        // `path` is a stable computed attribute (the engine keeps it known
        // across in-place updates); only this type has it, so that the
        // many tests of `testing_object` keep their exact outputs.
        let plain = object.clone().attr(
            "path",
            Attribute::computed(Type::String).stable().describe("The object's file in `dir`; it changes only by replacement."),
        );
        schema.resources.insert("testing_plain".into(), plain);
        schema.resources.insert("testing_object".into(), object);
        schema.undo.insert("testing_object".into(), UndoSupport { data_loss: true, retire: true });
        schema.data_sources.insert("testing_object".into(), lookup);
        schema
    }

    fn instantiate(&self) -> Arc<dyn Provider> {
        Arc::new(TestingProvider::default())
    }
}

#[derive(Default)]
struct Settings {
    dir: PathBuf,
    latency: Duration,
    fail_on: Option<u64>,
    fail_from: Option<u64>,
    crash_on: Option<u64>,
    crash_after: bool,
}

#[derive(Default)]
struct TestingProvider {
    settings: Mutex<Settings>,
    operations: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// `coalesce`: 0 for per-slot scheduling.
    coalesce: AtomicUsize,
}

impl TestingProvider {
    fn dir(&self) -> PathBuf {
        self.settings.lock().expect("settings lock").dir.clone()
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir().join(format!("{id}.json"))
    }

    /// Counts a mutating call, waits the configured latency, and fails it if
    /// fault injection says so. Also records the highest concurrency seen in
    /// `max_in_flight` in the directory, for the parallelism test. The guard
    /// ends the process after the call took effect if asked to.
    async fn mutating_call(&self, what: &str) -> Result<InFlight<'_>> {
        let n = self.operations.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let (latency, fail_on, fail_from, crash_on, crash_after, dir) = {
            let s = self.settings.lock().expect("settings lock");
            (s.latency, s.fail_on, s.fail_from, s.crash_on, s.crash_after, s.dir.clone())
        };
        let guard = InFlight { count: &self.in_flight, crash_after: crash_after && crash_on == Some(n) };
        let max = self.max_in_flight.fetch_max(now, Ordering::SeqCst).max(now);
        let _ = std::fs::write(dir.join("max_in_flight"), max.to_string());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if crash_on == Some(n) && !crash_after {
            crash();
        }
        if fail_on == Some(n) || fail_from.is_some_and(|from| n >= from) {
            return Err(ProviderError::new(format!("injected failure of operation {n} ({what})")));
        }
        Ok(guard)
    }

    /// Replaces the object's file atomically through a private temporary
    /// file (exclusive, 0600, random name, removed if anything fails).
    fn write(&self, id: Uuid, state: &Value) -> Result<()> {
        self.write_to(&self.path(id), state)
    }

    fn write_to(&self, path: &Path, state: &Value) -> Result<()> {
        use std::io::Write as _;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("object");
        let bytes = serde_json::to_vec(&state.clone().deep_unmark()).expect("values serialize");
        let fail = |e: std::io::Error| ProviderError::new(format!("write {}: {e}", path.display()));
        let mut tmp = tempfile::Builder::new().prefix(&format!("{name}.")).suffix(".tmp").tempfile_in(self.dir()).map_err(fail)?;
        tmp.write_all(&bytes).map_err(fail)?;
        tmp.persist(path).map(drop).map_err(|e| fail(e.error))
    }

    fn load(&self, id: Uuid) -> Result<Option<Value>> {
        load(&self.path(id))
    }
}

/// Removes the temporary files of writes a killed process left unfinished
/// (`write_to`'s `NAME.RANDOM.tmp`), as a real system discards incomplete
/// writes when it restarts: they never held an object or an undo point,
/// which exist only once renamed into place.
fn remove_unfinished_writes(dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| ProviderError::new(format!("clean {}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
                _ => {}
            }
        }
    }
    Ok(())
}

struct InFlight<'a> {
    count: &'a AtomicUsize,
    /// End the process once the call's effect is done (the guard is dropped).
    crash_after: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.crash_after {
            crash();
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Ends the process at once, with no cleanup, as `kill -9` would.
fn crash() -> ! {
    // SAFETY: _exit ends the process; nothing runs after it.
    unsafe { libc::_exit(137) }
}

/// What a testing undo record says: where the copy of the object is kept.
fn undo_path(dir: &Path, undo: &UndoRecord) -> Result<PathBuf> {
    match undo.0.get("file").as_str() {
        Some(name) if !name.contains('/') => Ok(dir.join(name)),
        _ => Err(ProviderError::new(format!("malformed undo record {}", undo.0))),
    }
}

fn load(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ProviderError::new(format!("corrupt object {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ProviderError::new(format!("read {}: {e}", path.display()))),
    }
}

fn object_state(id: Uuid, planned: &Value, generation: f64) -> Value {
    let mut state = planned.clone().deep_unmark();
    if let Value::Map(m) = &mut state {
        m.insert("id".into(), Value::from(id.to_string()));
        m.insert("generation".into(), Value::from(generation));
        // Only the types that declare it (the proposal holds every
        // attribute of the schema).
        if m.contains_key("path") {
            m.insert("path".into(), Value::from(format!("{id}.json")));
        }
    }
    state
}

/// The error of a `fail = true` object. It echoes everything it was given,
/// as careless providers do, so that tests can prove the engine keeps the
/// secrets among it out of what the user sees.
fn refusal(what: &str, planned: &Value) -> ProviderError {
    let given = serde_json::to_string(planned).unwrap_or_default();
    ProviderError::new(format!("object {} refuses to be {what} (it was given {given})", planned.get("name")))
}

fn check_type(type_name: &str) -> Result<()> {
    if type_name == "testing_object" || type_name == "testing_plain" {
        Ok(())
    } else {
        Err(ProviderError::new(format!("the testing provider has no resource type {type_name}")))
    }
}

#[async_trait]
impl Provider for TestingProvider {
    async fn configure(&self, config: &Value) -> Result<()> {
        let dir = config.get("dir").as_str().ok_or_else(|| ProviderError::new("dir must be a string"))?;
        std::fs::create_dir_all(dir).map_err(|e| ProviderError::new(format!("create {dir}: {e}")))?;
        remove_unfinished_writes(Path::new(dir))?;
        let mut s = self.settings.lock().expect("settings lock");
        s.dir = PathBuf::from(dir);
        s.latency = Duration::from_millis(config.get("latency_ms").as_f64().unwrap_or(0.0) as u64);
        s.fail_on = config.get("fail_on_operation").as_f64().map(|n| n as u64);
        s.fail_from = config.get("fail_from_operation").as_f64().map(|n| n as u64);
        s.crash_on = config.get("crash_on_operation").as_f64().map(|n| n as u64);
        self.coalesce.store(config.get("coalesce").as_f64().map(|n| n.max(0.0) as usize).unwrap_or(0), Ordering::SeqCst);
        s.crash_after = match config.get("crash_point").as_str() {
            None | Some("before") => false,
            Some("after") => true,
            Some(other) => return Err(ProviderError::new(format!("crash_point must be \"before\" or \"after\", not {other:?}"))),
        };
        Ok(())
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<(String, String)> {
        match config.get("name").as_str() {
            Some(name) if type_name == "testing_object" && name.contains('/') => {
                vec![("name".into(), format!("{name:?} must not contain '/'"))]
            }
            _ => Vec::new(),
        }
    }

    async fn read_data(&self, type_name: &str, config: &Value) -> Result<Value> {
        if type_name != "testing_object" {
            return Err(ProviderError::new(format!("the testing provider has no data source {type_name}")));
        }
        let name = config.get("name").as_str().ok_or_else(|| ProviderError::new("name must be a string"))?;
        let entries = std::fs::read_dir(self.dir()).map_err(|e| ProviderError::new(e.to_string()))?;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|x| x == "json") {
                if let Some(obj) = load(&entry.path())? {
                    if obj.get("name").as_str() == Some(name) {
                        return Ok(Value::object([
                            ("name", Value::from(name)),
                            ("id", obj.get("id").clone()),
                            ("value", obj.get("value").clone()),
                        ]));
                    }
                }
            }
        }
        Err(ProviderError::new(format!("no object named {name:?}")))
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse> {
        let mut response = PlanResponse::default();
        if let (Some(prior), Some(new)) = (req.prior.and_then(|p| p.get("size").as_f64()), req.proposed.get("size").as_f64()) {
            if new < prior {
                response.disruptions.insert("size".into(), Disruption::DataLoss);
            }
        }
        Ok(response)
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        check_type(type_name)?;
        // Like a real provider logging its request: the whole input, which
        // the engine's log writer must scrub of secrets.
        tracing::trace!(target: "strata::testing", %planned, "create request");
        let _call = self.mutating_call("create").await?;
        if planned.get("fail").as_bool() == Some(true) {
            return Err(refusal("created", planned));
        }
        let state = object_state(id, planned, 0.0);
        self.write(id, &state)?;
        Ok(state)
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        check_type(type_name)?;
        // Like real providers, it marks what it knows to be secret itself.
        let mark = |v: Value| match v {
            Value::Map(mut m) => {
                if let Some(secret) = m.remove("secret") {
                    m.insert("secret".into(), if secret.is_null() { secret } else { secret.into_sensitive() });
                }
                Value::Map(m)
            }
            other => other,
        };
        instances.iter().map(|i| self.load(i.id).map(|o| o.map(mark))).collect()
    }

    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
        check_type(type_name)?;
        tracing::trace!(target: "strata::testing", %prior, %planned, "update request");
        let _call = self.mutating_call("update").await?;
        if planned.get("fail").as_bool() == Some(true) {
            return Err(refusal("updated", planned));
        }
        if self.load(id)?.is_none() {
            return Err(ProviderError::new(format!("object {id} does not exist")));
        }
        if let Some(undo) = undo {
            // Secure the undo point before changing anything.
            let copy = undo_path(&self.dir(), undo)?;
            if !copy.exists() {
                // Through a temporary file and a rename: a copy cut short by
                // a crash must never pass for a secured undo point.
                let original = self.load(id)?.ok_or_else(|| ProviderError::new(format!("object {id} does not exist")))?;
                self.write_to(&copy, &original)?;
            }
        }
        let generation = prior.get("generation").as_f64().unwrap_or(0.0) + 1.0;
        let state = object_state(id, planned, generation);
        self.write(id, &state)?;
        Ok(state)
    }

    async fn delete(&self, type_name: &str, id: Uuid, _prior: &Value) -> Result<()> {
        check_type(type_name)?;
        let _call = self.mutating_call("delete").await?;
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ProviderError::new(format!("delete {id}: {e}"))),
        }
    }

    async fn find_by_identity(&self, type_name: &str, id: Uuid, _planned: &Value) -> Result<Option<Value>> {
        check_type(type_name)?;
        self.load(id)
    }

    async fn prepare_undo(&self, type_name: &str, id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        check_type(type_name)?;
        if type_name == "testing_plain" {
            return Ok(None);
        }
        let kind = match change {
            Undoable::Update { .. } => "undo",
            Undoable::Retire { .. } => "retired",
            Undoable::Import { import_id } => {
                // Undo takes the re-tag back: the object returns to its old name.
                let existing = Uuid::parse_str(import_id).map_err(|e| ProviderError::new(format!("import ID {import_id:?}: {e}")))?;
                return Ok(Some(UndoRecord(Value::object([("retag", Value::from(existing.to_string()))]))));
            }
        };
        let file = format!("{id}.{kind}-{}", Uuid::new_v4().simple());
        Ok(Some(UndoRecord(Value::object([("file", Value::from(file))]))))
    }

    async fn retire(&self, type_name: &str, id: Uuid, _prior: &Value, undo: &UndoRecord) -> Result<()> {
        check_type(type_name)?;
        let _call = self.mutating_call("retire").await?;
        let aside = undo_path(&self.dir(), undo)?;
        match std::fs::rename(self.path(id), &aside) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ProviderError::new(format!("retire {id}: {e}"))),
        }
    }

    async fn undo(&self, type_name: &str, id: Uuid, undo: &UndoRecord) -> Result<Value> {
        check_type(type_name)?;
        let _call = self.mutating_call("undo").await?;
        if let Some(existing) = undo.0.get("retag").as_str() {
            let existing = Uuid::parse_str(existing).map_err(|e| ProviderError::new(format!("malformed undo record: {e}")))?;
            if let Some(state) = self.load(id)? {
                let state = object_state(existing, &state, state.get("generation").as_f64().unwrap_or(0.0));
                self.write(existing, &state)?;
                std::fs::remove_file(self.path(id)).map_err(|e| ProviderError::new(format!("take back re-tag of {existing}: {e}")))?;
            }
            return self.load(existing)?.ok_or_else(|| ProviderError::new(format!("object {existing} is gone")));
        }
        let copy = undo_path(&self.dir(), undo)?;
        // The copy is the object as it was; without one the operation never
        // secured its undo point, so it never changed the object either.
        if copy.exists() {
            std::fs::rename(&copy, self.path(id)).map_err(|e| ProviderError::new(format!("restore {id}: {e}")))?;
        }
        self.load(id)?.ok_or_else(|| ProviderError::new(format!("object {id} is gone and has no undo copy")))
    }

    async fn discard_undo(&self, type_name: &str, _id: Uuid, undo: &UndoRecord) -> Result<()> {
        check_type(type_name)?;
        if undo.0.get("retag").as_str().is_some() {
            return Ok(()); // Nothing was kept for an import.
        }
        let _call = self.mutating_call("discard").await?;
        match std::fs::remove_file(undo_path(&self.dir(), undo)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ProviderError::new(format!("discard undo copy: {e}"))),
        }
    }

    fn scheduling(&self, type_name: &str) -> Scheduling {
        match self.coalesce.load(Ordering::SeqCst) {
            0 => Scheduling::PerSlot,
            _ if check_type(type_name).is_err() => Scheduling::PerSlot,
            max_in_flight => Scheduling::Coalescing { max_in_flight },
        }
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        check_type(type_name)?;
        let existing = Uuid::parse_str(import_id).map_err(|e| ProviderError::new(format!("import ID {import_id:?}: {e}")))?;
        Ok(self.load(existing)?.map(|state| Imported { state, id: None }))
    }

    async fn import(&self, type_name: &str, id: Uuid, import_id: &str) -> Result<Imported> {
        check_type(type_name)?;
        let existing = Uuid::parse_str(import_id).map_err(|e| ProviderError::new(format!("import ID {import_id:?}: {e}")))?;
        let state = self.load(existing)?.ok_or_else(|| ProviderError::new(format!("no object {import_id}")))?;
        // Re-tag the object with the engine's identity: one atomic rename,
        // so that a crash leaves it under exactly one identity.
        let _call = self.mutating_call("import").await?;
        std::fs::rename(self.path(existing), self.path(id)).map_err(|e| ProviderError::new(format!("re-tag {import_id}: {e}")))?;
        let state = object_state(id, &state, state.get("generation").as_f64().unwrap_or(0.0));
        self.write(id, &state)?;
        Ok(Imported { state, id: None })
    }
}
