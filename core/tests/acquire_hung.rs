//! SPEC §1 step 1 against the process's own hung I/O (issue 6, defect 15): the acquire's one
//! time budget holds even when one of its own filesystem calls never returns. The acquire
//! answers `Timeout` shortly after its budget; the hung call goes on in the background, and a
//! lock it creates late is released, so nothing leaks. Deterministic: tokio's paused clock,
//! the in-memory disk, and a gate that holds the chosen call for as long as the test likes.

mod common;

use std::path::Path;

use common::*;
use heldlock_core::{LockError, LockOptions};

const US: u32 = 10;
const BUDGET_MS: u64 = 1_000;
/// The acquire must answer within its budget plus this (SPEC §1: one budget).
const ANSWER_WITHIN_MS: u64 = 1_000;

fn opts() -> LockOptions {
    opts_timeout(BUDGET_MS)
}

#[tokio::test(start_paused = true)]
async fn a_create_that_hangs_past_the_budget_times_out_and_its_late_lock_is_released() {
    let w = World::new();
    let p = w.process(US);
    let create = p.fs.pause_once(Op::Create, ".swap");
    let t0 = w.now_ms();
    let answer = within(60_000, p.locks.acquire(transcript(), opts())).await;
    let took = w.now_ms() - t0;
    let result =
        answer.unwrap_or_else(|| panic!("the acquire hung for {took} ms past a {BUDGET_MS} ms budget"));
    let err = result.expect_err("acquired through a hung create");
    assert!(matches!(&err, LockError::Timeout { lock_path, .. } if lock_path == lock()), "{err}");
    assert!((BUDGET_MS..=BUDGET_MS + ANSWER_WITHIN_MS).contains(&took), "answered after {took} ms");
    assert_eq!(p.events.count(|e| matches!(e, Ev::AcquireFailed { timeout: true })), 1);
    assert_eq!(create.arrivals(), 1);

    // The hung create returns at last: its lock is taken, then released at once.
    create.open();
    sleep_ms(1_000).await;
    assert!(!w.lock_exists(), "the late lock was left on disk");
    assert!(!p.holds_lock(), "the late lock is still in the held map");
    let acquired = p.events.count(|e| matches!(e, Ev::Acquired { .. }));
    let released = p.events.count(|e| matches!(e, Ev::ReleaseEnd { unlinked: true, .. }));
    assert_eq!((acquired, released), (1, 1), "{:#?}", p.events.all());
    assert_eq!(p.events.count(|e| matches!(e, Ev::AcquireFailed { .. })), 1, "one answer per acquire");

    // And the lock is free for the next acquire.
    let handle = p.locks.acquire(transcript(), opts()).await.expect("the lock is free again");
    p.locks.release(&handle).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hung_lock_path_resolution_times_out_and_names_the_lock_it_meant() {
    let w = World::new();
    let p = w.process(US);
    let resolve = p.fs.pause_once(Op::CanonicalDir, DIR);
    let t0 = w.now_ms();
    let answer = within(60_000, p.locks.acquire(transcript(), opts())).await;
    let took = w.now_ms() - t0;
    let result =
        answer.unwrap_or_else(|| panic!("the acquire hung for {took} ms past a {BUDGET_MS} ms budget"));
    let err = result.expect_err("acquired through a hung realpath");
    assert!(
        matches!(&err, LockError::Timeout { lock_path, .. } if lock_path == Path::new(LOCK)),
        "{err}"
    );
    assert!((BUDGET_MS..=BUDGET_MS + ANSWER_WITHIN_MS).contains(&took), "answered after {took} ms");

    // Unblocked long after its budget, the abandoned acquire stops without taking the lock.
    resolve.open();
    sleep_ms(1_000).await;
    assert!(!w.lock_exists());
    assert_eq!(p.events.count(|e| matches!(e, Ev::Acquired { .. })), 0, "{:#?}", p.events.all());
    assert_eq!(p.fs.calls(Op::Rename, Some(lock())), 0, "the abandoned acquire went on to publish a lock");
}

/// An acquire that finishes inside its budget is not cut, whatever its calls cost: a create that
/// stalls for most of the budget still takes the lock.
#[tokio::test(start_paused = true)]
async fn a_slow_create_inside_the_budget_still_takes_the_lock() {
    let w = World::new();
    let p = w.process(US);
    let create = p.fs.pause_once(Op::Create, ".swap");
    let opener = async {
        create.arrived(1).await;
        sleep_ms(BUDGET_MS - 100).await;
        create.open();
    };
    let (result, ()) = tokio::join!(p.locks.acquire(transcript(), opts()), opener);
    let handle = result.expect("a slow create inside the budget");
    assert!(w.lock_exists());
    p.locks.release(&handle).await.unwrap();
}

/// The budget runs from the first attempt (SPEC §1 step 1), not from the call: a resolve of
/// the lock path that is slow (not hung) does not shorten it, and the loop's own timeout —
/// with the live holder it waited on — is the answer, not the hang bound's.
#[tokio::test(start_paused = true)]
async fn a_slow_resolve_does_not_eat_into_the_budget() {
    let w = World::new();
    let holder = w.process(20);
    let held = holder.locks.acquire(transcript(), opts()).await.expect("the holder's lock");
    let p = w.process(US);
    let resolve = p.fs.pause_once(Op::CanonicalDir, DIR);
    const RESOLVE_MS: u64 = 900;
    let opener = async {
        resolve.arrived(1).await;
        sleep_ms(RESOLVE_MS).await;
        resolve.open();
    };
    let t0 = w.now_ms();
    let (result, ()) = tokio::join!(p.locks.acquire(transcript(), opts()), opener);
    let took = w.now_ms() - t0;
    let err = result.expect_err("acquired a live holder's lock");
    match &err {
        LockError::Timeout {
            owner: Some(owner), ..
        } => assert_eq!(owner.pid, 20, "{err}"),
        other => panic!("not the loop's own timeout naming the holder: {other}"),
    }
    assert_eq!(took, RESOLVE_MS + BUDGET_MS, "the budget did not run from the first attempt");
    holder.locks.release(&held).await.unwrap();
}
