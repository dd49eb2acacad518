//! The defects of issue 6, each replayed on the in-memory world: a test per defect that failed
//! on the code before its fix (the failure is noted on each test).

mod common;

use common::checks;
use common::*;

// ---------------------------------------------------------------------------------------
// Defect 1: the owner mutex keys by the transcript with its directory resolved (SPEC §1/§2).

/// Before the fix: `/link/sess.jsonl` was owned at once next to `/s/sess.jsonl` (two owners
/// of one lock file).
#[tokio::test(start_paused = true)]
async fn d01_owner_mutex_resolves_directory_symlinks() {
    checks::owner_through_symlink(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 2: an abort forces only `held` or the handle a stuck graceful release owns (SPEC §3).

/// Before the fix: at the settle bound the abort force-released the cleanup's lock and
/// poisoned the controller; the cleanup's append then failed with a TakeoverError.
#[tokio::test(start_paused = true)]
async fn d02_an_abort_leaves_the_cleanup_lock_alone() {
    checks::abort_leaves_cleanup_lock(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 3: acquire_for_cleanup from inside a write scope writes through the scope's lock.

/// Before the fix: still waiting (for its own scope to go idle) after 200 s of virtual time.
#[tokio::test(start_paused = true)]
async fn d03_cleanup_from_inside_a_scope_returns() {
    checks::cleanup_inside_scope(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 4: the transcript deleted while the lock is released poisons (SPEC §3, I10).

/// Before the fix: the write failed with ENOENT (an I/O error) and the controller stayed
/// unpoisoned.
#[tokio::test(start_paused = true)]
async fn d04_a_transcript_deleted_while_released_is_a_takeover() {
    checks::deleted_transcript_poisons(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 5: a benign append requires the same file (dev/ino).

/// Before the fix: the replaced transcript (new inode, same bytes) passed the fence as our
/// own pending append, and the reacquire returned Ok.
#[tokio::test(start_paused = true)]
async fn d05_a_replaced_transcript_after_an_unverified_append_is_a_takeover() {
    checks::replaced_after_unverified_append(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 6: an I/O error in the cleanup's fence check is surfaced, never swallowed.

/// Before the fix: the cleanup lock became a no-op and its append returned Ok(()) having
/// written nothing (a write acknowledged and never written).
#[tokio::test(start_paused = true)]
async fn d06_a_cleanup_fence_io_error_is_surfaced() {
    checks::cleanup_fence_error_surfaces(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 7: an EPERM probe still runs the recycled-pid and non-owner checks.

/// Before the fix: the acquire timed out after 1 s on a lock of a reused pid whose probe
/// was refused with EPERM.
#[tokio::test(start_paused = true)]
async fn d07_an_eperm_probe_still_detects_a_reused_pid() {
    checks::eperm_holder_still_judged(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 8: createdAt with an offset is valid.

/// Before the fix: the live holder's lock was judged invalid-createdAt and reclaimed once
/// past the orphan grace.
#[tokio::test(start_paused = true)]
async fn d08_created_at_with_an_offset_is_valid() {
    checks::created_at_with_offset_is_valid(None).await.unwrap();
}

/// Every RFC 3339 form `Date.parse` accepts: `Z` or `z`, offsets, `t` or a space, any number
/// of fraction digits. (Before the fix: every offset form was `None`.)
#[test]
fn d08_created_at_forms() {
    use heldlock_core::payload::parse_iso8601;
    let t = 1_790_000_000_123_i64; // 2026-09-21T14:13:20.123Z
    for s in [
        "2026-09-21T14:13:20.123Z",
        "2026-09-21T16:13:20.123+02:00",
        "2026-09-21T08:43:20.123-05:30",
        "2026-09-21T14:13:20.123+00:00",
        "2026-09-21T14:13:20.123-00:00",
        "2026-09-21t14:13:20.123z",
        "2026-09-21 14:13:20.123Z",
        "2026-09-21T14:13:20.123456789Z",
    ] {
        assert_eq!(parse_iso8601(s), Some(t), "{s}");
    }
    assert_eq!(parse_iso8601("2026-09-21T14:13:20Z"), Some(t - 123));
    for bad in ["", "yesterday", "2026-09-21T25:00:00Z", "2026-09-21T13:33:20+2"] {
        assert_eq!(parse_iso8601(bad), None, "{bad}");
    }
}

// ---------------------------------------------------------------------------------------
// Defect 9: the stale verdict is re-verified before failing.

/// Before the fix: the acquire failed at once with a StaleError (too-old) on the old bytes
/// although the file was by then a live holder's fresh lock.
#[tokio::test(start_paused = true)]
async fn d09_a_stale_verdict_is_reverified_before_failing() {
    checks::stale_verdict_reverified(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 10: a lock that keeps vanishing is retried for the whole budget.

/// Before the fix: TimeoutError after 0 ms of a 1 000 ms budget (the iteration cap).
#[tokio::test(start_paused = true)]
async fn d10_a_vanishing_lock_is_retried_for_the_whole_budget() {
    checks::vanishing_lock_uses_the_budget(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 11: two ProcessLocks over one process's platform share one table.

/// Before the fix: the second instance reclaimed the first's live lock as orphan-self-pid and
/// both held it.
#[tokio::test(start_paused = true)]
async fn d11_a_second_process_locks_does_not_reclaim_the_first_ones_lock() {
    use heldlock_core::ProcessLocks;
    let w = World::new();
    let p = w.process(10);
    let first = ProcessLocks::new(p.platform.clone());
    let second = ProcessLocks::new(p.platform.clone());
    let h = first.acquire(transcript(), opts_timeout(1_000)).await.unwrap();
    let r = second.acquire(transcript(), opts_timeout(1_000)).await;
    assert!(
        matches!(r, Err(heldlock_core::LockError::Timeout { .. })),
        "the second instance took the first one's live lock: {r:?} (reclaims {:?})",
        p.events.reclaim_reasons()
    );
    assert_eq!(w.lock_ino(), Some(h.ino()));
    first.release(&h).await.unwrap();
    assert!(!w.lock_exists());
}

// ---------------------------------------------------------------------------------------
// Defect 12: dispose releases a cleanup lock dropped without release().

/// Before the fix: the dropped cleanup lock's file stayed on disk after dispose (until the
/// watchdog).
#[tokio::test(start_paused = true)]
async fn d12_dispose_releases_a_dropped_cleanup_lock() {
    checks::dropped_cleanup_lock_released_by_dispose(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 13: re-acquiring after someone removed our lock file never panics.

/// Before the fix: the acquire panicked ("two handles of one process").
#[tokio::test(start_paused = true)]
async fn d13_reacquire_after_our_lock_file_was_removed() {
    checks::reacquire_after_our_lock_was_removed(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Defect 14: arithmetic on counters and times is checked (no overflow on extreme options).

/// Before the fix: "attempt to add with overflow" (the deadline `now + timeout_ms`) in the
/// acquire and in the owner mutex.
#[tokio::test(start_paused = true)]
async fn d14_extreme_timeouts_do_not_overflow() {
    use heldlock_core::{AbortSignal, LockOptions};
    let w = World::new();
    let p = w.process(10);
    sleep_ms(10).await; // the monotonic clock is past zero
    let opts = LockOptions {
        timeout_ms: u64::MAX,
        stale_ms: u64::MAX,
        max_hold_ms: u64::MAX,
    };
    let h = p.locks.acquire(transcript(), opts).await.unwrap();
    p.locks.release(&h).await.unwrap();
    let owner = make_owner(p.platform.clone(), None);
    let g = owner.acquire(transcript(), u64::MAX, &AbortSignal::new()).await.unwrap();
    g.release();
    // A live holder's lock planted with a createdAt far in the future: ages clamp, no overflow.
    w.spawn_pid(20, Some(true));
    w.plant_lock(b"{\"pid\":20,\"createdAt\":\"9999-12-31T23:59:59Z\",\"maxHoldMs\":18446744073709551615}");
    let r = p.locks.acquire(transcript(), opts_timeout(100)).await;
    assert!(matches!(r, Err(heldlock_core::LockError::Timeout { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// Defect 19 and errors callers can match: every I/O error names its path; the takeover error
// carries its poison reason; the owner is structured.

/// Before the fix: "lock I/O failed: No space left on device (os error 28)" and
/// "transcript I/O failed: Input/output error (os error 5)": no path in either.
#[tokio::test(start_paused = true)]
async fn d19_io_errors_name_their_path() {
    use heldlock_core::event::PoisonReason;
    use heldlock_core::platform::errno;
    use heldlock_core::{ControllerError, ControllerOptions, LockError};
    let w = World::new();
    let p = w.process(10);
    p.fs.fail_once(Op::Rename, LOCK, errno::ENOSPC);
    let e = p.locks.acquire(transcript(), opts_timeout(1_000)).await.unwrap_err();
    assert!(matches!(&e, LockError::Io { path, .. } if path == lock()), "{e:?}");
    assert_eq!(e.raw_os_error(), Some(errno::ENOSPC));
    assert!(e.to_string().contains(LOCK), "{e}");
    // Our lock's private file, before it is published at the lock path: named as it is.
    p.fs.fail_once(Op::Create, ".swap", errno::ENOSPC);
    let e = p.locks.acquire(transcript(), opts_timeout(1_000)).await.unwrap_err();
    let private = |path: &std::path::Path| path.to_string_lossy().starts_with(&format!("{LOCK}.10-"));
    assert!(matches!(&e, LockError::Io { path, .. } if private(path)), "{e:?}");
    assert_eq!(e.raw_os_error(), Some(errno::ENOSPC));

    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EIO);
    let e = ctl.release_for_prompt().await.unwrap_err();
    assert!(matches!(&e, ControllerError::Io { path, .. } if path == transcript()), "{e:?}");
    assert!(e.to_string().contains(TRANSCRIPT), "{e}");

    // A takeover says why the controller is poisoned.
    ctl.reacquire_after_prompt().await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    w.tool_append(b"{\"type\":\"message\",\"from\":\"someone else\"}\n");
    let e = ctl.reacquire_after_prompt().await.unwrap_err();
    assert!(
        matches!(
            e,
            ControllerError::Takeover {
                reason: PoisonReason::Takeover
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("(takeover)"), "{e}");
    ctl.dispose().await;
}

// ---------------------------------------------------------------------------------------
// Oracle finding A (I15, seeds 351, 2196, …): the ENOENT of a creator's vanished lock is
// retried within the budget (SPEC §1).

/// Before the fix: the creator's acquire failed with "lock I/O failed on …: No such file or
/// directory" once its payload-less lock was reclaimed and released while it stalled.
#[tokio::test(start_paused = true)]
async fn d20_a_creator_whose_lock_vanished_retries() {
    checks::creator_retries_its_vanished_lock(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Oracle finding B (I10, seed 6770): nothing makes a disposed controller hold or write
// again (SPEC I4), not even a write scope that was waiting for its short lock at dispose.

/// Before the fix: the scope got its short lock after dispose and its append returned Ok
/// (in the simulation: after the next attempt owned the session, whose fence then saw an
/// unowned change).
#[tokio::test(start_paused = true)]
async fn d21_a_write_scope_waiting_at_dispose_fails_unwritten() {
    checks::write_waiting_at_dispose_fails(None).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Oracle finding C (I11, swarm seed 484872, reclaim-race seed 355): a reclaimer stopped past
// the orphan grace while holding the guard has its guard recovered by another process, which
// reclaims the dead lock and takes the lock; the stopped one then resumes.

/// Before the fix: the resumed reclaimer's unlink (checked before it stopped) removed the new
/// holder's live lock and it then created its own: two holders of one lock.
#[tokio::test(start_paused = true)]
async fn d22_a_resumed_reclaimer_never_removes_the_lock_that_replaced_the_judged_one() {
    use heldlock_core::file_lock::ORPHAN_GRACE_MS;
    let w = World::new();
    w.plant_lock(&payload(&w, Some(900), Some(0), Some(5), None)); // pid 900: dead
    let slow = w.process(101);
    let fast = w.process(102);
    // The slow one stops right after its re-check under the guard (its second stat of the lock).
    let stopped = slow.fs.freeze_after(Op::Stat, ".jsonl.lock", 2);
    let opts = opts_timeout(120_000); // orphan grace 30 s
    let slow_acquire = tokio::spawn({
        let locks = slow.locks.clone();
        async move { locks.acquire(transcript(), opts).await }
    });
    stopped.arrived(1).await;
    assert!(w.guard_exists(), "the stopped reclaimer holds the guard");
    sleep_ms(ORPHAN_GRACE_MS + 1_000).await;
    let h = fast.locks.acquire(transcript(), opts).await.expect("an aged guard is recovered");
    assert_eq!(w.lock_ino(), Some(h.ino()));
    stopped.open();
    sleep_ms(5_000).await;
    assert_eq!(w.lock_ino(), Some(h.ino()), "the live lock of p102 was taken by the resumed reclaimer");
    assert!(!slow.holds_lock(), "two holders of one lock");
    assert!(!slow_acquire.is_finished(), "the resumed reclaimer waits for the live holder");
    fast.locks.release(&h).await.unwrap();
    let hs = slow_acquire.await.unwrap().expect("the lock is free again");
    assert_eq!(w.lock_ino(), Some(hs.ino()));
    assert!(!w.guard_exists());
}

// ---------------------------------------------------------------------------------------
// Oracle finding D (I10, swarm seeds 632696, 43348, 81868): an append of an aborted attempt,
// in flight when the abort forced its lock away (SPEC I5 does not wait for it), lands after
// the next attempt of the same process wrote and released for its prompt. It is this
// process's own write on top of its newest owned version: SPEC §3 records it as owned, and the
// next attempt's fence accepts it.

/// Before the fix: the next attempt's reacquire failed with a TakeoverError (the late write of
/// the poisoned controller was never recorded as owned).
#[tokio::test(start_paused = true)]
async fn d23_a_late_own_append_of_an_aborted_attempt_is_not_a_takeover() {
    use heldlock_core::controller::SETTLE_BOUND_MS;
    use heldlock_core::event::AbortKind;
    use heldlock_core::ControllerOptions;
    let w = World::new();
    let p = w.process(10);
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    let landing = p.fs.pause_once(Op::Append, ".jsonl");
    let late = tokio::spawn({
        let first = first.clone();
        async move { first.with_write_lock(|s| async move { s.append(b"{\"type\":\"late\"}\n").await }).await }
    });
    landing.arrived(1).await;
    first.abort(AbortKind::Timeout);
    sleep_ms(SETTLE_BOUND_MS + 100).await;
    assert!(!p.holds_lock() && first.is_poisoned(), "the abort forced the lock away");
    first.dispose().await;
    let next = p.controller(ControllerOptions::default()).await.unwrap();
    next.with_write_lock(|s| async move { s.append(b"{\"type\":\"next\"}\n").await })
        .await
        .unwrap();
    next.release_for_prompt().await.unwrap();
    landing.open();
    assert!(late.await.unwrap().is_ok(), "the in-flight append landed");
    assert!(w.transcript_bytes().ends_with(b"{\"type\":\"next\"}\n{\"type\":\"late\"}\n"));
    next.reacquire_after_prompt().await.expect("our own late append is not a takeover");
    next.with_write_lock(|s| async move { s.append(b"{\"type\":\"after\"}\n").await })
        .await
        .unwrap();
    next.dispose().await;
}

/// The same late append on top of a version someone else changed is still a takeover: only
/// a version made of owned writes and our entry is vouched for.
#[tokio::test(start_paused = true)]
async fn d23_a_late_own_append_over_a_foreign_change_is_still_a_takeover() {
    use heldlock_core::controller::SETTLE_BOUND_MS;
    use heldlock_core::event::AbortKind;
    use heldlock_core::ControllerOptions;
    let w = World::new();
    let p = w.process(10);
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    let landing = p.fs.pause_once(Op::Append, ".jsonl");
    let late = tokio::spawn({
        let first = first.clone();
        async move { first.with_write_lock(|s| async move { s.append(b"{\"type\":\"late\"}\n").await }).await }
    });
    landing.arrived(1).await;
    first.abort(AbortKind::Timeout);
    sleep_ms(SETTLE_BOUND_MS + 100).await;
    first.dispose().await;
    let next = p.controller(ControllerOptions::default()).await.unwrap();
    next.with_write_lock(|s| async move { s.append(b"{\"type\":\"next\"}\n").await })
        .await
        .unwrap();
    next.release_for_prompt().await.unwrap();
    w.tool_append(b"{\"type\":\"message\",\"by\":\"someone else\"}\n");
    landing.open();
    assert!(late.await.unwrap().is_ok());
    let r = next.reacquire_after_prompt().await;
    assert!(matches!(r, Err(heldlock_core::ControllerError::Takeover { .. })), "{r:?}");
    next.dispose().await;
}

// ---------------------------------------------------------------------------------------
// World finding (branch `world`, seed 3247): owned writes are keyed by the session's one name
// (its canonical path), as the lock and the owner mutex are (SPEC §1, §3 "by any controller
// of this process").

/// Before the fix: a write of this process through a symlinked spelling of the session was
/// recorded under that spelling; the other controller's reacquire found no owned write for its
/// own spelling and failed with a TakeoverError.
#[tokio::test(start_paused = true)]
async fn d24_an_owned_write_through_a_symlinked_spelling_is_owned() {
    use heldlock_core::{AttemptController, ControllerOptions};
    let w = World::new();
    w.fs.symlink_dir(std::path::Path::new(DIR), std::path::Path::new("/link")).unwrap();
    let p = w.process(10);
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    first.release_for_prompt().await.unwrap();
    let aliased = std::path::Path::new("/link/sess.jsonl");
    let other = AttemptController::create(p.locks.clone(), aliased, ControllerOptions::default())
        .await
        .unwrap();
    other
        .with_write_lock(|s| async move { s.append(b"{\"type\":\"message\",\"n\":1}\n").await })
        .await
        .unwrap();
    other.dispose().await;
    first
        .reacquire_after_prompt()
        .await
        .expect("a write of this process is owned, whatever its spelling");
    first.dispose().await;
}

// ---------------------------------------------------------------------------------------
// World finding (branch `world`, seed 1507): the fence judges one version of the transcript —
// the content it reads is the file it stat'ed. Deleted or replaced between the fence's stat
// and its read is a change like any other (SPEC §3, I10).

/// Before the fix: deleted between the stat and the read, the reacquire failed with ENOENT
/// and left the controller unpoisoned; replaced (new inode, the old bytes plus a benign line)
/// between them, it passed as a benign append to the file stat'ed.
#[tokio::test(start_paused = true)]
async fn d25_a_transcript_deleted_or_replaced_during_the_fence_check_is_a_takeover() {
    use heldlock_core::memfs::DEFAULT_FD_LIMIT;
    use heldlock_core::{ControllerError, ControllerOptions};
    const USAGE: &[u8] = b"{\"type\":\"usage\",\"tokens\":1}\n";
    for replace in [false, true] {
        let w = World::new();
        let p = w.process(10);
        let ctl = p.controller(ControllerOptions::default()).await.unwrap();
        ctl.release_for_prompt().await.unwrap();
        w.tool_append(USAGE); // a benign change: the fence check reads to judge it
        let read = p.fs.pause_once(Op::Read, "sess.jsonl");
        let check = tokio::spawn({
            let ctl = ctl.clone();
            async move { ctl.reacquire_after_prompt().await }
        });
        read.arrived(1).await;
        let tool = w.fs.view(TOOL_PID, DEFAULT_FD_LIMIT);
        tool.unlink_now(transcript()).unwrap();
        if replace {
            let mut bytes = INITIAL.to_vec();
            bytes.extend_from_slice(USAGE);
            bytes.extend_from_slice(USAGE);
            tool.write_path_now(transcript(), &bytes, true).unwrap();
        }
        read.open();
        let r = check.await.unwrap();
        assert!(matches!(r, Err(ControllerError::Takeover { .. })), "replace={replace}: {r:?}");
        assert!(ctl.is_poisoned() && !ctl.holds() && !w.lock_exists());
        ctl.dispose().await;
    }
}

// ---------------------------------------------------------------------------------------
// Campaign finding (swarm seed 756, on the exchange before this fix): every way out of a
// reclaim but the exchange drops the reclaimer's own lock made at its private name.

/// Before the fix: an EIO on the re-check under the guard returned with the spare's
/// descriptor open and its file on disk; at an fd limit of 2 the process then failed every
/// acquire with EMFILE and never reclaimed its own orphan (I16).
#[tokio::test(start_paused = true)]
async fn d26_a_failed_recheck_under_the_guard_leaks_nothing() {
    use heldlock_core::platform::errno;
    let w = World::new();
    w.plant_lock(&payload(&w, Some(900), Some(0), Some(5), None)); // dead holder
    let p = w.process(101);
    let before = w.fs.open_fds().get(&101).copied().unwrap_or(0);
    // The judge's stat passes; the re-check's stat (the second) fails.
    p.fs.pause_once(Op::Stat, ".jsonl.lock").open();
    p.fs.fail_once(Op::Stat, ".jsonl.lock", errno::EIO);
    let _ = p.locks.acquire(transcript(), opts_timeout(1_000)).await;
    p.fs.clear();
    let spares: Vec<_> = [
        "/s/sess.jsonl.lock.101-2.swap",
        "/s/sess.jsonl.lock.101-3.swap",
        "/s/sess.jsonl.lock.101-4.swap",
    ]
    .iter()
    .filter(|s| w.fs.ino_of(std::path::Path::new(s)).is_some())
    .collect();
    assert!(spares.is_empty(), "spare left on disk: {spares:?}");
    assert_eq!(w.fs.open_fds().get(&101).copied().unwrap_or(0), before, "a descriptor leaked");
    let h = p
        .locks
        .acquire(transcript(), opts_timeout(1_000))
        .await
        .expect("the dead lock is reclaimed");
    p.locks.release(&h).await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Campaign finding (swarm seed 106, with the oracle's new I4 check on writes): a write scope
// holding its short lock when dispose returns (from outside) never starts a write after it.

/// Before the fix: dispose returned while the scope's fence check stalled; the scope then
/// appended under its short lock after dispose (SPEC I4: the controller holds nothing).
#[tokio::test(start_paused = true)]
async fn d27_a_short_lock_scope_never_writes_after_dispose() {
    use heldlock_core::{ControllerError, ControllerOptions};
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    let before = w.transcript_bytes();
    let fence_stat = p.fs.pause_once(Op::Stat, "sess.jsonl");
    let scope = tokio::spawn({
        let ctl = ctl.clone();
        async move { ctl.with_write_lock(|s| async move { s.append(b"{\"type\":\"late\"}\n").await }).await }
    });
    fence_stat.arrived(1).await;
    assert!(p.holds_lock(), "the scope holds its short lock");
    ctl.dispose().await;
    fence_stat.open();
    let r = scope.await.unwrap();
    assert!(matches!(r, Err(ControllerError::Disposed)), "{r:?}");
    assert_eq!(w.transcript_bytes(), before, "a write after dispose (I4)");
    assert!(!p.holds_lock() && !w.lock_exists());
}

// ---------------------------------------------------------------------------------------
// Campaign finding (I11 then I1, swarm seed 85695): a creator whose payload write failed
// abandoned its fresh lock by a check (its inode still at the path) and then an unlink. The
// unlink stalled past the orphan grace; a reclaimer took the payload-less file meanwhile and
// held the lock; the late unlink then removed the reclaimer's live lock.

/// Before the fix: the creator's unlink, checked before it stalled, landed on p102's live lock
/// (`lock_ino()` was `None` while p102 held it).
#[tokio::test(start_paused = true)]
async fn d28_a_failed_create_never_removes_the_lock_that_replaced_it() {
    use heldlock_core::file_lock::ORPHAN_GRACE_SHORT_MS;
    use heldlock_core::platform::errno;
    let w = World::new();
    let creator = w.process(101);
    let reclaimer = w.process(102);
    let opts = opts_timeout(10_000); // orphan grace 5 s
    creator.fs.pause_then_fail_next(Op::WriteFd, errno::EAGAIN).open(); // the payload write fails
    let cleanup = creator.fs.pause_next(Op::Unlink); // and the clean-up after it stalls
    let create = tokio::spawn({
        let locks = creator.locks.clone();
        async move { locks.acquire(transcript(), opts).await }
    });
    assert!(within(1_000, cleanup.arrived(1)).await.is_some(), "the creator never cleaned up");
    sleep_ms(ORPHAN_GRACE_SHORT_MS + 1_000).await;
    let h = reclaimer
        .locks
        .acquire(transcript(), opts)
        .await
        .expect("the lock is taken while the creator stalls");
    assert_eq!(w.lock_ino(), Some(h.ino()));
    cleanup.open();
    let e = within(1_000, create).await.expect("the creator's acquire ends").unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EAGAIN), "the failed payload write is surfaced: {e}");
    settle().await;
    assert_eq!(w.lock_ino(), Some(h.ino()), "the creator's late clean-up removed p102's live lock");
    reclaimer.locks.release(&h).await.unwrap();
    assert!(!w.lock_exists());
    let left: Vec<_> = (1..8)
        .map(|n| format!("/s/sess.jsonl.lock.101-{n}.swap"))
        .filter(|s| w.fs.ino_of(std::path::Path::new(s)).is_some())
        .collect();
    assert!(left.is_empty(), "the creator left its private file: {left:?}");
}

// ---------------------------------------------------------------------------------------
// Campaign finding (I15, swarm seed 5140 once the lock was published whole): the acquirer's
// wall clock stepped back between its judging read and the re-read before a StaleError.

/// Before the fix: SessionWriteLockStaleError (too-old) although by the acquirer's clock at
/// the time of failing the lock was in bounds: the re-read checked that the file was unchanged,
/// not that it was still stale.
#[tokio::test(start_paused = true)]
async fn d29_a_stale_verdict_is_judged_again_by_the_clock_at_the_reread() {
    use heldlock_core::LockError;
    let w = World::new();
    w.spawn_pid(20, Some(true));
    // 1 000 s old by true time: in bounds (staleMs 1 800 s); 2 000 s by a clock 1 000 s ahead.
    w.plant_lock(&payload(&w, Some(20), Some(1_000_000), Some(1_020), None));
    let clock = SteppedClock::new(&w, 1_000_000);
    let p = w.process_with_clock(10, clock.clone());
    let reread = p.fs.pause_once(Op::Read, LOCK);
    reread.open(); // the judging read goes through
    let reread = p.fs.pause_once(Op::Read, LOCK);
    let acquirer = tokio::spawn({
        let locks = p.locks.clone();
        async move { locks.acquire(transcript(), opts_timeout(1_000)).await }
    });
    assert!(within(1_000, reread.arrived(1)).await.is_some(), "the too-old verdict was not re-read");
    clock.set_offset(0); // the clock steps back before the re-read
    reread.open();
    let r = within(5_000, acquirer).await.expect("the acquire ends").unwrap();
    assert!(
        matches!(r, Err(LockError::Timeout { .. })),
        "expected a timeout on the live holder, got {r:?}"
    );
    assert!(w.lock_exists() && p.events.reclaim_reasons().is_empty(), "the holder's lock was touched");
}

// ---------------------------------------------------------------------------------------
// Million-seed finding (I1, swarm seed 898378): a reclaimer stopped past the orphan grace
// under the guard resumes and exchanges its spare with whatever is at the lock path — by then
// the live lock of the process that recovered the guard and reclaimed the same dead lock —
// and crashes before it can look at what it took and swap it back. The live holder's lock is
// now at the crashed reclaimer's private name: it has lost its lock (SPEC I1), and the next
// process reclaims the dead reclaimer's lock at the path.

/// Before the fix: the displaced holder's second write landed (`Ok`), although the lock path
/// held the dead reclaimer's lock and a third process then took the lock: two writers.
#[tokio::test(start_paused = true)]
async fn d30_a_holder_whose_lock_a_crashed_reclaimer_moved_away_never_writes_again() {
    use heldlock_core::event::PoisonReason;
    use heldlock_core::file_lock::ORPHAN_GRACE_MS;
    use heldlock_core::ControllerError;
    let w = World::new();
    w.plant_lock(&payload(&w, Some(900), Some(0), Some(5), None)); // pid 900: dead
    let crashed = w.process(103);
    let holder = w.process(104);
    // The reclaimer stops right after its re-check under the guard (its second stat of the lock).
    let stopped = crashed.fs.freeze_after(Op::Stat, ".jsonl.lock", 2);
    let opts = ctl_opts_timeout(120_000); // orphan grace 30 s
    let _reclaim = tokio::spawn({
        let locks = crashed.locks.clone();
        async move { locks.acquire(transcript(), opts.lock).await }
    });
    stopped.arrived(1).await;
    sleep_ms(ORPHAN_GRACE_MS + 1_000).await;
    let ctl = holder.controller(opts).await.expect("an aged guard is recovered");
    let (_, held_ino) = acquired(&holder);
    assert_eq!(w.lock_ino(), Some(held_ino));
    ctl.with_write_lock(|s| async move { s.append(b"{\"type\":\"first\"}\n").await })
        .await
        .unwrap();
    // Resumed, the reclaimer's exchange goes through; every call after it never returns (crashed).
    let crashed_after_exchange = crashed.fs.freeze_after(Op::Exchange, "", 0);
    stopped.open();
    crashed_after_exchange.arrived(1).await;
    assert_ne!(w.lock_ino(), Some(held_ino), "the exchange did not move the holder's lock away");
    w.table.kill(103);

    let second = ctl.with_write_lock(|s| async move { s.append(b"{\"type\":\"second\"}\n").await }).await;
    assert!(matches!(second, Err(ControllerError::LockLost)), "the displaced holder wrote: {second:?}");
    let text = String::from_utf8(w.transcript_bytes()).unwrap();
    assert!(text.contains("first") && !text.contains("second"), "{text}");
    assert!(ctl.is_poisoned() && !holder.holds_lock());
    let (handle, _) = acquired(&holder);
    assert_eq!(holder.events.count(|e| *e == Ev::HandleLost { handle }), 1, "{:#?}", holder.events.all());
    let poisoned = holder.events.first(|e| {
        *e == Ev::Poisoned {
            reason: PoisonReason::LockLost,
        }
    });
    let lost = holder.events.first(|e| *e == Ev::HandleLost { handle });
    assert!(
        matches!((poisoned, lost), (Some(p), Some(l)) if p.0 < l.0),
        "poisoned before its lock was let go (SPEC I6): {:#?}",
        holder.events.all()
    );

    // The path holds the dead reclaimer's lock: the next process reclaims it and writes alone.
    let next = w.process(105);
    let h = next
        .locks
        .acquire(transcript(), opts.lock)
        .await
        .expect("the dead reclaimer's lock is reclaimed");
    assert_eq!(w.lock_ino(), Some(h.ino()));
    next.locks.release(&h).await.unwrap();
    ctl.dispose().await;
}

/// The handle and inode of the first lock `p` acquired.
fn acquired(p: &Proc) -> (heldlock_core::event::HandleId, u64) {
    p.events
        .all()
        .into_iter()
        .find_map(|e| match e {
            Ev::Acquired { handle, ino } => Some((handle, ino)),
            _ => None,
        })
        .expect("an acquire")
}
