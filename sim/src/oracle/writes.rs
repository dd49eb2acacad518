//! I14 no lost writes, judged from what the callers were told: the workload records each
//! transcript write call and its result, external actors record what they wrote, and at
//! quiescence each transcript on disk must be exactly explained by those records — never by
//! the filesystem's own log of what it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{InvariantId, Oracle};

/// What a write call returned to its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Still running (or its process died mid-call): it may or may not have reached the disk.
    Pending,
    Ok,
    /// An error the caller saw: the write may be absent, or present once and whole.
    Err,
    /// The caller was told before the call that nothing would be written (a no-op cleanup
    /// lock of a poisoned controller).
    Declined,
}

/// One transcript write as its caller saw it.
#[derive(Clone, Debug)]
pub struct WriteCall {
    pub pid: u32,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Oracle sequence numbers of the call and of its return: "in order" means a write
    /// acknowledged before another was called lies before it on disk.
    pub called: u64,
    pub returned: Option<u64>,
    pub outcome: WriteOutcome,
}

/// What an external actor did to a transcript, by its own record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalEdit {
    /// Bytes appended at the end.
    Append(Vec<u8>),
    /// The whole content replaced (a rewrite, a delete and re-create, a copy over it).
    Replace(Vec<u8>),
}

/// The transcripts' history as written: the content each began with, and external edits.
#[derive(Default)]
pub(super) struct WriteLog {
    /// Transcript ⇒ (sequence number, edit); the initial content is a `Replace` at 0.
    pub edits: BTreeMap<PathBuf, Vec<(u64, ExternalEdit)>>,
    pub calls: Vec<WriteCall>,
    /// Transcript ⇒ the prefixes failed appends left behind (torn writes, reported by SimFs:
    /// the caller was told the write failed).
    pub torn: BTreeMap<PathBuf, Vec<Vec<u8>>>,
    pub seq: u64,
}

impl WriteLog {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

impl Oracle {
    pub fn transcript_created(&mut self, path: &Path, content: &[u8]) {
        let edits = self.writes.edits.entry(path.to_owned()).or_default();
        edits.push((0, ExternalEdit::Replace(content.to_vec())));
    }

    /// An external actor edited a transcript: its own record of what it wrote.
    pub fn external_edit(&mut self, path: &Path, edit: ExternalEdit) {
        let seq = self.writes.next();
        self.writes.edits.entry(path.to_owned()).or_default().push((seq, edit));
    }

    /// Whether a gateway's write call on `path` carried `bytes` (whatever it returned).
    pub fn gateway_wrote(&self, path: &Path, bytes: &[u8]) -> bool {
        self.writes.calls.iter().any(|c| c.path == path && c.bytes == bytes)
    }

    /// A failed append left `prefix` of its bytes at the end of `path`.
    pub(super) fn torn_fragment(&mut self, path: &Path, prefix: &[u8]) {
        self.writes.torn.entry(path.to_owned()).or_default().push(prefix.to_vec());
    }

    /// A caller issues a transcript write (`path` canonical); its id for `write_returned`.
    pub fn write_called(&mut self, pid: u32, path: &Path, bytes: &[u8], declined: bool) -> usize {
        let called = self.writes.next();
        self.writes.calls.push(WriteCall {
            pid,
            path: path.to_owned(),
            bytes: bytes.to_vec(),
            called,
            returned: declined.then_some(called),
            outcome: if declined {
                WriteOutcome::Declined
            } else {
                WriteOutcome::Pending
            },
        });
        self.writes.calls.len() - 1
    }

    /// The cleanup lock of `ctl` came back a no-op: SPEC §3 allows it only for a poisoned
    /// controller (takeover, failed acquire, lost lock); otherwise its writes are dropped (I14).
    pub fn cleanup_declined(&mut self, pid: u32, now: u64, ctl: heldlock_core::event::ControllerId) {
        let Some(c) = self.ctls.get(&(pid, ctl)) else {
            return;
        };
        if !c.poisoned {
            let detail = format!(
                "no lost writes: the cleanup lock of {ctl} is a no-op though {ctl} is not poisoned: \
                 its writes are dropped"
            );
            self.violate(now, InvariantId::I14, Some(pid), None, detail);
        }
    }

