//! SPEC §3: the attempt controller — its operation sequences, the fence, aborts, dispose, and
//! the watchdog's lost handle as the controller sees it.

mod common;

use std::path::Path;

use common::checks;
use common::*;
use heldlock_core::controller::ATTEMPT_MAX_HOLD_MS;
use heldlock_core::event::{AbortKind, Duty, PoisonReason};
use heldlock_core::platform::errno;
use heldlock_core::{AbortSignal, ControllerError, ControllerOptions, LockError, LockOptions, OwnerMutex};

const MSG1: &[u8] = b"{\"type\":\"message\",\"n\":1}\n";
const MSG2: &[u8] = b"{\"type\":\"message\",\"n\":2}\n";
const USAGE: &[u8] = b"{\"type\":\"usage\",\"tokens\":3}\n";

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

async fn write(ctl: &heldlock_core::AttemptController, line: &'static [u8]) -> Result<(), ControllerError> {
    ctl.with_write_lock(|scope| async move { scope.append(line).await }).await
}

#[tokio::test(start_paused = true)]
async fn create_acquires_eagerly_and_a_failure_propagates() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    assert!(ctl.holds() && w.lock_exists() && p.holds_lock());
    let payload = heldlock_core::payload::LockPayload::parse(&w.lock_bytes().unwrap()).unwrap();
    assert_eq!(payload.max_hold_ms, Some(ATTEMPT_MAX_HOLD_MS));

    let q = w.process(20);
    let t0 = w.now_ms();
    let r = q.controller(ctl_opts_timeout(1_000)).await;
    assert!(matches!(r, Err(ControllerError::Lock(LockError::Timeout { .. }))), "{:?}", r.err());
    assert_eq!(w.now_ms() - t0, 1_000);
    ctl.dispose().await;
    assert!(!w.lock_exists());
}

#[tokio::test(start_paused = true)]
async fn prompt_release_then_reacquire_then_cleanup() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    write(&ctl, MSG1).await.unwrap();
    assert!(ctl.holds(), "a retained write keeps the lock");

    ctl.release_for_prompt().await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
    assert_eq!(
        p.events.count(|e| matches!(
            e,
            Ev::HeldCleared {
                duty: Duty::Release,
                ..
            }
        )),
        1
    );
    // A second prompt release has nothing to do.
    ctl.release_for_prompt().await.unwrap();

    // While released, a write takes a short lock of its own.
    write(&ctl, MSG2).await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists());

    ctl.reacquire_after_prompt().await.unwrap();
    assert!(ctl.holds() && w.lock_exists());
    ctl.reacquire_after_prompt().await.unwrap(); // already held: no-op

    let cleanup = ctl.acquire_for_cleanup().await.unwrap();
    assert!(!cleanup.is_noop());
    assert!(!ctl.holds(), "cleanup took held");
    assert!(
        p.events.count(|e| matches!(
            e,
            Ev::HeldCleared {
                duty: Duty::HandToCleanup,
                ..
            }
        )) == 1
    );
    cleanup.append(USAGE).await.unwrap();
    cleanup.release().await.unwrap();
    assert!(!w.lock_exists() && !p.holds_lock());
    // Cleanup started: a late reacquire does nothing.
    ctl.reacquire_after_prompt().await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists());
    ctl.dispose().await;
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG1, MSG2, USAGE]));
    assert!(!ctl.is_poisoned());
}

#[tokio::test(start_paused = true)]
async fn dispose_twice() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.dispose().await;
    assert!(!ctl.holds() && !w.lock_exists());
    ctl.dispose().await;
    assert_eq!(p.events.count(|e| matches!(e, Ev::ReleaseBegin { .. })), 1);
    assert_eq!(p.events.count(|e| *e == Ev::Disposed), 2);
    // Nothing afterwards makes it hold again.
    ctl.reacquire_after_prompt().await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists());
}

#[tokio::test(start_paused = true)]
async fn abort_twice_then_dispose() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.abort(AbortKind::Manual);
    ctl.abort(AbortKind::Timeout);
    sleep_ms(10).await;
    assert!(!ctl.holds() && !w.lock_exists(), "a graceful abort releases at once");
    sleep_ms(3_000).await;
    assert_eq!(p.events.count(|e| matches!(e, Ev::ReleaseBegin { .. })), 1);
    assert!(!ctl.is_poisoned());
    assert!(within(1_000, ctl.dispose()).await.is_some());
    assert!(!ctl.holds() && !w.lock_exists());
    assert_eq!(p.events.count(|e| matches!(e, Ev::ReleaseBegin { .. })), 1);
}

