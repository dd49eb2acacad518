//! Coverage of a campaign: which controller transitions (SPEC §3) and which fault sites fired.
//! Anything in the universes below that a default campaign never reaches is a workload gap.

use std::collections::BTreeMap;

use heldlock_core::event::{AbortKind, Duty, LockEvent, LossCause, OpKind, PoisonReason, Refusal, ReleaseBy};
use heldlock_core::judge::StaleReason;

use crate::faults::{FaultSite, FsOp, PathClass};

/// Every transition a campaign should reach.
pub const TRANSITIONS: &[&str] = &[
    "create/ok",
    "create/err",
    "with-write-lock/ok",
    "with-write-lock/err",
    "release-for-prompt/ok",
    "release-for-prompt/err",
    "reacquire-after-prompt/ok",
    "reacquire-after-prompt/err",
    "release-for-abort/ok",
    "release-for-abort/err",
    "acquire-for-cleanup/ok",
    "dispose/ok",
    "held-set",
    "held-cleared/release",
    "held-cleared/hand-to-cleanup",
    "poison/takeover",
    "poison/lock-error",
    "poison/abort-forced",
    "poison/lock-lost",
    "drain-owned",
    "release-deferred",
    "abort/timeout",
    "abort/manual",
    "fence-recorded",
    "write",
    "prompt-released",
    "disposed",
    "reclaim/dead-pid",
    "reclaim/recycled-pid",
    "reclaim/orphan-self-pid",
    "reclaim/non-owner-process",
    "reclaim/missing-pid",
    "guard-recovered",
    "release/owner",
    "release/watchdog",
    "release/lost",
    "release/unlink-check-failed",
    "acquire/timeout",
    "acquire/stale",
    "acquire/io-error",
];

/// The fault sites the core's operations pass through.
pub const CORE_FAULT_SITES: &[FaultSite] = &[
    // The judge's liveness probe (only hangs fire there).
    FaultSite::PROBE,
    FaultSite {
        op: FsOp::CanonicalDir,
        class: PathClass::Dir,
    },
    // Our lock is made at a private name beside the lock (a `dir` path to the fault plan),
    // then renamed onto the lock path.
    FaultSite {
        op: FsOp::CreateExclusive,
        class: PathClass::Dir,
    },
    FaultSite {
        op: FsOp::Rename,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::WriteFd,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::Close,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::Read,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::StatFd,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::Unlink,
        class: PathClass::Lock,
    },
    FaultSite {
        op: FsOp::Stat,
        class: PathClass::Guard,
    },
    FaultSite {
        op: FsOp::Mkdir,
        class: PathClass::Guard,
    },
    FaultSite {
        op: FsOp::Rmdir,
        class: PathClass::Guard,
    },
    FaultSite {
        op: FsOp::Stat,
        class: PathClass::Transcript,
    },
    FaultSite {
        op: FsOp::Read,
        class: PathClass::Transcript,
    },
    FaultSite {
        op: FsOp::Append,
        class: PathClass::Transcript,
    },
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub transitions: BTreeMap<&'static str, u64>,
    pub fault_sites: BTreeMap<FaultSite, u64>,
}

fn op_key(kind: OpKind, ok: bool) -> &'static str {
    match (kind, ok) {
        (OpKind::Create, true) => "create/ok",
        (OpKind::Create, false) => "create/err",
        (OpKind::Write, true) => "with-write-lock/ok",
        (OpKind::Write, false) => "with-write-lock/err",
        (OpKind::PromptRelease, true) => "release-for-prompt/ok",
        (OpKind::PromptRelease, false) => "release-for-prompt/err",
        (OpKind::Reacquire, true) => "reacquire-after-prompt/ok",
        (OpKind::Reacquire, false) => "reacquire-after-prompt/err",
        (OpKind::AbortRelease, true) => "release-for-abort/ok",
        (OpKind::AbortRelease, false) => "release-for-abort/err",
        (OpKind::Cleanup, _) => "acquire-for-cleanup/ok",
        (OpKind::Dispose, _) => "dispose/ok",
    }
}

