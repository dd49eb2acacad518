//! Time and tasks inside the simulation: madsim's clock and scheduler, nothing real. Each
//! process reads its own wall clock (`wallclock`); its watchdog's ticks are reported to the
//! world so the oracle can check that a live event loop keeps ticking.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use heldlock_core::platform::{BoxFuture, Clock, Spawn};

use crate::world::World;

/// Simulated nanoseconds since the run began.
pub fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
}

/// Which lock table's watchdog is being polled on this thread right now (madsim runs one
/// task at a time on one thread, so this is exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchdogOf {
    pub pid: u32,
    /// 0: the gateway's own table; 1: a plugin's second table.
    pub table: u32,
}

thread_local! {
    static POLLING_WATCHDOG: Cell<Option<WatchdogOf>> = const { Cell::new(None) };
}

/// One process's clock: its own wall time, the shared monotonic time.
pub struct SimClock {
    pub world: Arc<World>,
    pub pid: u32,
}

impl Clock for SimClock {
    fn wall_ms(&self) -> i64 {
        self.world.clocks.wall_ms(self.pid)
    }
    fn mono_ms(&self) -> u64 {
        now_ns() / 1_000_000
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        // The watchdog sleeps once per tick: each call from its task is the end of a tick.
        if let Some(who) = POLLING_WATCHDOG.with(Cell::get) {
            self.world.watchdog_ticked(who);
        }
        Box::pin(madsim::time::sleep(Duration::from_millis(ms)))
    }
}

/// Spawns on the current madsim node: a crash of the node drops the task.
pub struct SimSpawner {
    pub table: WatchdogOf,
}

impl Spawn for SimSpawner {
    fn spawn(&self, name: &'static str, task: BoxFuture<'static, ()>) {
        if name == "watchdog" {
            drop(madsim::task::spawn(Watched {
                who: self.table,
                task,
            }));
        } else {
            drop(madsim::task::spawn(task));
        }
    }
}

/// The watchdog task, marked while it is polled.
struct Watched {
    who: WatchdogOf,
    task: BoxFuture<'static, ()>,
}

impl Future for Watched {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let who = self.who;
        let previous = POLLING_WATCHDOG.with(|c| c.replace(Some(who)));
        let polled = self.task.as_mut().poll(cx);
        POLLING_WATCHDOG.with(|c| c.set(previous));
        polled
    }
}
