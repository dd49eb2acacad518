//! The one work queue of campaigns, the determinism check and the mutant self-test: a lazy
//! source of work items fed through a bounded channel to `jobs` worker threads, whose results
//! come back through another bounded channel to the caller's thread. Memory holds at most a
//! few items per worker, however long the source: `0..u64::MAX` starts at once and stays flat.

use std::ops::ControlFlow;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

/// Items queued (and results waiting) per worker: enough to keep workers busy, no more.
const QUEUE_PER_WORKER: usize = 4;

/// At most this many worker threads (a typo such as `--jobs 100000` is refused earlier).
pub const MAX_JOBS: usize = 1024;

/// Run `work` over every item of `source` on `jobs` threads and hand each result to `collect`
/// on the calling thread, in completion order. `collect` returning `Break` stops the run: no
/// new item starts, items under way finish and are dropped.
pub fn run<T, R>(
    jobs: usize,
    source: impl Iterator<Item = T> + Send,
    work: impl Fn(T) -> R + Sync,
    mut collect: impl FnMut(R) -> ControlFlow<()>,
) where
    T: Send,
    R: Send,
{
    let jobs = jobs.clamp(1, MAX_JOBS);
    let (item_tx, item_rx) = sync_channel::<T>(jobs * QUEUE_PER_WORKER);
    let (result_tx, result_rx) = sync_channel::<R>(jobs * QUEUE_PER_WORKER);
    // Workers own the item receiver: when the last one stops, the feeder's send fails.
    let item_rx = Arc::new(Mutex::new(item_rx));
    let work = &work;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for item in source {
                if item_tx.send(item).is_err() {
                    break;
                }
            }
        });
        for _ in 0..jobs {
            let item_rx = Arc::clone(&item_rx);
            let result_tx = result_tx.clone();
            scope.spawn(move || worker(&item_rx, &result_tx, work));
        }
        drop(item_rx);
        drop(result_tx);
        for result in result_rx.iter() {
            if collect(result).is_break() {
                break;
            }
        }
        // Dropping the receiver makes every worker's next send fail, and so every worker stop.
        drop(result_rx);
    });
}

fn worker<T, R>(
    items: &Mutex<Receiver<T>>,
    results: &std::sync::mpsc::SyncSender<R>,
    work: &(impl Fn(T) -> R + Sync),
) {
    loop {
        // A poisoned lock means another worker panicked; stop like the others will.
        let next = match items.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(item) = next else { return };
        if results.send(work(item)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_whatever_the_jobs() {
        for jobs in [1, 2, 5] {
            let mut seen = Vec::new();
            run(
                jobs,
                0..1000u64,
                |i| i * 2,
                |r| {
                    seen.push(r);
                    ControlFlow::Continue(())
                },
            );
            seen.sort();
            assert_eq!(seen, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_endless_source_stops_when_told() {
        let mut n = 0u64;
        run(
            2,
            0..u64::MAX,
            |i| i,
            |_| {
                n += 1;
                if n == 100 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert_eq!(n, 100);
    }
}
