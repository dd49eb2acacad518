//! Regression tests for the bugs the simulator found in the core (one or more per fix), each
//! a deterministic replay of the interleaving the simulator hit: FaultFs gates hold an
//! operation at the exact point the race needs, on tokio's paused clock.

mod common;

use common::*;
use heldlock_core::event::{AbortKind, Duty, PoisonReason};
use heldlock_core::judge::StaleReason;
use heldlock_core::memfs::DEFAULT_FD_LIMIT;
use heldlock_core::payload::LockPayload;
use heldlock_core::platform::errno;
use heldlock_core::{AttemptController, ControllerError, ControllerOptions, LockError, LockOptions};

const MSG1: &[u8] = b"{\"type\":\"message\",\"n\":1}\n";
const MSG2: &[u8] = b"{\"type\":\"message\",\"n\":2}\n";
const FOREIGN: &[u8] = b"{\"type\":\"message\",\"from\":\"another writer\"}\n";
const USAGE: &[u8] = b"{\"type\":\"usage\",\"tokens\":3}\n";
const HEARTBEAT: &[u8] = b"{\"type\":\"heartbeat\"}\n";
const CLEANUP: &[u8] = b"{\"type\":\"message\",\"cleanup\":true}\n";

/// A write of `line` on its own task (so the test can act while it is paused at a gate).
fn spawn_write(
    ctl: &AttemptController,
    line: &'static [u8],
) -> tokio::task::JoinHandle<Result<(), ControllerError>> {
    let ctl = ctl.clone();
    tokio::spawn(async move { ctl.with_write_lock(|scope| async move { scope.append(line).await }).await })
}

/// Attempt 1 of `p` appends `MSG1`; the append stalls at its gate, and a timeout abort forces
/// the lock free past the settle bound: a forced attempt's late write on its way. Returns
/// attempt 1, the gate (open it and the append lands) and the write's task.
async fn forced_attempt_with_a_stalled_append(
    w: &World,
    p: &Proc,
) -> (
    AttemptController,
    std::sync::Arc<Gate>,
    tokio::task::JoinHandle<Result<(), ControllerError>>,
) {
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    let late_append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let late = spawn_write(&first, MSG1);
    assert!(within(1_000, late_append.arrived(1)).await.is_some());
    first.abort(AbortKind::Timeout);
    sleep_ms(2_100).await;
    assert!(first.is_poisoned() && !w.lock_exists(), "the abort forced the lock after its bound");
    (first, late_append, late)
}

/// Attempt 2 of `p` appends `MSG2` and releases for its prompt (its fence on that version).
async fn second_attempt_writes_and_releases(p: &Proc) -> AttemptController {
    let second = p.controller(ControllerOptions::default()).await.unwrap();
    second.with_write_lock(|scope| async move { scope.append(MSG2).await }).await.unwrap();
    second.release_for_prompt().await.unwrap();
    second
}

// ---------------------------------------------------------------------------------------
// 1. Cleanup after an abort (d974ee5, b0e3650)

/// The graceful abort release owns the drain while it waits out a retained write and then
/// takes `held`; a cleanup that was already waiting for the write must not take `held` from
/// under it. The abort's release is the one that clears `held` (and releases it); cleanup
/// gets a lock of its own afterwards.
#[tokio::test(start_paused = true)]
async fn cleanup_does_not_take_held_from_a_graceful_abort_release_owning_the_drain() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();

    // A retained write held open by a slow provider stream.
    let stream = Gate::new();
    let writer = {
        let ctl = ctl.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            ctl.with_write_lock(|scope| async move {
                scope.append(MSG1).await?;
                stream.pass().await;
                Ok(())
            })
            .await
        })
    };
    assert!(within(1_000, stream.arrived(1)).await.is_some());

    // Teardown's cleanup starts and waits for the retained write...
    let cleaner = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let lock = ctl.acquire_for_cleanup().await.unwrap();
            let noop = lock.is_noop();
            let appended = lock.append(USAGE).await;
            let released = lock.release().await;
            (noop, appended, released)
        })
    };
    settle().await;
    // ...then the abort's graceful release becomes drain owner and waits for it too.
    ctl.abort(AbortKind::Manual);
    settle().await;
    stream.open();

    assert!(matches!(within(5_000, writer).await, Some(Ok(Ok(())))));
    let (noop, appended, released) = within(5_000, cleaner).await.expect("cleanup hung").unwrap();

    let cleared: Vec<Duty> = p
        .events
        .all()
        .into_iter()
        .filter_map(|e| match e {
            Ev::HeldCleared { duty, .. } => Some(duty),
            _ => None,
        })
        .collect();
    assert_eq!(
        cleared,
        vec![Duty::Release],
        "cleanup took held while the graceful abort release owned the drain"
    );
    assert!(!noop, "cleanup must get a lock of its own after the abort released");
    appended.unwrap();
    released.unwrap();
    assert!(!ctl.is_poisoned());
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG1, USAGE].concat());
}

