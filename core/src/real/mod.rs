//! The production adapter: the real filesystem, `/proc`, tokio for time and tasks, and
//! `tracing` for what SPEC says is logged.
//!
//! [`process_locks`] is the one call a service makes: this process's lock state with its
//! watchdog running. [`platform`] is the same platform for those who want their own observer
//! or to wire things themselves (then [`ProcessLocks::start_watchdog`] is theirs to call).

mod blocking;
mod clock;
mod fs;
mod log;
mod procs;

pub use clock::{TokioClock, TokioSpawner};
pub use fs::{stat_of, RealFs, DEFAULT_MAX_IN_FLIGHT};
pub use log::TracingObserver;
pub use procs::{RealProcesses, MAX_PROBES_IN_FLIGHT};

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::file_lock::ProcessLocks;
use crate::platform::Platform;

/// This OS process as the judge sees it: one port for every platform, so `ProcessLocks::new`
/// over any of them finds the one live lock state of the process.
fn this_process() -> Arc<RealProcesses> {
    static PROCESS: OnceLock<Arc<RealProcesses>> = OnceLock::new();
    PROCESS.get_or_init(|| Arc::new(RealProcesses::new())).clone()
}

/// The platform of this OS process: [`RealFs`], [`TokioClock::real`], [`RealProcesses`] (one
/// for the whole process), [`TokioSpawner`] and the [`TracingObserver`]. Meant for a tokio
/// runtime with time enabled; outside one, its calls, sleeps and tasks take threads of their
/// own. While a `ProcessLocks` built on a `platform()` is alive, `ProcessLocks::new` over
/// another one returns that same lock state (ownership is process-wide).
pub fn platform() -> Platform {
    Platform {
        fs: Arc::new(RealFs::new()),
        clock: Arc::new(TokioClock::real()),
        processes: this_process(),
        spawner: Arc::new(TokioSpawner),
        observer: Arc::new(TracingObserver),
    }
}

/// This process's lock state on the real [`platform`], with the watchdog running (SPEC §1.3:
/// every 60 s, locks held past their maxHoldMs are force-released and logged). Every call
/// while the state is alive returns the same one, its one watchdog already running: call it
/// inside the tokio runtime the watchdog is to run on, and keep the `Arc`.
pub fn process_locks() -> Arc<ProcessLocks> {
    static WATCHED: Mutex<Weak<ProcessLocks>> = Mutex::new(Weak::new());
    let locks = ProcessLocks::new(platform());
    let mut watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
    if !watched.upgrade().is_some_and(|w| Arc::ptr_eq(&w, &locks)) {
        locks.start_watchdog();
        *watched = Arc::downgrade(&locks);
    }
    locks
}
