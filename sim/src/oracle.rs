//! The oracle: SPEC §4 (I1–I14) checked online, on every lock, controller and filesystem event,
//! and at quiescence. It knows the contract, never the implementation: nothing here asks which
//! mutant is on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use heldlock_core::controller::SETTLE_BOUND_MS;
use heldlock_core::event::{ControllerId, Duty, HandleId, LockEvent, OpId, OpKind, PoisonReason, ReleaseBy};
use heldlock_core::file_lock::{ORPHAN_GRACE_MS, POLL_MS, WATCHDOG_INTERVAL_MS};
use heldlock_core::payload::LockPayload;

use crate::report::Violation;

/// The invariants the oracle checks (SPEC §4).
pub const INVARIANTS: [(&str, &str); 14] = [
    (
        "I1",
        "exclusion: one live holder per lock; a holder that lost its lock never writes again",
    ),
    (
        "I2",
        "exactly-once: a handle is released at most once; a release removes only its own file",
    ),
    (
        "I3",
        "held ⇒ released: once held is cleared, the release is issued before the clearing op returns",
    ),
    ("I4", "dispose: after dispose the controller holds nothing, and never holds again"),
    ("I5", "bounded abort: an abort's release is issued within the settle bound + ε"),
    ("I6", "poison before force: a poisoned controller never touches the transcript again"),
    ("I7", "next turn: when the owner is released, the attempt's lock is already free"),
    ("I8", "drain: one drain owner; no handle taken or released by two paths"),
    ("I9", "no deadlock: release, reacquire, cleanup and dispose return"),
    (
        "I10",
        "fence: unowned non-benign changes while released are caught; owned and benign are not",
    ),
    (
        "I11",
        "breaker safety: never remove a live lock; always recover dead/recycled/orphan locks",
    ),
    ("I12", "timeout: contention with a live holder ends in TimeoutError after ≈ timeoutMs"),
    ("I13", "watchdog: a lock held past maxHoldMs is freed within maxHoldMs + 60 s"),
    (
        "I14",
        "no lost writes: every acknowledged transcript write is in the file, whole, in order",
    ),
];

/// Slack for "≈" and "within": scheduling, poll granularity and simulated fs latency.
const SLACK_MS: u64 = 1_500;
/// An operation that can only wait on the drain, retained uses, the settle bound or one lock
/// acquire must return within this (lock timeout + settle bound + slack).
const OP_LIVENESS_MS: u64 = 60_000 + SETTLE_BOUND_MS + 10_000;

// Ordered maps only: iteration order shows in reports, and a seed must replay byte for byte.

/// What the oracle knows of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcFacts {
    pub alive: bool,
    pub starttime: Option<u64>,
    /// Paused now, or paused at some point since this simulated time (ns).
    pub paused_since_ns: Option<u64>,
    pub last_resume_ns: Option<u64>,
    /// An fs op of this process hung: it may wait forever, legitimately.
    pub hung: bool,
    pub died_ns: Option<u64>,
}

impl ProcFacts {
    /// Did the process run freely over [from, now]?
    pub fn ran_freely_since(&self, from_ns: u64) -> bool {
        self.alive && self.paused_since_ns.is_none() && self.last_resume_ns.is_none_or(|r| r < from_ns)
    }
}

struct HandleRec {
    lock: PathBuf,
    ino: u64,
    acquired_ns: u64,
    max_hold_ms: u64,
    released_ns: Option<u64>,
    /// The release finished (ReleaseEnd).
    release_ended: bool,
    lost: bool,
    /// An external actor removed or replaced its lock file: exclusion no longer rests on it.
    tampered: bool,
    /// The controller whose `held` slot has it now.
    held_by: Option<ControllerId>,
}

#[derive(Default)]
struct CtlRec {
    transcript: PathBuf,
    held: Option<HandleId>,
    held_ever: Vec<HandleId>,
    poisoned: bool,
    disposed: bool,
    fence: bool,
    change_since_fence: bool,
    /// Between a prompt release and the next locked operation.
    released: bool,
    /// Cleanup began: from here on the controller writes only under the cleanup's lock, so a
    /// prompt release (an abort's graceful path) does not leave it released.
    cleanup_begun: bool,
    missed_change: Option<String>,
    open_writes: BTreeSet<OpId>,
    owed_deferred: BTreeSet<OpId>,
    drain_owner: Option<OpId>,
}