/// A cleanup lock is the cleanup's own (SPEC §3: an abort forces only `held` or the handle a
/// stuck graceful release owns; issue 6 defect 2). When the cleanup's fence check hangs, an
/// abort neither poisons nor force-releases it; the cleanup finishes when its stat returns.
/// (Until issue 6 this test asserted the opposite: the abort freed the cleanup lock.)
#[tokio::test(start_paused = true)]
async fn an_abort_leaves_a_cleanup_lock_hung_in_its_fence_check_to_the_cleanup() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap(); // a fence to check

    let fence_stat = p.fs.pause_once(Op::Stat, TRANSCRIPT);
    let cleaner = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let lock = ctl.acquire_for_cleanup().await.unwrap();
            let appended = lock.append(CLEANUP).await;
            (appended, lock.release().await)
        })
    };
    assert!(within(1_000, fence_stat.arrived(1)).await.is_some());
    assert!(w.lock_exists() && p.holds_lock(), "the cleanup holds its lock");

    ctl.abort(AbortKind::Timeout);
    sleep_ms(2_001).await;
    assert!(w.lock_exists() && p.holds_lock(), "the abort forced the cleanup's lock");
    assert!(!ctl.is_poisoned(), "the abort poisoned");
    fence_stat.open();
    let (appended, released) = within(1_000, cleaner).await.expect("cleanup hung").unwrap();
    appended.unwrap();
    released.unwrap();
    ctl.dispose().await;
    assert!(!w.lock_exists() && !p.holds_lock());
    assert_eq!(w.transcript_bytes(), [INITIAL, CLEANUP].concat());
}

// ---------------------------------------------------------------------------------------
// 2. Reacquire vs cleanup and dispose (b0e3650, d6b5a22)

/// reacquire_after_prompt sets `held` and then checks the fence. A cleanup that comes in
/// meanwhile must wait for the check: taking `held` and writing mid-check made the check see
/// the cleanup's own write as a takeover.
#[tokio::test(start_paused = true)]
async fn cleanup_waits_for_the_fence_check_of_a_reacquire() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    // A benign line while released: the reacquire's check has to read the transcript.
    w.tool_append(USAGE);

    let fence_read = p.fs.pause_once(Op::Read, TRANSCRIPT);
    let reacquire = {
        let ctl = ctl.clone();
        tokio::spawn(async move { ctl.reacquire_after_prompt().await })
    };
    assert!(within(1_000, fence_read.arrived(1)).await.is_some());
    assert!(ctl.holds(), "held is set before the check");

    let cleaner = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let lock = ctl.acquire_for_cleanup().await.unwrap();
            let noop = lock.is_noop();
            let appended = lock.append(CLEANUP).await;
            let released = lock.release().await;
            (noop, appended, released)
        })
    };
    sleep_ms(100).await;
    fence_read.open();

    let reacquired = within(5_000, reacquire).await.expect("reacquire hung").unwrap();
    assert!(reacquired.is_ok(), "the reacquire's check saw the cleanup's own write: {reacquired:?}");
    let (noop, appended, released) = within(5_000, cleaner).await.expect("cleanup hung").unwrap();
    assert!(!noop);
    appended.unwrap();
    released.unwrap();
    assert!(!ctl.is_poisoned());
    assert_eq!(
        p.events.count(|e| *e
            == Ev::Poisoned {
                reason: PoisonReason::Takeover
            }),
        0
    );
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock());
    assert_eq!(w.transcript_bytes(), [INITIAL, USAGE, CLEANUP].concat());
}

/// A reacquire waiting for a lock another process holds does not own the drain: a dispose
/// meanwhile returns at once, and the reacquire, when it finally gets the lock, lets it go.
#[tokio::test(start_paused = true)]
async fn dispose_does_not_wait_for_a_reacquire_blocked_on_the_lock() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    let q = w.process(20);
    let hq = q.locks.acquire(transcript(), LockOptions::default()).await.unwrap();

    let reacquire = {
        let ctl = ctl.clone();
        tokio::spawn(async move { ctl.reacquire_after_prompt().await })
    };
    sleep_ms(100).await;
    assert!(!reacquire.is_finished(), "the reacquire waits for the other process's lock");

    let t0 = w.now_ms();
    assert!(
        within(1_000, ctl.dispose()).await.is_some(),
        "dispose waited for the reacquire's lock wait"
    );
    assert!(w.now_ms() - t0 < 50, "dispose took {} ms", w.now_ms() - t0);
    assert!(!ctl.holds());

    q.locks.release(&hq).await.unwrap();
    let reacquired = within(1_000, reacquire).await.expect("reacquire hung").unwrap();
    assert!(reacquired.is_ok(), "{reacquired:?}");
    assert!(!ctl.holds() && !w.lock_exists() && !p.holds_lock(), "a late reacquire held after dispose");
}

// ---------------------------------------------------------------------------------------
// 3. Owned writes and the fence (75881dd, c3d7a31)

