//! Behaviour checks shared by the behaviour tests (run with no mutant: the SPEC behaviour must
//! hold) and by `tests/mutants.rs` (run with each historical bug: the check must see it broken).
//! Each returns `Err(what was violated)`; a hang is caught by a virtual-time bound.

use heldlock_core::controller::SETTLE_BOUND_MS;
use heldlock_core::event::{AbortKind, HandleId, PoisonReason};
use heldlock_core::file_lock::ORPHAN_GRACE_SHORT_MS;
use heldlock_core::platform::errno;
use heldlock_core::{ControllerError, ControllerOptions, LockError, LockOptions};

use super::*;

pub type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// The handle a controller's create put in `held` (the first HeldSet of the process).
fn first_held(p: &Proc) -> Result<HandleId, String> {
    p.events
        .all()
        .into_iter()
        .find_map(|e| match e {
            Ev::HeldSet { handle } => Some(handle),
            _ => None,
        })
        .ok_or_else(|| "create set no held handle".to_string())
}

/// The next attempt of the same process gets the lock at once (SPEC I7).
async fn next_attempt_gets_lock(p: &Proc) -> Check {
    match within(2_000, p.controller(ctl_opts_timeout(1_000))).await {
        Some(Ok(next)) => {
            next.dispose().await;
            Ok(())
        }
        Some(Err(e)) => Err(format!("the next attempt could not take the lock: {e}")),
        None => Err("the next attempt hung".into()),
    }
}

/// SPEC §3 releaseForAbort, graceful case: a timeout or manual abort releases the lock.
/// Killed by M1 (kind = Timeout) and M2 (kind = Manual).
pub async fn abort_releases(kind: AbortKind, mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let h = first_held(&p)?;
    ctl.abort(kind);
    sleep_ms(SETTLE_BOUND_MS + 50).await;
    ensure!(
        !w.lock_exists(),
        "{} abort: the lock file is still on disk {} ms after the abort",
        kind.name(),
        SETTLE_BOUND_MS + 50
    );
    ensure!(!ctl.holds(), "{} abort: the controller still holds", kind.name());
    ensure!(
        p.events.release_begins(h) == 1,
        "the handle was released {} times",
        p.events.release_begins(h)
    );
    ensure!(!ctl.is_poisoned(), "a graceful abort release poisoned");
    next_attempt_gets_lock(&p).await
}

/// SPEC §3 releaseForPrompt / I3: the fence stat fails with EIO after `held` was cleared;
/// the handle is released anyway and the error still propagates. Killed by M3.
pub async fn fence_eio_prompt_release(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let h = first_held(&p)?;
    p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EIO);
    let result = ctl.release_for_prompt().await;
    ensure!(
        matches!(&result, Err(e) if errno_of(e) == Some(errno::EIO)),
        "the fence EIO must propagate, got {result:?}"
    );
    ensure!(!ctl.holds(), "held still set after the prompt release");
    ensure!(!w.lock_exists(), "the lock file leaked after the fence stat failed (I3)");
    ensure!(!p.holds_lock(), "the process still holds the lock");
    ensure!(p.events.release_begins(h) == 1, "released {} times", p.events.release_begins(h));
    next_attempt_gets_lock(&p).await
}

