//! The independent witness of the real chaos run: one file every contender and the chaos loop
//! append to with `O_APPEND` (one `write` per line, so lines never tear or interleave and the
//! file's order is the order of the writes), checked after the run. It trusts nothing the
//! lock says, with one exception used only to excuse: `LOST` (the watchdog took a lock), after
//! which that holder must not write.
//!
//! Lines: `<wall ms> <KIND> <fields…>`:
//! `ENTER s w r` / `EXIT s w r` (a critical section: acquire returned … release begins),
//! `TRY s w r` / `ACK s w r` / `WFAIL s w r errno` (the transcript append and its result),
//! `REFUSED s w kind`, `RELFAIL s w r errno`, `LOST s w`, `RECLAIM s w reasons` (statistics),
//! `CHAOS what s|w …` (what the chaos loop did; `CHAOS end` closes the chaos window).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An open witness file: one `write` per line.
pub struct Witness {
    file: File,
}

impl Witness {
    pub fn open(path: &Path) -> io::Result<Witness> {
        Ok(Witness {
            file: OpenOptions::new().append(true).create(true).open(path)?,
        })
    }

    /// Append one line. Errors are returned: a witness that cannot write ends the run.
    pub fn line(&self, text: &str) -> io::Result<()> {
        let line = format!("{} {text}\n", wall_ms());
        let written = (&self.file).write(line.as_bytes())?;
        if written != line.len() {
            return Err(io::Error::other("a short write to the witness file"));
        }
        Ok(())
    }
}

/// One parsed witness line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub at_ms: i64,
    pub kind: String,
    pub fields: Vec<String>,
}

pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let mut words = raw.split(' ');
        let at_ms = words.next().and_then(|w| w.parse().ok());
        let kind = words.next();
        match (at_ms, kind) {
            (Some(at_ms), Some(kind)) => lines.push(Line {
                at_ms,
                kind: kind.to_owned(),
                fields: words.map(str::to_owned).collect(),
            }),
            _ => return Err(format!("witness line {}: malformed {raw:?}", n + 1)),
        }
    }
    Ok(lines)
}

/// A write's identity: `(session, worker, round)`.
pub type WriteId = (String, String, String);

fn id(line: &Line) -> Option<WriteId> {
    match line.fields.as_slice() {
        [s, w, r, ..] => Some((s.clone(), w.clone(), r.clone())),
        _ => None,
    }
}

/// Who is inside one session's critical section, and whether chaos excused them.
#[derive(Default)]
struct Inside {
    /// worker ⇒ excused (chaos removed or replaced the lock under it, it is being killed, or
    /// the watchdog took its lock).
    holders: BTreeMap<String, bool>,
    /// Between `CHAOS lock-…` and `CHAOS lock-done`: whoever enters may lose the lock to it.
    chaos_open: bool,
}

/// Exclusion: no one enters a session while someone else is inside with an intact lock; a
/// holder whose lock the watchdog took writes nothing more. Returns the violations.
///
/// The chaos writes a marker before and after each act on a lock (`lock-delete`/`lock-replace`
/// … `lock-done`) and each kill (`kill` … `killed`): whoever is inside the session when the act
/// begins, or enters before it is done, is excused; so is a worker being killed. The excuse is
/// that window and nothing more.
pub fn check_exclusion(lines: &[Line]) -> Vec<String> {
    let mut inside: BTreeMap<String, Inside> = BTreeMap::new();
    let mut lost: BTreeSet<(String, String)> = BTreeSet::new();
    let mut doomed: BTreeSet<String> = BTreeSet::new();
    let mut violations = Vec::new();
    for line in lines {
        let f = &line.fields;
        match (line.kind.as_str(), f.as_slice()) {
            ("ENTER", [s, w, r]) => {
                let here = inside.entry(s.clone()).or_default();
                let blocking: Vec<&String> =
                    here.holders.iter().filter(|(_, ex)| !**ex).map(|(w, _)| w).collect();
                if !blocking.is_empty() {
                    violations.push(format!(
                        "exclusion: {w} entered {s} (round {r}) at {} while {blocking:?} held its lock",
                        line.at_ms
                    ));
                }
                here.holders.insert(w.clone(), here.chaos_open || doomed.contains(w));
                lost.remove(&(s.clone(), w.clone()));
            }
            ("EXIT", [s, w, _]) => {
                inside.entry(s.clone()).or_default().holders.remove(w);
            }
            ("TRY", [s, w, r]) if lost.contains(&(s.clone(), w.clone())) => {
                violations.push(format!("{w} wrote {s} (round {r}) after the watchdog took its lock"));
            }
            ("LOST", [s, w]) => {
                if let Some(ex) = inside.entry(s.clone()).or_default().holders.get_mut(w) {
                    *ex = true;
                }
                lost.insert((s.clone(), w.clone()));
            }
            ("CHAOS", [what, s, ..]) if what == "lock-done" => {
                inside.entry(s.clone()).or_default().chaos_open = false
            }
            ("CHAOS", [what, s, ..]) if what.starts_with("lock-") => {
                let here = inside.entry(s.clone()).or_default();
                here.chaos_open = true;
                for ex in here.holders.values_mut() {
                    *ex = true;
                }
            }
            ("CHAOS", [what, w, ..]) if what == "kill" => {
                doomed.insert(w.clone());
                for here in inside.values_mut() {
                    if let Some(ex) = here.holders.get_mut(w) {
                        *ex = true;
                    }
                }
            }
            ("CHAOS", [what, w, ..]) if what == "killed" => {
                for here in inside.values_mut() {
                    here.holders.remove(w);
                }
            }
            _ => {}
        }
    }
    violations
}

