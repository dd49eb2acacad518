//! `heldlock merge`: fold shard reports into the campaign's whole summary — only once they are
//! proven to tile one range exactly (else exit 2 naming the gap, overlap or mismatch).

use std::path::PathBuf;

use clap::Args;
use heldlock::campaign::Summary;
use heldlock::ci_report;
use heldlock::shards::{check_tiling, Named, RunReport};

use super::run::{print_header, print_summary};
use super::{write_outputs, Exit, OutputFile, Usage, Verdict};
use crate::say;

#[derive(Args)]
pub struct MergeArgs {
    /// JSON reports written by `heldlock run --json`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Write the merged report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML of the merged campaign.
    #[arg(long)]
    junit: Option<PathBuf>,
}

fn read(path: &PathBuf) -> Result<Named, Usage> {
    let text = std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
    let report: RunReport = serde_json::from_slice(&text)
        .map_err(|e| Usage(format!("{} is not a heldlock run report: {e}", path.display())))?;
    Ok((path.display().to_string(), report))
}

pub fn cmd(a: MergeArgs) -> Verdict {
    let json = OutputFile::prepare(a.json.as_deref(), "--json")?;
    let junit = OutputFile::prepare(a.junit.as_deref(), "--junit")?;
    let reports = a.reports.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    let whole =
        check_tiling(&reports).map_err(|e| Usage(format!("the reports do not tile one campaign: {e}")))?;
    let first = &reports[0].1;
    let mut total = Summary::default();
    for (_, r) in &reports {
        total.merge(&r.summary);
    }
    let merged = RunReport {
        range: [whole.start, whole.end],
        shard: [1, 1],
        extra_stored: reports.iter().map(|(_, r)| r.extra_stored).sum(),
        summary: total,
        ..first.clone()
    };
    let passed = merged.summary.failures.is_empty();
    let written = write_outputs(vec![
        (json, super::to_json(&merged)),
        (junit, ci_report::junit_xml(&merged.summary)),
    ]);
    say!(
        "merged {} shard reports ({} shards, tiling seeds {}..{} exactly)",
        reports.len(),
        first.shard[1],
        whole.start,
        whole.end
    );
    print_header(&merged.scenario, &merged.summary, None, None, &whole, 0);
    print_summary(&merged.summary);
    for f in &merged.summary.failures {
        say!("FAIL {} seed {}: {}\n  reproduce: {}", f.scenario, f.seed, f.violation, f.reproduce);
    }
    super::run::print_unlisted(&merged.summary);
    if ci_report::under_github_actions() {
        for f in &merged.summary.failures {
            say!("{}", ci_report::github_annotation(f));
        }
    }
    Ok(Exit::with_outputs(passed, written))
}
