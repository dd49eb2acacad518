//! Time and tasks on tokio. `TokioClock::paused_at` pairs with tokio's paused clock
//! (`start_paused = true`): wall time then advances only with tokio's virtual time, which makes
//! it the manual clock of the deterministic tests.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::{Duration, Instant};

use crate::platform::{BoxFuture, Clock, Spawn};

pub struct TokioClock {
    origin: Instant,
    /// Wall time at `origin`; `None`: read the real wall clock.
    wall_origin_ms: Option<i64>,
}

impl TokioClock {
    /// The real wall clock and tokio's monotonic clock.
    pub fn real() -> Self {
        TokioClock {
            origin: Instant::now(),
            wall_origin_ms: None,
        }
    }

    /// Wall time starts at `wall_ms` and moves only with tokio's (possibly paused) clock.
    pub fn paused_at(wall_ms: i64) -> Self {
        TokioClock {
            origin: Instant::now(),
            wall_origin_ms: Some(wall_ms),
        }
    }
}

impl Clock for TokioClock {
    fn wall_ms(&self) -> i64 {
        match self.wall_origin_ms {
            Some(origin) => origin + self.mono_ms() as i64,
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        }
    }
    fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
    }
}

/// Spawns detached tasks on the current tokio runtime.
pub struct TokioSpawner;

impl Spawn for TokioSpawner {
    fn spawn(&self, _name: &'static str, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}