/// SPEC §3 releaseForAbort, forced case / I5 / I6: a retained write hangs (a stuck provider
/// stream inside the scope); the abort frees the lock at the settle bound, poisons first,
/// clears `held`, and the stuck write, when it resumes, may not write. Killed by M4a, M4b, M4c.
pub async fn abort_hung_retained_write(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let h = first_held(&p)?;
    let stream = Gate::new();
    let writer = tokio::spawn({
        let ctl = ctl.clone();
        let stream = stream.clone();
        async move {
            ctl.with_write_lock(|scope| async move {
                scope.append(b"{\"type\":\"message\",\"n\":1}\n").await?;
                stream.pass().await; // the hung provider stream
                scope.append(b"{\"type\":\"message\",\"n\":2}\n").await
            })
            .await
        }
    });
    ensure!(within(100, stream.arrived(1)).await.is_some(), "the write scope never started");
    let t_abort = w.now_ms();
    ctl.abort(AbortKind::Manual);
    sleep_ms(SETTLE_BOUND_MS + 50).await;
    ensure!(
        !w.lock_exists(),
        "the lock is still on disk {} ms after the abort (unbounded abort)",
        SETTLE_BOUND_MS + 50
    );
    let Some((i_release, t_release)) =
        p.events.first(|e| matches!(e, Ev::ReleaseBegin { handle, .. } if *handle == h))
    else {
        return Err("no release of the held handle".into());
    };
    let after = t_release - t_abort;
    ensure!(
        (SETTLE_BOUND_MS..=SETTLE_BOUND_MS + 50).contains(&after),
        "forced release {after} ms after the abort, expected the settle bound"
    );
    ensure!(ctl.is_poisoned(), "the forced release did not poison");
    let poisoned_at = p.events.first(|e| {
        matches!(
            e,
            Ev::Poisoned {
                reason: PoisonReason::AbortForced
            }
        )
    });
    ensure!(
        poisoned_at.is_some_and(|(i, _)| i < i_release),
        "the release while a retained use was active did not come after the poison (I6)"
    );
    ensure!(!ctl.holds(), "held still set after the forced release (double release pending)");
    stream.open();
    let unwound = within(1_000, writer).await;
    ensure!(
        matches!(unwound, Some(Ok(Err(ControllerError::Takeover { .. })))),
        "the stuck write resumed after losing its lock and must fail with Takeover, got {unwound:?}"
    );
    ensure!(
        !String::from_utf8_lossy(&w.transcript_bytes()).contains("\"n\":2"),
        "a write landed after the lock was forced free (I1)"
    );
    ensure!(
        p.events.release_begins(h) == 1,
        "the handle was released {} times (I2)",
        p.events.release_begins(h)
    );
    ensure!(within(1_000, ctl.dispose()).await.is_some(), "dispose hung after the forced release");
    ensure!(!ctl.holds(), "the disposed controller holds");
    next_attempt_gets_lock(&p).await
}

/// SPEC §3 releaseForAbort / I5 / I8: the graceful path is stuck in a hung fence read; the
/// forced release takes the handle it was releasing, frees it at the bound, frees the drain
/// so dispose and cleanup return, and the graceful path, when it unwinds, does not release
/// again. Killed by M4d (and M4a, M4b).
pub async fn abort_hung_fence_read(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let h = first_held(&p)?;
    let fence_read = p.fs.pause_once(Op::Stat, TRANSCRIPT);
    let t_abort = w.now_ms();
    ctl.abort(AbortKind::Manual);
    ensure!(
        within(100, fence_read.arrived(1)).await.is_some(),
        "the graceful abort release never reached its fence read"
    );
    sleep_ms(SETTLE_BOUND_MS + 50).await;
    ensure!(
        !w.lock_exists(),
        "the lock is still on disk {} ms after the abort (unbounded abort)",
        SETTLE_BOUND_MS + 50
    );
    let t_release = p
        .events
        .first(|e| matches!(e, Ev::ReleaseBegin { handle, .. } if *handle == h))
        .map(|(_, t)| t)
        .unwrap_or(u64::MAX);
    ensure!(t_release.saturating_sub(t_abort) <= SETTLE_BOUND_MS + 50, "forced release too late");
    ensure!(ctl.is_poisoned(), "the forced release did not poison");
    ensure!(!ctl.holds(), "held set after the forced release");
    ensure!(
        within(5_000, ctl.dispose()).await.is_some(),
        "dispose hung after the forced release: the drain stayed owned"
    );
    match within(5_000, ctl.acquire_for_cleanup()).await {
        Some(Ok(cleanup)) => {
            ensure!(cleanup.is_noop(), "a poisoned controller handed out a real cleanup lock")
        }
        Some(Err(e)) => return Err(format!("acquire_for_cleanup failed after the forced release: {e}")),
        None => return Err("acquire_for_cleanup hung after the forced release".into()),
    }
    fence_read.open();
    settle().await;
    sleep_ms(10).await;
    ensure!(
        p.events.release_begins(h) == 1,
        "the handle was released {} times: the graceful path released again",
        p.events.release_begins(h)
    );
    ensure!(!w.lock_exists(), "the lock came back");
    next_attempt_gets_lock(&p).await
}

