//! What the oracle remembers: facts about processes, and its own record of handles,
//! controllers, operations, lock inodes and abort deadlines. Ordered maps only: iteration order
//! shows in reports, and a seed must replay byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use heldlock_core::event::{ControllerId, HandleId, OpId, OpKind};

/// What the oracle knows of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcFacts {
    pub alive: bool,
    pub starttime: Option<u64>,
    /// Paused now, or paused at some point since this simulated time (ns).
    pub paused_since_ns: Option<u64>,
    pub last_resume_ns: Option<u64>,
    /// Fs ops of this process hung right now: it may wait on them, legitimately, until they
    /// end (the liveness phase ends every hang).
    pub hung_ops: u32,
    /// When the last hang of this process ended.
    pub last_unhung_ns: Option<u64>,
    pub died_ns: Option<u64>,
    /// Simulated fs latency and slow-op stalls this process has sat through, in total (ms).
    pub stalled_ms: u64,
    /// When an error last struck one of its fs ops (injected, or real: EMFILE from its fd
    /// limit…), not counting EEXIST and ENOENT, which the lock handles.
    pub last_error_ns: Option<u64>,
}

impl ProcFacts {
    /// Did the process run freely (alive, its event loop not paused) over [from, now]?
    pub fn ran_freely_since(&self, from_ns: u64) -> bool {
        self.alive && self.paused_since_ns.is_none() && self.last_resume_ns.is_none_or(|r| r < from_ns)
    }

    /// Is one of its fs ops hung now, or did one end since `from_ns`?
    pub(super) fn hung_since(&self, from_ns: u64) -> bool {
        self.hung_ops > 0 || self.last_unhung_ns.is_some_and(|t| t >= from_ns)
    }

    /// Was the process held up over [from, now] — dead, paused, or behind a hung fs op — so
    /// that no time bound on what it did then can be judged?
    pub fn held_up_since(&self, from_ns: u64) -> bool {
        !self.ran_freely_since(from_ns) || self.hung_since(from_ns)
    }

    /// From when, at the earliest `from_ns`, the process has run with nothing to excuse it —
    /// alive, not paused, no op hung; `None` while an excuse lasts. No exemption outlives its
    /// cause: the clock restarts when the pause or the hang ends.
    pub fn unexcused_since(&self, from_ns: u64) -> Option<u64> {
        (self.alive && self.paused_since_ns.is_none() && self.hung_ops == 0)
            .then(|| from_ns.max(self.last_resume_ns.unwrap_or(0)).max(self.last_unhung_ns.unwrap_or(0)))
    }
}

pub(super) struct HandleRec {
    pub lock: PathBuf,
    pub ino: u64,
    pub acquired_ns: u64,
    pub max_hold_ms: u64,
    pub released_ns: Option<u64>,
    /// The release finished (ReleaseEnd).
    pub release_ended: bool,
    pub lost: bool,
    /// An external actor removed or replaced its lock file: exclusion no longer rests on it.
    pub tampered: bool,
    /// The controller whose `held` slot has it now.
    pub held_by: Option<ControllerId>,
}

impl HandleRec {
    /// A handle just acquired on `lock` (inode `ino`): open, untouched, in no `held` slot.
    pub fn open(lock: &std::path::Path, ino: u64, acquired_ns: u64, max_hold_ms: u64) -> Self {
        HandleRec {
            lock: lock.to_owned(),
            ino,
            acquired_ns,
            max_hold_ms,
            released_ns: None,
            release_ended: false,
            lost: false,
            tampered: false,
            held_by: None,
        }
    }
}

impl CtlRec {
    /// A fence was recorded: nothing has changed since it.
    pub fn fence_recorded(&mut self) {
        self.fence = true;
        self.change_since_fence = false;
        self.missed_change = None;
        self.appended_since_fence = false;
        self.missed_only_mtime = false;
    }
}