/// A scope that stays open after its append (a slow stream) while someone else writes must not
/// record the foreign write as owned: another controller of the process must catch it.
#[tokio::test(start_paused = true)]
async fn a_foreign_write_inside_an_open_scope_is_not_owned() {
    let w = World::new();
    let p = w.process(10);
    let a = p.controller(ControllerOptions::default()).await.unwrap();
    a.release_for_prompt().await.unwrap();
    let b = p.controller(ControllerOptions::default()).await.unwrap();
    b.release_for_prompt().await.unwrap();

    let world = &w;
    a.with_write_lock(|scope| async move {
        scope.append(MSG1).await?;
        // While the scope waits on its stream, another writer appends a real entry.
        world.tool_append(FOREIGN);
        Ok(())
    })
    .await
    .unwrap();

    let r = b.reacquire_after_prompt().await;
    assert!(
        matches!(r, Err(ControllerError::Takeover { .. })),
        "another controller accepted a foreign write as owned: {r:?}"
    );
    assert!(b.is_poisoned());
    assert!(!b.holds() && !w.lock_exists());
}

/// What lands around our append while a write is under way.
#[derive(Clone, Copy, Debug)]
enum Interloper {
    /// Another process appends a benign line (type usage).
    Usage,
    /// A chmod or the like: only the transcript's ctime moves.
    Ctime,
    /// Nothing at all.
    Nothing,
}

/// Where it lands.
#[derive(Clone, Copy, Debug)]
enum Window {
    /// Inside the write's scope: after its fence check, before the write's pre-append stat.
    InScope,
    /// After the write's pre-append stat, before the append.
    BeforeAppend,
    /// After the append, before its post-append stat.
    BeforePostStat,
}

/// A write under a short lock (the controller released for the prompt) with `interloper`
/// landing in `window`, its post-append stat failing with EINTR if `stat_fails`; then a benign
/// line, a reacquire, a cleanup write and a dispose. None of it may poison: the only unowned
/// changes are benign.
async fn write_around(interloper: Interloper, window: Window, stat_fails: bool) {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();

    if let Window::InScope = window {
        assert!(!stat_fails, "not combined");
        let disk = w.fs.clone();
        let written = ctl
            .with_write_lock(|scope| async move {
                sleep_ms(5).await;
                match interloper {
                    Interloper::Usage => disk
                        .view(TOOL_PID, DEFAULT_FD_LIMIT)
                        .write_path_now(transcript(), USAGE, false)
                        .unwrap(),
                    Interloper::Ctime => disk.touch_ctime(transcript()).unwrap(),
                    Interloper::Nothing => {}
                }
                scope.append(MSG1).await
            })
            .await;
        return after_write(&w, &p, &ctl, interloper, window, stat_fails, written).await;
    }
    let append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = spawn_write(&ctl, MSG1);
    assert!(within(1_000, append.arrived(1)).await.is_some());
    let interlope = || {
        match interloper {
            Interloper::Usage => w.tool_append(USAGE),
            Interloper::Ctime => w.fs.touch_ctime(transcript()).unwrap(),
            Interloper::Nothing => {}
        }
        assert!(!ctl.is_poisoned());
    };
    sleep_ms(5).await; // a ctime change needs the clock to move
    match window {
        Window::InScope => unreachable!("handled above"),
        Window::BeforeAppend => {
            interlope();
            if stat_fails {
                p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EINTR);
            }
            append.open();
        }
        Window::BeforePostStat => {
            // The next stat after the append is its post-append stat.
            let post_stat = if stat_fails {
                p.fs.pause_then_fail_next(Op::Stat, errno::EINTR)
            } else {
                p.fs.pause_once(Op::Stat, TRANSCRIPT)
            };
            append.open();
            assert!(within(1_000, post_stat.arrived(1)).await.is_some());
            sleep_ms(5).await;
            interlope();
            post_stat.open();
        }
    }
    let written = within(1_000, writer).await.expect("the write hung").unwrap();
    after_write(&w, &p, &ctl, interloper, window, stat_fails, written).await;
}

/// The rest of `write_around`, once the write returned.
async fn after_write(
    w: &World,
    p: &Proc,
    ctl: &AttemptController,
    interloper: Interloper,
    window: Window,
    stat_fails: bool,
    written: Result<(), ControllerError>,
) {
    if stat_fails {
        let e = written.expect_err("the post-append stat failed");
        assert_eq!(errno_of(&e), Some(errno::EINTR), "{e:?}");
    } else {
        written.unwrap();
    }
    assert!(!ctl.is_poisoned());

    // A later benign line makes the next check compare content with the fence's snapshot.
    w.tool_append(HEARTBEAT);
    let reacquired = ctl.reacquire_after_prompt().await;
    assert!(
        reacquired.is_ok(),
        "{interloper:?} {window:?} (stat fails: {stat_fails}): our own write was called a takeover: {reacquired:?}"
    );
    assert!(ctl.holds());
    ctl.release_for_prompt().await.unwrap();
    let cleanup = ctl.acquire_for_cleanup().await.unwrap();
    assert!(!cleanup.is_noop(), "cleanup found the controller poisoned");
    cleanup.append(CLEANUP).await.unwrap();
    cleanup.release().await.unwrap();
    ctl.dispose().await;
    assert!(!ctl.is_poisoned());
    assert!(!w.lock_exists() && !p.holds_lock());
    let expected: Vec<u8> = match (interloper, window) {
        (Interloper::Usage, Window::InScope | Window::BeforeAppend) => {
            [INITIAL, USAGE, MSG1, HEARTBEAT, CLEANUP].concat()
        }
        (Interloper::Usage, Window::BeforePostStat) => [INITIAL, MSG1, USAGE, HEARTBEAT, CLEANUP].concat(),
        (Interloper::Ctime | Interloper::Nothing, _) => [INITIAL, MSG1, HEARTBEAT, CLEANUP].concat(),
    };
    assert_eq!(w.transcript_bytes(), expected);
}

