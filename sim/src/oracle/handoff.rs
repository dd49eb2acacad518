//! I3 held ⇒ released, I4 dispose, I7 next turn, I8 drain: whoever clears `held` releases that
//! handle before its operation returns, one path per handle, and nothing outlives the turn.

use std::path::Path;

use heldlock_core::event::{ControllerId, Duty, HandleId, OpId, OpKind, ReleaseBy};

use super::{ms, InvariantId, Oracle, SLACK_MS};

impl Oracle {
    /// A write scope of `ctl` returned Ok, nothing asked it to let go, it is not poisoned — and
    /// the lock file at `lock` names `holder`, not this process (I6: only a poisoned controller
    /// releases `held` at a scope's exit, SPEC §3). Excused when the lock was taken from it in
    /// ways it learns of only at its next write: an external actor tampered with it, another
    /// process's exchange moved it aside, or it was held past its maxHoldMs, so the watchdog
    /// may have freed it (swarm seeds 192756, 470432: a long stream inside the scope).
    pub fn check_retained(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        lock: &Path,
        holder: Option<u32>,
    ) {
        let taken = self.handles.iter().any(|(key, h)| {
            let expired = now.saturating_sub(h.acquired_ns) > h.max_hold_ms.saturating_mul(1_000_000);
            key.0 == pid && h.lock == lock && (h.tampered || expired || self.displaced_by(key).is_some())
        });
        if taken {
            return;
        }
        let detail = format!(
            "poison before force: {ctl} let go of its held lock at a write scope's exit (the lock file \
             names {holder:?}) though it is not poisoned and the turn asked for no release"
        );
        self.violate(now, InvariantId::I6, Some(pid), Some(lock), detail);
    }

    /// An owner release of a handle still in some controller's `held`: a second path will
    /// release it again (I8).
    pub(super) fn check_release_path(
        &mut self,
        pid: u32,
        now: u64,
        handle: HandleId,
        lock: &Path,
        by: ReleaseBy,
    ) {
        if by != ReleaseBy::Owner {
            return;
        }
        self.check_release_under_body(pid, now, handle, lock);
        let Some(ctl) = self.handles.get(&(pid, handle)).and_then(|h| h.held_by) else {
            return;
        };
        self.violate(
            now,
            InvariantId::I8,
            Some(pid),
            Some(lock),
            format!(
                "one path per handle: {handle} released while {ctl} still has it in held \
                 (a second path will release it again)"
            ),
        );
    }

    /// I6: an owner's release of a controller's retained lock while a write-scope body of that
    /// controller runs (by the workload's account) comes only after the controller is
    /// poisoned. A dispose or prompt release from outside waits for the body; one asked from
    /// inside is deferred to the scope's exit; only a forced release may cut in, poison first.
    fn check_release_under_body(&mut self, pid: u32, now: u64, handle: HandleId, lock: &Path) {
        let under = self.ctls.iter().find(|((p, _), c)| {
            *p == pid && c.bodies_running > 0 && !c.poisoned && c.held_ever.contains(&handle)
        });
        let Some(((_, ctl), _)) = under else {
            return;
        };
        let detail = format!(
            "poison before force: {handle} of {ctl} was released while its write scope's body runs, \
             and {ctl} is not poisoned"
        );
        self.violate(now, InvariantId::I6, Some(pid), Some(lock), detail);
    }

