//! I1 exclusion, I2 exactly-once, I11 breaker safety: who may hold a lock file, who may remove
//! it, and which dead holders must be recovered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heldlock_core::event::{ControllerId, HandleId, LockEvent};
use heldlock_core::file_lock::{ORPHAN_GRACE_MS, ORPHAN_GRACE_SHORT_MS};
use heldlock_core::judge::StaleReason;
use heldlock_core::memprocs::{ProcState, ProcessTable};
use heldlock_core::payload::LockPayload;

use super::records::{HandleRec, InodeRec, Linked};
use super::{ms, InvariantId, Oracle, ProcFacts, SLACK_MS};

/// Whose lock an outside actor's file is, for I11's recovery half: nobody's (garbage, empty,
/// huge), a named process's (a live foreign gateway's own lock), or the creator of the lock it
/// copies (a backup restore puts a held lock back in a new inode).
#[derive(Clone, Copy, Debug)]
pub enum PlacedBy {
    Nobody,
    Named(u32),
    CopyOf(u64),
}

/// The creator of a lock file no process made: no pid of the world is 0, so it never dies.
const NO_CREATOR: u32 = 0;

impl Oracle {
    /// `Acquired`: no other live holder of the same lock (I1); the handle is recorded. A holder
    /// whose lock file was moved off the path (an exchange never swapped back: the mover
    /// crashed in between) has lost its lock by reclaim and is none.
    pub(super) fn on_acquired(
        &mut self,
        pid: u32,
        now: u64,
        ev: &LockEvent<'_>,
        procs: &BTreeMap<u32, ProcFacts>,
    ) {
        let LockEvent::Acquired {
            handle,
            lock,
            ino,
            max_hold_ms,
            ..
        } = *ev
        else {
            return;
        };
        let other = self.handles.iter().find(|(k, h)| h.lock == lock && self.live(k, procs)).map(|(k, _)| *k);
        if let Some((other_pid, other)) = other {
            self.violate(
                now,
                InvariantId::I1,
                Some(pid),
                Some(lock),
                format!(
                    "exclusion: p{pid} acquired {handle} while p{other_pid} {other} still holds the lock"
                ),
            );
        }
        self.handles.insert((pid, handle), HandleRec::open(lock, ino, now, max_hold_ms));
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.handle = Some(handle);
        }
    }

    /// `ReleaseBegin`: a handle is released at most once (I2). False when the release is not
    /// a first release of a known handle.
    pub(super) fn release_begun(&mut self, pid: u32, now: u64, handle: HandleId, lock: &Path) -> bool {
        let Some(rec) = self.handles.get_mut(&(pid, handle)) else {
            return false;
        };
        if rec.released_ns.is_some() {
            let detail = format!("exactly-once: {handle} released twice");
            self.violate(now, InvariantId::I2, Some(pid), Some(lock), detail);
            return false;
        }
        rec.released_ns = Some(now);
        true
    }

    /// `WriteBegin` under a handle this process already released or lost, or whose lock file
    /// is no longer at its lock path but linked elsewhere (moved off by an exchange) (I1).
    pub(super) fn check_write_under_lost(&mut self, pid: u32, now: u64, ctl: ControllerId, handle: HandleId) {
        let key = (pid, handle);
        let displaced = self.displaced_by(&key);
        let Some(rec) = self.handles.get(&key) else {
            return;
        };
        let what = match (rec.lost, rec.released_ns, displaced) {
            _ if rec.tampered => return,
            (true, _, _) => "which it already lost".to_owned(),
            (false, Some(_), _) => "which it already released".to_owned(),
            (false, None, Some(by)) => {
                format!("whose lock file (inode {}) p{by} moved off the lock path", rec.ino)
            }
            (false, None, None) => return,
        };
        let lock = rec.lock.clone();
        self.violate(
            now,
            InvariantId::I1,
            Some(pid),
            Some(&lock),
            format!("exclusion: {ctl} starts a transcript write under {handle}, {what}"),
        );
    }

    /// The lock path of a handle of `pid`, while the oracle knows it.
    pub fn lock_of(&self, pid: u32, handle: HandleId) -> Option<PathBuf> {
        self.handles.get(&(pid, handle)).map(|h| h.lock.clone())
    }

    /// `WriteBegin` under a handle this process still holds by its own account, while the disk
    /// shows another inode, or none, at its lock path (`at_path`): its lock file was removed or
    /// replaced (an outside actor) and the write is no longer exclusive (I1, SPEC §1.3: the
    /// write fails lock-lost). The lock's check of its path and the write's start share one
    /// instant: no await lies between them.
    pub fn check_write_off_path(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        handle: HandleId,
        at_path: Option<u64>,
    ) {
        let key = (pid, handle);
        let displaced = self.displaced_by(&key).is_some();
        let Some(rec) = self.handles.get(&key) else {
            return;
        };
        // Lost, released or moved aside: `check_write_under_lost` judges it.
        if rec.lost || rec.released_ns.is_some() || displaced || at_path == Some(rec.ino) {
            return;
        }
        let there = at_path.map_or("nothing".to_owned(), |ino| format!("inode {ino}"));
        let (lock, ino) = (rec.lock.clone(), rec.ino);
        let detail = format!(
            "exclusion: {ctl} starts a transcript write under {handle}, whose lock file (inode {ino}) no longer \
             stands at the lock path ({there} there)"
        );
        self.violate(now, InvariantId::I1, Some(pid), Some(&lock), detail);
    }

    /// Who moved the handle's lock file off its lock path, if it is linked elsewhere now (by
    /// SimFs's reports of exchanges, never by core events).
    pub(super) fn displaced_by(&self, key: &(u32, HandleId)) -> Option<u32> {
        let ino = self.handles.get(key)?.ino;
        match self.inodes.get(&ino)?.linked {
            Linked::Aside { by, .. } => Some(by),
            Linked::AtLock | Linked::Gone => None,
        }
    }

    /// Who moved lock inode `ino` off its lock path, and when, while it stays aside.
    pub fn aside_of(&self, ino: u64) -> Option<(u32, u64)> {
        match self.inodes.get(&ino)?.linked {
            Linked::Aside { by, since_ns } => Some((by, since_ns)),
            Linked::AtLock | Linked::Gone => None,
        }
    }

    /// `pid` made the reclaim guard of `lock`.
    pub fn guard_made(&mut self, pid: u32, lock: &Path) {
        *self.guard_makers.entry(lock.to_owned()).or_default().entry(pid).or_default() += 1;
    }

    /// The reclaim guard of `lock` was removed at `now` by `pid`, whose own wall clock read the
    /// guard it last saw at most `max_age_ms` old at any moment since (None: it saw none).
    /// I11: a guard another process made blocks until the orphan grace ages it out (SPEC §1
    /// step 3; judged against the short grace, which an acquire with a short budget uses);
    /// recovered younger, it lets a second reclaimer in beside a live one. A process dropping
    /// a guard it made is not judged, even when the guard there is by then another's (guards
    /// carry no identity).
    pub fn guard_removed(&mut self, pid: u32, lock: &Path, now: u64, max_age_ms: Option<u64>) {
        self.guard_removed_ns.insert(lock.to_owned(), now);
        let makers = self.guard_makers.entry(lock.to_owned()).or_default();
        let own_drop = match makers.get_mut(&pid) {
            Some(made) if *made > 0 => {
                *made -= 1;
                true
            }
            _ => false,
        };
        let Some(max_age_ms) = max_age_ms.filter(|_| !own_drop && makers.values().any(|n| *n > 0)) else {
            return;
        };
        // The most lenient grace the remover may use: the short one. An acquire with a short
        // budget uses it, and its loop may still run after its caller was answered and its
        // record closed (m14's seed 1200000842 showed it: a recovery at 5 547 ms).
        let grace_ms = heldlock_core::file_lock::ORPHAN_GRACE_SHORT_MS;
        // The lock removes a guard older than the grace by whole ms: one ms of rounding.
        if max_age_ms + 1 < grace_ms {
            let detail = format!(
                "breaker: p{pid} recovered a reclaim guard another process made, which its own clock never saw \
                 older than {max_age_ms} ms (orphan grace {grace_ms} ms)"
            );
            self.violate(now, InvariantId::I11, Some(pid), Some(lock), detail);
        }
    }

    /// I11 (recovery half): a timeout on a lock whose creator was recoverably gone long enough
    /// — and whose reclaim guard, if one blocked until lately, was gone long enough too: a
    /// live reclaimer's guard blocks by SPEC until the orphan grace, so two failed reclaimers
    /// in a row (one crashed, one hung in its move aside: swarm seed 741144) spend a budget.
    pub fn check_recoverable(
        &mut self,
        pid: u32,
        now: u64,
        lock: &Path,
        on_disk: Option<(u64, Vec<u8>)>,
        table: &ProcessTable,
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
            Some(e) if e.probe_denied && e.state == ProcState::Zombie => false,
            Some(e) if e.state == ProcState::Zombie => true,
            Some(e) => {
                (payload.starttime.is_some() && e.starttime.is_some() && e.starttime != payload.starttime)
                    || e.gateway == Some(false)
            }
        };
        let unguarded_since = self.guard_removed_ns.get(lock).copied().unwrap_or(0);
        let long_enough = now > died + (ORPHAN_GRACE_MS + 2 * SLACK_MS) * 1_000_000
            && now > unguarded_since + 2 * SLACK_MS * 1_000_000;
        if recoverable && long_enough {
            let creator = inode.pid;
            self.violate(
                now,
                InvariantId::I11,
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
                .filter(|((p, _), a)| {
                    *p != key.0
                        && a.lock == h.lock
                        && procs.get(p).is_some_and(|f| f.alive && f.hung_ops == 0)
                })
                .map(|((p, _), _)| *p)
                .collect();
            pids.dedup();
            (pids.len() >= waiters && self.live(key, procs)).then_some(key.0)
        })
    }

    /// Whether a live handle of a live process has lock inode `ino`.
    pub fn holds_inode(&self, ino: u64, procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.handles.iter().any(|(k, h)| h.ino == ino && self.live(k, procs))
    }

    /// Whether lock inode `ino` was made by process `pid` in its current life.
    pub fn is_lock_of(&self, ino: u64, pid: u32) -> bool {
        self.inodes.get(&ino).is_some_and(|r| r.pid == pid && r.creator_died_ns.is_none())
    }

    /// Whether lock inode `ino` was made by a gateway (or copied from one's) that has died since.
    pub fn is_dead_gateway_lock(&self, ino: u64) -> bool {
        self.inodes.get(&ino).is_some_and(|r| r.pid != NO_CREATOR && r.creator_died_ns.is_some())
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

    /// Whether process `pid` holds the lock path `lock` by its own account (a handle not yet
    /// released nor lost, even if its file was removed or replaced behind its back).
    pub fn process_holds_path(&self, pid: u32, lock: &Path) -> bool {
        self.handles
            .iter()
            .any(|((p, _), h)| *p == pid && h.lock == lock && h.released_ns.is_none() && !h.lost)
    }

    /// Whether any live process holds a lock now by its own account (a lock moved off its path
    /// stays its holder's until the holder lets it go).
    pub fn holds_any(&self, procs: &BTreeMap<u32, ProcFacts>) -> bool {
        self.handles.keys().any(|k| self.holding(k, procs))
    }

    /// A lock file came into being (create_exclusive succeeded).
    pub fn lock_created(&mut self, pid: u32, now: u64, ino: u64) {
        let rec = InodeRec {
            pid,
            handle: None,
            creator_died_ns: None,
            created_ns: now,
            linked: Linked::AtLock,
        };
        self.inodes.insert(ino, rec);
    }

    /// An outside actor made lock file `ino` at a lock path. Registered so that an exchange
    /// moving it aside and back does not take it for the exchanger's own new lock (swarm seed
    /// 415665: a planted foreign lock swapped back was judged the dead reclaimer's).
    pub fn lock_placed_outside(&mut self, now: u64, ino: u64, by: PlacedBy) {
        let (pid, creator_died_ns) = match by {
            PlacedBy::Nobody => (NO_CREATOR, None),
            PlacedBy::Named(pid) => (pid, None),
            PlacedBy::CopyOf(original) => {
                self.inodes.get(&original).map_or((NO_CREATOR, None), |r| (r.pid, r.creator_died_ns))
            }
        };
        let rec = InodeRec {
            pid,
            handle: None,
            creator_died_ns,
            created_ns: now,
            linked: Linked::AtLock,
        };
        self.inodes.insert(ino, rec);
    }

    /// An exchange by `pid` at a lock path: `left` is off the path (moved to `pid`'s private
    /// name, not removed: a reclaimer judges it there and may put it back), `arrived` is on it —
    /// a lock file of `pid`'s making when the oracle has not seen it before.
    pub fn lock_exchanged(&mut self, pid: u32, now: u64, arrived: Option<u64>, left: Option<u64>) {
        if let Some(inode) = left.and_then(|ino| self.inodes.get_mut(&ino)) {
            inode.linked = Linked::Aside {
                by: pid,
                since_ns: now,
            };
        }
        let Some(ino) = arrived else { return };
        match self.inodes.get_mut(&ino) {
            Some(inode) => inode.linked = Linked::AtLock,
            None => self.lock_created(pid, now, ino),
        }
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
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        inode.linked = Linked::Gone;
        let Some(handle) = inode.handle else { return };
        let key = (inode.pid, handle);
        // A live lock moved aside and then removed is removed all the same (I11).
        if !self.holding(&key, procs) || self.handles.get(&key).is_some_and(|h| h.ino != ino) {
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
        if releasing_other {
            let detail =
                format!("a release by p{pid} removed the live lock of p{} {handle} (inode {ino})", key.0);
            self.violate(now, InvariantId::I2, Some(pid), Some(lock), detail);
        } else {
            let detail = format!(
                "a stale-lock reclaim by p{pid} removed the live lock of p{} {handle} (inode {ino})",
                key.0
            );
            self.flush_pending_reclaim();
            self.pending_reclaim = Some(PendingReclaim {
                pid,
                ino,
                at_ns: now,
                lock: lock.to_owned(),
                detail,
            });
        }
    }

    /// The clock offset of `pid` (ms), as the world set it.
    pub fn set_wall_offset(&mut self, pid: u32, offset_ms: i64) {
        self.wall_offsets.insert(pid, offset_ms);
    }

    /// `Reclaimed`: a reclaim's unlink of a live lock is a violation (I11) — unless the lock
    /// was judged payload-less (missing pid, invalid createdAt) and only the reclaimer's clock,
    /// running ahead, made a creator still writing its payload look past the orphan grace: the
    /// judge did what SPEC §1.1 says by its own clock, and the race with the creator is the
    /// grace's own assumption failing, not the lock's.
    pub(super) fn on_reclaimed(&mut self, pid: u32, now: u64, ino: u64, reasons: &[StaleReason]) {
        let Some(p) = self.pending_reclaim.take() else {
            return;
        };
        if (p.pid, p.ino) != (pid, ino) {
            self.pending_reclaim = Some(p);
            self.flush_pending_reclaim();
            return;
        }
        let graceless = reasons
            .iter()
            .all(|r| matches!(r, StaleReason::MissingPid | StaleReason::InvalidCreatedAt));
        let age_ms = self.inodes.get(&ino).map_or(u64::MAX, |i| ms(now.saturating_sub(i.created_ns)));
        let offset = self.wall_offsets.get(&pid).copied().unwrap_or(0);
        let skewed = age_ms < ORPHAN_GRACE_MS && age_ms as i64 + offset > ORPHAN_GRACE_SHORT_MS as i64;
        if graceless && skewed {
            // Its holder cannot know its file is gone: exclusion no longer rests on it.
            self.lock_tampered(ino);
        } else {
            self.violate(p.at_ns, InvariantId::I11, Some(p.pid), Some(&p.lock), p.detail);
        }
    }

    /// A pending reclaim no `Reclaimed` event explained: the removal stands as a violation.
    pub(super) fn flush_pending_reclaim(&mut self) {
        if let Some(p) = self.pending_reclaim.take() {
            self.violate(p.at_ns, InvariantId::I11, Some(p.pid), Some(&p.lock), p.detail);
        }
    }

    /// The owner mutex of `pid` was taken for `session` (canonical: the world resolved its
    /// directory) by `attempt`: at most one attempt of a process owns a session (SPEC §2).
    pub fn owner_acquired(&mut self, pid: u32, now: u64, session: &Path, attempt: u64) {
        let key = (pid, session.to_owned());
        if let Some(other) = self.owners.insert(key, attempt).filter(|a| *a != attempt) {
            let detail = format!(
                "exclusion: attempt#{attempt} of p{pid} owns {} while attempt#{other} still does (SPEC §2)",
                session.display()
            );
            self.violate(now, InvariantId::I1, Some(pid), None, detail);
        }
    }

    pub fn owner_released(&mut self, pid: u32, session: &Path, attempt: u64) {
        let key = (pid, session.to_owned());
        if self.owners.get(&key) == Some(&attempt) {
            self.owners.remove(&key);
        }
    }
}

/// A reclaim's unlink of a live lock, waiting for the `Reclaimed` event's reasons.
pub(super) struct PendingReclaim {
    pid: u32,
    ino: u64,
    at_ns: u64,
    lock: std::path::PathBuf,
    detail: String,
}

#[cfg(test)]
mod tests {
    use heldlock_core::event::OpId;

    use super::*;

    const LOCK: &str = "/srv/sessions/s0.jsonl.lock";

    fn alive(pids: &[u32]) -> BTreeMap<u32, ProcFacts> {
        let facts = ProcFacts {
            alive: true,
            ..ProcFacts::default()
        };
        pids.iter().map(|p| (*p, facts)).collect()
    }

    /// `pid` acquires `LOCK` as handle `h` on lock inode `ino`, made at the path.
    fn acquire(o: &mut Oracle, procs: &BTreeMap<u32, ProcFacts>, pid: u32, h: u64, ino: u64) {
        o.lock_created(pid, 0, ino);
        let ev = LockEvent::Acquired {
            acquire: h,
            handle: HandleId(h),
            lock: Path::new(LOCK),
            ino,
            max_hold_ms: 300_000,
        };
        o.on_acquired(pid, 0, &ev, procs);
    }

    /// A controller of `pid` starts a write under handle `h`.
    fn write_under(o: &mut Oracle, procs: &BTreeMap<u32, ProcFacts>, pid: u32, h: u64) {
        let ctl = ControllerId(50);
        let transcript = Path::new("/srv/sessions/s0.jsonl");
        o.on_lock_event(pid, 1, &LockEvent::ControllerCreated { ctl, transcript }, procs);
        let ev = LockEvent::WriteBegin {
            ctl,
            op: OpId(51),
            handle: Some(HandleId(h)),
        };
        o.on_lock_event(pid, 1, &ev, procs);
    }

    fn invariants(o: &Oracle) -> Vec<InvariantId> {
        o.violations.iter().map(|v| v.invariant).collect()
    }

    /// The lock races' outside `rm` picks a release's own lock by its maker's life; the
    /// witness judges a planted lock's removal by who moved it aside, and when.
    #[test]
    fn a_lock_inode_is_told_by_its_makers_life() {
        let mut o = Oracle::default();
        o.lock_created(104, 0, 22);
        o.lock_placed_outside(0, 23, PlacedBy::Named(5000));
        assert!(o.is_lock_of(22, 104) && !o.is_lock_of(22, 105) && !o.is_lock_of(99, 104));
        assert!(!o.is_lock_of(23, 104), "planted");
        assert_eq!(o.aside_of(23), None, "at its lock path");
        o.lock_exchanged(104, 5, None, Some(23));
        assert_eq!(o.aside_of(23), Some((104, 5)), "moved aside by p104 at 5");
        o.lock_exchanged(104, 6, Some(23), None);
        assert_eq!(o.aside_of(23), None, "put back");
        assert!(!o.is_dead_gateway_lock(22), "its maker lives");
        o.process_died(104, 10);
        o.process_died(5000, 10);
        assert!(!o.is_lock_of(22, 104), "a later life of pid 104 did not make it");
        assert!(o.is_dead_gateway_lock(22));
        assert!(!o.is_dead_gateway_lock(99), "an inode never seen");
        o.lock_placed_outside(0, 24, PlacedBy::CopyOf(22));
        assert!(o.is_dead_gateway_lock(24), "a copy of a dead gateway's lock is as dead");
    }

    /// cargo-mutants: `ProcessLocks::in_place → Ok(true)`: a holder writes on after an outside
    /// actor removed or replaced its lock file (swarm seed 0 with that mutant).
    #[test]
    fn a_write_under_a_lock_file_no_longer_at_the_path_is_caught() {
        let procs = alive(&[104]);
        let mut o = Oracle::default();
        acquire(&mut o, &procs, 104, 6, 22);
        let ctl = ControllerId(50);
        o.check_write_off_path(104, 1, ctl, HandleId(6), Some(22));
        assert!(o.violations.is_empty(), "its own lock file stands there");
        o.check_write_off_path(104, 1, ctl, HandleId(6), None);
        o.check_write_off_path(104, 1, ctl, HandleId(6), Some(23));
        assert_eq!(invariants(&o), vec![InvariantId::I1, InvariantId::I1], "removed; replaced");
        assert!(o.violations[0].detail.contains("nothing there"), "{}", o.violations[0].detail);
        o.record(
            104,
            &LockEvent::HandleLost {
                handle: HandleId(6),
                lock: Path::new(LOCK),
                held_ms: 1,
                cause: heldlock_core::event::LossCause::Watchdog,
            },
        );
        o.check_write_off_path(104, 1, ctl, HandleId(6), None);
        assert_eq!(o.violations.len(), 2, "a lost handle's write is check_write_under_lost's to judge");
    }

    /// Swarm seed 898378: p103's exchange moved p104's live lock (inode 22) to p103's private
    /// name and p103 died before swapping back. p104 lost its lock by reclaim: p105 taking the
    /// lock is no second holder, and a write p104 starts afterwards is.
    #[test]
    fn a_holder_whose_lock_was_moved_off_the_path_is_no_longer_live() {
        let mut procs = alive(&[103, 104, 105]);
        let mut o = Oracle::default();
        acquire(&mut o, &procs, 104, 6, 22);
        o.lock_exchanged(103, 1, Some(30), Some(22));
        procs.get_mut(&103).unwrap().alive = false;
        o.process_died(103, 2);
        acquire(&mut o, &procs, 105, 5, 31);
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        write_under(&mut o, &procs, 104, 6);
        assert_eq!(invariants(&o), [InvariantId::I1]);
        assert!(o.violations[0].detail.contains("moved off the lock path"), "{}", o.violations[0].detail);
    }

    /// An exchange swapped straight back (the reclaimer took what it had not judged) leaves the
    /// holder live: writing is its right, and another acquire is a second holder.
    #[test]
    fn a_lock_exchanged_back_to_its_path_is_live_again() {
        let procs = alive(&[103, 104, 105]);
        let mut o = Oracle::default();
        acquire(&mut o, &procs, 104, 6, 22);
        o.lock_exchanged(103, 1, Some(30), Some(22));
        o.lock_exchanged(103, 2, Some(22), Some(30));
        write_under(&mut o, &procs, 104, 6);
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        acquire(&mut o, &procs, 105, 5, 31);
        assert_eq!(invariants(&o), [InvariantId::I1]);
    }

    /// Swarm seed 415665: a live foreign gateway's planted lock (inode 40) went to p102's
    /// private name by p102's exchange and came back by its swap-back (p102 took out what it had
    /// not judged); then p102 died. The lock on the path is p5000's: a timeout on it is no
    /// recovery failure, however long p102 has been dead.
    #[test]
    fn a_planted_lock_swapped_back_by_a_reclaimer_is_not_the_reclaimers() {
        use heldlock_core::memprocs::ProcEntry;
        let mut o = Oracle::default();
        o.lock_placed_outside(0, 40, PlacedBy::Named(5000));
        o.lock_exchanged(102, 1, Some(30), Some(40));
        o.lock_exchanged(102, 2, Some(40), Some(30));
        o.process_died(102, 3);
        let table = ProcessTable::new();
        let entry = ProcEntry {
            state: ProcState::Running,
            starttime: Some(905_000),
            gateway: Some(true),
            probe_denied: false,
        };
        table.spawn(5000, entry);
        let payload = br#"{"pid":5000,"createdAt":"2026-01-01T00:00:00+02:00","starttime":905000}"#;
        let late = 60_000_000_000;
        o.check_recoverable(101, late, Path::new(LOCK), Some((40, payload.to_vec())), &table);
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        // Once its own creator is gone, the same lock is recoverable.
        table.kill(5000);
        o.process_died(5000, 4);
        o.check_recoverable(101, late, Path::new(LOCK), Some((40, payload.to_vec())), &table);
        assert_eq!(invariants(&o), [InvariantId::I11]);
    }

    /// A recovery of another's reclaim guard is judged by the age the remover saw; a maker
    /// dropping what it takes for its own guard, and a guard no one saw, are not judged.
    /// (cargo-mutants' `file_lock.rs:910:85` `/ → %` made every guard look ancient.)
    #[test]
    fn a_guard_recovered_before_the_orphan_grace_breaks_i11() {
        let lock = Path::new(LOCK);
        let grace = heldlock_core::file_lock::ORPHAN_GRACE_SHORT_MS;
        let recovered = |max_age_ms: Option<u64>, by: u32| {
            let mut o = Oracle::default();
            o.guard_made(103, lock);
            o.guard_removed(by, lock, 1, max_age_ms);
            invariants(&o)
        };
        assert_eq!(recovered(Some(697), 102), [InvariantId::I11], "recovered young");
        assert_eq!(recovered(Some(grace - 2), 102), [InvariantId::I11], "just short of the grace");
        assert!(recovered(Some(5_547), 102).is_empty(), "past the short grace: a short budget's");
        assert!(recovered(Some(grace + 1), 102).is_empty(), "aged out by the remover's clock");
        assert!(recovered(Some(0), 103).is_empty(), "its maker drops it");
        assert!(recovered(None, 102).is_empty(), "the remover never saw it");
        // The maker drops the guard another made after recovering its own: not judged.
        let mut o = Oracle::default();
        o.guard_made(103, lock);
        o.guard_removed(102, lock, 1, Some(grace + 1));
        o.guard_made(102, lock);
        o.guard_removed(103, lock, 2, Some(0));
        assert!(o.violations.is_empty(), "{:?}", o.violations);
        // Swarm seed 503046: two acquires of p103 made a guard each; both drops are its own.
        let mut o = Oracle::default();
        o.guard_made(103, lock);
        o.guard_made(103, lock);
        o.guard_removed(103, lock, 1, Some(0));
        o.guard_made(101, lock);
        o.guard_removed(103, lock, 2, Some(0));
        assert!(o.violations.is_empty(), "{:?}", o.violations);
    }

    /// Swarm seed 741144: the dead holder's lock was guarded until 0.4 s before the timeout
    /// (a crashed reclaimer's guard, then a hung one's, each blocking by SPEC until the orphan
    /// grace): no budget was left to recover in. With the guard gone 3 s and more, it was.
    #[test]
    fn a_timeout_right_after_a_guard_went_is_no_recovery_failure() {
        let table = ProcessTable::new();
        let payload = br#"{"pid":104,"createdAt":"2026-01-01T00:00:00Z"}"#;
        let late = 60_000_000_000;
        let timed_out_at = |guard_gone: u64| {
            let procs = alive(&[104]);
            let mut o = Oracle::default();
            acquire(&mut o, &procs, 104, 6, 22);
            o.process_died(104, 1);
            o.guard_removed(101, Path::new(LOCK), guard_gone, None);
            o.check_recoverable(101, late, Path::new(LOCK), Some((22, payload.to_vec())), &table);
            invariants(&o)
        };
        assert!(timed_out_at(late - 400_000_000).is_empty(), "guarded until lately");
        assert_eq!(timed_out_at(late - 3_100_000_000), [InvariantId::I11]);
    }

    /// A copy of a held lock put back by an outside tool (new inode) names the copied lock's
    /// creator: it is recoverable once that creator is dead, not before.
    #[test]
    fn a_copied_lock_is_its_original_creators() {
        let procs = alive(&[104]);
        let mut o = Oracle::default();
        acquire(&mut o, &procs, 104, 6, 22);
        o.lock_placed_outside(0, 23, PlacedBy::CopyOf(22));
        let table = ProcessTable::new();
        let payload = br#"{"pid":104,"createdAt":"2026-01-01T00:00:00Z"}"#;
        let late = 60_000_000_000;
        o.check_recoverable(101, late, Path::new(LOCK), Some((23, payload.to_vec())), &table);
        assert!(o.violations.is_empty(), "its creator lives: {:?}", o.violations);
        o.process_died(104, 5);
        o.check_recoverable(101, late, Path::new(LOCK), Some((23, payload.to_vec())), &table);
        assert_eq!(invariants(&o), [InvariantId::I11]);
    }

    /// A lock file unlinked from under its live holder (the m7 mutant's damage) is not moved
    /// aside: the holder stays live, and the next acquire is a second holder (I1).
    #[test]
    fn an_unlinked_lock_still_has_a_live_holder() {
        let procs = alive(&[104, 105]);
        let mut o = Oracle::default();
        acquire(&mut o, &procs, 104, 6, 22);
        o.inodes.get_mut(&22).unwrap().linked = Linked::Gone;
        acquire(&mut o, &procs, 105, 5, 31);
        assert_eq!(invariants(&o), [InvariantId::I1]);
    }

    #[test]
    fn two_attempts_of_one_process_never_own_one_session() {
        let mut o = Oracle::default();
        let s = Path::new("/srv/sessions/s0.jsonl");
        o.owner_acquired(101, 1, s, 1);
        o.owner_released(101, s, 1);
        o.owner_acquired(101, 2, s, 2);
        o.owner_acquired(102, 2, s, 3);
        assert!(o.violations.is_empty(), "one after the other, or two processes");
        o.owner_acquired(101, 3, s, 4);
        assert_eq!(o.violations.len(), 1);
        assert_eq!(o.violations[0].invariant, InvariantId::I1);
    }
}