#[tokio::test(start_paused = true)]
async fn a_benign_append_inside_our_scope_before_our_append_is_not_a_takeover() {
    write_around(Interloper::Usage, Window::InScope, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_ctime_change_inside_our_scope_before_our_append_is_not_a_takeover() {
    write_around(Interloper::Ctime, Window::InScope, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_benign_append_before_our_append_is_not_a_takeover() {
    write_around(Interloper::Usage, Window::BeforeAppend, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_ctime_change_before_our_append_is_not_a_takeover() {
    write_around(Interloper::Ctime, Window::BeforeAppend, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_benign_append_between_our_append_and_its_stat_is_not_a_takeover() {
    write_around(Interloper::Usage, Window::BeforePostStat, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_ctime_change_between_our_append_and_its_stat_is_not_a_takeover() {
    write_around(Interloper::Ctime, Window::BeforePostStat, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_append_stat_alone_is_not_a_takeover() {
    write_around(Interloper::Nothing, Window::BeforeAppend, true).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_append_stat_with_a_benign_append_before_ours_is_not_a_takeover() {
    write_around(Interloper::Usage, Window::BeforeAppend, true).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_append_stat_with_a_benign_append_after_ours_is_not_a_takeover() {
    write_around(Interloper::Usage, Window::BeforePostStat, true).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_append_stat_after_a_ctime_change_is_not_a_takeover() {
    write_around(Interloper::Ctime, Window::BeforeAppend, true).await;
}

// ---------------------------------------------------------------------------------------
// 4. A lock under release stays ours (7676140)

/// While one path of the process releases its handle (out of the held map, unlink not yet
/// done), a concurrent acquire of the same process must not judge the file an orphan of ours
/// and reclaim it: the release's unlink would then remove the new live lock.
#[tokio::test(start_paused = true)]
async fn an_acquire_does_not_reclaim_a_lock_whose_release_is_under_way() {
    let w = World::new();
    let p = w.process(10);
    let h1 = p.locks.acquire(transcript(), opts_timeout(5_000)).await.unwrap();

    let unlink = p.fs.pause_once(Op::Unlink, LOCK);
    let releaser = {
        let locks = p.locks.clone();
        let h1 = h1.clone();
        tokio::spawn(async move { locks.release(&h1).await })
    };
    assert!(within(1_000, unlink.arrived(1)).await.is_some());
    assert!(!p.holds_lock(), "the handle left the held map");

    let acquirer = {
        let locks = p.locks.clone();
        tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(5_000)).await })
    };
    sleep_ms(200).await;
    unlink.open();

    within(1_000, releaser).await.expect("release hung").unwrap().unwrap();
    let h2 = within(6_000, acquirer).await.expect("acquire hung").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(h2.ino()), "the new holder's lock file was removed");
    assert!(
        p.events.reclaim_reasons().is_empty(),
        "a lock under release was reclaimed: {:?}",
        p.events.reclaim_reasons()
    );
    assert!(p.holds_lock());
    let payload = LockPayload::parse(&w.lock_bytes().unwrap()).unwrap();
    assert_eq!(payload.pid, Some(10));
    p.locks.release(&h2).await.unwrap();
    assert!(!w.lock_exists());
}

// ---------------------------------------------------------------------------------------
// 5. A creator stalled before its payload write (ef66710)

/// On a filesystem that cannot publish a whole lock (so the lock is made in place), P creates
/// the lock file and stalls before writing its payload for longer than the orphan grace; Q
/// reclaims the payload-less file and creates its own. When P resumes it must not report
/// holding Q's file: it keeps trying and times out while Q holds.
#[tokio::test(start_paused = true)]
async fn a_creator_stalled_before_its_payload_write_does_not_adopt_the_successors_lock() {
    let w = World::new();
    let p = w.process(10);
    let q = w.process(20);
    p.fs.refuse_publish();
    q.fs.refuse_publish();

    let payload_write = p.fs.pause_next(Op::WriteFd);
    let stalled = {
        let locks = p.locks.clone();
        tokio::spawn(async move { locks.acquire(transcript(), LockOptions::default()).await })
    };
    assert!(within(1_000, payload_write.arrived(1)).await.is_some());
    assert_eq!(w.lock_bytes().as_deref(), Some(&b""[..]), "P's file has no payload yet");

    let hq = q.locks.acquire(transcript(), LockOptions::default()).await.unwrap();
    assert!(w.now_ms() > 30_000, "Q reclaimed before the orphan grace: {} ms", w.now_ms());
    assert_eq!(q.events.reclaim_reasons().len(), 1);
    assert_eq!(w.lock_ino(), Some(hq.ino()));

    payload_write.open();
    let result = within(61_000, stalled).await.expect("P's acquire hung").unwrap();
    match &result {
        Err(LockError::Timeout { .. }) => {}
        Ok(h) => panic!("P reports holding the successor's lock (its ino {}, Q's ino {})", h.ino(), hq.ino()),
        Err(e) => panic!("expected a timeout while Q holds, got {e}"),
    }
    assert!((60_000..=60_050).contains(&w.now_ms()), "timed out at {} ms", w.now_ms());
    assert!(!p.holds_lock() && q.holds_lock());
    assert_eq!(w.lock_ino(), Some(hq.ino()), "Q's lock file was touched");
    let payload = LockPayload::parse(&w.lock_bytes().unwrap()).unwrap();
    assert_eq!(payload.pid, Some(20));
}

/// The same stall, but P's payload write then fails: P may remove only the file it created,
/// never the successor's.
#[tokio::test(start_paused = true)]
async fn a_failed_payload_write_after_a_stall_removes_only_its_own_file() {
    let w = World::new();
    let p = w.process(10);
    let q = w.process(20);

    let payload_write = p.fs.pause_then_fail_next(Op::WriteFd, errno::EIO);
    let stalled = {
        let locks = p.locks.clone();
        tokio::spawn(async move { locks.acquire(transcript(), LockOptions::default()).await })
    };
    assert!(within(1_000, payload_write.arrived(1)).await.is_some());

    let hq = q.locks.acquire(transcript(), LockOptions::default()).await.unwrap();
    assert_eq!(w.lock_ino(), Some(hq.ino()));

    payload_write.open();
    let result = within(1_000, stalled).await.expect("P's acquire hung").unwrap();
    match &result {
        Err(e @ LockError::Io { .. }) => assert_eq!(e.raw_os_error(), Some(errno::EIO)),
        Ok(_) => panic!("P's payload write failed yet it reports a lock"),
        Err(e) => panic!("expected the payload write's EIO, got {e}"),
    }
    assert_eq!(w.lock_ino(), Some(hq.ino()), "P's failed create removed Q's lock file");
    assert!(!p.holds_lock() && q.holds_lock());
    q.locks.release(&hq).await.unwrap();
    assert!(!w.lock_exists());
}

/// Found by the simulator (seed 80645 before the fix): an external rewrite with byte-identical
/// content but a new mtime, while the lock was released, passed the fence as an "append of
/// nothing". Only a ctime-only change keeps identical content benign.
#[tokio::test(start_paused = true)]
async fn an_identical_rewrite_while_released_is_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();
    sleep_ms(5).await;
    let same = w.transcript_bytes();
    w.fs.view(99, DEFAULT_FD_LIMIT).write_path_now(transcript(), &same, true).unwrap();
    assert_eq!(w.transcript_bytes(), same, "the rewrite kept the bytes");
    let r = ctl.reacquire_after_prompt().await;
    assert!(matches!(r, Err(ControllerError::Takeover { .. })), "{r:?}");
    assert!(ctl.is_poisoned() && !ctl.holds() && !w.lock_exists());
}

// ---------------------------------------------------------------------------------------
// 6. A create of ours in flight does not shield another process's dead lock

/// Found by the simulator (swarm seeds 38740, 49566, 85142, 114113, …): a turn's acquire of
/// the gateway hangs in its exclusive create (EEXIST pending behind a dead holder's lock),
/// and the plugin's acquire in the same process then judged that dead lock "ours" (a create
/// of ours is in flight) and timed out on it. The file names another pid: no create or
/// release of ours can have made it, so it is judged like any lock we do not hold
/// (SPEC §1.1: dead-pid, removable; I11).
#[tokio::test(start_paused = true)]
async fn a_hung_create_of_ours_does_not_shield_a_dead_holders_lock() {
    let w = World::new();
    let p = w.process(10);
    // Our create hangs in its publish (the rename of our made lock onto the path)...
    let create = p.fs.pause_once(Op::Rename, LOCK);
    let hung = {
        let locks = p.locks.clone();
        tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(60_000)).await })
    };
    assert!(within(1_000, create.arrived(1)).await.is_some());
    // ... while a lock of pid 30, in no process table (dead), lies at the path.
    w.plant_lock(&payload(&w, Some(30), Some(1_000), Some(1_030), None));

    let second = within(11_000, p.locks.acquire(transcript(), opts_timeout(10_000))).await;
    let h2 = match second {
        Some(Ok(h)) => h,
        Some(Err(e)) => panic!("the dead holder's lock was not recovered: {e}"),
        None => panic!("the second acquire hung"),
    };
    assert_eq!(p.events.reclaim_reasons(), vec![vec![StaleReason::DeadPid]]);
    assert_eq!(w.lock_ino(), Some(h2.ino()));

    // The hung create comes back to our live lock: it waits, and gets the lock once we let go.
    create.open();
    sleep_ms(1_000).await;
    assert_eq!(w.lock_ino(), Some(h2.ino()), "the first acquire touched our held lock");
    p.locks.release(&h2).await.unwrap();
    let h1 = within(1_000, hung).await.expect("first acquire hung").unwrap().unwrap();
    assert_eq!(w.lock_ino(), Some(h1.ino()));
    p.locks.release(&h1).await.unwrap();
    assert!(!w.lock_exists());
}

// ---------------------------------------------------------------------------------------
// 7. An owned write that lands during a fence check is owned

/// A scope's append has landed and waits on its stat (the entry is in flight) while the lock
/// is removed behind the scope's back and a cleanup of the same controller takes a lock of its
/// own and checks the fence: stat, read (stalled) — meanwhile the scope's stat returns and the
/// write is recorded as owned — stat again. Found by the simulator (swarm seed 85043): the
/// check had looked for an owned match before its read and for in-flight appends after it, so
/// it saw neither and poisoned the controller for its own write (SPEC §3: a change equal to a
/// newer owned write is ok; I10).
#[tokio::test(start_paused = true)]
async fn a_write_recorded_as_owned_during_a_fence_read_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();

    let append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = spawn_write(&ctl, MSG1);
    assert!(within(1_000, append.arrived(1)).await.is_some());
    let after_stat = p.fs.pause_once(Op::Stat, TRANSCRIPT);
    append.open();
    assert!(within(1_000, after_stat.arrived(1)).await.is_some(), "the append's stat");
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG1].concat());
    w.unlink_lock(); // the scope's lock removed behind its back

    let fence_read = p.fs.pause_once(Op::Read, TRANSCRIPT);
    let cleaner = {
        let ctl = ctl.clone();
        tokio::spawn(async move { ctl.acquire_for_cleanup().await })
    };
    assert!(within(1_000, fence_read.arrived(1)).await.is_some(), "the cleanup's fence read");
    after_stat.open();
    assert!(matches!(within(1_000, writer).await, Some(Ok(Ok(())))));
    fence_read.open();

    let lock = within(1_000, cleaner).await.expect("cleanup hung").unwrap().unwrap();
    assert!(!ctl.is_poisoned(), "our own write was judged a takeover");
    assert!(!lock.is_noop());
    lock.append(CLEANUP).await.unwrap();
    lock.release().await.unwrap();
    ctl.dispose().await;
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG1, CLEANUP].concat());
    assert!(!w.lock_exists());
}

/// The same race through the slow path: a benign line landed before our append, so the write
/// re-reads the transcript to vouch for itself (stalled here). A fence check of the same
/// controller meanwhile must still count the entry as ours: it is neither in flight any more
/// nor recorded yet unless the write keeps it in flight until its record is made.
#[tokio::test(start_paused = true)]
async fn a_write_vouching_for_itself_during_a_fence_check_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.unwrap();
    ctl.release_for_prompt().await.unwrap();

    let append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = spawn_write(&ctl, MSG1);
    assert!(within(1_000, append.arrived(1)).await.is_some());
    w.tool_append(USAGE); // between our stat and our append: the file did not grow by ours alone
    let vouch_read = p.fs.pause_once(Op::Read, TRANSCRIPT);
    append.open();
    assert!(within(1_000, vouch_read.arrived(1)).await.is_some(), "the write's re-read");
    assert_eq!(w.transcript_bytes(), [INITIAL, USAGE, MSG1].concat());
    w.unlink_lock();

    let lock = within(1_000, ctl.acquire_for_cleanup()).await.expect("cleanup hung").unwrap();
    assert!(!ctl.is_poisoned(), "our own write was judged a takeover");
    assert!(!lock.is_noop());
    vouch_read.open();
    assert!(matches!(within(1_000, writer).await, Some(Ok(Ok(())))));
    lock.append(CLEANUP).await.unwrap();
    lock.release().await.unwrap();
    assert!(!ctl.is_poisoned());
    ctl.dispose().await;
    assert_eq!(w.transcript_bytes(), [INITIAL, USAGE, MSG1, CLEANUP].concat());
}

// ---------------------------------------------------------------------------------------
// 8. Our own append on top of a newer owned write

/// Attempt 1's append stalls; its abort forces the lock away after the settle bound. Attempt
/// 2 of the same process takes the lock, writes, releases for the prompt (its fence), and
/// writes again on a short lock: its stat comes before attempt 1's late append lands, its own
/// append after. The late write is the process's own (recorded on top of attempt 2's
/// version), attempt 2's append is its own (pending: the file did not grow by it alone), and
/// nothing else changed — yet the reacquire judged the change against the old fence alone
/// and poisoned (swarm seed 84559: I10; SPEC §3: newer owned writes and our own appends are
/// not a takeover).
#[tokio::test(start_paused = true)]
async fn our_append_on_top_of_a_newer_owned_write_is_not_a_takeover() {
    const MSG3: &[u8] = b"{\"type\":\"message\",\"n\":3}\n";
    let w = World::new();
    let p = w.process(10);
    let (first, late_append, late) = forced_attempt_with_a_stalled_append(&w, &p).await;

    let second = second_attempt_writes_and_releases(&p).await;
    let own_append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = spawn_write(&second, MSG3);
    assert!(within(1_000, own_append.arrived(1)).await.is_some(), "attempt 2 stat'ed, then stalled");

    late_append.open();
    assert!(within(1_000, late).await.is_some(), "attempt 1's late write returned");
    own_append.open();
    assert!(matches!(within(1_000, writer).await, Some(Ok(Ok(())))));
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG2, MSG1, MSG3].concat());

    let r = second.reacquire_after_prompt().await;
    assert!(r.is_ok() && !second.is_poisoned(), "only owned changes, yet: {r:?}");
    second.dispose().await;
    first.dispose().await;
    assert!(!w.lock_exists());
}

