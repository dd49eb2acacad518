//! The production adapter: the real filesystem, `/proc`, and tokio for time and tasks.

mod clock;
mod fs;
mod procs;

pub use clock::{TokioClock, TokioSpawner};
pub use fs::RealFs;
pub use procs::RealProcesses;

use std::sync::Arc;

use crate::platform::{NoopObserver, Platform};

/// The platform of this OS process. Must be called inside a tokio runtime.
pub fn platform() -> Platform {
    Platform {
        fs: Arc::new(RealFs::new()),
        clock: Arc::new(TokioClock::real()),
        processes: Arc::new(RealProcesses::new()),
        spawner: Arc::new(TokioSpawner),
        observer: Arc::new(NoopObserver),
    }
}
