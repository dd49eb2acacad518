//! `heldlock check-determinism`: seeds on one thread and on two must give byte-identical traces.

use clap::Args;
use heldlock::scenario::{self, DEFAULT_SCENARIO};
use heldlock::{campaign, determinism};

use super::{Exit, Progress, Usage, Verdict};
use crate::say;

#[derive(Args)]
pub struct DeterminismArgs {
    #[arg(long, env = "HELDLOCK_SEEDS", default_value_t = 200)]
    seeds: u64,
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    scenario: String,
    #[arg(long)]
    quiet: bool,
}

pub fn cmd(a: DeterminismArgs) -> Verdict {
    let scenario = scenario::find(&a.scenario).map_err(Usage)?;
    let progress = Progress::new(a.seeds.saturating_mul(2), a.quiet, "determinism");
    let result = determinism::check(scenario, 0..a.seeds, &|| progress.inc());
    progress.finish();
    match result {
        Ok(n) => {
            say!(
                "deterministic: {n} seeds of {} gave byte-identical traces with --jobs 1 and --jobs 2",
                scenario.name
            );
            Ok(Exit::Pass)
        }
        Err(m) => {
            say!("NONDETERMINISTIC seed {}: {}", m.seed, m.what);
            say!("  first differing line {}:\n    run 1: {}\n    run 2: {}", m.line, m.first, m.second);
            say!("  reproduce: {}", campaign::reproduce_command(scenario.name, m.seed, None));
            Ok(Exit::Fail)
        }
    }
}
