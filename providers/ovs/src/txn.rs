//! One change, one OVSDB transaction: the guards that assert what the plan
//! saw, the bump of `next_cfg`, and the wait until ovs-vswitchd realized it.

use crate::client::{Client, OvsdbError};
use crate::datum::uuid;
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};
use strata_provider::{ProviderError, Result};

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
    if client.lock_is_held(VSWITCHD_LOCK).await? {
        Ok(())
    } else {
        Err(ProviderError::new(format!(
            "ovs-vswitchd is not running for {}: ovsdb-server alone would store the change but nothing would realize it; start ovs-vswitchd (scripts/ovs-up.sh) and apply again",
            client.target()
        )))
    }
}

/// Commits `ops` plus a `next_cfg` bump as one transaction (with a comment
/// for ovsdb-server's log), then waits until ovs-vswitchd has applied it.
/// Returns the results of `ops`.
pub async fn commit(client: &Client, root: &str, mut ops: Vec<Json>, comment: &str, timeout: Duration) -> Result<Vec<Json>, OvsdbError> {
    let count = ops.len();
    ops.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": by_uuid(root), "mutations": [["next_cfg", "+=", 1]]}));
    ops.push(json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["next_cfg"]}));
    ops.push(json!({"op": "comment", "comment": format!("strata: {comment}")}));
    let mut results = client.transact(ops).await?;
    let next_cfg = results[count + 1]["rows"][0]["next_cfg"].as_i64().unwrap_or(0);
    results.truncate(count);
    await_realized(client, root, next_cfg, timeout).await?;
    Ok(results)
}

/// Polls `cur_cfg` until it reaches `next_cfg`.
async fn await_realized(client: &Client, root: &str, next_cfg: i64, timeout: Duration) -> Result<(), OvsdbError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = client
            .transact(vec![json!({"op": "select", "table": "Open_vSwitch", "where": by_uuid(root), "columns": ["cur_cfg"]})])
            .await?;
        let cur_cfg = r[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0);
        if cur_cfg >= next_cfg {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(OvsdbError::Transport(format!(
                "the change was committed but ovs-vswitchd did not apply it within {timeout:?} (cur_cfg {cur_cfg}, next_cfg {next_cfg}): is ovs-vswitchd running?"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