/// SPEC §3: a prompt release asked for from inside a scope is deferred to the scope's end,
/// and then happens. Killed by M5.
pub async fn deferred_release_in_scope(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let disk = w.fs.clone();
    let result = within(
        5_000,
        ctl.with_write_lock(|scope| async move {
            scope.append(b"{\"type\":\"message\",\"n\":1}\n").await?;
            scope.release_for_prompt();
            // Nested scopes run inline under the same lock.
            scope
                .with_write_lock(
                    |inner| async move { inner.append(b"{\"type\":\"message\",\"n\":2}\n").await },
                )
                .await?;
            // Deferred: still locked while the scope runs.
            Ok(disk.contents(lock()).is_some())
        }),
    )
    .await;
    let held_inside = match result {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(format!("the scope failed: {e}")),
        None => return Err("release_for_prompt inside a scope deadlocked".into()),
    };
    ensure!(held_inside, "the lock was let go inside the scope");
    ensure!(p.events.count(|e| *e == Ev::ReleaseDeferred) == 1, "no deferred release recorded");
    ensure!(!w.lock_exists(), "the deferred prompt release was lost: lock still on disk");
    ensure!(!ctl.holds(), "the controller still holds after the scope");
    let mut expected = INITIAL.to_vec();
    expected.extend_from_slice(b"{\"type\":\"message\",\"n\":1}\n{\"type\":\"message\",\"n\":2}\n");
    ensure!(w.transcript_bytes() == expected, "transcript content wrong");
    Ok(())
}

/// SPEC §3 reacquireAfterPrompt / I4: a prompt settling late re-acquires while dispose runs;
/// the reacquire releases what it got at once and the controller holds nothing. Killed by M6.
pub async fn reacquire_after_dispose(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let q = w.process(20);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    ctl.release_for_prompt().await.map_err(|e| e.to_string())?;
    // Another process holds the lock: the reacquire waits in its acquire.
    let hq = q.locks.acquire(transcript(), LockOptions::default()).await.map_err(|e| e.to_string())?;
    let late = tokio::spawn({
        let ctl = ctl.clone();
        async move { ctl.reacquire_after_prompt().await }
    });
    sleep_ms(200).await;
    ensure!(within(1_000, ctl.dispose()).await.is_some(), "dispose hung");
    ensure!(!ctl.holds(), "holds right after dispose");
    q.locks.release(&hq).await.map_err(|e| e.to_string())?;
    match within(5_000, late).await {
        Some(Ok(Ok(()))) => {}
        other => return Err(format!("the late reacquire ended with {other:?}")),
    }
    ensure!(!ctl.holds(), "a late reacquire made the disposed controller hold again (I4)");
    ensure!(
        !p.holds_lock() && !w.lock_exists(),
        "the lock taken by the late reacquire was not released"
    );
    // A reacquire that starts after dispose does nothing.
    ctl.reacquire_after_prompt().await.map_err(|e| e.to_string())?;
    ensure!(!ctl.holds() && !w.lock_exists(), "a reacquire after dispose took the lock");
    Ok(())
}

/// SPEC §1.2: release unlinks only the file it created; a successor's lock (another inode,
/// even with identical bytes) is kept. Killed by M7.
pub async fn release_keeps_successor(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let q = w.process(20);
    let opts = LockOptions::default();
    let hp = p.locks.acquire(transcript(), opts).await.map_err(|e| e.to_string())?;
    // p's file is taken away and q becomes the holder.
    w.unlink_lock();
    let hq = q.locks.acquire(transcript(), opts).await.map_err(|e| e.to_string())?;
    p.locks.release(&hp).await.map_err(|e| e.to_string())?;
    ensure!(w.lock_ino() == Some(hq.ino()), "release removed a successor's lock file (I2)");
    ensure!(
        p.events
            .count(|e| matches!(e, Ev::ReleaseEnd { handle, unlinked: true, .. } if *handle == hp.id()))
            == 0,
        "release reported unlinking a file it did not create"
    );
    q.locks.release(&hq).await.map_err(|e| e.to_string())?;
    ensure!(!w.lock_exists(), "the holder's own release did not unlink");

    // Same bytes, another inode: still not ours.
    let hp2 = p.locks.acquire(transcript(), opts).await.map_err(|e| e.to_string())?;
    let bytes = w.lock_bytes().unwrap_or_default();
    w.plant_lock(&bytes);
    let planted = w.lock_ino();
    ensure!(planted != Some(hp2.ino()), "plant kept the inode");
    p.locks.release(&hp2).await.map_err(|e| e.to_string())?;
    ensure!(w.lock_ino() == planted, "release removed a same-bytes lock file with another inode");
    Ok(())
}

