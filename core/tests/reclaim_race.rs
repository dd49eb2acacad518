//! A reclaim's exchange that takes a live lock (SPEC §1 step 3), replayed from the reclaim
//! window of the simulated world: the dead lock it judged is removed by an outside `rm` while
//! its exchange stalls, a waiter publishes its own lock there, and the exchange takes that
//! live lock. The reclaimer sees it is not what it judged and exchanges back — but the live
//! lock's holder was releasing: its release checked its file before the exchange, and its
//! unlink, after it, removed the reclaimer's lock standing in at the path.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;

/// Wait (virtual time) until `gate` has stopped its call.
async fn arrived(gate: &Arc<Gate>) {
    for _ in 0..1_000 {
        if gate.arrivals() > 0 {
            return;
        }
        sleep_ms(1).await;
    }
    panic!("the call never reached its gate");
}

/// An acquire by `p` on the transcript's lock (budget 10 s), in a task of its own.
fn spawn_acquire(p: &Proc) -> tokio::task::JoinHandle<LockResult> {
    let locks = p.locks.clone();
    tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(10_000)).await })
}

/// An acquire by `p` stopped at its look at the lock path, past its check of the reclaim
/// guard: a reclaim guard taken from now on does not stop it.
async fn looking(p: &Proc) -> (tokio::task::JoinHandle<LockResult>, Arc<Gate>) {
    let look = p.fs.pause_once(Op::Read, ".jsonl.lock");
    let acquire = spawn_acquire(p);
    arrived(&look).await;
    (acquire, look)
}

/// The stage both tests share: p101's reclaim has taken p102's lock to its private name and
/// stands stopped before its exchange back; p102's release has removed p101's lock from the
/// path. `newcomer` looks at the lock path early, and is left stopped there. Returns p101's
/// acquire, the gate of its exchange back, and p102's lock inode.
async fn stage(
    w: &World,
    (p101, p102): (&Proc, &Proc),
    newcomer: Option<&Proc>,
) -> (tokio::task::JoinHandle<LockResult>, Arc<Gate>, u64) {
    w.plant_lock(&payload(w, Some(900), Some(0), Some(5), None)); // pid 900: dead
    let (publish, look) = looking(p102).await;
    let newcomer = match newcomer {
        Some(p) => Some(looking(p).await),
        None => None,
    };
    let first = p101.fs.pause_once(Op::Exchange, ".jsonl.lock");
    let back = p101.fs.pause_once(Op::Exchange, ".jsonl.lock");
    let reclaim = spawn_acquire(p101);
    arrived(&first).await;
    w.unlink_lock(); // an operator clears the dead lock while the exchange stalls
    look.open();
    let held = within(1_000, publish)
        .await
        .expect("p102's acquire ends")
        .unwrap()
        .expect("the path is free");
    let unlink = p102.fs.pause_once(Op::Unlink, ".jsonl.lock");
    let release = tokio::spawn({
        let (locks, held) = (p102.locks.clone(), held.clone());
        async move { locks.release(&held).await }
    });
    arrived(&unlink).await; // p102 has checked the file at the path: its own
    first.open();
    arrived(&back).await; // p101 took p102's lock and saw it is not the one it judged
    assert_ne!(w.lock_ino(), Some(held.ino()), "p101's lock stands in at the path");
    unlink.open();
    within(1_000, release)
        .await
        .expect("the release ends")
        .unwrap()
        .expect("a release never fails here");
    assert!(!w.lock_exists(), "p102's release removed p101's stand-in");
    if let Some((acquire, look)) = newcomer {
        look.open();
        within(1_000, acquire)
            .await
            .expect("the newcomer's acquire ends")
            .unwrap()
            .expect("the path is free");
        assert!(w.lock_exists(), "the newcomer published in the empty path");
    }
    (reclaim, back, held.ino())
}

type LockResult = Result<heldlock_core::file_lock::LockHandle, heldlock_core::LockError>;

