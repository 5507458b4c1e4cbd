//! One change, one OVSDB transaction: the guards that assert what the plan
//! saw, the bump of `next_cfg`, and the wait until ovs-vswitchd realized it,
//! which brings back the rows the change reads.

use crate::client::{Client, OvsdbError};
use crate::datum::{uuid, Read, ReadBack, Snapshot};
use serde_json::{json, Value as Json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_provider::Result;

/// The OVSDB lock ovs-vswitchd holds while it runs.
const VSWITCHD_LOCK: &str = "ovs_vswitchd";

/// A `wait` operation that holds only if the row selected by `conditions`
/// still exists with those values; `name` is the row's name, which every
/// guarded row has.
pub fn guard(table: &str, conditions: Vec<Json>, name: &str) -> Json {
    json!({
        "op": "wait", "table": table, "timeout": 0, "where": conditions,
        "columns": ["name"], "until": "==", "rows": [{"name": name}],
    })
}

/// A `where` condition `[column, function, datum]`.
pub fn cond(column: &str, function: &str, datum: Json) -> Json {
    json!([column, function, datum])
}

pub fn by_uuid(id: &str) -> Vec<Json> {
    vec![cond("_uuid", "==", uuid(id))]
}

/// Fails, before anything is written, when no ovs-vswitchd serves the
/// database: ovsdb-server alone would store the change and nothing would
/// ever realize it.
pub async fn require_vswitchd(client: &Client) -> Result<()> {
    Ok(vswitchd_serves(client).await?)
}

pub(crate) async fn vswitchd_serves(client: &Client) -> Result<(), OvsdbError> {
    if client.lock_is_held(VSWITCHD_LOCK).await? {
        Ok(())
    } else {
        Err(OvsdbError::NoVswitchd(format!(
            "ovs-vswitchd is not running for {}: ovsdb-server alone would store the change but nothing would realize it; start ovs-vswitchd (scripts/ovs-up.sh) and apply again",
            client.target()
        )))
    }
}

/// Commits `ops` plus a `next_cfg` bump as one transaction (with a comment
/// for ovsdb-server's log). Returns the `next_cfg` value ovs-vswitchd must
/// reach for the change to be realized.
async fn commit(client: &Client, root: &str, mut ops: Vec<Json>, comment: &str) -> Result<i64, OvsdbError> {
    let count = ops.len();
    ops.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": by_uuid(root), "mutations": [["next_cfg", "+=", 1]]}));
    ops.push(json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["next_cfg"]}));
    ops.push(json!({"op": "comment", "comment": format!("strata: {comment}")}));
    let results = client.transact(ops).await?;
    Ok(results[count + 1]["rows"][0]["next_cfg"].as_i64().unwrap_or(0))
}

/// Every transaction first checks that ovs-vswitchd holds its lock on the
/// database ([`require_vswitchd`]), once per batch, unless every change in
/// it was built on a read that asked already ([`Snapshot::vswitchd_serving`]).
///
/// Changes that run at the same time share one transaction: vswitchd then
/// reconfigures once for all of them instead of once each (a reconfiguration
/// costs time in proportion to the bridge's size). Each change stays atomic
/// (its operations are never split); if the shared transaction fails, every
/// change is retried on its own so that the failure lands on the change that
/// caused it and the others still commit.
///
/// Commits are pipelined: the next batch is committed while ovs-vswitchd is
/// still realizing the previous one. Realization is not polled: the batch's
/// leader asks ovsdb-server for a transaction that starts with a `wait`
/// until `cur_cfg` has caught up (which the server holds until ovs-vswitchd
/// writes `cur_cfg`, in the same transaction as the interfaces' `ofport` and
/// `error`) and goes on with the selects the batch's changes read back, so
/// that the rows arrive with the news that they are realized, in one round
/// trip.
#[derive(Default)]
pub struct Batcher {
    queue: std::sync::Mutex<Vec<Submission>>,
    leader: tokio::sync::Mutex<()>,
    next: std::sync::atomic::AtomicU64,
}

