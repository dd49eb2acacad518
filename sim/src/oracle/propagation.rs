//! I15, the caller's other half: an I/O error that struck one of an acquire's own calls, and
//! that SPEC §1 does not say to retry, reaches the caller (§1 step 4: "other I/O errors
//! propagate"). A lock that reads an EIO of its reclaim guard's `mkdir` as "another reclaimer
//! has it", or of its publishing rename as "a lock is there", waits and retries where it must
//! fail; behind a failing disk it then spends whole budgets, and the caller never learns why.
//!
//! Facts: the errno the world injected into a call of the process (`SimFs`), the path the
//! call named, and how the acquire ended. The calls judged are those whose every errno but the
//! ones §1 handles (EEXIST: contention; EINVAL, ENOSYS, EPERM, EOPNOTSUPP: a filesystem
//! without the call) is the acquire's to return: the guard's `mkdir`, the exclusive create of
//! the lock's private name, and the `rename`/`link`/`exchange` that put a lock at the lock
//! path; and the payload write and `fstat` on the descriptor of a lock the acquire made (no
//! path: charged to the process's one acquire under way). The injected errnos (EIO, EMFILE, ENOSPC, EAGAIN, EINTR, EACCES) are none of those.
//! A hang is not judged: it ends when healing lets it, not with a known answer.
//!
//! Four exemptions keep it exact:
//! - a strike is charged to an acquire only when it is the one acquire of that process on
//!   that lock under way (two overlapping attempts of a process may each be the caller);
//! - never once an acquire of that process on that lock was abandoned (answered with a
//!   timeout at its budget plus the overrun while its loop, hung or slow, goes on in a task of
//!   its own: its calls have no caller), for the rest of the process's life;
//! - an acquire that moved a lock aside (the reclaim where the filesystem cannot exchange) is
//!   not judged: when what it moved aside turns out not to be the lock it judged, it puts that
//!   back and waits, and the failed publish has no caller to reach. The put back itself (a
//!   `link` or `rename` from the private name it moved the lock to) is judged: its error is
//!   the acquire's to return;
//! - a timeout the acquire's timer gave, or one after a hang of the process, is not judged:
//!   the error's cleanup (dropping the private name) may be slow or hang, and the timer then
//!   answers the caller first (swarm seeds 3069, 50203).

use std::collections::BTreeMap;
use std::path::Path;

use heldlock_core::event::Refusal;

use super::records::AcquireRec;
use super::{InvariantId, Oracle, ProcFacts};

/// A call that names `lock` or a name derived from it (`<lock>.reclaim`, a private name
/// `<lock>.<…>`).
fn names_lock(path: &Path, lock: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (path, lock) = (path.as_os_str().as_bytes(), lock.as_os_str().as_bytes());
    path == lock || (path.starts_with(lock) && path.get(lock.len()) == Some(&b'.'))
}

/// Whether a timeout at `now` came from the acquire's timer (at its budget plus
/// `ACQUIRE_OVERRUN_MS`) rather than from its loop.
fn answered_by_timer(now: u64, rec: &AcquireRec) -> bool {
    super::ms(now - rec.started_ns) >= rec.timeout_ms + heldlock_core::file_lock::ACQUIRE_OVERRUN_MS
}

impl Oracle {
    /// The world injected `errno` into a call of `pid` naming `path`, one whose errors SPEC §1
    /// step 4 propagates: charged to the acquire under way on that lock, if it is the only one.
    pub fn propagated_call_failed(&mut self, pid: u32, path: &Path, errno: i32) {
        if self.abandoned.iter().any(|(p, lock)| *p == pid && names_lock(path, lock)) {
            return;
        }
        let mut under_way =
            self.acquires.iter_mut().filter(|((p, _), rec)| *p == pid && names_lock(path, &rec.lock));
        if let (Some((_, rec)), None) = (under_way.next(), under_way.next()) {
            rec.owed_error.get_or_insert((errno, path.to_owned()));
        }
    }

    /// The world injected `errno` into a call of `pid` on a lock file's descriptor: charged
    /// to the process's one acquire under way (on any lock: a descriptor names none), and
    /// never once an acquire of the process was abandoned (its loop may still be writing).
    pub fn descriptor_call_failed(&mut self, pid: u32, errno: i32) {
        if self.abandoned.iter().any(|(p, _)| *p == pid) {
            return;
        }
        let mut under_way = self.acquires.iter_mut().filter(|((p, _), _)| *p == pid);
        if let (Some((_, rec)), None) = (under_way.next(), under_way.next()) {
            let what = format!("{} (the descriptor of a lock it made)", rec.lock.display());
            rec.owed_error.get_or_insert((errno, what.into()));
        }
    }

