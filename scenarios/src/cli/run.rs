//! `heldlock run`: a campaign. Outputs are checked before it starts; every failure is saved to
//! the store, then printed with its reproduce line (an unsaved one is an error on stderr);
//! the summary, the JSON report, JUnit and GitHub annotations come at the end.

use std::path::PathBuf;

use clap::Args;
use heldlock::campaign::{self, Failure, Plan, SeedSource, Summary};
use heldlock::ci_report;
use heldlock::scenario::{self, Scenario, DEFAULT_SCENARIO};
use heldlock::shards::{RunReport, VERSION};
use heldlock::store::{seeds_of, FailureStore, StoredFailure};
use heldlock_core::Mutant;
use heldlock_sim::coverage::{CORE_FAULT_SITES, TRANSITIONS};

use super::{
    jobs, parse_mutant, parse_range, parse_shard, write_outputs, Exit, OutputFile, Progress, Usage, Verdict,
};
use crate::{say, tell};

#[derive(Args)]
pub struct RunArgs {
    /// Scenario name, or `all`.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Number of seeds, from 0 (not with --seed-range).
    #[arg(long, env = "HELDLOCK_SEEDS")]
    seeds: Option<u64>,
    /// Seeds A..B (B excluded).
    #[arg(long, value_name = "A..B")]
    seed_range: Option<String>,
    /// Worker threads (default: the machine's cores).
    #[arg(long, env = "HELDLOCK_JOBS")]
    jobs: Option<usize>,
    /// Only the seeds of shard K of N (1-based): seed % N == K - 1.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Switch a historical bug on (see `heldlock list`).
    #[arg(long)]
    mutant: Option<String>,
    /// Write the report (campaign identity and whole summary) as JSON, for `heldlock merge`.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML: a test case per failing seed and per invariant family.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Stop at the first failing seed (seeds under way finish): a red/green answer, fast.
    #[arg(long)]
    fail_fast: bool,
}

/// Seeds of `run` without --seeds or --seed-range.
const DEFAULT_SEEDS: u64 = 10_000;

fn seed_range(a: &RunArgs) -> Result<std::ops::Range<u64>, Usage> {
    // HELDLOCK_SEEDS in the environment fills --seeds too: only a flag given twice is an error.
    let seeds_flag = std::env::args().any(|x| x == "--seeds" || x.starts_with("--seeds="));
    match (&a.seed_range, a.seeds) {
        (Some(_), Some(_)) if seeds_flag => {
            Err(Usage("--seeds and --seed-range exclude each other: give one".into()))
        }
        (Some(text), _) => parse_range(text),
        (None, seeds) => Ok(0..seeds.unwrap_or(DEFAULT_SEEDS)),
    }
}

pub fn cmd(a: RunArgs) -> Verdict {
    let scenarios = scenario::select(&a.scenario).map_err(Usage)?;
    let mutant = parse_mutant(a.mutant.as_deref())?;
    let range = seed_range(&a)?;
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    let jobs = jobs(a.jobs)?;
    let json = OutputFile::prepare(a.json.as_deref(), "--json")?;
    let junit = OutputFile::prepare(a.junit.as_deref(), "--junit")?;
    let store = FailureStore::from_env();
    if let Err(e) = store.probe() {
        tell!(
            "heldlock: error: the failure store {} cannot be written ({e}): failures will NOT be saved",
            store.path().display()
        );
    }
    let loaded = super::load_store(&store);
    let mut total = Summary::default();
    let mut extra_stored = 0;
    let mut unsaved = 0;
    for scenario in scenarios {
        let source = SeedSource {
            stored: seeds_of(&loaded.failures, scenario.name, mutant.map(|m| m.name())),
            range: range.clone(),
            shard,
        };
        extra_stored += source.extra_stored().len() as u64;
        let (summary, not_saved) = run_one(scenario, source, (jobs, a.fail_fast), mutant, &store, a.quiet);
        unsaved += not_saved;
        total.merge(&summary);
        if a.fail_fast && !total.failures.is_empty() {
            break;
        }
    }
    let report = RunReport {
        heldlock_version: VERSION.into(),
        scenario: a.scenario.clone(),
        range: [range.start, range.end],
        shard: shard.map_or([1, 1], |(k, n)| [k, n]),
        extra_stored,
        summary: total,
    };
    let passed = report.summary.failures.is_empty();
    // Outputs first: a reader that closed stdout early still gets the files.
    let written = write_outputs(vec![
        (json, super::to_json(&report)),
        (junit, ci_report::junit_xml(&report.summary)),
    ]);
    print_ending(&report.summary, &store, unsaved);
    Ok(Exit::with_outputs(passed, written))
}

