//! The defects of issue 6, each replayed on the in-memory world: a test per defect that failed
//! on the code before its fix (the failure is noted on each test).

mod common;

use std::path::Path;

use common::*;
use heldlock_core::{AbortSignal, OwnerError, OwnerMutex};

// ---------------------------------------------------------------------------------------
// Defect 1: the owner mutex keys by the transcript with its directory resolved (SPEC §1/§2).

/// Before the fix: `/link/sess.jsonl` was owned at once next to `/s/sess.jsonl` (two owners
/// of one lock file).
#[tokio::test(start_paused = true)]
async fn d01_owner_mutex_resolves_directory_symlinks() {
    let w = World::new();
    w.fs.symlink_dir(Path::new(DIR), Path::new("/link")).unwrap();
    let m = OwnerMutex::new(w.process(10).platform);
    let none = AbortSignal::new();
    let _g = m.acquire(Path::new(TRANSCRIPT), 1_000, &none).await.unwrap();
    let t0 = w.now_ms();
    let r = m.acquire(Path::new("/link/sess.jsonl"), 500, &none).await;
    assert!(
        matches!(r, Err(OwnerError::Timeout { .. })),
        "two owners of one session: {:?}",
        r.ok().map(|g| g.attempt())
    );
    assert_eq!(w.now_ms() - t0, 500);
}
