//! The self-test: every historical bug, switched back on, must be killed by the default random
//! campaign. For each mutant, independent seed ranges each run until the first violation; the
//! seeds it took are the simulator's power against that bug.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use heldlock_core::Mutant;
use heldlock_sim::{run_seed, RunConfig};
use serde::Serialize;

use crate::scenario::{find, DEFAULT_SCENARIO};

/// Range `r` of the self-test starts here: ranges never overlap each other or the campaign's
/// usual low seeds.
pub fn range_start(r: u64) -> u64 {
    1_000_000_000 + r * 100_000_000
}

#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    pub mutant: String,
    /// Per range: seeds run until the first kill, `None` if it survived the budget.
    pub seeds_to_kill: Vec<Option<u64>>,
    /// Which invariants caught it, and how often (first violation per range).
    pub invariants: BTreeMap<String, u64>,
    /// The first kill of range 0, as a replay command and its violation.
    pub example: Option<(String, String)>,
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
    let results: Mutex<Vec<(usize, u64, Option<(u64, String, String)>, Duration)>> = Mutex::new(Vec::new());
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
                        kill = Some((n + 1, v.invariant.to_owned(), format!("seed {seed}: {v}")));
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
                if let Some((_, inv, _)) = kill {
                    *invariants.entry(inv.clone()).or_insert(0) += 1;
                }
            }
            let example = mine.iter().find_map(|(_, r, kill, _)| {
                kill.as_ref().map(|(n, _, text)| {
                    let seed = range_start(*r) + n - 1;
                    (crate::campaign::reproduce_command(scenario.name, seed, Some(*mutant)), text.clone())
                })
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
