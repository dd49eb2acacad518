//! Shrinking: the smallest set of a failing seed's faults that still breaks the same invariant
//! (ddmin over the (site, occurrence) faults that fired). Faults are keyed by site and
//! occurrence, so dropping one leaves the others where they were.

use std::collections::BTreeSet;

use heldlock_core::Mutant;
use heldlock_sim::faults::{FaultKind, FaultSite};
use heldlock_sim::{run_seed, RunConfig, TraceMode};

use crate::scenario::Scenario;

/// At most this many runs of the seed while shrinking.
const MAX_RUNS: usize = 400;

pub struct Shrunk {
    pub invariant: heldlock_sim::InvariantId,
    pub violation: String,
    pub original: usize,
    pub kept: Vec<(FaultSite, u64, FaultKind)>,
    pub trace: Vec<String>,
}

type Fault = (FaultSite, u64, FaultKind);

/// Run the seed with only `faults`; traced runs go on past the violation to quiescence, so
/// the trace shows what the violation led to.
fn run_with(
    scenario: &Scenario,
    seed: u64,
    mutant: Option<Mutant>,
    faults: &[Fault],
    trace: TraceMode,
) -> heldlock_sim::SeedReport {
    let only: BTreeSet<(FaultSite, u64)> = faults.iter().map(|(s, o, _)| (*s, *o)).collect();
    let config = RunConfig::new(scenario.name, scenario.profile(seed))
        .mutant(mutant)
        .only_faults(only)
        .trace(trace)
        .stop_at_violation(trace == TraceMode::Off);
    run_seed(seed, &config)
}

/// `None` when the seed passes.
pub fn shrink(scenario: &Scenario, seed: u64, mutant: Option<Mutant>) -> Option<Shrunk> {
    let first = run_seed(seed, &RunConfig::new(scenario.name, scenario.profile(seed)).mutant(mutant));
    let invariant = first.first_violation()?.invariant;
    let mut faults: Vec<Fault> = first.fired.clone();
    let original = faults.len();
    let runs = std::cell::Cell::new(0usize);
    let fails = |subset: &[Fault]| {
        runs.set(runs.get() + 1);
        let r = run_with(scenario, seed, mutant, subset, TraceMode::Off);
        r.first_violation().is_some_and(|v| v.invariant == invariant)
    };
    // ddmin: try dropping chunks, halving the chunk size when nothing can go.
    let mut chunks = 2usize;
    while faults.len() >= 2 && runs.get() < MAX_RUNS {
        let size = faults.len().div_ceil(chunks);
        let mut reduced = false;
        for start in (0..faults.len()).step_by(size) {
            let complement: Vec<Fault> = faults
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < start || *i >= start + size)
                .map(|(_, f)| *f)
                .collect();
            if fails(&complement) {
                faults = complement;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if size == 1 {
                break;
            }
            chunks = (chunks * 2).min(faults.len());
        }
    }
    if faults.len() == 1 && fails(&[]) {
        faults.clear();
    }
    let last = run_with(scenario, seed, mutant, &faults, TraceMode::Full);
    let violation = last.first_violation().map(|v| v.to_string()).unwrap_or_default();
    Some(Shrunk {
        invariant,
        violation,
        original,
        kept: faults,
        trace: last.trace,
    })
}