struct OpRec {
    ctl: ControllerId,
    kind: OpKind,
    began_ns: u64,
    cleared: Vec<HandleId>,
}

struct InodeRec {
    pid: u32,
    handle: Option<HandleId>,
    /// When its creator (this pid and incarnation) died: a later process under the same pid
    /// does not bring it back.
    creator_died_ns: Option<u64>,
}

struct AbortDeadline {
    pid: u32,
    ctl: ControllerId,
    handle: HandleId,
    requested_ns: u64,
    deadline_ns: u64,
}

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
        }
    }
    fn benign(self) -> bool {
        matches!(self, ExternalChange::BenignAppend | ExternalChange::CtimeOnly)
    }
}

#[derive(Default)]
pub struct Oracle {
    handles: BTreeMap<(u32, HandleId), HandleRec>,
    ctls: BTreeMap<(u32, ControllerId), CtlRec>,
    ops: BTreeMap<(u32, OpId), OpRec>,
    inodes: BTreeMap<u64, InodeRec>,
    /// (pid, acquire) ⇒ (started, timeout, lock path).
    acquires: BTreeMap<(u32, u64), (u64, u64, PathBuf)>,
    aborts: Vec<AbortDeadline>,
    /// Expected transcript contents (I14).
    transcripts: BTreeMap<PathBuf, Vec<u8>>,
    pub violations: Vec<Violation>,
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

impl Oracle {
    fn violate(
        &mut self,
        now_ns: u64,
        invariant: &'static str,
        pid: Option<u32>,
        lock: Option<&Path>,
        detail: String,
    ) {
        self.violations.push(Violation {
            invariant,
            detail,
            pid,
            lock: lock.map(Path::to_owned),
            at_ns: now_ns,
        });
    }

    pub fn transcript_created(&mut self, path: &Path, content: &[u8]) {
        self.transcripts.insert(path.to_owned(), content.to_vec());
    }

    fn live(&self, key: &(u32, HandleId), procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.handles
            .get(key)
            .is_some_and(|h| {
                h.released_ns.is_none() && !h.lost && !h.tampered && procs.get(&key.0).is_some_and(|p| p.alive)
            })
    }

