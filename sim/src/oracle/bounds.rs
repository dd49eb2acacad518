//! I5 bounded abort, I9 no deadlock, I12 timeout, I13 watchdog: what must have happened by
//! when, on a process that ran freely (not paused, not hung) over the whole interval.

use std::collections::BTreeMap;
use std::path::Path;

use heldlock_core::controller::SETTLE_BOUND_MS;
use heldlock_core::event::{ControllerId, HandleId, OpKind};
use heldlock_core::file_lock::{POLL_MS, WATCHDOG_INTERVAL_MS};

use super::records::{AbortDeadline, AcquireRec};
use super::{ms, InvariantId, Oracle, ProcFacts, SLACK_MS};

/// An operation that can only wait on the drain, retained uses, the settle bound or one lock
/// acquire must return within this (lock timeout + settle bound + slack).
const OP_LIVENESS_MS: u64 = 60_000 + SETTLE_BOUND_MS + 10_000;

impl Oracle {
    /// `AbortRequested`: every handle the controller holds, or that one of its running
    /// operations cleared and has not released yet, is owed a release by the settle bound (I5).
    pub(super) fn on_abort_requested(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let mut owed: Vec<HandleId> = Vec::new();
        if let Some(c) = self.ctls.get(&(pid, ctl)) {
            owed.extend(c.held);
        }
        // Handles a still-running operation of this controller cleared but has not
        // released yet (a graceful release stuck in fence I/O) are owed as well.
        for ((p, _), o) in &self.ops {
            if *p == pid && o.ctl == ctl {
                owed.extend(
                    o.cleared
                        .iter()
                        .filter(|h| self.handles.get(&(pid, **h)).is_some_and(|r| r.released_ns.is_none())),
                );
            }
        }
        owed.sort();
        owed.dedup();
        for handle in owed {
            self.aborts.push(AbortDeadline {
                pid,
                ctl,
                handle,
                requested_ns: now,
                deadline_ns: now + (SETTLE_BOUND_MS + SLACK_MS) * 1_000_000,
            });
        }
    }

    /// `AcquireFailed{timeout}`: not before the budget, nor long after it on a free process
    /// (I12). Fs stalls the acquire sat through (slow disk) may carry it past its deadline.
    pub(super) fn check_timeout(
        &mut self,
        pid: u32,
        now: u64,
        rec: &AcquireRec,
        lock: &Path,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let (start, timeout_ms) = (rec.started_ns, rec.timeout_ms);
        let waited = ms(now - start);
        let facts = procs.get(&pid).copied().unwrap_or_default();
        let free = !facts.held_up_since(start);
        let stalled = facts.stalled_ms.saturating_sub(rec.stalled_ms);
        if waited + 1 < timeout_ms {
            let detail =
                format!("timeout: TimeoutError after {waited} ms, before the {timeout_ms} ms budget");
            self.violate(now, InvariantId::I12, Some(pid), Some(lock), detail);
        } else if free && waited > timeout_ms + POLL_MS + SLACK_MS + stalled {
            let detail = format!("timeout: TimeoutError only after {waited} ms for a {timeout_ms} ms budget");
            self.violate(now, InvariantId::I12, Some(pid), Some(lock), detail);
        }
    }

    /// Time-driven checks: abort deadlines (I5), the watchdog bound (I13), operations that
    /// never return (I9). `final_check` also runs them at quiescence.
    pub fn check_time(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>) {
        self.flush_pending_reclaim();
        self.check_abort_deadlines(now, procs);
        self.check_watchdog(now, procs);
        self.check_stuck_ops(now, procs);
    }

