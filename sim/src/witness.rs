//! What outside witnesses saw: the external actors' own records of what they did to the disk,
//! the workload's record of what each call returned, and the watchdog's ticks. The checks here
//! judge the lock from those records and from the owner and controller events, never from
//! the lock's own account of itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heldlock_core::event::{ControllerId, LockEvent, PoisonReason, Refusal};
use heldlock_core::file_lock::WATCHDOG_INTERVAL_MS;
use heldlock_core::platform::errno;
use heldlock_core::ControllerError;

use crate::clock::WatchdogOf;
use crate::oracle::{InvariantId, ProcFacts};
use crate::report::Violation;

/// A tick may run releases on a slow disk: a live watchdog starts its next sleep within one
/// interval plus this.
const TICK_SLACK_MS: u64 = 240_000;

/// A lock file an external actor planted that stands for a live holder: nobody may remove it.
#[derive(Clone, Debug)]
pub struct PlantedLive {
    pub lock: PathBuf,
    pub holder: u32,
    /// How its payload spells `createdAt`.
    pub form: &'static str,
}

#[derive(Clone, Debug, Default)]
struct CtlSeen {
    transcript: PathBuf,
    poisoned: Option<PoisonReason>,
    /// Between the fence recorded at a release and the next fence check or write.
    released: bool,
    /// When the fence of the current release was recorded, ns.
    released_ns: u64,
    /// The transcript was deleted by an external actor while this controller was released.
    deleted_while_released: bool,
}

#[derive(Default)]
pub struct Witness {
    ctls: BTreeMap<(u32, ControllerId), CtlSeen>,
    planted: BTreeMap<u64, PlantedLive>,
    /// When each watchdog last began a sleep (the end of its previous tick), ns.
    watchdogs: BTreeMap<WatchdogOf, u64>,
    /// (pid, acquire) ⇒ when it began; pid ⇒ when it last took a reclaim guard.
    acquires: BTreeMap<(u32, u64), u64>,
    guards: BTreeMap<u32, u64>,
    /// pid ⇒ when its process-table entry last changed (a start, a crash, a reaping).
    pid_changes: BTreeMap<u32, u64>,
    /// (pid, canonical session) ⇒ the owner guards the workload holds, and since when it held
    /// none (SPEC §2).
    owners: BTreeMap<(u32, PathBuf), OwnersHeld>,
}

/// The owner guards of one session one process's workload holds, by its own record.
#[derive(Default)]
struct OwnersHeld {
    count: u32,
    free_since: u64,
}

fn violation(
    now: u64,
    invariant: InvariantId,
    pid: Option<u32>,
    lock: Option<&Path>,
    detail: String,
) -> Violation {
    Violation {
        invariant,
        detail,
        pid,
        lock: lock.map(Path::to_owned),
        at_ns: now,
    }
}

