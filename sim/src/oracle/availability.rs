//! I15 availability: the lock refuses a caller only for a reason SPEC §1 allows, judged from
//! outside facts — what is on disk, the world's process table, the errors the world injected,
//! the oracle's own records — never from the core's verdict or its message text.
//!
//! - TimeoutError: a live, in-bounds holder (or something SPEC says to wait on: a fresh
//!   reclaim guard, a payload-less file inside the orphan grace, a pid the judge cannot place)
//!   blocked the lock over the budget. Sampled on every tick while the acquire runs: the time
//!   the lock stood free or held only by something recoverable must stay short.
//! - StaleError: the reasons it states must be report-only; whether the lock there now is
//!   stale by the acquirer's clock, and whether the world's process table says its holder is
//!   gone (so SPEC removes it), is the witness's check (`Witness::stale_failure`).
//! - An I/O error: only with an errno the world made one of the caller's own fs operations
//!   fail with during the acquire — a vanished lock (ENOENT) and a lost create race (EEXIST)
//!   are to be retried, never surfaced.

use std::collections::BTreeMap;
use std::path::Path;

use heldlock_core::event::{ControllerId, HandleId, Refusal};
use heldlock_core::file_lock::LockError;
use heldlock_core::file_lock::ORPHAN_GRACE_MS;
use heldlock_core::judge::StaleReason;
use heldlock_core::memprocs::{ProcState, ProcessTable};
use heldlock_core::payload::LockPayload;
use heldlock_core::platform::errno;
use heldlock_core::ControllerError;

use super::records::AcquireRec;
use super::{ms, unrecoverable_by_spec, InvariantId, Oracle, ProcFacts, SLACK_MS};

/// Unblocked time an acquire may sit through before timing out: a few polls of judging,
/// reclaiming and racing other waiters, plus the fs stalls it sat through.
const UNBLOCKED_ALLOWANCE_MS: u64 = 20_000;

/// What stands at a lock path now, as the world sees it.
pub struct LockSight {
    /// The lock file's bytes and its age by mtime (ms), if there is one.
    pub file: Option<(Vec<u8>, u64)>,
    /// The reclaim guard's age by mtime (ms), if there is one.
    pub guard_age_ms: Option<u64>,
}

/// Whether what stands at the lock is something SPEC §1 says to wait on, for `waiter`.
pub fn blocks(sight: &LockSight, waiter: u32, grace_ms: u64, table: &ProcessTable) -> bool {
    if sight.guard_age_ms.is_some_and(|age| age <= grace_ms + SLACK_MS) {
        return true;
    }
    let Some((bytes, age_ms)) = &sight.file else {
        return false;
    };
    let payload = LockPayload::parse(bytes);
    let Some(pid) = payload.as_ref().and_then(|p| p.pid) else {
        // Payload-less: its creator may be between create and payload write.
        return *age_ms <= grace_ms + SLACK_MS;
    };
    if pid == waiter {
        // Held by the waiter's own process (not reentrant), or its own orphan: lenient.
        return true;
    }
    if unrecoverable_by_spec(bytes, table) {
        return true;
    }
    holder_gone(pid, payload.as_ref().and_then(|p| p.starttime), table).is_none()
}

/// Why the world's process table says the holder a payload names (`pid`, `starttime`) is gone,
/// so SPEC §1.1 removes its lock: `None` while it is a live gateway or one the judge cannot
/// place. A refused probe means alive (a zombie too), but /proc still tells the start time:
/// recycled and non-owner pids are gone whether the probe was refused or not.
pub fn holder_gone(pid: u32, starttime: Option<u64>, table: &ProcessTable) -> Option<&'static str> {
    let Some(entry) = table.get(pid) else {
        return Some("dead");
    };
    if entry.state == ProcState::Zombie && !entry.probe_denied {
        return Some("a zombie");
    }
    if matches!((starttime, entry.starttime), (Some(a), Some(b)) if a != b) {
        return Some("recycled (another start time)");
    }
    (entry.gateway == Some(false)).then_some("not a gateway")
}