/// One scenario's campaign; returns its summary and how many failures were not saved.
fn run_one(
    scenario: &'static Scenario,
    source: SeedSource,
    (jobs, fail_fast): (usize, bool),
    mutant: Option<Mutant>,
    store: &FailureStore,
    quiet: bool,
) -> (Summary, u64) {
    let (stored, shard, range) = (source.stored.len(), source.shard, source.range.clone());
    let progress = Progress::new(source.len(), quiet, scenario.name);
    let mut unsaved = 0;
    let mut save = |f: &Failure| {
        let saved = store.save(&StoredFailure {
            scenario: f.scenario.clone(),
            seed: f.seed,
            mutant: f.mutant.clone(),
            invariant: f.invariant,
            detail: f.violation.clone(),
        });
        if let Err(e) = saved {
            unsaved += 1;
            progress.error(&format!(
                "heldlock: error: failing seed {} NOT saved to {}: {e}; reproduce: {}",
                f.seed,
                store.path().display(),
                f.reproduce
            ));
        }
        progress.line(&format!("FAIL seed {} {}\n     reproduce: {}", f.seed, f.violation, f.reproduce));
    };
    let empty = source.is_empty();
    let plan = Plan {
        scenario,
        seeds: source,
        jobs,
        mutant,
        fail_fast,
    };
    let summary = campaign::run(&plan, &|| progress.inc(), &mut save);
    progress.finish();
    print_header(scenario.name, &summary, Some(jobs), shard, &range, stored);
    if empty {
        let shard_text = shard.map_or(String::new(), |(k, n)| format!("shard {k}/{n} of "));
        say!("  {shard_text}seeds {}..{} holds no seeds: nothing ran", range.start, range.end);
    }
    print_summary(&summary);
    print_failure_details(scenario, &summary, mutant);
    (summary, unsaved)
}

/// The first line of a summary: what ran.
pub fn print_header(
    scenario: &str,
    s: &Summary,
    jobs: Option<usize>,
    shard: Option<(u64, u64)>,
    range: &std::ops::Range<u64>,
    stored: usize,
) {
    let shard_text = shard.map_or(String::new(), |(k, n)| format!(", shard {k}/{n}"));
    let jobs_text = jobs.map_or(String::new(), |j| format!(", {j} jobs"));
    say!(
        "heldlock run — scenario {scenario}, seeds {}..{}{shard_text}{jobs_text}",
        range.start,
        range.end
    );
    say!("  mutant            {}", s.mutant.as_deref().unwrap_or("none (the fixed core)"));
    if stored > 0 {
        say!("  replayed first    {stored} stored failing seed(s)");
    }
}

/// The numbers of a campaign (or of merged shards): seeds, events, faults, violations, coverage.
pub fn print_summary(s: &Summary) {
    say!("  seeds             {:>10}   passed {}   failed {}", s.seeds, s.passed, s.failed);
    let per_s = |n: f64| {
        if s.wall_seconds > 0.0 {
            n / s.wall_seconds
        } else {
            0.0
        }
    };
    say!(
        "  events            {:>10}   ({:.0}/s, {:.0} seeds/s, {:.1} s wall)",
        s.events,
        per_s(s.events as f64),
        per_s(s.seeds as f64),
        s.wall_seconds
    );
    say!("  simulated time    {:>10.0} s", s.sim_seconds);
    let faults: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    say!("  faults fired      {}", listed_or_none(&faults, " | "));
    let mut by_invariant = std::collections::BTreeMap::new();
    for f in &s.failures {
        *by_invariant.entry(f.invariant).or_insert(0) += 1;
    }
    let violations: Vec<String> = by_invariant.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    say!("  violations        {}", listed_or_none(&violations, ", "));
    let (t_gaps, s_gaps) = s.gaps();
    say!(
        "  coverage          {}/{} controller transitions, {}/{} fault sites",
        TRANSITIONS.len() - t_gaps.len(),
        TRANSITIONS.len(),
        CORE_FAULT_SITES.len() - s_gaps.len(),
        CORE_FAULT_SITES.len()
    );
    if !t_gaps.is_empty() {
        say!("    never reached:  {}", t_gaps.join(", "));
    }
    if !s_gaps.is_empty() {
        say!("    sites never hit: {}", s_gaps.join(", "));
    }
}

/// Failures shown in full (trace excerpt); every other one still gets its reproduce line.
const DETAILED: usize = 3;

fn print_failure_details(scenario: &Scenario, s: &Summary, mutant: Option<Mutant>) {
    for f in s.failures.iter().take(DETAILED) {
        say!("\nFAIL {} seed {}: {}", f.scenario, f.seed, f.violation);
        let report = campaign::replay(scenario, f.seed, mutant);
        say!("  actors: {}", report.actors.join(" "));
        say!("  profile: {}", report.profile);
        say!("  last trace lines up to the violation:");
        for line in campaign::last_lines(&report, 12) {
            say!("    {line}");
        }
        say!("  reproduce: {}", f.reproduce);
    }
    if s.failures.len() > DETAILED {
        say!("\n{} more failing seeds:", s.failures.len() - DETAILED);
        for f in &s.failures[DETAILED..] {
            say!("FAIL {} seed {}: {}\n  reproduce: {}", f.scenario, f.seed, f.violation, f.reproduce);
        }
    }
    print_unlisted(s);
}

/// Past the listed failures: how many more there were (each printed as it failed).
pub fn print_unlisted(s: &Summary) {
    if s.unlisted() > 0 {
        say!("… and {} more failing seeds, printed as they failed and saved to the store", s.unlisted());
    }
}

/// The closing word on failures: saved or not, and annotations under GitHub Actions.
pub fn print_ending(s: &Summary, store: &FailureStore, unsaved: u64) {
    if ci_report::under_github_actions() {
        for f in &s.failures {
            say!("{}", ci_report::github_annotation(f));
        }
    }
    if s.failures.is_empty() {
        return;
    }
    if unsaved == 0 {
        say!(
            "\n{} failing seed(s), all saved to the failure store {}",
            s.failed,
            store.path().display()
        );
    } else {
        tell!(
            "heldlock: error: {unsaved} of {} failing seed(s) could NOT be saved to {} (their reproduce lines are above)",
            s.failed,
            store.path().display()
        );
    }
}

/// The items joined by `sep`, or "none".
fn listed_or_none(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(sep)
    }
}
