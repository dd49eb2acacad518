//! A campaign: many seeds of one scenario over `jobs` threads. Seeds are independent, so the
//! result is the same whatever the thread count; failures come back in seed order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use heldlock_core::Mutant;
use heldlock_sim::coverage::{Coverage, CORE_FAULT_SITES, TRANSITIONS};
use heldlock_sim::{run_seed, InvariantId, RunConfig, SeedReport, TraceMode};
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One failing seed, with the command that replays it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub mutant: Option<String>,
    pub invariant: InvariantId,
    /// The first violation, as the oracle worded it.
    pub violation: String,
    pub reproduce: String,
}

/// The numbers of a campaign; shards' summaries merge into one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenarios: Vec<String>,
    pub mutant: Option<String>,
    pub seeds: u64,
    pub passed: u64,
    pub events: u64,
    pub sim_seconds: f64,
    pub faults: BTreeMap<String, u64>,
    pub failures: Vec<Failure>,
    pub transitions: BTreeMap<String, u64>,
    pub fault_sites: BTreeMap<String, u64>,
    pub wall_seconds: f64,
}

/// The command that replays one seed.
pub fn reproduce_command(scenario: &str, seed: u64, mutant: Option<Mutant>) -> String {
    match mutant {
        Some(m) => format!("heldlock replay --scenario {scenario} --seed {seed} --mutant {m}"),
        None => format!("heldlock replay --scenario {scenario} --seed {seed}"),
    }
}

impl Summary {
    fn add_seed(
        &mut self,
        scenario: &str,
        mutant: Option<Mutant>,
        report: &SeedReport,
        coverage: &mut Coverage,
    ) {
        self.seeds += 1;
        self.events += report.events;
        self.sim_seconds += report.sim_ns as f64 / 1e9;
        for (kind, n) in &report.faults {
            *self.faults.entry((*kind).to_owned()).or_insert(0) += n;
        }
        coverage.merge(&report.coverage);
        match report.first_violation() {
            None => self.passed += 1,
            Some(v) => self.failures.push(Failure {
                scenario: scenario.to_owned(),
                seed: report.seed,
                mutant: mutant.map(|m| m.name().to_owned()),
                invariant: v.invariant,
                violation: v.to_string(),
                reproduce: reproduce_command(scenario, report.seed, mutant),
            }),
        }
    }

    fn set_coverage(&mut self, coverage: &Coverage) {
        for (k, v) in &coverage.transitions {
            *self.transitions.entry((*k).to_owned()).or_insert(0) += v;
        }
        for (k, v) in &coverage.fault_sites {
            *self.fault_sites.entry(k.to_string()).or_insert(0) += v;
        }
    }

    /// Fold another summary (another scenario, another shard) into this one.
    pub fn merge(&mut self, other: &Summary) {
        for s in &other.scenarios {
            if !self.scenarios.contains(s) {
                self.scenarios.push(s.clone());
            }
        }
        if self.mutant.is_none() {
            self.mutant = other.mutant.clone();
        }
        self.seeds += other.seeds;
        self.passed += other.passed;
        self.events += other.events;
        self.sim_seconds += other.sim_seconds;
        self.wall_seconds = self.wall_seconds.max(other.wall_seconds);
        for (k, v) in &other.faults {
            *self.faults.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.transitions {
            *self.transitions.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &other.fault_sites {
            *self.fault_sites.entry(k.clone()).or_insert(0) += v;
        }
        self.failures.extend(other.failures.iter().cloned());
        self.failures.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
        self.failures.dedup();
    }

    /// Transitions and core fault sites this campaign never reached.
    pub fn gaps(&self) -> (Vec<&'static str>, Vec<String>) {
        let transitions =
            TRANSITIONS.iter().copied().filter(|t| !self.transitions.contains_key(*t)).collect();
        let sites = CORE_FAULT_SITES
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !self.fault_sites.contains_key(s))
            .collect();
        (transitions, sites)
    }
}

/// What to run.
pub struct Plan<'a> {
    pub scenario: &'a Scenario,
    pub seeds: Vec<u64>,
    pub jobs: usize,
    pub mutant: Option<Mutant>,
}