impl Oracle {
    /// The acquires under way, for the tick's sampling: (pid, acquire, lock, timeout).
    pub fn acquires_in_flight(&self) -> Vec<(u32, u64, std::path::PathBuf, u64)> {
        self.acquires.iter().map(|((p, a), r)| (*p, *a, r.lock.clone(), r.timeout_ms)).collect()
    }

    /// One tick's sample of an acquire: its lock stood `blocked` or not since the last one.
    pub fn sample_acquire(
        &mut self,
        now: u64,
        pid: u32,
        acquire: u64,
        blocked: bool,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let Some(rec) = self.acquires.get_mut(&(pid, acquire)) else {
            return;
        };
        let since = rec.sampled_ns.unwrap_or(rec.started_ns);
        rec.sampled_ns = Some(now);
        let free = procs.get(&pid).is_some_and(|f| !f.held_up_since(since));
        if !blocked && free {
            rec.unblocked_ms += ms(now - since);
        }
    }

    /// `AcquireFailed`: the refusal had a reason SPEC §1 allows (I15).
    pub(super) fn check_refusal(
        &mut self,
        pid: u32,
        now: u64,
        rec: &AcquireRec,
        refusal: Refusal<'_>,
        error: &str,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let facts = procs.get(&pid).copied().unwrap_or_default();
        let finding = match refusal {
            Refusal::Timeout => {
                let allowance = UNBLOCKED_ALLOWANCE_MS + facts.stalled_ms.saturating_sub(rec.stalled_ms);
                (rec.unblocked_ms > allowance).then(|| {
                    format!(
                        "availability: TimeoutError although for {} ms of the budget no live holder \
                         (nor anything SPEC waits on) held the lock",
                        rec.unblocked_ms
                    )
                })
            }
            Refusal::Stale(reasons) => stale_finding(reasons),
            Refusal::Io(errno) => {
                // Which errno struck is the world's fact; an error without one is matched by
                // any error that struck.
                let struck = match errno {
                    Some(code) => self.struck.get(&(pid, code)).is_some_and(|t| *t >= rec.started_ns),
                    None => facts.last_error_ns.is_some_and(|t| t >= rec.started_ns),
                };
                (!struck).then(|| {
                    format!(
                        "availability: an I/O error (errno {errno:?}) though no fault with it struck its own \
                         operations: {error}"
                    )
                })
            }
        };
        if let Some(detail) = finding {
            self.violate(now, InvariantId::I15, Some(pid), Some(&rec.lock), detail);
        }
    }
}

impl Oracle {
    /// Someone (a gateway, a plugin, an external actor, a torn append) changed `transcript`.
    pub fn transcript_changed(&mut self, transcript: &Path, now: u64) {
        self.changed.insert(transcript.to_owned(), now);
    }

    /// I15: a locked operation refused as disposed although the workload never called
    /// `dispose` on the controller.
    pub fn check_disposed_refusal(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let Some(c) = self.ctls.get(&(pid, ctl)).filter(|c| !c.dispose_asked) else {
            return;
        };
        let detail = format!(
            "availability: a locked operation of {ctl} was refused as disposed, but no one disposed it"
        );
        let transcript = c.transcript.clone();
        self.violate(now, InvariantId::I15, Some(pid), Some(&transcript), detail);
    }

