//! A small OVSDB (RFC 7047) JSON-RPC client over tokio: one connection to
//! `unix:PATH` or `tcp:HOST:PORT`, requests matched to replies by id, `echo`
//! answered, every request bounded by a timeout.
//!
//! Framing: the server sends concatenated JSON texts without delimiters, so
//! the reader decodes incrementally and keeps the unfinished tail.
//! `transact` checks every result element, including the trailing one the
//! server appends beyond the operations when a commit-time constraint fails.

use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_provider::ProviderError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The database every operation targets.
pub const DB: &str = "Open_vSwitch";

/// What went wrong talking to ovsdb-server.
#[derive(Debug, Clone, PartialEq)]
pub enum OvsdbError {
    /// The connection failed, closed, or a reply did not come in time.
    Transport(String),
    /// The server answered a request with an error (`{"error": ..}`).
    Rpc(String),
    /// Nothing was sent: no ovs-vswitchd serves the database, so a change
    /// would be stored but never realized.
    NoVswitchd(String),
    /// One operation of a transaction failed; nothing was committed.
    /// `index` is the operation's position, or the number of operations for
    /// a commit-time failure (the trailing element).
    Operation { index: usize, error: String, details: String },
}

impl std::fmt::Display for OvsdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OvsdbError::Transport(m) | OvsdbError::Rpc(m) | OvsdbError::NoVswitchd(m) => f.write_str(m),
            OvsdbError::Operation { error, details, .. } if details.is_empty() => f.write_str(error),
            OvsdbError::Operation { error, details, .. } => write!(f, "{error}: {details}"),
        }
    }
}

impl From<OvsdbError> for ProviderError {
    fn from(e: OvsdbError) -> ProviderError {
        match e {
            OvsdbError::NoVswitchd(m) => ProviderError::new(m),
            e => ProviderError::new(format!("ovsdb-server: {e}")),
        }
    }
}

impl OvsdbError {
    /// True when a `wait` operation found the rows changed.
    pub fn is_wait_failure(&self) -> bool {
        matches!(self, OvsdbError::Operation { error, .. } if error == "timed out")
    }
}

type Reply = Result<Json, OvsdbError>;
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A connection to one ovsdb-server.
pub struct Client {
    target: String,
    timeout: Duration,
    next_id: AtomicU64,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    /// One lock request at a time: OVSDB refuses a second `lock` of the same
    /// name on a connection before the `unlock`.
    probing: tokio::sync::Mutex<()>,
}