    /// `pid` moved the lock at `lock` aside to `aside` (`rename` off the lock path): its
    /// acquires there are not judged, but for the put back (module doc).
    pub fn moved_aside(&mut self, pid: u32, lock: &Path, aside: &Path) {
        for ((p, _), rec) in self.acquires.iter_mut() {
            if *p == pid && rec.lock == lock {
                rec.moved_aside = Some(aside.to_owned());
            }
        }
    }

    /// The world injected `errno` into `pid`'s call that puts back (to the lock path) what
    /// it had moved aside to `from`: the acquire that moved it owes that error its caller.
    pub fn put_back_failed(&mut self, pid: u32, from: &Path, errno: i32) {
        for ((p, _), rec) in self.acquires.iter_mut() {
            if *p == pid && rec.moved_aside.as_deref() == Some(from) {
                rec.owed_put_back.get_or_insert((errno, rec.lock.clone()));
            }
        }
    }

    /// An acquire of `pid` on `lock` that began at `started_ns` with a budget of `timeout_ms`
    /// failed with a timeout at `now`. At the budget plus `ACQUIRE_OVERRUN_MS` or later, its
    /// caller was answered without its loop, which goes on in a task of its own, making calls
    /// no caller waits for: from then on no strike of `pid` on that lock is charged.
    pub(super) fn note_abandoned(&mut self, pid: u32, now: u64, rec: &AcquireRec) {
        if answered_by_timer(now, rec) {
            self.abandoned.insert((pid, rec.lock.clone()));
        }
    }

    /// An acquire ended `Ok` (`refusal` None) or refused: an injected error it owes its caller
    /// must have ended it as an I/O error (module doc: the exemptions).
    pub(super) fn check_propagated(
        &mut self,
        pid: u32,
        now: u64,
        rec: &AcquireRec,
        refusal: Option<Refusal<'_>>,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let owed = rec.owed_error.as_ref().filter(|_| rec.moved_aside.is_none());
        let Some((errno, path)) = rec.owed_put_back.as_ref().or(owed) else {
            return;
        };
        let timed_out_excused =
            procs.get(&pid).is_some_and(|f| f.hung_since(rec.started_ns)) || answered_by_timer(now, rec);
        let ended = match refusal {
            Some(Refusal::Io(_)) => return,
            Some(Refusal::Timeout) if timed_out_excused => return,
            Some(other) => format!("failed with {}", other.name()),
            None => "took the lock".to_owned(),
        };
        let detail = format!(
            "availability: the world failed p{pid}'s call on {} with {} during an acquire, which then {ended}: SPEC §1 \
             step 4 propagates that error, it is not contention",
            path.display(),
            heldlock_core::platform::errno::name(*errno),
        );
        self.violate(now, InvariantId::I15, Some(pid), Some(&rec.lock), detail);
    }
}

#[cfg(test)]
mod tests {
    use heldlock_core::event::LockEvent;
    use heldlock_core::platform::errno;

    use super::*;

    const LOCK: &str = "/s/t.jsonl.lock";

    /// A lock other than `LOCK`, for a second acquire of one process.
    const OTHER: &str = "/s/u.jsonl.lock";

    fn start(o: &mut Oracle, pid: u32, acquire: u64) {
        start_on(o, (pid, 0), acquire, LOCK);
    }

    /// Acquire `acquire` of `pid` on `lock` starts at `at`.
    fn start_on(o: &mut Oracle, (pid, at): (u32, u64), acquire: u64, lock: &str) {
        let ev = LockEvent::AcquireStart {
            acquire,
            timeout_ms: 60_000,
            lock: Path::new(lock),
        };
        o.on_lock_event(pid, at, &ev, &BTreeMap::new());
    }