#[tokio::test(start_paused = true)]
async fn timeout_abort_releases() {
    checks::abort_releases(AbortKind::Timeout, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn manual_abort_releases() {
    checks::abort_releases(AbortKind::Manual, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fence_stat_eio_during_prompt_release_still_releases() {
    checks::fence_eio_prompt_release(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn fence_read_emfile_during_prompt_release_still_releases() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    p.fs.fail_once(Op::Read, TRANSCRIPT, errno::EMFILE);
    let r = ctl.release_for_prompt().await;
    assert_eq!(r.as_ref().err().and_then(errno_of), Some(errno::EMFILE));
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
}

#[tokio::test(start_paused = true)]
async fn abort_frees_a_hung_retained_write_at_the_settle_bound_and_poisons() {
    checks::abort_hung_retained_write(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn abort_frees_a_hung_fence_read_at_the_settle_bound() {
    checks::abort_hung_fence_read(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_external_edit_while_released_is_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    w.tool_append(MSG2);
    let r = write(&ctl, MSG1).await;
    assert!(matches!(r, Err(ControllerError::Takeover { .. })), "{r:?}");
    assert!(ctl.is_poisoned());
    assert_eq!(
        p.events.count(|e| *e
            == Ev::Poisoned {
                reason: PoisonReason::Takeover
            }),
        1
    );
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG2]));
    assert!(!w.lock_exists(), "the short lock was released");
    // Sticky: every later locked operation refuses.
    assert!(matches!(write(&ctl, MSG1).await, Err(ControllerError::Takeover { .. })));
    ctl.reacquire_after_prompt().await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists());
    let cleanup = ctl.acquire_for_cleanup().await.unwrap();
    assert!(cleanup.is_noop());
    // A no-op lock says it wrote nothing.
    assert!(matches!(
        cleanup.append(MSG1).await,
        Err(ControllerError::Takeover {
            reason: PoisonReason::Takeover
        })
    ));
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG2]));
    ctl.dispose().await;
    assert!(!w.lock_exists());
}

#[tokio::test(start_paused = true)]
async fn reacquire_after_an_external_edit_fails_and_lets_go() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    w.tool_append(MSG2);
    let r = ctl.reacquire_after_prompt().await;
    assert!(matches!(r, Err(ControllerError::Takeover { .. })), "{r:?}");
    assert!(ctl.is_poisoned());
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
    assert!(matches!(write(&ctl, MSG1).await, Err(ControllerError::Takeover { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_replaced_transcript_is_a_takeover_even_with_the_same_content() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    w.tool_replace_transcript(INITIAL);
    assert!(matches!(write(&ctl, MSG1).await, Err(ControllerError::Takeover { .. })));
    assert!(ctl.is_poisoned());
    assert_eq!(w.transcript_bytes(), INITIAL);
}

#[tokio::test(start_paused = true)]
async fn a_benign_append_while_released_is_accepted() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    w.tool_append(USAGE);
    write(&ctl, MSG1).await.unwrap();
    ctl.reacquire_after_prompt().await.unwrap();
    assert!(ctl.holds());
    // Our own write moved the transcript: also not a takeover.
    ctl.release_for_prompt().await.unwrap();
    w.tool_append(b"{\"type\":\"heartbeat\"}\n");
    ctl.reacquire_after_prompt().await.unwrap();
    write(&ctl, MSG2).await.unwrap();
    assert!(!ctl.is_poisoned());
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, USAGE, MSG1, b"{\"type\":\"heartbeat\"}\n", MSG2]));
    ctl.dispose().await;
}

#[tokio::test(start_paused = true)]
async fn a_ctime_only_change_while_released_is_accepted() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    sleep_ms(5).await;
    w.fs.touch_ctime(transcript()).unwrap();
    ctl.reacquire_after_prompt().await.unwrap();
    write(&ctl, MSG1).await.unwrap();
    assert!(!ctl.is_poisoned());
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG1]));
}

#[tokio::test(start_paused = true)]
async fn an_owned_write_of_another_controller_is_accepted() {
    let w = World::new();
    let p = w.process(10);
    let a = p.controller(ControllerOptions::default()).await.unwrap();
    a.release_for_prompt().await.unwrap();
    let b = p.controller(ControllerOptions::default()).await.unwrap();
    b.release_for_prompt().await.unwrap();
    write(&b, MSG1).await.unwrap();
    write(&a, MSG2).await.unwrap();
    assert!(!a.is_poisoned() && !b.is_poisoned());
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG1, MSG2]));
}

