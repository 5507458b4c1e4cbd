//! One change, one OVSDB transaction: the guards that assert what the plan
//! saw, the bump of `next_cfg`, and the wait until ovs-vswitchd realized it.

use crate::client::{Client, OvsdbError};
use crate::datum::uuid;
use serde_json::{json, Value as Json};
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

async fn vswitchd_serves(client: &Client) -> Result<(), OvsdbError> {
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
/// database ([`require_vswitchd`]), once per batch.
///
/// Changes that run at the same time share one transaction: vswitchd then
/// reconfigures once for all of them instead of once each (a reconfiguration
/// costs time in proportion to the bridge's size). Each change stays atomic
/// (its operations are never split); if the shared transaction fails, every
/// change is retried on its own so that the failure lands on the change that
/// caused it and the others still commit.
///
/// Commits are pipelined: the next batch is committed while ovs-vswitchd is
/// still realizing the previous one. Realization is not polled: one waiting
/// change at a time asks ovsdb-server to answer when `cur_cfg` has caught up
/// (a `wait` with a timeout, which the server holds until ovs-vswitchd
/// writes `cur_cfg`), and every other waiting change wakes on what it saw.
pub struct Batcher {
    queue: std::sync::Mutex<Vec<Submission>>,
    leader: tokio::sync::Mutex<()>,
    next: std::sync::atomic::AtomicU64,
    /// The highest `cur_cfg` seen so far (it only grows).
    realized: tokio::sync::watch::Sender<i64>,
    /// Held by the change that is asking ovsdb-server for `cur_cfg`.
    asking: tokio::sync::Mutex<()>,
}

impl Default for Batcher {
    fn default() -> Batcher {
        Batcher {
            queue: Default::default(),
            leader: Default::default(),
            next: Default::default(),
            realized: tokio::sync::watch::Sender::new(0),
            asking: Default::default(),
        }
    }
}

/// How long a waiting change sleeps, at most, before it checks whether the
/// change asking ovsdb-server for `cur_cfg` is still there.
const RECHECK: Duration = Duration::from_millis(20);

/// Waits until `queued` has stopped growing for a moment: changes the engine
/// started together (a burst of ports, whose intents it journals in one
/// commit) reach a batcher within a fraction of a millisecond of each other,
/// and the first to arrive would otherwise commit (or read) alone, ahead of
/// the rest, costing a second transaction and a second vswitchd
/// reconfiguration. Yields first (free when the burst runs on this worker
/// thread), then waits in steps of [`SETTLE_STEP`] while the queue grows
/// (the burst's other tasks may be running on another worker).
pub async fn settle(queued: impl Fn() -> usize) {
    let started = Instant::now();
    let mut seen = queued();
    tokio::task::yield_now().await;
    loop {
        let now = queued();
        if now == seen && started.elapsed() >= SETTLE_STEP {
            return;
        }
        if started.elapsed() >= SETTLE_MAX {
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

struct Submission {
    ops: Vec<Json>,
    comment: String,
    /// The `next_cfg` the change's transaction reached, or why it failed.
    done: tokio::sync::oneshot::Sender<Result<i64, OvsdbError>>,
}

impl Batcher {
    /// Commits `ops` (with the next_cfg bump), possibly together with other
    /// changes submitted meanwhile, and waits until ovs-vswitchd applied it.
    pub async fn commit(&self, client: &Client, root: &str, ops: Vec<Json>, comment: &str, timeout: Duration) -> Result<(), OvsdbError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let tag = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ops = ops.into_iter().map(|op| rename_handles(op, &format!("c{tag}_"))).collect();
        self.queue.lock().expect("batch queue").push(Submission { ops, comment: comment.to_owned(), done });
        {
            // Whoever leads takes everything queued so far, this one included
            // unless an earlier leader already took it, once the changes
            // started with it have caught up.
            let _lead = self.leader.lock().await;
            if !self.queue.lock().expect("batch queue").is_empty() {
                // Checked once per transaction, while the batch gathers:
                // nothing is written that no vswitchd would realize.
                let (_, serving) = tokio::join!(settle(|| self.queue.lock().expect("batch queue").len()), vswitchd_serves(client));
                let batch = std::mem::take(&mut *self.queue.lock().expect("batch queue"));
                run_batch(client, root, batch, serving).await;
            }
        }
        let next_cfg = outcome.await.unwrap_or_else(|_| Err(OvsdbError::Transport("the batched commit was dropped".into())))?;
        self.await_realized(client, root, next_cfg, timeout).await
    }

    /// Waits until `cur_cfg` reaches `next_cfg`.
    async fn await_realized(&self, client: &Client, root: &str, next_cfg: i64, timeout: Duration) -> Result<(), OvsdbError> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.realized.subscribe();
        loop {
            let cur_cfg = *seen.borrow_and_update();
            if cur_cfg >= next_cfg {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(not_realized(timeout, cur_cfg, next_cfg));
            }
            match self.asking.try_lock() {
                Ok(_asking) => {
                    let now = wait_for_cfg(client, root, next_cfg, left).await.map_err(|e| match e {
                        e if e.is_wait_failure() => not_realized(timeout, cur_cfg, next_cfg),
                        e => e,
                    })?;
                    self.realized.send_if_modified(|seen| {
                        let grew = now > *seen;
                        *seen = (*seen).max(now);
                        grew
                    });
                }
                // Someone else is asking: wake on what it sees (or check
                // again after a while, in case it gave up).
                Err(_) => {
                    let _ = tokio::time::timeout(RECHECK.min(left), seen.changed()).await;
                }
            }
        }
    }
}

/// Asks ovsdb-server to answer once `cur_cfg` is at least `next_cfg`, or
/// after `left`; returns the `cur_cfg` it then saw.
async fn wait_for_cfg(client: &Client, root: &str, next_cfg: i64, left: Duration) -> Result<i64, OvsdbError> {
    // The server's wait ends before the client's own request timeout, so
    // that a vswitchd that does not catch up is told apart from a silent
    // ovsdb-server.
    let hold = left.min(client.timeout().saturating_sub(client.timeout() / 10)).as_millis().max(1) as i64;
    let results = client
        .transact(vec![
            json!({"op": "wait", "table": "Open_vSwitch", "timeout": hold,
                   "where": [["_uuid", "==", uuid(root)], ["cur_cfg", "<", next_cfg]],
                   "columns": ["cur_cfg"], "until": "==", "rows": []}),
            json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["cur_cfg"]}),
        ])
        .await?;
    Ok(results[1]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0))
}

