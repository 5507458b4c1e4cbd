//! Group commit of state writes. Every operation's writes must be durable
//! before the operation proceeds; batching the writes of concurrent
//! operations into one transaction keeps that cost per batch, not per write.

use std::sync::mpsc;
use std::sync::Arc;
use strata_state::{StateError, StateStore, Write};
use tokio::sync::oneshot;

type Request = (Vec<Write>, oneshot::Sender<Result<(), String>>);

/// A handle to the journal thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
}

impl Journal {
    /// Starts the writer thread over `store`.
    pub fn start(store: Arc<dyn StateStore>) -> Journal {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("strata-journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    let writes: Vec<Write> = batch.iter_mut().flat_map(|(w, _)| std::mem::take(w)).collect();
                    let result = store.commit(writes).map_err(|e: StateError| e.to_string());
                    for (_, ack) in batch {
                        let _ = ack.send(result.clone());
                    }
                }
            })
            .expect("spawn journal thread");
        Journal { tx }
    }

    /// Commits `writes` durably (together with whatever else is queued).
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send((writes, ack)).map_err(|_| "the journal thread stopped".to_owned())?;
        done.await.map_err(|_| "the journal thread stopped".to_owned())?
    }
}