    /// A locked controller operation (a write scope, the prompt release, the reacquire) that
    /// began at `began` returned a transcript I/O error (I15, the controller's half): its errno
    /// must be one the world made one of this process's own fs operations fail with since —
    /// or EAGAIN from fence reads that never saw the transcript hold still, when someone did
    /// change it meanwhile, or ENOENT of a transcript gone now (`absent`: an external actor
    /// deleted it) or deleted and recreated meanwhile (seed 85142). Lock errors are judged where their acquire failed (`check_refusal`).
    pub fn check_locked_op_error(
        &mut self,
        pid: u32,
        (began, now): (u64, u64),
        transcript: &Path,
        error: &ControllerError,
        (last_error_ns, absent): (Option<u64>, bool),
    ) {
        // The transcript's errors here; the lock file's at `check_lock_path_error` (the workload's
        // own, its provider stream's, name neither path).
        let source = match error {
            ControllerError::Io { source, path } if path == transcript => source,
            _ => return self.check_lock_path_error(pid, now, transcript, error, last_error_ns),
        };
        let since = |t: Option<&u64>| t.is_some_and(|t| *t >= began);
        let excused = match source.raw_os_error() {
            Some(errno::EAGAIN | errno::ENOENT) if since(self.changed.get(transcript)) => true,
            Some(errno::ENOENT) if absent => true,
            Some(code) => since(self.struck.get(&(pid, code))),
            None => since(last_error_ns.as_ref()),
        };
        if !excused {
            let detail = format!(
                "availability: a locked operation failed with an I/O error no fault caused (errno {:?}): {error}",
                source.raw_os_error()
            );
            self.violate(now, InvariantId::I15, Some(pid), Some(transcript), detail);
        }
    }

    /// A locked operation's error on its lock file (I15): a release's unlink, a short lock's
    /// acquire, the `lstat` of the in-place check before a write. Its errno must be one the
    /// world made some fs operation of this process fail with — not necessarily during this
    /// operation: concurrent releases of one handle share one outcome, so a watchdog's failed
    /// unlink may be told again later. ENOENT and EEXIST never qualify: SPEC §1 handles both
    /// (a lock gone before its release's unlink is released, not an error). Acquire refusals
    /// are also judged, more strictly, at `AcquireFailed`.
    fn check_lock_path_error(
        &mut self,
        pid: u32,
        now: u64,
        transcript: &Path,
        error: &ControllerError,
        last_error_ns: Option<u64>,
    ) {
        // The lock's own calls (`LockError`), and the controller's `lstat` of its lock file
        // before each write (the in-place check), which reports the lock path as its own.
        let (source, path) = match error {
            ControllerError::Lock(LockError::Io { source, path }) | ControllerError::Io { source, path } => {
                (source, path)
            }
            _ => return,
        };
        if *path != crate::actors::lock_path_of(transcript) {
            return;
        }
        let excused = match source.raw_os_error() {
            Some(code) => self.struck.contains_key(&(pid, code)),
            None => last_error_ns.is_some(),
        };
        if !excused {
            let detail = format!(
                "availability: a locked operation failed with an I/O error on its lock file that no fault caused \
                 (errno {:?}): {error}",
                source.raw_os_error()
            );
            self.violate(now, InvariantId::I15, Some(pid), Some(path), detail);
        }
    }

    /// `HandleLost` for `FileGone` (I15): the core took `handle` from its holder because its
    /// file no longer stood at the lock path; the disk shows inode `at_path` there now. The
    /// handle's own untampered inode there means the loss had no cause.
    pub fn check_file_gone_loss(&mut self, pid: u32, now: u64, handle: HandleId, at_path: Option<u64>) {
        let Some(h) = self.handles.get(&(pid, handle)) else {
            return;
        };
        if at_path != Some(h.ino) || h.tampered {
            return;
        }
        let detail = format!(
            "availability: {handle} was taken from p{pid} as its lock file gone, but its lock file (inode {}) \
             stands at the lock path",
            h.ino
        );
        self.violate(now, InvariantId::I15, Some(pid), None, detail);
    }