/// SPEC §1 step 3: two reclaimers judge one dead-pid lock; the first reclaims it and takes
/// the lock; the second, holding the guard later, re-checks, sees another file and leaves it.
/// Killed by M7 (the second unlinks the first one's live lock).
pub async fn racing_reclaimers(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let a = w.process(10);
    let b = w.process(20);
    w.plant_lock(&payload(&w, Some(999), Some(0), None, Some(300_000)));
    let dead_ino = w.lock_ino();
    let opts = opts_timeout(1_000);
    // b judges the dead lock, then stops right before taking the guard.
    let b_guard = b.fs.pause_once(Op::Mkdir, ".reclaim");
    let b_task = tokio::spawn({
        let locks = b.locks.clone();
        async move { locks.acquire(transcript(), opts).await }
    });
    ensure!(within(100, b_guard.arrived(1)).await.is_some(), "b never tried to take the reclaim guard");
    // a reclaims the dead lock and takes its own.
    let ha = a.locks.acquire(transcript(), opts).await.map_err(|e| format!("a: {e}"))?;
    ensure!(w.lock_ino() != dead_ino, "a did not replace the dead lock");
    ensure!(!w.guard_exists(), "a left its reclaim guard");
    b_guard.open();
    let b_result = within(5_000, b_task).await;
    ensure!(
        w.lock_ino() == Some(ha.ino()),
        "the second reclaimer removed the first one's live lock (I1/I11)"
    );
    match b_result {
        Some(Ok(Err(LockError::Timeout { .. }))) => {}
        Some(Ok(Ok(hb))) => {
            return Err(format!("two live holders: a holds {:?} and b acquired {:?}", ha, hb))
        }
        other => return Err(format!("b ended with {other:?}")),
    }
    ensure!(
        b.events.reclaim_reasons().is_empty(),
        "b reclaimed something: {:?}",
        b.events.reclaim_reasons()
    );
    ensure!(!w.guard_exists(), "b left its reclaim guard");
    ensure!(a.holds_lock(), "a lost its lock");
    a.locks.release(&ha).await.map_err(|e| e.to_string())?;
    ensure!(!w.lock_exists(), "a's release did not unlink its lock");
    Ok(())
}

/// SPEC §2: the owner mutex keys a session by its transcript with the directory resolved, so
/// `/link/sess.jsonl` (with `/link -> /s`) and `/s/sess.jsonl` share one owner. Killed by M8.
pub async fn owner_through_symlink(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    w.fs.symlink_dir(std::path::Path::new(DIR), std::path::Path::new("/link"))
        .map_err(|e| e.to_string())?;
    let m = make_owner(w.process(10).platform, mutant);
    let none = heldlock_core::AbortSignal::new();
    let _first = m.acquire(transcript(), 1_000, &none).await.map_err(|e| e.to_string())?;
    let second = m.acquire(std::path::Path::new("/link/sess.jsonl"), 500, &none).await;
    ensure!(
        matches!(second, Err(heldlock_core::OwnerError::Timeout { .. })),
        "two owners of one session through a symlinked directory"
    );
    Ok(())
}

/// SPEC §3 releaseForAbort: an abort forces only `held` or the handle a stuck graceful
/// release owns; a cleanup lock taken before the abort stays the cleanup's. Killed by M9.
pub async fn abort_leaves_cleanup_lock(mutant: Option<Mutant>) -> Check {
    const CLEANUP: &[u8] = b"{\"type\":\"message\",\"cleanup\":true}\n";
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let cleanup = ctl.acquire_for_cleanup().await.map_err(|e| e.to_string())?;
    ensure!(!cleanup.is_noop(), "the cleanup got a no-op lock");
    ctl.abort(AbortKind::Manual);
    sleep_ms(SETTLE_BOUND_MS + 500).await;
    ensure!(!ctl.is_poisoned(), "the abort poisoned a controller whose lock the cleanup holds");
    ensure!(w.lock_exists() && p.holds_lock(), "the abort took the cleanup's lock");
    let appended = cleanup.append(CLEANUP).await;
    ensure!(appended.is_ok(), "the cleanup's append failed: {appended:?}");
    cleanup.release().await.map_err(|e| e.to_string())?;
    ctl.dispose().await;
    ensure!(!w.lock_exists() && !p.holds_lock(), "the lock outlived the cleanup");
    ensure!(w.transcript_bytes() == [INITIAL, CLEANUP].concat(), "the cleanup entry is missing");
    Ok(())
}

