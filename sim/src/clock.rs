//! Time and tasks inside the simulation: madsim's clock and scheduler, nothing real.

use std::time::Duration;

use heldlock_core::platform::{BoxFuture, Clock, Spawn};

use crate::world::EPOCH_WALL_MS;

/// Simulated nanoseconds since the run began.
pub fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
}

pub struct SimClock;

impl Clock for SimClock {
    fn wall_ms(&self) -> i64 {
        EPOCH_WALL_MS + (now_ns() / 1_000_000) as i64
    }
    fn mono_ms(&self) -> u64 {
        now_ns() / 1_000_000
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        Box::pin(madsim::time::sleep(Duration::from_millis(ms)))
    }
}

/// Spawns on the current madsim node: a crash of the node drops the task.
pub struct SimSpawner;

impl Spawn for SimSpawner {
    fn spawn(&self, _name: &'static str, task: BoxFuture<'static, ()>) {
        drop(madsim::task::spawn(task));
    }
}
