//! The production adapter: the real filesystem, `/proc`, tokio for time and tasks, and
//! `tracing` for what SPEC says is logged.
//!
//! [`process_locks`] is the one call a service makes: this process's lock state with its
//! watchdog running. [`platform`] is the same platform for those who want their own observer
//! or to wire things themselves (then [`ProcessLocks::start_watchdog`] is theirs to call).

mod clock;
mod fs;
mod log;
mod procs;

pub use clock::{TokioClock, TokioSpawner};
pub use fs::{RealFs, DEFAULT_MAX_IN_FLIGHT};
pub use log::TracingObserver;
pub use procs::RealProcesses;

use std::sync::Arc;

use crate::file_lock::ProcessLocks;
use crate::platform::Platform;

/// The platform of this OS process: [`RealFs`], [`TokioClock::real`], [`RealProcesses`],
/// [`TokioSpawner`] and the [`TracingObserver`]. Meant for a tokio runtime with time enabled;
/// outside one, its calls, sleeps and tasks take threads of their own.
pub fn platform() -> Platform {
    Platform {
        fs: Arc::new(RealFs::new()),
        clock: Arc::new(TokioClock::real()),
        processes: Arc::new(RealProcesses::new()),
        spawner: Arc::new(TokioSpawner),
        observer: Arc::new(TracingObserver),
    }
}

/// This process's lock state on the real [`platform`], with the watchdog running (SPEC §1.3:
/// every 60 s, locks held past their maxHoldMs are force-released and logged). Call it once per
/// process, inside the tokio runtime the watchdog is to run on; share the `Arc`.
pub fn process_locks() -> Arc<ProcessLocks> {
    let locks = ProcessLocks::new(platform());
    locks.start_watchdog();
    locks
}
