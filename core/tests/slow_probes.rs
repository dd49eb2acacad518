//! The judge's liveness probe reads `/proc` and takes time: a lock can be released or replaced
//! while its holder is probed. A StaleError must describe the lock on disk when it is
//! returned, so the verdict is re-verified after the last probe (SPEC §1 step 3, I15).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use heldlock_core::memprocs::ProcessView;
use heldlock_core::platform::{BoxFuture, Liveness, Processes};
use heldlock_core::{LockError, ProcessLocks};

/// A process table whose `n`-th probe (1-based) stops at a gate until the test opens it.
struct PausedProbe {
    table: ProcessView,
    probes: AtomicUsize,
    nth: usize,
    gate: Arc<Gate>,
}

impl Processes for PausedProbe {
    fn own_pid(&self) -> u32 {
        self.table.own_pid()
    }
    fn own_starttime(&self) -> Option<u64> {
        self.table.own_starttime()
    }
    fn probe(&self, pid: u32) -> BoxFuture<'_, Liveness> {
        let n = self.probes.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            if n == self.nth {
                self.gate.pass().await;
            }
            self.table.probe_now(pid)
        })
    }
    fn is_gateway(&self, pid: u32) -> BoxFuture<'_, Option<bool>> {
        self.table.is_gateway(pid)
    }
}

/// The lock machinery of process 10, whose `nth` probe stops at the returned gate.
fn locks_pausing_probe(w: &World, nth: usize) -> (Arc<ProcessLocks>, Arc<Gate>) {
    let p = w.process(10);
    let gate = Gate::new();
    let mut platform = p.platform.clone();
    platform.processes = Arc::new(PausedProbe {
        table: w.table.view(10),
        probes: AtomicUsize::new(0),
        nth,
        gate: gate.clone(),
    });
    (ProcessLocks::new(platform), gate)
}

/// A too-old lock of a live holder (report-only) is released while the acquirer probes its
/// holder for the `nth` time: the acquire takes the free lock instead of failing stale.
async fn released_during_probe(nth: usize) -> Result<(), String> {
    let w = World::new();
    w.spawn_pid(20, Some(true));
    // Two hours old: too-old, report-only.
    w.plant_lock(&payload(&w, Some(20), Some(7_200_000), Some(1_020), None));
    let (locks, gate) = locks_pausing_probe(&w, nth);
    let acquirer = tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(1_000)).await });
    if within(1_000, gate.arrived(1)).await.is_none() {
        return Err(format!("the acquire never probed the holder {nth} times"));
    }
    w.unlink_lock(); // the holder releases its lock
    gate.open();
    let r = within(5_000, acquirer).await.ok_or("the acquire hung")?.map_err(|e| e.to_string())?;
    match r {
        Ok(_) => Ok(()),
        Err(LockError::Stale { reasons, .. }) => {
            Err(format!("a lock released during probe {nth} was reported stale ({reasons:?})"))
        }
        Err(e) => Err(format!("expected the freed lock, got {e}")),
    }
}

#[tokio::test(start_paused = true)]
async fn a_lock_released_while_its_holder_is_probed_is_taken_not_reported_stale() {
    released_during_probe(1).await.unwrap();
}

/// The verdict's second judging probes again; the lock is released then. Before the probe was
/// a future, the re-read came before the second judging: with the second probe paused, the
/// acquire failed with a StaleError on a lock that was gone.
#[tokio::test(start_paused = true)]
async fn a_lock_released_while_its_holder_is_probed_again_is_taken_not_reported_stale() {
    released_during_probe(2).await.unwrap();
}

/// A holder still there when the verdict is re-verified: the StaleError stands.
#[tokio::test(start_paused = true)]
async fn a_report_only_lock_still_there_after_the_probes_fails_stale() {
    let w = World::new();
    w.spawn_pid(20, Some(true));
    w.plant_lock(&payload(&w, Some(20), Some(7_200_000), Some(1_020), None));
    let (locks, gate) = locks_pausing_probe(&w, 2);
    let acquirer = tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(1_000)).await });
    within(1_000, gate.arrived(1)).await.expect("the acquire probes twice");
    gate.open();
    let r = within(5_000, acquirer).await.expect("the acquire hung").unwrap();
    assert!(matches!(r, Err(LockError::Stale { .. })), "expected a StaleError, got {r:?}");
    assert!(w.lock_exists(), "a report-only lock is kept");
}
