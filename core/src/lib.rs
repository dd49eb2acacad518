//! heldlock-core: the session write lock of SPEC.md, written against platform ports.
//!
//! - [`file_lock`]: the file lock (acquire, judge, reclaim, release, watchdog) — SPEC §1
//! - [`owner`]: the in-process owner mutex — SPEC §2
//! - [`controller`]: the attempt controller — SPEC §3
//! - [`platform`]: the ports (`Fs`, `Clock`, `Processes`, `Spawn`, `Observer`)
//! - [`memfs`], [`memprocs`]: the in-memory filesystem and process table (tests, simulator)
//! - [`real`]: the adapter on the real filesystem, `/proc` and tokio
//!
//! The historical bugs (SPEC §5) exist only with the `mutants` feature.

pub mod controller;
pub mod event;
pub mod fence;
pub mod file_lock;
pub mod judge;
pub mod memfs;
pub mod memprocs;
pub mod mutant;
pub mod owner;
pub mod payload;
pub mod platform;
pub mod real;

pub use controller::{AttemptController, CleanupLock, ControllerError, ControllerOptions, WriteScope};
pub use event::{AbortKind, ControllerId, Duty, HandleId, LockEvent, OpId, OpKind, PoisonReason, ReleaseBy};
pub use file_lock::{LockError, LockHandle, LockOptions, LockOwner, ProcessLocks};
#[cfg(feature = "mutants")]
pub use mutant::Mutant;
pub use owner::{AbortSignal, OwnerError, OwnerGuard, OwnerMutex};
pub use platform::{Clock, Fs, Observer, Platform, Processes, Spawn};
