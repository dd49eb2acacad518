//! `heldlock replay` (one seed's whole trace and verdict, optionally with only a shrunk fault
//! set) and `heldlock shrink` (the fewest faults that still break it, and the command that
//! replays exactly that run).

use clap::Args;
use heldlock::campaign;
use heldlock::scenario::{self, Scenario, DEFAULT_SCENARIO};
use heldlock::shrink::{self, parse_faults};
use heldlock_core::Mutant;

use super::{parse_mutant, parse_seed, Exit, Usage, Verdict};
use crate::say;

/// Which run: scenario, seed, mutant.
#[derive(Args)]
pub struct SeedArgs {
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    #[arg(long, env = "HELDLOCK_SEED")]
    seed: String,
    #[arg(long)]
    mutant: Option<String>,
}

impl SeedArgs {
    fn parse(&self) -> Result<(&'static Scenario, u64, Option<Mutant>), Usage> {
        let scenario = scenario::find(&self.scenario).map_err(Usage)?;
        Ok((scenario, parse_seed(&self.seed)?, parse_mutant(self.mutant.as_deref())?))
    }
}

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    run: SeedArgs,
    /// Only these faults fire (as `shrink` prints them: op:class#occurrence,… or none).
    #[arg(long)]
    faults: Option<String>,
    /// Print only the last N trace lines.
    #[arg(long)]
    tail: Option<usize>,
}

#[derive(Args)]
pub struct ShrinkArgs {
    #[command(flatten)]
    run: SeedArgs,
}

pub fn cmd_replay(a: ReplayArgs) -> Verdict {
    let (scenario, seed, mutant) = a.run.parse()?;
    let only = a.faults.as_deref().map(parse_faults).transpose().map_err(Usage)?;
    let report = campaign::replay_with(scenario, seed, mutant, only);
    let skip = a.tail.map_or(0, |n| report.trace.len().saturating_sub(n));
    for line in &report.trace[skip..] {
        say!("{line}");
    }
    say!("--");
    say!("scenario {} seed {seed} mutant {}", scenario.name, mutant.map_or("none", |m| m.name()));
    if let Some(faults) = &a.faults {
        say!("faults: only {faults}");
    }
    say!("profile: {}", report.profile);
    say!("actors: {}", report.actors.join(" "));
    if report.violations.is_empty() {
        say!(
            "verdict: every invariant held ({} events, {} trace lines)",
            report.events,
            report.trace.len()
        );
        return Ok(Exit::Pass);
    }
    say!("verdict: {} violation(s)", report.violations.len());
    for v in &report.violations {
        say!("  {v}");
    }
    let mut reproduce = campaign::reproduce_command(scenario.name, seed, mutant);
    if let Some(faults) = &a.faults {
        reproduce.push_str(&format!(" --faults {faults}"));
    }
    say!("reproduce: {reproduce}");
    Ok(Exit::Fail)
}

pub fn cmd_shrink(a: ShrinkArgs) -> Verdict {
    let (scenario, seed, mutant) = a.run.parse()?;
    let Some(result) = shrink::shrink(scenario, seed, mutant) else {
        say!("seed {seed} of {} passes: nothing to shrink", scenario.name);
        return Ok(Exit::Pass);
    };
    for line in &result.report.trace {
        say!("{line}");
    }
    say!("--");
    say!("violation: {}", result.violation);
    say!(
        "seed {seed}: {} still breaks with {} of its {} faults (faults {} → {}):",
        result.invariant,
        result.kept.len(),
        result.original,
        result.original,
        result.kept.len()
    );
    for (site, occurrence, kind) in &result.kept {
        say!("  {kind} on {site} occurrence #{occurrence}");
    }
    say!("reproduce: {}", result.reproduce(scenario.name, seed, mutant));
    Ok(Exit::Fail)
}
