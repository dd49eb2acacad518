//! `heldlock`: run campaigns, replay and shrink seeds, self-test against the historical bugs,
//! check determinism. Exit 0: every invariant held; 1: a violation (or a surviving mutant, or a
//! nondeterministic trace); 2: bad usage or input.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use heldlock::campaign::{self, Failure, Plan, Summary};
use heldlock::scenario::{self, Scenario, DEFAULT_SCENARIO, SCENARIOS};
use heldlock::store::{FailureStore, StoredFailure};
use heldlock::{determinism, mutants};
use heldlock_core::judge::StaleReason;
use heldlock_core::Mutant;
use heldlock_sim::coverage::{CORE_FAULT_SITES, TRANSITIONS};
use heldlock_sim::faults::FaultKind;
use heldlock_sim::Seed;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "heldlock",
    version,
    about = "Deterministic fault-injection simulation of a session write lock"
)]
#[command(
    after_help = "Exit status: 0 every invariant held, 1 a violation was found, 2 bad usage or input.\n\
    Every failure prints the one `heldlock replay` command that reproduces it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign of seeds; failures are saved to the store and replayed first next time.
    Run(RunArgs),
    /// Replay one seed to the end and print its whole trace.
    Replay(ReplayArgs),
    /// Shrink a failing seed: the smallest set of its faults that still breaks the same invariant.
    Shrink(ReplayArgs),
    /// Self-test: every historical bug must be killed by the default random campaign.
    Mutants(MutantArgs),
    /// Run seeds on one thread and on two and require byte-identical traces.
    CheckDeterminism(DeterminismArgs),
    /// List scenarios, mutants, invariants and fault kinds.
    List,
    /// Merge the JSON reports of campaign shards into one summary.
    Merge(MergeArgs),
    /// Measure throughput, overhead against a bare madsim loop, and peak memory.
    Bench(BenchArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Scenario name, or `all`.
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// Number of seeds, from 0 (ignored with --seed-range).
    #[arg(long, env = "HELDLOCK_SEEDS", default_value_t = 10_000)]
    seeds: u64,
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
    /// Write the summary as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ReplayArgs {
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    #[arg(long, env = "HELDLOCK_SEED")]
    seed: String,
    #[arg(long)]
    mutant: Option<String>,
    /// Print only the last N trace lines.
    #[arg(long)]
    tail: Option<usize>,
}

#[derive(Args)]
struct MutantArgs {
    /// Disjoint seed ranges per mutant.
    #[arg(long, default_value_t = 20)]
    ranges: u64,
    /// Seeds per range before a mutant counts as surviving it.
    #[arg(long, default_value_t = 5000)]
    budget: u64,
    /// Only this mutant.
    #[arg(long)]
    mutant: Option<String>,
    #[arg(long, env = "HELDLOCK_JOBS")]
    jobs: Option<usize>,
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct DeterminismArgs {
    #[arg(long, env = "HELDLOCK_SEEDS", default_value_t = 200)]
    seeds: u64,
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// JSON reports written by `heldlock run --json`.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value_t = 2000)]
    seeds: u64,
}

/// A usage or input error: exit 2.
struct Usage(String);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Replay(a) => cmd_replay(a),
        Command::Shrink(a) => cmd_shrink(a),
        Command::Mutants(a) => cmd_mutants(a),
        Command::CheckDeterminism(a) => cmd_determinism(a),
        Command::List => cmd_list(),
        Command::Merge(a) => cmd_merge(a),
        Command::Bench(a) => cmd_bench(a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Usage(msg)) => {
            eprintln!("heldlock: {msg}");
            ExitCode::from(2)
        }
    }
}

fn parse_mutant(name: Option<&str>) -> Result<Option<Mutant>, Usage> {
    name.map(|n| n.parse::<Mutant>().map_err(Usage)).transpose()
}

fn parse_range(text: &str) -> Result<std::ops::Range<u64>, Usage> {
    let bad = || Usage(format!("malformed seed range '{text}': expected A..B with A < B, such as 0..1000"));
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let a: Seed = a.parse().map_err(|_| bad())?;
    let b: Seed = b.parse().map_err(|_| bad())?;
    if a.0 >= b.0 {
        return Err(bad());
    }
    Ok(a.0..b.0)
}