/// SPEC §3 acquireForCleanup / I9: called from inside a write scope, the cleanup writes
/// through the scope's lock and returns; the scope keeps its lock. Killed by M10.
pub async fn cleanup_inside_scope(mutant: Option<Mutant>) -> Check {
    const CLEANUP: &[u8] = b"{\"type\":\"message\",\"cleanup\":true}\n";
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let inner = ctl.clone();
    let scoped = within(
        200_000,
        ctl.with_write_lock(|_scope| async move {
            let lock = inner.acquire_for_cleanup().await?;
            let noop = lock.is_noop();
            lock.append(CLEANUP).await?;
            lock.release().await?;
            Ok(noop)
        }),
    )
    .await;
    let noop = match scoped {
        None => return Err("acquire_for_cleanup from inside a write scope hung (I9)".into()),
        Some(r) => r.map_err(|e| format!("the scope failed: {e}"))?,
    };
    ensure!(!noop, "the cleanup inside the scope got a no-op lock");
    ensure!(w.transcript_bytes() == [INITIAL, CLEANUP].concat(), "the cleanup entry is missing");
    ensure!(!ctl.is_poisoned(), "the cleanup poisoned");
    ensure!(within(1_000, ctl.dispose()).await.is_some(), "dispose hung");
    ensure!(!w.lock_exists() && !p.holds_lock(), "the lock outlived dispose");
    Ok(())
}

/// SPEC §3 fence check / I10: the transcript deleted while the lock is released is an
/// unowned change: the next locked operation poisons with a TakeoverError (not an ENOENT).
/// Killed by M11.
pub async fn deleted_transcript_poisons(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    ctl.release_for_prompt().await.map_err(|e| e.to_string())?;
    w.fs.view(TOOL_PID, heldlock_core::memfs::DEFAULT_FD_LIMIT)
        .unlink_now(transcript())
        .map_err(|e| e.to_string())?;
    let written = ctl
        .with_write_lock(|scope| async move { scope.append(b"{\"type\":\"message\"}\n").await })
        .await;
    ensure!(
        matches!(written, Err(ControllerError::Takeover { .. })),
        "a write after the transcript was deleted must be a takeover, got {written:?}"
    );
    ensure!(ctl.is_poisoned(), "the controller was not poisoned after the transcript was deleted");
    ensure!(w.fs.contents(transcript()).is_none(), "a write recreated the deleted transcript");
    let reacquired = ctl.reacquire_after_prompt().await;
    ensure!(reacquired.is_ok() && !ctl.holds(), "a poisoned controller reacquired: {reacquired:?}");
    ctl.dispose().await;
    ensure!(!w.lock_exists() && !p.holds_lock(), "the lock outlived dispose");
    Ok(())
}

/// SPEC §3 fence check: a benign append is one of the same file. After our own append whose
/// post-append stat failed (the fence then has no fingerprint), the transcript replaced by a
/// new inode with the same bytes is a takeover. Killed by M12.
pub async fn replaced_after_unverified_append(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    ctl.release_for_prompt().await.map_err(|e| e.to_string())?;
    let append = p.fs.pause_once(Op::Append, TRANSCRIPT);
    let writer = tokio::spawn({
        let ctl = ctl.clone();
        async move {
            ctl.with_write_lock(
                |scope| async move { scope.append(b"{\"type\":\"message\",\"n\":1}\n").await },
            )
            .await
        }
    });
    ensure!(within(1_000, append.arrived(1)).await.is_some(), "the write never reached its append");
    p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EINTR); // the post-append stat
    append.open();
    let written = within(1_000, writer).await.ok_or("the write hung")?.map_err(|e| e.to_string())?;
    ensure!(
        matches!(&written, Err(e) if errno_of(e) == Some(errno::EINTR)),
        "the post-append stat's EINTR must propagate, got {written:?}"
    );
    ensure!(!ctl.is_poisoned(), "an unverified own append poisoned");
    // Same bytes, new inode: someone else's file.
    let same = w.transcript_bytes();
    w.tool_replace_transcript(&same);
    let reacquired = ctl.reacquire_after_prompt().await;
    ensure!(
        matches!(reacquired, Err(ControllerError::Takeover { .. })),
        "a transcript replaced by another inode passed the fence, got {reacquired:?}"
    );
    ensure!(ctl.is_poisoned() && !ctl.holds(), "not poisoned after the replacement");
    ctl.dispose().await;
    ensure!(!w.lock_exists(), "the lock outlived dispose");
    Ok(())
}

