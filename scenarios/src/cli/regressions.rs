//! `heldlock regressions`: the committed seeds `cargo test` replays. `add --from-store`
//! appends a failure store's failures; `check` replays every entry.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use heldlock::regressions::{self, Regression, DEFAULT_FILE};
use heldlock::store::FailureStore;

use super::{Exit, Usage, Verdict};
use crate::say;

#[derive(Args)]
pub struct RegressionArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Append the failures of failure stores (default: $HELDLOCK_STORE or
    /// .heldlock/failures.jsonl) that the file lacks.
    Add {
        /// Take them from failure stores (the only source for now; say it to be explicit).
        #[arg(long, required = true)]
        from_store: bool,
        /// Stores to read.
        stores: Vec<PathBuf>,
        #[arg(long, default_value = DEFAULT_FILE)]
        file: PathBuf,
    },
    /// Replay every entry: a mutant seed must still break its invariant, a `none` seed pass.
    Check {
        #[arg(long, default_value = DEFAULT_FILE)]
        file: PathBuf,
    },
}

pub fn cmd(a: RegressionArgs) -> Verdict {
    match a.action {
        Action::Add { stores, file, .. } => add(stores, file),
        Action::Check { file } => check(file),
    }
}

fn add(stores: Vec<PathBuf>, file: PathBuf) -> Verdict {
    let stores = if stores.is_empty() {
        vec![FailureStore::from_env()]
    } else {
        stores.into_iter().map(FailureStore::new).collect()
    };
    let mut found = Vec::new();
    for store in &stores {
        if !store.path().is_file() {
            return Err(Usage(format!("no failure store at {}", store.path().display())));
        }
        let loaded = super::load_store(store);
        found.extend(loaded.failures.iter().map(Regression::from_stored));
    }
    let added = regressions::add(&file, &found).map_err(Usage)?;
    for r in &added {
        say!("added {}", r.line());
    }
    say!(
        "{} new regression(s) in {} ({} failure(s) in the store(s))",
        added.len(),
        file.display(),
        found.len()
    );
    Ok(Exit::Pass)
}

fn check(file: PathBuf) -> Verdict {
    let entries = regressions::load(&file).map_err(Usage)?;
    let mut failed = 0;
    for r in &entries {
        match regressions::check(r) {
            Ok(()) => say!("ok   {}", r.line()),
            Err(e) => {
                failed += 1;
                say!("FAIL {e}");
            }
        }
    }
    say!("{} regression(s), {failed} changed their verdict", entries.len());
    Ok(Exit::of(failed == 0))
}
