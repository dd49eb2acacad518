//! The self-test: every historical bug, switched back on, must be killed by the default random
//! campaign. For each mutant, independent seed ranges each run until the first violation; the
//! seeds it took are the simulator's power against that bug.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heldlock_core::Mutant;
use heldlock_sim::{run_seed, InvariantId, RunConfig};
use serde::Serialize;

use crate::scenario::{find, DEFAULT_SCENARIO};

/// One kill: seeds it took, the invariant, the violation text, and how hostile its world was
/// (crashes and pauses, fault rates, faults fired): the report's example is the simplest.
type Kill = (u64, InvariantId, String, (u32, u64, usize));
/// (mutant index, range, its kill, CPU time spent on the range).
type RangeResult = (usize, u64, Option<Kill>, Duration);

/// Seeds of range 0 searched for a kill that shows its consequence, when no first kill does.
const EXAMPLE_SEARCH: u64 = 2_000;

/// Range `r` of the self-test starts here: ranges never overlap each other or the campaign's
/// usual low seeds.
pub fn range_start(r: u64) -> u64 {
    1_000_000_000 + r * 100_000_000
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
    /// Per range: seeds run until the first kill, `None` if it survived the budget.
    pub seeds_to_kill: Vec<Option<u64>>,
    /// Which invariants caught it, and how often (first violation per range).
    pub invariants: BTreeMap<InvariantId, u64>,
    /// The simplest kill that shows its consequence (else the simplest kill).
    pub example: Option<Example>,
    /// CPU time spent on this mutant, all ranges.
    pub cpu_seconds: f64,
}

impl MutantResult {
    pub fn killed_everywhere(&self) -> bool {
        self.seeds_to_kill.iter().all(Option::is_some)
    }

    /// Median seeds-to-kill; a surviving range counts as more than the budget.
    pub fn median(&self, budget: u64) -> u64 {
        let mut v: Vec<u64> = self.seeds_to_kill.iter().map(|k| k.unwrap_or(budget + 1)).collect();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }

    pub fn worst(&self, budget: u64) -> u64 {
        self.seeds_to_kill.iter().map(|k| k.unwrap_or(budget + 1)).max().unwrap_or(0)
    }
}

/// Run the self-test for `mutants` over `ranges` ranges of at most `budget` seeds each.
pub fn self_test(
    mutants: &[Mutant],
    ranges: u64,
    budget: u64,
    jobs: usize,
    on_item: &(dyn Fn() + Sync),
) -> Vec<MutantResult> {
    let scenario = find(DEFAULT_SCENARIO).expect("the default scenario exists");
    let items: Vec<(usize, u64)> =
        (0..mutants.len()).flat_map(|m| (0..ranges).map(move |r| (m, r))).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<RangeResult>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(m, r)) = items.get(i) else { break };
                let started = Instant::now();
                let mut kill = None;
                for n in 0..budget {
                    let seed = range_start(r) + n;
                    let config =
                        RunConfig::new(scenario.name, scenario.profile(seed)).mutant(Some(mutants[m]));
                    let report = run_seed(seed, &config);
                    if let Some(v) = report.first_violation() {
                        let p = &config.profile;
                        let complexity = (
                            p.crashes + p.pauses,
                            (p.fault_rate * 1000.0) as u64 + (p.hang_rate * 1000.0) as u64,
                            report.fired.len(),
                        );
                        kill = Some((n + 1, v.invariant, format!("seed {seed}: {v}"), complexity));
                        break;
                    }
                }
                results.lock().unwrap().push((m, r, kill, started.elapsed()));
                on_item();
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(m, r, _, _)| (*m, *r));
    mutants
        .iter()
        .enumerate()
        .map(|(m, mutant)| {
            let mine: Vec<_> = results.iter().filter(|(i, _, _, _)| *i == m).collect();
            let mut invariants = BTreeMap::new();
            for (_, _, kill, _) in &mine {
                if let Some((_, inv, _, _)) = kill {
                    *invariants.entry(*inv).or_insert(0) += 1;
                }
            }
            // The example: the simplest kill whose replay also shows what the bug did next —
            // for a leak, the next turn timing out until the watchdog frees the lock.
            let mut kills: Vec<_> =
                mine.iter().filter_map(|(_, r, kill, _)| kill.as_ref().map(|k| (k.3, *r, k))).collect();
            kills.sort_by_key(|(complexity, r, _)| (*complexity, *r));
            let seed_of = |r: u64, n: u64| range_start(r) + n - 1;
            let shown = kills.iter().find_map(|(_, r, (n, _, text, _))| {
                let report = crate::campaign::replay(scenario, seed_of(*r, *n), Some(*mutant));
                crate::incident::leak_consequence(&report).map(|c| (*r, *n, text.clone(), Some(c)))
            });
            // None of the first kills shows it: for a leak (I3, I7), look further along range 0,
            // a bounded way, replaying in full only the seeds that leak.
            let leaks = kills.iter().any(|(_, _, k)| k.1.is_leak());
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
                .or_else(|| kills.first().map(|(_, r, (n, _, text, _))| (*r, *n, text.clone(), None)))
                .map(|(r, n, text, consequence)| Example {
                    replay: crate::campaign::reproduce_command(scenario.name, seed_of(r, n), Some(*mutant)),
                    violation: text,
                    consequence,
                });
            MutantResult {
                mutant: mutant.name().to_owned(),
                seeds_to_kill: mine.iter().map(|(_, _, kill, _)| kill.as_ref().map(|k| k.0)).collect(),
                invariants,
                example,
                cpu_seconds: mine.iter().map(|(_, _, _, d)| d.as_secs_f64()).sum(),
            }
        })
        .collect()
}
