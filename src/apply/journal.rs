//! Group commit of state writes. Every operation's writes must be durable
//! before the operation proceeds; batching the writes of concurrent
//! operations into one transaction keeps that cost per batch, not per write.
//!
//! Writes that nothing needs durable on their own (an apply's beginning, its
//! phase change to cleanup, its outputs: see [`Journal::defer`]) wait for the
//! next commit and go into its transaction, first. A burst's outcomes
//! without an undo point are deferred too (`apply::burst`), so an apply of
//! one burst of creates costs two durable commits (version, apply record
//! and intents; outcomes, cleanup phase, outputs and end) instead of six.
//! The store's work after a commit is durable (`state.meta`) runs after the
//! commit's requests have heard (`StateStore::commit_all_then`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use strata_state::{StateError, StateStore, Write};
use tokio::sync::oneshot;

type Ack = oneshot::Sender<Result<(), String>>;

/// What the journal thread is asked: a commit, or writes for the next one.
/// Both carry the writes as the groups they were gathered in (a burst's
/// members' own vectors), written in order without being copied into one.
enum Request {
    Commit(Vec<Vec<Write>>, Ack),
    Defer(Vec<Vec<Write>>),
}

/// Test hook of the fault-injection suite: `STRATA_TEST_CRASH_COMMIT` set to
/// `before:N` or `after:N` ends the process abruptly (as `kill -9` would)
/// just before or just after the Nth commit of this process's journal. Only
/// honoured together with `STRATA_ENABLE_TEST_PROVIDER=1`.
#[derive(Clone, Copy, Default)]
struct CrashPoint {
    at: Option<(u64, bool)>,
}

impl CrashPoint {
    fn from_env() -> CrashPoint {
        if std::env::var("STRATA_ENABLE_TEST_PROVIDER").as_deref() != Ok("1") {
            return CrashPoint::default();
        }
        let at = std::env::var("STRATA_TEST_CRASH_COMMIT").ok().and_then(|v| {
            let (when, n) = v.split_once(':')?;
            Some((n.parse().ok()?, when == "after"))
        });
        CrashPoint { at }
    }

    fn check(&self, commit: u64, after: bool) {
        if self.at == Some((commit, after)) {
            // SAFETY: _exit ends the process at once; nothing runs after it.
            unsafe { libc::_exit(137) }
        }
    }
}

/// A handle to the journal thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
    /// Set once a commit was asked to store an undo step that carries a
    /// provider's undo record (an undo point that keeping the apply must
    /// discard), whether or not that commit succeeded.
    undo_points: Arc<AtomicBool>,
}

impl Journal {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<dyn StateStore>) -> Journal {
        let (tx, rx) = mpsc::channel::<Request>();
        let crash = CrashPoint::from_env();
        std::thread::Builder::new()
            .name("strata-journal".into())
            .spawn(move || {
                let mut commits = 0u64;
                // Deferred writes not yet in a successful commit.
                let mut deferred: Vec<Vec<Write>> = Vec::new();
                let mut batch: Vec<Vec<Vec<Write>>> = Vec::new();
                let mut acks: Vec<Ack> = Vec::new();
                while let Ok(first) = rx.recv() {
                    for request in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                        match request {
                            Request::Commit(groups, ack) => {
                                batch.push(groups);
                                acks.push(ack);
                            }
                            Request::Defer(groups) => deferred.extend(groups),
                        }
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    let count = |groups: &[Vec<Write>]| groups.iter().map(Vec::len).sum::<usize>();
                    let (requests, write_count) = (batch.len(), count(&deferred) + batch.iter().map(|groups| count(groups)).sum::<usize>());
                    commits += 1;
                    crash.check(commits, false);
                    let started = std::time::Instant::now();
                    let mut result = Ok(());
                    // The requests hear as soon as the commit is durable,
                    // before the store's own later work (state.meta).
                    let later = {
                        let all: Vec<&[Write]> = deferred.iter().chain(batch.iter().flatten()).map(Vec::as_slice).collect();
                        store.commit_all_then(&all, &mut |committed: &Result<(), StateError>| {
                            result = committed.as_ref().map(|_| ()).map_err(|e| e.to_string());
                            tracing::debug!(commit = commits, requests, writes = write_count, duration = ?started.elapsed(), ok = result.is_ok(), "state commit");
                            crash.check(commits, true);
                            if result.is_ok() || requests == 1 {
                                for ack in acks.drain(..) {
                                    let _ = ack.send(result.clone());
                                }
                            }
                        })
                    };
                    if let Err(e) = later {
                        tracing::warn!(commit = commits, error = %e, "after a durable state commit: {e}; the next commit tries again");
                    }
                    if result.is_ok() {
                        deferred.clear();
                    }
                    if result.is_err() && requests > 1 {
                        // One operation's write may be refused (the store
                        // refuses new work on a full disk) while the others'
                        // outcomes must still be recorded: commit each alone,
                        // the deferred writes with the first that succeeds.
                        for (groups, ack) in batch.drain(..).zip(acks.drain(..)) {
                            let all: Vec<&[Write]> = deferred.iter().chain(&groups).map(Vec::as_slice).collect();
                            let result = store.commit_all(&all).map_err(|e| e.to_string());
                            if result.is_ok() {
                                deferred.clear();
                            }
                            let _ = ack.send(result);
                        }
                        continue;
                    }
                    batch.clear();
                }
            })
            .expect("spawn journal thread");
        Journal { tx, undo_points: Arc::default() }
    }

    /// True when this journal may have stored an undo point: only then must
    /// keeping an apply it journaled from its start read the log back.
    pub fn wrote_undo_points(&self) -> bool {
        self.undo_points.load(Ordering::SeqCst)
    }

    /// Commits `writes` durably (together with whatever else is queued and
    /// what was deferred); empty `writes` commit only what was deferred.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), String> {
        self.commit_groups(vec![writes]).await
    }

    /// [`Journal::commit`] of several groups of writes, in order.
    pub async fn commit_groups(&self, groups: Vec<Vec<Write>>) -> Result<(), String> {
        self.note_undo_points(&groups);
        let (ack, done) = oneshot::channel();
        self.tx.send(Request::Commit(groups, ack)).map_err(|_| "the journal thread stopped".to_owned())?;
        done.await.map_err(|_| "the journal thread stopped".to_owned())?
    }

    fn note_undo_points(&self, groups: &[Vec<Write>]) {
        if groups.iter().flatten().any(|w| matches!(w, Write::PutStep { step, .. } if step.undo_point().is_some())) {
            self.undo_points.store(true, Ordering::SeqCst);
        }
    }

    /// Queues `writes` for the next commit, whoever asks for it: they are
    /// written first in its transaction, atomically with it. For writes that
    /// must be durable before the next provider call or the end of the apply,
    /// but not on their own: a crash before that commit leaves the state as
    /// a crash just before them does.
    pub fn defer(&self, writes: Vec<Write>) {
        self.defer_groups(vec![writes]);
    }

    /// [`Journal::defer`] of several groups of writes, in order.
    pub fn defer_groups(&self, mut groups: Vec<Vec<Write>>) {
        groups.retain(|g| !g.is_empty());
        if groups.is_empty() {
            return;
        }
        self.note_undo_points(&groups);
        // A stopped thread commits nothing more: the next commit says so.
        let _ = self.tx.send(Request::Defer(groups));
    }
}
