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
    /// `AttemptController::create`: the eager acquire.
    Create,
    /// `with_write_lock`: one write scope.
    Write,
    /// `release_for_prompt`.
    PromptRelease,
    /// `reacquire_after_prompt`.
    Reacquire,
    /// The abort release (`abort` / `release_for_abort`).
    AbortRelease,
    /// `acquire_for_cleanup`.
    Cleanup,
    /// `dispose`.
    Dispose,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 7] = [
        OpKind::Create,
        OpKind::Write,
        OpKind::PromptRelease,
        OpKind::Reacquire,
        OpKind::AbortRelease,
        OpKind::Cleanup,
        OpKind::Dispose,
    ];

    /// The operation's name as SPEC §3 spells it.
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
    /// The attempt ran out of time.
    Timeout,
    /// The user (or the service) cancelled it.
    Manual,
}

impl AbortKind {
    /// `timeout` or `manual`.
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
    /// The lock itself, taking the handle from its holder (`cause`): the handle is lost.
    Lost(LossCause),
}

/// Why a handle was taken from its holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossCause {
    /// The watchdog: held past maxHoldMs.
    Watchdog,
    /// Its lock file is no longer the entry at its lock path: removed or replaced from
    /// outside, or moved off by a reclaimer's exchange that was never swapped back.
    FileGone,
    /// A later acquire of this process published at the path after the older handle's file
    /// was removed.
    Superseded,
}

impl LossCause {
    /// Short name for traces and logs.
    pub fn name(self) -> &'static str {
        match self {
            LossCause::Watchdog => "the watchdog (held past maxHoldMs)",
            LossCause::FileGone => "its lock file is no longer at the lock path",
            LossCause::Superseded => "a later acquire of this process replaced it",
        }
    }
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
    /// The reason in kebab case (`takeover`, `lock-error`, …).
    pub fn name(self) -> &'static str {
        match self {
            PoisonReason::Takeover => "takeover",
            PoisonReason::LockError => "lock-error",
            PoisonReason::AbortForced => "abort-forced",
            PoisonReason::LockLost => "lock-lost",
        }
    }
}

/// Why an acquire gave up (SPEC §1 steps 3–4), as the lock states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal<'a> {
    /// The budget ran out (`SessionWriteLockTimeoutError`).
    Timeout,
    /// The lock there is stale only for these report-only reasons (`SessionWriteLockStaleError`).
    Stale(&'a [StaleReason]),
    /// An I/O error, with its errno when it has one.
    Io(Option<i32>),
}

impl Refusal<'_> {
    /// `timeout`, `stale` or `io-error`.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Timeout => "timeout",
            Refusal::Stale(_) => "stale",
            Refusal::Io(_) => "io-error",
        }
    }
}

/// One state change, as the observer sees it.
#[derive(Clone, Debug)]
pub enum LockEvent<'a> {
    /// `acquire` numbers one call of `ProcessLocks::acquire` within its process.
    AcquireStart {
        /// The acquire call, numbered within its process.
        acquire: u64,
        /// The lock file.
        lock: &'a Path,
        /// The acquire budget.
        timeout_ms: u64,
    },
    /// A lock file was created and is now held by `handle`.
    Acquired {
        /// The acquire call, numbered within its process.
        acquire: u64,
        /// The lock handle.
        handle: HandleId,
        /// The lock file.
        lock: &'a Path,
        /// The lock file's inode.
        ino: u64,
        /// How long the watchdog lets the handle be held.
        max_hold_ms: u64,
    },
    /// An acquire gave up with an error.
    AcquireFailed {
        /// The acquire call, numbered within its process.
        acquire: u64,
        /// The lock file.
        lock: &'a Path,
        /// Why, structured: which error, and for a StaleError the reasons the lock gave.
        refusal: Refusal<'a>,
        /// The error, as displayed.
        error: String,
    },
    /// A stale lock file was judged removable and unlinked.
    Reclaimed {
        /// The lock file.
        lock: &'a Path,
        /// The lock file's inode.
        ino: u64,
        /// Why it was judged stale.
        reasons: &'a [StaleReason],
    },
    /// A reclaim guard left by a reclaimer that never finished was removed.
    GuardRecovered {
        /// The guard directory.
        guard: &'a Path,
    },
    /// A release of `handle` started.
    ReleaseBegin {
        /// The lock handle.
        handle: HandleId,
        /// The lock file.
        lock: &'a Path,
        /// Who released it.
        by: ReleaseBy,
    },
    /// A release of `handle` finished.
    ReleaseEnd {
        /// The lock handle.
        handle: HandleId,
        /// The lock file.
        lock: &'a Path,
        /// Whether the file was removed (false: it was gone or a successor's).
        unlinked: bool,
        /// The errno of a failed release (the file then stays, an orphan of this process).
        errno: Option<i32>,
    },
    /// A handle was taken from its holder (`cause`): its holder's writes now fail.
    HandleLost {
        /// The lock handle.
        handle: HandleId,
        /// The lock file.
        lock: &'a Path,
        /// How long it had been held.
        held_ms: u64,
        /// Why it was taken.
        cause: LossCause,
    },
    /// An attempt became the owner of its session (SPEC §2).
    OwnerAcquired {
        /// The session's transcript, directory resolved.
        session: &'a Path,
        /// The attempt that owns the session.
        attempt: u64,
    },
    /// An attempt gave up ownership of its session.
    OwnerReleased {
        /// The session's transcript, directory resolved.
        session: &'a Path,
        /// The attempt that owns the session.
        attempt: u64,
    },
    /// A controller was created for a transcript.
    ControllerCreated {
        /// The controller.
        ctl: ControllerId,
        /// Its transcript.
        transcript: &'a Path,
    },
    /// A controller operation started.
    OpBegin {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// Which operation.
        kind: OpKind,
    },
    /// A controller operation returned.
    OpEnd {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// Which operation.
        kind: OpKind,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The controller now retains `handle`.
    HeldSet {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// The lock handle.
        handle: HandleId,
    },
    /// The controller cleared `held`; the clearing operation owes `duty`.
    HeldCleared {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// The lock handle.
        handle: HandleId,
        /// What the clearer owes the handle.
        duty: Duty,
    },
    /// The controller was poisoned (sticky `takeover`).
    Poisoned {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// Why.
        reason: PoisonReason,
    },
    /// The operation became the drain owner.
    DrainOwned {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// The drain owner let go.
    DrainFreed {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// A prompt release asked for from inside a write scope, run when the scope ends.
    ReleaseDeferred {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// The abort path was entered (before any release it may or may not start).
    AbortRequested {
        /// The controller.
        ctl: ControllerId,
        /// Timeout or manual.
        kind: AbortKind,
    },
    /// The fence was recorded at a prompt release: later changes are judged against it.
    FenceRecorded {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// A fence check passed: the controller holds a lock and accepts the transcript as it is.
    FenceChecked {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// A transcript write is about to be issued under `handle` (None: a no-op cleanup lock).
    WriteBegin {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// The lock written under (`None`: a no-op cleanup lock).
        handle: Option<HandleId>,
    },
    /// A transcript write returned.
    WriteEnd {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A prompt release returned, or the scope that deferred one ended: the controller must
    /// hold nothing now.
    PromptReleased {
        /// The controller.
        ctl: ControllerId,
        /// The operation.
        op: OpId,
    },
    /// The controller was disposed: it holds nothing from here on.
    Disposed {
        /// The controller.
        ctl: ControllerId,
    },
}