/// The same late write of attempt 1, but attempt 2's fence check comes after the late append
/// landed and before attempt 1 has recorded it as owned (its stat stalls): the change is the
/// process's own write in flight, which the check must count as ours whichever controller
/// made it (swarm seed 210058: I10).
#[tokio::test(start_paused = true)]
async fn another_controllers_write_in_flight_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let (first, late_append, late) = forced_attempt_with_a_stalled_append(&w, &p).await;

    let second = second_attempt_writes_and_releases(&p).await;

    let late_stat = p.fs.pause_once(Op::Stat, TRANSCRIPT);
    late_append.open();
    assert!(within(1_000, late_stat.arrived(1)).await.is_some(), "the late write landed, unrecorded");
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG2, MSG1].concat());

    let r = second.reacquire_after_prompt().await;
    assert!(r.is_ok() && !second.is_poisoned(), "the process's own write, yet: {r:?}");
    late_stat.open();
    assert!(within(1_000, late).await.is_some(), "attempt 1's late write returned");
    second.dispose().await;
    first.dispose().await;
    assert!(!w.lock_exists());
}

/// A crashed earlier life of our pid left its private lock files (`<lock>.<pid>-<n>.swap`)
/// behind, and they cannot be removed (EACCES on their unlink). Our acquire must still take the
/// free lock under another private name — not fail with the EEXIST of the junk's name, which
/// no fault caused (swarm seed 249036: I15).
#[tokio::test(start_paused = true)]
async fn junk_private_locks_of_an_earlier_life_do_not_refuse_the_acquire() {
    let w = World::new();
    let p = w.process(10);
    for n in 0..12 {
        w.plant_file(std::path::Path::new(&format!("{LOCK}.10-{n}.swap")), b"");
    }
    p.fs.fail_always(Op::Unlink, Some(".swap"), errno::EACCES);
    let handle = within(5_000, p.locks.acquire(transcript(), opts_timeout(1_000)))
        .await
        .expect("hung")
        .expect("the lock is free, whatever junk lies beside it");
    assert!(w.lock_exists());
    p.locks.release(&handle).await.unwrap();
}

