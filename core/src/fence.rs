//! The transcript fence (SPEC §3): what the transcript looked like when the controller let go
//! of its lock, and which later changes it may accept as its own or as benign.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use crate::platform::FileStat;

/// Entry kinds another process may append while the lock is released without it counting as
/// a takeover (usage accounting, liveness heartbeats).
pub const BENIGN_ENTRY_TYPES: &[&str] = &["usage", "heartbeat"];

/// The identity and version of a transcript file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl From<FileStat> for Fingerprint {
    fn from(s: FileStat) -> Self {
        Fingerprint {
            dev: s.dev,
            ino: s.ino,
            size: s.size,
            mtime_ns: s.mtime_ns,
            ctime_ns: s.ctime_ns,
        }
    }
}

impl Fingerprint {
    /// Same file and content version; only the inode change time moved (chmod, touch -c…).
    pub fn only_ctime_differs(&self, other: &Fingerprint) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns != other.ctime_ns
    }

    pub fn same_file(&self, other: &Fingerprint) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// The file's identity: (dev, ino).
    pub fn file(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// The fence of one controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// `None` when our own appends since the snapshot could not be verified (`pending`).
    pub fingerprint: Option<Fingerprint>,
    pub snapshot: Vec<u8>,
    /// Our own appends on top of `snapshot` whose resulting version we could not stat or read:
    /// the next check accepts them, once each, among benign lines.
    pub pending: Vec<Vec<u8>>,
    /// The owned-write generation this fence reflects.
    pub generation: u64,
    /// The (dev, ino) of the file the fence describes, kept when `fingerprint` is `None`: a
    /// benign or pending append is one to this same file.
    pub file: (u64, u64),
}

/// `new` is `old` plus whole JSON lines, each an entry of a benign kind.
pub fn is_benign_append(old: &[u8], new: &[u8]) -> bool {
    let Some(added) = new.strip_prefix(old) else {
        return false;
    };
    if !added.is_empty() && !added.ends_with(b"\n") {
        return false;
    }
    added.split(|&b| b == b'\n').filter(|line| !line.is_empty()).all(|line| {
        serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|t| BENIGN_ENTRY_TYPES.contains(&t.as_str()))
    })
}

/// A JSON line without its newline.
fn line_body(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// One write a controller of this process made under its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedWrite {
    pub fingerprint: Fingerprint,
    pub generation: u64,
    /// The content after the write, when the writer knew it (it had a fence to extend).
    pub snapshot: Option<Vec<u8>>,
}

/// `new` is `old` plus each of our `entries` (once each) and otherwise only benign lines, in
/// any order: our appends with benign appends of others around them.
pub fn is_owned_append(old: &[u8], new: &[u8], entries: &[Vec<u8>]) -> bool {
    is_append_of(old, new, entries, &[])
}

/// `new` is `old` plus each of `required` (once each), any of `optional` (at most once each:
/// entries of ours that may already be in `old`), and otherwise only benign lines. An entry
/// lands once: one that `old` holds already explains no copy of it after `old` (a replay).
pub fn is_append_of(old: &[u8], new: &[u8], required: &[Vec<u8>], optional: &[Vec<u8>]) -> bool {
    let Some(added) = new.strip_prefix(old) else {
        return false;
    };
    let mut must: Vec<&[u8]> = required.iter().map(|e| line_body(e)).collect();
    let landed: Vec<&[u8]> = match optional.is_empty() {
        true => Vec::new(),
        false => old.split_inclusive(|&b| b == b'\n').map(line_body).collect(),
    };
    let mut may: Vec<&[u8]> =
        optional.iter().map(|e| line_body(e)).filter(|e| !landed.contains(e)).collect();
    let mut rest = Vec::new();
    for line in added.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n");
        if let Some(i) = must.iter().position(|e| Some(*e) == text) {
            must.swap_remove(i);
        } else if let Some(i) = may.iter().position(|e| Some(*e) == text) {
            may.swap_remove(i);
        } else {
            rest.extend_from_slice(line);
        }
    }
    must.is_empty() && is_benign_append(b"", &rest)
}

/// The transcript writes this process made under its lock, newest per transcript: any
/// controller of the process accepts a change that matches a newer one as owned.
#[derive(Default)]
pub struct OwnedWrites {
    latest: Mutex<HashMap<PathBuf, OwnedWrite>>,
    /// Appends of the process under way per transcript — started, not yet recorded or given
    /// up: a landed one is the process's own before its record.
    in_flight: Mutex<HashMap<PathBuf, Vec<InFlightWrite>>>,
    /// Appends of the process that landed (the append returned Ok) but whose version no one
    /// could record as owned — its stat failed, or it landed on a version with no content on
    /// record: still the process's own, until a fence check records a version holding it.
    unrecorded: Mutex<HashMap<PathBuf, VecDeque<Vec<u8>>>>,
}

/// One append under way: its writer (a controller), the writer's id for it, its entry.
struct InFlightWrite {
    writer: u64,
    write: u64,
    entry: Vec<u8>,
}

/// Appends one process may have under way on one transcript (each controller bounds its own).
const MAX_PROCESS_IN_FLIGHT: usize = 4_096;