    /// Acquire `acquire` of `LOCK` refused with `refusal`.
    fn failed(acquire: u64, refusal: Refusal<'_>) -> LockEvent<'_> {
        failed_on(acquire, LOCK, refusal)
    }

    fn failed_on<'a>(acquire: u64, lock: &'a str, refusal: Refusal<'a>) -> LockEvent<'a> {
        LockEvent::AcquireFailed {
            acquire,
            lock: Path::new(lock),
            refusal,
            error: "refused".into(),
        }
    }

    fn fail(o: &mut Oracle, pid: u32, acquire: u64, refusal: Refusal<'_>) {
        o.on_lock_event(pid, 10, &failed(acquire, refusal), &BTreeMap::new());
    }

    /// This module's findings (a refusal 10 ns into an acquire draws the timeout checks' too).
    fn flagged(o: &Oracle) -> Vec<&crate::report::Violation> {
        o.violations.iter().filter(|v| v.detail.contains("step 4")).collect()
    }

    #[test]
    fn names_of_a_lock_are_it_and_names_derived_from_it() {
        let lock = Path::new(LOCK);
        assert!(names_lock(Path::new(LOCK), lock));
        assert!(names_lock(Path::new("/s/t.jsonl.lock.reclaim"), lock));
        assert!(names_lock(Path::new("/s/t.jsonl.lock.7-3.swap"), lock));
        assert!(!names_lock(Path::new("/s/t.jsonl.locks"), lock), "another name sharing a prefix");
        assert!(!names_lock(Path::new("/s/t.jsonl"), lock));
    }

    /// cargo-mutants: a guard's `mkdir` error read as contention (`file_lock.rs` `take_guard`).
    #[test]
    fn an_injected_error_the_acquire_did_not_return_is_flagged() {
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        o.propagated_call_failed(7, Path::new("/s/t.jsonl.lock.reclaim"), errno::EIO);
        o.propagated_call_failed(8, Path::new("/s/t.jsonl.lock.reclaim"), errno::EIO);
        fail(&mut o, 7, 1, Refusal::Timeout);
        let found = flagged(&o);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].invariant, InvariantId::I15);
        assert!(found[0].detail.contains("EIO"), "{}", found[0].detail);

        start(&mut o, 7, 2);
        o.propagated_call_failed(7, Path::new("/s/t.jsonl.lock.7-1.swap"), errno::EMFILE);
        fail(&mut o, 7, 2, Refusal::Io(Some(errno::EMFILE)));
        assert_eq!(flagged(&o).len(), 1, "returned as an I/O error");