/// A late acquire of ours publishes its lock after someone removed the lock file of the
/// handle this process still held: the older handle is lost — and its descriptor must be
/// closed. It was not (swarm seed 182513 of the million-seed run, I16): at a fd limit of two
/// the leaked descriptor left every later reclaim of the process one descriptor short, and the
/// session never recovered after healing.
#[tokio::test(start_paused = true)]
async fn a_handle_lost_to_a_later_acquire_of_ours_closes_its_descriptor() {
    let w = World::new();
    let p = w.process(10);
    // The late acquire parks just before it publishes its made lock...
    let late_publish = p.fs.pause_once(Op::Rename, LOCK);
    let late = {
        let locks = p.locks.clone();
        tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(60_000)).await })
    };
    assert!(within(1_000, late_publish.arrived(1)).await.is_some());
    // ... while another acquire of ours takes the lock, whose file someone then removes.
    let held = p.locks.acquire(transcript(), opts_timeout(1_000)).await.expect("the path is free");
    w.unlink_lock();
    late_publish.open();
    let late = within(1_000, late).await.expect("hung").unwrap().expect("published on a free path");
    assert!(held.is_lost(), "its file is gone and the path is ours again: the older handle is lost");
    p.locks.release(&late).await.unwrap();
    p.locks.release(&held).await.unwrap();
    let open = w.fs.open_fds().get(&10).copied().unwrap_or(0);
    assert_eq!(open, 0, "descriptors of process 10 left open");
}