/// SPEC §3 acquireForCleanup / I14: an I/O error in the cleanup's fence check is surfaced
/// (the lock released); nothing is acknowledged that was not written. Killed by M13.
pub async fn cleanup_fence_error_surfaces(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    ctl.release_for_prompt().await.map_err(|e| e.to_string())?;
    p.fs.fail_once(Op::Stat, TRANSCRIPT, errno::EIO); // the cleanup's fence stat
    let entry = b"{\"type\":\"message\",\"cleanup\":true}\n";
    let outcome = match ctl.acquire_for_cleanup().await {
        Err(e) => Err(e),
        Ok(lock) => {
            let appended = lock.append(entry).await;
            let _ = lock.release().await;
            appended
        }
    };
    let written = w.transcript_bytes().ends_with(entry);
    ensure!(
        outcome.is_err() || written,
        "the cleanup append was acknowledged and never written (a swallowed fence error)"
    );
    if let Err(e) = &outcome {
        ensure!(errno_of(e) == Some(errno::EIO), "expected the fence stat's EIO, got {e}");
    }
    ensure!(!w.lock_exists() && !p.holds_lock(), "the cleanup's lock leaked");
    ctl.dispose().await;
    Ok(())
}

/// SPEC §1.1: a permission error from the liveness probe means alive, but the recycled-pid
/// and non-owner checks still apply when the pid's start time and kind are known (a pid
/// reused by another user's process). Killed by M14.
pub async fn eperm_holder_still_judged(mutant: Option<Mutant>) -> Check {
    use heldlock_core::judge::StaleReason;
    use heldlock_core::memprocs::{ProcEntry, ProcState};
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    for (reused, gateway, reason) in [
        (Some(7_777), Some(true), StaleReason::RecycledPid),
        (Some(1_050), Some(false), StaleReason::NonOwnerProcess),
    ] {
        // pid 50 wrote the lock (start time 1050) and is gone; another user's process has it now.
        w.plant_lock(&payload(&w, Some(50), Some(0), Some(1_050), Some(300_000)));
        w.table.spawn(
            50,
            ProcEntry {
                state: ProcState::Running,
                starttime: reused,
                gateway,
                probe_denied: true,
            },
        );
        let h = match within(2_000, p.locks.acquire(transcript(), opts_timeout(1_000))).await {
            Some(Ok(h)) => h,
            other => {
                return Err(format!(
                    "a lock of a reused pid probed with EPERM was not reclaimed ({}): {other:?}",
                    reason.name()
                ))
            }
        };
        ensure!(
            p.events.reclaim_reasons().last().is_some_and(|r| r.contains(&reason)),
            "reclaimed without {}: {:?}",
            reason.name(),
            p.events.reclaim_reasons()
        );
        p.locks.release(&h).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// SPEC §1 payload / §1.1: `createdAt` is any RFC 3339 time `Date.parse` accepts, offsets
/// included. A live holder's fresh lock written with `-05:00` is fresh: waited on, neither
/// reported stale nor removed past the orphan grace. Killed by M15.
pub async fn created_at_with_offset_is_valid(mutant: Option<Mutant>) -> Check {
    use heldlock_core::payload::format_iso8601;
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    w.spawn_pid(20, Some(true));
    // Now, written in US Eastern Standard Time.
    let utc = format_iso8601(w.wall_ms());
    let (date, time) = utc.trim_end_matches('Z').split_once('T').ok_or("no T in createdAt")?;
    let hour: u32 = time[..2].parse().map_err(|_| "bad hour")?;
    ensure!(hour >= 5, "the test clock needs no date roll-over");
    let created = format!("{date}T{:02}{}-05:00", hour - 5, &time[2..]);
    let bytes =
        format!("{{\"pid\":20,\"createdAt\":\"{created}\",\"starttime\":1020,\"maxHoldMs\":3600000}}");
    w.plant_lock(bytes.as_bytes());
    sleep_ms(31_000).await; // past the orphan grace
    let r = p.locks.acquire(transcript(), opts_timeout(1_000)).await;
    ensure!(
        matches!(r, Err(LockError::Timeout { .. })),
        "a live holder's lock with createdAt {created} must be waited on, got {r:?} (reclaimed: {:?})",
        p.events.reclaim_reasons()
    );
    Ok(())
}

/// SPEC §1 step 3: the stale verdict is re-verified before failing. A too-old lock replaced
/// by a fresh live one between the judging read and its stat is retried (and waited on, the
/// holder being live), never reported as a StaleError. Killed by M16.
pub async fn stale_verdict_reverified(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    w.spawn_pid(20, Some(true));
    // Two hours old: too-old, report-only.
    w.plant_lock(&payload(&w, Some(20), Some(7_200_000), Some(1_020), None));
    let judging_stat = p.fs.pause_once(Op::Stat, LOCK);
    let acquirer = tokio::spawn({
        let locks = p.locks.clone();
        async move { locks.acquire(transcript(), opts_timeout(1_000)).await }
    });
    ensure!(
        within(1_000, judging_stat.arrived(1)).await.is_some(),
        "the acquire never stat'ed the lock"
    );
    // The holder's lock is replaced by a fresh one of a live holder.
    w.plant_lock(&payload(&w, Some(20), Some(0), Some(1_020), Some(300_000)));
    judging_stat.open();
    let r = within(5_000, acquirer).await.ok_or("the acquire hung")?.map_err(|e| e.to_string())?;
    ensure!(
        matches!(r, Err(LockError::Timeout { .. })),
        "a replaced lock's stale verdict was not re-verified: expected a timeout on the live holder, got {r:?}"
    );
    ensure!(w.lock_exists() && p.events.reclaim_reasons().is_empty(), "the fresh lock was touched");
    Ok(())
}

/// SPEC §1 step 1/4 (I12): a lock that keeps vanishing (EEXIST on publishing ours, then
/// ENOENT on the read, forever) is retried for the whole time budget, not cut short by an
/// iteration cap. Killed by M17.
pub async fn vanishing_lock_uses_the_budget(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    p.fs.fail_always(Op::Rename, Some(LOCK), errno::EEXIST);
    p.fs.fail_always(Op::Read, Some(LOCK), errno::ENOENT);
    let t0 = w.now_ms();
    let r = within(5_000, p.locks.acquire(transcript(), opts_timeout(1_000)))
        .await
        .ok_or("the acquire hung")?;
    let took = w.now_ms() - t0;
    ensure!(matches!(r, Err(LockError::Timeout { .. })), "expected a timeout, got {r:?}");
    ensure!(
        (1_000..=1_050).contains(&took),
        "a vanishing lock timed out after {took} ms of a 1000 ms budget"
    );
    Ok(())
}

/// SPEC §3 dispose / I4 / I7: a cleanup lock dropped without `release()` is released by
/// dispose; the next attempt gets the lock at once. Killed by M18.
pub async fn dropped_cleanup_lock_released_by_dispose(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    let cleanup = ctl.acquire_for_cleanup().await.map_err(|e| e.to_string())?;
    cleanup
        .append(b"{\"type\":\"message\",\"cleanup\":true}\n")
        .await
        .map_err(|e| e.to_string())?;
    drop(cleanup); // forgot to release
    ctl.dispose().await;
    ensure!(!p.holds_lock() && !w.lock_exists(), "a dropped cleanup lock outlived dispose");
    next_attempt_gets_lock(&p).await
}

/// SPEC §1 step 5 / §1.3: a second acquire of a path this process holds waits (until
/// timeout) while the held file is on disk; once someone removed it, the old handle is lost
/// (as if the watchdog took it) and the new acquire proceeds. Never a panic. Killed by M19.
pub async fn reacquire_after_our_lock_was_removed(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let h1 = p.locks.acquire(transcript(), opts_timeout(1_000)).await.map_err(|e| e.to_string())?;
    let t0 = w.now_ms();
    let r = p.locks.acquire(transcript(), opts_timeout(1_000)).await;
    ensure!(
        matches!(r, Err(LockError::Timeout { .. })),
        "not reentrant: expected a timeout, got {r:?}"
    );
    ensure!(w.now_ms() - t0 >= 1_000, "timed out early");
    w.unlink_lock(); // someone removed our lock file
    let locks = p.locks.clone();
    let second = tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(1_000)).await });
    let h2 = match within(2_000, second).await {
        Some(Ok(Ok(h))) => h,
        Some(Ok(Err(e))) => return Err(format!("the re-acquire after the removal failed: {e}")),
        Some(Err(panic)) => return Err(format!("the re-acquire after the removal panicked: {panic}")),
        None => return Err("the re-acquire after the removal hung".into()),
    };
    ensure!(h1.is_lost(), "the old handle whose file was removed is not marked lost");
    ensure!(w.lock_ino() == Some(h2.ino()), "the new lock is not on disk");
    p.locks.release(&h1).await.map_err(|e| e.to_string())?;
    ensure!(w.lock_ino() == Some(h2.ino()), "releasing the lost handle removed the new lock");
    p.locks.release(&h2).await.map_err(|e| e.to_string())?;
    ensure!(!w.lock_exists() && !p.holds_lock(), "the new lock outlived its release");
    Ok(())
}