impl Witness {
    /// A lock or controller event of `pid`; `canonical` resolves a transcript path as the disk
    /// does now.
    pub fn on_lock_event(
        &mut self,
        pid: u32,
        now: u64,
        ev: &LockEvent<'_>,
        canonical: impl Fn(&Path) -> PathBuf,
    ) {
        match *ev {
            LockEvent::AcquireStart { acquire, .. } => {
                self.acquires.insert((pid, acquire), now);
            }
            // A StaleError's start is taken by `stale_failure`, which follows this event.
            LockEvent::Acquired { acquire, .. } => {
                self.acquires.remove(&(pid, acquire));
            }
            LockEvent::AcquireFailed { acquire, refusal, .. } if !matches!(refusal, Refusal::Stale(_)) => {
                self.acquires.remove(&(pid, acquire));
            }
            LockEvent::ControllerCreated { ctl, transcript } => {
                let seen = CtlSeen {
                    transcript: canonical(transcript),
                    ..CtlSeen::default()
                };
                self.ctls.insert((pid, ctl), seen);
            }
            LockEvent::Poisoned { ctl, reason, .. } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.poisoned.get_or_insert(reason);
                }
            }
            LockEvent::FenceRecorded { ctl, .. } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.released = true;
                    c.released_ns = now;
                }
            }
            LockEvent::FenceChecked { ctl, .. } | LockEvent::WriteBegin { ctl, .. } => {
                if let Some(c) = self.ctls.get_mut(&(pid, ctl)) {
                    c.released = false;
                    c.deleted_while_released = false;
                }
            }
            _ => {}
        }
    }

    pub fn process_died(&mut self, pid: u32) {
        self.ctls.retain(|(p, _), _| *p != pid);
        self.watchdogs.retain(|w, _| w.pid != pid);
        self.acquires.retain(|(p, _), _| *p != pid);
        self.guards.remove(&pid);
    }

    /// The process-table entry of `pid` changed: a liveness probe before now may have seen
    /// another process, or none.
    pub fn pid_changed(&mut self, pid: u32, now: u64) {
        self.pid_changes.insert(pid, now);
    }

    /// Process `pid` took a reclaim guard.
    pub fn guard_made(&mut self, pid: u32, now: u64) {
        self.guards.insert(pid, now);
    }

    /// A transcript some unpoisoned controller has released under a fence (tampering there is
    /// what the fence exists for).
    pub fn released_transcript(&self) -> Option<PathBuf> {
        self.ctls
            .values()
            .find(|c| c.released && c.poisoned.is_none())
            .map(|c| c.transcript.clone())
    }

    /// An external actor deleted a transcript.
    pub fn transcript_deleted(&mut self, transcript: &Path) {
        for c in self.ctls.values_mut() {
            if c.transcript == transcript && c.released && c.poisoned.is_none() {
                c.deleted_while_released = true;
            }
        }
    }

    /// The result of a locked operation (a write scope, a reacquire) of `ctl` that began at
    /// `began`, and what `is_poisoned()` said right after (I10): a controller whose transcript
    /// was deleted while it was released must catch that as a takeover, not fail on the
    /// missing file — in an operation begun since the release; one begun before it (a scope
    /// whose prompt release was deferred to its end, swarm seed 288256) failed on its own
    /// calls before it let the lock go. What the caller reads must agree with the error
    /// itself: a takeover or lost lock leaves the controller poisoned (I6), and
    /// `raw_os_error()` names the errno it carries (I15).
    pub fn locked_op_returned(
        &mut self,
        pid: u32,
        (now, began): (u64, u64),
        ctl: ControllerId,
        (result, poisoned_now): (&Result<(), ControllerError>, bool),
        out: &mut Vec<Violation>,
    ) {
        if let Err(e) = result {
            out.extend(told_wrong(e, poisoned_now).map(|(inv, d)| violation(now, inv, Some(pid), None, d)));
        }
        let Some(c) = self.ctls.get_mut(&(pid, ctl)) else {
            return;
        };
        let enoent = result.as_ref().err().and_then(|e| carried_errno(e)) == Some(errno::ENOENT);
        if c.deleted_while_released && enoent && c.poisoned.is_none() && began >= c.released_ns {
            c.deleted_while_released = false;
            out.push(violation(
                now,
                InvariantId::I10,
                Some(pid),
                None,
                format!(
                    "fence: {} was deleted while {ctl} was released; its next locked operation failed with \
                     ENOENT and left it unpoisoned instead of a takeover",
                    c.transcript.display()
                ),
            ));
        }
    }

    /// A cleanup append on a live cleanup lock returned (I8): an abort forces only `held` or
    /// the handle a stuck graceful release owns, never the cleanup's own lock.
    pub fn cleanup_appended(
        &mut self,
        pid: u32,
        now: u64,
        ctl: ControllerId,
        result: &Result<(), ControllerError>,
        out: &mut Vec<Violation>,
    ) {
        let Some(c) = self.ctls.get(&(pid, ctl)) else {
            return;
        };
        let taken_over = matches!(result, Err(ControllerError::Takeover { .. }));
        if taken_over && c.poisoned == Some(PoisonReason::AbortForced) {
            out.push(violation(
                now,
                InvariantId::I8,
                Some(pid),
                None,
                format!(
                    "drain: an abort of {ctl} forced the cleanup's own lock free; the cleanup's append to {} \
                     then failed",
                    c.transcript.display()
                ),
            ));
        }
    }

    /// A foreign live holder's lock file is on disk as inode `ino`.
    pub fn planted_live(&mut self, ino: u64, planted: PlantedLive) {
        self.planted.insert(ino, planted);
    }

    /// The planter is done with inode `ino` (it removes it itself, or found it gone).
    pub fn planted_gone(&mut self, ino: u64) {
        self.planted.remove(&ino);
    }

    /// A gateway unlinked lock inode `ino` (I11): never a live, in-bounds foreign holder's.
    /// `aside`: who moved it off its lock path and when, if it is still aside (the oracle's
    /// record). Excused: one a dead life of the remover's pid moved aside and could not put
    /// back (a move aside on a mount with neither `RENAME_NOREPLACE` nor `link`). Its holder
    /// lost it then; the next life drops it as junk at its private name (swarm seed 7570 in the
    /// world of branch `wip/reclaim-race`).
    pub fn lock_unlinked(
        &mut self,
        pid: u32,
        now: u64,
        (lock, ino, aside): (&Path, u64, Option<(u32, u64)>),
        out: &mut Vec<Violation>,
    ) {
        let earlier_life =
            aside.is_some_and(|(by, at)| by == pid && self.pid_changes.get(&pid).is_some_and(|t| *t > at));
        if earlier_life {
            self.planted.remove(&ino);
            return;
        }
        if let Some(p) = self.planted.remove(&ino) {
            out.push(violation(
                now,
                InvariantId::I11,
                Some(pid),
                Some(lock),
                format!(
                    "breaker: p{pid} removed the live, in-bounds lock of foreign gateway p{} (createdAt {})",
                    p.holder, p.form
                ),
            ));
        }
    }

    /// The watchdog of `who` begins a sleep: its previous tick is over.
    pub fn watchdog_ticked(&mut self, who: WatchdogOf, now: u64) {
        self.watchdogs.insert(who, now);
    }

    /// I13 (its ticks): a watchdog on a live, running event loop starts a sleep every interval.
    pub fn check_time(&mut self, now: u64, procs: &BTreeMap<u32, ProcFacts>, out: &mut Vec<Violation>) {
        let bound_ns = (WATCHDOG_INTERVAL_MS + TICK_SLACK_MS) * 1_000_000;
        for (who, last) in self.watchdogs.iter_mut() {
            // Excused while paused or hung; the excuse ends with its cause.
            let Some(since) = procs.get(&who.pid).and_then(|f| f.unexcused_since(*last)) else {
                continue;
            };
            if now.saturating_sub(since) <= bound_ns {
                continue;
            }
            out.push(violation(
                now,
                InvariantId::I13,
                Some(who.pid),
                None,
                format!(
                    "watchdog: the watchdog of p{} (table {}) has not ticked for {} ms on a live event loop",
                    who.pid,
                    who.table,
                    (now - *last) / 1_000_000
                ),
            ));
            *last = now;
        }
    }
}