    /// A cleanup append was refused as lock-lost while its lock inode `ino` still stands at
    /// the lock path (I15): SPEC §1.3 takes a lock away only past its maxHoldMs, and only its
    /// file's removal or replacement loses it otherwise — an outside actor's tampering.
    pub fn check_lock_lost_refusal(&mut self, pid: u32, now: u64, ctl: ControllerId, ino: u64) {
        let Some(h) = self.handles.iter().find(|((p, _), h)| *p == pid && h.ino == ino).map(|(_, h)| h)
        else {
            return;
        };
        let held_ms = ms(now - h.acquired_ns);
        if h.tampered || held_ms + SLACK_MS >= h.max_hold_ms {
            return;
        }
        let detail = format!(
            "availability: a cleanup write of {ctl} was refused as lock-lost, but its lock (inode {ino}) is still at \
             the lock path, held {held_ms} ms of its {} ms",
            h.max_hold_ms
        );
        self.violate(now, InvariantId::I15, Some(pid), None, detail);
    }

    /// `acquireForCleanup` returned an error (I15): a takeover gives a no-op lock (SPEC §3),
    /// so only an I/O error of its fence check may refuse it, judged as any locked operation's.
    pub fn check_cleanup_refusal(
        &mut self,
        pid: u32,
        (began, now): (u64, u64),
        ctl: ControllerId,
        transcript: &Path,
        error: &ControllerError,
        last_error_ns: Option<u64>,
    ) {
        if let ControllerError::Takeover { reason } = error {
            let detail = format!(
                "availability: the cleanup of {ctl} was refused with a takeover ({reason:?}); SPEC §3 gives a no-op lock"
            );
            self.violate(now, InvariantId::I15, Some(pid), Some(transcript), detail);
            return;
        }
        self.check_locked_op_error(pid, (began, now), transcript, error, (last_error_ns, false));
    }
}

/// A StaleError may state only report-only reasons (too old, hold exceeded), and some.
fn stale_finding(reasons: &[StaleReason]) -> Option<String> {
    let removable: Vec<&str> = reasons
        .iter()
        .filter(|r| !matches!(r, StaleReason::TooOld | StaleReason::HoldExceeded))
        .map(|r| r.name())
        .collect();
    // Whether the lock on disk now is stale is a matter of the acquirer's own wall clock
    // (clocks are skewed and stepped, and foreign holders write short maxHoldMs): the witness
    // judges that from the disk (`Witness::stale_failure`).
    if reasons.is_empty() {
        return Some("availability: StaleError stating no reason".to_owned());
    }
    (!removable.is_empty()).then(|| format!("availability: StaleError with removable reasons {removable:?}"))
}

