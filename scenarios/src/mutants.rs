//! The self-test: every historical bug, switched back on, must be killed by the default random
//! campaign. For each mutant, independent seed ranges each run until the first kill — a seed
//! that fails with the mutant and passes without it; the seeds it took are the simulator's
//! power against that bug.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use heldlock_core::Mutant;
use heldlock_sim::{run_seed, InvariantId, RunConfig};
use serde::Serialize;

use crate::scenario::{find, DEFAULT_SCENARIO};

/// One kill: seeds it took, the invariant, the violation text, and how hostile its world was
/// (crashes and pauses, fault rates, faults fired): the report's example is the simplest.
type Kill = (u64, InvariantId, String, (u32, u64, usize));
/// (mutant index, range, its kill, false alarms met before it, CPU time spent on the range).
type RangeResult = (usize, u64, Option<Kill>, u64, Duration);

/// The simplest kills kept per mutant as example candidates (bounded, whatever the ranges).
const MAX_CANDIDATES: usize = 32;
/// Range 0 starts here, and each range is this wide: ranges never overlap each other or the
/// campaign's usual low seeds.
const FIRST_RANGE: u64 = 1_000_000_000;
pub const RANGE_WIDTH: u64 = 100_000_000;
/// The most ranges whose seeds all fit in a u64.
pub const MAX_RANGES: u64 = (u64::MAX - FIRST_RANGE - RANGE_WIDTH) / RANGE_WIDTH + 1;

/// Seeds of range 0 searched for a kill that shows its consequence, when no first kill does.
const EXAMPLE_SEARCH: u64 = 2_000;

/// Range `r` of the self-test starts here: ranges never overlap each other or the campaign's
/// usual low seeds.
pub fn range_start(r: u64) -> u64 {
    assert!(r < MAX_RANGES, "range {r} is past the seed space");
    FIRST_RANGE + r * RANGE_WIDTH
}

#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub replay: String,
    pub violation: String,
    /// For a leaked lock: how the next turn failed and when the watchdog freed it.
    pub consequence: Option<crate::incident::LeakConsequence>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    pub mutant: String,
    pub ranges: u64,
    /// Seeds run until the first kill → how many ranges took that many (a histogram: its size
    /// is bounded by the budget, not by the number of ranges).
    pub seeds_to_kill: BTreeMap<u64, u64>,
    /// Ranges it survived (no kill within the budget).
    pub survived: u64,
    /// Seeds the mutant failed that the fixed core fails too: the harness's false alarms, not
    /// kills (all ranges).
    pub false_alarms: u64,
    /// Which invariants caught it, and how often (first violation per range).
    pub invariants: BTreeMap<InvariantId, u64>,
    /// The simplest kill that shows its consequence (else the simplest kill).
    pub example: Option<Example>,
    /// CPU time spent on this mutant, all ranges.
    pub cpu_seconds: f64,
}

impl MutantResult {
    pub fn killed_everywhere(&self) -> bool {
        self.survived == 0
    }

    pub fn killed(&self) -> u64 {
        self.ranges - self.survived
    }

    /// The `i`-th smallest seeds-to-kill (0-based); a surviving range counts as budget + 1.
    fn nth(&self, i: u64, budget: u64) -> u64 {
        let mut seen = 0;
        for (&n, &count) in &self.seeds_to_kill {
            seen += count;
            if i < seen {
                return n;
            }
        }
        budget + 1
    }

    /// Median seeds-to-kill; a surviving range counts as more than the budget.
    pub fn median(&self, budget: u64) -> u64 {
        self.nth(self.ranges / 2, budget)
    }

    pub fn worst(&self, budget: u64) -> u64 {
        if self.survived > 0 {
            budget + 1
        } else {
            self.seeds_to_kill.keys().next_back().copied().unwrap_or(0)
        }
    }
}

/// One mutant's running totals: bounded however many ranges run.
#[derive(Default)]
struct Tally {
    seeds_to_kill: BTreeMap<u64, u64>,
    survived: u64,
    false_alarms: u64,
    invariants: BTreeMap<InvariantId, u64>,
    /// The simplest kills: ((complexity, range), kill).
    candidates: BTreeMap<((u32, u64, usize), u64), Kill>,
    cpu: Duration,
}