/// Landed, unrecorded appends kept per transcript; the oldest goes first. A fence check
/// records a version within a turn or two, so only a burst of failed stats fills this.
pub const MAX_UNRECORDED: usize = 64;

impl OwnedWrites {
    /// Record a write; returns its generation.
    pub fn record(&self, transcript: &Path, fingerprint: Fingerprint, snapshot: Option<Vec<u8>>) -> u64 {
        let mut latest = self.latest.lock().unwrap();
        let generation = latest.get(transcript).map_or(1, |w| w.generation.saturating_add(1));
        latest.insert(
            transcript.to_owned(),
            OwnedWrite {
                fingerprint,
                generation,
                snapshot,
            },
        );
        generation
    }

    /// The content of the newest owned write, read under the lock at a fingerprint equal to
    /// its own: kept when the write had none (a write of a controller with no fence yet), so a
    /// late write of ours can later be vouched for on top of it.
    pub fn attach_snapshot(&self, transcript: &Path, fingerprint: &Fingerprint, snapshot: &[u8]) {
        let mut latest = self.latest.lock().unwrap();
        if let Some(w) = latest.get_mut(transcript).filter(|w| w.snapshot.is_none() && w.fingerprint == *fingerprint) {
            w.snapshot = Some(snapshot.to_vec());
        }
    }

    /// The newest owned write of a transcript.
    pub fn newest(&self, transcript: &Path) -> Option<OwnedWrite> {
        self.latest.lock().unwrap().get(transcript).cloned()
    }

    /// Record a write made on top of the newest owned write `on` — only while that is still
    /// the newest (a write recorded meanwhile is newer than ours). Returns the generation.
    pub fn record_on(
        &self,
        transcript: &Path,
        on: u64,
        fingerprint: Fingerprint,
        snapshot: Vec<u8>,
    ) -> Option<u64> {
        let mut latest = self.latest.lock().unwrap();
        let newest = latest.get(transcript).map(|w| w.generation)?;
        if newest != on {
            return None;
        }
        let generation = newest.saturating_add(1);
        let write = OwnedWrite {
            fingerprint,
            generation,
            snapshot: Some(snapshot),
        };
        latest.insert(transcript.to_owned(), write);
        Some(generation)
    }

    /// Writer `writer`'s append `write` of `entry` to `transcript` is under way.
    pub fn write_started(&self, transcript: &Path, writer: u64, write: u64, entry: &[u8]) {
        let mut in_flight = self.in_flight.lock().unwrap();
        let list = in_flight.entry(transcript.to_owned()).or_default();
        assert!(list.len() < MAX_PROCESS_IN_FLIGHT, "in-flight appends of a process beyond their bound");
        list.push(InFlightWrite {
            writer,
            write,
            entry: entry.to_vec(),
        });
    }

    /// The append is over: recorded, given up, or failed.
    pub fn write_settled(&self, transcript: &Path, writer: u64, write: u64) {
        let mut in_flight = self.in_flight.lock().unwrap();
        if let Some(list) = in_flight.get_mut(transcript) {
            list.retain(|w| (w.writer, w.write) != (writer, write));
            if list.is_empty() {
                in_flight.remove(transcript);
            }
        }
    }

    /// An append of `entry` landed and its version could not be recorded as owned.
    pub fn landed_unrecorded(&self, transcript: &Path, entry: &[u8]) {
        let mut unrecorded = self.unrecorded.lock().unwrap();
        let list = unrecorded.entry(transcript.to_owned()).or_default();
        if list.len() == MAX_UNRECORDED {
            list.pop_front();
        }
        list.push_back(entry.to_vec());
    }

    /// The landed, unrecorded appends of the process on `transcript`.
    pub fn unrecorded(&self, transcript: &Path) -> Vec<Vec<u8>> {
        let unrecorded = self.unrecorded.lock().unwrap();
        unrecorded.get(transcript).map_or_else(Vec::new, |list| list.iter().cloned().collect())
    }

    /// A version holding these lines is now recorded as owned: each is vouched for once, and a
    /// copy of one appended later is not ours.
    pub fn forget_unrecorded(&self, transcript: &Path, recorded: &[u8]) {
        let mut unrecorded = self.unrecorded.lock().unwrap();
        if let Some(list) = unrecorded.get_mut(transcript) {
            let lines: Vec<&[u8]> = recorded.split_inclusive(|&b| b == b'\n').map(line_body).collect();
            list.retain(|entry| !lines.contains(&line_body(entry)));
            if list.is_empty() {
                unrecorded.remove(transcript);
            }
        }
    }

    /// The entries other writers of the process have under way on `transcript`.
    pub fn in_flight_of_others(&self, transcript: &Path, writer: u64) -> Vec<Vec<u8>> {
        let in_flight = self.in_flight.lock().unwrap();
        let list = in_flight.get(transcript).into_iter().flatten();
        list.filter(|w| w.writer != writer).map(|w| w.entry.clone()).collect()
    }

    pub fn generation(&self, transcript: &Path) -> u64 {
        self.latest.lock().unwrap().get(transcript).map_or(0, |w| w.generation)
    }

