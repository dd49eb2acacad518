//! heldlock-core: the session write lock of SPEC.md — a per-transcript file lock, an in-process
//! owner mutex and a per-attempt controller that lets go of the lock while a model prompt
//! streams — written against platform ports, with a production adapter for Linux.
//!
//! - [`file_lock`]: the file lock (acquire, judge, reclaim, release, watchdog) — SPEC §1
//! - [`owner`]: the in-process owner mutex — SPEC §2
//! - [`controller`]: the attempt controller — SPEC §3
//! - [`platform`]: the ports (`Fs`, `Clock`, `Processes`, `Spawn`, `Observer`)
//! - [`event`]: what the machinery tells its `Observer`
//! - [`real`]: the adapter on the real filesystem, `/proc`, tokio and `tracing`
//!
//! # Use the lock in a service
//!
//! One [`ProcessLocks`] per process ([`real::process_locks`] starts its watchdog), one
//! [`OwnerMutex`] per process, and per attempt (one turn of a session) an owner guard and an
//! [`AttemptController`]:
//!
//! ```
//! use heldlock_core::{AbortSignal, AttemptController, ControllerOptions, OwnerMutex};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let transcript = dir.path().join("session.jsonl");
//! # std::fs::write(&transcript, "")?;
//! // Once per process, inside the tokio runtime: the lock state, its watchdog running.
//! let locks = heldlock_core::real::process_locks();
//! let owners = OwnerMutex::new(locks.platform().clone());
//! let opts = ControllerOptions::default();
//!
//! // One attempt: own the session, then lock its transcript (`<transcript>.lock`).
//! let owner = owners.acquire(&transcript, opts.lock.max_hold_ms, &AbortSignal::new()).await?;
//! let ctl = AttemptController::create(locks.clone(), &transcript, opts).await?;
//! ctl.with_write_lock(|scope| async move { scope.append(b"{\"type\":\"message\"}\n").await })
//!     .await?;
//!
//! // While the model streams, let others in; take the lock back when it settles. A change
//! // someone else made meanwhile fails the next write with `ControllerError::Takeover`.
//! ctl.release_for_prompt().await?;
//! ctl.reacquire_after_prompt().await?;
//! ctl.with_write_lock(|scope| async move { scope.append(b"{\"type\":\"message\"}\n").await })
//!     .await?;
//!
//! // Teardown, on every path: dispose the controller (releases the lock), then the owner.
//! ctl.dispose().await;
//! owner.release();
//! # assert_eq!(std::fs::read(&transcript)?, b"{\"type\":\"message\"}\n".repeat(2));
//! # assert!(!dir.path().join("session.jsonl.lock").exists());
//! # Ok(())
//! # }
//! ```
//!
//! An abort (timeout or user) calls [`AttemptController::abort`]: it returns at once, and the
//! lock is released within the settle bound (2 s) even when a write or a fence read hangs. An
//! acquire answers within its timeout + [`file_lock::ACQUIRE_OVERRUN_MS`] even when one of its
//! own filesystem calls hangs; a lock that call still takes later is released, not leaked.
//!
//! # Features
//!
//! - `testing`: opens the in-memory filesystem and process table (`memfs`, `memprocs`) and
//!   internals (`judge`, `payload`, `fence`, `ProcessLocks::watchdog_tick`) to the simulator and
//!   the tests. Not part of the API.
//! - `mutants`: re-introduces the historical bugs of SPEC §5, chosen at run time (`Mutant`).

#![deny(missing_docs)]

/// Modules the simulator and the tests reach into (feature `testing`); private otherwise.
macro_rules! internal_modules {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[cfg(feature = "testing")]
        #[allow(missing_docs)]
        pub mod $name;
        #[cfg(not(feature = "testing"))]
        mod $name;
    )*};
}

mod acquire_deadline;
pub mod controller;
pub mod event;
pub mod file_lock;
pub mod owner;
pub mod platform;
pub mod real;

mod mutant;

internal_modules! {
    /// The transcript fence (SPEC §3).
    fence;
    /// The stale-lock judge (SPEC §1.1).
    judge;
    /// The lock file's JSON payload.
    payload;
}

/// The in-memory filesystem the tests and the simulator run the lock on.
#[cfg(feature = "testing")]
#[allow(missing_docs)]
pub mod memfs;
/// The in-memory process table the tests and the simulator probe.
#[cfg(feature = "testing")]
#[allow(missing_docs)]
pub mod memprocs;

pub use controller::{AttemptController, CleanupLock, ControllerError, ControllerOptions, WriteScope};
pub use event::{AbortKind, ControllerId, Duty, HandleId, LockEvent, OpId, OpKind, PoisonReason, ReleaseBy};
pub use file_lock::{LockError, LockHandle, LockOptions, LockOwner, ProcessLocks};
pub use judge::StaleReason;
#[cfg(feature = "mutants")]
pub use mutant::Mutant;
pub use owner::{AbortSignal, OwnerError, OwnerGuard, OwnerMutex};
pub use platform::{Clock, Fs, Observer, Platform, Processes, Spawn};
