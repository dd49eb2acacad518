//! Litter: what a reclaimer leaves behind. The file system sees a process take a reclaim guard
//! (`mkdir <lock>.reclaim`) and swap a judged lock out to its private name (`exchange`); from
//! then on that process owes the removal (an `rmdir` of the guard; an `unlink` of the swapped-out
//! lock, or the exchange that puts it back). SPEC §1 step 3 ends every reclaim with the guard
//! dropped and the judged lock gone: a guard a live reclaimer keeps blocks every acquirer of the
//! path until the orphan grace ages it out, and a judged lock kept at a private name is junk no
//! one else may remove. The facts are the file system's record of the calls each process
//! issued, never the lock's own account.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heldlock_core::file_lock::{LockOptions, ACQUIRE_OVERRUN_MS};

use crate::oracle::{InvariantId, ProcFacts};
use crate::report::Violation;

/// Room for a reclaim's last calls past its acquire's budget (they are checked between calls).
const LITTER_SLACK_MS: u64 = 5_000;

/// What a removal is owed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owed {
    /// A reclaim guard it made.
    Guard,
    /// A judged lock it swapped out to its private name.
    SwappedOut,
}

#[derive(Clone, Debug)]
struct Debt {
    pid: u32,
    what: Owed,
    since_ns: u64,
    /// The process's `ProcFacts::stalled_ms` then: its fs latency and slow ops extend the bound.
    stalled_ms: u64,
}

/// Removals owed, by path (a guard path, a private name).
#[derive(Default)]
pub struct Litter {
    owed: BTreeMap<PathBuf, Debt>,
}

impl Litter {
    /// `pid` made `path` (`what`) at `now`: it owes its removal.
    pub fn made(&mut self, pid: u32, path: &Path, what: Owed, now: u64, facts: Option<&ProcFacts>) {
        let stalled_ms = facts.map_or(0, |f| f.stalled_ms);
        self.owed.insert(
            path.to_owned(),
            Debt {
                pid,
                what,
                since_ns: now,
                stalled_ms,
            },
        );
    }

    /// `pid` issued a call that removes or moves `path` (whether or not it succeeds: a failed
    /// or hung removal is the file system's doing, and the core's part is to issue it).
    pub fn issued(&mut self, pid: u32, path: &Path) {
        if self.owed.get(path).is_some_and(|d| d.pid == pid) {
            self.owed.remove(path);
        }
    }

    /// A dead process owes nothing: its litter is the orphan grace's to clear.
    pub fn process_died(&mut self, pid: u32) {
        self.owed.retain(|_, d| d.pid != pid);
    }

