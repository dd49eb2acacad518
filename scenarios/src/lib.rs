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

/// Set once stdout is a closed pipe (`| head`): later output is dropped, the work goes on, and
/// the exit status still tells the verdict.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Text to stdout; a closed pipe ends stdout output quietly instead of panicking. Every
/// subcommand prints through this (the CLI's `say!`, and `parity`/`real` here).
pub fn print_quietly(text: &str) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line to stdout through [`print_quietly`].
pub fn say_line(args: std::fmt::Arguments<'_>) {
    print_quietly(&format!("{args}\n"));
}