/// The transition an event stands for, if it is one we count.
pub fn transition_of(ev: &LockEvent<'_>) -> Option<&'static str> {
    Some(match ev {
        LockEvent::OpEnd { kind, ok, .. } => op_key(*kind, *ok),
        LockEvent::HeldSet { .. } => "held-set",
        LockEvent::HeldCleared {
            duty: Duty::Release, ..
        } => "held-cleared/release",
        LockEvent::HeldCleared {
            duty: Duty::HandToCleanup,
            ..
        } => "held-cleared/hand-to-cleanup",
        LockEvent::Poisoned { reason, .. } => match reason {
            PoisonReason::Takeover => "poison/takeover",
            PoisonReason::LockError => "poison/lock-error",
            PoisonReason::AbortForced => "poison/abort-forced",
            PoisonReason::LockLost => "poison/lock-lost",
        },
        LockEvent::DrainOwned { .. } => "drain-owned",
        LockEvent::ReleaseDeferred { .. } => "release-deferred",
        LockEvent::AbortRequested {
            kind: AbortKind::Timeout,
            ..
        } => "abort/timeout",
        LockEvent::AbortRequested {
            kind: AbortKind::Manual,
            ..
        } => "abort/manual",
        LockEvent::FenceRecorded { .. } => "fence-recorded",
        LockEvent::WriteBegin { handle: Some(_), .. } => "write",
        LockEvent::PromptReleased { .. } => "prompt-released",
        LockEvent::Disposed { .. } => "disposed",
        LockEvent::Reclaimed { reasons, .. } => {
            if reasons.contains(&StaleReason::DeadPid) {
                "reclaim/dead-pid"
            } else if reasons.contains(&StaleReason::RecycledPid) {
                "reclaim/recycled-pid"
            } else if reasons.contains(&StaleReason::OrphanSelfPid) {
                "reclaim/orphan-self-pid"
            } else if reasons.contains(&StaleReason::NonOwnerProcess) {
                "reclaim/non-owner-process"
            } else {
                "reclaim/missing-pid"
            }
        }
        LockEvent::GuardRecovered { .. } => "guard-recovered",
        LockEvent::ReleaseBegin {
            by: ReleaseBy::Owner, ..
        } => "release/owner",
        LockEvent::ReleaseBegin {
            by: ReleaseBy::Lost(LossCause::Watchdog),
            ..
        } => "release/watchdog",
        LockEvent::ReleaseBegin {
            by: ReleaseBy::Lost(_),
            ..
        } => "release/lost",
        LockEvent::ReleaseEnd { errno: Some(_), .. } => "release/unlink-check-failed",
        LockEvent::AcquireFailed { refusal, .. } => match refusal {
            Refusal::Timeout => "acquire/timeout",
            Refusal::Stale(_) => "acquire/stale",
            Refusal::Io(_) => "acquire/io-error",
        },
        _ => return None,
    })
}

impl Coverage {
    pub fn note(&mut self, ev: &LockEvent<'_>) {
        if let Some(key) = transition_of(ev) {
            *self.transitions.entry(key).or_insert(0) += 1;
        }
    }

    pub fn note_fault(&mut self, site: FaultSite) {
        *self.fault_sites.entry(site).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: &Coverage) {
        for (k, v) in &other.transitions {
            *self.transitions.entry(k).or_insert(0) += v;
        }
        for (k, v) in &other.fault_sites {
            *self.fault_sites.entry(*k).or_insert(0) += v;
        }
    }

    /// Transitions and core fault sites never reached.
    pub fn gaps(&self) -> (Vec<&'static str>, Vec<FaultSite>) {
        let transitions = TRANSITIONS.iter().copied().filter(|t| !self.transitions.contains_key(t)).collect();
        let sites = CORE_FAULT_SITES.iter().copied().filter(|s| !self.fault_sites.contains_key(s)).collect();
        (transitions, sites)
    }
}