/// Exactly once: every acknowledged write is in its session's files (the transcript and what
/// the chaos moved away) exactly once, whole; no write is there twice; nothing is there that
/// no contender tried to write (or the chaos wrote). `files`: session ⇒ contents.
pub fn check_writes(lines: &[Line], files: &BTreeMap<String, Vec<Vec<u8>>>) -> Vec<String> {
    let mut tried = BTreeSet::new();
    let mut acked = BTreeSet::new();
    for line in lines {
        match line.kind.as_str() {
            "TRY" => tried.extend(id(line)),
            "ACK" => acked.extend(id(line)),
            _ => {}
        }
    }
    let mut violations = Vec::new();
    let mut found: BTreeMap<WriteId, usize> = BTreeMap::new();
    for (session, contents) in files {
        for content in contents {
            if !content.is_empty() && !content.ends_with(b"\n") {
                violations.push(format!("{session}: a file ends in a torn line"));
            }
            for raw in content.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let text = String::from_utf8_lossy(raw);
                if text.starts_with("chaos ") {
                    continue;
                }
                match text.split_once(' ') {
                    Some((w, r)) if !r.contains(' ') => {
                        let write = (session.clone(), w.to_owned(), r.to_owned());
                        if !tried.contains(&write) {
                            violations.push(format!("{session}: {text:?} on disk but no one wrote it"));
                        }
                        *found.entry(write).or_default() += 1;
                    }
                    _ => violations.push(format!("{session}: a line no one wrote: {text:?}")),
                }
            }
        }
    }
    for (write, count) in &found {
        if *count > 1 {
            violations.push(format!("{write:?} is on disk {count} times"));
        }
    }
    for write in &acked {
        if !found.contains_key(write) {
            violations.push(format!("{write:?} was acknowledged and is not on disk"));
        }
    }
    violations
}

/// For each session, the first acknowledged write after the chaos ended, in ms after the end;
/// `None` for a session no one wrote again.
pub fn recovery_ms(lines: &[Line], sessions: &[String]) -> BTreeMap<String, Option<i64>> {
    let end = lines
        .iter()
        .position(|l| l.kind == "CHAOS" && l.fields.first().map(String::as_str) == Some("end"));
    let mut out: BTreeMap<String, Option<i64>> = sessions.iter().map(|s| (s.clone(), None)).collect();
    let Some(end) = end else { return out };
    let end_ms = lines[end].at_ms;
    for line in &lines[end..] {
        if line.kind == "ACK" {
            if let Some(slot) = line.fields.first().and_then(|s| out.get_mut(s)) {
                slot.get_or_insert((line.at_ms - end_ms).max(0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Line> {
        parse(text).unwrap()
    }

    #[test]
    fn overlaps_are_violations_unless_chaos_broke_the_lock() {
        let overlap = "1 ENTER s0 a 0\n2 ENTER s0 b 0\n3 EXIT s0 a 0\n";
        assert_eq!(check_exclusion(&lines(overlap)).len(), 1);
        let excused = "1 ENTER s0 a 0\n2 CHAOS lock-delete s0\n3 ENTER s0 b 0\n4 CHAOS lock-done s0\n\
                       5 ENTER s0 c 0\n6 ENTER s0 d 0\n";
        let found = check_exclusion(&lines(excused));
        assert_eq!(found.len(), 1, "c's lock was intact when d entered: {found:?}");
        let killed = "1 ENTER s1 a 0\n2 CHAOS kill a\n3 ENTER s1 b 0\n4 CHAOS killed a 99\n5 ENTER s1 c 0\n";
        let found = check_exclusion(&lines(killed));
        assert_eq!(found.len(), 1, "only c's entry over b is a violation: {found:?}");
        let lost_then_write = "1 ENTER s0 a 0\n2 LOST s0 a\n3 ENTER s0 b 0\n4 TRY s0 a 0\n";
        assert_eq!(check_exclusion(&lines(lost_then_write)).len(), 1);
    }

    #[test]
    fn writes_must_be_on_disk_once_and_only_if_tried() {
        let log = lines("1 TRY s0 a 0\n2 ACK s0 a 0\n3 TRY s0 b 0\n4 ACK s0 b 0\n5 TRY s0 c 0\n");
        let files = |parts: &[&str]| {
            BTreeMap::from([("s0".to_string(), parts.iter().map(|p| p.as_bytes().to_vec()).collect())])
        };
        assert!(check_writes(&log, &files(&["a 0\nchaos 1\n", "b 0\nc 0\n"])).is_empty());
        assert_eq!(check_writes(&log, &files(&["a 0\n"])).len(), 1, "b 0 lost");
        assert_eq!(check_writes(&log, &files(&["a 0\nb 0\na 0\n"])).len(), 1, "a 0 twice");
        assert_eq!(check_writes(&log, &files(&["a 0\nb 0\nz 9\n"])).len(), 1, "z 9 never tried");
        assert_eq!(check_writes(&log, &files(&["a 0\nb 0\nc"])).len(), 2, "torn");
    }

    #[test]
    fn recovery_counts_from_the_end_of_the_chaos() {
        let log = lines("5 ACK s0 a 0\n10 CHAOS end\n40 ACK s1 a 1\n70 ACK s0 b 1\n");
        let got = recovery_ms(&log, &["s0".into(), "s1".into(), "s2".into()]);
        assert_eq!(got["s0"], Some(60));
        assert_eq!(got["s1"], Some(30));
        assert_eq!(got["s2"], None);
    }
}
