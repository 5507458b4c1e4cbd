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
//!
//! The outcomes go the same way: the members that journaled their intent in
//! the burst's commit record what their call did (the next commit each asks
//! for) together too, once the last of them has its answer or has left.
//! A coalescing provider answers them all at once, so waiting costs nothing,
//! and 100 ports take one commit for their outcomes instead of one per
//! group the journal thread happened to gather (four, for 100 OVS ports).
//! Nothing waits on an outcome being durable but the operation's dependents
//! (whose intents' commit carries it) and the apply's end, so outcomes
//! without an undo point are deferred to the next commit
//! ([`Journal::defer`]): the last burst of an apply shares the end's commit,
//! and one burst of creates is two commits, intents and end.

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
    /// The intents: members (and the walk, until it [`Burst::seal`]s) that
    /// have neither brought their intent nor left.
    intents: Gathering,
    /// The outcomes: members that brought an intent and have neither
    /// brought their outcome nor left.
    outcomes: Gathering,
}

/// Writes the burst gathers into one commit, as each member brought them
/// (moving thousands of writes into one vector cost more than writing them).
#[derive(Default)]
struct Gathering {
    expected: usize,
    writes: Vec<Vec<Write>>,
    waiting: Vec<Ack>,
}

impl Gathering {
    /// Counts one expected member done, with what it brings; once none is
    /// expected any more, what to commit and who waits for it.
    fn done_with(&mut self, brought: Option<(Vec<Write>, Ack)>) -> Option<(Vec<Vec<Write>>, Vec<Ack>)> {
        if let Some((writes, ack)) = brought {
            self.writes.push(writes);
            self.waiting.push(ack);
        }
        self.expected -= 1;
        if self.expected > 0 || self.waiting.is_empty() {
            return None;
        }
        Some((std::mem::take(&mut self.writes), std::mem::take(&mut self.waiting)))
    }
}

/// One operation's place in a burst; leaving its task leaves the burst.
pub(super) struct Member {
    burst: Arc<Burst>,
    /// Its intent is brought (or its first commit was not an intent).
    arrived: AtomicBool,
    /// It brought an intent and has not brought the outcome yet.
    owes_outcome: AtomicBool,
}

tokio::task_local! {
    static MEMBER: Member;
}

impl Burst {
    /// An open burst: members join until the walk seals it.
    pub(super) fn open(journal: Journal) -> Arc<Burst> {
        let intents = Gathering { expected: 1, ..Gathering::default() };
        Arc::new(Burst { journal, state: Mutex::new(State { intents, outcomes: Gathering::default() }) })
    }

    pub(super) fn join(self: &Arc<Burst>) -> Member {
        self.state.lock().expect("burst lock").intents.expected += 1;
        Member { burst: self.clone(), arrived: AtomicBool::new(false), owes_outcome: AtomicBool::new(false) }
    }

    /// No more members will join.
    pub(super) fn seal(&self) {
        self.intent_done(None);
    }

    /// Counts one member (or the walk) done with its intent; `writes` and
    /// `ack` are what it brings, and a member that brings an intent owes an
    /// outcome. The last one commits every intent brought, in one commit.
    fn intent_done(&self, brought: Option<(Vec<Write>, Ack)>) {
        let mut state = self.state.lock().expect("burst lock");
        if brought.is_some() {
            state.outcomes.expected += 1;
        }
        let ready = state.intents.done_with(brought);
        drop(state);
        self.commit(ready);
    }

    /// Counts one member done with its outcome; the last one hands every
    /// outcome brought to the journal together: deferred to the next commit
    /// when none of them holds an undo point, else in a commit of their own.
    ///
    /// Deferred outcomes are durable before anything else calls a provider
    /// to change the world (its intent's commit carries them, first), before
    /// a failed apply reads its log back (it commits what was deferred
    /// first) and with the apply's end otherwise, so the last burst of an
    /// apply shares the end's commit. Until then a crash finds the members'
    /// intents without outcomes, as a crash just before the outcomes'
    /// commit would, and recovery asks the provider what each call left
    /// (`find_by_identity`). An undo point is the exception: keeping an
    /// apply reads the undo points back from the durable log to discard
    /// them, without a commit first.
    fn outcome_done(&self, brought: Option<(Vec<Write>, Ack)>) {
        let ready = self.state.lock().expect("burst lock").outcomes.done_with(brought);
        match ready {
            Some((writes, waiting)) if !writes.iter().flatten().any(holds_undo_point) => {
                self.journal.defer_groups(writes);
                for ack in waiting {
                    let _ = ack.send(Ok(()));
                }
            }
            ready => self.commit(ready),
        }
    }

    fn commit(&self, ready: Option<(Vec<Vec<Write>>, Vec<Ack>)>) {
        let Some((writes, waiting)) = ready else { return };
        // Without a runtime the walk is gone and nobody waits for the answer.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let journal = self.journal.clone();
        runtime.spawn(async move {
            let result = journal.commit_groups(writes).await;
            for ack in waiting {
                let _ = ack.send(result.clone());
            }
        });
    }
}

/// Whether `write` stores an undo step with a provider's undo record.
fn holds_undo_point(write: &Write) -> bool {
    matches!(write, Write::PutStep { step, .. } if step.undo_point().is_some())
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
            self.burst.intent_done(None);
        } else if self.owes_outcome.swap(false, Ordering::AcqRel) {
            self.burst.outcome_done(None);
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
        m.owes_outcome.store(true, Ordering::Release);
        m.burst.intent_done(Some((writes.take().unwrap_or_default(), ack)));
        Some(done)
    });
    match (joined, writes) {
        (Ok(Some(done)), _) => done.await.map_err(|_| "the journal thread stopped".to_owned())?,
        (_, writes) => journal.commit(writes.unwrap_or_default()).await,
    }
}

/// Commits what an operation's call did: together with the other outcomes
/// of its burst when the task journaled its intent in the burst's commit and
/// this is its first commit since, else on its own.
pub(super) async fn commit_outcome(journal: &Journal, writes: Vec<Write>) -> Result<(), String> {
    let mut writes = Some(writes);
    let joined = MEMBER.try_with(|m| {
        if !m.owes_outcome.swap(false, Ordering::AcqRel) {
            return None;
        }
        let (ack, done) = oneshot::channel();
        m.burst.outcome_done(Some((writes.take().unwrap_or_default(), ack)));
        Some(done)
    });
    match (joined, writes) {
        (Ok(Some(done)), _) => done.await.map_err(|_| "the journal thread stopped".to_owned())?,
        (_, writes) => journal.commit(writes.unwrap_or_default()).await,
    }
}