/// The errno of the `io::Error` an error carries in its source chain: the witness's own
/// reading, independent of the core's `raw_os_error()`.
fn carried_errno(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(error);
    // Bounded: the core's errors nest two deep at most.
    for _ in 0..8 {
        let e = next?;
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.raw_os_error();
        }
        next = e.source();
    }
    None
}

/// What a caller reads off a controller error that contradicts the error itself.
fn told_wrong(e: &ControllerError, poisoned_now: bool) -> Option<(InvariantId, String)> {
    let poisoning = matches!(e, ControllerError::Takeover { .. } | ControllerError::LockLost);
    if poisoning && !poisoned_now {
        return Some((
            InvariantId::I6,
            format!("poison: the controller returned \"{e}\" but says it is not poisoned"),
        ));
    }
    let (told, carried) = (e.raw_os_error(), carried_errno(e));
    (told != carried).then(|| {
        let detail =
            format!("availability: raw_os_error() says {told:?} of an error carrying errno {carried:?}: {e}");
        (InvariantId::I15, detail)
    })
}

/// An owner-mutex wait as the workload ran it (simulated ns).
pub struct OwnerWait {
    /// The session, canonical.
    pub session: PathBuf,
    pub began: u64,
    /// When the workload aborted the turn during the wait, if it did.
    pub aborted_at: Option<u64>,
    pub timeout_ms: u64,
    /// The process's `ProcFacts::stalled_ms` when the wait began: a wait may sit through the
    /// fs stalls of resolving the session's path.
    pub stalled_ms: u64,
}