/// SPEC §1 / I15: on a filesystem that cannot publish a whole lock (`rename_noreplace` refused:
/// the lock is made in place), a creator paused between its exclusive create and its payload
/// write finds its payload-less lock reclaimed (past the orphan grace) and gone; the ENOENT of
/// its vanished lock is retried within the budget, never surfaced. Killed by M20.
pub async fn creator_retries_its_vanished_lock(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let q = w.process(20);
    p.fs.refuse_publish();
    q.fs.refuse_publish();
    let stalled = p.fs.pause_next(Op::WriteFd); // the payload written in place
    let locks = p.locks.clone();
    let creator = tokio::spawn(async move { locks.acquire(transcript(), opts_timeout(10_000)).await });
    ensure!(
        within(1_000, stalled.arrived(1)).await.is_some(),
        "the creator never reached its payload write"
    );
    sleep_ms(ORPHAN_GRACE_SHORT_MS + 500).await;
    let hq = q.locks.acquire(transcript(), opts_timeout(1_000)).await.map_err(|e| e.to_string())?;
    ensure!(q.events.reclaim_reasons().len() == 1, "the payload-less lock was not reclaimed");
    q.locks.release(&hq).await.map_err(|e| e.to_string())?;
    ensure!(!w.lock_exists(), "the reclaimer's lock outlived its release");
    stalled.open();
    let h = match within(5_000, creator).await {
        Some(Ok(Ok(h))) => h,
        Some(Ok(Err(e))) => return Err(format!("the creator's acquire surfaced its vanished lock: {e}")),
        other => return Err(format!("the creator's acquire ended with {other:?}")),
    };
    ensure!(w.lock_ino() == Some(h.ino()), "the creator's retried lock is not on disk");
    p.locks.release(&h).await.map_err(|e| e.to_string())?;
    ensure!(!w.lock_exists(), "the creator's lock outlived its release");
    Ok(())
}