    /// The workload entered (`running`) or left a write-scope body of `ctl`.
    pub fn scope_body(&mut self, pid: u32, ctl: ControllerId, running: bool) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.bodies_running = if running {
                c.bodies_running.saturating_add(1)
            } else {
                c.bodies_running.saturating_sub(1)
            };
        }
    }

    /// `HeldSet`: a disposed controller never holds again (I4).
    pub(super) fn on_held_set(&mut self, pid: u32, now: u64, ctl: ControllerId, handle: HandleId) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        let disposed = c.disposed;
        c.held = Some(handle);
        c.held_ever.push(handle);
        let transcript = c.transcript.clone();
        if let Some(h) = self.handles.get_mut(&(pid, handle)) {
            h.held_by = Some(ctl);
        }
        if disposed {
            let detail = format!(
                "dispose: {ctl} holds {handle} again after it was disposed ({})",
                transcript.display()
            );
            self.violate(now, InvariantId::I4, Some(pid), None, detail);
        }
    }

    /// `HeldCleared`: with the release duty, the clearing operation owes the release (I3);
    /// handed to the cleanup lock, no abort deadline applies to it any more (I5).
    pub(super) fn on_held_cleared(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        op: OpId,
        handle: HandleId,
        duty: Duty,
    ) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.held = None;
            if duty == Duty::HandToCleanup {
                c.cleanup_handle = Some(handle);
            }
        }
        if let Some(h) = self.handles.get_mut(&(pid, handle)) {
            h.held_by = None;
        }
        match duty {
            Duty::Release => {
                if let Some(o) = self.ops.get_mut(&(pid, op)) {
                    o.cleared.push(handle);
                }
            }
            // The cleanup lock releases it after its writes: an abort neither forces it nor
            // owes its release by the settle bound (SPEC §3, releaseForAbort).
            Duty::HandToCleanup => self.aborts.retain(|a| !(a.pid == pid && a.handle == handle)),
        }
        if duty == Duty::HandToCleanup {
            // Handed to the cleanup within the settle bound, it is the cleanup's own lock: an
            // abort forces only held or what a stuck graceful release owns (SPEC §3), so the
            // abort no longer owes its release.
            self.aborts.retain(|a| !(a.pid == pid && a.handle == handle && a.deadline_ns >= now));
        }
    }

    /// `OpEnd`: every handle the op cleared is released (I3); a scope that deferred the prompt
    /// release ran it (I3); dispose returns holding nothing (I4).
    pub(super) fn on_op_end(&mut self, pid: u32, now: u64, ctl: ControllerId, op: OpId, kind: OpKind) {
        let Some(rec) = self.ops.remove(&(pid, op)) else {
            return;
        };
        for handle in rec.cleared {
            // A handle lost meanwhile (its file gone; SPEC §1 step 5) is owed no release.
            let released =
                self.handles.get(&(pid, handle)).is_some_and(|h| h.released_ns.is_some() || h.lost);
            if !released {
                let lock = self.handles.get(&(pid, handle)).map(|h| h.lock.clone());
                let detail = format!(
                    "held ⇒ released: {} of {ctl} cleared held {handle} and returned without releasing it",
                    kind.name()
                );
                self.violate(now, InvariantId::I3, Some(pid), lock.as_deref(), detail);
            }
        }
        let holds = self.holds_own_lock(pid, ctl);
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        let mut found = Vec::new();
        if kind == OpKind::Write {
            c.open_writes.remove(&op);
            if c.open_writes.is_empty() && c.held.is_none() && c.fence && !holds {
                c.released = true;
            }
            if let (Some(dispose), true, Some(h)) = (c.asked_in_scope, c.open_writes.is_empty(), c.held) {
                let (inv, what) = if dispose {
                    (InvariantId::I4, "a dispose")
                } else {
                    (InvariantId::I3, "a prompt release")
                };
                found.push((
                    inv,
                    format!("the write scope {op} of {ctl} was asked for {what} and ended holding {h}"),
                ));
            }
            if c.open_writes.is_empty() {
                c.asked_in_scope = None;
            }
            if c.owed_deferred.remove(&op) && c.open_writes.is_empty() {
                if let Some(h) = c.held {
                    found.push((
                        InvariantId::I3,
                        format!(
                            "held ⇒ released: the write scope {op} that deferred a prompt release ended, \
                             and {ctl} still holds {h}"
                        ),
                    ));
                }
            }
        }
        for (inv, detail) in found {
            self.violate(now, inv, Some(pid), None, detail);
        }
        if kind == OpKind::Dispose {
            self.dispose_returned(pid, now, ctl);
        }
    }

    /// The workload is about to call `dispose` on `ctl` from outside any scope.
    pub fn dispose_asked(&mut self, pid: u32, ctl: ControllerId) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.dispose_asked = true;
        }
    }

    /// `dispose` returned (to its caller, or by the core's `OpEnd`): it holds nothing (I4).
    pub fn dispose_returned(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        if let Some(h) = self.ctls.get(&(pid, ctl)).and_then(|c| c.held) {
            let detail = format!("dispose: dispose of {ctl} returned holding {h}");
            self.violate(now, InvariantId::I4, Some(pid), None, detail);
        }
    }

    /// `PromptReleased`, or a release-for-prompt that returned Ok to its caller (outside any
    /// scope: judged from the call, so a release that never ran is caught too): the controller
    /// holds nothing (I3).
    pub fn on_prompt_released(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let holds = self.holds_own_lock(pid, ctl);
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        // Released: no retained lock, no scope holding a short lock, no cleanup lock either
        // (an abort's prompt release after the cleanup took its lock leaves it held).
        c.released = c.open_writes.is_empty() && !holds;
        if let Some(h) = c.held {
            let detail =
                format!("held ⇒ released: release-for-prompt of {ctl} returned while it still holds {h}");
            self.violate(now, InvariantId::I3, Some(pid), None, detail);
        }
    }

    /// A release the caller asked for (`what`) returned Ok, of lock inode `ino`, which the disk
    /// showed as the caller's own at the lock path before the call; `still_there`: the disk
    /// has it there now. SPEC I3: only a fault on the unlink itself may leave the file, and a
    /// release whose unlink failed does not return Ok — unless an outside actor tampered with
    /// that lock, or the watchdog took it (a hold past maxHoldMs) and its unlink is under way.
    pub fn release_reported_ok(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        ino: u64,
        still_there: bool,
        what: &str,
    ) {
        // A dispose from another task may have taken the lock, and only its unlink failed.
        if !still_there || self.ctls.get(&(pid, ctl)).is_some_and(|c| c.dispose_asked) {
            return;
        }
        // A file naming the process that none of its handles made (an outside actor's copy of
        // an older lock of it) is no release's business.
        let Some(h) = self.handles.iter().find(|((p, _), h)| *p == pid && h.ino == ino).map(|(_, h)| h)
        else {
            return;
        };
        if !h.tampered && ms(now - h.acquired_ns) + SLACK_MS < h.max_hold_ms {
            let detail = format!(
                "held ⇒ released: {what} of {ctl} returned Ok, but its lock file (inode {ino}) is still at the lock path"
            );
            self.violate(now, InvariantId::I3, Some(pid), None, detail);
        }
    }

    /// The inode of the lock `ctl` holds in `held` now, or (`cleanup`) of the one its cleanup
    /// took over from `held`: which lock file a call of that controller is about.
    pub fn ctl_lock_ino(&self, pid: u32, ctl: ControllerId, cleanup: bool) -> Option<u64> {
        let c = self.ctls.get(&(pid, ctl))?;
        let handle = if cleanup { c.cleanup_handle } else { c.held }?;
        self.handles.get(&(pid, handle)).map(|h| h.ino)
    }

    /// Whether `pid` holds a live handle on the lock of `ctl`'s transcript (the owner mutex
    /// gives one attempt per session per process: it is this controller's, whichever path
    /// took it — `held`, a short lock, a cleanup lock).
    fn holds_own_lock(&self, pid: u32, ctl: ControllerId) -> bool {
        let Some(c) = self.ctls.get(&(pid, ctl)) else {
            return false;
        };
        let mut lock = c.transcript.as_os_str().to_owned();
        lock.push(".lock");
        self.handles
            .iter()
            .any(|((p, _), h)| *p == pid && h.lock.as_os_str() == lock && h.released_ns.is_none() && !h.lost)
    }

    /// `DrainOwned`: one drain owner at a time (I8).
    pub(super) fn on_drain_owned(&mut self, pid: u32, now: u64, ctl: ControllerId, op: OpId) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        if let Some(other) = c.drain_owner {
            let detail = format!("drain: {op} became drain owner of {ctl} while {other} still owns it");
            self.violate(now, InvariantId::I8, Some(pid), None, detail);
        } else {
            c.drain_owner = Some(op);
        }
    }

    /// The turn of controller `ctl` ended: its owner is about to be released (I7).
    pub fn turn_ended(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let Some(c) = self.ctls.get(&(pid, ctl)) else {
            return;
        };
        let leaked: Vec<HandleId> = c
            .held_ever
            .iter()
            .copied()
            .filter(|h| self.handles.get(&(pid, *h)).is_some_and(|r| r.released_ns.is_none() && !r.lost))
            .collect();
        for h in leaked {
            let lock = self.handles.get(&(pid, h)).map(|r| r.lock.clone());
            self.violate(
                now,
                InvariantId::I7,
                Some(pid),
                lock.as_deref(),
                format!(
                    "next turn: the owner of {ctl} is released while its lock {h} is still held; \
                     the next attempt will wait on it"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::{CtlRec, HandleRec};
    use super::*;

    #[test]
    fn a_controller_that_let_go_unasked_is_flagged_unless_its_lock_was_tampered_with() {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let mut o = Oracle::default();
        o.check_retained(7, 1, ControllerId(1), lock, None);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I6);
        o.handles.insert((7, HandleId(1)), HandleRec::open(lock, 3, 0, 1));
        o.check_retained(7, 1_000_000, ControllerId(1), lock, Some(9));
        assert_eq!(o.violations.len(), 2, "held within its maxHoldMs, untouched");
        o.check_retained(7, 1_000_001, ControllerId(1), lock, Some(9));
        assert_eq!(o.violations.len(), 2, "held past its maxHoldMs: the watchdog's to take");
        o.lock_tampered(3);
        o.check_retained(7, 2, ControllerId(1), lock, Some(9));
        assert_eq!(o.violations.len(), 2, "an external actor removed or replaced it");
        o.check_retained(8, 3, ControllerId(1), lock, Some(9));
        assert_eq!(o.violations.len(), 3, "another process's tampered lock excuses nothing");
    }

    fn controller_holding(o: &mut Oracle, pid: u32, ctl: ControllerId, held: Option<HandleId>) {
        let rec = CtlRec {
            transcript: "/srv/sessions/s0.jsonl".into(),
            held,
            ..CtlRec::default()
        };
        o.ctls.insert((pid, ctl), rec);
    }

    /// Judged at the call's return to the workload: a release-for-prompt or a dispose that
    /// never ran emits nothing of its own (cargo-mutants: `release_for_prompt → Ok(())`).
    #[test]
    fn a_prompt_release_or_dispose_returning_to_its_caller_while_holding_is_flagged() {
        let mut o = Oracle::default();
        let ctl = ControllerId(1);
        controller_holding(&mut o, 7, ctl, None);
        o.on_prompt_released(7, 1, ctl);
        o.dispose_returned(7, 1, ctl);
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        controller_holding(&mut o, 7, ctl, Some(HandleId(5)));
        o.on_prompt_released(7, 2, ctl);
        o.dispose_returned(7, 3, ctl);
        let found: Vec<InvariantId> = o.violations.iter().map(|v| v.invariant).collect();
        assert_eq!(found, [InvariantId::I3, InvariantId::I4]);
    }

    /// A release that returned Ok leaves no file of its handle at the lock path, unless an
    /// outside actor tampered with it, the watchdog took it, or a dispose from another task
    /// did (cargo-mutants: `CleanupLock::release → Ok(())`, `unlink_if_unchanged` ENOENT guard).
    #[test]
    fn a_release_that_returned_ok_leaves_no_file_of_its_handle() {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let ctl = ControllerId(1);
        let mut o = Oracle::default();
        controller_holding(&mut o, 7, ctl, None);
        o.handles.insert((7, HandleId(1)), HandleRec::open(lock, 3, 0, 60_000));
        o.release_reported_ok(7, 1_000_000, ctl, 3, false, "release");
        o.release_reported_ok(7, 1_000_000, ctl, 4, true, "release");
        assert!(o.violations.is_empty(), "gone, or a file none of p7's handles made");
        o.release_reported_ok(7, 1_000_000, ctl, 3, true, "release");
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I3);
        o.release_reported_ok(7, 60_000_000_000, ctl, 3, true, "release");
        assert_eq!(o.violations.len(), 1, "past maxHoldMs: the watchdog's unlink may be under way");
        o.ctls.get_mut(&(7, ctl)).unwrap().dispose_asked = true;
        o.release_reported_ok(7, 1_000_000, ctl, 3, true, "release");
        assert_eq!(o.violations.len(), 1, "a dispose from another task may have taken it");
        o.ctls.get_mut(&(7, ctl)).unwrap().dispose_asked = false;
        o.lock_tampered(3);
        o.release_reported_ok(7, 1_000_000, ctl, 3, true, "release");
        assert_eq!(o.violations.len(), 1, "an outside actor removed or replaced it");
    }

    /// A locked operation refused as disposed is the caller's due only once it asked for a
    /// dispose, outside a scope or from inside one (cargo-mutants: `ended_while_acquiring`
    /// `&&→||`).
    #[test]
    fn a_disposed_refusal_needs_a_dispose_the_workload_asked_for() {
        let mut o = Oracle::default();
        let (outside, inside, never) = (ControllerId(1), ControllerId(2), ControllerId(3));
        for ctl in [outside, inside, never] {
            controller_holding(&mut o, 7, ctl, None);
        }
        o.dispose_asked(7, outside);
        o.asked_in_scope(7, inside, true);
        for ctl in [outside, inside, never] {
            o.check_disposed_refusal(7, 1, ctl);
        }
        assert_eq!(o.violations.len(), 1, "{:?}", o.violations);
        assert_eq!(o.violations[0].invariant, InvariantId::I15);
        assert!(o.violations[0].detail.contains("c3"), "{}", o.violations[0].detail);
    }

    /// SPEC I6: an owner's release of a controller's retained lock while the workload is inside
    /// one of its scope bodies comes after the poison (cargo-mutants: `dispose_now`
    /// `retained == 0 → != 0` released under a running scope).
    #[test]
    fn a_release_under_a_running_scope_body_needs_the_poison_first() {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let mut o = Oracle::default();
        let ctl = ControllerId(1);
        controller_holding(&mut o, 7, ctl, None);
        o.ctls.get_mut(&(7, ctl)).unwrap().held_ever.push(HandleId(5));
        o.check_release_path(7, 1, HandleId(5), lock, ReleaseBy::Owner);
        assert!(o.violations.is_empty(), "no body runs: {:?}", o.violations);
        o.scope_body(7, ctl, true);
        o.check_release_path(
            7,
            2,
            HandleId(5),
            lock,
            ReleaseBy::Lost(heldlock_core::event::LossCause::Watchdog),
        );
        assert!(o.violations.is_empty(), "the watchdog's: {:?}", o.violations);
        o.check_release_path(7, 3, HandleId(5), lock, ReleaseBy::Owner);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I6);
        o.ctls.get_mut(&(7, ctl)).unwrap().poisoned = true;
        o.check_release_path(7, 4, HandleId(5), lock, ReleaseBy::Owner);
        o.scope_body(7, ctl, false);
        o.ctls.get_mut(&(7, ctl)).unwrap().poisoned = false;
        o.check_release_path(7, 5, HandleId(5), lock, ReleaseBy::Owner);
        assert_eq!(o.violations.len(), 1, "poisoned first, or the body has returned: {:?}", o.violations);
    }
}
