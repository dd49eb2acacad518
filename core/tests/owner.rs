//! SPEC §2: the in-process owner mutex.

mod common;

use std::path::Path;

use common::*;
use heldlock_core::{AbortSignal, OwnerError, OwnerMutex};

const SESSION: &str = "/s/sess.jsonl";

fn mutex(w: &World) -> std::sync::Arc<OwnerMutex> {
    OwnerMutex::new(w.process(10).platform)
}

#[tokio::test(start_paused = true)]
async fn at_most_one_attempt_owns_a_session() {
    let w = World::new();
    let m = mutex(&w);
    let none = AbortSignal::new();
    let g1 = m.acquire(Path::new(SESSION), 1_000, &none).await.unwrap();
    assert!(m.is_owned(Path::new(SESSION)).await.unwrap());
    // Another spelling of the same path is the same session ('..' is physical, as in Linux:
    // the directory it climbs out of must exist).
    w.fs.create_dir_all(Path::new("/s/x")).unwrap();
    let t0 = w.now_ms();
    let r = m.acquire(Path::new("/s/x/../sess.jsonl"), 500, &none).await;
    assert!(matches!(r, Err(OwnerError::Timeout { .. })), "{:?}", r.err());
    assert_eq!(w.now_ms() - t0, 500);
    // Another session is independent.
    let other = m.acquire(Path::new("/s/other.jsonl"), 500, &none).await.unwrap();
    assert_eq!(w.now_ms() - t0, 500);
    assert_ne!(g1.attempt(), other.attempt());
}

#[tokio::test(start_paused = true)]
async fn a_release_wakes_the_waiter_at_once() {
    let w = World::new();
    let m = mutex(&w);
    let none = AbortSignal::new();
    let g1 = m.acquire(Path::new(SESSION), 1_000, &none).await.unwrap();
    let waiter = tokio::spawn({
        let m = m.clone();
        async move { m.acquire(Path::new(SESSION), 60_000, &AbortSignal::new()).await }
    });
    sleep_ms(300).await;
    assert!(!waiter.is_finished());
    let t_release = w.now_ms();
    g1.release();
    let second = waiter.await.unwrap().unwrap();
    assert_eq!(w.now_ms(), t_release, "the waiter was not woken by the release");
    assert_ne!(second.attempt(), g1.attempt());
    assert!(m.is_owned(Path::new(SESSION)).await.unwrap());
    drop(second);
    assert!(!m.is_owned(Path::new(SESSION)).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn waiting_times_out_with_the_owner_timeout_error() {
    let w = World::new();
    let m = mutex(&w);
    let none = AbortSignal::new();
    let _g1 = m.acquire(Path::new(SESSION), 1_000, &none).await.unwrap();
    let t0 = w.now_ms();
    let err = m.acquire(Path::new(SESSION), 1_020_000, &none).await.err().unwrap();
    assert_eq!(w.now_ms() - t0, 1_020_000);
    assert!(
        matches!(&err, OwnerError::Timeout { session, timeout_ms: 1_020_000 } if session == Path::new(SESSION)),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("SessionFileOwnerTimeoutError"));
}

#[tokio::test(start_paused = true)]
async fn an_abort_ends_the_wait() {
    let w = World::new();
    let m = mutex(&w);
    let _g1 = m.acquire(Path::new(SESSION), 1_000, &AbortSignal::new()).await.unwrap();
    let abort = AbortSignal::new();
    let waiter = tokio::spawn({
        let m = m.clone();
        let abort = abort.clone();
        async move { m.acquire(Path::new(SESSION), 60_000, &abort).await.map(|g| g.attempt()) }
    });
    sleep_ms(250).await;
    let t_abort = w.now_ms();
    abort.abort();
    let r = waiter.await.unwrap();
    assert!(matches!(r, Err(OwnerError::Aborted)), "{r:?}");
    assert_eq!(w.now_ms(), t_abort);
    assert!(m.is_owned(Path::new(SESSION)).await.unwrap(), "the owner is unaffected");
}

/// SPEC §2: the wait is abortable — all of it, the session path's resolution included. A
/// realpath that stalls (a slow or hung mount) must not keep an aborted turn waiting (swarm
/// seed 66: an abort landed during a 2.7 s realpath and the turn failed with its EACCES later).
#[tokio::test(start_paused = true)]
async fn an_abort_ends_the_wait_while_the_session_path_is_resolving() {
    let w = World::new();
    let p = w.process(10);
    let m = OwnerMutex::new(p.platform.clone());
    let resolve = p.fs.pause_once(Op::CanonicalDir, DIR);
    let abort = AbortSignal::new();
    let waiter = tokio::spawn({
        let (m, abort) = (m.clone(), abort.clone());
        async move { m.acquire(Path::new(SESSION), 60_000, &abort).await.map(|g| g.attempt()) }
    });
    sleep_ms(250).await;
    assert_eq!(resolve.arrivals(), 1, "the resolution is under way");
    let t_abort = w.now_ms();
    abort.abort();
    let r = within(1_000, waiter).await.expect("the aborted wait went on behind its realpath");
    assert!(matches!(r.unwrap(), Err(OwnerError::Aborted)));
    assert_eq!(w.now_ms(), t_abort, "the abort ended the wait at once");
    resolve.open();
}

#[tokio::test(start_paused = true)]
async fn release_is_idempotent() {
    let w = World::new();
    let m = mutex(&w);
    let none = AbortSignal::new();
    let g1 = m.acquire(Path::new(SESSION), 1_000, &none).await.unwrap();
    g1.release();
    assert!(!m.is_owned(Path::new(SESSION)).await.unwrap());
    let g2 = m.acquire(Path::new(SESSION), 1_000, &none).await.unwrap();
    // A second release of the old guard (and its drop) does not free the new owner.
    g1.release();
    drop(g1);
    assert!(m.is_owned(Path::new(SESSION)).await.unwrap());
    let r = m.acquire(Path::new(SESSION), 100, &none).await;
    assert!(matches!(r, Err(OwnerError::Timeout { .. })));
    // Dropping a guard releases it.
    drop(g2);
    assert!(!m.is_owned(Path::new(SESSION)).await.unwrap());
    m.acquire(Path::new(SESSION), 100, &none).await.unwrap();
}
