//! heldlock: named scenarios, campaigns over many seeds, the failure store, the mutant
//! self-test and the determinism check — everything the `heldlock` CLI drives.

pub mod bench;
pub mod campaign;
pub mod ci_report;
pub mod determinism;
pub mod incident;
pub mod mutants;
pub mod parity;
pub mod pool;
pub mod real_chaos;
pub mod regressions;
pub mod scenario;
pub mod shards;
pub mod shrink;
pub mod store;

/// Text to stdout for the subcommands that live in this library (`parity`, `real`): a closed
/// pipe (`| head`) drops it instead of panicking, and the exit status still tells the verdict.
pub fn print_quietly(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