fn parse_shard(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("malformed shard '{text}': expected K/N with 1 <= K <= N, such as 2/8"));
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn jobs(requested: Option<usize>) -> Result<usize, Usage> {
    match requested {
        Some(0) => Err(Usage("--jobs must be at least 1".into())),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

fn progress(total: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_prefix(what.to_owned());
    bar
}

fn write_json<T: serde::Serialize>(path: &PathBuf, value: &T) -> Result<(), Usage> {
    let text = serde_json::to_string_pretty(value).expect("summaries serialize");
    std::fs::write(path, text + "\n").map_err(|e| Usage(format!("cannot write {}: {e}", path.display())))
}

fn cmd_run(a: RunArgs) -> Result<bool, Usage> {
    let scenarios = scenario::select(&a.scenario).map_err(Usage)?;
    let mutant = parse_mutant(a.mutant.as_deref())?;
    let range = match &a.seed_range {
        Some(text) => parse_range(text)?,
        None => 0..a.seeds,
    };
    let shard = a.shard.as_deref().map(parse_shard).transpose()?;
    let jobs = jobs(a.jobs)?;
    let store = FailureStore::from_env();
    let mut total = Summary::default();
    for scenario in scenarios {
        let stored = store.seeds(scenario.name, mutant.map(|m| m.name()));
        let seeds = campaign::seed_list(range.clone(), shard, &stored);
        let bar = progress(seeds.len() as u64, a.quiet, scenario.name);
        let save = |f: &Failure| {
            let saved = store.save(&StoredFailure {
                scenario: f.scenario.clone(),
                seed: f.seed,
                mutant: f.mutant.clone(),
                invariant: f.invariant,
                detail: f.violation.clone(),
            });
            if let Err(e) = saved {
                bar.println(format!(
                    "warning: could not save seed {} to {}: {e}",
                    f.seed,
                    store.path().display()
                ));
            }
            bar.println(format!("FAIL seed {} {}\n     reproduce: {}", f.seed, f.violation, f.reproduce));
        };
        let plan = Plan {
            scenario,
            seeds,
            jobs,
            mutant,
        };
        let summary = campaign::run(&plan, &|| bar.inc(1), &save);
        bar.finish_and_clear();
        print_summary(scenario, &summary, jobs, shard, &range, stored.len());
        print_failure_details(scenario, &summary, mutant);
        total.merge(&summary);
    }
    if let Some(path) = &a.json {
        write_json(path, &total)?;
    }
    Ok(total.failures.is_empty())
}

fn print_summary(
    scenario: &Scenario,
    s: &Summary,
    jobs: usize,
    shard: Option<(u64, u64)>,
    range: &std::ops::Range<u64>,
    stored: usize,
) {
    let shard_text = shard.map_or(String::new(), |(k, n)| format!(", shard {k}/{n}"));
    let mutant = s.mutant.as_deref().unwrap_or("none (the fixed core)");
    println!(
        "heldlock run — scenario {}, seeds {}..{}{shard_text}, {jobs} jobs",
        scenario.name, range.start, range.end
    );
    println!("  mutant            {mutant}");
    if stored > 0 {
        println!("  replayed first    {stored} stored failing seed(s)");
    }
    println!("  seeds             {:>10}   passed {}   failed {}", s.seeds, s.passed, s.failures.len());
    let per_s = |n: f64| {
        if s.wall_seconds > 0.0 {
            n / s.wall_seconds
        } else {
            0.0
        }
    };
    println!(
        "  events            {:>10}   ({:.0}/s, {:.0} seeds/s, {:.1} s wall)",
        s.events,
        per_s(s.events as f64),
        per_s(s.seeds as f64),
        s.wall_seconds
    );
    println!("  simulated time    {:>10.0} s", s.sim_seconds);
    let faults: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "  faults fired      {}",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(" | ")
        }
    );
    let mut by_invariant = std::collections::BTreeMap::new();
    for f in &s.failures {
        *by_invariant.entry(f.invariant).or_insert(0) += 1;
    }
    let violations: Vec<String> = by_invariant.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    println!(
        "  violations        {}",
        if violations.is_empty() {
            "none".into()
        } else {
            violations.join(", ")
        }
    );
    let (t_gaps, s_gaps) = s.gaps();
    println!(
        "  coverage          {}/{} controller transitions, {}/{} fault sites",
        TRANSITIONS.len() - t_gaps.len(),
        TRANSITIONS.len(),
        CORE_FAULT_SITES.len() - s_gaps.len(),
        CORE_FAULT_SITES.len()
    );
    if !t_gaps.is_empty() {
        println!("    never reached:  {}", t_gaps.join(", "));
    }
    if !s_gaps.is_empty() {
        println!("    sites never hit: {}", s_gaps.join(", "));
    }
}