#[tokio::test(start_paused = true)]
async fn a_prompt_release_from_inside_a_scope_is_deferred_to_its_end() {
    checks::deferred_release_in_scope(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reacquire_after_dispose_releases_at_once() {
    checks::reacquire_after_dispose(None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn dispose_from_inside_a_scope_does_not_deadlock() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    let disk = w.fs.clone();
    let r = within(
        5_000,
        ctl.with_write_lock(|scope| async move {
            scope.append(MSG1).await?;
            scope.dispose();
            // Deferred: the scope still writes under its lock.
            scope.append(MSG2).await?;
            Ok(disk.contents(lock()).is_some())
        }),
    )
    .await;
    assert!(matches!(r, Some(Ok(true))), "{r:?}");
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
    assert_eq!(p.events.count(|e| *e == Ev::Disposed), 1);
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG1, MSG2]));
    // Disposed: nothing makes it hold again.
    ctl.reacquire_after_prompt().await.unwrap();
    assert!(!ctl.holds() && !w.lock_exists());
    assert!(within(1_000, ctl.dispose()).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_lock_lost_to_the_watchdog_fails_the_next_write_and_poisons() {
    let w = World::new();
    let p = w.process(10);
    p.locks.start_watchdog();
    let opts = ControllerOptions {
        lock: LockOptions {
            max_hold_ms: 300_000,
            ..LockOptions::default()
        },
        ..ControllerOptions::default()
    };
    let ctl = p.controller(opts).await.unwrap();
    write(&ctl, MSG1).await.unwrap();
    sleep_ms(300_000).await;
    assert!(w.lock_exists(), "freed before maxHoldMs");
    sleep_ms(60_010).await;
    let (_, lost_at) =
        p.events.first(|e| matches!(e, Ev::HandleLost { .. })).expect("the watchdog never fired");
    assert!(lost_at <= 300_000 + 60_000, "freed at {lost_at} ms");
    assert!(!w.lock_exists() && !p.holds_lock());
    // Another process may now take it.
    let q = w.process(20);
    let hq = q.locks.acquire(transcript(), opts_timeout(100)).await.unwrap();

    let r = write(&ctl, MSG2).await;
    assert!(matches!(r, Err(ControllerError::LockLost)), "{r:?}");
    assert!(ctl.is_poisoned());
    assert_eq!(
        p.events.count(|e| *e
            == Ev::Poisoned {
                reason: PoisonReason::LockLost
            }),
        1
    );
    assert_eq!(w.transcript_bytes(), concat(&[INITIAL, MSG1]));
    assert!(matches!(write(&ctl, MSG2).await, Err(ControllerError::Takeover { .. })));
    // The poisoned controller let go of its lost handle without touching the new holder.
    assert!(!ctl.holds());
    ctl.dispose().await;
    assert_eq!(w.lock_ino(), Some(hq.ino()));
}

/// SPEC §2 + I7: an attempt takes the owner, then its controller; teardown disposes, then
/// releases the owner; the next attempt finds the lock free at once.
#[tokio::test(start_paused = true)]
async fn attempt_lifecycle_leaves_the_lock_free_for_the_next_turn() {
    let w = World::new();
    let p = w.process(10);
    let owners = OwnerMutex::new(p.platform.clone());
    let session = Path::new(TRANSCRIPT);
    for turn in 0..3u64 {
        let t0 = w.now_ms();
        let owner = owners.acquire(session, ATTEMPT_MAX_HOLD_MS, &AbortSignal::new()).await.unwrap();
        let ctl = p.controller(ctl_opts_timeout(1_000)).await.unwrap();
        write(&ctl, MSG1).await.unwrap();
        ctl.release_for_prompt().await.unwrap();
        sleep_ms(1_000).await; // the prompt streams
        ctl.reacquire_after_prompt().await.unwrap();
        if turn == 1 {
            ctl.abort(AbortKind::Timeout);
            sleep_ms(10).await;
        }
        let cleanup = ctl.acquire_for_cleanup().await.unwrap();
        cleanup.append(USAGE).await.unwrap();
        cleanup.release().await.unwrap();
        ctl.dispose().await;
        owner.release();
        assert!(!w.lock_exists() && !p.holds_lock(), "turn {turn} leaked");
        assert!(w.now_ms() - t0 < 1_100, "turn {turn} waited");
    }
}

/// Swarm seed 91815: an append of ours landed unverified (its post-append stat failed), so the
/// entry stands both in this controller's pending entries and in the process's landed,
/// unrecorded appends. A sync tool then appends a copy of it (at-least-once delivery). The
/// entry landed once: its two listings must not explain two copies, and the fence check
/// takes over.
///
/// Before: the reacquire's fence check accepted the copy.
#[tokio::test(start_paused = true)]
async fn a_replayed_copy_of_an_unverified_append_is_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    let entry: &[u8] = b"{\"type\":\"message\",\"n\":1}\n";
    let append = p.fs.pause_once(Op::Append, ".jsonl");
    let writer = tokio::spawn({
        let ctl = ctl.clone();
        async move { ctl.with_write_lock(|scope| async move { scope.append(entry).await }).await }
    });
    within(1_000, append.arrived(1)).await.expect("the write reaches its append");
    p.fs.fail_once(Op::Stat, ".jsonl", errno::EINTR); // the post-append stat
    append.open();
    let written = within(1_000, writer).await.expect("the write ends").unwrap();
    assert!(matches!(&written, Err(e) if errno_of(e) == Some(errno::EINTR)), "{written:?}");
    assert!(!ctl.is_poisoned(), "an unverified own append poisoned");
    w.tool_append(entry); // the replay
    let reacquired = ctl.reacquire_after_prompt().await;
    assert!(
        matches!(reacquired, Err(ControllerError::Takeover { .. })),
        "the copy passed: {reacquired:?}"
    );
    ctl.dispose().await;
    assert!(!w.lock_exists());
}
