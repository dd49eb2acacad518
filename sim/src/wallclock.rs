//! Per-process wall clocks. The gateways share the session directory over a network mount:
//! each process reads its own host's wall clock — an offset from true time, stepped now and
//! then (an NTP correction, a VM resumed) — while file times (mtime, ctime) come from the
//! file server's clock, which is true simulated time. Stale judging compares a payload's
//! `createdAt` (the writer's clock) and a file's mtime (the server's) with the judge's own
//! wall clock, as it does in production. Monotonic time is never skewed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::clock::now_ns;
use crate::seed::{world_rng, WorldDraw};
use crate::world::{World, EPOCH_WALL_MS};

/// Steps are bounded: at most this many per run, whatever the profile says.
const MAX_STEPS: u32 = 16;

/// The wall-clock offsets of the machine's processes (ms; absent: in sync).
#[derive(Default)]
pub struct WallClocks {
    offsets: Mutex<BTreeMap<u32, i64>>,
    /// Each process incarnation's steps: (simulated ns of the step, offset just before it).
    steps: Mutex<BTreeMap<u32, Vec<(u64, i64)>>>,
}

impl WallClocks {
    /// Give a (re)started process its host's offset, drawn within ±`skew_ms`.
    pub fn start(&self, seed: u64, pid: u32, incarnation: u32, skew_ms: u64) -> i64 {
        let offset = if skew_ms == 0 {
            0
        } else {
            let index = u64::from(pid) << 16 | u64::from(incarnation);
            let skew = skew_ms as i64;
            world_rng(seed, WorldDraw::ClockOffset, index).gen_range(-skew..=skew)
        };
        self.offsets.lock().unwrap().insert(pid, offset);
        self.steps.lock().unwrap().remove(&pid);
        offset
    }

    pub fn offset(&self, pid: u32) -> i64 {
        self.offsets.lock().unwrap().get(&pid).copied().unwrap_or(0)
    }

    /// Step `pid`'s clock by `delta_ms` at simulated time `at_ns`; returns the new offset.
    pub fn step(&self, pid: u32, delta_ms: i64, at_ns: u64) -> i64 {
        let mut offsets = self.offsets.lock().unwrap();
        let offset = offsets.entry(pid).or_insert(0);
        let mut steps = self.steps.lock().unwrap();
        let history = steps.entry(pid).or_default();
        assert!(history.len() < MAX_STEPS as usize, "more clock steps than a run makes");
        history.push((at_ns, *offset));
        *offset += delta_ms;
        *offset
    }

    /// The highest reading of `pid`'s wall clock (Unix ms) between `since_ns` and `now_ns`:
    /// a verdict made by that clock in the window may have read any value up to it (a step
    /// back since then lowers what the clock reads now, not what the verdict read).
    pub fn highest_wall_ms(&self, pid: u32, since_ns: u64, now_ns: u64) -> i64 {
        let reading = |at_ns: u64, offset: i64| EPOCH_WALL_MS + (at_ns / 1_000_000) as i64 + offset;
        let steps = self.steps.lock().unwrap();
        let before_steps = steps
            .get(&pid)
            .into_iter()
            .flatten()
            .filter(|(at, _)| (since_ns..=now_ns).contains(at))
            .map(|&(at, before)| reading(at, before));
        before_steps.fold(reading(now_ns, self.offset(pid)), i64::max)
    }

    /// What `pid`'s wall clock reads now (Unix ms).
    pub fn wall_ms(&self, pid: u32) -> i64 {
        EPOCH_WALL_MS + (now_ns() / 1_000_000) as i64 + self.offset(pid)
    }
}

/// The clock-step actor: at seeded times, step a live gateway's wall clock.
pub async fn clock_stepper(world: Arc<World>) {
    let p = &world.profile;
    let mut rng = world_rng(world.seed, WorldDraw::ClockSteps, 0);
    for _ in 0..p.clock_steps.min(MAX_STEPS) {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1_000..60_000))).await;
        if world.is_healed() {
            return;
        }
        let live = world.live_gateways();
        if live.is_empty() || p.clock_step_max_ms == 0 {
            continue;
        }
        let pid = live[rng.gen_range(0..live.len())];
        let max = p.clock_step_max_ms as i64;
        let delta = rng.gen_range(-max..=max);
        world.step_clock(pid, delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn the_highest_reading_counts_the_clock_before_a_step_back() {
        let clocks = WallClocks::default();
        let wall = |s: u64, offset: i64| EPOCH_WALL_MS + (s * 1_000) as i64 + offset;
        clocks.step(7, 1_000_000, 10 * SEC);
        clocks.step(7, -2_000_000, 20 * SEC);
        // Now (30 s) the clock reads 1 000 000 ms behind; at 20 s, just before the step back,
        // it read 1 000 000 ms ahead.
        assert_eq!(clocks.highest_wall_ms(7, 15 * SEC, 30 * SEC), wall(20, 1_000_000));
        assert_eq!(clocks.highest_wall_ms(7, 25 * SEC, 30 * SEC), wall(30, -1_000_000), "no step since");
        assert_eq!(clocks.highest_wall_ms(7, 5 * SEC, 30 * SEC), wall(20, 1_000_000));
        assert_eq!(clocks.highest_wall_ms(8, 0, 30 * SEC), wall(30, 0), "never stepped");
        clocks.start(1, 7, 2, 0);
        assert_eq!(clocks.highest_wall_ms(7, 0, 30 * SEC), wall(30, 0), "a restart forgets the steps");
    }
}