#[derive(Default)]
pub(super) struct CtlRec {
    pub transcript: PathBuf,
    pub held: Option<HandleId>,
    pub held_ever: Vec<HandleId>,
    pub poisoned: bool,
    pub disposed: bool,
    pub fence: bool,
    pub change_since_fence: bool,
    /// Between a prompt release and the next locked operation.
    pub released: bool,
    pub missed_change: Option<String>,
    /// An append landed since the fence (anyone's): it moved the mtime, and so hides an
    /// mtime-only rewrite (`ExternalChange::SameBytes`) from a fence that judges content, and
    /// from one without a fingerprint.
    pub appended_since_fence: bool,
    /// `missed_change` is an mtime-only rewrite, which a later append hides.
    pub missed_only_mtime: bool,
    pub open_writes: BTreeSet<OpId>,
    pub owed_deferred: BTreeSet<OpId>,
    pub drain_owner: Option<OpId>,
    /// The caller asked a write scope for a prompt release (false) or a dispose (true): when
    /// the scope ends the controller holds nothing — judged from the call, not the core's
    /// `ReleaseDeferred`.
    pub asked_in_scope: Option<bool>,
    /// An acquire-for-cleanup began: a reacquire may be a no-op from then on (SPEC §3).
    pub cleanup_started: bool,
    /// The workload called `dispose` (outside a scope, or from inside one): only then may a
    /// locked operation be refused as disposed (I15) — from the call, not the core's events.
    pub dispose_asked: bool,
    /// The workload called `acquire_for_cleanup` (from the call, not the core's `OpBegin`): a
    /// reacquire that begins after it is a no-op by SPEC §3.
    pub cleanup_asked: bool,
    /// Write-scope bodies of the workload running now (entered, not yet returned): while one
    /// runs, the scope's retained use is active (SPEC I6).
    pub bodies_running: u32,
    /// The handle its cleanup took over from `held` (`Duty::HandToCleanup`).
    pub cleanup_handle: Option<HandleId>,
}

pub(super) struct OpRec {
    pub ctl: ControllerId,
    pub kind: OpKind,
    pub began_ns: u64,
    pub cleared: Vec<HandleId>,
    /// The process's fs stalls so far when the op began (ProcFacts::stalled_ms).
    pub stalled_ms: u64,
}

/// Where a lock inode is linked, as SimFs saw its creates, exchanges and unlinks happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Linked {
    /// At its lock path (made or published there, or exchanged back in).
    AtLock,
    /// Moved off its lock path by `by`'s exchange (or move aside) at `since_ns`: linked at that
    /// process's private name.
    Aside { by: u32, since_ns: u64 },
    /// Unlinked: at no name.
    Gone,
}

pub(super) struct InodeRec {
    pub pid: u32,
    pub handle: Option<HandleId>,
    pub created_ns: u64,
    pub linked: Linked,
    /// When its creator (this pid and incarnation) died: a later process under the same pid
    /// does not bring it back.
    pub creator_died_ns: Option<u64>,
}

pub(super) struct AcquireRec {
    pub started_ns: u64,
    pub timeout_ms: u64,
    pub lock: PathBuf,
    /// The process's `ProcFacts::stalled_ms` when the acquire began.
    pub stalled_ms: u64,
    /// Sampled time the lock stood unblocked while the waiter ran freely (I15), and when the
    /// last sample was taken.
    pub unblocked_ms: u64,
    pub sampled_ns: Option<u64>,
    /// The first injected error of one of its own calls that it owes its caller (the errno
    /// and the path the call named), and the private name it last moved a lock aside to
    /// (`propagation`).
    pub owed_error: Option<(i32, PathBuf)>,
    pub moved_aside: Option<PathBuf>,
    /// The first injected error of its put back of what it moved aside: owed even then.
    pub owed_put_back: Option<(i32, PathBuf)>,
}

pub(super) struct AbortDeadline {
    pub pid: u32,
    pub ctl: ControllerId,
    pub handle: HandleId,
    pub requested_ns: u64,
    pub deadline_ns: u64,
}
