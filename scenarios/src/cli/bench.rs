//! `heldlock bench`: throughput, overhead against a bare madsim loop, peak memory.

use clap::Args;

use super::{Exit, Usage, Verdict};
use crate::say;

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value_t = 2000)]
    seeds: u64,
}

pub fn cmd(a: BenchArgs) -> Verdict {
    if a.seeds == 0 {
        return Err(Usage("--seeds must be at least 1".into()));
    }
    let report = heldlock::bench::run(a.seeds);
    say!("{}", report.markdown());
    Ok(Exit::Pass)
}