// ---------------------------------------------------------------------------------------
// 9. An append of ours that landed but could not be recorded (swarm seed 239242: I10)

/// `ctl` appends `line`; the append lands and the stat after it fails (EIO), so the write
/// returns that error and nothing records the version it made.
async fn write_unverified(p: &Proc, ctl: &AttemptController, line: &'static [u8]) {
    let append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = spawn_write(ctl, line);
    assert!(within(1_000, append.arrived(1)).await.is_some());
    p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EIO);
    append.open();
    let written = within(1_000, writer).await.expect("hung").unwrap();
    assert_eq!(written.as_ref().err().and_then(errno_of), Some(errno::EIO), "{written:?}");
}

/// Attempt 1's append stalls; its abort forces the lock away. Attempt 2 of the same process
/// writes, but the stat after its append fails (EIO), so its version is nobody's record; it
/// releases for the prompt (its fence is the version with its entry). Attempt 1's late append
/// lands on that fence: neither controller could record it on an owned version with content,
/// and the reacquire called the process's own line a takeover (SPEC §3: an append of this
/// process, landed but unrecorded, is not a takeover).
#[tokio::test(start_paused = true)]
async fn a_late_append_on_a_fence_after_an_unverified_write_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let (first, late_append, late) = forced_attempt_with_a_stalled_append(&w, &p).await;

    let second = p.controller(ControllerOptions::default()).await.unwrap();
    write_unverified(&p, &second, MSG2).await;
    second.release_for_prompt().await.unwrap();

    late_append.open();
    assert!(within(1_000, late).await.is_some(), "attempt 1's late write returned");
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG2, MSG1].concat());
    let r = second.reacquire_after_prompt().await;
    assert!(r.is_ok() && !second.is_poisoned(), "only the process's own lines, yet: {r:?}");
    second.dispose().await;
    first.dispose().await;
    assert!(!w.lock_exists());
}