/// How soon an owner wait must return, on a process that runs freely, once an abort or its
/// deadline wakes it (both wake the waiter at once; this is scheduling slack).
const OWNER_WAKE_SLACK_MS: u64 = 1_500;

/// How long an owner wait may take on a process that runs freely when no attempt of it owns
/// the session: resolving the path (its stalls from `STALL_NOTED_MS` on are added), and
/// scheduling slack.
const OWNER_FREE_SLACK_MS: u64 = 500;

impl Witness {
    /// The workload took the owner of `session` (canonical) for a turn of `pid`.
    pub fn owner_taken(&mut self, pid: u32, session: &Path) {
        self.owners.entry((pid, session.to_owned())).or_default().count += 1;
    }

    /// The workload let go of an owner guard of `session`: by `release`, or by dropping it.
    pub fn owner_let_go(&mut self, pid: u32, now: u64, session: &Path) {
        // A take the harness did not record (its wait returned after the run ended) counts none.
        let held = self.owners.entry((pid, session.to_owned())).or_default();
        held.count = held.count.saturating_sub(1);
        if held.count == 0 {
            held.free_since = now;
        }
    }

    /// An owner wait of `session` timed out (SPEC §2, I15): only a guard held all along makes
    /// it wait, and the workload held none of that session since the wait began.
    fn check_owner_timeout(&self, pid: u32, now: u64, session: &Path, began: u64, out: &mut Vec<Violation>) {
        let held = self.owners.get(&(pid, session.to_owned()));
        if held.is_some_and(|h| h.count > 0 || h.free_since > began) {
            return;
        }
        let detail = format!(
            "availability: p{pid}'s owner wait of {} timed out, though none of its attempts owned that session \
             since the wait began",
            session.display()
        );
        out.push(violation(now, InvariantId::I15, Some(pid), None, detail));
    }

    /// An owner wait of `session` took the owner after `waited_ms` (SPEC §2, I15): it waits
    /// only while an attempt of its process owns that session, so with none owning it over the
    /// whole wait (the workload's record), it returns at once — unless a pause, a hang or fs
    /// stalls of the process held it up.
    fn check_owner_blocked(
        &self,
        pid: u32,
        now: u64,
        wait: &OwnerWait,
        facts: &ProcFacts,
        out: &mut Vec<Violation>,
    ) {
        let held = self.owners.get(&(pid, wait.session.clone()));
        if held.is_some_and(|h| h.count > 0 || h.free_since > wait.began) {
            return;
        }
        let waited_ms = (now - wait.began) / 1_000_000;
        let stalled_ms = facts.stalled_ms.saturating_sub(wait.stalled_ms);
        let excused = facts.held_up_since(wait.began);
        if excused || waited_ms <= OWNER_FREE_SLACK_MS + stalled_ms {
            return;
        }
        let detail = format!(
            "availability: p{pid}'s owner wait of {} took {waited_ms} ms, though none of its attempts owned that \
             session meanwhile",
            wait.session.display()
        );
        out.push(violation(now, InvariantId::I15, Some(pid), None, detail));
    }

    /// What an owner wait returned (SPEC §2): a timeout only once its budget is spent (I12),
    /// and an abort during the wait ends it at once (I5) — unless the owner was taken first.
    pub fn owner_wait_returned(
        &mut self,
        pid: u32,
        now: u64,
        wait: &OwnerWait,
        result: &Result<heldlock_core::OwnerGuard, heldlock_core::OwnerError>,
        facts: &ProcFacts,
        out: &mut Vec<Violation>,
    ) {
        use heldlock_core::OwnerError;
        match result {
            Ok(_) => {
                self.check_owner_blocked(pid, now, wait, facts, out);
                self.owner_taken(pid, &wait.session);
            }
            Err(OwnerError::Timeout { .. }) => {
                self.check_owner_timeout(pid, now, &wait.session, wait.began, out)
            }
            Err(_) => {}
        }
        self.check_owner_budget(pid, now, wait, result, facts, out);
        let Some(aborted) = wait.aborted_at else {
            return;
        };
        let late_ms = (now - aborted) / 1_000_000;
        let excused = facts.held_up_since(aborted);
        if !matches!(result, Err(OwnerError::Aborted)) && late_ms > OWNER_WAKE_SLACK_MS && !excused {
            let how = if result.is_ok() {
                "took the owner"
            } else {
                "failed otherwise"
            };
            let detail = format!("owner: an abort did not end the owner wait; it {how} {late_ms} ms later");
            out.push(violation(now, InvariantId::I5, Some(pid), None, detail));
        }
    }

