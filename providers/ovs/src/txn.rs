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
/// still realizing the previous one, and one poll of `cur_cfg` at a time
/// answers every waiting change, so that neither side idles while the other
/// works.
#[derive(Default)]
pub struct Batcher {
    queue: std::sync::Mutex<Vec<Submission>>,
    leader: tokio::sync::Mutex<()>,
    next: std::sync::atomic::AtomicU64,
    /// The highest `cur_cfg` seen so far (it only grows), and when it was
    /// last asked for.
    realized: tokio::sync::Mutex<(i64, Option<Instant>)>,
}

/// How often, at most, all the waiting changes together ask for `cur_cfg`:
/// a hundred waiters asking back to back would keep ovsdb-server (and so
/// ovs-vswitchd, which reads its changes from it) busy answering them.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

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
            // unless an earlier leader already took it.
            let _lead = self.leader.lock().await;
            let batch = std::mem::take(&mut *self.queue.lock().expect("batch queue"));
            if !batch.is_empty() {
                run_batch(client, root, batch).await;
            }
        }
        let next_cfg = outcome.await.unwrap_or_else(|_| Err(OvsdbError::Transport("the batched commit was dropped".into())))?;
        self.await_realized(client, root, next_cfg, timeout).await
    }

    /// Polls `cur_cfg` until it reaches `next_cfg`.
    async fn await_realized(&self, client: &Client, root: &str, next_cfg: i64, timeout: Duration) -> Result<(), OvsdbError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let cur_cfg = {
                let mut realized = self.realized.lock().await;
                let (seen, asked) = &mut *realized;
                if *seen < next_cfg && asked.is_none_or(|at| at.elapsed() >= POLL_INTERVAL) {
                    let r = client
                        .transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["cur_cfg"]})])
                        .await?;
                    *seen = (*seen).max(r[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0));
                    *asked = Some(Instant::now());
                }
                *seen
            };
            if cur_cfg >= next_cfg {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(OvsdbError::Transport(format!(
                    "the change was committed but ovs-vswitchd did not apply it within {timeout:?} (cur_cfg {cur_cfg}, next_cfg {next_cfg}): is ovs-vswitchd running?"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(4));
        }
    }
}

async fn run_batch(client: &Client, root: &str, batch: Vec<Submission>) {
    // Checked once per transaction, just before it: nothing is written
    // that no vswitchd would realize.
    if let Err(e) = vswitchd_serves(client).await {
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
