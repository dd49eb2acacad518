//! Benchmarks (never timed tests): throughput of the default campaign on one core, its
//! overhead against a bare madsim loop doing the same number of task polls, and peak memory.

use std::time::{Duration, Instant};

use heldlock_sim::{run_seed, RunConfig};

use crate::scenario::{find, DEFAULT_SCENARIO};

pub struct BenchReport {
    pub seeds: u64,
    pub events: u64,
    /// Median of the repetitions, one thread.
    pub wall: Duration,
    pub bare: Duration,
    pub rss_after_tenth_kb: u64,
    pub rss_end_kb: u64,
}

const REPEATS: usize = 3;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A madsim runtime per seed whose one task sleeps `polls` times: the same count of task polls
/// and timer events as the harness's seed, with none of its work.
fn bare_loop(seed: u64, polls: u64) {
    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    rt.block_on(async move {
        for _ in 0..polls {
            madsim::time::sleep(Duration::from_millis(1)).await;
        }
    });
}

pub fn run(seeds: u64) -> BenchReport {
    let scenario = find(DEFAULT_SCENARIO).expect("the default scenario exists");
    let mut walls = Vec::new();
    let mut per_seed_events = Vec::new();
    let mut rss_after_tenth_kb = 0;
    for rep in 0..REPEATS {
        let started = Instant::now();
        per_seed_events.clear();
        for seed in 0..seeds {
            let report = run_seed(seed, &RunConfig::new(scenario.name, scenario.profile(seed)));
            per_seed_events.push(report.events);
            if rep == 0 && seed == seeds / 10 {
                rss_after_tenth_kb = peak_rss_kb();
            }
        }
        walls.push(started.elapsed());
    }
    let mut bares = Vec::new();
    for _ in 0..REPEATS {
        let started = Instant::now();
        for (seed, events) in per_seed_events.iter().enumerate() {
            bare_loop(seed as u64, *events);
        }
        bares.push(started.elapsed());
    }
    BenchReport {
        seeds,
        events: per_seed_events.iter().sum(),
        wall: median(walls),
        bare: median(bares),
        rss_after_tenth_kb,
        rss_end_kb: peak_rss_kb(),
    }
}

impl BenchReport {
    pub fn markdown(&self) -> String {
        let secs = self.wall.as_secs_f64();
        format!(
            "| metric | value |\n|---|---|\n\
             | seeds (default campaign `swarm`, 1 thread) | {} |\n\
             | wall, median of {REPEATS} | {:.3} s |\n\
             | seeds/s per core | {:.0} |\n\
             | simulated events/s per core | {:.0} |\n\
             | bare madsim loop, same polls, median of {REPEATS} | {:.3} s |\n\
             | harness / bare madsim ratio | {:.2} |\n\
             | peak RSS after 10% of the seeds | {} KiB |\n\
             | peak RSS at the end | {} KiB |",
            self.seeds,
            secs,
            self.seeds as f64 / secs,
            self.events as f64 / secs,
            self.bare.as_secs_f64(),
            secs / self.bare.as_secs_f64().max(1e-9),
            self.rss_after_tenth_kb,
            self.rss_end_kb,
        )
    }
}
