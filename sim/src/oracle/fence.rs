//! I6 poison before force, I10 fence: a poisoned controller never writes again, and a
//! transcript change while the lock was released is caught exactly when it is unowned and
//! non-benign.

use std::path::Path;

use heldlock_core::event::{ControllerId, HandleId, PoisonReason};

use super::{InvariantId, Oracle};

/// A kind of external transcript change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalChange {
    BenignAppend,
    CtimeOnly,
    NonBenignAppend,
    Rewrite,
    /// The transcript removed (a user reset the session); `Recreate` brings it back later.
    Delete,
    Recreate,
    /// The same bytes in a new inode (a restore from backup, an editor's save-by-rename).
    Replace,
    /// Bytes inside the fenced prefix changed, the length kept.
    RewriteInPlace,
    /// The same bytes written over the file in place: its mtime moves, nothing else. SPEC §3
    /// accepts a ctime-only change with identical content, not this: a write it cannot vouch
    /// for.
    SameBytes,
    /// The transcript's last line, a gateway's entry, appended again: a sync tool or a client
    /// retrying an append it had already made (at-least-once delivery). An unowned,
    /// non-benign append whose bytes are a gateway's own: only the entry's first copy is its.
    ReplayAppend,
}

impl ExternalChange {
    pub fn name(self) -> &'static str {
        match self {
            ExternalChange::BenignAppend => "benign-append",
            ExternalChange::CtimeOnly => "ctime-only",
            ExternalChange::NonBenignAppend => "non-benign-append",
            ExternalChange::Rewrite => "rewrite",
            ExternalChange::Delete => "delete",
            ExternalChange::Recreate => "recreate",
            ExternalChange::Replace => "replace-same-bytes",
            ExternalChange::RewriteInPlace => "rewrite-in-place",
            ExternalChange::SameBytes => "rewrite-same-bytes",
            ExternalChange::ReplayAppend => "replay-append",
        }
    }
}

/// Why SPEC §3 makes a reacquire a no-op, as the workload knew it when it called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoopReacquire {
    /// The controller was poisoned before the call.
    Poisoned,
    /// The workload had called `acquire_for_cleanup` before the call.
    CleanupAsked,
}

