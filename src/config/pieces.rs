//! Working through the pieces of large files on every core, in source order.
//!
//! A large file is parsed in pieces of whole top-level structures (see
//! `parse::pieces`); each piece is parsed and lowered (or formatted) on its
//! own, so the pieces can be shared out among threads. The results are
//! handed back on the calling thread one by one in piece order, as soon as a
//! result and every one before it are ready, so whoever joins them sees
//! exactly the sequence a single thread would have produced. The block
//! graph's reference search (`graph::analyze`) shares out chunks of blocks
//! the same way.
//!
//! Scoped threads of the standard library rather than rayon: there is one
//! fork and one join per file set, the jobs are few (tens) and coarse
//! (milliseconds each), and the calling thread must consume results in order
//! while the others still work, which a channel does directly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};

/// Bytes per piece when one thread does all the work: small enough that a
/// piece's syntax tree is a few MiB, large enough that pieces are few.
pub(crate) const PIECE: usize = 256 * 1024;

/// The smallest piece worth a job of its own when pieces are shared out:
/// parsing 32 KiB costs about 2 ms, a job's hand-over a few microseconds.
const MIN_PIECE: usize = 32 * 1024;

/// Below this many bytes in all, the work stays on the calling thread:
/// starting a thread (about 50 µs with its stack) costs more than the
/// second core gives back on inputs smaller than a few pieces.
const THREADED_FROM: usize = 2 * MIN_PIECE;

/// Worker stacks as large as the main thread's usual one: the parsers and
/// the lowering recurse once per nesting level.
const STACK: usize = 8 * 1024 * 1024;

/// The threads pieces are shared out among: one per core.
pub(crate) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// The piece size for a file of `len` bytes: [`PIECE`] on one core; with
/// more, about four pieces per thread (so that uneven pieces even out),
/// within [`MIN_PIECE`]..=`most`.
pub(crate) fn piece_size(len: usize, most: usize) -> usize {
    match threads() {
        1 => PIECE,
        n => (len / (4 * n)).clamp(MIN_PIECE, most.max(MIN_PIECE)),
    }
}

/// The threads worth starting for pieces of `bytes` bytes of source in
/// all: one (the calling thread alone) below [`THREADED_FROM`], else one per
/// core.
pub(crate) fn threads_for(bytes: usize) -> usize {
    if bytes < THREADED_FROM {
        1
    } else {
        threads()
    }
}

/// Runs `work` on every job and hands each result to `take`, in the order of
/// `jobs`, on the calling thread, while up to `threads` threads work through
/// the jobs; with one thread (or one job) everything runs on the calling
/// thread, one job after the other.
pub(crate) fn in_order<J: Sync, T: Send>(jobs: &[J], threads: usize, work: impl Fn(&J) -> T + Sync, mut take: impl FnMut(usize, T)) {
    let threads = threads.min(jobs.len());
    if threads <= 1 {
        for (index, job) in jobs.iter().enumerate() {
            take(index, work(job));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (send, next, work) = (send.clone(), &next, &work);
            let worker = move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(index) else { break };
                if send.send((index, work(job))).is_err() {
                    break;
                }
            };
            // A thread that cannot be had leaves its share to the others
            // (or, with none at all, to the loop at the end).
            let _ = std::thread::Builder::new().stack_size(STACK).spawn_scoped(scope, worker);
        }
        drop(send);
        // Results that arrived before an earlier one, by index.
        let mut early: Vec<Option<T>> = std::iter::repeat_with(|| None).take(jobs.len()).collect();
        let mut due = 0;
        for (index, result) in receive {
            early[index] = Some(result);
            while let Some(result) = early.get_mut(due).and_then(Option::take) {
                take(due, result);
                due += 1;
            }
        }
        // Every worker has stopped: what none of them took runs here.
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(index) else { break };
            take(index, work(job));
        }
    });
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_taken_in_job_order_whatever_finishes_first() {
        // Early jobs take longest, so later results arrive first.
        let jobs: Vec<u64> = (0..200).collect();
        let work = |&job: &u64| {
            std::thread::sleep(std::time::Duration::from_micros(200u64.saturating_sub(job) * 5));
            job * job
        };
        for threads in [1, 2, 3, 8] {
            let mut taken = Vec::new();
            in_order(&jobs, threads, work, |index, result| taken.push((index, result)));
            let expected: Vec<(usize, u64)> = jobs.iter().map(|&j| (j as usize, j * j)).collect();
            assert_eq!(taken, expected, "{threads} threads");
        }
        let mut none = 0;
        in_order(&[] as &[u64], 2, work, |_, _| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn small_inputs_stay_on_one_thread_and_pieces_stay_within_bounds() {
        assert_eq!(threads_for(THREADED_FROM - 1), 1);
        assert_eq!(threads_for(THREADED_FROM), threads());
        for len in [0, 1000, 100_000, 1 << 20, 16 << 20] {
            let size = piece_size(len, PIECE);
            assert!(size == PIECE || (MIN_PIECE..=PIECE).contains(&size), "{len}: {size}");
            assert!(piece_size(len, 64 * 1024) <= 64 * 1024, "{len}");
        }
    }
}
