//! A campaign: many seeds of one scenario over `jobs` threads. Seeds are independent, so the
//! result is the same whatever the thread count; failures come back in seed order.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::{ControlFlow, Range};
use std::time::Instant;

use heldlock_core::Mutant;
use heldlock_sim::coverage::{Coverage, CORE_FAULT_SITES, TRANSITIONS};
use heldlock_sim::faults::FaultSite;
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
    /// Failing seeds, in seed order: the first `MAX_LISTED_FAILURES` to fail (each one is
    /// also printed and saved as it fails; `failed` counts them all).
    pub failures: Vec<Failure>,
    #[serde(default)]
    pub failed: u64,
    pub transitions: BTreeMap<String, u64>,
    pub fault_sites: BTreeMap<String, u64>,
    pub wall_seconds: f64,
}

/// A summary lists at most this many failures: memory stays bounded on an endless failing
/// campaign (a mutant over the whole seed space).
pub const MAX_LISTED_FAILURES: usize = 10_000;

/// The command that replays one seed.
pub fn reproduce_command(scenario: &str, seed: u64, mutant: Option<Mutant>) -> String {
    match mutant {
        Some(m) => format!("heldlock replay --scenario {scenario} --seed {seed} --mutant {m}"),
        None => format!("heldlock replay --scenario {scenario} --seed {seed}"),
    }
}

impl Summary {
    /// Count one seed's report in; its failure, if it failed.
    fn add_seed(
        &mut self,
        scenario: &str,
        mutant: Option<Mutant>,
        report: &SeedReport,
        coverage: &mut Coverage,
    ) -> Option<Failure> {
        self.seeds += 1;
        self.events += report.events;
        self.sim_seconds += report.sim_ns as f64 / 1e9;
        for (kind, n) in &report.faults {
            *self.faults.entry((*kind).to_owned()).or_insert(0) += n;
        }
        coverage.merge(&report.coverage);
        let Some(v) = report.first_violation() else {
            self.passed += 1;
            return None;
        };
        let failure = Failure {
            scenario: scenario.to_owned(),
            seed: report.seed,
            mutant: mutant.map(|m| m.name().to_owned()),
            invariant: v.invariant,
            violation: v.to_string(),
            reproduce: reproduce_command(scenario, report.seed, mutant),
        };
        self.failed += 1;
        if self.failures.len() < MAX_LISTED_FAILURES {
            self.failures.push(failure.clone());
        }
        Some(failure)
    }

    /// Failing seeds counted but not listed (past `MAX_LISTED_FAILURES`).
    pub fn unlisted(&self) -> u64 {
        self.failed.saturating_sub(self.failures.len() as u64)
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
        self.failed += other.failed;
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
        self.failures.truncate(MAX_LISTED_FAILURES);
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

/// The seeds of a campaign, produced one at a time: stored failing seeds of the shard first,
/// then the shard's seeds of the range (skipping the stored ones). Memory holds the stored
/// seeds only, however long the range.
#[derive(Clone, Debug, Default)]
pub struct SeedSource {
    pub stored: Vec<u64>,
    pub range: Range<u64>,
    /// Shard K of N (1-based): the seeds `s` with `s % N == K - 1`.
    pub shard: Option<(u64, u64)>,
}

impl SeedSource {
    pub fn range(range: Range<u64>) -> Self {
        SeedSource {
            range,
            ..SeedSource::default()
        }
    }

    fn in_shard(&self, seed: u64) -> bool {
        self.shard.is_none_or(|(k, n)| seed % n == k - 1)
    }

    /// The shard's seeds of the range, in order, without collecting them.
    pub fn range_seeds(&self) -> impl Iterator<Item = u64> + Send + 'static {
        let (k, n) = self.shard.unwrap_or((1, 1));
        assert!(k >= 1 && k <= n, "a shard is K/N with 1 <= K <= N");
        let start = self.range.start;
        // In u128: k - 1 + n overflows u64 for a shard count near u64::MAX.
        let offset = ((u128::from(k) - 1 + u128::from(n) - u128::from(start % n)) % u128::from(n)) as u64;
        let first = start.saturating_add(offset);
        (first..self.range.end.max(first)).step_by(n as usize)
    }

    /// How many seeds of the range the shard holds (stored seeds aside).
    pub fn range_len(&self) -> u64 {
        let (k, n) = self.shard.unwrap_or((1, 1));
        let count_below = |x: u64| x / n + u64::from(x % n > k - 1);
        count_below(self.range.end) - count_below(self.range.start)
    }

    /// Stored seeds of the shard that the range does not hold: they run in addition.
    pub fn extra_stored(&self) -> Vec<u64> {
        self.stored
            .iter()
            .copied()
            .filter(|s| self.in_shard(*s) && !self.range.contains(s))
            .collect()
    }

    /// Every seed to run: stored seeds of the shard first, then the rest of the range.
    pub fn seeds(&self) -> impl Iterator<Item = u64> + Send + 'static {
        let stored: Vec<u64> = self.stored.iter().copied().filter(|s| self.in_shard(*s)).collect();
        let skip: HashSet<u64> = stored.iter().copied().collect();
        stored.into_iter().chain(self.range_seeds().filter(move |s| !skip.contains(s)))
    }

