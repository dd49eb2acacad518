//! The oracle: SPEC §4 checked online, on every lock, controller and filesystem event, and at
//! quiescence. It knows the contract, never the implementation: nothing here asks which mutant
//! is on.
//!
//! One module per invariant family: `exclusion` (I1, I2, I11: who may hold and remove a lock
//! file), `handoff` (I3, I4, I7, I8: every cleared `held` is released, once), `fence` (I6, I10:
//! transcript changes while released), `bounds` (I5, I9, I12, I13: what must happen by when),
//! `writes` (I14), `availability` and `propagation` (I15: when the lock may refuse a caller, and
//! which errors it must not keep from one), `liveness` (I16). This file keeps the shared records and routes each event to its family.

mod availability;
mod bounds;
mod exclusion;
mod fence;
mod handoff;
mod invariant;
mod liveness;
mod propagation;
mod records;
mod writes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heldlock_core::event::{ControllerId, HandleId, LockEvent, OpId, Refusal};

use crate::report::Violation;

pub use availability::{blocks, grace_for, holder_gone, LockSight};
pub use exclusion::PlacedBy;
pub use fence::{ExternalChange, NoopReacquire};
pub use invariant::InvariantId;
pub use liveness::{unrecoverable_by_spec, LIVENESS_BOUND_MS};
pub use records::ProcFacts;
use records::{AbortDeadline, AcquireRec, CtlRec, HandleRec, InodeRec, OpRec};
pub use writes::{ExternalEdit, WriteCall, WriteOutcome};

/// Slack for "≈" and "within": scheduling, poll granularity and simulated fs latency.
const SLACK_MS: u64 = 1_500;

