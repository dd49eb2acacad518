//! Time and tasks on tokio; outside a runtime, on threads of their own (never a panic).
//! `TokioClock::paused_at` pairs with tokio's paused clock (`start_paused = true`): wall time
//! then advances only with tokio's virtual time, which makes it the manual clock of the
//! deterministic tests.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::{Duration, Instant};

use crate::platform::{BoxFuture, Clock, Spawn};

/// [`Clock`] on tokio's timer: monotonic time from `tokio::time::Instant`, wall time from the
/// system clock (or, paused, from a fixed origin moved by tokio's virtual time).
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
        if tokio::runtime::Handle::try_current().is_ok() {
            return Box::pin(tokio::time::sleep(Duration::from_millis(ms)));
        }
        // Outside tokio there is no timer to register with: a thread sleeps instead of a
        // panic. Should no thread start, the sleep ends at once (a busier poll, not a hang).
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new().name("heldlock-sleep".into()).spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            let _ = tx.send(());
        });
        Box::pin(async move {
            if spawned.is_ok() {
                let _ = rx.await;
            }
        })
    }
}

/// Spawns detached tasks on the current tokio runtime. Called from outside any runtime, it
/// runs the task on a thread of its own with a small runtime rather than panic: an abort
/// release must run wherever the abort came from.
pub struct TokioSpawner;

impl Spawn for TokioSpawner {
    fn spawn(&self, name: &'static str, task: BoxFuture<'static, ()>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(task);
            return;
        }
        let thread = std::thread::Builder::new().name(format!("heldlock-{name}")).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                Ok(runtime) => runtime.block_on(task),
                Err(e) => {
                    tracing::error!(target: "heldlock", task = name, error = %e, "no runtime for a lock task")
                }
            }
        });
        if let Err(e) = thread {
            tracing::error!(target: "heldlock", task = name, error = %e, "no thread for a lock task");
        }
    }
}
