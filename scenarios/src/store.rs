//! The failure store: every failing seed is appended (and flushed) before it is reported, and
//! later runs of the same scenario and mutant replay the stored seeds first.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use heldlock_sim::InvariantId;
use serde::{Deserialize, Serialize};

/// Where the store lives unless `HELDLOCK_STORE` says otherwise.
pub const DEFAULT_STORE: &str = ".heldlock/failures.jsonl";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFailure {
    pub scenario: String,
    pub seed: u64,
    pub mutant: Option<String>,
    pub invariant: InvariantId,
    pub detail: String,
}

pub struct FailureStore {
    path: PathBuf,
}

impl FailureStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FailureStore { path: path.into() }
    }

    /// `HELDLOCK_STORE`, or `.heldlock/failures.jsonl` in the working directory.
    pub fn from_env() -> Self {
        Self::new(std::env::var("HELDLOCK_STORE").unwrap_or_else(|_| DEFAULT_STORE.to_owned()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one failure and flush it to disk.
    pub fn save(&self, failure: &StoredFailure) -> io::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        let line = serde_json::to_string(failure).map_err(io::Error::other)?;
        writeln!(file, "{line}")?;
        file.sync_data()
    }

    /// Stored seeds of this scenario and mutant, oldest first, each once. Unreadable lines
    /// are skipped: a damaged store never stops a campaign.
    pub fn seeds(&self, scenario: &str, mutant: Option<&str>) -> Vec<u64> {
        let Ok(file) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut seeds = Vec::new();
        for line in io::BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(f) = serde_json::from_str::<StoredFailure>(&line) else {
                continue;
            };
            if f.scenario == scenario && f.mutant.as_deref() == mutant && !seeds.contains(&f.seed) {
                seeds.push(f.seed);
            }
        }
        seeds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_failures_come_back_per_scenario_and_mutant() {
        let dir = tempfile::tempdir().unwrap();
        let store = FailureStore::new(dir.path().join("nested/failures.jsonl"));
        let f = |scenario: &str, seed, mutant: Option<&str>| StoredFailure {
            scenario: scenario.into(),
            seed,
            mutant: mutant.map(str::to_owned),
            invariant: InvariantId::I3,
            detail: "x".into(),
        };
        store.save(&f("swarm", 7, None)).unwrap();
        store.save(&f("swarm", 9, Some("m3-fence-read-leak"))).unwrap();
        store.save(&f("swarm", 7, None)).unwrap();
        store.save(&f("quiet", 1, None)).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(store.path())
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        assert_eq!(store.seeds("swarm", None), vec![7]);
        assert_eq!(store.seeds("swarm", Some("m3-fence-read-leak")), vec![9]);
        assert_eq!(store.seeds("quiet", None), vec![1]);
        assert!(FailureStore::new(dir.path().join("absent")).seeds("swarm", None).is_empty());
    }
}