#[derive(Default)]
pub struct Oracle {
    handles: BTreeMap<(u32, HandleId), HandleRec>,
    ctls: BTreeMap<(u32, ControllerId), CtlRec>,
    ops: BTreeMap<(u32, OpId), OpRec>,
    inodes: BTreeMap<u64, InodeRec>,
    /// (pid, canonical session) ⇒ the attempt owning it (SPEC §2).
    owners: BTreeMap<(u32, PathBuf), u64>,
    /// (pid, acquire) ⇒ the acquire under way.
    acquires: BTreeMap<(u32, u64), AcquireRec>,
    /// (pid, errno) ⇒ when an fs op of that process last failed with it (injected, or real
    /// but for EEXIST and ENOENT, which the lock handles): what an I/O refusal may pass on.
    struck: BTreeMap<(u32, i32), u64>,
    /// (pid, lock) where an acquire was abandoned while its loop ran on (`propagation`).
    abandoned: std::collections::BTreeSet<(u32, PathBuf)>,
    /// Lock path ⇒ when its reclaim guard was last removed (an `rmdir` the file system saw).
    guard_removed_ns: BTreeMap<PathBuf, u64>,
    /// Lock path ⇒ per process, how many `mkdir`s of its reclaim guard it made that no `rmdir`
    /// of its own has matched yet: each may drop what it takes for its own (two acquires of
    /// one process each hold a guard of their own: swarm seed 503046).
    guard_makers: BTreeMap<PathBuf, BTreeMap<u32, u32>>,
    /// Transcript ⇒ when anyone (a gateway, a plugin, an external actor, a torn append) last
    /// changed it: what a fence read that never saw one version twice may blame (I15).
    changed: BTreeMap<PathBuf, u64>,
    aborts: Vec<AbortDeadline>,
    /// Transcript writes as their callers saw them, and external edits (I14).
    writes: writes::WriteLog,
    liveness: liveness::Liveness,
    /// Each process's wall-clock offset from true time (ms): what its stale judging sees.
    wall_offsets: BTreeMap<u32, i64>,
    /// A reclaim's unlink of a live lock, judged at the `Reclaimed` event that names its
    /// reasons (the same task emits it right after the unlink).
    pending_reclaim: Option<exclusion::PendingReclaim>,
    pub violations: Vec<Violation>,
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

impl Oracle {
    fn violate(
        &mut self,
        now_ns: u64,
        invariant: InvariantId,
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

    /// Is this handle held now by its holder's own account: not released, not lost, not
    /// tampered with, by a live process?
    fn holding(&self, key: &(u32, HandleId), procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.handles.get(key).is_some_and(|h| {
            h.released_ns.is_none() && !h.lost && !h.tampered && procs.get(&key.0).is_some_and(|p| p.alive)
        })
    }

    /// Is this handle a live holder of its lock: held, and its lock file not moved off the lock
    /// path (linked elsewhere: lost by reclaim, SPEC I1). A file unlinked from under its holder
    /// leaves the holder live: its removal is the damage I1 and I11 judge.
    fn live(&self, key: &(u32, HandleId), procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.holding(key, procs) && self.displaced_by(key).is_none()
    }

    /// A lock, controller or owner event of process `pid`, routed to its invariant family.
    pub fn on_lock_event(
        &mut self,
        pid: u32,
        now: u64,
        ev: &LockEvent<'_>,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        match *ev {
            LockEvent::AcquireStart { .. } | LockEvent::Acquired { .. } | LockEvent::AcquireFailed { .. } => {
                self.on_acquire_event(pid, now, ev, procs)
            }
            LockEvent::ReleaseBegin { handle, lock, by } => {
                if self.release_begun(pid, now, handle, lock) {
                    self.check_release_path(pid, now, handle, lock, by);
                }
            }
            LockEvent::ReleaseEnd { .. }
            | LockEvent::HandleLost { .. }
            | LockEvent::ControllerCreated { .. }
            | LockEvent::DrainFreed { .. }
            | LockEvent::ReleaseDeferred { .. }
            | LockEvent::Disposed { .. } => self.record(pid, ev),
            LockEvent::OpBegin { ctl, op, kind } => {
                let stalled_ms = procs.get(&pid).map_or(0, |f| f.stalled_ms);
                self.on_op_begin(pid, now, ctl, op, kind, stalled_ms);
            }
            LockEvent::OpEnd { ctl, op, kind, .. } => self.on_op_end(pid, now, ctl, op, kind),
            LockEvent::HeldSet { ctl, handle, .. } => self.on_held_set(pid, now, ctl, handle),
            LockEvent::HeldCleared {
                ctl,
                op,
                handle,
                duty,
            } => self.on_held_cleared(pid, now, ctl, op, handle, duty),
            LockEvent::Poisoned { ctl, reason, .. } => self.on_poisoned(pid, now, ctl, reason),
            LockEvent::DrainOwned { ctl, op } => self.on_drain_owned(pid, now, ctl, op),
            LockEvent::AbortRequested { ctl, .. } => self.on_abort_requested(pid, now, ctl),
            LockEvent::FenceRecorded { ctl, .. } => self.on_fence_recorded(pid, ctl),
            LockEvent::FenceChecked { ctl, .. } => self.on_fence_checked(pid, now, ctl),
            LockEvent::WriteBegin { ctl, handle, .. } => self.on_write_begin(pid, now, ctl, handle),
            LockEvent::PromptReleased { ctl, .. } => self.on_prompt_released(pid, now, ctl),
            LockEvent::Reclaimed { ino, reasons, .. } => self.on_reclaimed(pid, now, ino, reasons),
            LockEvent::OwnerReleased { .. }
            | LockEvent::GuardRecovered { .. }
            | LockEvent::OwnerAcquired { .. }
            | LockEvent::WriteEnd { .. } => {}
        }
    }

