//! Every provider call, logged with its duration: [`Logged`] wraps each
//! configured provider, so no call site in the engine can forget it.
//!
//! A call is a `provider` span (`debug`), so what the provider logs while
//! it runs (its libvirt, OVSDB or Ceph requests) is shown inside it, and
//! one `debug` line when it ends: configuration address, call, type,
//! instance identity, duration, and the provider's error. No value is
//! logged here; the error text is scrubbed of every secret the engine has
//! seen by the log writer (`redact::scrub_log`).

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;
use strata_provider::{
    Imported, Instance, PlanRequest, PlanResponse, Provider, Result, Review, ReviewedChange, Scheduling, UndoRecord, Undoable,
    Value,
};
use tracing::Instrument;
use uuid::Uuid;

/// A provider whose every call is logged.
pub struct Logged {
    /// The configuration address (`kvm`, `ovs.edge`).
    address: String,
    inner: Arc<dyn Provider>,
}

impl Logged {
    pub fn wrap(address: &str, inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(Logged { address: address.to_owned(), inner })
    }

    /// Runs `call` inside its span and logs how it ended.
    async fn call<T>(
        &self,
        call: &'static str,
        type_name: &str,
        id: Option<Uuid>,
        future: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        if !tracing::enabled!(target: "strata::provider", tracing::Level::DEBUG) {
            return future.await;
        }
        let span = tracing::debug_span!(target: "strata::provider", "provider", provider = %self.address, call, type_name);
        let started = Instant::now();
        let result = future.instrument(span).await;
        let duration = started.elapsed();
        let id = id.map(|id| id.to_string()).unwrap_or_default();
        match &result {
            Ok(_) => tracing::debug!(target: "strata::provider", provider = %self.address, call, type_name, id, ?duration, "provider call done"),
            Err(e) => tracing::debug!(
                target: "strata::provider",
                provider = %self.address, call, type_name, id, ?duration, error = %e.message,
                "provider call failed"
            ),
        }
        result
    }
}

#[async_trait]
impl Provider for Logged {
    async fn configure(&self, config: &Value) -> Result<()> {
        self.call("configure", "", None, self.inner.configure(config)).await
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<(String, String)> {
        let started = Instant::now();
        let problems = self.inner.validate(type_name, config);
        tracing::trace!(target: "strata::provider", provider = %self.address, call = "validate", type_name, problems = problems.len(), duration = ?started.elapsed(), "provider call done");
        problems
    }

    async fn plan(&self, req: PlanRequest<'_>) -> Result<PlanResponse> {
        let type_name = req.type_name;
        self.call("plan", type_name, None, self.inner.plan(req)).await
    }

    async fn review_plan(&self, changes: &[ReviewedChange<'_>]) -> Result<Review> {
        self.call("review_plan", "", None, self.inner.review_plan(changes)).await
    }

    async fn create(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Value> {
        self.call("create", type_name, Some(id), self.inner.create(type_name, id, planned)).await
    }

    async fn read(&self, type_name: &str, instances: &[Instance<'_>]) -> Result<Vec<Option<Value>>> {
        tracing::debug!(target: "strata::provider", provider = %self.address, type_name, instances = instances.len(), "refresh read");
        self.call("read", type_name, None, self.inner.read(type_name, instances)).await
    }

    async fn update(&self, type_name: &str, id: Uuid, prior: &Value, planned: &Value, undo: Option<&UndoRecord>) -> Result<Value> {
        self.call("update", type_name, Some(id), self.inner.update(type_name, id, prior, planned, undo)).await
    }

    async fn delete(&self, type_name: &str, id: Uuid, prior: &Value) -> Result<()> {
        self.call("delete", type_name, Some(id), self.inner.delete(type_name, id, prior)).await
    }

    async fn find_by_identity(&self, type_name: &str, id: Uuid, planned: &Value) -> Result<Option<Value>> {
        self.call("find_by_identity", type_name, Some(id), self.inner.find_by_identity(type_name, id, planned)).await
    }

    async fn name_is_free(&self, type_name: &str, planned: &Value) -> Result<bool> {
        self.call("name_is_free", type_name, None, self.inner.name_is_free(type_name, planned)).await
    }

    async fn prepare_undo(&self, type_name: &str, id: Uuid, change: Undoable<'_>) -> Result<Option<UndoRecord>> {
        self.call("prepare_undo", type_name, Some(id), self.inner.prepare_undo(type_name, id, change)).await
    }

    async fn retire(&self, type_name: &str, id: Uuid, prior: &Value, undo: &UndoRecord) -> Result<()> {
        self.call("retire", type_name, Some(id), self.inner.retire(type_name, id, prior, undo)).await
    }

    async fn undo(&self, type_name: &str, id: Uuid, undo: &UndoRecord) -> Result<Value> {
        self.call("undo", type_name, Some(id), self.inner.undo(type_name, id, undo)).await
    }

    async fn discard_undo(&self, type_name: &str, id: Uuid, undo: &UndoRecord) -> Result<()> {
        self.call("discard_undo", type_name, Some(id), self.inner.discard_undo(type_name, id, undo)).await
    }

    async fn import(&self, type_name: &str, id: Uuid, import_id: &str) -> Result<Imported> {
        self.call("import", type_name, Some(id), self.inner.import(type_name, id, import_id)).await
    }

    async fn lookup(&self, type_name: &str, import_id: &str) -> Result<Option<Imported>> {
        self.call("lookup", type_name, None, self.inner.lookup(type_name, import_id)).await
    }

    fn scheduling(&self, type_name: &str) -> Scheduling {
        self.inner.scheduling(type_name)
    }

    async fn read_data(&self, type_name: &str, config: &Value) -> Result<Value> {
        self.call("read_data", type_name, None, self.inner.read_data(type_name, config)).await
    }
}