impl Tally {
    fn add(&mut self, r: u64, kill: Option<Kill>, false_alarms: u64, cpu: Duration) {
        self.cpu += cpu;
        self.false_alarms += false_alarms;
        let Some(kill) = kill else {
            self.survived += 1;
            return;
        };
        *self.seeds_to_kill.entry(kill.0).or_insert(0) += 1;
        *self.invariants.entry(kill.1).or_insert(0) += 1;
        self.candidates.insert((kill.3, r), kill);
        if self.candidates.len() > MAX_CANDIDATES {
            self.candidates.pop_last();
        }
    }
}

/// The first kill among seeds `0..budget` of a range, and how many false alarms came before it.
/// `fails_with(n)`: the violation seed `n` shows with the mutant on; `passes_without(n)`: whether
/// the fixed core passes seed `n`. Only a seed the mutant fails and the fixed core passes is a
/// kill: one the fixed core fails too is a false alarm of the harness, not the mutant's doing.
/// The fixed core runs only for the seeds the mutant fails, so a range costs one run per seed.
fn first_kill<K>(
    budget: u64,
    mut fails_with: impl FnMut(u64) -> Option<K>,
    mut passes_without: impl FnMut(u64) -> bool,
) -> (Option<(u64, K)>, u64) {
    let mut false_alarms = 0;
    for n in 0..budget {
        if let Some(found) = fails_with(n) {
            if passes_without(n) {
                return (Some((n + 1, found)), false_alarms);
            }
            false_alarms += 1;
        }
    }
    (None, false_alarms)
}

/// Run one range of one mutant until its first kill or the budget: (kill, false alarms, CPU).
fn run_range(mutant: Mutant, r: u64, budget: u64) -> (Option<Kill>, u64, Duration) {
    let scenario = find(DEFAULT_SCENARIO).expect("the default scenario exists");
    let started = Instant::now();
    let seed_of = |n: u64| range_start(r) + n;
    let fails_with = |n: u64| {
        let seed = seed_of(n);
        let config = RunConfig::new(scenario.name, scenario.profile(seed)).mutant(Some(mutant));
        let report = run_seed(seed, &config);
        let v = report.first_violation()?;
        let p = &config.profile;
        let complexity = (
            p.crashes + p.pauses,
            (p.fault_rate * 1000.0) as u64 + (p.hang_rate * 1000.0) as u64,
            report.fired.len(),
        );
        Some((v.invariant, format!("seed {seed}: {v}"), complexity))
    };
    let passes_without = |n: u64| {
        let seed = seed_of(n);
        run_seed(seed, &RunConfig::new(scenario.name, scenario.profile(seed))).passed()
    };
    let (found, false_alarms) = first_kill(budget, fails_with, passes_without);
    let kill = found.map(|(n, (invariant, text, complexity))| (n, invariant, text, complexity));
    (kill, false_alarms, started.elapsed())
}