        start(&mut o, 8, 3);
        fail(&mut o, 8, 3, Refusal::Timeout);
        assert_eq!(flagged(&o).len(), 1, "p8's strike was charged to no acquire: none was under way");
    }

    #[test]
    fn overlapping_acquires_and_moves_aside_are_not_judged() {
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        start(&mut o, 7, 2);
        o.propagated_call_failed(7, Path::new(LOCK), errno::EIO);
        fail(&mut o, 7, 1, Refusal::Timeout);
        fail(&mut o, 7, 2, Refusal::Timeout);
        assert!(flagged(&o).is_empty(), "either acquire may have been the caller");

        start(&mut o, 7, 3);
        o.propagated_call_failed(7, Path::new(LOCK), errno::EIO);
        o.moved_aside(7, Path::new(LOCK), Path::new("/s/t.jsonl.lock.7-4.swap"));
        fail(&mut o, 7, 3, Refusal::Timeout);
        assert!(flagged(&o).is_empty(), "a put that failed after a move aside");
    }

    /// cargo-mutants: `file_lock.rs:836` EEXIST guard `→ true` (`move_aside` swallows any error
    /// of its `link` back): a failed put back of what a reclaim moved aside is owed its caller
    /// (SPEC §1 step 4), though the failed put before it is not.
    #[test]
    fn a_failed_put_back_after_a_move_aside_is_owed() {
        let aside = Path::new("/s/t.jsonl.lock.7-4.swap");
        let spare = Path::new("/s/t.jsonl.lock.7-5.swap");
        let run = |put_back: Option<&Path>, refusal: Option<Refusal<'static>>| {
            let mut o = Oracle::default();
            start(&mut o, 7, 1);
            o.moved_aside(7, Path::new(LOCK), aside);
            o.propagated_call_failed(7, Path::new(LOCK), errno::EIO); // the put
            o.put_back_failed(7, spare, errno::EIO); // the put itself, from our spare
            if let Some(from) = put_back {
                o.put_back_failed(7, from, errno::EIO);
            }
            match refusal {
                Some(r) => fail(&mut o, 7, 1, r),
                None => {
                    let ev = LockEvent::Acquired {
                        acquire: 1,
                        handle: heldlock_core::event::HandleId(3),
                        lock: Path::new(LOCK),
                        ino: 9,
                        max_hold_ms: 300_000,
                    };
                    o.on_lock_event(7, 10, &ev, &BTreeMap::new());
                }
            }
            flagged(&o).len()
        };
        assert_eq!(run(None, Some(Refusal::Timeout)), 0, "only the put failed: it waits on");
        assert_eq!(run(Some(aside), Some(Refusal::Timeout)), 1, "the put back failed, then a timeout");
        assert_eq!(run(Some(aside), None), 1, "the put back failed, then it took the lock");
        assert_eq!(run(Some(aside), Some(Refusal::Io(Some(errno::EIO)))), 0, "it returned the error");
    }

    /// Swarm seed 6160: a plugin's acquire (budget 10 s) was answered at 10.5 s while its loop
    /// ran on; that loop's guard `mkdir` then failed, during the turn's acquire of the lock.
    #[test]
    fn an_abandoned_acquire_s_calls_are_charged_to_no_one() {
        let timed_out = |acquire| failed(acquire, Refusal::Timeout);
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        o.on_lock_event(7, 60_499_000_000, &timed_out(1), &BTreeMap::new());
        start(&mut o, 7, 2);
        o.propagated_call_failed(7, Path::new("/s/t.jsonl.lock.reclaim"), errno::EIO);
        fail(&mut o, 7, 2, Refusal::Timeout);
        assert_eq!(flagged(&o).len(), 1, "timed out by its loop, before the overrun: not abandoned");

        start(&mut o, 7, 3);
        o.on_lock_event(7, 60_500_000_000, &timed_out(3), &BTreeMap::new());
        start(&mut o, 7, 4);
        o.propagated_call_failed(7, Path::new("/s/t.jsonl.lock.reclaim"), errno::EIO);
        fail(&mut o, 7, 4, Refusal::Timeout);
        assert_eq!(flagged(&o).len(), 1, "abandoned: its loop may have made the call");

        start(&mut o, 8, 5);
        o.propagated_call_failed(8, Path::new(LOCK), errno::EACCES);
        o.on_lock_event(8, 60_500_000_000, &timed_out(5), &BTreeMap::new());
        assert_eq!(flagged(&o).len(), 1, "the timer answered while the error's cleanup was slow");
    }

    /// cargo-mutants: `abandon_create`'s `&&→||` retried a failed payload write of a lock
    /// made in place instead of surfacing it.
    #[test]
    fn a_descriptor_call_s_error_is_charged_to_the_one_acquire_of_its_process() {
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        o.descriptor_call_failed(7, errno::ENOSPC);
        o.descriptor_call_failed(8, errno::EIO);
        fail(&mut o, 7, 1, Refusal::Timeout);
        let found = flagged(&o);
        assert_eq!(found.len(), 1);
        assert!(found[0].detail.contains("ENOSPC") && found[0].detail.contains("descriptor"));

        start(&mut o, 7, 2);
        o.descriptor_call_failed(7, errno::EIO);
        fail(&mut o, 7, 2, Refusal::Io(Some(errno::EIO)));
        assert_eq!(flagged(&o).len(), 1, "returned as an I/O error");

        // Two acquires of p7 under way, on two locks: a descriptor names neither.
        start(&mut o, 7, 3);
        start_on(&mut o, (7, 0), 4, OTHER);
        o.descriptor_call_failed(7, errno::EIO);
        fail(&mut o, 7, 3, Refusal::Timeout);
        assert_eq!(flagged(&o).len(), 1, "either acquire may have made the call");
    }

    #[test]
    fn a_descriptor_call_after_an_abandoned_acquire_is_charged_to_no_one() {
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        o.on_lock_event(7, 60_500_000_000, &failed(1, Refusal::Timeout), &BTreeMap::new());
        start_on(&mut o, (7, 60_600_000_000), 2, OTHER);
        o.descriptor_call_failed(7, errno::EIO);
        let refused = failed_on(2, OTHER, Refusal::Timeout);
        o.on_lock_event(7, 60_600_000_010, &refused, &BTreeMap::new());
        assert!(flagged(&o).is_empty(), "the abandoned acquire's loop may have written");
    }

    #[test]
    fn a_hang_after_the_error_excuses_a_timeout() {
        let mut o = Oracle::default();
        start(&mut o, 7, 1);
        o.propagated_call_failed(7, Path::new(LOCK), errno::EIO);
        let hung = ProcFacts {
            alive: true,
            hung_ops: 1,
            ..ProcFacts::default()
        };
        let ev = failed(1, Refusal::Timeout);
        o.on_lock_event(7, 10, &ev, &BTreeMap::from([(7, hung)]));
        assert!(flagged(&o).is_empty(), "its cleanup hung and the budget ended it");
    }
}