    /// How many seeds `seeds()` yields.
    pub fn len(&self) -> u64 {
        self.range_len().saturating_add(self.extra_stored().len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What to run.
pub struct Plan<'a> {
    pub scenario: &'a Scenario,
    pub seeds: SeedSource,
    pub jobs: usize,
    pub mutant: Option<Mutant>,
    /// Stop starting seeds at the first failure.
    pub fail_fast: bool,
}

/// Run every seed of the plan on the shared work queue. `on_seed` is told of each finished
/// seed (progress) and `on_failure` of each failing one, as soon as it fails, on the calling
/// thread: the store has one writer.
pub fn run(plan: &Plan<'_>, on_seed: &dyn Fn(), on_failure: &mut dyn FnMut(&Failure)) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut coverage = Coverage::default();
    let config = RunConfig::new(plan.scenario.name, plan.scenario.profile(0)).mutant(plan.mutant);
    let work = |seed: u64| {
        let mut config = config.clone();
        config.profile = plan.scenario.profile(seed);
        run_seed(seed, &config)
    };
    crate::pool::run(plan.jobs, plan.seeds.seeds(), work, |report| {
        let failed = summary.add_seed(plan.scenario.name, plan.mutant, &report, &mut coverage);
        if let Some(f) = &failed {
            on_failure(f);
        }
        on_seed();
        if failed.is_some() && plan.fail_fast {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    summary.failures.sort_by_key(|f| f.seed);
    summary.set_coverage(&coverage);
    summary.scenarios = vec![plan.scenario.name.to_owned()];
    summary.mutant = plan.mutant.map(|m| m.name().to_owned());
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary
}

/// Replay one seed to the end with its whole trace.
pub fn replay(scenario: &Scenario, seed: u64, mutant: Option<Mutant>) -> SeedReport {
    replay_with(scenario, seed, mutant, None)
}

/// Replay one seed with only the `only` faults (a shrunk set), or all of its own.
pub fn replay_with(
    scenario: &Scenario,
    seed: u64,
    mutant: Option<Mutant>,
    only: Option<BTreeSet<(FaultSite, u64)>>,
) -> SeedReport {
    let mut config = RunConfig::new(scenario.name, scenario.profile(seed))
        .mutant(mutant)
        .trace(TraceMode::Full)
        .stop_at_violation(false);
    config.only_faults = only;
    run_seed(seed, &config)
}

/// The last `n` trace lines up to and including the event at which a replayed seed's first
/// violation was found (by position in the trace, not by time: many lines share an instant).
pub fn last_lines(report: &SeedReport, n: usize) -> Vec<String> {
    let end = match report.first_violation() {
        Some(_) => report.violation_lines.first().copied().unwrap_or(report.trace.len()),
        None => report.trace.len(),
    }
    .min(report.trace.len());
    report.trace[end.saturating_sub(n)..end].to_vec()
}

/// The simulated time a trace line starts with.
pub fn line_time_ns(line: &str) -> Option<u64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('s')?;
    let (secs, micros) = stamp.split_once('.')?;
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(range: Range<u64>, shard: Option<(u64, u64)>, stored: &[u64]) -> SeedSource {
        SeedSource {
            stored: stored.to_vec(),
            range,
            shard,
        }
    }

    #[test]
    fn shards_partition_the_range_and_stored_seeds_come_first() {
        let all: Vec<u64> = (3..17).collect();
        let mut union: Vec<u64> = (1..=3).flat_map(|k| source(3..17, Some((k, 3)), &[]).seeds()).collect();
        union.sort();
        assert_eq!(union, all);
        for k in 1..=3 {
            let s = source(3..17, Some((k, 3)), &[]);
            assert_eq!(s.len(), s.seeds().count() as u64, "shard {k}");
        }
        assert_eq!(source(0..4, None, &[42, 2]).seeds().collect::<Vec<_>>(), vec![42, 2, 0, 1, 3]);
        assert_eq!(source(0..4, None, &[42, 2]).len(), 5);
        assert_eq!(source(0..6, Some((1, 2)), &[3, 4]).seeds().collect::<Vec<_>>(), vec![4, 0, 2]);
        assert!(source(0..2, Some((3, 4)), &[]).is_empty());
    }

    #[test]
    fn the_whole_seed_space_streams() {
        let s = source(0..u64::MAX, Some((2, 3)), &[]);
        assert_eq!(s.seeds().take(3).collect::<Vec<_>>(), vec![1, 4, 7]);
        assert_eq!(s.len(), u64::MAX / 3);
        let last = source(5..u64::MAX, Some((u64::MAX, u64::MAX)), &[]);
        assert_eq!(last.seeds().collect::<Vec<_>>(), vec![u64::MAX - 1], "the last seed of the space");
        assert_eq!(last.len(), 1);
        let first = source(0..u64::MAX, Some((1, u64::MAX)), &[]);
        assert_eq!((first.seeds().collect::<Vec<_>>(), first.len()), (vec![0], 1));
        let top = source(u64::MAX - 2..u64::MAX, None, &[]);
        assert_eq!(top.seeds().collect::<Vec<_>>(), vec![u64::MAX - 2, u64::MAX - 1]);
    }

    #[test]
    fn the_excerpt_ends_at_the_violating_event_even_at_one_instant() {
        // Zero latency: every line at the same simulated time; the violation was found after
        // the fifth line.
        let trace: Vec<String> = (0..20).map(|i| format!("    1.000000s p101    event {i}")).collect();
        let report = SeedReport {
            violations: vec![heldlock_sim::Violation {
                invariant: InvariantId::I3,
                detail: "x".into(),
                pid: Some(101),
                lock: None,
                at_ns: 1_000_000_000,
            }],
            violation_lines: vec![5],
            trace,
            ..SeedReport::default()
        };
        let excerpt = last_lines(&report, 3);
        assert_eq!(excerpt.last().map(String::as_str), Some("    1.000000s p101    event 4"), "{excerpt:?}");
        assert_eq!(excerpt.len(), 3);
    }

    #[test]
    fn a_summary_lists_a_bounded_number_of_failures_and_counts_them_all() {
        let mut summary = Summary::default();
        let mut coverage = Coverage::default();
        let failing = |seed| SeedReport {
            seed,
            violations: vec![heldlock_sim::Violation {
                invariant: InvariantId::I3,
                detail: "x".into(),
                pid: None,
                lock: None,
                at_ns: 0,
            }],
            ..SeedReport::default()
        };
        let extra = 5;
        for seed in 0..(MAX_LISTED_FAILURES as u64 + extra) {
            assert!(summary.add_seed("swarm", None, &failing(seed), &mut coverage).is_some());
        }
        assert_eq!(summary.failures.len(), MAX_LISTED_FAILURES);
        assert_eq!((summary.failed, summary.unlisted()), (MAX_LISTED_FAILURES as u64 + extra, extra));
        let mut merged = summary.clone();
        merged.merge(&summary);
        assert_eq!((merged.failures.len(), merged.failed), (MAX_LISTED_FAILURES, 2 * summary.failed));
    }

    #[test]
    fn trace_times_parse_back() {
        assert_eq!(line_time_ns("   12.345678s p101    x"), Some(12_345_678_000));
        assert_eq!(line_time_ns("garbage"), None);
    }
}