/// Run the self-test for `mutants` over `ranges` ranges of at most `budget` seeds each.
pub fn self_test(
    mutants: &[Mutant],
    ranges: u64,
    budget: u64,
    jobs: usize,
    on_item: &(dyn Fn() + Sync),
) -> Vec<MutantResult> {
    assert!(ranges <= MAX_RANGES && budget <= RANGE_WIDTH, "ranges and budget fit the seed space");
    let scenario = find(DEFAULT_SCENARIO).expect("the default scenario exists");
    let items = (0..mutants.len()).flat_map(|m| (0..ranges).map(move |r| (m, r)));
    let mut tallies: Vec<Tally> = mutants.iter().map(|_| Tally::default()).collect();
    let work = |(m, r): (usize, u64)| -> RangeResult {
        let (kill, false_alarms, cpu) = run_range(mutants[m], r, budget);
        (m, r, kill, false_alarms, cpu)
    };
    crate::pool::run(jobs, items, work, |(m, r, kill, false_alarms, cpu)| {
        tallies[m].add(r, kill, false_alarms, cpu);
        on_item();
        ControlFlow::Continue(())
    });
    mutants
        .iter()
        .enumerate()
        .map(|(m, mutant)| {
            let tally = std::mem::take(&mut tallies[m]);
            // Simplest first.
            let kills: Vec<(u64, &Kill)> = tally.candidates.iter().map(|((_, r), k)| (*r, k)).collect();
            // The example: the simplest kill whose replay also shows what the bug did next —
            // for a leak, the next turn timing out until the watchdog frees the lock.
            let seed_of = |r: u64, n: u64| range_start(r) + n - 1;
            let shown = kills.iter().find_map(|(r, (n, _, text, _))| {
                let report = crate::campaign::replay(scenario, seed_of(*r, *n), Some(*mutant));
                crate::incident::leak_consequence(&report).map(|c| (*r, *n, text.clone(), Some(c)))
            });
            // None of the first kills shows it: for a leak (I3, I7), look further along range 0,
            // a bounded way, replaying in full only the seeds that leak.
            let leaks = kills.iter().any(|(_, k)| k.1.is_leak());
            let shown = shown.or_else(|| {
                (0..EXAMPLE_SEARCH).filter(|_| leaks).find_map(|n| {
                    let seed = range_start(0) + n;
                    let config = RunConfig::new(scenario.name, scenario.profile(seed)).mutant(Some(*mutant));
                    let leaked =
                        run_seed(seed, &config).first_violation().is_some_and(|v| v.invariant.is_leak());
                    if !leaked {
                        return None;
                    }
                    let report = crate::campaign::replay(scenario, seed, Some(*mutant));
                    let violation = report.first_violation()?.to_string();
                    crate::incident::leak_consequence(&report)
                        .map(|c| (0, n + 1, format!("seed {seed}: {violation}"), Some(c)))
                })
            });
            let example = shown
                .or_else(|| kills.first().map(|(r, (n, _, text, _))| (*r, *n, text.clone(), None)))
                .map(|(r, n, text, consequence)| Example {
                    replay: crate::campaign::reproduce_command(scenario.name, seed_of(r, n), Some(*mutant)),
                    violation: text,
                    consequence,
                });
            MutantResult {
                mutant: mutant.name().to_owned(),
                ranges,
                seeds_to_kill: tally.seeds_to_kill,
                survived: tally.survived,
                false_alarms: tally.false_alarms,
                invariants: tally.invariants,
                example,
                cpu_seconds: tally.cpu.as_secs_f64(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(kills: &[(u64, u64)], survived: u64) -> MutantResult {
        let seeds_to_kill: BTreeMap<u64, u64> = kills.iter().copied().collect();
        MutantResult {
            mutant: "m".into(),
            ranges: seeds_to_kill.values().sum::<u64>() + survived,
            seeds_to_kill,
            survived,
            false_alarms: 0,
            invariants: BTreeMap::new(),
            example: None,
            cpu_seconds: 0.0,
        }
    }

    #[test]
    fn the_histogram_gives_median_and_worst_as_the_list_did() {
        // Kills after 1, 1, 5 and 9 seeds, one survivor (counts as budget + 1 = 11).
        let r = result(&[(1, 2), (5, 1), (9, 1)], 1);
        assert_eq!((r.median(10), r.worst(10), r.killed()), (5, 11, 4));
        assert!(!r.killed_everywhere());
        let all = result(&[(3, 1), (7, 2)], 0);
        assert_eq!((all.median(10), all.worst(10)), (7, 7));
    }

    #[test]
    fn a_seed_the_fixed_core_fails_too_is_a_false_alarm_not_a_kill() {
        // The mutant fails seeds 2 and 4; the fixed core fails seed 2 as well.
        let fails_with = |n: u64| [2, 4].contains(&n).then_some(n);
        let mut checked = Vec::new();
        let passes_without = |n: u64| {
            checked.push(n);
            n != 2
        };
        let (kill, false_alarms) = first_kill(10, fails_with, passes_without);
        assert_eq!(kill, Some((5, 4)), "seed 4 is the kill, 5 seeds in");
        assert_eq!(false_alarms, 1);
        assert_eq!(checked, [2, 4], "the fixed core runs only where the mutant failed");
        let (none, alarms) = first_kill(10, |n: u64| (n == 2).then_some(n), |n| n != 2);
        assert_eq!((none, alarms), (None, 1), "a range with only false alarms is survived");
    }

    #[test]
    fn the_last_range_fits_the_seed_space() {
        let last = range_start(MAX_RANGES - 1);
        assert!(last.checked_add(RANGE_WIDTH - 1).is_some());
        assert_eq!(range_start(1) - range_start(0), RANGE_WIDTH);
    }
}