    /// I5: an aborted controller's owed handles are released by the settle bound + ε — hung
    /// streams, writes and fence reads excuse nothing; a paused event loop excuses the wait
    /// until it resumes, and the bound runs again from there.
    fn check_abort_deadlines(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>) {
        let mut found = Vec::new();
        let bound_ns = (SETTLE_BOUND_MS + SLACK_MS) * 1_000_000;
        self.aborts.retain(|a| {
            let handle = self.handles.get(&(a.pid, a.handle));
            // A handle lost meanwhile (its file removed and re-created by another acquire of
            // this process; SPEC §1 step 5) is owed no release, as in I3.
            if handle.is_some_and(|h| h.lost) {
                return false;
            }
            let released = handle.and_then(|h| h.released_ns);
            let facts = procs.get(&a.pid).copied().unwrap_or_default();
            let resumed = facts.last_resume_ns.filter(|r| *r >= a.requested_ns);
            let deadline = a.deadline_ns.max(resumed.map_or(0, |r| r + bound_ns));
            let late = match released {
                Some(t) if t <= deadline => return false,
                Some(t) => t - a.requested_ns,
                None if !facts.alive => return false,
                None if facts.paused_since_ns.is_some() || now <= deadline => return true,
                None => now - a.requested_ns,
            };
            found.push((a.pid, a.handle, a.ctl, ms(late)));
            false
        });
        for (pid, handle, ctl, waited) in found {
            let lock = self.handles.get(&(pid, handle)).map(|h| h.lock.clone());
            let detail = format!(
                "bounded abort: {ctl} was aborted {waited} ms ago and {handle} is not released \
                 (bound {SETTLE_BOUND_MS} ms)"
            );
            self.violate(now, InvariantId::I5, Some(pid), lock.as_deref(), detail);
        }
    }

    /// I13: on a live event loop, no handle stays held past maxHoldMs + one watchdog tick
    /// (hung fs ops do not stop the loop; a pause does, until it resumes).
    fn check_watchdog(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>) {
        let mut overdue = Vec::new();
        for ((pid, handle), h) in &self.handles {
            let Some(facts) = procs.get(pid) else { continue };
            if h.released_ns.is_some() || h.lost || !facts.alive || facts.paused_since_ns.is_some() {
                continue;
            }
            let expired = h.acquired_ns + h.max_hold_ms * 1_000_000;
            let due = expired.max(facts.last_resume_ns.unwrap_or(0))
                + (WATCHDOG_INTERVAL_MS + SLACK_MS) * 1_000_000;
            if now > due {
                overdue.push((*pid, *handle, h.lock.clone(), ms(now - h.acquired_ns)));
            }
        }
        overdue.sort();
        for (pid, handle, lock, held) in overdue {
            // Report once: the handle is treated as lost from here on.
            if let Some(h) = self.handles.get_mut(&(pid, handle)) {
                h.lost = true;
            }
            let detail =
                format!("watchdog: {handle} held {held} ms on a live event loop, past maxHoldMs + one tick");
            self.violate(now, InvariantId::I13, Some(pid), Some(&lock), detail);
        }
    }

    /// I9: release, reacquire, abort release, cleanup and dispose return within the bound of
    /// the time their process ran unexcused (no pause, no hung op) since they began.
    fn check_stuck_ops(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>) {
        let mut stuck = Vec::new();
        for ((pid, op), o) in &self.ops {
            let guarded = matches!(
                o.kind,
                OpKind::PromptRelease
                    | OpKind::Reacquire
                    | OpKind::AbortRelease
                    | OpKind::Cleanup
                    | OpKind::Dispose
            );
            let Some(facts) = procs.get(pid) else { continue };
            let unexcused = facts.unexcused_since(o.began_ns);
            // The fs stalls it sat through (slow disks) extend the bound, as for I12.
            let bound = OP_LIVENESS_MS + facts.stalled_ms.saturating_sub(o.stalled_ms);
            if guarded && unexcused.is_some_and(|t| ms(now - t) > bound) {
                stuck.push((*pid, *op, o.ctl, o.kind, ms(now - o.began_ns)));
            }
        }
        stuck.sort();
        for (pid, op, ctl, kind, waited) in stuck {
            self.ops.remove(&(pid, op));
            let detail =
                format!("no deadlock: {} ({op}) of {ctl} has not returned after {waited} ms", kind.name());
            self.violate(now, InvariantId::I9, Some(pid), None, detail);
        }
    }
}