fn not_realized(timeout: Duration, cur_cfg: i64, next_cfg: i64) -> OvsdbError {
    OvsdbError::Transport(format!(
        "the change was committed but ovs-vswitchd did not apply it within {timeout:?} (cur_cfg {cur_cfg}, next_cfg {next_cfg}): is ovs-vswitchd running?"
    ))
}

async fn run_batch(client: &Client, root: &str, batch: Vec<Submission>, serving: Result<(), OvsdbError>) {
    if let Err(e) = serving {
        for s in batch {
            let _ = s.done.send(Err(e.clone()));
        }
        return;
    }
    if batch.len() == 1 {
        let s = batch.into_iter().next().expect("one submission");
        let _ = s.done.send(commit(client, root, s.ops, &s.comment).await);
        return;
    }
    let ops: Vec<Json> = batch.iter().flat_map(|s| s.ops.iter().cloned()).collect();
    let comment = format!("{} changes: {}", batch.len(), batch.iter().map(|s| s.comment.as_str()).collect::<Vec<_>>().join("; "));
    match commit(client, root, ops, &comment).await {
        Ok(next_cfg) => {
            for s in batch {
                let _ = s.done.send(Ok(next_cfg));
            }
        }
        // No answer: whether it committed is unknown, the same for every change.
        Err(OvsdbError::Transport(m)) => {
            for s in batch {
                let _ = s.done.send(Err(OvsdbError::Transport(m.clone())));
            }
        }
        // Nothing was committed: each change on its own.
        Err(_) => {
            for s in batch {
                let _ = s.done.send(commit(client, root, s.ops, &s.comment).await);
            }
        }
    }
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