    /// The write call `id` returned to its caller.
    pub fn write_returned(&mut self, id: usize, ok: bool) {
        let returned = self.writes.next();
        if let Some(call) = self.writes.calls.get_mut(id) {
            call.returned = Some(returned);
            call.outcome = if ok { WriteOutcome::Ok } else { WriteOutcome::Err };
        }
    }

    /// Every transcript, as read from disk at quiescence, explained by the records (I14).
    pub(super) fn check_transcripts(&mut self, now: u64, read: impl Fn(&Path) -> Option<Vec<u8>>) {
        let paths: Vec<PathBuf> = self.writes.edits.keys().cloned().collect();
        for path in paths {
            let disk = read(&path).unwrap_or_default();
            for detail in transcript_findings(&self.writes, &path, &disk) {
                self.violate(now, InvariantId::I14, None, None, detail);
            }
        }
    }
}

/// Where each line of the transcript after its last whole replacement came from.
enum Origin {
    Call(usize),
    External,
}

/// The I14 findings for one transcript: empty when the disk is explained by the records.
fn transcript_findings(log: &WriteLog, path: &Path, disk: &[u8]) -> Vec<String> {
    let shown = path.display();
    let edits = log.edits.get(path).map(Vec::as_slice).unwrap_or_default();
    let Some((base_seq, base)) = edits.iter().rev().find_map(|(seq, e)| match e {
        ExternalEdit::Replace(bytes) => Some((*seq, bytes.as_slice())),
        ExternalEdit::Append(_) => None,
    }) else {
        return Vec::new();
    };
    let Some(rest) = disk.strip_prefix(base) else {
        return vec![format!(
            "no lost writes: {shown} does not begin with the content it was last given whole ({} bytes)",
            base.len()
        )];
    };
    let mut external: Vec<&[u8]> = edits
        .iter()
        .filter(|(seq, _)| *seq > base_seq)
        .filter_map(|(_, e)| match e {
            ExternalEdit::Append(bytes) => Some(bytes.as_slice()),
            ExternalEdit::Replace(_) => None,
        })
        .collect();
    let calls: Vec<(usize, &WriteCall)> =
        log.calls.iter().enumerate().filter(|(_, c)| c.path == path).collect();
    let mut torn: Vec<&[u8]> =
        log.torn.get(path).map(|t| t.iter().map(Vec::as_slice).collect()).unwrap_or_default();
    let mut findings = Vec::new();
    let mut origins: Vec<Origin> = Vec::new();
    for line in rest.split_inclusive(|b| *b == b'\n') {
        let whole = |l: &[u8]| calls.iter().any(|(_, c)| c.bytes == l) || external.contains(&l);
        // A failed append's torn prefix, glued to whatever was appended after it.
        let mut line = line;
        while !whole(line) {
            // The longest fitting prefix: one torn prefix may begin another.
            let fitting = (0..torn.len()).filter(|&k| line.starts_with(torn[k]));
            let Some(k) = fitting.max_by_key(|&k| torn[k].len()) else {
                break;
            };
            line = &line[torn.swap_remove(k).len()..];
        }
        if line.is_empty() {
            continue;
        }
        let call = calls.iter().find(|(_, c)| c.bytes == line).map(|&(i, _)| i);
        let seen = |i: usize| origins.iter().any(|o| matches!(o, Origin::Call(j) if *j == i));
        // A write's first copy is the write; a later one is an external replay of it when an
        // actor recorded that append (it copied a line already on disk), else a duplicate.
        let replay = external.iter().position(|e| *e == line).filter(|_| call.is_none_or(seen));
        if let Some(k) = replay {
            external.swap_remove(k);
            origins.push(Origin::External);
        } else if let Some(i) = call {
            origins.push(Origin::Call(i));
        } else {
            let torn = calls.iter().any(|(_, c)| c.bytes.starts_with(line));
            let what = if torn {
                "a torn write"
            } else {
                "bytes no one wrote"
            };
            findings.push(format!(
                "no lost writes: {shown} holds {what}: {:?}",
                String::from_utf8_lossy(line).trim_end()
            ));
        }
    }
    findings.extend(call_findings(&shown.to_string(), &calls, &origins, base_seq));
    findings
}

/// Each acknowledged write present once, in order; no write present twice.
fn call_findings(
    shown: &str,
    calls: &[(usize, &WriteCall)],
    origins: &[Origin],
    base_seq: u64,
) -> Vec<String> {
    let mut findings = Vec::new();
    let positions = |id: usize| -> Vec<usize> {
        (0..origins.len()).filter(|&p| matches!(origins[p], Origin::Call(i) if i == id)).collect()
    };
    let mut present: Vec<(usize, &WriteCall)> = Vec::new();
    for &(id, call) in calls {
        let at = positions(id);
        let text = String::from_utf8_lossy(&call.bytes);
        let text = text.trim_end();
        if at.len() > 1 {
            findings.push(format!(
                "no lost writes: {shown} holds p{}'s write {text} {} times",
                call.pid,
                at.len()
            ));
        }
        // A replacement after the call began may have erased it.
        let erasable = call.called < base_seq;
        if at.is_empty() && call.outcome == WriteOutcome::Ok && !erasable {
            findings.push(format!(
                "no lost writes: p{}'s write {text} returned Ok and is not in {shown}",
                call.pid
            ));
        }
        if call.outcome == WriteOutcome::Declined && !at.is_empty() {
            findings.push(format!(
                "no lost writes: p{}'s write {text} through a no-op lock is in {shown}",
                call.pid
            ));
        }
        if let Some(&p) = at.first() {
            present.push((p, call));
        }
    }
    present.sort_by_key(|(p, _)| *p);
    for (k, (_, later)) in present.iter().enumerate() {
        let earlier_on_disk = &present[..k];
        if let Some((_, first)) = earlier_on_disk
            .iter()
            .find(|(_, e)| later.outcome == WriteOutcome::Ok && later.returned.is_some_and(|r| r < e.called))
        {
            findings.push(format!(
                "no lost writes: in {shown}, {} lies after {}, though it was acknowledged before that write began",
                String::from_utf8_lossy(&later.bytes).trim_end(),
                String::from_utf8_lossy(&first.bytes).trim_end()
            ));
            break;
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "/srv/sessions/s0.jsonl";

    fn oracle_with(header: &[u8]) -> Oracle {
        let mut o = Oracle::default();
        o.transcript_created(Path::new(T), header);
        o
    }

    fn findings(o: &Oracle, disk: &[u8]) -> Vec<String> {
        transcript_findings(&o.writes, Path::new(T), disk)
    }

    fn write(o: &mut Oracle, bytes: &[u8], ok: bool) {
        let id = o.write_called(101, Path::new(T), bytes, false);
        o.write_returned(id, ok);
    }

    #[test]
    fn acknowledged_writes_present_once_in_order_pass() {
        let mut o = oracle_with(b"h\n");
        write(&mut o, b"a\n", true);
        write(&mut o, b"b\n", false);
        write(&mut o, b"c\n", true);
        assert!(findings(&o, b"h\na\nc\n").is_empty());
        assert!(findings(&o, b"h\na\nb\nc\n").is_empty(), "an errored write may be present, whole");
    }

    #[test]
    fn a_write_acknowledged_but_not_written_is_caught() {
        let mut o = oracle_with(b"h\n");
        write(&mut o, b"a\n", true);
        write(&mut o, b"c\n", true);
        let found = findings(&o, b"h\na\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("returned Ok and is not in"), "{found:?}");
        // End to end: the final check reports it as I14.
        o.check_transcripts(7, |_| Some(b"h\na\n".to_vec()));
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I14);
    }

    #[test]
    fn duplicates_torn_lines_strangers_and_reordering_are_caught() {
        let mut o = oracle_with(b"h\n");
        write(&mut o, b"a\n", true);
        write(&mut o, b"b\n", false);
        write(&mut o, b"c\n", true);
        let twice = findings(&o, b"h\na\na\nc\n");
        assert!(twice.iter().any(|f| f.contains("2 times")), "{twice:?}");
        let torn = findings(&o, b"h\na\nc");
        assert!(torn.iter().any(|f| f.contains("torn")), "{torn:?}");
        let stranger = findings(&o, b"h\na\nx\nc\n");
        assert!(stranger.iter().any(|f| f.contains("no one wrote")), "{stranger:?}");
        let reordered = findings(&o, b"h\nc\na\n");
        assert!(reordered.iter().any(|f| f.contains("lies after")), "{reordered:?}");
        let headless = findings(&o, b"a\nc\n");
        assert!(headless.iter().any(|f| f.contains("does not begin")), "{headless:?}");
    }

    #[test]
    fn external_edits_are_explained_by_the_external_record() {
        let mut o = oracle_with(b"h\n");
        write(&mut o, b"a\n", true);
        o.external_edit(Path::new(T), ExternalEdit::Append(b"u\n".to_vec()));
        write(&mut o, b"b\n", true);
        assert!(findings(&o, b"h\na\nu\nb\n").is_empty());
        assert!(!findings(&o, b"h\na\nu\nu\nb\n").is_empty(), "one external append, present twice");
        // A replay: an actor appended a copy of a write already on disk.
        o.external_edit(Path::new(T), ExternalEdit::Append(b"b\n".to_vec()));
        assert!(findings(&o, b"h\na\nu\nb\nb\n").is_empty(), "the second copy is the replay's");
        assert!(!findings(&o, b"h\na\nu\nb\nb\nb\n").is_empty(), "one replay, two copies more");
        // A rewrite erases what came before it; later acknowledged writes must follow it.
        o.external_edit(Path::new(T), ExternalEdit::Replace(b"r\n".to_vec()));
        write(&mut o, b"c\n", true);
        assert!(findings(&o, b"r\nc\n").is_empty());
        assert!(!findings(&o, b"r\n").is_empty());
        assert!(!findings(&o, b"h\na\nu\nb\nc\n").is_empty(), "the rewrite is not on disk");
    }

    #[test]
    fn a_failed_writes_torn_prefix_is_accounted_for() {
        let mut o = oracle_with(b"h\n");
        write(&mut o, b"abc\n", false);
        write(&mut o, b"abd\n", false);
        write(&mut o, b"c\n", true);
        o.torn_fragment(Path::new(T), b"a");
        o.torn_fragment(Path::new(T), b"ab");
        assert!(findings(&o, b"h\naabc\nc\n").is_empty(), "a torn prefix glued to the next line");
        assert!(findings(&o, b"h\nc\nab").is_empty(), "a torn prefix at the end");
        assert!(findings(&o, b"h\nababc\nc\n").is_empty(), "the longest fitting prefix first");
        assert!(!findings(&o, b"h\nc\nabc").is_empty(), "only what a failed write left is accounted for");
    }

    #[test]
    fn a_declined_write_must_be_absent() {
        let mut o = oracle_with(b"h\n");
        o.write_called(101, Path::new(T), b"a\n", true);
        assert!(findings(&o, b"h\n").is_empty());
        assert!(!findings(&o, b"h\na\n").is_empty());
    }

    /// A no-op cleanup lock that acknowledges the append the workload makes anyway has lost
    /// it (cargo-mutants: `CleanupLock::append`'s `self.silent` guard `→ true`).
    #[test]
    fn a_declined_write_that_then_returned_ok_must_be_present() {
        let mut o = oracle_with(b"h\n");
        let id = o.write_called(101, Path::new(T), b"a\n", true);
        o.write_returned(id, true);
        assert!(!findings(&o, b"h\n").is_empty());
        assert!(findings(&o, b"h\na\n").is_empty());
    }
}
