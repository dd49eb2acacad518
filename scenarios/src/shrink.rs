//! Shrinking: the smallest set of a failing seed's faults that still breaks the same invariant
//! (ddmin over the (site, occurrence) faults that fired). Faults are keyed by site and
//! occurrence, so dropping one leaves the others where they were.

use std::collections::BTreeSet;

use heldlock_core::Mutant;
use heldlock_sim::faults::{FaultKind, FaultSite, FsOp, PathClass};
use heldlock_sim::{run_seed, RunConfig, SeedReport};

use crate::scenario::Scenario;

/// At most this many runs of the seed while shrinking.
const MAX_RUNS: usize = 400;

pub struct Shrunk {
    pub invariant: heldlock_sim::InvariantId,
    pub violation: String,
    pub original: usize,
    pub kept: Vec<(FaultSite, u64, FaultKind)>,
    /// The traced run with only the kept faults: what `replay --faults` shows.
    pub report: SeedReport,
}

impl Shrunk {
    /// The command that replays exactly the shrunk run.
    pub fn reproduce(&self, scenario: &str, seed: u64, mutant: Option<Mutant>) -> String {
        let only: Vec<(FaultSite, u64)> = self.kept.iter().map(|(s, o, _)| (*s, *o)).collect();
        format!(
            "{} --faults {}",
            crate::campaign::reproduce_command(scenario, seed, mutant),
            format_faults(&only)
        )
    }
}

/// A fault set as `replay --faults` reads it: `op:class#occurrence,…`, or `none`.
pub fn format_faults(faults: &[(FaultSite, u64)]) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = faults.iter().map(|(site, n)| format!("{site}#{n}")).collect();
    parts.join(",")
}

/// Parse `format_faults`' text.
pub fn parse_faults(text: &str) -> Result<BTreeSet<(FaultSite, u64)>, String> {
    let text = text.trim();
    if text == "none" {
        return Ok(BTreeSet::new());
    }
    let bad = |part: &str| {
        format!("malformed fault '{part}' in --faults: expected op:class#occurrence (such as stat:transcript#3), comma-separated, or none")
    };
    text.split(',')
        .map(|part| {
            let (site, n) = part.trim().split_once('#').ok_or_else(|| bad(part))?;
            let (op, class) = site.split_once(':').ok_or_else(|| bad(part))?;
            let op = FsOp::ALL.into_iter().find(|o| o.name() == op).ok_or_else(|| bad(part))?;
            let class = PathClass::ALL.into_iter().find(|c| c.name() == class).ok_or_else(|| bad(part))?;
            let n: u64 = n.parse().map_err(|_| bad(part))?;
            Ok((FaultSite { op, class }, n))
        })
        .collect()
}

type Fault = (FaultSite, u64, FaultKind);

/// Run the seed with only `faults`, to its first violation.
fn run_with(scenario: &Scenario, seed: u64, mutant: Option<Mutant>, faults: &[Fault]) -> SeedReport {
    let only: BTreeSet<(FaultSite, u64)> = faults.iter().map(|(s, o, _)| (*s, *o)).collect();
    let config = RunConfig::new(scenario.name, scenario.profile(seed)).mutant(mutant).only_faults(only);
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
        let r = run_with(scenario, seed, mutant, subset);
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
    let only: BTreeSet<(FaultSite, u64)> = faults.iter().map(|(s, o, _)| (*s, *o)).collect();
    let last = crate::campaign::replay_with(scenario, seed, mutant, Some(only));
    let violation = last.first_violation().map(|v| v.to_string()).unwrap_or_default();
    Some(Shrunk {
        invariant,
        violation,
        original,
        kept: faults,
        report: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_sets_round_trip_and_bad_ones_are_refused() {
        let set = parse_faults("stat:transcript#3, unlink:lock#1").unwrap();
        let listed: Vec<_> = set.iter().copied().collect();
        assert_eq!(parse_faults(&format_faults(&listed)).unwrap(), set);
        assert_eq!(format_faults(&[]), "none");
        assert!(parse_faults("none").unwrap().is_empty());
        for bad in ["stat", "stat:transcript", "frob:lock#1", "stat:lock#x", ""] {
            assert!(parse_faults(bad).is_err(), "{bad}");
        }
    }
}