/// Swarm seeds 166848 and 339676 of the reclaim window: the exchange back finds the path empty.
/// ENOENT there struck nothing the caller did wrong; the lock is free, and the acquire takes
/// it. What the exchange took was released, so it is not put back on the path.
///
/// Before: the exchange back's ENOENT came back to the caller as an I/O error.
#[tokio::test(start_paused = true)]
async fn a_reclaim_whose_stand_in_was_removed_takes_the_free_lock() {
    let w = World::new();
    let (p101, p102) = (w.process(101), w.process(102));
    let (reclaim, back, released_ino) = stage(&w, (&p101, &p102), None).await;
    back.open();
    let got = within(5_000, reclaim).await.expect("the acquire ends").unwrap();
    let got = got.expect("no error: the lock stood free");
    assert_eq!(w.lock_ino(), Some(got.ino()));
    assert_ne!(got.ino(), released_ino);
    assert!(!w.guard_exists(), "the reclaim guard went with the acquire");
    assert!(!p102.holds_lock());
    p101.locks.release(&got).await.unwrap();
    assert!(!w.lock_exists());
}

/// As above, but a third process publishes in the empty path before the exchange back, which
/// then takes that newcomer's live lock to p101's private name. The newcomer must keep the
/// path, and p101 must not unlink the lock it took back; what its first exchange took (p102's
/// released lock) is junk at p101's private name, and p101 removes it (swarm seed 119336: a
/// live reclaimer's litter, I15).
///
/// Before: p101 dropped what its exchange back brought as its own lock — p103's live lock —
/// and left p102's released lock on the path. Later: p101 gave the path back to p103 but
/// left p102's released lock at its private name for good.
#[tokio::test(start_paused = true)]
async fn an_exchange_back_that_takes_a_newcomers_lock_gives_it_back() {
    let w = World::new();
    let (p101, p102, p103) = (w.process(101), w.process(102), w.process(103));
    let (reclaim, back, released_ino) = stage(&w, (&p101, &p102), Some(&p103)).await;
    let newcomer = p103.locks.held_handles().pop().expect("p103 holds the lock");
    back.open();
    for _ in 0..100 {
        sleep_ms(10).await;
    }
    assert_eq!(w.lock_ino(), Some(newcomer.ino()), "p103's live lock is off the path");
    assert!(p103.holds_lock());
    assert!(!p101.holds_lock() && !reclaim.is_finished(), "p101 waits on p103's live lock");
    let left: Vec<u64> = (1..32)
        .filter_map(|n| w.fs.ino_of(Path::new(&format!("{}.101-{n}.swap", lock().display()))))
        .collect();
    assert!(
        left.is_empty(),
        "nothing stays at p101's private names: {left:?} (p102's was {released_ino})"
    );
    p103.locks.release(&newcomer).await.unwrap();
    let got = within(5_000, reclaim).await.expect("the lock is free again").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(got.ino()));
    p101.locks.release(&got).await.unwrap();
}

/// Swarm seed 7244: a reclaim took the guard, and its re-check found the dead lock it judged
/// gone. Nothing is reclaimed any more, so the guard goes before the next pass publishes our
/// lock in the emptied path: a crash while holding that lock must not also leave a guard that
/// blocks every reclaimer of it for the orphan grace.
///
/// Before: the guard stayed through the publish and went only when the acquire returned.
#[tokio::test(start_paused = true)]
async fn a_reclaim_whose_judged_lock_vanished_drops_the_guard_before_publishing() {
    let w = World::new();
    let p101 = w.process(101);
    w.plant_lock(&payload(&w, Some(900), Some(0), Some(5), None)); // pid 900: dead
    let judge = p101.fs.pause_once(Op::Read, ".jsonl.lock");
    let recheck = p101.fs.pause_once(Op::Read, ".jsonl.lock");
    let publish = p101.fs.pause_once(Op::Rename, ".jsonl.lock");
    let acquire = spawn_acquire(&p101);
    arrived(&judge).await;
    judge.open();
    arrived(&recheck).await;
    assert!(w.guard_exists(), "the re-check runs under the guard");
    w.unlink_lock(); // an operator clears the dead lock first
    recheck.open();
    arrived(&publish).await;
    assert!(!w.guard_exists(), "the guard is held while our lock is published");
    publish.open();
    let got = within(5_000, acquire).await.expect("the acquire ends").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(got.ino()));
    p101.locks.release(&got).await.unwrap();
}
