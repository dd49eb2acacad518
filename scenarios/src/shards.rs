//! A campaign's report file (`run --json`) and the proof that shard reports tile a range:
//! `merge` folds reports only when they are shards of one campaign — one binary version,
//! scenario selection and mutant, one shard count — and together cover every seed of the
//! range exactly once.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::campaign::Summary;

/// This binary's version, written into every report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `run --json` writes: the campaign's identity and its whole summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub heldlock_version: String,
    /// `--scenario` as given (`swarm`, `all`, …).
    pub scenario: String,
    /// The seed range A..B (B excluded), before sharding.
    pub range: [u64; 2],
    /// Shard K of N (1-based); `[1, 1]` for an unsharded run.
    pub shard: [u64; 2],
    /// Stored failing seeds outside the range that ran first (not part of the tiling).
    pub extra_stored: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

impl RunReport {
    pub fn range(&self) -> Range<u64> {
        self.range[0]..self.range[1]
    }
}

/// `path: report` pairs, in the order given.
pub type Named = (String, RunReport);

/// The first report that differs from `first` in identity, named.
fn check_identity(reports: &[Named]) -> Result<(), String> {
    let Some((first_path, first)) = reports.first() else {
        return Err("no reports to merge".into());
    };
    for (path, r) in &reports[1..] {
        let differs = |what: &str, a: String, b: String| {
            Err(format!("{path} has {what} {a}, {first_path} has {b}: not shards of one campaign"))
        };
        if r.heldlock_version != first.heldlock_version {
            return differs("heldlock version", r.heldlock_version.clone(), first.heldlock_version.clone());
        }
        if r.scenario != first.scenario {
            return differs("scenario", format!("'{}'", r.scenario), format!("'{}'", first.scenario));
        }
        if r.summary.mutant != first.summary.mutant {
            let name = |m: &Option<String>| m.clone().unwrap_or_else(|| "none".into());
            return differs("mutant", name(&r.summary.mutant), name(&first.summary.mutant));
        }
        if r.shard[1] != first.shard[1] {
            return differs("shard count", r.shard[1].to_string(), first.shard[1].to_string());
        }
    }
    Ok(())
}

/// Prove that the reports tile one range exactly: every shard K of N present, and for each K
/// the ranges covering min(start)..max(end) with no gap and no overlap. Errors name the gap,
/// the overlap or the mismatch.
pub fn check_tiling(reports: &[Named]) -> Result<Range<u64>, String> {
    check_identity(reports)?;
    let n = reports[0].1.shard[1];
    let whole = reports.iter().map(|(_, r)| r.range[0]).min().unwrap_or(0)
        ..reports.iter().map(|(_, r)| r.range[1]).max().unwrap_or(0);
    let mut by_shard: BTreeMap<u64, Vec<&Named>> = BTreeMap::new();
    for named in reports {
        let [k, _] = named.1.shard;
        if k == 0 || k > n || named.1.range[0] > named.1.range[1] {
            return Err(format!("{} holds a malformed shard {k}/{n} or range", named.0));
        }
        by_shard.entry(k).or_default().push(named);
    }
    let mut problems = Vec::new();
    for k in 1..=n {
        let Some(mut parts) = by_shard.remove(&k) else {
            problems.push(format!("missing shard {k}/{n} of seeds {}..{}", whole.start, whole.end));
            continue;
        };
        parts.sort_by_key(|(_, r)| (r.range[0], r.range[1]));
        let mut covered = whole.start;
        let mut covered_by = "";
        for (path, r) in parts {
            let [start, end] = r.range;
            if start > covered {
                problems.push(format!("gap: seeds {covered}..{start} of shard {k}/{n} are in no report"));
            } else if start < covered {
                problems.push(format!(
                    "overlap: seeds {start}..{} of shard {k}/{n} are in both {covered_by} and {path}",
                    covered.min(end)
                ));
            }
            covered = covered.max(end);
            covered_by = path;
        }
        if covered < whole.end {
            problems.push(format!("gap: seeds {covered}..{} of shard {k}/{n} are in no report", whole.end));
        }
    }
    if problems.is_empty() {
        Ok(whole)
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(range: [u64; 2], shard: [u64; 2]) -> RunReport {
        RunReport {
            heldlock_version: VERSION.into(),
            scenario: "swarm".into(),
            range,
            shard,
            extra_stored: 0,
            summary: Summary::default(),
        }
    }

    fn named(reports: &[RunReport]) -> Vec<Named> {
        reports.iter().enumerate().map(|(i, r)| (format!("r{i}"), r.clone())).collect()
    }

    #[test]
    fn shards_and_ranges_that_tile_pass_and_every_flaw_is_named() {
        let four: Vec<RunReport> = (1..=4).map(|k| report([0, 40], [k, 4])).collect();
        assert_eq!(check_tiling(&named(&four)), Ok(0..40));
        let err = check_tiling(&named(&four[..3])).unwrap_err();
        assert_eq!(err, "missing shard 4/4 of seeds 0..40");
        let split = [report([0, 10], [1, 1]), report([10, 30], [1, 1])];
        assert_eq!(check_tiling(&named(&split)), Ok(0..30));
        let gap = [report([0, 10], [1, 1]), report([20, 30], [1, 1])];
        assert!(check_tiling(&named(&gap)).unwrap_err().contains("gap: seeds 10..20"));
        let overlap = [report([0, 20], [1, 1]), report([10, 30], [1, 1])];
        assert!(check_tiling(&named(&overlap)).unwrap_err().contains("overlap: seeds 10..20"));
        let mut quiet = report([0, 40], [4, 4]);
        quiet.scenario = "quiet".into();
        let mixed = [four[0].clone(), four[1].clone(), four[2].clone(), quiet];
        assert!(check_tiling(&named(&mixed)).unwrap_err().contains("scenario 'quiet'"));
        let mut old = report([0, 40], [4, 4]);
        old.heldlock_version = "0.0.1".into();
        let versions = [four[0].clone(), old];
        assert!(check_tiling(&named(&versions)).unwrap_err().contains("heldlock version"));
    }
}
