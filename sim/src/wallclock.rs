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
        offset
    }

    pub fn offset(&self, pid: u32) -> i64 {
        self.offsets.lock().unwrap().get(&pid).copied().unwrap_or(0)
    }

    /// Step `pid`'s clock by `delta_ms`; returns the new offset.
    pub fn step(&self, pid: u32, delta_ms: i64) -> i64 {
        let mut offsets = self.offsets.lock().unwrap();
        let offset = offsets.entry(pid).or_insert(0);
        *offset += delta_ms;
        *offset
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