/// The orphan grace an acquire with this budget applies (SPEC §1.1).
pub fn grace_for(timeout_ms: u64) -> u64 {
    if timeout_ms < ORPHAN_GRACE_MS {
        5_000
    } else {
        ORPHAN_GRACE_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heldlock_core::event::PoisonReason;
    use heldlock_core::memprocs::ProcEntry;

    use super::super::records::HandleRec;

    /// A lock-lost refusal of a cleanup write needs its lock gone, tampered with or past its
    /// maxHoldMs (cargo-mutants: `LockHandle::is_released → true`).
    #[test]
    fn a_lock_lost_refusal_with_the_lock_in_place_and_in_bounds_is_flagged() {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let mut o = Oracle::default();
        o.handles.insert((7, HandleId(1)), HandleRec::open(lock, 3, 0, 60_000));
        o.check_lock_lost_refusal(7, 61_000_000_000, ControllerId(1), 3);
        o.check_lock_lost_refusal(8, 1_000_000, ControllerId(1), 3);
        assert!(o.violations.is_empty(), "past maxHoldMs, or another process's inode");
        o.check_lock_lost_refusal(7, 1_000_000, ControllerId(1), 3);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I15);
        o.lock_tampered(3);
        o.check_lock_lost_refusal(7, 1_000_000, ControllerId(1), 3);
        assert_eq!(o.violations.len(), 1, "an outside actor removed or replaced it");
    }

    /// A loss for a gone lock file needs the file gone or replaced (cargo-mutants: `in_place`'s
    /// ENOENT guard `→ true`, which reads an injected `lstat` error as a moved lock).
    #[test]
    fn a_loss_for_a_gone_file_whose_file_stands_at_the_path_is_flagged() {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let mut o = Oracle::default();
        o.handles.insert((7, HandleId(1)), HandleRec::open(lock, 3, 0, 60_000));
        o.check_file_gone_loss(7, 1, HandleId(1), None);
        o.check_file_gone_loss(7, 1, HandleId(1), Some(4));
        o.check_file_gone_loss(8, 1, HandleId(1), Some(3));
        assert!(o.violations.is_empty(), "gone, replaced, or another process's handle");
        o.check_file_gone_loss(7, 1, HandleId(1), Some(3));
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I15);
        o.lock_tampered(3);
        o.check_file_gone_loss(7, 1, HandleId(1), Some(3));
        assert_eq!(o.violations.len(), 1, "an outside actor rewrote it in place");
    }

    /// SPEC §3: a cleanup whose fence check finds a takeover gets a no-op lock, never the
    /// error (cargo-mutants: the deleted `Takeover` arm of `cleanup`).
    #[test]
    fn a_cleanup_refused_with_a_takeover_is_flagged() {
        let t = Path::new("/srv/sessions/s0.jsonl");
        let mut o = Oracle::default();
        let takeover = ControllerError::Takeover {
            reason: PoisonReason::Takeover,
        };
        o.check_cleanup_refusal(7, (0, 1), ControllerId(1), t, &takeover, None);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I15);
        o.error_struck(7, errno::EIO, 0);
        let eio = ControllerError::Io {
            source: heldlock_core::platform::os_error(errno::EIO),
            path: t.to_owned(),
        };
        o.check_cleanup_refusal(7, (0, 1), ControllerId(1), t, &eio, None);
        assert_eq!(o.violations.len(), 1, "an I/O error the world injected into its fence check");
    }

    #[test]
    fn a_stale_error_may_state_only_report_only_reasons() {
        assert_eq!(stale_finding(&[StaleReason::TooOld, StaleReason::HoldExceeded]), None);
        assert!(stale_finding(&[StaleReason::TooOld, StaleReason::DeadPid]).is_some());
        assert!(stale_finding(&[]).is_some());
    }

    #[test]
    fn a_locked_operation_may_pass_on_only_errors_the_world_caused() {
        let transcript = Path::new("/s/t.jsonl");
        let io = |path: &str, code: i32| ControllerError::Io {
            path: path.into(),
            source: std::io::Error::from_raw_os_error(code),
        };
        let judged = |o: &mut Oracle, e: ControllerError, absent: bool| {
            let before = o.violations.len();
            o.check_locked_op_error(7, (100, 200), transcript, &e, (None, absent));
            o.violations.len() > before
        };
        let mut o = Oracle::default();
        assert!(judged(&mut o, io("/s/t.jsonl", errno::EIO), false), "an EIO nothing struck");
        o.error_struck(7, errno::EIO, 50);
        assert!(judged(&mut o, io("/s/t.jsonl", errno::EIO), false), "struck before the op began");
        o.error_struck(7, errno::EIO, 150);
        assert!(!judged(&mut o, io("/s/t.jsonl", errno::EIO), false), "struck during the op");
        assert!(judged(&mut o, io("/s/t.jsonl", errno::EAGAIN), false), "fence reads of a still file");
        assert!(
            judged(&mut o, io("/s/t.jsonl", errno::ENOENT), false),
            "ENOENT of a transcript always there"
        );
        o.transcript_changed(transcript, 120);
        assert!(!judged(&mut o, io("/s/t.jsonl", errno::EAGAIN), false), "a transcript that kept moving");
        assert!(!judged(&mut o, io("/s/t.jsonl", errno::ENOENT), true), "ENOENT of a deleted transcript");
        assert!(!judged(&mut o, io("/s/t.jsonl", errno::ENOENT), false), "deleted and recreated meanwhile");
        assert!(!judged(&mut o, io("<provider stream>", errno::EIO), false), "the workload's own error");
        assert!(!judged(&mut o, ControllerError::LockLost, false), "not an I/O error");
        let on_lock = |code: i32| {
            ControllerError::Lock(LockError::Io {
                path: "/s/t.jsonl.lock".into(),
                source: std::io::Error::from_raw_os_error(code),
            })
        };
        assert!(
            judged(&mut o, on_lock(errno::ENOENT), false),
            "a release's ENOENT (file_lock.rs:1152's mutant)"
        );
        assert!(judged(&mut o, on_lock(errno::EMFILE), false), "an EMFILE that never struck p7");
        assert!(
            !judged(&mut o, on_lock(errno::EIO), false),
            "an EIO that struck p7 (a shared release outcome)"
        );
        assert!(
            judged(&mut o, io("/s/t.jsonl.lock", errno::ENOENT), false),
            "the in-place check's ENOENT: a lock file gone is a lost lock, not an error (file_lock.rs:1246's mutant)"
        );
        assert!(
            !judged(&mut o, io("/s/t.jsonl.lock", errno::EIO), false),
            "the in-place check's EIO that struck p7"
        );
    }

    #[test]
    fn the_table_tells_gone_holders() {
        let table = ProcessTable::new();
        let entry = |state, starttime, gateway, probe_denied| ProcEntry {
            state,
            starttime,
            gateway,
            probe_denied,
        };
        table.spawn(5, entry(ProcState::Running, Some(1), Some(true), false));
        table.spawn(6, entry(ProcState::Zombie, Some(1), Some(true), false));
        table.spawn(7, entry(ProcState::Zombie, Some(1), Some(true), true));
        table.spawn(8, entry(ProcState::Running, Some(1), Some(false), true));
        table.spawn(9, entry(ProcState::Running, None, None, false));
        assert_eq!(holder_gone(5, Some(1), &table), None, "a live gateway");
        assert_eq!(holder_gone(5, Some(2), &table), Some("recycled (another start time)"));
        assert_eq!(holder_gone(4, Some(1), &table), Some("dead"));
        assert_eq!(holder_gone(6, Some(1), &table), Some("a zombie"));
        assert_eq!(holder_gone(7, Some(1), &table), None, "a refused probe means alive");
        assert_eq!(holder_gone(8, None, &table), Some("not a gateway"));
        assert_eq!(holder_gone(9, Some(3), &table), None, "unplaceable");
    }

    #[test]
    fn only_live_or_unplaceable_holders_and_fresh_guards_block() {
        let table = ProcessTable::new();
        let live = ProcEntry {
            state: ProcState::Running,
            starttime: Some(1),
            gateway: Some(true),
            probe_denied: false,
        };
        table.spawn(5, live);
        let file = |pid: u32| Some((LockPayload::new(pid, 0, Some(1), 1_000).to_bytes(), 10));
        let sight = |file, guard_age_ms| LockSight { file, guard_age_ms };
        assert!(blocks(&sight(file(5), None), 9, 30_000, &table), "a live holder");
        assert!(!blocks(&sight(file(6), None), 9, 30_000, &table), "a dead holder");
        assert!(!blocks(&sight(None, None), 9, 30_000, &table), "nothing");
        assert!(blocks(&sight(None, Some(1_000)), 9, 30_000, &table), "a fresh guard");
        assert!(!blocks(&sight(None, Some(40_000)), 9, 30_000, &table), "a guard past the grace");
        assert!(blocks(&sight(Some((Vec::new(), 1_000)), None), 9, 30_000, &table), "payload-less, young");
        assert!(!blocks(&sight(Some((Vec::new(), 40_000)), None), 9, 30_000, &table), "payload-less, aged");
    }
}