    /// An acquire starts, succeeds (I1) or fails (I12, I15).
    fn on_acquire_event(&mut self, pid: u32, now: u64, ev: &LockEvent<'_>, procs: &BTreeMap<u32, ProcFacts>) {
        match *ev {
            LockEvent::AcquireStart {
                acquire,
                timeout_ms,
                lock,
            } => {
                let rec = AcquireRec {
                    started_ns: now,
                    timeout_ms,
                    lock: lock.to_owned(),
                    stalled_ms: procs.get(&pid).map_or(0, |p| p.stalled_ms),
                    unblocked_ms: 0,
                    sampled_ns: None,
                    owed_error: None,
                    moved_aside: None,
                    owed_put_back: None,
                };
                self.acquires.insert((pid, acquire), rec);
            }
            LockEvent::Acquired { acquire, .. } => {
                if let Some(rec) = self.acquires.remove(&(pid, acquire)) {
                    self.check_propagated(pid, now, &rec, None, procs);
                }
                self.on_acquired(pid, now, ev, procs);
            }
            LockEvent::AcquireFailed {
                acquire,
                lock,
                refusal,
                ref error,
            } => {
                let Some(rec) = self.acquires.remove(&(pid, acquire)) else {
                    return;
                };
                if refusal == Refusal::Timeout {
                    self.check_timeout(pid, now, &rec, lock, procs);
                    self.note_abandoned(pid, now, &rec);
                }
                self.check_refusal(pid, now, &rec, refusal, error, procs);
                self.check_propagated(pid, now, &rec, Some(refusal), procs);
            }
            _ => {}
        }
    }

    /// Events that only update the records.
    fn record(&mut self, pid: u32, ev: &LockEvent<'_>) {
        match *ev {
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
            LockEvent::ControllerCreated { ctl, transcript } => {
                let rec = CtlRec {
                    transcript: transcript.to_owned(),
                    ..CtlRec::default()
                };
                self.ctls.insert((pid, ctl), rec);
            }
            LockEvent::DrainFreed { ctl, op } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)).filter(|c| c.drain_owner == Some(op)) {
                    c.drain_owner = None;
                }
            }
            LockEvent::ReleaseDeferred { ctl, op } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.owed_deferred.insert(op);
                }
            }
            LockEvent::Disposed { ctl } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.disposed = true;
                }
            }
            _ => {}
        }
    }

    fn on_op_begin(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        op: OpId,
        kind: heldlock_core::event::OpKind,
        stalled_ms: u64,
    ) {
        let rec = OpRec {
            ctl,
            kind,
            began_ns: now,
            cleared: Vec::new(),
            stalled_ms,
        };
        self.ops.insert((pid, op), rec);
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            match kind {
                heldlock_core::event::OpKind::Write => {
                    c.open_writes.insert(op);
                }
                heldlock_core::event::OpKind::Cleanup => c.cleanup_started = true,
                _ => {}
            }
        }
    }

    /// The canonical path of a controller's transcript.
    pub fn set_transcript(&mut self, pid: u32, ctl: ControllerId, canonical: PathBuf) {
        if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
            c.transcript = canonical;
        }
    }

    /// An fs op of `pid` failed with `errno` (injected, or a real error other than EEXIST and
    /// ENOENT).
    pub fn error_struck(&mut self, pid: u32, errno: i32, now: u64) {
        self.struck.insert((pid, errno), now);
    }

    /// The process died: its handles, controllers and operations die with it (its lock files
    /// stay on disk, judged by their inode records).
    pub fn process_died(&mut self, pid: u32, now: u64) {
        self.handles.retain(|(p, _), _| *p != pid);
        self.ctls.retain(|(p, _), _| *p != pid);
        self.ops.retain(|(p, _), _| *p != pid);
        self.acquires.retain(|(p, _), _| *p != pid);
        self.abandoned.retain(|(p, _)| *p != pid);
        self.owners.retain(|(p, _), _| *p != pid);
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

    /// Quiescence: the time checks, then every transcript whole and in order (I14).
    pub fn final_check(
        &mut self,
        now: u64,
        procs: &BTreeMap<u32, ProcFacts>,
        read: impl Fn(&Path) -> Option<Vec<u8>>,
    ) {
        self.check_time(now, procs);
        self.check_transcripts(now, read);
    }
}