    /// A lock, controller or owner event of process `pid`.
    pub fn on_lock_event(
        &mut self,
        pid: u32,
        now: u64,
        ev: &LockEvent<'_>,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        match *ev {
            LockEvent::AcquireStart {
                acquire,
                timeout_ms,
                lock,
            } => {
                self.acquires.insert((pid, acquire), (now, timeout_ms, lock.to_owned()));
            }
            LockEvent::Acquired {
                acquire,
                handle,
                lock,
                ino,
                max_hold_ms,
            } => {
                self.acquires.remove(&(pid, acquire));
                let others: Vec<_> = self
                    .handles
                    .iter()
                    .filter(|(k, h)| h.lock == lock && self.live(k, procs))
                    .map(|(k, _)| *k)
                    .collect();
                if let Some((other_pid, other)) = others.first() {
                    self.violate(
                        now,
                        "I1",
                        Some(pid),
                        Some(lock),
                        format!(
                        "exclusion: p{pid} acquired {handle} while p{other_pid} {other} still holds the lock"
                    ),
                    );
                }
                self.handles.insert(
                    (pid, handle),
                    HandleRec {
                        lock: lock.to_owned(),
                        ino,
                        acquired_ns: now,
                        max_hold_ms,
                        released_ns: None,
                        release_ended: false,
                        lost: false,
                        tampered: false,
                        held_by: None,
                    },
                );
                if let Some(inode) = self.inodes.get_mut(&ino) {
                    inode.handle = Some(handle);
                }
            }
            LockEvent::AcquireFailed {
                acquire,
                lock,
                timeout,
                ..
            } => {
                let Some((start, timeout_ms, _)) = self.acquires.remove(&(pid, acquire)) else {
                    return;
                };
                if timeout {
                    self.check_timeout(pid, now, start, timeout_ms, lock, procs);
                }
            }
            LockEvent::ReleaseBegin { handle, lock, by } => {
                let Some(rec) = self.handles.get_mut(&(pid, handle)) else {
                    return;
                };
                if rec.released_ns.is_some() {
                    self.violate(
                        now,
                        "I2",
                        Some(pid),
                        Some(lock),
                        format!("exactly-once: {handle} released twice"),
                    );
                    return;
                }
                rec.released_ns = Some(now);
                if by == ReleaseBy::Owner {
                    if let Some(ctl) = rec.held_by {
                        self.violate(
                            now,
                            "I8",
                            Some(pid),
                            Some(lock),
                            format!(
                                "one path per handle: {handle} released while {ctl} still has it in held \
                             (a second path will release it again)"
                            ),
                        );
                    }
                }
            }
            LockEvent::ReleaseEnd { handle, .. } => {
                if let Some(rec) = self.handles.get_mut(&(pid, handle)) {
                    rec.release_ended = true;
                }
            }
            LockEvent::HandleLost { handle, .. } => {
                if let Some(rec) = self.handles.get_mut(&(pid, handle)) {
                    rec.lost = true;
                }
            }
            LockEvent::OwnerReleased { .. } => {}
            LockEvent::ControllerCreated { ctl, transcript } => {
                self.ctls.insert(
                    (pid, ctl),
                    CtlRec {
                        transcript: transcript.to_owned(),
                        ..CtlRec::default()
                    },
                );
            }
            LockEvent::OpBegin { ctl, op, kind } => {
                self.ops.insert(
                    (pid, op),
                    OpRec {
                        ctl,
                        kind,
                        began_ns: now,
                        cleared: Vec::new(),
                    },
                );
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    match kind {
                        OpKind::Write => {
                            c.open_writes.insert(op);
                        }
                        OpKind::Cleanup => c.cleanup_begun = true,
                        _ => {}
                    }
                }
            }
            LockEvent::OpEnd { ctl, op, kind, .. } => self.on_op_end(pid, now, ctl, op, kind),
            LockEvent::HeldSet { ctl, handle, .. } => {
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
                    self.violate(
                        now,
                        "I4",
                        Some(pid),
                        None,
                        format!(
                            "dispose: {ctl} holds {handle} again after it was disposed ({})",
                            transcript.display()
                        ),
                    );
                }
            }
            LockEvent::HeldCleared {
                ctl,
                op,
                handle,
                duty,
            } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.held = None;
                }
                if let Some(h) = self.handles.get_mut(&(pid, handle)) {
                    h.held_by = None;
                }
                if duty == Duty::Release {
                    if let Some(o) = self.ops.get_mut(&(pid, op)) {
                        o.cleared.push(handle);
                    }
                }
            }
            LockEvent::Poisoned { ctl, reason, .. } => {
                let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
                    return;
                };
                c.poisoned = true;
                c.missed_change = None;
                if reason == PoisonReason::Takeover && !c.change_since_fence {
                    let t = c.transcript.clone();
                    self.violate(
                        now,
                        "I10",
                        Some(pid),
                        None,
                        format!(
                            "fence: {ctl} took a takeover on {} though only owned or benign changes happened",
                            t.display()
                        ),
                    );
                }
            }
            LockEvent::DrainOwned { ctl, op } => {
                let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
                    return;
                };
                if let Some(other) = c.drain_owner {
                    self.violate(
                        now,
                        "I8",
                        Some(pid),
                        None,
                        format!("drain: {op} became drain owner of {ctl} while {other} still owns it"),
                    );
                } else {
                    c.drain_owner = Some(op);
                }
            }
            LockEvent::DrainFreed { ctl, op } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    if c.drain_owner == Some(op) {
                        c.drain_owner = None;
                    }
                }
            }
            LockEvent::ReleaseDeferred { ctl, op } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.owed_deferred.insert(op);
                }
            }
            LockEvent::AbortRequested { ctl, .. } => {
                let mut owed: Vec<HandleId> = Vec::new();
                if let Some(c) = self.ctls.get(&(pid, ctl)) {
                    owed.extend(c.held);
                }
                // Handles a still-running operation of this controller cleared but has not
                // released yet (a graceful release stuck in fence I/O) are owed as well.
                for ((p, _), o) in &self.ops {
                    if *p == pid && o.ctl == ctl {
                        owed.extend(o.cleared.iter().filter(|h| {
                            self.handles.get(&(pid, **h)).is_some_and(|r| r.released_ns.is_none())
                        }));
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
            LockEvent::FenceRecorded { ctl, .. } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.fence = true;
                    c.change_since_fence = false;
                    c.missed_change = None;
                }
            }
            LockEvent::FenceChecked { ctl, .. } => {
                let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
                    return;
                };
                c.released = false;
                if let Some(change) = c.missed_change.take() {
                    self.violate(now, "I10", Some(pid), None, format!(
                        "fence: {ctl}'s fence check passed although {change} happened while its lock was released"
                    ));
                }
            }
            LockEvent::WriteBegin { ctl, handle, .. } => self.on_write_begin(pid, now, ctl, handle),
            LockEvent::PromptReleased { ctl, .. } => {
                let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
                    return;
                };
                // Released: no retained lock, and no scope holding a short lock either.
                c.released = c.open_writes.is_empty() && !c.cleanup_begun;
                if let Some(h) = c.held {
                    self.violate(
                        now,
                        "I3",
                        Some(pid),
                        None,
                        format!(
                            "held ⇒ released: release-for-prompt of {ctl} returned while it still holds {h}"
                        ),
                    );
                }
            }
            LockEvent::Disposed { ctl } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.disposed = true;
                }
            }
            LockEvent::Reclaimed { .. }
            | LockEvent::GuardRecovered { .. }
            | LockEvent::OwnerAcquired { .. }
            | LockEvent::WriteEnd { .. } => {}
        }
    }

    fn on_op_end(&mut self, pid: u32, now: u64, ctl: ControllerId, op: OpId, kind: OpKind) {
        let Some(rec) = self.ops.remove(&(pid, op)) else {
            return;
        };
        for handle in rec.cleared {
            let released = self.handles.get(&(pid, handle)).is_some_and(|h| h.released_ns.is_some());
            if !released {
                let lock = self.handles.get(&(pid, handle)).map(|h| h.lock.clone());
                self.violate(
                    now,
                    "I3",
                    Some(pid),
                    lock.as_deref(),
                    format!(
                    "held ⇒ released: {} of {ctl} cleared held {handle} and returned without releasing it",
                    kind.name()
                ),
                );
            }
        }
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        let mut found = Vec::new();
        if kind == OpKind::Write {
            c.open_writes.remove(&op);
            if c.open_writes.is_empty() && c.held.is_none() && c.fence && !c.cleanup_begun {
                c.released = true;
            }
            if c.owed_deferred.remove(&op) && c.open_writes.is_empty() {
                if let Some(h) = c.held {
                    found.push((
                        "I3",
                        format!(
                            "held ⇒ released: the write scope {op} that deferred a prompt release ended, \
                         and {ctl} still holds {h}"
                        ),
                    ));
                }
            }
        }
        if kind == OpKind::Dispose {
            if let Some(h) = c.held {
                found.push(("I4", format!("dispose: dispose of {ctl} returned holding {h}")));
            }
        }
        for (inv, detail) in found {
            self.violate(now, inv, Some(pid), None, detail);
        }
    }

    fn on_write_begin(&mut self, pid: u32, now: u64, ctl: ControllerId, handle: Option<HandleId>) {
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        c.released = false;
        let poisoned = c.poisoned;
        let missed = c.missed_change.take();
        if poisoned {
            self.violate(
                now,
                "I6",
                Some(pid),
                None,
                format!("poison: poisoned {ctl} starts a transcript write"),
            );
        }
        if let Some(change) = missed {
            self.violate(
                now,
                "I10",
                Some(pid),
                None,
                format!("fence: {ctl} writes although {change} happened while its lock was released"),
            );
        }
        if let Some(h) = handle {
            if let Some(rec) = self.handles.get(&(pid, h)).filter(|r| !r.tampered) {
                if rec.released_ns.is_some() || rec.lost {
                    let what = if rec.lost { "lost" } else { "released" };
                    let lock = rec.lock.clone();
                    self.violate(
                        now,
                        "I1",
                        Some(pid),
                        Some(&lock),
                        format!(
                            "exclusion: {ctl} starts a transcript write under {h}, which it already {what}"
                        ),
                    );
                }
            }
        }
    }

    fn check_timeout(
        &mut self,
        pid: u32,
        now: u64,
        start: u64,
        timeout_ms: u64,
        lock: &Path,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let waited = ms(now - start);
        let free = procs.get(&pid).is_some_and(|p| p.ran_freely_since(start) && !p.hung);
        if waited + 1 < timeout_ms {
            self.violate(
                now,
                "I12",
                Some(pid),
                Some(lock),
                format!("timeout: TimeoutError after {waited} ms, before the {timeout_ms} ms budget"),
            );
        } else if free && waited > timeout_ms + POLL_MS + SLACK_MS {
            self.violate(
                now,
                "I12",
                Some(pid),
                Some(lock),
                format!("timeout: TimeoutError only after {waited} ms for a {timeout_ms} ms budget"),
            );
        }
    }

    /// I11 (recovery half): a timeout on a lock whose creator was recoverably gone long enough.
    pub fn check_recoverable(
        &mut self,
        pid: u32,
        now: u64,
        lock: &Path,
        on_disk: Option<(u64, Vec<u8>)>,
        table: &heldlock_core::memprocs::ProcessTable,
    ) {
        let Some((ino, bytes)) = on_disk else { return };
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        let Some(died) = inode.creator_died_ns else {
            return;
        };
        let Some(payload) = LockPayload::parse(&bytes) else {
            return;
        };
        // An EPERM probe means alive, but `/proc/<pid>/stat` stays readable in this world: its
        // start time and owner still tell a recycled pid or a foreign program (SPEC §1.1).
        let recoverable = match table.get(inode.pid) {
            None => true,
            Some(e) if e.probe_denied && e.state == heldlock_core::memprocs::ProcState::Zombie => false,
            Some(e) if e.state == heldlock_core::memprocs::ProcState::Zombie => true,
            Some(e) => {
                (payload.starttime.is_some() && e.starttime.is_some() && e.starttime != payload.starttime)
                    || e.gateway == Some(false)
            }
        };
        let long_enough = now > died + (ORPHAN_GRACE_MS + 2 * SLACK_MS) * 1_000_000;
        if recoverable && long_enough {
            let creator = inode.pid;
            self.violate(
                now,
                "I11",
                Some(pid),
                Some(lock),
                format!(
                    "breaker: timed out on a lock whose holder p{creator} died {} ms ago and is recoverable",
                    ms(now - died)
                ),
            );
        }
    }

    /// A live gateway holding a lock that at least `waiters` other processes are waiting to
    /// acquire (chaos aims crashes there: a dead holder with waiters is where reclaimers race).
    pub fn contended_holder(&self, waiters: usize, procs: &BTreeMap<u32, ProcFacts>) -> Option<u32> {
        self.handles.iter().find_map(|(key, h)| {
            let mut pids: Vec<u32> = self
                .acquires
                .iter()
                .filter(|((p, _), (_, _, lock))| {
                    *p != key.0 && *lock == h.lock && procs.get(p).is_some_and(|f| f.alive && !f.hung)
                })
                .map(|((p, _), _)| *p)
                .collect();
            pids.dedup();
            (pids.len() >= waiters && self.live(key, procs)).then_some(key.0)
        })
    }

    /// The canonical path of a controller's transcript.
    pub fn set_transcript(&mut self, pid: u32, ctl: ControllerId, canonical: PathBuf) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.transcript = canonical;
        }
    }

    /// The process died: its handles, controllers and operations die with it (its lock files
    /// stay on disk, judged by their inode records).
    pub fn process_died(&mut self, pid: u32, now: u64) {
        self.handles.retain(|(p, _), _| *p != pid);
        self.ctls.retain(|(p, _), _| *p != pid);
        self.ops.retain(|(p, _), _| *p != pid);
        self.acquires.retain(|(p, _), _| *p != pid);
        self.aborts.retain(|a| a.pid != pid);
        // Its lock files stay on disk, held by no one: a restart under the same pid starts
        // its handle numbers over.
        for inode in self.inodes.values_mut() {
            if inode.pid == pid {
                inode.handle = None;
                inode.creator_died_ns.get_or_insert(now);
            }
        }
    }

    /// Whether a live handle of a live process has lock inode `ino`.
    pub fn holds_inode(&self, ino: u64, procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.handles.iter().any(|(k, h)| h.ino == ino && self.live(k, procs))
    }

    /// An external actor removed or replaced lock inode `ino` behind its holder's back: the
    /// holder cannot know, so its later writes and a successor's acquire are not its fault.
    pub fn lock_tampered(&mut self, ino: u64) {
        for h in self.handles.values_mut() {
            if h.ino == ino {
                h.tampered = true;
            }
        }
    }

    /// A lock file came into being (create_exclusive succeeded).
    pub fn lock_created(&mut self, pid: u32, ino: u64) {
        self.inodes.insert(
            ino,
            InodeRec {
                pid,
                handle: None,
                creator_died_ns: None,
            },
        );
    }

    /// A lock file inode was unlinked by `pid` (I2, I11 safety half).
    pub fn lock_unlinked(
        &mut self,
        pid: u32,
        now: u64,
        lock: &Path,
        ino: u64,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        let Some(handle) = inode.handle else { return };
        let key = (inode.pid, handle);
        if !self.live(&key, procs) || self.handles.get(&key).is_some_and(|h| h.ino != ino) {
            return;
        }
        let releasing_other = self.handles.iter().any(|((p, h), r)| {
            *p == pid
                && *h != handle
                && r.lock == lock
                && r.released_ns.is_some()
                && !r.release_ended
                && r.ino != ino
        });
        let (inv, what) = if releasing_other {
            ("I2", "a release")
        } else {
            ("I11", "a stale-lock reclaim")
        };
        self.violate(
            now,
            inv,
            Some(pid),
            Some(lock),
            format!("{what} by p{pid} removed the live lock of p{} {handle} (inode {ino})", key.0),
        );
    }

    /// A gateway's transcript append succeeded. For the controllers of other processes it is an
    /// unowned, non-benign change (another gateway took the session over).
    pub fn transcript_appended(&mut self, pid: u32, path: &Path, data: &[u8]) {
        self.transcripts.entry(path.to_owned()).or_default().extend_from_slice(data);
        self.unowned_change(path, |c_pid| c_pid != pid, "a write by another gateway");
        // SPEC §3: a version equal to a newer owned write of this process is accepted, so this
        // write absorbs what its process's other controllers had not yet caught.
        for ((c_pid, _), c) in self.ctls.iter_mut() {
            if *c_pid == pid && c.transcript == path {
                c.missed_change = None;
            }
        }
    }

    /// A failing append of `pid` left `prefix` of its entry in the transcript: bytes that no
    /// write completed, a non-benign change for every controller (its writer's too: SPEC §3
    /// accepts only owned and benign changes, and a failed write is not owned).
    pub fn transcript_torn(&mut self, path: &Path, prefix: &[u8]) {
        self.transcripts.entry(path.to_owned()).or_default().extend_from_slice(prefix);
        self.unowned_change(path, |_| true, "a torn append");
    }

    fn unowned_change(&mut self, path: &Path, applies: impl Fn(u32) -> bool, what: &str) {
        for ((c_pid, _), c) in self.ctls.iter_mut() {
            if c.transcript != path || !c.fence || c.poisoned || !applies(*c_pid) {
                continue;
            }
            c.change_since_fence = true;
            if c.released && c.missed_change.is_none() {
                c.missed_change = Some(what.to_owned());
            }
        }
    }

    /// An external process changed a transcript (`content`: what it is now).
    pub fn external_change(&mut self, path: &Path, change: ExternalChange, content: &[u8]) {
        self.transcripts.insert(path.to_owned(), content.to_vec());
        if !change.benign() {
            self.unowned_change(path, |_| true, &format!("an external {}", change.name()));
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
                "I7",
                Some(pid),
                lock.as_deref(),
                format!(
                    "next turn: the owner of {ctl} is released while its lock {h} is still held; \
                 the next attempt will wait on it"
                ),
            );
        }
    }

    /// Time-driven checks: abort deadlines (I5), the watchdog bound (I13), operations that
    /// never return (I9). `final_check` also runs them at quiescence.
    pub fn check_time(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>) {
        let mut found = Vec::new();
        self.aborts.retain(|a| {
            let released = self.handles.get(&(a.pid, a.handle)).and_then(|h| h.released_ns);
            let facts = procs.get(&a.pid).copied().unwrap_or_default();
            match released {
                Some(t) if t <= a.deadline_ns => false,
                Some(t) => {
                    if facts.ran_freely_since(a.requested_ns) {
                        found.push((a.pid, a.handle, a.ctl, ms(t - a.requested_ns)));
                    }
                    false
                }
                None if now > a.deadline_ns => {
                    if facts.ran_freely_since(a.requested_ns) {
                        found.push((a.pid, a.handle, a.ctl, ms(now - a.requested_ns)));
                    }
                    false
                }
                None => facts.alive,
            }
        });
        for (pid, handle, ctl, waited) in found {
            let lock = self.handles.get(&(pid, handle)).map(|h| h.lock.clone());
            self.violate(
                now,
                "I5",
                Some(pid),
                lock.as_deref(),
                format!(
                    "bounded abort: {ctl} was aborted {waited} ms ago and {handle} is not released \
                 (bound {SETTLE_BOUND_MS} ms)"
                ),
            );
        }
        let mut overdue = Vec::new();
        for ((pid, handle), h) in &self.handles {
            if h.released_ns.is_some() || h.lost {
                continue;
            }
            let Some(facts) = procs.get(pid) else { continue };
            let bound = h.max_hold_ms + WATCHDOG_INTERVAL_MS + SLACK_MS;
            if facts.ran_freely_since(h.acquired_ns) && ms(now - h.acquired_ns) > bound {
                overdue.push((*pid, *handle, h.lock.clone(), ms(now - h.acquired_ns)));
            }
        }
        overdue.sort();
        for (pid, handle, lock, held) in overdue {
            // Report once: the handle is treated as lost from here on.
            if let Some(h) = self.handles.get_mut(&(pid, handle)) {
                h.lost = true;
            }
            self.violate(
                now,
                "I13",
                Some(pid),
                Some(&lock),
                format!("watchdog: {handle} held {held} ms on a live event loop, past maxHoldMs + one tick"),
            );
        }
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
            if guarded
                && !facts.hung
                && facts.ran_freely_since(o.began_ns)
                && ms(now - o.began_ns) > OP_LIVENESS_MS
            {
                stuck.push((*pid, *op, o.ctl, o.kind, ms(now - o.began_ns)));
            }
        }
        stuck.sort();
        for (pid, op, ctl, kind, waited) in stuck {
            self.ops.remove(&(pid, op));
            self.violate(
                now,
                "I9",
                Some(pid),
                None,
                format!("no deadlock: {} ({op}) of {ctl} has not returned after {waited} ms", kind.name()),
            );
        }
    }

    /// Quiescence: the time checks, then every transcript whole and in order (I14).
    pub fn final_check(
        &mut self,
        now: u64,
        procs: &BTreeMap<u32, ProcFacts>,
        read: impl Fn(&Path) -> Option<Vec<u8>>,
    ) {
        self.check_time(now, procs);
        let expected: Vec<(PathBuf, Vec<u8>)> =
            self.transcripts.iter().map(|(p, c)| (p.clone(), c.clone())).collect();
        for (path, want) in expected {
            let got = read(&path).unwrap_or_default();
            if got != want {
                self.violate(
                    now,
                    "I14",
                    None,
                    None,
                    format!(
                        "no lost writes: {} has {} bytes, the acknowledged writes make {} bytes",
                        path.display(),
                        got.len(),
                        want.len()
                    ),
                );
            }
        }
    }
}