/// The first few failures in full: invariant, actors, last trace lines, reproduce command.
fn print_failure_details(scenario: &Scenario, s: &Summary, mutant: Option<Mutant>) {
    for f in s.failures.iter().take(3) {
        println!("\nFAIL {} seed {}: {}", f.scenario, f.seed, f.violation);
        let report = campaign::replay(scenario, f.seed, mutant);
        println!("  actors: {}", report.actors.join(" "));
        println!("  profile: {}", report.profile);
        println!("  last trace lines before the violation:");
        for line in campaign::last_lines(&report, 12) {
            println!("    {line}");
        }
        println!("  reproduce: {}", f.reproduce);
    }
    if s.failures.len() > 3 {
        println!("\n… and {} more failing seeds (all saved to the failure store)", s.failures.len() - 3);
    }
}

fn cmd_replay(a: ReplayArgs) -> Result<bool, Usage> {
    let scenario = scenario::find(&a.scenario).map_err(Usage)?;
    let seed: Seed = a.seed.parse().map_err(Usage)?;
    let mutant = parse_mutant(a.mutant.as_deref())?;
    let report = campaign::replay(scenario, seed.0, mutant);
    let skip = a.tail.map_or(0, |n| report.trace.len().saturating_sub(n));
    for line in &report.trace[skip..] {
        println!("{line}");
    }
    println!("--");
    println!("scenario {} seed {} mutant {}", scenario.name, seed, mutant.map_or("none", |m| m.name()));
    println!("profile: {}", report.profile);
    println!("actors: {}", report.actors.join(" "));
    if report.violations.is_empty() {
        println!(
            "verdict: every invariant held ({} events, {} trace lines)",
            report.events,
            report.trace.len()
        );
        return Ok(true);
    }
    println!("verdict: {} violation(s)", report.violations.len());
    for v in &report.violations {
        println!("  {v}");
    }
    println!("reproduce: {}", campaign::reproduce_command(scenario.name, seed.0, mutant));
    Ok(false)
}

fn cmd_shrink(a: ReplayArgs) -> Result<bool, Usage> {
    let scenario = scenario::find(&a.scenario).map_err(Usage)?;
    let seed: Seed = a.seed.parse().map_err(Usage)?;
    let mutant = parse_mutant(a.mutant.as_deref())?;
    match heldlock::shrink::shrink(scenario, seed.0, mutant) {
        None => {
            println!("seed {seed} of {} passes: nothing to shrink", scenario.name);
            Ok(true)
        }
        Some(result) => {
            println!(
                "seed {seed}: {} still breaks with {} of its {} faults:",
                result.invariant,
                result.kept.len(),
                result.original
            );
            for (site, occurrence, kind) in &result.kept {
                println!("  {kind} on {site} occurrence #{occurrence}");
            }
            println!("--");
            for line in &result.trace {
                println!("{line}");
            }
            println!("violation: {}", result.violation);
            Ok(false)
        }
    }
}

fn cmd_mutants(a: MutantArgs) -> Result<bool, Usage> {
    let jobs = jobs(a.jobs)?;
    let selected: Vec<Mutant> = match parse_mutant(a.mutant.as_deref())? {
        Some(m) => vec![m],
        None => Mutant::ALL.to_vec(),
    };
    if a.ranges == 0 || a.budget == 0 {
        return Err(Usage("--ranges and --budget must be at least 1".into()));
    }
    let bar = progress(selected.len() as u64 * a.ranges, a.quiet, "mutants");
    let started = Instant::now();
    let results = mutants::self_test(&selected, a.ranges, a.budget, jobs, &|| bar.inc(1));
    bar.finish_and_clear();
    println!(
        "heldlock mutants — default random campaign ({DEFAULT_SCENARIO}), {} ranges × up to {} seeds, {jobs} jobs",
        a.ranges, a.budget
    );
    println!(
        "{:<30} {:>7} {:>8} {:>8} {:>8}  caught by",
        "mutant", "killed", "median", "worst", "cpu s"
    );
    let mut all = true;
    for r in &results {
        let killed = r.seeds_to_kill.iter().filter(|k| k.is_some()).count();
        let inv: Vec<String> = r.invariants.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        let worst = if r.killed_everywhere() {
            r.worst(a.budget).to_string()
        } else {
            format!(">{}", a.budget)
        };
        println!(
            "{:<30} {:>4}/{:<2} {:>8} {:>8} {:>8.2}  {}",
            r.mutant,
            killed,
            a.ranges,
            r.median(a.budget),
            worst,
            r.cpu_seconds,
            inv.join(" ")
        );
        all &= r.killed_everywhere();
    }
    println!("\nexample kills (replay them):");
    for r in &results {
        if let Some(example) = &r.example {
            println!("  {}\n      {}", example.replay, example.violation);
            if let Some(consequence) = &example.consequence {
                println!("      then: {consequence}");
            }
        } else {
            println!("  {}: SURVIVED every range", r.mutant);
        }
    }
    println!(
        "\n{:.1} s wall; {}",
        started.elapsed().as_secs_f64(),
        if all {
            "every mutant killed"
        } else {
            "SOME MUTANT SURVIVED"
        }
    );
    if let Some(path) = &a.json {
        write_json(path, &results)?;
    }
    Ok(all)
}

