//! SPEC §5: each historical bug, switched on, breaks a behaviour check that holds without it.
//! The checks are the ones the behaviour tests run with no mutant (tests/common/checks.rs);
//! hangs are bounded in virtual time inside them.

#![cfg(feature = "mutants")]

mod common;

use common::checks::{self, Check};
use common::*;
use heldlock_core::event::AbortKind;

/// The check holds without the mutant and is violated with it; the violation is the one
/// named by `expect` (a fragment of the check's message).
fn assert_killed(mutant: Mutant, clean: Check, mutated: Check, expect: &str) {
    clean.unwrap_or_else(|e| panic!("{mutant}: the check fails even without the mutant: {e}"));
    match mutated {
        Ok(()) => panic!("{mutant} survived: the behaviour check still holds"),
        Err(e) => assert!(
            e.contains(expect),
            "{mutant}: killed, but not by the expected violation ({expect:?}): {e}"
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn m1_timeout_abort_no_release() {
    let m = Mutant::M1TimeoutAbortNoRelease;
    assert_killed(
        m,
        checks::abort_releases(AbortKind::Timeout, None).await,
        checks::abort_releases(AbortKind::Timeout, Some(m)).await,
        "still on disk",
    );
    // A manual abort is not this bug.
    checks::abort_releases(AbortKind::Manual, Some(m)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn m2_manual_abort_no_release() {
    let m = Mutant::M2ManualAbortNoRelease;
    assert_killed(
        m,
        checks::abort_releases(AbortKind::Manual, None).await,
        checks::abort_releases(AbortKind::Manual, Some(m)).await,
        "still on disk",
    );
    checks::abort_releases(AbortKind::Timeout, Some(m)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn m3_fence_read_leak() {
    let m = Mutant::M3FenceReadLeak;
    assert_killed(
        m,
        checks::fence_eio_prompt_release(None).await,
        checks::fence_eio_prompt_release(Some(m)).await,
        "lock file leaked",
    );
}

#[tokio::test(start_paused = true)]
async fn m4a_unbounded_abort() {
    let m = Mutant::M4aUnboundedAbort;
    assert_killed(
        m,
        checks::abort_hung_retained_write(None).await,
        checks::abort_hung_retained_write(Some(m)).await,
        "unbounded abort",
    );
    assert_killed(
        m,
        checks::abort_hung_fence_read(None).await,
        checks::abort_hung_fence_read(Some(m)).await,
        "unbounded abort",
    );
}

#[tokio::test(start_paused = true)]
async fn m4b_force_without_poison() {
    let m = Mutant::M4bForceWithoutPoison;
    assert_killed(
        m,
        checks::abort_hung_retained_write(None).await,
        checks::abort_hung_retained_write(Some(m)).await,
        "did not poison",
    );
    assert_killed(
        m,
        checks::abort_hung_fence_read(None).await,
        checks::abort_hung_fence_read(Some(m)).await,
        "did not poison",
    );
}

#[tokio::test(start_paused = true)]
async fn m4c_force_without_clear() {
    let m = Mutant::M4cForceWithoutClear;
    assert_killed(
        m,
        checks::abort_hung_retained_write(None).await,
        checks::abort_hung_retained_write(Some(m)).await,
        "held still set",
    );
}

#[tokio::test(start_paused = true)]
async fn m4d_poison_keeps_drain() {
    let m = Mutant::M4dPoisonKeepsDrain;
    assert_killed(
        m,
        checks::abort_hung_fence_read(None).await,
        checks::abort_hung_fence_read(Some(m)).await,
        "drain stayed owned",
    );
}

#[tokio::test(start_paused = true)]
async fn m5_deferred_release_lost() {
    let m = Mutant::M5DeferredReleaseLost;
    assert_killed(
        m,
        checks::deferred_release_in_scope(None).await,
        checks::deferred_release_in_scope(Some(m)).await,
        "deferred prompt release was lost",
    );
}

#[tokio::test(start_paused = true)]
async fn m6_reacquire_after_dispose() {
    let m = Mutant::M6ReacquireAfterDispose;
    assert_killed(
        m,
        checks::reacquire_after_dispose(None).await,
        checks::reacquire_after_dispose(Some(m)).await,
        "hold again",
    );
}

#[tokio::test(start_paused = true)]
async fn m7_unconditional_unlink_on_release() {
    let m = Mutant::M7UnconditionalUnlink;
    assert_killed(
        m,
        checks::release_keeps_successor(None).await,
        checks::release_keeps_successor(Some(m)).await,
        "successor's lock",
    );
}

#[tokio::test(start_paused = true)]
async fn m7_unconditional_unlink_on_reclaim() {
    let m = Mutant::M7UnconditionalUnlink;
    assert_killed(
        m,
        checks::racing_reclaimers(None).await,
        checks::racing_reclaimers(Some(m)).await,
        "removed the first one's live lock",
    );
}

#[tokio::test(start_paused = true)]
async fn m8_owner_literal_path() {
    let m = Mutant::M8OwnerLiteralPath;
    assert_killed(
        m,
        checks::owner_through_symlink(None).await,
        checks::owner_through_symlink(Some(m)).await,
        "two owners",
    );
}

#[tokio::test(start_paused = true)]
async fn m9_abort_forces_cleanup() {
    let m = Mutant::M9AbortForcesCleanup;
    assert_killed(
        m,
        checks::abort_leaves_cleanup_lock(None).await,
        checks::abort_leaves_cleanup_lock(Some(m)).await,
        "the abort poisoned",
    );
}

#[tokio::test(start_paused = true)]
async fn m10_cleanup_in_scope_waits() {
    let m = Mutant::M10CleanupInScopeWaits;
    assert_killed(
        m,
        checks::cleanup_inside_scope(None).await,
        checks::cleanup_inside_scope(Some(m)).await,
        "hung",
    );
}

#[tokio::test(start_paused = true)]
async fn m11_deleted_transcript_not_poisoned() {
    let m = Mutant::M11DeletedTranscriptNotPoisoned;
    assert_killed(
        m,
        checks::deleted_transcript_poisons(None).await,
        checks::deleted_transcript_poisons(Some(m)).await,
        "must be a takeover",
    );
}

#[tokio::test(start_paused = true)]
async fn m12_benign_append_any_inode() {
    let m = Mutant::M12BenignAppendAnyInode;
    assert_killed(
        m,
        checks::replaced_after_unverified_append(None).await,
        checks::replaced_after_unverified_append(Some(m)).await,
        "replaced by another inode",
    );
}

#[tokio::test(start_paused = true)]
async fn m13_cleanup_fence_error_swallowed() {
    let m = Mutant::M13CleanupFenceErrorSwallowed;
    assert_killed(
        m,
        checks::cleanup_fence_error_surfaces(None).await,
        checks::cleanup_fence_error_surfaces(Some(m)).await,
        "acknowledged and never written",
    );
}

#[tokio::test(start_paused = true)]
async fn m14_eperm_skips_checks() {
    let m = Mutant::M14EpermSkipsChecks;
    assert_killed(
        m,
        checks::eperm_holder_still_judged(None).await,
        checks::eperm_holder_still_judged(Some(m)).await,
        "was not reclaimed",
    );
}

#[tokio::test(start_paused = true)]
async fn m15_created_at_offset_invalid() {
    let m = Mutant::M15CreatedAtOffsetInvalid;
    assert_killed(
        m,
        checks::created_at_with_offset_is_valid(None).await,
        checks::created_at_with_offset_is_valid(Some(m)).await,
        "must be waited on",
    );
}

#[tokio::test(start_paused = true)]
async fn m16_stale_verdict_unverified() {
    let m = Mutant::M16StaleVerdictUnverified;
    assert_killed(
        m,
        checks::stale_verdict_reverified(None).await,
        checks::stale_verdict_reverified(Some(m)).await,
        "not re-verified",
    );
}

#[tokio::test(start_paused = true)]
async fn m17_vanish_iteration_cap() {
    let m = Mutant::M17VanishIterationCap;
    assert_killed(
        m,
        checks::vanishing_lock_uses_the_budget(None).await,
        checks::vanishing_lock_uses_the_budget(Some(m)).await,
        "timed out after",
    );
}

#[tokio::test(start_paused = true)]
async fn m18_cleanup_drop_leaks() {
    let m = Mutant::M18CleanupDropLeaks;
    assert_killed(
        m,
        checks::dropped_cleanup_lock_released_by_dispose(None).await,
        checks::dropped_cleanup_lock_released_by_dispose(Some(m)).await,
        "outlived dispose",
    );
}

#[tokio::test(start_paused = true)]
async fn m19_reacquire_after_removal_panics() {
    let m = Mutant::M19ReacquireAfterRemovalPanics;
    assert_killed(
        m,
        checks::reacquire_after_our_lock_was_removed(None).await,
        checks::reacquire_after_our_lock_was_removed(Some(m)).await,
        "panicked",
    );
}

#[tokio::test(start_paused = true)]
async fn m20_vanished_create_surfaced() {
    let m = Mutant::M20VanishedCreateSurfaced;
    assert_killed(
        m,
        checks::creator_retries_its_vanished_lock(None).await,
        checks::creator_retries_its_vanished_lock(Some(m)).await,
        "surfaced its vanished lock",
    );
}

#[tokio::test(start_paused = true)]
async fn m21_write_after_dispose() {
    let m = Mutant::M21WriteAfterDispose;
    assert_killed(
        m,
        checks::write_waiting_at_dispose_fails(None).await,
        checks::write_waiting_at_dispose_fails(Some(m)).await,
        "waiting at dispose ended with",
    );
}

/// The whole table: every mutant in `Mutant::ALL` is killed by at least one check (a mutant
/// added later without a killing check fails here).
#[tokio::test(start_paused = true)]
async fn every_mutant_is_killed_by_some_check() {
    for m in Mutant::ALL {
        let mut killed = Vec::new();
        for (name, result) in [
            ("abort-timeout", checks::abort_releases(AbortKind::Timeout, Some(m)).await),
            ("abort-manual", checks::abort_releases(AbortKind::Manual, Some(m)).await),
            ("fence-eio", checks::fence_eio_prompt_release(Some(m)).await),
            ("hung-write", checks::abort_hung_retained_write(Some(m)).await),
            ("hung-fence", checks::abort_hung_fence_read(Some(m)).await),
            ("deferred", checks::deferred_release_in_scope(Some(m)).await),
            ("reacquire-dispose", checks::reacquire_after_dispose(Some(m)).await),
            ("successor", checks::release_keeps_successor(Some(m)).await),
            ("racing-reclaim", checks::racing_reclaimers(Some(m)).await),
            ("owner-symlink", checks::owner_through_symlink(Some(m)).await),
            ("abort-cleanup", checks::abort_leaves_cleanup_lock(Some(m)).await),
            ("cleanup-in-scope", checks::cleanup_inside_scope(Some(m)).await),
            ("deleted-transcript", checks::deleted_transcript_poisons(Some(m)).await),
            ("replaced-transcript", checks::replaced_after_unverified_append(Some(m)).await),
            ("cleanup-fence-error", checks::cleanup_fence_error_surfaces(Some(m)).await),
            ("eperm", checks::eperm_holder_still_judged(Some(m)).await),
            ("created-at-offset", checks::created_at_with_offset_is_valid(Some(m)).await),
            ("stale-reverified", checks::stale_verdict_reverified(Some(m)).await),
            ("vanishing-lock", checks::vanishing_lock_uses_the_budget(Some(m)).await),
            ("dropped-cleanup", checks::dropped_cleanup_lock_released_by_dispose(Some(m)).await),
            ("lock-removed", checks::reacquire_after_our_lock_was_removed(Some(m)).await),
            ("vanished-create", checks::creator_retries_its_vanished_lock(Some(m)).await),
            ("write-at-dispose", checks::write_waiting_at_dispose_fails(Some(m)).await),
        ] {
            if result.is_err() {
                killed.push(name);
            }
        }
        assert!(!killed.is_empty(), "{m} survives every check");
        println!("{m}: killed by {killed:?}");
    }
}
