//! Strata's built-in providers.
//!
//! - `strata`: the resource `strata_data`, Strata's `terraform_data`. Its
//!   `input` is stored and echoed back as `output`; a change to
//!   `triggers_replace` replaces it. It lives only in state, which makes it the
//!   provider of examples and benchmarks.
//! - `testing`: objects kept as files in a directory (the "world"), with fault
//!   injection (fail the Nth operation, fail named objects, add latency). Engine
//!   tests use it to prove rollback, parallelism, Ctrl-C and crash recovery
//!   against objects that outlive the process. It is registered only when
//!   `STRATA_ENABLE_TEST_PROVIDER=1`; it is never the proof that a real
//!   provider works.

mod testing;

pub use testing::TestingFactory;

use async_trait::async_trait;
use std::sync::Arc;
use strata_provider::{
    Attribute, Block, Disruption, Instance, Provider, ProviderError, ProviderFactory, ProviderSchema, Result, Scheduling,
    Type, Value,
};
use uuid::Uuid;

/// The data source the engine reads itself: another state's outputs.
pub const REMOTE_STATE: &str = "strata_remote_state";

/// Factory of the `strata` provider.
pub struct StrataFactory;

impl ProviderFactory for StrataFactory {
    fn name(&self) -> &'static str {
        "strata"
    }

    fn schema(&self) -> ProviderSchema {
        let data = Block::new("Stores a value in state and echoes it back, like Terraform's terraform_data.")
            .attr("input", Attribute::optional(Type::Any).describe("Any value; stored and echoed as `output`."))
            .attr("output", Attribute::computed(Type::Any).describe("The stored `input`."))
            .attr(
                "triggers_replace",
                Attribute::optional(Type::Any)
                    .on_change(Disruption::Replace)
                    .describe("Any value; a change replaces the instance."),
            )
            .attr("id", Attribute::computed(Type::String).describe("The instance's identity."));
        // Read by the engine itself (it opens the other state's backend); the
        // provider only declares it, so that configurations are checked.
        let remote_state = Block::new("Another configuration's outputs, read from its state (any backend), read-only.")
            .attr(
                "backend",
                Attribute::optional(Type::String)
                    .describe("The backend holding the state, with `config` its settings; without it, `config.path` is the other configuration's directory."),
            )
            .attr("config", Attribute::optional(Type::Any).describe("`path`, or the backend's settings."))
            .attr("workspace", Attribute::optional(Type::String).describe("The other configuration's workspace (`default`)."))
            .attr("defaults", Attribute::optional(Type::Any).describe("Values for outputs the state does not have."))
            .attr("outputs", Attribute::computed(Type::Any).describe("The outputs, sensitive ones still marked."));
        let mut schema = ProviderSchema::default();
        schema.resources.insert("strata_data".into(), data);
        schema.data_sources.insert(REMOTE_STATE.into(), remote_state);
        schema
    }

    fn instantiate(&self) -> Arc<dyn Provider> {
        Arc::new(StrataProvider)
    }
}

struct StrataProvider;

/// How many `strata_data` operations may be in flight at once.
const MAX_IN_FLIGHT: usize = 4096;

fn data_state(id: Uuid, planned: &Value) -> Value {
    let input = planned.get("input").clone();
    Value::object([
        ("id", Value::from(id.to_string())),
        ("input", input.clone()),
        ("output", input),
        ("triggers_replace", planned.get("triggers_replace").clone()),
    ])
}

#[async_trait]
impl Provider for StrataProvider {
    async fn configure(&self, _config: &Value) -> Result<()> {
        Ok(())
    }

    async fn plan(&self, req: strata_provider::PlanRequest<'_>) -> Result<strata_provider::PlanResponse> {
        check_type(req.type_name)?;
        // `output` echoes `input`, so it is known whenever `input` is.
        let mut planned = req.proposed.clone();
        if let Value::Map(m) = &mut planned {
            m.insert("output".into(), req.proposed.get("input").clone());
        }
        Ok(strata_provider::PlanResponse { planned: Some(planned), ..Default::default() })
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        check_type(type_name)?;
        Ok(data_state(id, planned))
    }

    /// `strata_data` lives in state only: a create or update costs nothing
    /// outside the engine, so there is nothing for `-parallelism` to spare
    /// and every ready instance may start at once. The bound keeps one burst
    /// of intents (and of outcomes) to a transaction of a few MiB.
    fn scheduling(&self, _type_name: &str) -> Scheduling {
        Scheduling::Coalescing { max_in_flight: MAX_IN_FLIGHT }
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        check_type(type_name)?;
        // The object lives in state only: what state says is the truth.
        Ok(instances.iter().map(|i| Some(i.state.clone())).collect())
    }

    async fn update(&self, type_name: &str, id: Uuid, _prior: &Value, planned: &Value, _undo: Option<&strata_provider::UndoRecord>) -> Result<Value> {
        check_type(type_name)?;
        Ok(data_state(id, planned))
    }

    async fn delete(&self, type_name: &str, _id: Uuid, _prior: &Value) -> Result<()> {
        check_type(type_name)
    }

    async fn find_by_identity(&self, type_name: &str, _id: Uuid, _planned: &Value) -> Result<Option<Value>> {
        check_type(type_name)?;
        // Nothing exists outside state, so an interrupted create left nothing.
        Ok(None)
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<strata_provider::Imported>> {
        check_type(type_name)?;
        let planned = Value::object([("input", Value::from(import_id))]);
        Ok(Some(strata_provider::Imported { state: data_state(Uuid::nil(), &planned), id: None }))
    }

    async fn import(&self, type_name: &str, id: Uuid, import_id: &str) -> Result<strata_provider::Imported> {
        check_type(type_name)?;
        let planned = Value::object([("input", Value::from(import_id))]);
        Ok(strata_provider::Imported { state: data_state(id, &planned), id: None })
    }
}

fn check_type(type_name: &str) -> Result<()> {
    if type_name == "strata_data" {
        Ok(())
    } else {
        Err(ProviderError::new(format!("the strata provider has no resource type {type_name}")))
    }
}

/// The factories of every built-in provider that is enabled in this process.
pub fn factories() -> Vec<Arc<dyn ProviderFactory>> {
    let mut out: Vec<Arc<dyn ProviderFactory>> = vec![Arc::new(StrataFactory)];
    if std::env::var("STRATA_ENABLE_TEST_PROVIDER").is_ok_and(|v| v == "1") {
        out.push(Arc::new(TestingFactory));
    }
    out
}