fn cmd_determinism(a: DeterminismArgs) -> Result<bool, Usage> {
    let scenario = scenario::find(&a.scenario).map_err(Usage)?;
    let seeds: Vec<u64> = (0..a.seeds).collect();
    let bar = progress(2 * a.seeds, a.quiet, "determinism");
    let result = determinism::check(scenario, &seeds, &|| bar.inc(1));
    bar.finish_and_clear();
    match result {
        Ok(n) => {
            println!(
                "deterministic: {n} seeds of {} gave byte-identical traces with --jobs 1 and --jobs 2",
                scenario.name
            );
            Ok(true)
        }
        Err(m) => {
            println!("NONDETERMINISTIC seed {}: {}", m.seed, m.what);
            println!("  first differing line {}:\n    run 1: {}\n    run 2: {}", m.line, m.first, m.second);
            println!("  reproduce: {}", campaign::reproduce_command(scenario.name, m.seed, None));
            Ok(false)
        }
    }
}

fn cmd_list() -> Result<bool, Usage> {
    println!("scenarios:");
    for s in SCENARIOS {
        println!("  {:<16} {}", s.name, s.description);
    }
    println!("\nmutants (historical bugs, SPEC §5):");
    for m in Mutant::ALL {
        println!("  {:<30} {}", m.name(), m.description());
    }
    println!("\ninvariants (SPEC §4):");
    for id in heldlock_sim::InvariantId::CHECKED {
        println!("  {:<4} {}", id.name(), id.description());
    }
    println!("\nfault kinds:");
    let kinds: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    println!("  {}", kinds.join(", "));
    println!("\nfault sites (operation:path the core uses):");
    let sites: Vec<String> = CORE_FAULT_SITES.iter().map(|s| s.to_string()).collect();
    println!("  {}", sites.join(", "));
    let reasons = [
        StaleReason::MissingPid,
        StaleReason::DeadPid,
        StaleReason::RecycledPid,
        StaleReason::InvalidCreatedAt,
        StaleReason::TooOld,
        StaleReason::HoldExceeded,
        StaleReason::OrphanSelfPid,
        StaleReason::NonOwnerProcess,
    ];
    let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
    println!("\nstale reasons: {}", names.join(", "));
    Ok(true)
}

fn cmd_merge(a: MergeArgs) -> Result<bool, Usage> {
    let mut total = Summary::default();
    for path in &a.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
        let part: Summary = serde_json::from_str(&text)
            .map_err(|e| Usage(format!("{} is not a heldlock run report: {e}", path.display())))?;
        total.merge(&part);
    }
    println!(
        "merged {} reports: {} seeds, {} passed, {} failed, {} events",
        a.reports.len(),
        total.seeds,
        total.passed,
        total.failures.len(),
        total.events
    );
    for f in &total.failures {
        println!("FAIL {} seed {}: {}\n     reproduce: {}", f.scenario, f.seed, f.violation, f.reproduce);
    }
    if let Some(path) = &a.json {
        write_json(path, &total)?;
    }
    Ok(total.failures.is_empty())
}

fn cmd_bench(a: BenchArgs) -> Result<bool, Usage> {
    if a.seeds == 0 {
        return Err(Usage("--seeds must be at least 1".into()));
    }
    let report = heldlock::bench::run(a.seeds);
    println!("{}", report.markdown());
    Ok(true)
}