    /// The newest owned write if it is newer than `generation` and matches `current`.
    pub fn newer_match(
        &self,
        transcript: &Path,
        generation: u64,
        current: &Fingerprint,
    ) -> Option<OwnedWrite> {
        let latest = self.latest.lock().unwrap();
        latest
            .get(transcript)
            .filter(|w| w.generation > generation && w.fingerprint == *current)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benign_append_accepts_only_whole_benign_lines() {
        let old = b"{\"type\":\"message\"}\n".to_vec();
        let mut usage = old.clone();
        usage.extend_from_slice(b"{\"type\":\"usage\",\"tokens\":3}\n");
        assert!(is_benign_append(&old, &usage));
        assert!(is_benign_append(&old, &old));
        let mut message = old.clone();
        message.extend_from_slice(b"{\"type\":\"message\"}\n");
        assert!(!is_benign_append(&old, &message));
        let mut partial = old.clone();
        partial.extend_from_slice(b"{\"type\":\"usage\"}");
        assert!(!is_benign_append(&old, &partial));
        assert!(!is_benign_append(&old, b"{\"type\":\"usage\"}\n"));
    }

    #[test]
    fn owned_append_allows_benign_lines_around_our_entry() {
        let old = b"{\"type\":\"session\"}\n".to_vec();
        let ours = b"{\"type\":\"message\",\"from\":\"us\"}\n";
        let usage = b"{\"type\":\"usage\"}\n";
        let theirs = b"{\"type\":\"message\",\"from\":\"them\"}\n";
        let cat = |parts: &[&[u8]]| parts.concat();
        let one = [ours.to_vec()];
        assert!(is_owned_append(&old, &cat(&[&old, ours]), &one));
        assert!(is_owned_append(&old, &cat(&[&old, usage, ours, usage]), &one));
        assert!(!is_owned_append(&old, &cat(&[&old, ours, theirs]), &one));
        assert!(!is_owned_append(&old, &cat(&[&old, usage]), &one));
        assert!(!is_owned_append(&old, &cat(&[&old, ours, ours]), &one));
        assert!(is_owned_append(&old, &cat(&[&old, ours, usage, ours]), &[ours.to_vec(), ours.to_vec()]));
        assert!(is_owned_append(&old, &cat(&[&old, usage]), &[]));
    }

    #[test]
    fn optional_entries_may_be_missing_but_count_once() {
        let old = b"{\"type\":\"session\"}\n".to_vec();
        let ours = b"{\"type\":\"message\",\"from\":\"us\"}\n";
        let usage = b"{\"type\":\"usage\"}\n";
        let cat = |parts: &[&[u8]]| parts.concat();
        let one = [ours.to_vec()];
        assert!(is_append_of(&old, &cat(&[&old, usage]), &[], &one), "missing: already in old");
        assert!(is_append_of(&old, &cat(&[&old, ours, usage]), &[], &one));
        assert!(!is_append_of(&old, &cat(&[&old, ours, ours]), &[], &one), "once only");
        assert!(!is_append_of(&old, &cat(&[&old, usage]), &one, &one), "required stays required");
    }

    /// An entry lands once: when `old` holds it already, a copy appended after it is a replay
    /// by someone else (swarm seed 594: a sync tool's replay of our landed, unrecorded append
    /// passed the fence check).
    #[test]
    fn an_optional_entry_already_in_old_does_not_explain_its_copy() {
        let ours = b"{\"type\":\"message\",\"from\":\"us\"}\n";
        let usage = b"{\"type\":\"usage\"}\n";
        let cat = |parts: &[&[u8]]| parts.concat();
        let old = cat(&[b"{\"type\":\"session\"}\n", ours]);
        let one = [ours.to_vec()];
        assert!(!is_append_of(&old, &cat(&[&old, ours]), &[], &one), "a replay of a landed entry");
        assert!(!is_append_of(&old, &cat(&[&old, usage, ours]), &[], &one));
        assert!(is_append_of(&old, &cat(&[&old, usage]), &[], &one), "missing: already in old");
    }

    #[test]
    fn unrecorded_appends_are_bounded_and_forgotten_once_recorded() {
        let writes = OwnedWrites::default();
        let t = Path::new("/s/t.jsonl");
        for n in 0..MAX_UNRECORDED + 3 {
            writes.landed_unrecorded(t, format!("{{\"n\":{n}}}\n").as_bytes());
        }
        let kept = writes.unrecorded(t);
        assert_eq!(kept.len(), MAX_UNRECORDED);
        assert_eq!(kept[0], b"{\"n\":3}\n".to_vec(), "the oldest go first");
        writes.forget_unrecorded(t, b"{\"type\":\"message\"}\n{\"n\":3}\n{\"n\":5}");
        let left = writes.unrecorded(t);
        assert_eq!(left.len(), MAX_UNRECORDED - 2);
        assert!(!left.contains(&b"{\"n\":3}\n".to_vec()) && !left.contains(&b"{\"n\":5}\n".to_vec()));
        assert!(writes.unrecorded(Path::new("/s/other.jsonl")).is_empty());
    }
}
