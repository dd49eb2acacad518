//! What the lock machinery tells its `Observer`. Borrowed paths: emitting costs no allocation.

use std::fmt;
use std::path::Path;

use crate::judge::StaleReason;

/// A lock handle, unique within its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandleId(pub u64);

/// An attempt controller, unique within its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControllerId(pub u64);

/// One call into a controller (unique within its process): lets the oracle tie a `held`
/// clearing to the operation that must have issued its release by the time it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

impl fmt::Display for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.0)
    }
}
impl fmt::Display for ControllerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}
impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op{}", self.0)
    }
}

/// The controller's public operations (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Create,
    Write,
    PromptRelease,
    Reacquire,
    AbortRelease,
    Cleanup,
    Dispose,
}

impl OpKind {
    pub const ALL: [OpKind; 7] = [
        OpKind::Create,
        OpKind::Write,
        OpKind::PromptRelease,
        OpKind::Reacquire,
        OpKind::AbortRelease,
        OpKind::Cleanup,
        OpKind::Dispose,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Write => "with-write-lock",
            OpKind::PromptRelease => "release-for-prompt",
            OpKind::Reacquire => "reacquire-after-prompt",
            OpKind::AbortRelease => "release-for-abort",
            OpKind::Cleanup => "acquire-for-cleanup",
            OpKind::Dispose => "dispose",
        }
    }
}

/// Why an attempt was aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortKind {
    Timeout,
    Manual,
}

impl AbortKind {
    pub fn name(self) -> &'static str {
        match self {
            AbortKind::Timeout => "timeout",
            AbortKind::Manual => "manual",
        }
    }
}

/// Who released a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReleaseBy {
    /// The handle's owner (a controller path, a short lock, a test).
    Owner,
    /// The watchdog, after the hold exceeded maxHoldMs: the handle is lost.
    Watchdog,
}

/// What the one who cleared `held` does with the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Duty {
    /// Releases it before the clearing operation returns.
    Release,
    /// Hands it to the cleanup lock returned to the caller, who releases it.
    HandToCleanup,
}

/// Why a controller was poisoned (its sticky `takeover` set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoisonReason {
    /// The fence found an unowned, non-benign transcript change.
    Takeover,
    /// Acquiring the lock failed.
    LockError,
    /// The abort settle bound expired and the lock was forced free.
    AbortForced,
    /// The watchdog took the lock away.
    LockLost,
}

impl PoisonReason {
    pub fn name(self) -> &'static str {
        match self {
            PoisonReason::Takeover => "takeover",
            PoisonReason::LockError => "lock-error",
            PoisonReason::AbortForced => "abort-forced",
            PoisonReason::LockLost => "lock-lost",
        }
    }
}

/// One state change, as the observer sees it.
#[derive(Clone, Debug)]
pub enum LockEvent<'a> {
    /// `acquire` numbers one call of `ProcessLocks::acquire` within its process.
    AcquireStart {
        acquire: u64,
        lock: &'a Path,
        timeout_ms: u64,
    },
    Acquired {
        acquire: u64,
        handle: HandleId,
        lock: &'a Path,
        ino: u64,
        max_hold_ms: u64,
    },
    AcquireFailed {
        acquire: u64,
        lock: &'a Path,
        timeout: bool,
        error: String,
    },
    /// A stale lock file was judged removable and unlinked.
    Reclaimed {
        lock: &'a Path,
        ino: u64,
        reasons: &'a [StaleReason],
    },
    /// A reclaim guard left by a reclaimer that never finished was removed.
    GuardRecovered {
        guard: &'a Path,
    },
    ReleaseBegin {
        handle: HandleId,
        lock: &'a Path,
        by: ReleaseBy,
    },
    ReleaseEnd {
        handle: HandleId,
        lock: &'a Path,
        unlinked: bool,
        errno: Option<i32>,
    },
    /// The watchdog took a handle away: its holder's writes now fail.
    HandleLost {
        handle: HandleId,
        lock: &'a Path,
        held_ms: u64,
    },
    OwnerAcquired {
        session: &'a Path,
        attempt: u64,
    },
    OwnerReleased {
        session: &'a Path,
        attempt: u64,
    },
    ControllerCreated {
        ctl: ControllerId,
        transcript: &'a Path,
    },
    OpBegin {
        ctl: ControllerId,
        op: OpId,
        kind: OpKind,
    },
    OpEnd {
        ctl: ControllerId,
        op: OpId,
        kind: OpKind,
        ok: bool,
    },
    HeldSet {
        ctl: ControllerId,
        op: OpId,
        handle: HandleId,
    },
    HeldCleared {
        ctl: ControllerId,
        op: OpId,
        handle: HandleId,
        duty: Duty,
    },
    Poisoned {
        ctl: ControllerId,
        op: OpId,
        reason: PoisonReason,
    },
    DrainOwned {
        ctl: ControllerId,
        op: OpId,
    },
    DrainFreed {
        ctl: ControllerId,
        op: OpId,
    },
    /// A prompt release asked for from inside a write scope, run when the scope ends.
    ReleaseDeferred {
        ctl: ControllerId,
        op: OpId,
    },
    /// The abort path was entered (before any release it may or may not start).
    AbortRequested {
        ctl: ControllerId,
        kind: AbortKind,
    },
    /// The fence was recorded at a prompt release: later changes are judged against it.
    FenceRecorded {
        ctl: ControllerId,
        op: OpId,
    },
    /// A fence check passed: the controller holds a lock and accepts the transcript as it is.
    FenceChecked {
        ctl: ControllerId,
        op: OpId,
    },
    /// A transcript write is about to be issued under `handle` (None: a no-op cleanup lock).
    WriteBegin {
        ctl: ControllerId,
        op: OpId,
        handle: Option<HandleId>,
    },
    WriteEnd {
        ctl: ControllerId,
        op: OpId,
        ok: bool,
    },
    /// A prompt release returned, or the scope that deferred one ended: the controller must
    /// hold nothing now.
    PromptReleased {
        ctl: ControllerId,
        op: OpId,
    },
    Disposed {
        ctl: ControllerId,
    },
}
