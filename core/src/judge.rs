//! Judging an existing lock file (SPEC §1.1): why it might be stale, and what that allows.

use std::fmt;

use crate::payload::LockPayload;
use crate::platform::{Liveness, Processes};

/// One reason a lock may be stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StaleReason {
    /// No payload, or no valid pid in it.
    MissingPid,
    /// The pid is not alive, or a zombie.
    DeadPid,
    /// The pid is alive but its start time differs from the payload's: another process.
    RecycledPid,
    /// No valid `createdAt`.
    InvalidCreatedAt,
    /// Older than `staleMs` (report-only).
    TooOld,
    /// Held longer than its own `maxHoldMs` (report-only).
    HoldExceeded,
    /// Our own pid on a lock we do not hold: left by an earlier life of this process.
    OrphanSelfPid,
    /// A live process that is known not to be a gateway of this system.
    NonOwnerProcess,
}

impl StaleReason {
    /// The reason as SPEC spells it (`dead-pid`, `orphan-self-pid`, …).
    pub fn name(self) -> &'static str {
        match self {
            StaleReason::MissingPid => "missing-pid",
            StaleReason::DeadPid => "dead-pid",
            StaleReason::RecycledPid => "recycled-pid",
            StaleReason::InvalidCreatedAt => "invalid-createdAt",
            StaleReason::TooOld => "too-old",
            StaleReason::HoldExceeded => "hold-exceeded",
            StaleReason::OrphanSelfPid => "orphan-self-pid",
            StaleReason::NonOwnerProcess => "non-owner-process",
        }
    }

    /// Reasons that only report (StaleError, file kept).
    fn report_only(self) -> bool {
        matches!(self, StaleReason::TooOld | StaleReason::HoldExceeded)
    }

    /// Reasons that hold only once the file is older than the orphan grace: a live owner may be
    /// between its create and its payload write.
    fn needs_grace(self) -> bool {
        matches!(self, StaleReason::MissingPid | StaleReason::InvalidCreatedAt)
    }
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What may be done with a judged lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Not stale (or not yet): wait and poll again.
    Wait,
    /// Stale in a way that allows removing it.
    Remove,
    /// Stale, but only reported: the acquire fails with a StaleError.
    Report,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub reasons: Vec<StaleReason>,
    pub action: Action,
    /// Whether the payload's pid answered the liveness probe as alive.
    pub alive: Option<bool>,
}

/// What probing the holder a payload names found: the judge's only I/O. It is done first, and
/// the clock and the process's own lock state are read after it, so a verdict is as of the
/// probe's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HolderProbe {
    /// The pid the payload names.
    pub pid: u32,
    pub liveness: Liveness,
    /// Whether it is a gateway of this system; asked only of a live pid that is not recycled.
    pub gateway: Option<bool>,
}

/// Probe the holder `payload` names (`None`: no payload, or no pid in it).
pub async fn probe_holder(payload: Option<&LockPayload>, processes: &dyn Processes) -> Option<HolderProbe> {
    let payload = payload?;
    let pid = payload.pid?;
    let liveness = processes.probe(pid).await;
    let gateway = match liveness {
        Liveness::Alive { starttime: current } | Liveness::PermissionDenied { starttime: current }
            if !recycled(payload.starttime, current) =>
        {
            processes.is_gateway(pid).await
        }
        _ => None,
    };
    Some(HolderProbe { pid, liveness, gateway })
}

/// The payload's start time is known, the pid's current one too, and they differ.
fn recycled(recorded: Option<u64>, current: Option<u64>) -> bool {
    matches!((recorded, current), (Some(a), Some(b)) if a != b)
}

/// Everything the judge looks at.
pub struct JudgeInput<'a> {
    pub payload: Option<&'a LockPayload>,
    /// What [`probe_holder`] found of the pid in `payload`.
    pub holder: Option<HolderProbe>,
    /// The lock file's mtime, wall-clock ms.
    pub file_mtime_ms: i64,
    pub now_wall_ms: i64,
    pub stale_ms: u64,
    pub orphan_grace_ms: u64,
    /// This process holds the target (its held map): never stale, whatever the file says.
    pub held_by_us: bool,
    /// A create or a release of ours is under way on the target: the file may be our own
    /// fresh or departing lock, and is then as good as held — but only a file that could be
    /// ours (no pid, or our pid and start time); another pid's lock is judged on its merits.
    pub ours_in_flight: bool,
}

/// The verdict on a lock whose holder was probed (`input.holder`); `processes` answers only
/// for this process itself.
pub fn judge(input: &JudgeInput<'_>, processes: &dyn Processes) -> Verdict {
    let mut reasons = Vec::new();
    let mut alive = None;
    let starttime = input.payload.and_then(|p| p.starttime);
    let names_us = input.holder.map(|h| {
        h.pid == processes.own_pid() && (starttime.is_none() || starttime == processes.own_starttime())
    });
    let held_by_us = input.held_by_us || (input.ours_in_flight && names_us != Some(false));
    match input.holder {
        None => reasons.push(StaleReason::MissingPid),
        Some(holder) => {
            match holder.liveness {
                Liveness::Dead | Liveness::Zombie => {
                    alive = Some(false);
                    reasons.push(StaleReason::DeadPid);
                }
                // A refused probe is a live process whose identity can still be checked.
                Liveness::PermissionDenied { starttime: current }
                | Liveness::Alive { starttime: current } => {
                    alive = Some(true);
                    if recycled(starttime, current) {
                        reasons.push(StaleReason::RecycledPid);
                    } else if holder.gateway == Some(false) {
                        reasons.push(StaleReason::NonOwnerProcess);
                    }
                }
            }
            if names_us == Some(true) && !held_by_us {
                reasons.push(StaleReason::OrphanSelfPid);
            }
        }
    }
    let created = input.payload.and_then(LockPayload::created_wall_ms);
    match created {
        None => reasons.push(StaleReason::InvalidCreatedAt),
        Some(created) => {
            let age = input.now_wall_ms.saturating_sub(created).max(0) as u64;
            if age > input.stale_ms {
                reasons.push(StaleReason::TooOld);
            }
            let max_hold = input.payload.and_then(|p| p.max_hold_ms);
            if !held_by_us && max_hold.is_some_and(|max| age > max) {
                reasons.push(StaleReason::HoldExceeded);
            }
        }
    }
    reasons.sort();
    reasons.dedup();

    // A lock this process holds is never stale.
    if held_by_us {
        return Verdict {
            reasons: Vec::new(),
            action: Action::Wait,
            alive,
        };
    }
    let file_age = input.now_wall_ms.saturating_sub(input.file_mtime_ms).max(0) as u64;
    let removable = reasons.iter().any(|r| !r.report_only() && !r.needs_grace())
        || (reasons.iter().any(|r| r.needs_grace()) && file_age > input.orphan_grace_ms);
    let action = if removable {
        Action::Remove
    } else if reasons.iter().any(|r| r.report_only()) {
        Action::Report
    } else {
        Action::Wait
    };
    Verdict {
        reasons,
        action,
        alive,
    }
}