impl Oracle {
    /// `Poisoned`: a takeover needs an unowned change since the fence (I10).
    pub(super) fn on_poisoned(&mut self, pid: u32, now: u64, ctl: ControllerId, reason: PoisonReason) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        c.poisoned = true;
        c.missed_change = None;
        if reason == PoisonReason::Takeover && !c.change_since_fence {
            let detail = format!(
                "fence: {ctl} took a takeover on {} though only owned or benign changes happened",
                c.transcript.display()
            );
            self.violate(now, InvariantId::I10, Some(pid), None, detail);
        }
    }

    pub(super) fn on_fence_recorded(&mut self, pid: u32, ctl: ControllerId) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.fence_recorded();
        }
    }

    /// A release-for-prompt returned Ok to a caller that held the lock when it called, with no
    /// abort, dispose or poison meanwhile: the core let the lock go, so it recorded a fence
    /// (SPEC §3). Judged from the call, so a release that skipped the fence is caught by the
    /// next unowned change; a fence the core's event recorded already is left as it is.
    pub fn fence_owed_by_release(&mut self, pid: u32, ctl: ControllerId) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        if c.fence || c.poisoned || c.disposed || c.dispose_asked {
            return;
        }
        c.fence_recorded();
    }

    /// The workload is about to call `acquire_for_cleanup` on `ctl`.
    pub fn cleanup_asked(&mut self, pid: u32, ctl: ControllerId) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.cleanup_asked = true;
        }
    }

    /// Whether the workload has called `acquire_for_cleanup` on `ctl`.
    pub fn was_cleanup_asked(&self, pid: u32, ctl: ControllerId) -> bool {
        self.ctls.get(&(pid, ctl)).is_some_and(|c| c.cleanup_asked)
    }

    /// A reacquire that SPEC §3 makes a no-op returned: called on a controller already
    /// poisoned (I6), or after the workload had asked for its cleanup lock (I4: teardown
    /// began, and nothing later makes the controller hold again). The lock inode at the lock
    /// path now (`on_disk`) is then no handle this controller took since the call (`began`).
    pub fn noop_reacquire_returned(
        &mut self,
        pid: u32,
        now: u64,
        (ctl, why): (ControllerId, NoopReacquire),
        began: u64,
        on_disk: Option<u64>,
    ) {
        let Some(ino) = on_disk else {
            return;
        };
        let taken = self
            .handles
            .iter()
            .any(|((p, _), h)| *p == pid && h.ino == ino && h.acquired_ns >= began && h.held_by == Some(ctl));
        if !taken {
            return;
        }
        let (invariant, detail) = match why {
            NoopReacquire::Poisoned => {
                (InvariantId::I6, format!("poison: the reacquire of poisoned {ctl} took the lock back (inode {ino})"))
            }
            NoopReacquire::CleanupAsked => (
                InvariantId::I4,
                format!("teardown: the reacquire of {ctl}, begun after its cleanup was asked for, took the lock back (inode {ino})"),
            ),
        };
        self.violate(now, invariant, Some(pid), None, detail);
    }

    /// `FenceChecked` passed: no unowned non-benign change happened while released (I10).
    pub(super) fn on_fence_checked(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        c.released = false;
        if let Some(change) = c.missed_change.take() {
            let detail = format!(
                "fence: {ctl}'s fence check passed although {change} happened while its lock was released"
            );
            self.violate(now, InvariantId::I10, Some(pid), None, detail);
        }
    }

    /// The caller asked a write scope of `ctl` for a prompt release or (`dispose`) a dispose.
    pub fn asked_in_scope(&mut self, pid: u32, ctl: ControllerId, dispose: bool) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.asked_in_scope = Some(dispose || c.asked_in_scope == Some(true));
            c.dispose_asked |= dispose;
        }
    }

    /// A locked operation (a write scope, a reacquire) returned Ok to its caller (I10): an
    /// unowned, non-benign change while released must have been caught by it — unless SPEC §3
    /// makes it a no-op (disposed, poisoned, cleanup started).
    pub fn locked_op_ok(&mut self, pid: u32, now: u64, ctl: ControllerId) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        if c.poisoned || c.disposed || c.cleanup_started {
            return;
        }
        if let Some(change) = c.missed_change.take() {
            let detail = format!(
                "fence: a locked operation of {ctl} returned Ok although {change} happened while its lock \
                 was released"
            );
            self.violate(now, InvariantId::I10, Some(pid), None, detail);
        }
    }

    /// `WriteBegin`: not disposed (I4), not poisoned (I6), no missed change (I10), under a
    /// handle still held (I1).
    pub(super) fn on_write_begin(&mut self, pid: u32, now: u64, ctl: ControllerId, handle: Option<HandleId>) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        c.released = false;
        let poisoned = c.poisoned;
        let disposed = c.disposed;
        let missed = c.missed_change.take();
        if disposed {
            // SPEC I4: nothing after dispose makes the controller hold again, nor write.
            let detail = format!("dispose: {ctl} starts a transcript write after it was disposed");
            self.violate(now, InvariantId::I4, Some(pid), None, detail);
        }
        if poisoned {
            let detail = format!("poison: poisoned {ctl} starts a transcript write");
            self.violate(now, InvariantId::I6, Some(pid), None, detail);
        }
        if let Some(change) = missed {
            let detail =
                format!("fence: {ctl} writes although {change} happened while its lock was released");
            self.violate(now, InvariantId::I10, Some(pid), None, detail);
        }
        if let Some(h) = handle {
            self.check_write_under_lost(pid, now, ctl, h);
        }
    }

    /// A gateway's transcript append reached the disk. For the controllers of other processes
    /// it is an unowned, non-benign change (another gateway took the session over). (SimFs
    /// reports it: the fence is judged on what changed the file; I14 never sees this.)
    pub fn transcript_appended(&mut self, pid: u32, path: &Path) {
        self.unowned_change(path, |c_pid| c_pid != pid, "a write by another gateway");
        // SPEC §3: a version equal to a newer owned write of this process is accepted, so this
        // write absorbs what its process's other controllers had not yet caught.
        for ((c_pid, _), c) in self.ctls.iter_mut() {
            if *c_pid == pid && c.transcript == path {
                c.missed_change = None;
            }
        }
        self.appended(path);
    }

    /// A failing append left a prefix of its entry in the transcript: bytes no write
    /// completed, a non-benign change for every controller — its writer's too (SPEC §3 accepts
    /// only owned and benign changes, and a failed write is not owned).
    pub fn transcript_torn(&mut self, path: &Path, prefix: &[u8]) {
        self.unowned_change(path, |_| true, "a torn append");
        self.torn_fragment(path, prefix);
    }

    fn unowned_change(&mut self, path: &Path, applies: impl Fn(u32) -> bool, what: &str) {
        self.mark_unowned(path, applies, what, false);
    }

    /// An unowned change for the fences of `path` that `applies` to. An mtime-only one
    /// (`only_mtime`) is owed only while no append has landed since the fence, and gives way
    /// to any other change, which no append hides.
    fn mark_unowned(&mut self, path: &Path, applies: impl Fn(u32) -> bool, what: &str, only_mtime: bool) {
        for ((c_pid, _), c) in self.ctls.iter_mut() {
            if c.transcript != path || !c.fence || c.poisoned || !applies(*c_pid) {
                continue;
            }
            c.change_since_fence = true;
            let owed = match only_mtime {
                true => c.missed_change.is_none() && !c.appended_since_fence,
                false => c.missed_change.is_none() || c.missed_only_mtime,
            };
            if c.released && owed {
                c.missed_change = Some(what.to_owned());
                c.missed_only_mtime = only_mtime;
            }
        }
    }

    /// An external process changed a transcript: an unowned change for every fence (I10).
    /// Benign changes are none. An mtime-only rewrite (`SameBytes`) is one, but a fence can
    /// see it only while no append has landed since the fence: after one, the file is what
    /// that append alone would have made of it, with a later mtime (a fence that judges
    /// content accepts it, as SPEC §3 says), so any append before or after hides it.
    pub fn external_change(&mut self, path: &Path, change: ExternalChange) {
        match change {
            ExternalChange::BenignAppend => self.appended(path),
            ExternalChange::CtimeOnly => {}
            _ => {
                let what = format!("an external {}", change.name());
                self.mark_unowned(path, |_| true, &what, change == ExternalChange::SameBytes);
            }
        }
    }

    /// An append landed on `path`: since a fence, it hides an mtime-only rewrite before or
    /// after it.
    fn appended(&mut self, path: &Path) {
        for c in self.ctls.values_mut() {
            if c.transcript != path || !c.fence {
                continue;
            }
            c.appended_since_fence = true;
            if c.missed_only_mtime {
                c.missed_change = None;
                c.missed_only_mtime = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use heldlock_core::event::{LockEvent, OpId, OpKind};

    use super::*;

    const T: &str = "/srv/sessions/s0.jsonl";

    /// A controller of p1 on `T` whose fence is recorded and whose lock is released.
    fn released_controller() -> (Oracle, ControllerId) {
        let mut o = Oracle::default();
        let ctl = ControllerId(1);
        let procs = BTreeMap::new();
        let created = LockEvent::ControllerCreated {
            ctl,
            transcript: Path::new(T),
        };
        o.on_lock_event(1, 0, &created, &procs);
        o.on_fence_recorded(1, ctl);
        o.ctls.get_mut(&(1, ctl)).unwrap().released = true;
        (o, ctl)
    }

    #[test]
    fn a_locked_op_that_returns_ok_past_a_change_while_released_is_caught() {
        let (mut o, ctl) = released_controller();
        o.locked_op_ok(1, 1, ctl);
        assert!(o.violations.is_empty(), "no change: Ok is right");
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.locked_op_ok(1, 2, ctl);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I10);

        let (mut o, ctl) = released_controller();
        let cleanup = LockEvent::OpBegin {
            ctl,
            op: OpId(9),
            kind: OpKind::Cleanup,
        };
        o.on_lock_event(1, 1, &cleanup, &BTreeMap::new());
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.locked_op_ok(1, 2, ctl);
        assert!(o.violations.is_empty(), "cleanup started: a reacquire is a no-op by SPEC §3");
    }

    #[test]
    fn a_replayed_line_is_an_unowned_change_a_benign_append_is_not() {
        let (mut o, ctl) = released_controller();
        o.external_change(Path::new(T), ExternalChange::BenignAppend);
        o.locked_op_ok(1, 1, ctl);
        assert!(o.violations.is_empty(), "a benign append: Ok is right");
        o.external_change(Path::new(T), ExternalChange::ReplayAppend);
        o.locked_op_ok(1, 2, ctl);
        assert_eq!(o.violations.len(), 1, "a replayed entry of ours is not ours");
        assert_eq!(o.violations[0].invariant, InvariantId::I10);
    }

    /// What a no-op reacquire of p1's released controller (called at 10, returned at 20) is
    /// judged: `Some(3)`, a handle of it taken before the call, and nothing on disk pass;
    /// `Some(4)`, one taken since the call, is the invariant returned.
    fn noop_reacquire_verdicts(why: NoopReacquire) -> (Vec<InvariantId>, Vec<InvariantId>) {
        let lock = Path::new("/srv/sessions/s0.jsonl.lock");
        let (mut o, ctl) = released_controller();
        for (handle, ino, acquired_ns) in [(1, 3, 5), (2, 4, 12)] {
            let mut rec = super::super::records::HandleRec::open(lock, ino, acquired_ns, 60_000);
            rec.held_by = Some(ctl);
            o.handles.insert((1, HandleId(handle)), rec);
        }
        let verdicts = |o: &mut Oracle, on_disk: Option<u64>| {
            o.noop_reacquire_returned(1, 20, (ctl, why), 10, on_disk);
            o.violations.drain(..).map(|v| v.invariant).collect::<Vec<_>>()
        };
        let passed: Vec<InvariantId> =
            [Some(3), None].into_iter().flat_map(|d| verdicts(&mut o, d)).collect();
        (passed, verdicts(&mut o, Some(4)))
    }

    /// SPEC §3: a poisoned controller's reacquire is a no-op (cargo-mutants: `reacquire`'s
    /// `||→&&` at the takeover test).
    #[test]
    fn a_poisoned_controllers_reacquire_that_took_the_lock_back_is_flagged() {
        let (passed, taken) = noop_reacquire_verdicts(NoopReacquire::Poisoned);
        assert!(passed.is_empty(), "taken before the call, or nothing of p1's on disk");
        assert_eq!(taken, [InvariantId::I6]);
    }

    /// SPEC §3: a reacquire begun after cleanup started is a no-op (cargo-mutants: `reacquire`'s
    /// `delete !` at the cleanup test — an aborted body whose prompt settles after the
    /// turn's teardown asked for its cleanup lock took the lock back).
    #[test]
    fn a_reacquire_begun_after_the_cleanup_was_asked_for_that_took_the_lock_is_flagged() {
        let (mut o, ctl) = released_controller();
        assert!(!o.was_cleanup_asked(1, ctl));
        o.cleanup_asked(1, ctl);
        assert!(o.was_cleanup_asked(1, ctl), "the workload's call is recorded");
        let (passed, taken) = noop_reacquire_verdicts(NoopReacquire::CleanupAsked);
        assert!(passed.is_empty(), "taken before the call, or nothing of p1's on disk");
        assert_eq!(taken, [InvariantId::I4]);
    }

    /// A controller of p1 on `T` whose prompt release returned to its caller, with the core's
    /// `FenceRecorded` event (`recorded`) or without it.
    fn returned_from_release(recorded: bool, let_go: bool) -> (Oracle, ControllerId) {
        let (mut o, ctl) = released_controller();
        if !recorded {
            o.ctls.get_mut(&(1, ctl)).unwrap().fence = false;
        }
        if let_go {
            o.fence_owed_by_release(1, ctl);
        }
        (o, ctl)
    }

    #[test]
    fn a_release_that_returned_ok_owes_a_fence_even_without_the_cores_event() {
        let (mut o, ctl) = returned_from_release(false, true);
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.locked_op_ok(1, 2, ctl);
        assert_eq!(o.violations.len(), 1, "the change is judged against the owed fence");
        assert_eq!(o.violations[0].invariant, InvariantId::I10);

        let (mut o, ctl) = returned_from_release(false, false);
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.locked_op_ok(1, 2, ctl);
        assert!(o.violations.is_empty(), "an abort raced the release: no fence is owed");

        let (mut o, ctl) = released_controller();
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.fence_owed_by_release(1, ctl);
        o.locked_op_ok(1, 2, ctl);
        assert_eq!(o.violations.len(), 1, "the return never hides a change after the core's fence");

        let (mut o, ctl) = returned_from_release(false, false);
        o.ctls.get_mut(&(1, ctl)).unwrap().dispose_asked = true;
        o.fence_owed_by_release(1, ctl);
        o.external_change(Path::new(T), ExternalChange::Rewrite);
        o.locked_op_ok(1, 2, ctl);
        assert!(o.violations.is_empty(), "a dispose may have let the lock go: no fence is owed");
    }
}
