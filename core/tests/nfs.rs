//! The lock on an NFS mount (SPEC §1 steps 2–3): `renameat2` with a flag is refused (EINVAL),
//! so neither `rename_noreplace` nor `exchange` is there; `link` and the plain `rename` are.
//! Each test replays a race of the local-filesystem campaign on that mount, and failed on the
//! fallbacks the lock had before (noted on each).

mod common;

use std::path::Path;

use common::*;
use heldlock_core::file_lock::{ORPHAN_GRACE_MS, ORPHAN_GRACE_SHORT_MS};
use heldlock_core::LockError;

/// Private names the process `pid` may have used beside the lock, still on disk.
fn private_names_left(w: &World, pid: u32) -> Vec<String> {
    (1..32)
        .map(|n| format!("{LOCK}.{pid}-{n}.swap"))
        .filter(|name| w.fs.ino_of(Path::new(name)).is_some())
        .collect()
}

/// The create race of swarm seed 85695 on NFS: the creator stalls in a payload write past the
/// orphan grace while another process looks at the lock path. Published whole by `link`, the
/// lock there is never payload-less, so nobody reclaims it and nobody can judge it a
/// stale orphan.
///
/// Before `link` (the exclusive create in place, then the payload): the stalled payload write
/// left a payload-less lock at the path, and p102 reclaimed it after the orphan grace.
#[tokio::test(start_paused = true)]
async fn a_lock_published_by_link_is_never_payload_less() {
    let w = World::new();
    let creator = w.process(101);
    let other = w.process(102);
    creator.fs.nfs();
    other.fs.nfs();
    // A payload write at the lock path itself (after the private one) stalls here.
    let in_place = creator.fs.pause_next(Op::WriteFd);
    let create = tokio::spawn({
        let locks = creator.locks.clone();
        async move { locks.acquire(transcript(), opts_timeout(10_000)).await }
    });
    sleep_ms(ORPHAN_GRACE_SHORT_MS + 1_000).await;
    let r = other.locks.acquire(transcript(), opts_timeout(1_000)).await;
    assert!(
        other.events.reclaim_reasons().is_empty(),
        "p102 reclaimed p101's lock as {:?}: the path held a payload-less lock while p101 stalled",
        other.events.reclaim_reasons()
    );
    assert!(matches!(r, Err(LockError::Timeout { .. })), "p101 holds the lock: {r:?}");
    in_place.open();
    let h = within(1_000, create).await.expect("the creator's acquire ends").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(h.ino()));
    assert!(private_names_left(&w, 101).is_empty(), "{:?}", private_names_left(&w, 101));
    creator.locks.release(&h).await.unwrap();
    assert!(!w.lock_exists());
}

/// The reclaim race of swarm seed 484872 on NFS (as `d22` on a local disk): a reclaimer stopped
/// between its re-check and its removal of the dead lock has its guard recovered after the
/// orphan grace by another process, which reclaims the dead lock and takes the lock; the
/// stopped one then resumes. Its removal must not take the live lock off the path.
///
/// Before the move aside (the re-checked unlink): the resumed reclaimer's unlink removed
/// p102's live lock and it then published its own: two holders.
#[tokio::test(start_paused = true)]
async fn a_resumed_reclaimer_without_exchange_never_removes_the_live_lock() {
    let w = World::new();
    w.plant_lock(&payload(&w, Some(900), Some(0), Some(5), None)); // pid 900: dead
    let slow = w.process(101);
    let fast = w.process(102);
    slow.fs.nfs();
    fast.fs.nfs();
    // The slow one stops at its removal of the judged lock, whichever call that is.
    let unlink = slow.fs.pause_once(Op::Unlink, ".jsonl.lock");
    let aside = slow.fs.pause_once(Op::Move, ".jsonl.lock");
    let opts = opts_timeout(120_000); // orphan grace 30 s
    let slow_acquire = tokio::spawn({
        let locks = slow.locks.clone();
        async move { locks.acquire(transcript(), opts).await }
    });
    for _ in 0..100 {
        if unlink.arrivals() + aside.arrivals() > 0 {
            break;
        }
        sleep_ms(10).await;
    }
    assert_eq!(unlink.arrivals() + aside.arrivals(), 1, "the reclaimer never reached its removal");
    assert!(w.guard_exists(), "the stopped reclaimer holds the guard");
    sleep_ms(ORPHAN_GRACE_MS + 1_000).await;
    let h = fast.locks.acquire(transcript(), opts).await.expect("an aged guard is recovered");
    assert_eq!(w.lock_ino(), Some(h.ino()));
    unlink.open();
    aside.open();
    sleep_ms(5_000).await;
    assert_eq!(w.lock_ino(), Some(h.ino()), "the resumed reclaimer took p102's live lock off the path");
    assert!(!slow.holds_lock(), "two holders of one lock");
    assert!(!slow_acquire.is_finished(), "the resumed reclaimer waits for the live holder");
    fast.locks.release(&h).await.unwrap();
    let hs = within(5_000, slow_acquire).await.expect("the lock is free again").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(hs.ino()));
    assert!(!w.guard_exists());
    slow.locks.release(&hs).await.unwrap();
    assert!(private_names_left(&w, 101).is_empty(), "{:?}", private_names_left(&w, 101));
    assert!(private_names_left(&w, 102).is_empty(), "{:?}", private_names_left(&w, 102));
}