    /// Every removal owed longer than an acquire can last, by a process that ran freely (not
    /// paused, no op hung) since it began owing it, is a violation (I15); each is reported once.
    pub fn check_time(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>, out: &mut Vec<Violation>) {
        let budget_ms = LockOptions::default().timeout_ms + ACQUIRE_OVERRUN_MS + LITTER_SLACK_MS;
        let mut late = Vec::new();
        for (path, debt) in &self.owed {
            let Some(facts) = procs.get(&debt.pid) else {
                continue;
            };
            let Some(since) = facts.unexcused_since(debt.since_ns) else {
                continue;
            };
            let bound_ms = budget_ms + facts.stalled_ms.saturating_sub(debt.stalled_ms);
            if now.saturating_sub(since) > bound_ms * 1_000_000 {
                late.push(path.clone());
            }
        }
        for path in late {
            let debt = self.owed.remove(&path).expect("listed above");
            let what = match debt.what {
                Owed::Guard => "its reclaim guard",
                Owed::SwappedOut => "the judged lock it swapped out to its private name",
            };
            out.push(Violation {
                invariant: InvariantId::I15,
                detail: format!(
                    "availability: p{} left {what} at {} for {} ms without issuing its removal, running freely",
                    debt.pid,
                    path.display(),
                    now.saturating_sub(debt.since_ns) / 1_000_000
                ),
                pid: Some(debt.pid),
                lock: Some(path),
                at_ns: now,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn running() -> BTreeMap<u32, ProcFacts> {
        let facts = ProcFacts {
            alive: true,
            ..ProcFacts::default()
        };
        BTreeMap::from([(7, facts)])
    }

    #[test]
    fn a_guard_kept_past_an_acquire_is_litter_and_an_issued_removal_is_not() {
        let procs = running();
        let mut litter = Litter::default();
        let guard = Path::new("/s/a.jsonl.lock.reclaim");
        litter.made(7, guard, Owed::Guard, 0, procs.get(&7));
        let mut out = Vec::new();
        litter.check_time(60 * S, &procs, &mut out);
        assert!(out.is_empty(), "within an acquire's budget");
        litter.check_time(70 * S, &procs, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].invariant, InvariantId::I15);
        assert!(out[0].detail.contains("reclaim guard"), "{}", out[0].detail);
        litter.check_time(200 * S, &procs, &mut out);
        assert_eq!(out.len(), 1, "reported once");

        let private = Path::new("/s/a.jsonl.lock.7-3.swap");
        litter.made(7, private, Owed::SwappedOut, 0, procs.get(&7));
        litter.issued(8, private);
        litter.check_time(70 * S, &procs, &mut out);
        assert_eq!(out.len(), 2, "another process's call pays nothing");
        litter.made(7, private, Owed::SwappedOut, 0, procs.get(&7));
        litter.issued(7, private);
        litter.check_time(70 * S, &procs, &mut out);
        assert_eq!(out.len(), 2, "its own removal pays");
    }

    /// A guard removed by another process after the orphan grace and made again by it is the
    /// new maker's debt: the first maker's late `rmdir` neither pays it nor is flagged.
    #[test]
    fn a_guard_made_again_by_another_process_is_its_debt() {
        let mut procs = running();
        procs.insert(8, procs[&7]);
        let mut litter = Litter::default();
        let guard = Path::new("/s/a.jsonl.lock.reclaim");
        litter.made(7, guard, Owed::Guard, 0, procs.get(&7));
        litter.made(8, guard, Owed::Guard, S, procs.get(&8));
        litter.issued(7, guard);
        let mut out = Vec::new();
        litter.check_time(70 * S, &procs, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].pid, Some(8));
    }

    #[test]
    fn a_paused_hung_stalled_or_dead_process_is_excused() {
        let guard = Path::new("/s/a.jsonl.lock.reclaim");
        let check = |facts: ProcFacts| {
            let procs = BTreeMap::from([(7, facts)]);
            let mut litter = Litter::default();
            litter.made(7, guard, Owed::Guard, 0, None);
            let mut out = Vec::new();
            litter.check_time(70 * S, &procs, &mut out);
            out.len()
        };
        let alive = ProcFacts {
            alive: true,
            ..ProcFacts::default()
        };
        assert_eq!(check(alive), 1);
        assert_eq!(
            check(ProcFacts {
                paused_since_ns: Some(S),
                ..alive
            }),
            0
        );
        assert_eq!(check(ProcFacts { hung_ops: 1, ..alive }), 0);
        assert_eq!(
            check(ProcFacts {
                last_resume_ns: Some(20 * S),
                ..alive
            }),
            0,
            "the bound restarts"
        );
        assert_eq!(
            check(ProcFacts {
                stalled_ms: 30_000,
                ..alive
            }),
            0,
            "its stalls extend the bound"
        );
        assert_eq!(
            check(ProcFacts {
                alive: false,
                ..alive
            }),
            0
        );
        let mut litter = Litter::default();
        litter.made(7, guard, Owed::Guard, 0, None);
        litter.process_died(7);
        let mut out = Vec::new();
        litter.check_time(70 * S, &running(), &mut out);
        assert!(out.is_empty());
    }
}