/// SPEC I4 / I10: a write scope still waiting for its short lock when its controller is
/// disposed gets the lock only after dispose (maybe after the next attempt owns the session):
/// it gives the lock back and fails unwritten. Killed by M21.
pub async fn write_waiting_at_dispose_fails(mutant: Option<Mutant>) -> Check {
    let w = World::with_mutant(mutant);
    let p = w.process(10);
    let q = w.process(20);
    let ctl = p.controller(ControllerOptions::default()).await.map_err(|e| e.to_string())?;
    ctl.release_for_prompt().await.map_err(|e| e.to_string())?;
    // Another process holds the lock: the scope waits in its short acquire.
    let hq = q.locks.acquire(transcript(), LockOptions::default()).await.map_err(|e| e.to_string())?;
    let before = w.transcript_bytes();
    let late = tokio::spawn({
        let ctl = ctl.clone();
        async move {
            ctl.with_write_lock(|scope| async move { scope.append(b"{\"type\":\"late\"}\n").await })
                .await
        }
    });
    sleep_ms(200).await;
    ensure!(within(1_000, ctl.dispose()).await.is_some(), "dispose hung");
    q.locks.release(&hq).await.map_err(|e| e.to_string())?;
    match within(5_000, late).await {
        Some(Ok(Err(ControllerError::Disposed))) => {}
        other => return Err(format!("the write scope waiting at dispose ended with {other:?}")),
    }
    ensure!(w.transcript_bytes() == before, "a write scope wrote after dispose (I4)");
    ensure!(
        !ctl.holds() && !p.holds_lock() && !w.lock_exists(),
        "the short lock taken after dispose was not given back"
    );
    Ok(())
}
