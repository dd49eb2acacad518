//! What every subcommand shares: the usage error, argument parsers, output that survives a
//! closed pipe, progress that is plain off a terminal, and output files checked up front.
//! Each subcommand lives in its own file: adding one is a module, an enum variant and a match
//! arm in `main.rs`.

pub mod bench;
pub mod determinism;
pub mod list;
pub mod merge;
pub mod mutants;
pub mod regressions;
pub mod replay;
pub mod run;

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use heldlock_core::Mutant;
use heldlock_sim::Seed;
use indicatif::{ProgressBar, ProgressStyle};

/// A usage or input error: exit 2.
pub struct Usage(pub String);

/// One line to stderr; nowhere left to complain if even that fails.
pub fn warn_line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

#[macro_export]
macro_rules! say {
    () => { heldlock::say_line(format_args!("")) };
    ($($arg:tt)*) => { heldlock::say_line(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! tell {
    ($($arg:tt)*) => { $crate::cli::warn_line(format_args!($($arg)*)) };
}

/// Read a failure store, saying on stderr how many lines were not records.
pub fn load_store(store: &heldlock::store::FailureStore) -> heldlock::store::Loaded {
    let loaded = store.load();
    if loaded.skipped > 0 {
        tell!(
            "heldlock: warning: {} unreadable line(s) in {} skipped",
            loaded.skipped,
            store.path().display()
        );
    }
    loaded
}

pub fn parse_mutant(name: Option<&str>) -> Result<Option<Mutant>, Usage> {
    name.map(|n| n.parse::<Mutant>().map_err(Usage)).transpose()
}

pub fn parse_seed(text: &str) -> Result<u64, Usage> {
    text.parse::<Seed>().map(|s| s.0).map_err(Usage)
}

pub fn parse_range(text: &str) -> Result<std::ops::Range<u64>, Usage> {
    let bad = || Usage(format!("malformed seed range '{text}': expected A..B with A < B, such as 0..1000"));
    let (a, b) = text.split_once("..").ok_or_else(bad)?;
    let a: Seed = a.parse().map_err(|_| bad())?;
    let b: Seed = b.parse().map_err(|_| bad())?;
    if a.0 >= b.0 {
        return Err(bad());
    }
    Ok(a.0..b.0)
}

pub fn parse_shard(text: &str) -> Result<(u64, u64), Usage> {
    let bad = || Usage(format!("malformed shard '{text}': expected K/N with 1 <= K <= N, such as 2/8"));
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn jobs(requested: Option<usize>) -> Result<usize, Usage> {
    let max = heldlock::pool::MAX_JOBS;
    match requested {
        Some(0) => Err(Usage("--jobs must be at least 1".into())),
        Some(j) if j > max => {
            Err(Usage(format!("--jobs {j} is more threads than makes sense (at most {max})")))
        }
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Progress on a terminal; nothing at all off one or with --quiet, where every line that
/// matters prints plainly instead (`Progress::line`).
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(total: u64, quiet: bool, what: &str) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                bar: ProgressBar::hidden(),
            };
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_owned());
        Progress { bar }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// A line of stdout that must not be lost: above the bar on a terminal, plain otherwise.
    pub fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            say!("{text}");
        } else {
            self.bar.suspend(|| say!("{text}"));
        }
    }

    /// An error line for stderr, above the bar on a terminal.
    pub fn error(&self, text: &str) {
        self.bar.suspend(|| tell!("{text}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A file the command will write at its end, opened (and so checked) before any work.
pub struct OutputFile {
    path: PathBuf,
    file: File,
}

impl OutputFile {
    /// `--json`/`--junit` targets: opened now, so an unwritable path is exit 2 before the run.
    pub fn prepare(path: Option<&Path>, flag: &str) -> Result<Option<OutputFile>, Usage> {
        let Some(path) = path else { return Ok(None) };
        let file =
            File::create(path).map_err(|e| Usage(format!("cannot write {flag} {}: {e}", path.display())))?;
        Ok(Some(OutputFile {
            path: path.to_owned(),
            file,
        }))
    }

    /// Write the whole content; an error names the file.
    pub fn write(mut self, content: &str) -> Result<(), String> {
        self.file
            .write_all(content.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Write the prepared outputs; each failure is an error on stderr. `Ok(false)` if any failed.
pub fn write_outputs(outputs: Vec<(Option<OutputFile>, String)>) -> bool {
    let mut all = true;
    for (file, content) in outputs {
        if let Some(file) = file {
            if let Err(e) = file.write(&content) {
                tell!("heldlock: error: {e}");
                all = false;
            }
        }
    }
    all
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).map_or_else(|e| format!("{{\"error\": \"{e}\"}}"), |t| t + "\n")
}

/// The exit of a command: its verdict, or a usage error.
pub type Verdict = Result<Exit, Usage>;

/// 0 every invariant held, 1 a violation (or survivor, or nondeterminism), 2 bad usage/input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Pass,
    Fail,
    Usage,
}

impl Exit {
    pub fn of(passed: bool) -> Exit {
        if passed {
            Exit::Pass
        } else {
            Exit::Fail
        }
    }

    /// A verdict, unless an output could not be written: then exit 2 — but a violation still
    /// exits 1, so CI never reads a red run as a usage error.
    pub fn with_outputs(passed: bool, outputs_written: bool) -> Exit {
        match (passed, outputs_written) {
            (false, _) => Exit::Fail,
            (true, true) => Exit::Pass,
            (true, false) => Exit::Usage,
        }
    }
}
