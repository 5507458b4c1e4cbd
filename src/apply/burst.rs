//! Bursts of coalescing operations: the operations of one coalescing
//! resource type ([`strata_provider::Scheduling::Coalescing`]) that the walk
//! starts together journal their first intents in one commit, and only then
//! do they call the provider, all at the same moment.
//!
//! Why: a coalescing provider commits the operations it has in flight
//! together (the OVS provider: one OVSDB transaction and one vswitchd
//! reconfiguration for 100 ports). Without the burst each operation's
//! intent became durable in whichever group commit of the journal thread it
//! happened to reach, so the first operation called the provider alone,
//! ahead of the rest, and the provider made two changes of the real system
//! where one would do.
//!
//! The journal rule is unchanged: no operation calls the provider before its
//! own intent is durable. A member that fails before its intent (an
//! evaluation error, a name already taken) or needs none leaves the burst
//! when its task ends, so it never holds the others back.

use super::Journal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use strata_state::Write;
use tokio::sync::oneshot;

/// The operations of one coalescing lane started in one pass of the walk.
pub(super) struct Burst {
    journal: Journal,
    state: Mutex<State>,
}

/// Where a member hears whether the burst's commit succeeded.
type Ack = oneshot::Sender<Result<(), String>>;

struct State {
    /// Members (and the walk, until it [`Burst::seal`]s) that have neither
    /// brought their intent nor left.
    expected: usize,
    writes: Vec<Write>,
    waiting: Vec<Ack>,
}

/// One operation's place in a burst; leaving its task leaves the burst.
pub(super) struct Member {
    burst: Arc<Burst>,
    arrived: AtomicBool,
}

tokio::task_local! {
    static MEMBER: Member;
}

impl Burst {
    /// An open burst: members join until the walk seals it.
    pub(super) fn open(journal: Journal) -> Arc<Burst> {
        Arc::new(Burst { journal, state: Mutex::new(State { expected: 1, writes: Vec::new(), waiting: Vec::new() }) })
    }

    pub(super) fn join(self: &Arc<Burst>) -> Member {
        self.state.lock().expect("burst lock").expected += 1;
        Member { burst: self.clone(), arrived: AtomicBool::new(false) }
    }

    /// No more members will join.
    pub(super) fn seal(&self) {
        self.done_with(None);
    }

    /// Counts one member (or the walk) done; `writes` and `ack` are what
    /// it brings. The last one commits everything brought, in one commit.
    fn done_with(&self, brought: Option<(Vec<Write>, Ack)>) {
        let mut state = self.state.lock().expect("burst lock");
        if let Some((writes, ack)) = brought {
            state.writes.extend(writes);
            state.waiting.push(ack);
        }
        state.expected -= 1;
        if state.expected > 0 || state.waiting.is_empty() {
            return;
        }
        let writes = std::mem::take(&mut state.writes);
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        // Without a runtime the walk is gone and nobody waits for the answer.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let journal = self.journal.clone();
        runtime.spawn(async move {
            let result = journal.commit(writes).await;
            for ack in waiting {
                let _ = ack.send(result.clone());
            }
        });
    }
}

impl Member {
    /// Runs `node` (an operation's task) as this member.
    pub(super) async fn scope<T>(self, node: impl std::future::Future<Output = T>) -> T {
        MEMBER.scope(self, node).await
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.arrived.swap(true, Ordering::AcqRel) {
            self.burst.done_with(None);
        }
    }
}

/// Commits an intent: together with the rest of the task's burst when the
/// task is a burst member that has not brought one yet, else on its own.
pub(super) async fn commit_intent(journal: &Journal, writes: Vec<Write>) -> Result<(), String> {
    let mut writes = Some(writes);
    let joined = MEMBER.try_with(|m| {
        if m.arrived.swap(true, Ordering::AcqRel) {
            return None;
        }
        let (ack, done) = oneshot::channel();
        m.burst.done_with(Some((writes.take().unwrap_or_default(), ack)));
        Some(done)
    });
    match (joined, writes) {
        (Ok(Some(done)), _) => done.await.map_err(|_| "the journal thread stopped".to_owned())?,
        (_, writes) => journal.commit(writes.unwrap_or_default()).await,
    }
}