/// Waits until `queued` has stopped growing for a moment: changes the engine
/// started together (a burst of ports, whose intents it journals in one
/// commit) reach a batcher within a fraction of a millisecond of each other,
/// and the first to arrive would otherwise commit (or read) alone, ahead of
/// the rest, costing a second transaction and a second vswitchd
/// reconfiguration. Yields first (free when the burst runs on this worker
/// thread), then waits in steps of [`SETTLE_STEP`] while the queue grows
/// (the burst's other tasks may be running on another worker). The steps
/// are timer sleeps, which tokio rounds up to its 1 ms tick: polling by
/// yielding for exactly the step split bursts on a loaded machine (the
/// burst's other tasks were not scheduled within half a millisecond; the
/// ovs7 entry in BENCHMARKS.md).
pub async fn settle(queued: impl Fn() -> usize) {
    let started = Instant::now();
    let mut seen = queued();
    tokio::task::yield_now().await;
    loop {
        let now = queued();
        if (now == seen && started.elapsed() >= SETTLE_STEP) || started.elapsed() >= SETTLE_MAX {
            tracing::debug!(target: "strata::ovsdb", queued = now, waited = ?started.elapsed(), "batch gathered");
            return;
        }
        seen = now;
        tokio::time::sleep(SETTLE_STEP).await;
    }
}

/// The quiet time after which a batch is taken as complete.
const SETTLE_STEP: Duration = Duration::from_micros(500);
/// A batch is taken after this long even if changes keep arriving.
const SETTLE_MAX: Duration = Duration::from_millis(10);

/// What a change gets back: the rows it asked for, read once it was realized.
type Realized = Result<Arc<Snapshot>, OvsdbError>;

struct Submission {
    ops: Vec<Json>,
    comment: String,
    read_back: ReadBack,
    /// The read the change was built on found ovs-vswitchd serving.
    vswitchd_seen: bool,
    done: tokio::sync::oneshot::Sender<Realized>,
}

impl Batcher {
    /// Commits `ops` (with the next_cfg bump), possibly together with other
    /// changes submitted meanwhile, waits until ovs-vswitchd applied it, and
    /// returns `read_back` as it was then (at least those rows).
    /// `vswitchd_seen`: the rows `ops` were built from were read together
    /// with a check that ovs-vswitchd serves the database.
    pub async fn commit(
        &self,
        client: &Client,
        root: &str,
        ops: Vec<Json>,
        comment: &str,
        read_back: ReadBack,
        vswitchd_seen: bool,
        timeout: Duration,
    ) -> Realized {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let tag = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ops = ops.into_iter().map(|op| rename_handles(op, &format!("c{tag}_"))).collect();
        self.queue.lock().expect("batch queue").push(Submission { ops, comment: comment.to_owned(), read_back, vswitchd_seen, done });
        let committed = {
            // Whoever leads takes everything queued so far, this one included
            // unless an earlier leader already took it, once the changes
            // started with it have caught up.
            let _lead = self.leader.lock().await;
            if self.queue.lock().expect("batch queue").is_empty() {
                Vec::new()
            } else {
                // Nothing is written that no vswitchd would realize: checked
                // while the batch gathers, unless the reads already did.
                let probe = async { if vswitchd_seen { None } else { Some(vswitchd_serves(client).await) } };
                let (_, probed) = tokio::join!(settle(|| self.queue.lock().expect("batch queue").len()), probe);
                let batch = std::mem::take(&mut *self.queue.lock().expect("batch queue"));
                let serving = match probed {
                    Some(serving) => serving,
                    None if batch.iter().all(|s| s.vswitchd_seen) => Ok(()),
                    None => vswitchd_serves(client).await,
                };
                run_batch(client, root, batch, serving).await
            }
        };
        // The leader lock is free again: the next batch commits while
        // vswitchd realizes this one.
        realize(client, root, committed, timeout).await;
        outcome.await.unwrap_or_else(|_| Err(OvsdbError::Transport("the batched commit was dropped".into())))
    }
}

/// Waits until the changes of `committed` (with the `next_cfg` each
/// reached) are realized and hands each the rows they read back, read in
/// that same transaction.
async fn realize(client: &Client, root: &str, committed: Vec<(Submission, i64)>, timeout: Duration) {
    let Some(next_cfg) = committed.iter().map(|(_, n)| *n).max() else { return };
    let read_back = committed.iter().fold(ReadBack::Nothing, |all, (s, _)| all.merge(s.read_back.clone()));
    let realized = realized_read(client, root, next_cfg, timeout, Read::of(&read_back)).await.map(Arc::new);
    for (s, _) in committed {
        let _ = s.done.send(realized.clone());
    }
}