/// Two attempts of one process on one transcript: attempt 1 releases for its prompt; attempt
/// 2 writes on its own lock, and the stat after the append fails, so nothing records the
/// version. Attempt 1's reacquire saw attempt 2's line as a foreign change (the class of seed
/// 239242 at higher tamper rates: seeds 736712, 804216, 676965).
#[tokio::test(start_paused = true)]
async fn another_attempts_unverified_append_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    first.with_write_lock(|scope| async move { scope.append(MSG1).await }).await.unwrap();
    first.release_for_prompt().await.unwrap();

    let second = p.controller(ControllerOptions::default()).await.unwrap();
    write_unverified(&p, &second, MSG2).await;
    second.dispose().await;

    assert_eq!(w.transcript_bytes(), [INITIAL, MSG1, MSG2].concat());
    let r = first.reacquire_after_prompt().await;
    assert!(r.is_ok() && !first.is_poisoned(), "only the process's own lines, yet: {r:?}");
    first.dispose().await;
    assert!(!w.lock_exists());
}

/// The landed-but-unrecorded line is accepted once, where it landed: a copy of it appended by
/// someone else after the reacquire recorded the version is still a takeover.
#[tokio::test(start_paused = true)]
async fn a_copy_of_an_unrecorded_line_appended_later_is_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let first = p.controller(ControllerOptions::default()).await.unwrap();
    first.release_for_prompt().await.unwrap();
    let second = p.controller(ControllerOptions::default()).await.unwrap();
    write_unverified(&p, &second, MSG2).await;
    second.dispose().await;
    first.reacquire_after_prompt().await.expect("attempt 2's own line");
    first.release_for_prompt().await.unwrap();
    w.tool_append(MSG2);
    let r = first.reacquire_after_prompt().await;
    assert!(matches!(r, Err(ControllerError::Takeover { .. })), "a foreign copy, yet: {r:?}");
    first.dispose().await;
}

// ---------------------------------------------------------------------------------------
// 10. A newer owned version, then only its ctime moved (swarm seed 13170, found by the late
//     append stall)

/// Attempt 1's append stalls past the abort's settle bound; attempt 2 of the same process
/// writes, releases for the prompt (its fence); attempt 1's late append lands on that fence
/// version and is recorded as the process's newest owned write. Then only the transcript's
/// ctime moves (a chmod). The version is a newer owned write with a ctime-only change: SPEC
/// §3 accepts each of the two, so the reacquire must accept both together — it poisoned
/// (swarm seed 13170: I10).
#[tokio::test(start_paused = true)]
async fn a_ctime_change_on_a_newer_owned_write_is_not_a_takeover() {
    let w = World::new();
    let p = w.process(10);
    let (first, late_append, late) = forced_attempt_with_a_stalled_append(&w, &p).await;

    let second = second_attempt_writes_and_releases(&p).await;
    late_append.open();
    assert!(within(1_000, late).await.is_some(), "attempt 1's late write returned");
    assert_eq!(w.transcript_bytes(), [INITIAL, MSG2, MSG1].concat());
    sleep_ms(5).await; // a ctime change needs the clock to move
    w.fs.touch_ctime(transcript()).unwrap();

    let r = second.reacquire_after_prompt().await;
    assert!(r.is_ok() && !second.is_poisoned(), "an owned write and a ctime change, yet: {r:?}");
    second.dispose().await;
    first.dispose().await;
    assert!(!w.lock_exists());
}