    /// An owner wait ends with its budget (SPEC §2: it waits at most `timeout_ms`; I12): a
    /// timeout never before it, and on a process that runs freely nothing — the owner taken
    /// at a release past the deadline included — after it plus the path's stalls and slack.
    fn check_owner_budget(
        &self,
        pid: u32,
        now: u64,
        wait: &OwnerWait,
        result: &Result<heldlock_core::OwnerGuard, heldlock_core::OwnerError>,
        facts: &ProcFacts,
        out: &mut Vec<Violation>,
    ) {
        let waited_ms = (now - wait.began) / 1_000_000;
        let timed_out = matches!(result, Err(heldlock_core::OwnerError::Timeout { .. }));
        if timed_out && waited_ms + 1 < wait.timeout_ms {
            let detail = format!(
                "owner: the owner wait timed out after {waited_ms} ms, before its {} ms budget",
                wait.timeout_ms
            );
            out.push(violation(now, InvariantId::I12, Some(pid), None, detail));
        }
        let stalled_ms = facts.stalled_ms.saturating_sub(wait.stalled_ms);
        let excused = facts.held_up_since(wait.began);
        if !excused && waited_ms > wait.timeout_ms + OWNER_WAKE_SLACK_MS + stalled_ms {
            let how = if result.is_ok() { "took the owner" } else { "ended" };
            let detail = format!(
                "owner: the owner wait {how} after {waited_ms} ms, past its {} ms budget",
                wait.timeout_ms
            );
            out.push(violation(now, InvariantId::I12, Some(pid), None, detail));
        }
    }
}

/// What the witness knows of the lock file at a path when an acquire fails with a StaleError.
pub struct StaleFailure<'a> {
    pub acquire: u64,
    pub lock: &'a Path,
    /// The file there now: its inode and bytes (None: nothing there).
    pub on_disk: Option<(u64, Vec<u8>)>,
    /// The pid its payload names, and why the world's process table says that holder is gone
    /// (`holder_gone`; None: a live gateway, or one the judge cannot place).
    pub holder: Option<(u32, Option<&'static str>)>,
    /// The failing acquirer's wall clock, ms: its highest reading since the acquire began
    /// and the file there was written (a step back after the verdict does not undo it).
    pub wall_ms: i64,
    pub stale_ms: u64,
}

impl Witness {
    /// When acquire `acquire` of `pid` began (simulated ns), while it is under way.
    pub fn acquire_began(&self, pid: u32, acquire: u64) -> Option<u64> {
        self.acquires.get(&(pid, acquire)).copied()
    }

    /// I15 (StaleError half): a StaleError is for a lock that is stale for report-only reasons
    /// (too old, hold exceeded) when the acquire gives up — not for one that vanished or was
    /// replaced by a fresh lock between the judging read and its stat, nor for one whose
    /// holder the world knows is gone (SPEC §1.1 removes those, too old or not).
    pub fn stale_failure(&mut self, pid: u32, now: u64, f: &StaleFailure<'_>, out: &mut Vec<Violation>) {
        use heldlock_core::payload::LockPayload;
        let began = self.acquires.remove(&(pid, f.acquire)).unwrap_or(0);
        // An acquire that took the reclaim guard drops it (an fs op) between its verdict and
        // its failure: the disk seen now may postdate the verdict. Judged only without one.
        if self.guards.get(&pid).is_some_and(|t| *t >= began) {
            return;
        }
        let why = match &f.on_disk {
            None => Some("the lock file is gone".to_owned()),
            Some((_, bytes)) => match LockPayload::parse(bytes).filter(|p| p.pid.is_some()) {
                None => Some("the lock file there now has no payload".to_owned()),
                Some(payload) => {
                    let created = payload.created_at.as_deref().and_then(parse_rfc3339_ms);
                    let age = created.map(|c| f.wall_ms.saturating_sub(c));
                    let too_old = age.is_some_and(|a| a > f.stale_ms as i64);
                    let over_hold = age.zip(payload.max_hold_ms).is_some_and(|(a, max)| a > max as i64);
                    (!too_old && !over_hold)
                        .then(|| format!("the lock there now is {} ms old and in bounds", age.unwrap_or(0)))
                }
            },
        };
        if let Some(why) = why {
            out.push(violation(
                now,
                InvariantId::I15,
                Some(pid),
                Some(f.lock),
                format!("availability: the acquire failed with a StaleError but {why}: the verdict was not re-verified"),
            ));
        } else if let Some(gone) = self.gone_holder(pid, began, f.holder) {
            out.push(violation(now, InvariantId::I15, Some(pid), Some(f.lock), gone));
        }
    }

