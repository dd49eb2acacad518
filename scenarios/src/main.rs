//! `heldlock`: run campaigns, replay and shrink seeds, self-test against the historical bugs,
//! check determinism, merge shard reports, keep regressions. Exit 0: every invariant held;
//! 1: a violation (or a surviving mutant, or a nondeterministic trace); 2: bad usage or input.
//!
//! Each subcommand's body is its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::{Exit, Usage};

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
    Run(cli::run::RunArgs),
    /// Replay one seed to the end and print its whole trace.
    Replay(cli::replay::ReplayArgs),
    /// Shrink a failing seed: the smallest set of its faults that still breaks the same invariant.
    Shrink(cli::replay::ShrinkArgs),
    /// Self-test: every historical bug must be killed by the default random campaign.
    Mutants(cli::mutants::MutantArgs),
    /// Run seeds on one thread and on two and require byte-identical traces.
    CheckDeterminism(cli::determinism::DeterminismArgs),
    /// List scenarios, mutants, invariants and fault kinds.
    List,
    /// Merge the JSON reports of campaign shards, once proven to tile one range exactly.
    Merge(cli::merge::MergeArgs),
    /// The committed regression seeds: add a failure store's failures, or replay them all.
    Regressions(cli::regressions::RegressionArgs),
    /// Measure throughput, overhead against a bare madsim loop, and peak memory.
    Bench(cli::bench::BenchArgs),
    /// Check the in-memory filesystem and process table against Linux, op by op.
    Parity(heldlock::parity::ParityArgs),
    /// Run the real lock under real chaos (contender processes, kills, stops, file damage).
    Real(heldlock::real_chaos::RealArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let verdict = match cli.command {
        Command::Run(a) => cli::run::cmd(a),
        Command::Replay(a) => cli::replay::cmd_replay(a),
        Command::Shrink(a) => cli::replay::cmd_shrink(a),
        Command::Mutants(a) => cli::mutants::cmd(a),
        Command::CheckDeterminism(a) => cli::determinism::cmd(a),
        Command::List => cli::list::cmd(),
        Command::Merge(a) => cli::merge::cmd(a),
        Command::Regressions(a) => cli::regressions::cmd(a),
        Command::Bench(a) => cli::bench::cmd(a),
        Command::Parity(a) => heldlock::parity::cli(a).map(Exit::of).map_err(Usage),
        Command::Real(a) => heldlock::real_chaos::cli(a).map(Exit::of).map_err(Usage),
    };
    match verdict {
        Ok(Exit::Pass) => ExitCode::SUCCESS,
        Ok(Exit::Fail) => ExitCode::from(1),
        Ok(Exit::Usage) => ExitCode::from(2),
        Err(Usage(msg)) => {
            tell!("heldlock: {msg}");
            ExitCode::from(2)
        }
    }
}
