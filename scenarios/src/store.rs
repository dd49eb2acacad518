//! The failure store: every failing seed is appended (and flushed) before it is reported, and
//! later runs of the same scenario and mutant replay the stored seeds first.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use heldlock_sim::InvariantId;
use serde::{Deserialize, Serialize};

/// Where the store lives unless `HELDLOCK_STORE` says otherwise.
pub const DEFAULT_STORE: &str = ".heldlock/failures.jsonl";

/// One record is one line; a longer one is refused rather than risk a write the kernel splits.
const MAX_RECORD_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredFailure {
    pub scenario: String,
    pub seed: u64,
    pub mutant: Option<String>,
    pub invariant: InvariantId,
    pub detail: String,
}

/// What a read of the store found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each (scenario, mutant, seed) once, oldest first.
    pub failures: Vec<StoredFailure>,
    /// Lines that were not a record (garbage, a torn last line, not UTF-8).
    pub skipped: usize,
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

    fn open_for_append(&self) -> io::Result<fs::File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        // A FIFO would block once full and a device is no store: refuse anything else.
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(file)
    }

    /// Whether a record could be appended now (the file opens for appending); checked before
    /// a campaign so that a store that cannot be written is named up front.
    pub fn probe(&self) -> io::Result<()> {
        self.open_for_append().map(drop)
    }

    /// Append one failure as ONE `write` of a whole line (O_APPEND: concurrent writers, threads
    /// or processes, never interleave inside a line) and flush it to disk. A torn last line
    /// left by a writer killed mid-record is closed first, in the same write.
    pub fn save(&self, failure: &StoredFailure) -> io::Result<()> {
        let mut file = self.open_for_append()?;
        let mut record = serde_json::to_vec(failure).map_err(io::Error::other)?;
        record.push(b'\n');
        if record.len() > MAX_RECORD_BYTES {
            return Err(io::Error::other(format!("a record of {} bytes is too long", record.len())));
        }
        if ends_torn(&file)? {
            record.insert(0, b'\n');
        }
        let written = file.write(&record)?;
        if written != record.len() {
            return Err(io::Error::other(format!("short write: {written} of {} bytes", record.len())));
        }
        file.sync_data()
    }

    /// Read the whole store: byte lines, each parsed on its own, so garbage or a torn line
    /// costs that line only; duplicates once. Linear in the store's size. A missing or
    /// unreadable store is empty; so is anything but a regular file (`/dev/full` and
    /// `/dev/zero` never end).
    pub fn load(&self) -> Loaded {
        if !fs::metadata(&self.path).is_ok_and(|m| m.is_file()) {
            return Loaded::default();
        }
        let Ok(bytes) = fs::read(&self.path) else {
            return Loaded::default();
        };
        let mut loaded = Loaded::default();
        let mut seen = HashSet::new();
        for line in bytes.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<StoredFailure>(line) {
                Ok(f) => {
                    if seen.insert((f.scenario.clone(), f.mutant.clone(), f.seed)) {
                        loaded.failures.push(f);
                    }
                }
                Err(_) => loaded.skipped += 1,
            }
        }
        loaded
    }

    /// Stored seeds of this scenario and mutant, oldest first, each once.
    pub fn seeds(&self, scenario: &str, mutant: Option<&str>) -> Vec<u64> {
        seeds_of(&self.load().failures, scenario, mutant)
    }
}

/// The seeds of `failures` that belong to this scenario and mutant, in order.
pub fn seeds_of(failures: &[StoredFailure], scenario: &str, mutant: Option<&str>) -> Vec<u64> {
    failures
        .iter()
        .filter(|f| f.scenario == scenario && f.mutant.as_deref() == mutant)
        .map(|f| f.seed)
        .collect()
}

/// Whether the file's last byte is not a newline (a record was cut short).
fn ends_torn(file: &fs::File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
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

    fn failure(seed: u64) -> StoredFailure {
        StoredFailure {
            scenario: "swarm".into(),
            seed,
            mutant: None,
            invariant: InvariantId::I3,
            detail: "x".into(),
        }
    }

    #[test]
    fn the_reader_reads_past_garbage_and_never_glues_onto_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let store = FailureStore::new(dir.path().join("failures.jsonl"));
        store.save(&failure(1)).unwrap();
        let mut raw = fs::OpenOptions::new().append(true).open(store.path()).unwrap();
        raw.write_all(b"\xff\xfe not utf-8\n").unwrap();
        raw.write_all(br#"{"scenario":"swarm","seed":2,"mutant":null,"invariant":"I3","detail":"x"}"#)
            .unwrap();
        raw.write_all(b"\n{\"scenario\":\"swarm\",\"se").unwrap(); // a writer killed mid-line
        store.save(&failure(3)).unwrap(); // must not be glued onto the torn line
        store.save(&failure(1)).unwrap(); // a duplicate
        assert_eq!(store.seeds("swarm", None), vec![1, 2, 3]);
        let loaded = store.load();
        assert_eq!(loaded.skipped, 2, "the garbage line and the torn one");
        assert_eq!(loaded.failures.len(), 3, "duplicates once");
    }

    #[test]
    fn one_record_is_one_write_of_a_whole_line() {
        // Two threads appending at once: every line whole.
        let dir = tempfile::tempdir().unwrap();
        let store = FailureStore::new(dir.path().join("failures.jsonl"));
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let store = &store;
                s.spawn(move || (0..300).for_each(|i| store.save(&failure(t * 1000 + i)).unwrap()));
            }
        });
        let loaded = store.load();
        assert_eq!((loaded.failures.len(), loaded.skipped), (600, 0));
    }
}