    /// The holder a StaleError left in place was gone for the whole acquire by the world's
    /// process table — every probe the acquirer made saw it so. Its own pid is left to the
    /// judge (it may hold the lock: never stale).
    fn gone_holder(&self, pid: u32, began: u64, holder: Option<(u32, Option<&str>)>) -> Option<String> {
        let (holder, why) = holder.filter(|(h, _)| *h != pid)?;
        let why = why?;
        let settled = self.pid_changes.get(&holder).is_none_or(|t| *t < began);
        settled.then(|| {
            format!(
                "availability: a StaleError kept a lock whose holder p{holder} is {why} by the process \
                 table since before the acquire: SPEC removes it"
            )
        })
    }
}

/// RFC 3339 date-time (`T` or a space, optional fraction, `Z` or `±HH:MM`) in Unix ms: the
/// witness's own reading of `createdAt`, independent of the lock's parser.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 60 + rest[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + hour * 3_600 + min * 60 + sec - offset_min * 60;
    Some(secs * 1_000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owner wait times out only behind a guard held all along: one the workload let go of
    /// before the wait began holds nothing (cargo-mutants: `OwnerGuard`'s `Drop → ()`).
    #[test]
    fn an_owner_timeout_needs_a_guard_held_since_the_wait_began() {
        let s = Path::new("/srv/sessions/s0.jsonl");
        let mut w = Witness::default();
        let mut out = Vec::new();
        w.owner_taken(7, s);
        w.check_owner_timeout(7, 100, s, 10, &mut out);
        assert!(out.is_empty(), "a turn of p7 holds it");
        w.owner_let_go(7, 50, s);
        w.check_owner_timeout(7, 100, s, 10, &mut out);
        assert!(out.is_empty(), "it was held when the wait began");
        w.check_owner_timeout(7, 100, s, 60, &mut out);
        w.check_owner_timeout(8, 100, s, 60, &mut out);
        let found: Vec<InvariantId> = out.iter().map(|v| v.invariant).collect();
        assert_eq!(found, [InvariantId::I15, InvariantId::I15], "let go before, or never taken");
    }

    /// A transcript deleted while a controller was released: an operation begun since the
    /// release must fail with a takeover, not ENOENT; one begun before it (a scope whose
    /// prompt release was deferred to its end) failed on its own earlier calls (seed 288256).
    #[test]
    fn enoent_after_a_delete_while_released_is_judged_for_operations_begun_since_the_release() {
        let t = Path::new("/srv/sessions/s0.jsonl");
        let ctl = ControllerId(1);
        let enoent: Result<(), ControllerError> = Err(ControllerError::Io {
            path: t.into(),
            source: std::io::Error::from_raw_os_error(errno::ENOENT),
        });
        let released_and_deleted = || {
            let mut w = Witness::default();
            let created = LockEvent::ControllerCreated { ctl, transcript: t };
            w.on_lock_event(7, 0, &created, Path::to_path_buf);
            w.on_lock_event(
                7,
                100,
                &LockEvent::FenceRecorded {
                    ctl,
                    op: heldlock_core::event::OpId(2),
                },
                Path::to_path_buf,
            );
            w.transcript_deleted(t);
            w
        };
        let mut out = Vec::new();
        released_and_deleted().locked_op_returned(7, (300, 50), ctl, (&enoent, false), &mut out);
        assert!(out.is_empty(), "begun before the release: {out:?}");
        released_and_deleted().locked_op_returned(7, (300, 200), ctl, (&enoent, false), &mut out);
        assert_eq!(out.iter().map(|v| v.invariant).collect::<Vec<_>>(), [InvariantId::I10]);
    }

    #[test]
    fn what_a_caller_reads_off_an_error_must_agree_with_it() {
        use heldlock_core::event::PoisonReason;
        let io = ControllerError::Io {
            path: "/s".into(),
            source: std::io::Error::from_raw_os_error(errno::ENOENT),
        };
        assert_eq!(carried_errno(&io), Some(errno::ENOENT));
        assert!(told_wrong(&io, false).is_none(), "raw_os_error agrees");
        let takeover = ControllerError::Takeover {
            reason: PoisonReason::Takeover,
        };
        assert_eq!(carried_errno(&takeover), None);
        assert!(told_wrong(&takeover, true).is_none());
        assert_eq!(told_wrong(&takeover, false).map(|(inv, _)| inv), Some(InvariantId::I6));
    }

    #[test]
    fn an_owner_wait_ends_by_its_budget_or_at_an_abort() {
        use heldlock_core::OwnerError;
        let ms = 1_000_000;
        let check = |wait: OwnerWait, now_ms: u64, result: Result<heldlock_core::OwnerGuard, OwnerError>| {
            let mut out = Vec::new();
            let facts = ProcFacts {
                alive: true,
                ..ProcFacts::default()
            };
            // Another turn of p1 holds the owner all along: the wait may time out.
            let mut witness = Witness::default();
            witness.owner_taken(1, Path::new("/s"));
            witness.owner_wait_returned(1, now_ms * ms, &wait, &result, &facts, &mut out);
            out.into_iter().map(|v| v.invariant).collect::<Vec<_>>()
        };
        let wait = |aborted_at: Option<u64>| OwnerWait {
            session: "/s".into(),
            began: 0,
            aborted_at: aborted_at.map(|t| t * ms),
            timeout_ms: 10_000,
            stalled_ms: 0,
        };
        let timeout = || {
            Err(OwnerError::Timeout {
                session: "/s".into(),
                timeout_ms: 10_000,
            })
        };
        assert!(check(wait(None), 10_000, timeout()).is_empty(), "timed out at its budget");
        assert_eq!(check(wait(None), 3, timeout()), vec![InvariantId::I12], "timed out at once");
        assert!(check(wait(None), 11_000, timeout()).is_empty(), "within the scheduling slack");
        // cargo-mutants: `owner.rs:180` `- → +`, whose timer outlasts the deadline: the wait
        // ends only at the holder's release, long after its budget.
        assert_eq!(check(wait(None), 15_000, timeout()), vec![InvariantId::I12], "past its budget");
        assert!(check(wait(Some(500)), 500, Err(OwnerError::Aborted)).is_empty(), "the abort ended it");
        assert_eq!(check(wait(Some(500)), 10_000, timeout()), vec![InvariantId::I5], "the abort did not");
    }

    /// cargo-mutants: `OwnerMutex::key → Ok(Default)`, one owner for every session of a
    /// process: a wait blocks behind another session's turn.
    #[test]
    fn an_owner_wait_no_owner_explains_is_caught() {
        let ms = 1_000_000;
        let wait = OwnerWait {
            session: "/s".into(),
            began: 1_000 * ms,
            aborted_at: None,
            timeout_ms: 300_000,
            stalled_ms: 40,
        };
        let free = ProcFacts {
            alive: true,
            stalled_ms: 40,
            ..ProcFacts::default()
        };
        let blocked = |w: &Witness, now_ms: u64, facts: &ProcFacts| {
            let mut out = Vec::new();
            w.check_owner_blocked(1, now_ms * ms, &wait, facts, &mut out);
            out.into_iter().map(|v| v.invariant).collect::<Vec<_>>()
        };
        let mut w = Witness::default();
        w.owner_taken(1, Path::new("/other"));
        assert!(blocked(&w, 1_010, &free).is_empty(), "returned at once");
        assert_eq!(blocked(&w, 4_000, &free), vec![InvariantId::I15], "blocked with no owner of /s");
        let stalled = ProcFacts {
            stalled_ms: 3_040,
            ..free
        };
        assert!(blocked(&w, 4_000, &stalled).is_empty(), "fs stalls resolving the path");
        let paused = ProcFacts {
            last_resume_ns: Some(2_000 * ms),
            ..free
        };
        assert!(blocked(&w, 4_000, &paused).is_empty(), "paused meanwhile");
        w.owner_taken(1, Path::new("/s"));
        assert!(blocked(&w, 4_000, &free).is_empty(), "another turn owned /s");
        w.owner_let_go(1, 3_000 * ms, Path::new("/s"));
        assert!(blocked(&w, 4_000, &free).is_empty(), "and let go of it during the wait");
    }

    #[test]
    fn a_stale_error_on_a_holder_gone_for_the_whole_acquire_is_caught() {
        let payload = br#"{"pid":7,"createdAt":"2025-12-01T00:00:00.000Z"}"#.to_vec();
        let failure = |holder| StaleFailure {
            acquire: 1,
            lock: Path::new("/s.jsonl.lock"),
            on_disk: Some((3, payload.clone())),
            holder,
            wall_ms: 1_767_225_600_000,
            stale_ms: 1_800_000,
        };
        let run = |w: &mut Witness, holder| {
            let mut out = Vec::new();
            w.acquires.insert((2, 1), 100);
            w.stale_failure(2, 200, &failure(holder), &mut out);
            out
        };
        let mut w = Witness::default();
        assert!(run(&mut w, Some((7, None))).is_empty(), "a live holder: the StaleError stands");
        assert_eq!(run(&mut w, Some((7, Some("dead")))).len(), 1, "a dead holder: SPEC removes it");
        assert!(run(&mut w, Some((2, Some("dead")))).is_empty(), "its own pid is the judge's");
        w.pid_changed(7, 150);
        assert!(run(&mut w, Some((7, Some("dead")))).is_empty(), "died during the acquire: a race");
    }

    #[test]
    fn createdat_forms_read_the_same_instant() {
        let z = parse_rfc3339_ms("2026-01-01T00:00:00.000Z");
        assert_eq!(z, Some(1_767_225_600_000));
        assert_eq!(parse_rfc3339_ms("2026-01-01T02:00:00.000+02:00"), z);
        assert_eq!(parse_rfc3339_ms("2025-12-31T18:30:00-05:30"), z);
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00.000123Z"), z);
        assert_eq!(parse_rfc3339_ms("2026-01-01 00:00:00Z"), z);
        assert_eq!(parse_rfc3339_ms("2026-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }

    /// A planted live lock a gateway moved aside is judged by who drops it: the mover's own
    /// life owed the put back (I11: how cargo-mutants' `Seen::same_entry → true` failed, seed
    /// 978 on branch `wip/reclaim-race`); a later life of its pid finds it as junk at its
    /// private name (seed 7570 there, FUSE).
    #[test]
    fn a_planted_lock_left_aside_by_an_earlier_life_is_junk() {
        let planted = || PlantedLive {
            lock: PathBuf::from("/s.jsonl.lock"),
            holder: 5000,
            form: "Z",
        };
        // Pid 104's first life (from 10) moved inode 40 aside at 100; it is dropped at 300.
        let drop_after = |life_began: Option<u64>, aside: Option<(u32, u64)>, at: &str| {
            let mut w = Witness::default();
            w.pid_changed(104, 10);
            w.planted_live(40, planted());
            if let Some(t) = life_began {
                w.pid_changed(104, t);
            }
            let mut out = Vec::new();
            w.lock_unlinked(104, 300, (Path::new(at), 40, aside), &mut out);
            out.len()
        };
        let swap = "/s.jsonl.lock.104-5.swap";
        assert_eq!(drop_after(None, Some((104, 100)), swap), 1, "the mover's own life owed the put back");
        assert_eq!(drop_after(Some(200), Some((104, 100)), swap), 0, "a later life of the pid drops junk");
        assert_eq!(drop_after(Some(200), Some((103, 100)), swap), 1, "another process moved it aside");
        assert_eq!(drop_after(Some(200), None, "/s.jsonl.lock"), 1, "back on its path, it is live again");
    }
}