/// Asks ovsdb-server to run `read` once `cur_cfg` is at least `next_cfg`,
/// for at most `timeout`.
async fn realized_read(client: &Client, root: &str, next_cfg: i64, timeout: Duration, read: Read) -> Result<Snapshot, OvsdbError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let cur_cfg = current_cfg(client, root).await?;
            return Err(not_realized(timeout, cur_cfg, next_cfg));
        }
        // The server's wait ends before the client's own request timeout, so
        // that a vswitchd that does not catch up is told apart from a silent
        // ovsdb-server.
        let hold = left.min(client.timeout().saturating_sub(client.timeout() / 10)).as_millis().max(1) as i64;
        let mut ops = vec![json!({"op": "wait", "table": "Open_vSwitch", "timeout": hold,
                                  "where": [["_uuid", "==", uuid(root)], ["cur_cfg", "<", next_cfg]],
                                  "columns": ["cur_cfg"], "until": "==", "rows": []})];
        ops.extend(read.ops());
        match client.transact(ops).await {
            Ok(mut results) => {
                let rows = results.split_off(1);
                return read.finish(client, rows).await;
            }
            Err(e) if e.is_wait_failure() => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn current_cfg(client: &Client, root: &str) -> Result<i64, OvsdbError> {
    let results = client.transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["cur_cfg"]})]).await?;
    Ok(results[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0))
}

fn not_realized(timeout: Duration, cur_cfg: i64, next_cfg: i64) -> OvsdbError {
    OvsdbError::Transport(format!(
        "the change was committed but ovs-vswitchd did not apply it within {timeout:?} (cur_cfg {cur_cfg}, next_cfg {next_cfg}): is ovs-vswitchd running?"
    ))
}

/// Commits `batch`, as one transaction when it can; answers the changes
/// that failed and returns the others with the `next_cfg` they reached.
async fn run_batch(client: &Client, root: &str, batch: Vec<Submission>, serving: Result<(), OvsdbError>) -> Vec<(Submission, i64)> {
    let mut committed = Vec::new();
    let mut answer = |s: Submission, outcome: Result<i64, OvsdbError>| match outcome {
        Ok(next_cfg) => committed.push((s, next_cfg)),
        Err(e) => {
            let _ = s.done.send(Err(e));
        }
    };
    if let Err(e) = serving {
        for s in batch {
            answer(s, Err(e.clone()));
        }
    } else if batch.len() == 1 {
        let s = batch.into_iter().next().expect("one submission");
        let outcome = commit(client, root, s.ops.clone(), &s.comment).await;
        answer(s, outcome);
    } else {
        let ops: Vec<Json> = batch.iter().flat_map(|s| s.ops.iter().cloned()).collect();
        let comment = format!("{} changes: {}", batch.len(), batch.iter().map(|s| s.comment.as_str()).collect::<Vec<_>>().join("; "));
        match commit(client, root, ops, &comment).await {
            Ok(next_cfg) => {
                for s in batch {
                    answer(s, Ok(next_cfg));
                }
            }
            // No answer: whether it committed is unknown, the same for every change.
            Err(OvsdbError::Transport(m)) => {
                for s in batch {
                    answer(s, Err(OvsdbError::Transport(m.clone())));
                }
            }
            // Nothing was committed: each change on its own.
            Err(_) => {
                for s in batch {
                    let outcome = commit(client, root, s.ops.clone(), &s.comment).await;
                    answer(s, outcome);
                }
            }
        }
    }
    committed
}

/// Prefixes the transaction-local row names (`uuid-name`, `named-uuid`) of
/// one change so that changes sharing a transaction cannot collide.
fn rename_handles(op: Json, prefix: &str) -> Json {
    match op {
        Json::Object(m) => Json::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("uuid-name", Json::String(s)) => Json::String(format!("{prefix}{s}")),
                        (_, v) => rename_handles(v, prefix),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Json::Array(a) if a.len() == 2 && a[0] == "named-uuid" => json!(["named-uuid", format!("{prefix}{}", a[1].as_str().unwrap_or_default())]),
        Json::Array(a) => Json::Array(a.into_iter().map(|v| rename_handles(v, prefix)).collect()),
        other => other,
    }
}