impl Client {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT`.
    pub async fn connect(target: &str, timeout: Duration) -> Result<Client, OvsdbError> {
        let fail = |e: std::io::Error| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::ConnectionRefused {
                " (is ovsdb-server running? scripts/ovs-up.sh starts it)"
            } else {
                ""
            };
            OvsdbError::Transport(format!("cannot connect to {target}: {e}{hint}"))
        };
        let connect = async {
            if let Some(path) = target.strip_prefix("unix:") {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(fail)?;
                let (r, w) = stream.into_split();
                Ok(Client::start(target, timeout, r, w))
            } else if let Some(addr) = target.strip_prefix("tcp:") {
                let stream = tokio::net::TcpStream::connect(addr).await.map_err(fail)?;
                stream.set_nodelay(true).ok();
                let (r, w) = stream.into_split();
                Ok(Client::start(target, timeout, r, w))
            } else {
                Err(OvsdbError::Transport(format!("{target:?} is not an OVSDB address (unix:PATH or tcp:HOST:PORT)")))
            }
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| OvsdbError::Transport(format!("connecting to {target} timed out after {timeout:?}")))?
    }

    fn start(
        target: &str,
        timeout: Duration,
        reader: impl AsyncRead + Unpin + Send + 'static,
        mut writer: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Client {
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(read_loop(reader, pending.clone(), outgoing.clone(), target.to_owned()));
        Client { target: target.to_owned(), timeout, next_id: AtomicU64::new(1), outgoing, pending, probing: tokio::sync::Mutex::new(()) }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// How long a request may wait for its reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request and waits for its reply's `result`.
    pub async fn request(&self, method: &str, params: Json) -> Result<Json, OvsdbError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let message = json!({"method": method, "params": params, "id": id});
        let bytes = serde_json::to_vec(&message).map_err(|e| OvsdbError::Transport(e.to_string()))?;
        // The whole request only at trace: rows may hold user values (the
        // engine's log writer scrubs the sensitive ones).
        tracing::trace!(target: "strata::ovsdb", target_db = %self.target, request = %String::from_utf8_lossy(&bytes), "OVSDB request");
        let started = std::time::Instant::now();
        if self.outgoing.send(bytes).is_err() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(OvsdbError::Transport(format!("the connection to {} is closed", self.target)));
        }
        let reply = self.reply(method, id, rx).await;
        tracing::debug!(target: "strata::ovsdb", method, id, duration = ?started.elapsed(), ok = reply.is_ok(), "OVSDB call");
        reply
    }

    async fn reply(&self, method: &str, id: u64, rx: oneshot::Receiver<Reply>) -> Result<Json, OvsdbError> {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(OvsdbError::Transport(format!("the connection to {} closed during {method}", self.target))),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                Err(OvsdbError::Transport(format!(
                    "{method} to {} got no reply within {:?}",
                    self.target, self.timeout
                )))
            }
        }
    }

    /// Runs `ops` as one transaction on the Open_vSwitch database and
    /// returns one result per operation. Fails, naming the failed operation,
    /// when any element (also the trailing commit-time one) is an error.
    pub async fn transact(&self, ops: Vec<Json>) -> Result<Vec<Json>, OvsdbError> {
        let count = ops.len();
        if tracing::enabled!(target: "strata::ovsdb", tracing::Level::DEBUG) {
            let summary: Vec<String> = ops
                .iter()
                .map(|op| format!("{} {}", op.get("op").and_then(Json::as_str).unwrap_or("?"), op.get("table").and_then(Json::as_str).unwrap_or("")))
                .collect();
            tracing::debug!(target: "strata::ovsdb", ops = ?summary, "OVSDB transaction");
        }
        let mut params = vec![json!(DB)];
        params.extend(ops);
        let result = self.request("transact", Json::Array(params)).await?;
        let Json::Array(results) = result else {
            return Err(OvsdbError::Rpc(format!("transact returned {result} instead of an array")));
        };
        for (index, r) in results.iter().enumerate() {
            if let Some(error) = r.get("error").and_then(Json::as_str) {
                let details = r.get("details").and_then(Json::as_str).unwrap_or_default().to_owned();
                return Err(OvsdbError::Operation { index, error: error.to_owned(), details });
            }
        }
        if results.len() < count {
            return Err(OvsdbError::Rpc(format!("transact returned {} results for {count} operations", results.len())));
        }
        Ok(results)
    }

    /// Selects `columns` of every row of each table, in one transaction.
    /// `_uuid` is always included.
    pub async fn select_tables(&self, tables: &[(&str, &[&str])]) -> Result<Vec<Vec<Json>>, OvsdbError> {
        let ops = tables
            .iter()
            .map(|(table, columns)| {
                let mut cols: Vec<&str> = columns.to_vec();
                cols.push("_uuid");
                json!({"op": "select", "table": table, "where": [], "columns": cols})
            })
            .collect();
        let results = self.transact(ops).await?;
        Ok(results
            .into_iter()
            .map(|r| match r.get("rows") {
                Some(Json::Array(rows)) => rows.clone(),
                _ => Vec::new(),
            })
            .collect())
    }

    /// Whether another client holds the named OVSDB lock (ovs-vswitchd holds
    /// `ovs_vswitchd` while it runs). Asks for the lock and gives it back at once.
    pub async fn lock_is_held(&self, name: &str) -> Result<bool, OvsdbError> {
        let _one_at_a_time = self.probing.lock().await;
        // Both requests go out at once (one round trip): the server handles
        // a connection's requests in order, so the unlock follows the lock.
        let (reply, unlocked) = tokio::join!(self.request("lock", json!([name])), self.request("unlock", json!([name])));
        let held_by_other = reply?.get("locked").and_then(Json::as_bool) == Some(false);
        unlocked?;
        Ok(held_by_other)
    }
}

async fn read_loop(
    mut reader: impl AsyncRead + Unpin,
    pending: Pending,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    target: String,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut framer = Framer::default();
    let reason = loop {
        match reader.read(&mut chunk).await {
            Ok(0) => break format!("{target} closed the connection"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break format!("reading from {target}: {e}"),
        }
        // Parse only complete texts: a large reply arrives in many reads,
        // and parsing the unfinished tail again on each would be quadratic.
        let mut start = 0;
        let mut broken = None;
        while let Some(end) = framer.next_end(&buf) {
            match serde_json::from_slice::<Json>(&buf[start..end]) {
                Ok(message) => dispatch(message, &pending, &outgoing),
                Err(e) => {
                    broken = Some(format!("{target} sent invalid JSON: {e}"));
                    break;
                }
            }
            start = end;
        }
        if let Some(reason) = broken {
            break reason;
        }
        buf.drain(..start);
        framer.consumed(start);
    };
    // Fail every waiting request instead of leaving it to its timeout.
    for (_, tx) in pending.lock().expect("pending lock").drain() {
        let _ = tx.send(Err(OvsdbError::Transport(reason.clone())));
    }
}

/// Finds where each JSON text of the stream ends, scanning every byte once
/// (strings and escapes tracked, so brackets inside strings do not count).
#[derive(Default)]
struct Framer {
    /// Bytes of the buffer already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Framer {
    /// The end offset of the next complete text in `buf`, if one is there.
    fn next_end(&mut self, buf: &[u8]) -> Option<usize> {
        while self.scanned < buf.len() {
            let byte = buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                match byte {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(self.scanned);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The first `n` bytes left the buffer.
    fn consumed(&mut self, n: usize) {
        self.scanned -= n;
    }
}

fn dispatch(message: Json, pending: &Pending, outgoing: &mpsc::UnboundedSender<Vec<u8>>) {
    match message.get("method").and_then(Json::as_str) {
        Some("echo") => {
            let reply = json!({"id": message.get("id").cloned().unwrap_or(Json::Null), "result": message.get("params").cloned().unwrap_or(json!([])), "error": null});
            if let Ok(bytes) = serde_json::to_vec(&reply) {
                let _ = outgoing.send(bytes);
            }
        }
        Some(_) => {} // notifications (monitor updates, lock notices): not subscribed
        None => {
            let Some(id) = message.get("id").and_then(Json::as_u64) else { return };
            let Some(tx) = pending.lock().expect("pending lock").remove(&id) else { return };
            let reply = match message.get("error") {
                Some(e) if !e.is_null() => {
                    let text = e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string());
                    let details = message.get("details").and_then(Json::as_str).map(|d| format!(": {d}")).unwrap_or_default();
                    Err(OvsdbError::Rpc(format!("{text}{details}")))
                }
                _ => Ok(message.get("result").cloned().unwrap_or(Json::Null)),
            };
            let _ = tx.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Framer;

    #[test]
    fn framer_finds_each_text_once_even_split_and_with_brackets_in_strings() {
        let stream = br#"{"id":1,"result":["a}]\"{"]} {"id":2,"result":{"x":"\\"}}"#;
        let mut framer = Framer::default();
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        let mut base = 0;
        // One byte at a time: every split point is exercised.
        for b in stream.iter() {
            buf.push(*b);
            while let Some(end) = framer.next_end(&buf) {
                ends.push(base + end);
                let text: serde_json::Value = serde_json::from_slice(&buf[..end]).expect("a complete text");
                assert!(text.get("id").is_some());
                buf.drain(..end);
                framer.consumed(end);
                base += end;
            }
        }
        assert_eq!(ends.len(), 2);
        assert_eq!(ends[1], stream.len());
    }
}
