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