/// Run every seed of the plan. `on_seed` is told of each finished seed (progress) and
/// `on_failure` of each failing one, as soon as it fails (the store saves it there).
pub fn run(plan: &Plan<'_>, on_seed: &(dyn Fn() + Sync), on_failure: &(dyn Fn(&Failure) + Sync)) -> Summary {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let total = Mutex::new((Summary::default(), Coverage::default()));
    let config = RunConfig::new(plan.scenario.name, plan.scenario.profile(0)).mutant(plan.mutant);
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| {
                let mut summary = Summary::default();
                let mut coverage = Coverage::default();
                // Each worker takes the next seed until none is left.
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = plan.seeds.get(i) else { break };
                    let mut config = config.clone();
                    config.profile = plan.scenario.profile(seed);
                    let report = run_seed(seed, &config);
                    let failures_before = summary.failures.len();
                    summary.add_seed(plan.scenario.name, plan.mutant, &report, &mut coverage);
                    if let Some(f) = summary.failures.get(failures_before) {
                        on_failure(f);
                    }
                    on_seed();
                }
                let mut total = total.lock().unwrap();
                total.0.merge(&summary);
                total.1.merge(&coverage);
            });
        }
    });
    let (mut summary, coverage) = total.into_inner().unwrap();
    summary.set_coverage(&coverage);
    summary.scenarios = vec![plan.scenario.name.to_owned()];
    summary.mutant = plan.mutant.map(|m| m.name().to_owned());
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary
}

/// Replay one seed to the end with its whole trace.
pub fn replay(scenario: &Scenario, seed: u64, mutant: Option<Mutant>) -> SeedReport {
    let config = RunConfig::new(scenario.name, scenario.profile(seed))
        .mutant(mutant)
        .trace(TraceMode::Full)
        .stop_at_violation(false);
    run_seed(seed, &config)
}

/// The last `n` trace lines up to a replayed seed's first violation (for reports).
pub fn last_lines(report: &SeedReport, n: usize) -> Vec<String> {
    let at = report.first_violation().map(|v| v.at_ns);
    let lines: Vec<&String> = report
        .trace
        .iter()
        .filter(|l| at.is_none_or(|at| line_time_ns(l).is_none_or(|t| t <= at)))
        .collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| (*l).clone()).collect()
}

/// The simulated time a trace line starts with.
pub fn line_time_ns(line: &str) -> Option<u64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('s')?;
    let (secs, micros) = stamp.split_once('.')?;
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1_000)
}

/// The seeds `range` holds for shard `k` of `n` (1-based), stored failures first.
pub fn seed_list(range: std::ops::Range<u64>, shard: Option<(u64, u64)>, stored: &[u64]) -> Vec<u64> {
    let in_shard = |s: &u64| shard.is_none_or(|(k, n)| s % n == k - 1);
    let mut seeds: Vec<u64> = stored.iter().copied().filter(in_shard).collect();
    seeds.extend(range.filter(|s| in_shard(s) && !stored.contains(s)));
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_range_and_stored_seeds_come_first() {
        let all: Vec<u64> = (0..10).collect();
        let mut union: Vec<u64> = (1..=3).flat_map(|k| seed_list(0..10, Some((k, 3)), &[])).collect();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(seed_list(0..4, None, &[42, 2]), vec![42, 2, 0, 1, 3]);
        assert_eq!(seed_list(0..6, Some((1, 2)), &[3, 4]), vec![4, 0, 2]);
    }

    #[test]
    fn trace_times_parse_back() {
        assert_eq!(line_time_ns("   12.345678s p101    x"), Some(12_345_678_000));
        assert_eq!(line_time_ns("garbage"), None);
    }
}
