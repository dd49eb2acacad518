//! Determinism: a seed must replay to a byte-identical trace — twice in a row, and whichever
//! thread of a `--jobs 1` or `--jobs 2` campaign runs it.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::{ControlFlow, Range};

use heldlock_sim::{run_seed, RunConfig, TraceMode};

use crate::scenario::Scenario;

/// Where two runs of one seed first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub seed: u64,
    pub what: String,
    /// 1-based line number and the two versions of the line (`<end>` past the last line).
    pub line: usize,
    pub first: String,
    pub second: String,
}

fn traced(scenario: &Scenario, seed: u64) -> Vec<String> {
    let config = RunConfig::new(scenario.name, scenario.profile(seed)).trace(TraceMode::Full);
    run_seed(seed, &config).trace
}

fn hash(lines: &[String]) -> u64 {
    let mut h = DefaultHasher::new();
    lines.hash(&mut h);
    h.finish()
}

/// The first differing line of two traces, if any.
pub fn first_difference(a: &[String], b: &[String]) -> Option<(usize, String, String)> {
    let end = || "<end>".to_owned();
    (0..a.len().max(b.len())).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        (x != y).then(|| (i + 1, x.cloned().unwrap_or_else(end), y.cloned().unwrap_or_else(end)))
    })
}

/// Seeds compared per round: the hashes held at once, whatever the seed count.
const CHUNK: u64 = 256;

/// Trace hashes of `seeds`, computed on `jobs` threads of the shared work queue.
fn hashes(scenario: &Scenario, seeds: Range<u64>, jobs: usize, on_seed: &dyn Fn()) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    crate::pool::run(
        jobs,
        seeds,
        |seed| (seed, hash(&traced(scenario, seed))),
        |(seed, h)| {
            out.insert(seed, h);
            on_seed();
            ControlFlow::Continue(())
        },
    );
    out
}

/// Run every seed of `seeds` once on one thread and once on two, a chunk at a time, and
/// compare the traces. A mismatch is pinned down by re-running the seed twice and naming the
/// first differing line.
pub fn check(scenario: &Scenario, seeds: Range<u64>, on_seed: &dyn Fn()) -> Result<u64, Mismatch> {
    let mut start = seeds.start;
    while start < seeds.end {
        let chunk = start..start.saturating_add(CHUNK).min(seeds.end);
        let one = hashes(scenario, chunk.clone(), 1, on_seed);
        let two = hashes(scenario, chunk.clone(), 2, on_seed);
        if let Some(seed) = chunk.clone().find(|s| one.get(s) != two.get(s)) {
            let (a, b) = (traced(scenario, seed), traced(scenario, seed));
            let (line, first, second) = first_difference(&a, &b).unwrap_or((0, String::new(), String::new()));
            return Err(Mismatch {
                seed,
                what: "the --jobs 1 and --jobs 2 runs gave different traces".into(),
                line,
                first,
                second,
            });
        }
        start = chunk.end;
    }
    Ok(seeds.end - seeds.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_line() {
        let a = vec!["x".to_owned(), "y".to_owned()];
        let b = vec!["x".to_owned(), "z".to_owned()];
        assert_eq!(first_difference(&a, &b), Some((2, "y".into(), "z".into())));
        assert_eq!(first_difference(&a, &a), None);
        assert_eq!(first_difference(&a, &a[..1]), Some((2, "y".into(), "<end>".into())));
    }
}
