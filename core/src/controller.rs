//! The attempt controller (SPEC §3): one attempt's hold on its session's file lock, let go
//! while the model prompt streams and taken back afterwards. Rule one: whoever clears `held`
//! owns the duty to release that handle, on every path, errors included.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;
use futures::future::{select, Either};

use crate::event::{AbortKind, ControllerId, Duty, LockEvent, OpId, OpKind, PoisonReason};
use crate::fence::{is_append_of, is_owned_append, Fence, Fingerprint};
use crate::file_lock::{LockError, LockHandle, LockOptions, ProcessLocks};
use crate::mutant::mutant_on;
use crate::platform::{errno, is_errno};

/// The abort settle bound: an abort's release is forced after this long.
pub const SETTLE_BOUND_MS: u64 = 2_000;
/// An attempt's maxHoldMs: max(5 min, compaction timeout 900 s + 120 s).
pub const ATTEMPT_MAX_HOLD_MS: u64 = 1_020_000;
/// Stat-read-stat passes a fence recording makes before it gives up on a moving transcript.
const FENCE_READ_PASSES: u32 = 3;

/// A controller's parameters; the defaults are the production ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerOptions {
    /// The file lock's acquire options (maxHoldMs defaults to [`ATTEMPT_MAX_HOLD_MS`]).
    pub lock: LockOptions,
    /// How long an abort waits for the graceful release before forcing it ([`SETTLE_BOUND_MS`]).
    pub settle_bound_ms: u64,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            lock: LockOptions {
                max_hold_ms: ATTEMPT_MAX_HOLD_MS,
                ..LockOptions::default()
            },
            settle_bound_ms: SETTLE_BOUND_MS,
        }
    }
}

/// Why a controller operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Acquiring the file lock failed (the controller is poisoned by it).
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The controller is poisoned: the transcript changed under the released lock, or a lock
    /// error, a forced abort or the watchdog poisoned it before (`reason`).
    #[error("SessionTakeoverError: the controller is poisoned ({})", reason.name())]
    Takeover {
        /// What poisoned the controller.
        reason: PoisonReason,
    },
    /// The lock was taken away (the watchdog, or the file removed or moved off the lock path
    /// from under it): the write did not happen and the controller is poisoned.
    #[error("SessionWriteLockLostError: the watchdog took the lock away")]
    LockLost,
    /// The controller was disposed before the operation got its lock: nothing was written
    /// and the lock was given back (SPEC I4: nothing makes a disposed controller hold again).
    #[error("SessionDisposedError: the controller was disposed; nothing was written")]
    Disposed,
    /// An I/O error on the transcript at `path` (a fence read, a write), or on its lock file
    /// (the look before a write).
    #[error("transcript I/O failed on {}: {source}", path.display())]
    Io {
        /// The transcript.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
}

impl ControllerError {
    /// The errno of an I/O error (the transcript's or the lock's), if this is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            ControllerError::Io { source, .. } => source.raw_os_error(),
            ControllerError::Lock(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    held: Option<LockHandle>,
    /// A handle cleared from `held` whose release is not issued yet: a graceful prompt release
    /// still doing fence I/O. A forced abort release takes it from here, and its first owner
    /// then must not release it.
    outstanding: Option<LockHandle>,
    /// The cleanup lock's handle until the cleanup releases it. The cleanup's, not the
    /// abort's: an abort never forces it (SPEC §3); dispose releases it if the caller did not.
    cleanup: Option<LockHandle>,
    fence: Option<Fence>,
    /// The sticky poison and why it was set first.
    takeover: Option<PoisonReason>,
    retained: u32,
    drain_owner: Option<OpId>,
    deferred_release: bool,
    deferred_dispose: bool,
    disposed: bool,
    cleanup_started: bool,
    /// Appends of ours issued and not yet recorded (`record_owned` runs after the append's
    /// own stat): a fence check meanwhile may find one landed and vouch for it.
    in_flight: Vec<(u64, Vec<u8>)>,
    /// In-flight appends a fence check found landed and took into the fence.
    absorbed: Vec<u64>,
    next_write: u64,
}

/// Transcript appends one controller has in flight at once (its scopes and its cleanup).
const MAX_IN_FLIGHT_WRITES: usize = 64;

struct Inner {
    id: ControllerId,
    locks: Arc<ProcessLocks>,
    transcript: PathBuf,
    /// The session's one name (its lock path without `.lock`: the directory resolved), set by
    /// the first acquire: the key of this process's owned writes, whatever spelling each
    /// controller was given (SPEC §3 "by any controller of this process").
    session: std::sync::OnceLock<PathBuf>,
    opts: ControllerOptions,
    state: Mutex<State>,
    /// Notified on every change waiters may care about (drain, retained uses, held).
    changed: Event,
}

/// One attempt's controller. Cheap to clone.
#[derive(Clone)]
pub struct AttemptController {
    inner: Arc<Inner>,
}

/// The lock a scope writes under.
enum ScopeLock {
    Retained(LockHandle),
    Short(LockHandle),
}

impl ScopeLock {
    fn handle(&self) -> &LockHandle {
        match self {
            ScopeLock::Retained(h) | ScopeLock::Short(h) => h,
        }
    }
}

/// An active write scope: the only way to write the transcript under the controller's lock.
#[derive(Clone)]
pub struct WriteScope {
    inner: Arc<Inner>,
    op: OpId,
    handle: LockHandle,
}

tokio::task_local! {
    /// The write scopes the current task runs inside (innermost last): a controller call made
    /// from inside its own scope must not wait for that scope to end (SPEC I9).
    static ACTIVE_SCOPES: Vec<WriteScope>;
}

/// The innermost scope of controller `ctl` the current task runs inside, if any.
fn active_scope(ctl: ControllerId) -> Option<WriteScope> {
    ACTIVE_SCOPES
        .try_with(|scopes| scopes.iter().rev().find(|s| s.inner.id == ctl).cloned())
        .ok()
        .flatten()
}

/// The lock `acquire_for_cleanup` hands out; a no-op lock writes nothing. Release it: one
/// dropped unreleased is held until the controller's dispose.
#[must_use = "a cleanup lock holds the session's file lock until released"]
pub struct CleanupLock {
    inner: Arc<Inner>,
    op: OpId,
    handle: Option<LockHandle>,
    /// The lock of the scope the cleanup was asked for from inside: the scope releases it.
    borrowed: bool,
    /// The `m13` mutant only: a no-op lock whose appends claim success.
    silent: bool,
}

impl AttemptController {
    /// Create the controller and acquire eagerly; a failure fails the attempt.
    pub async fn create(
        locks: Arc<ProcessLocks>,
        transcript: &Path,
        opts: ControllerOptions,
    ) -> Result<AttemptController, ControllerError> {
        let inner = Arc::new(Inner {
            id: ControllerId(locks.next_id()),
            locks,
            transcript: transcript.to_owned(),
            session: std::sync::OnceLock::new(),
            opts,
            state: Mutex::new(State::default()),
            changed: Event::new(),
        });
        inner.emit(LockEvent::ControllerCreated {
            ctl: inner.id,
            transcript,
        });
        let op = inner.begin(OpKind::Create);
        let result = inner.locks.acquire(transcript, opts.lock).await;
        let result = match result {
            Ok(handle) => {
                let session = handle.lock_path().with_extension("");
                debug_assert_eq!(session.file_name(), transcript.file_name(), "the lock is <session>.lock");
                let _ = inner.session.set(session);
                let mut st = inner.lock_state();
                inner.set_held(&mut st, op, handle);
                Ok(())
            }
            Err(e) => Err(e.into()),
        };
        inner.end(op, OpKind::Create, &result);
        result.map(|()| AttemptController { inner })
    }

    /// This controller's id in events.
    pub fn id(&self) -> ControllerId {
        self.inner.id
    }

    /// The transcript this controller writes.
    pub fn transcript(&self) -> &Path {
        &self.inner.transcript
    }

    /// Whether the controller retains a lock handle now.
    pub fn holds(&self) -> bool {
        self.inner.lock_state().held.is_some()
    }

    /// Whether the controller is poisoned: it never writes the transcript again.
    pub fn is_poisoned(&self) -> bool {
        self.inner.lock_state().takeover.is_some()
    }

    /// Run `f` under the lock: the retained one if held, else a short lock of its own.
    pub async fn with_write_lock<T, F, Fut>(&self, f: F) -> Result<T, ControllerError>
    where
        F: FnOnce(WriteScope) -> Fut,
        Fut: Future<Output = Result<T, ControllerError>>,
    {
        let op = self.inner.begin(OpKind::Write);
        let result = self.inner.clone().write_scope(op, f).await;
        self.inner.end(op, OpKind::Write, &result);
        result
    }

    /// Let go of the lock while the prompt streams (outside any scope).
    pub async fn release_for_prompt(&self) -> Result<(), ControllerError> {
        let op = self.inner.begin(OpKind::PromptRelease);
        let result = self.inner.clone().prompt_release(op).await;
        self.inner.end(op, OpKind::PromptRelease, &result);
        result
    }

    /// Take the lock back after the prompt settled.
    pub async fn reacquire_after_prompt(&self) -> Result<(), ControllerError> {
        let op = self.inner.begin(OpKind::Reacquire);
        let result = self.inner.reacquire(op).await;
        self.inner.end(op, OpKind::Reacquire, &result);
        result
    }

    /// The abort path (timeout or manual): starts the bounded abort release and returns at
    /// once. Errors of the release are logged by the observer, never thrown into the abort.
    pub fn abort(&self, kind: AbortKind) {
        self.inner.emit(LockEvent::AbortRequested {
            ctl: self.inner.id,
            kind,
        });
        let skip = match kind {
            AbortKind::Timeout => mutant_on!(self.inner.locks, M1TimeoutAbortNoRelease),
            AbortKind::Manual => mutant_on!(self.inner.locks, M2ManualAbortNoRelease),
        };
        if skip {
            return;
        }
        let inner = self.inner.clone();
        let spawner = inner.locks.platform().spawner.clone();
        spawner.spawn("abort-release", Box::pin(async move { inner.release_for_abort().await }));
    }

    /// The abort release itself, awaited (the abort path runs it detached).
    pub async fn release_for_abort(&self) {
        self.inner.clone().release_for_abort().await
    }

    /// The lock for the teardown's cleanup writes. From inside one of this controller's write
    /// scopes, the cleanup writes through that scope's lock.
    ///
    /// A poisoned controller (a takeover, a failed acquire) hands out a no-op lock whose
    /// appends fail with the TakeoverError; an I/O error of the fence check is returned (the
    /// lock already released): either way the caller can tell nothing was written.
    pub async fn acquire_for_cleanup(&self) -> Result<CleanupLock, ControllerError> {
        let op = self.inner.begin(OpKind::Cleanup);
        let in_scope =
            active_scope(self.inner.id).filter(|_| !mutant_on!(self.inner.locks, M10CleanupInScopeWaits));
        let lock = match in_scope {
            Some(scope) => Ok(self.inner.clone().cleanup_in_scope(op, scope)),
            None => self.inner.clone().cleanup(op).await,
        };
        self.inner.end(op, OpKind::Cleanup, &lock);
        lock
    }

    /// Let go of everything for good. Idempotent.
    pub async fn dispose(&self) {
        let op = self.inner.begin(OpKind::Dispose);
        self.inner.dispose_now(op).await;
        self.inner.end(op, OpKind::Dispose, &Ok::<(), ()>(()));
    }
}

impl Inner {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn emit(&self, event: LockEvent<'_>) {
        self.locks.platform().emit(event);
    }

    fn begin(&self, kind: OpKind) -> OpId {
        let op = OpId(self.locks.next_id());
        self.emit(LockEvent::OpBegin {
            ctl: self.id,
            op,
            kind,
        });
        op
    }

    fn end<T, E>(&self, op: OpId, kind: OpKind, result: &Result<T, E>) {
        self.emit(LockEvent::OpEnd {
            ctl: self.id,
            op,
            kind,
            ok: result.is_ok(),
        });
    }

    fn set_held(&self, st: &mut State, op: OpId, handle: LockHandle) {
        assert!(st.held.is_none(), "{}: held set twice", self.id);
        assert!(
            !st.outstanding.as_ref().is_some_and(|h| h.same(&handle)),
            "{}: held and outstanding are the same handle",
            self.id
        );
        self.emit(LockEvent::HeldSet {
            ctl: self.id,
            op,
            handle: handle.id(),
        });
        st.held = Some(handle);
    }

    /// Clear `held`; the caller now owns the duty `duty` for the handle.
    fn take_held(&self, st: &mut State, op: OpId, duty: Duty) -> Option<LockHandle> {
        let handle = st.held.take()?;
        self.emit(LockEvent::HeldCleared {
            ctl: self.id,
            op,
            handle: handle.id(),
            duty,
        });
        self.changed.notify(usize::MAX);
        Some(handle)
    }

    fn poison(&self, st: &mut State, op: OpId, reason: PoisonReason) {
        if st.takeover.is_none() {
            st.takeover = Some(reason);
            self.emit(LockEvent::Poisoned {
                ctl: self.id,
                op,
                reason,
            });
            self.changed.notify(usize::MAX);
        }
    }

    fn poison_now(&self, op: OpId, reason: PoisonReason) {
        let mut st = self.lock_state();
        self.poison(&mut st, op, reason);
    }

    /// Wait until `ready` holds; returns with the state locked.
    async fn wait_for(&self, ready: impl Fn(&State) -> bool) -> MutexGuard<'_, State> {
        // Each pass re-checks after a notification; notifications come from state changes.
        loop {
            let listener = {
                let st = self.lock_state();
                if ready(&st) {
                    return st;
                }
                self.changed.listen()
            };
            listener.await;
        }
    }

    /// Become the drain owner: there is at most one (SPEC I8).
    fn own_drain(&self, st: &mut State, op: OpId) {
        assert!(st.drain_owner.is_none(), "{}: {op} owns the drain over {:?}", self.id, st.drain_owner);
        st.drain_owner = Some(op);
        self.emit(LockEvent::DrainOwned { ctl: self.id, op });
    }

    /// Free the drain if `op` owns it: only its owner frees it (a forced abort release that
    /// took it over holds its own token, and the stuck owner then frees nothing).
    fn free_drain(&self, st: &mut State, op: OpId) {
        if st.drain_owner == Some(op) {
            st.drain_owner = None;
            self.emit(LockEvent::DrainFreed { ctl: self.id, op });
            self.changed.notify(usize::MAX);
        }
    }

    async fn release_logged(&self, handle: &LockHandle) -> Result<(), ControllerError> {
        self.locks.release(handle).await.map_err(ControllerError::Lock)
    }

    /// Name the transcript an I/O error happened on.
    fn io(&self) -> impl FnOnce(io::Error) -> ControllerError + '_ {
        move |source| ControllerError::Io {
            path: self.transcript.clone(),
            source,
        }
    }

    async fn write_scope<T, F, Fut>(self: Arc<Self>, op: OpId, f: F) -> Result<T, ControllerError>
    where
        F: FnOnce(WriteScope) -> Fut,
        Fut: Future<Output = Result<T, ControllerError>>,
    {
        let retained = {
            let mut st = self.wait_for(|st| st.takeover.is_some() || st.drain_owner.is_none()).await;
            if let Some(reason) = st.takeover {
                return Err(ControllerError::Takeover { reason });
            }
            let held = st.held.clone();
            if held.is_some() {
                st.retained = st.retained.checked_add(1).expect("retained uses overflow u32");
            }
            held
        };
        let lock = match retained {
            Some(handle) => ScopeLock::Retained(handle),
            None => match self.locks.acquire(&self.transcript, self.opts.lock).await {
                Ok(handle) => match self.ended_while_acquiring() {
                    // The lock came after dispose (or a poison): maybe after the next attempt
                    // owns the session. Give it back unwritten (SPEC I4).
                    Some(e) => return self.release_logged(&handle).await.and(Err(e)),
                    None => ScopeLock::Short(handle),
                },
                Err(e) => {
                    self.poison_now(op, PoisonReason::LockError);
                    return Err(e.into());
                }
            },
        };
        let result = self.run_scope(op, lock.handle(), f).await;
        let exit = self.exit_scope(op, lock).await;
        match (result, exit) {
            (Ok(v), Ok(())) => Ok(v),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    }

    /// Why a scope that just got its short lock must not use it: the controller was poisoned
    /// or disposed while it waited (nothing makes a disposed controller hold again, I4).
    fn ended_while_acquiring(&self) -> Option<ControllerError> {
        let st = self.lock_state();
        if let Some(reason) = st.takeover {
            return Some(ControllerError::Takeover { reason });
        }
        (st.disposed && !mutant_on!(self.locks, M21WriteAfterDispose)).then_some(ControllerError::Disposed)
    }

    async fn run_scope<T, F, Fut>(
        self: &Arc<Self>,
        op: OpId,
        handle: &LockHandle,
        f: F,
    ) -> Result<T, ControllerError>
    where
        F: FnOnce(WriteScope) -> Fut,
        Fut: Future<Output = Result<T, ControllerError>>,
    {
        if handle.is_lost() {
            self.poison_now(op, PoisonReason::LockLost);
            return Err(ControllerError::LockLost);
        }
        self.check_fence(op).await?;
        let scope = WriteScope {
            inner: self.clone(),
            op,
            handle: handle.clone(),
        };
        let mut active = ACTIVE_SCOPES.try_with(Clone::clone).unwrap_or_default();
        active.push(scope.clone());
        ACTIVE_SCOPES.scope(active, f(scope)).await
    }

    /// Leave a scope: give back the short lock or the retained use, then whatever the scope
    /// deferred: a poisoned controller's held lock, a prompt release, a dispose.
    async fn exit_scope(self: &Arc<Self>, op: OpId, lock: ScopeLock) -> Result<(), ControllerError> {
        let mut result = Ok(());
        let (poisoned_held, deferred_release, deferred_dispose) = {
            let mut st = self.lock_state();
            if let ScopeLock::Retained(_) = &lock {
                assert!(st.retained > 0, "{}: retained uses below zero", self.id);
                st.retained -= 1;
                self.changed.notify(usize::MAX);
            }
            let idle = st.retained == 0;
            let poisoned_held = if st.takeover.is_some() && idle {
                self.take_held(&mut st, op, Duty::Release)
            } else {
                None
            };
            let deferred_release = idle && std::mem::take(&mut st.deferred_release);
            let deferred_dispose = idle && std::mem::take(&mut st.deferred_dispose);
            (poisoned_held, deferred_release, deferred_dispose)
        };
        if let ScopeLock::Short(handle) = &lock {
            result = self.release_logged(handle).await;
        }
        if let Some(handle) = poisoned_held {
            result = result.and(self.release_logged(&handle).await);
        }
        if deferred_release {
            result = result.and(self.clone().prompt_release(op).await);
        }
        if deferred_dispose {
            self.dispose_now(op).await;
        }
        result
    }

    /// The graceful prompt release, outside any scope.
    async fn prompt_release(self: Arc<Self>, op: OpId) -> Result<(), ControllerError> {
        let owned_drain = {
            let mut st = self.wait_for(|st| st.drain_owner.is_none()).await;
            if st.held.is_some() {
                self.own_drain(&mut st, op);
            }
            st.held.is_some()
        };
        if !owned_drain {
            self.emit(LockEvent::PromptReleased { ctl: self.id, op });
            return Ok(());
        }
        let taken = {
            let mut st = self.wait_for(|st| st.retained == 0 || st.held.is_none()).await;
            let handle = self.take_held(&mut st, op, Duty::Release);
            assert!(st.outstanding.is_none(), "{}: two graceful releases outstanding", self.id);
            st.outstanding = handle.clone();
            if handle.is_none() {
                self.free_drain(&mut st, op);
            }
            handle
        };
        let Some(handle) = taken else {
            self.emit(LockEvent::PromptReleased { ctl: self.id, op });
            return Ok(());
        };
        let fence = self.record_fence(op).await;
        if fence.is_err() && mutant_on!(self.locks, M3FenceReadLeak) {
            let mut st = self.lock_state();
            st.outstanding = None;
            self.free_drain(&mut st, op);
            return fence;
        }
        // Release whatever the fence I/O did, unless a forced abort release took it meanwhile.
        let mine = {
            let mut st = self.lock_state();
            let mine = st.outstanding.as_ref().is_some_and(|h| h.same(&handle));
            if mine {
                st.outstanding = None;
            }
            mine
        };
        let released = if mine {
            self.release_logged(&handle).await
        } else {
            Ok(())
        };
        {
            let mut st = self.lock_state();
            self.free_drain(&mut st, op);
        }
        self.emit(LockEvent::PromptReleased { ctl: self.id, op });
        fence.and(released)
    }

    /// A prompt release asked for from inside a scope.
    fn prompt_release_in_scope(&self, scope_op: OpId) {
        let mut st = self.lock_state();
        if st.held.is_none() {
            return;
        }
        self.emit(LockEvent::ReleaseDeferred {
            ctl: self.id,
            op: scope_op,
        });
        if !mutant_on!(self.locks, M5DeferredReleaseLost) {
            st.deferred_release = true;
        }
    }

    async fn reacquire(&self, op: OpId) -> Result<(), ControllerError> {
        let skip_disposed = mutant_on!(self.locks, M6ReacquireAfterDispose);
        let unneeded = |st: &State| {
            (st.disposed && !skip_disposed)
                || st.takeover.is_some()
                || (st.cleanup_started && !skip_disposed)
                || st.held.is_some()
        };
        if unneeded(&*self.wait_for(|st| st.drain_owner.is_none()).await) {
            return Ok(());
        }
        // The acquire does not own the drain: a dispose meanwhile must not wait for it.
        let handle = match self.locks.acquire(&self.transcript, self.opts.lock).await {
            Ok(h) => h,
            Err(e) => {
                self.poison_now(op, PoisonReason::LockError);
                return Err(e.into());
            }
        };
        // Set held and check the fence as drain owner: cleanup and dispose wait for the check.
        let wanted = {
            let mut st = self.wait_for(|st| st.drain_owner.is_none()).await;
            let wanted = !unneeded(&st);
            if wanted {
                self.own_drain(&mut st, op);
                self.set_held(&mut st, op, handle.clone());
            }
            wanted
        };
        if !wanted {
            return self.release_logged(&handle).await;
        }
        let checked = self.check_fence(op).await;
        let failed = checked.is_err().then(|| {
            let mut st = self.lock_state();
            self.take_held(&mut st, op, Duty::Release)
        });
        {
            let mut st = self.lock_state();
            self.free_drain(&mut st, op);
        }
        if let Some(Some(handle)) = failed {
            let _ = self.release_logged(&handle).await;
        }
        checked
    }

    /// The graceful release raced against the settle bound; past it, the forced release.
    async fn release_for_abort(self: Arc<Self>) {
        let op = self.begin(OpKind::AbortRelease);
        let inner = self.clone();
        let graceful = Box::pin(async move {
            let released = inner.clone().prompt_release(op).await;
            if mutant_on!(inner.locks, M9AbortForcesCleanup) {
                drop(inner.wait_for(|st| st.cleanup.is_none() || st.takeover.is_some()).await);
            }
            released
        });
        if mutant_on!(self.locks, M4aUnboundedAbort) {
            let result = graceful.await;
            self.end(op, OpKind::AbortRelease, &result);
            return;
        }
        let bound = self.locks.platform().clock.sleep(self.opts.settle_bound_ms);
        let result = match select(graceful, bound).await {
            Either::Left((result, _)) => result,
            Either::Right(((), graceful)) => {
                // The graceful path goes on in the background (a hung stream, hung fence I/O);
                // dropping it could cancel a release already under way.
                let spawner = self.locks.platform().spawner.clone();
                spawner.spawn(
                    "graceful-unwind",
                    Box::pin(async move {
                        let _ = graceful.await;
                    }),
                );
                self.force_release(op).await
            }
        };
        self.end(op, OpKind::AbortRelease, &result);
    }

    /// Poison first, then release `held` (or the outstanding handle a stuck graceful path
    /// holds) without waiting for retained uses, then wake the drain waiters. The cleanup
    /// lock is the cleanup's: never forced here.
    async fn force_release(&self, op: OpId) -> Result<(), ControllerError> {
        let (handle, drain) = {
            let mut st = self.lock_state();
            if !mutant_on!(self.locks, M4bForceWithoutPoison) {
                self.poison(&mut st, op, PoisonReason::AbortForced);
            }
            // The forced path takes the drain over from a stuck graceful path.
            if let Some(stuck) = st.drain_owner.take() {
                self.emit(LockEvent::DrainFreed {
                    ctl: self.id,
                    op: stuck,
                });
            }
            // Its own drain token: the graceful path, when it unwinds, frees only its own.
            let drain = OpId(self.locks.next_id());
            self.own_drain(&mut st, drain);
            let held = if mutant_on!(self.locks, M4cForceWithoutClear) {
                st.held.clone()
            } else {
                self.take_held(&mut st, op, Duty::Release)
            };
            let held = held.or_else(|| st.outstanding.take());
            let held = match held {
                None if mutant_on!(self.locks, M9AbortForcesCleanup) => st.cleanup.take(),
                other => other,
            };
            (held, drain)
        };
        let result = match &handle {
            Some(handle) => self.release_logged(handle).await,
            None => Ok(()),
        };
        if !mutant_on!(self.locks, M4dPoisonKeepsDrain) {
            let mut st = self.lock_state();
            self.free_drain(&mut st, drain);
        }
        self.changed.notify(usize::MAX);
        result
    }

    /// The cleanup lock asked for from inside `scope`: the scope's lock, fence already checked.
    fn cleanup_in_scope(self: Arc<Self>, op: OpId, scope: WriteScope) -> CleanupLock {
        let poisoned = {
            let mut st = self.lock_state();
            st.cleanup_started = true;
            st.takeover.is_some()
        };
        CleanupLock {
            inner: self,
            op,
            handle: (!poisoned).then_some(scope.handle),
            borrowed: true,
            silent: false,
        }
    }

    async fn cleanup(self: Arc<Self>, op: OpId) -> Result<CleanupLock, ControllerError> {
        let noop = |inner: &Arc<Inner>| CleanupLock {
            inner: inner.clone(),
            op,
            handle: None,
            borrowed: false,
            silent: false,
        };
        self.lock_state().cleanup_started = true;
        let held = {
            let st = self.wait_for(|st| st.drain_owner.is_none()).await;
            if st.takeover.is_some() {
                return Ok(noop(&self));
            }
            st.held.is_some()
        };
        let taken = {
            let mut st = self
                // A graceful release owning the drain may be mid-release of `held`: wait it out.
                .wait_for(|st| {
                    st.takeover.is_some()
                        || (st.drain_owner.is_none() && (!held || st.retained == 0 || st.held.is_none()))
                })
                .await;
            if st.takeover.is_some() {
                return Ok(noop(&self));
            }
            self.take_held(&mut st, op, Duty::HandToCleanup)
        };
        let handle = match taken {
            Some(h) => h,
            None => match self.locks.acquire(&self.transcript, self.opts.lock).await {
                Ok(h) => h,
                Err(_) => {
                    self.poison_now(op, PoisonReason::LockError);
                    return Ok(noop(&self));
                }
            },
        };
        self.lock_state().cleanup = Some(handle.clone());
        let lock = CleanupLock {
            inner: self.clone(),
            op,
            handle: Some(handle),
            borrowed: false,
            silent: false,
        };
        match self.check_fence(op).await {
            Ok(()) => Ok(lock),
            Err(e) => {
                let _ = lock.release().await;
                match e {
                    ControllerError::Takeover { .. } => Ok(noop(&self)),
                    _ if mutant_on!(self.locks, M13CleanupFenceErrorSwallowed) => Ok(CleanupLock {
                        silent: true,
                        ..noop(&self)
                    }),
                    // The fence could not be judged: nothing may be written, and the caller
                    // must know it (the lock is already released).
                    other => Err(other),
                }
            }
        }
    }

    async fn dispose_now(&self, op: OpId) {
        self.lock_state().disposed = true;
        let busy = {
            let st = self.wait_for(|st| st.drain_owner.is_none()).await;
            st.held.is_some() && st.retained > 0
        };
        let handle = {
            let mut st = self
                .wait_for(|st| st.drain_owner.is_none() && (!busy || st.retained == 0 || st.held.is_none()))
                .await;
            let held = self.take_held(&mut st, op, Duty::Release);
            // A cleanup lock its caller dropped without release() is still out: ours now.
            let dropped = if mutant_on!(self.locks, M18CleanupDropLeaks) {
                None
            } else {
                st.cleanup.take()
            };
            (held, dropped)
        };
        for handle in [handle.0, handle.1].into_iter().flatten() {
            let _ = self.release_logged(&handle).await;
        }
        self.emit(LockEvent::Disposed { ctl: self.id });
    }

    /// Stat, read, stat: a fence whose snapshot and fingerprint describe the same version.
    async fn record_fence(&self, op: OpId) -> Result<(), ControllerError> {
        for _ in 0..FENCE_READ_PASSES {
            if let Some((fingerprint, snapshot)) = self.read_stable().await.map_err(self.io())? {
                let owned = self.locks.owned_writes();
                owned.attach_snapshot(self.session(), &fingerprint, &snapshot);
                let generation = owned.generation(self.session());
                self.lock_state().fence = Some(Fence {
                    pending: Vec::new(),
                    fingerprint: Some(fingerprint),
                    snapshot,
                    generation,
                    file: fingerprint.file(),
                });
                self.emit(LockEvent::FenceRecorded { ctl: self.id, op });
                return Ok(());
            }
        }
        Err(self.io()(crate::platform::os_error(errno::EAGAIN)))
    }

    /// The key of this process's owned writes of the session (its canonical path; the
    /// spelling given only before the first acquire, when nothing was written yet).
    fn session(&self) -> &Path {
        self.session.get().map_or(&self.transcript, PathBuf::as_path)
    }

    /// Judge the transcript against the fence; an unowned, non-benign change poisons.
    async fn check_fence(&self, op: OpId) -> Result<(), ControllerError> {
        let checked = self.check_fence_inner(op).await;
        if checked.is_ok() {
            self.emit(LockEvent::FenceChecked { ctl: self.id, op });
        }
        checked
    }

    async fn check_fence_inner(&self, op: OpId) -> Result<(), ControllerError> {
        let Some(fence) = self.lock_state().fence.clone() else {
            return Ok(());
        };
        let fs = &self.locks.platform().fs;
        // The content judged must be the version stat'ed: stat, read, stat again. A file
        // deleted meanwhile is a takeover; one replaced or changed meanwhile is judged again.
        for _ in 0..FENCE_READ_PASSES {
            let Some(current) = self.stat_for_fence().await? else {
                return self.takeover(op);
            };
            if fence.fingerprint == Some(current) {
                return Ok(());
            }
            let owned = self.locks.owned_writes().newer_match(self.session(), fence.generation, &current);
            if let Some(snapshot) = owned.as_ref().and_then(|o| o.snapshot.clone()) {
                return self.adopt_owned(current, snapshot, owned.map_or(0, |o| o.generation));
            }
            let content = match fs.read(&self.transcript).await {
                Ok(content) => content,
                Err(e) if self.is_deleted(&e) => return self.takeover(op),
                Err(e) => return Err(self.io()(e)),
            };
            match self.stat_for_fence().await? {
                None => return self.takeover(op),
                Some(again) if again != current => continue,
                Some(_) => {}
            }
            // Looked up again: a write of ours that was in flight at the first look may have
            // been recorded during the read (and left the in-flight list judge_change reads).
            let owned = owned.or_else(|| {
                self.locks.owned_writes().newer_match(self.session(), fence.generation, &current)
            });
            if let Some(owned) = owned {
                return self.adopt_owned(current, content, owned.generation);
            }
            return self.judge_change(op, &fence, current, content);
        }
        Err(self.io()(crate::platform::os_error(errno::EAGAIN)))
    }

    /// The transcript's fingerprint for the fence; `None` when it was deleted.
    async fn stat_for_fence(&self) -> Result<Option<Fingerprint>, ControllerError> {
        match self.locks.platform().fs.stat(&self.transcript).await {
            Ok(stat) => Ok(Some(Fingerprint::from(stat))),
            // Deleted while released: an unowned change like any other.
            Err(e) if self.is_deleted(&e) => Ok(None),
            Err(e) => Err(self.io()(e)),
        }
    }

    /// ENOENT on the transcript: it was deleted (the `m11` mutant: an I/O error like any).
    fn is_deleted(&self, e: &io::Error) -> bool {
        is_errno(e, errno::ENOENT) && !mutant_on!(self.locks, M11DeletedTranscriptNotPoisoned)
    }

    /// Adopt `current` as the fence: a version another controller of this process wrote, or
    /// one the fence check has just accepted.
    fn adopt_owned(
        &self,
        current: Fingerprint,
        snapshot: Vec<u8>,
        generation: u64,
    ) -> Result<(), ControllerError> {
        self.lock_state().fence = Some(Fence {
            pending: Vec::new(),
            fingerprint: Some(current),
            snapshot,
            generation,
            file: current.file(),
        });
        Ok(())
    }

    /// A change nobody of this process owns: accepted only when benign (SPEC §3).
    fn judge_change(
        &self,
        op: OpId,
        fence: &Fence,
        current: Fingerprint,
        content: Vec<u8>,
    ) -> Result<(), ControllerError> {
        // An append adds something: a same-size rewrite with identical bytes but a new mtime is
        // a write we cannot vouch for (only a ctime-only change keeps identical content benign).
        let accepts = |ours: &[Vec<u8>], others: &[Vec<u8>]| {
            let appended =
                content.len() > fence.snapshot.len() && is_append_of(&fence.snapshot, &content, ours, others);
            match &fence.fingerprint {
                Some(fp) => {
                    (current.only_ctime_differs(fp) && content == fence.snapshot)
                        || (current.same_file(fp) && appended)
                }
                None => {
                    appended
                        && (current.file() == fence.file || mutant_on!(self.locks, M12BenignAppendAnyInode))
                }
            }
        };
        if !accepts(&fence.pending, &[]) {
            if let Some(generation) = self.on_newer_owned(fence, &current, &content, &[], &[]) {
                return self.adopt_owned(current, content, generation);
            }
            // Appends of the process still in flight may have landed (their record comes after
            // their stat): ours must all have, another controller's may have (a late write of
            // an attempt whose lock was forced away lands when it lands; swarm seed 210058),
            // and so may appends that landed unrecorded (seed 239242).
            let in_flight = self.lock_state().in_flight.clone();
            let entries: Vec<Vec<u8>> = in_flight.iter().map(|(_, entry)| entry.clone()).collect();
            let owned = self.locks.owned_writes();
            let mut others = owned.in_flight_of_others(self.session(), self.id.0);
            others.extend(owned.unrecorded(self.session()));
            let mut ours = fence.pending.clone();
            ours.extend(entries.iter().cloned());
            // An entry lands once: one of ours that the process also lists as landed
            // unrecorded (an unverified append of this controller) explains one copy, not
            // two (swarm seed 91815: a sync tool's replay of it passed).
            for entry in &ours {
                if let Some(i) = others.iter().position(|other| other == entry) {
                    others.swap_remove(i);
                }
            }
            let landed = accepts(&ours, &others)
                || self.on_newer_owned(fence, &current, &content, &entries, &others).is_some();
            if (in_flight.is_empty() && others.is_empty()) || !landed {
                return self.takeover(op);
            }
            {
                let mut st = self.lock_state();
                st.in_flight.retain(|(id, _)| !in_flight.iter().any(|(taken, _)| taken == id));
                st.absorbed.extend(in_flight.iter().map(|(id, _)| *id));
            }
            // Ours, as its own record would have said: for every controller of the process.
            let generation = owned.record(self.session(), current, Some(content.clone()));
            owned.forget_unrecorded(self.session(), &content);
            return self.adopt_owned(current, content, generation);
        }
        self.adopt_owned(current, content, fence.generation)
    }

    /// The generation of this process's newest owned write when `content` is that write's
    /// version plus each `required` entry of ours, our pending entries (which its version may
    /// hold already) and benign lines: a write of another controller, or a late one of ours,
    /// that our fence does not reflect yet, with our own appends on top (SPEC §3: newer owned
    /// writes and our own appends are not a takeover; swarm seed 84559). The file must have
    /// grown on that version, same inode: an equal-length rewrite is nobody's append. That
    /// version itself with only its ctime moved is accepted too (SPEC §3 accepts each of the
    /// two; swarm seed 13170).
    fn on_newer_owned(
        &self,
        fence: &Fence,
        current: &Fingerprint,
        content: &[u8],
        required: &[Vec<u8>],
        others: &[Vec<u8>],
    ) -> Option<u64> {
        let newest = self.locks.owned_writes().newest(self.session())?;
        let base = newest.snapshot.as_ref()?;
        let optional: Vec<Vec<u8>> = fence.pending.iter().chain(others).cloned().collect();
        let grown = current.same_file(&newest.fingerprint)
            && content.len() > base.len()
            && is_append_of(base, content, required, &optional);
        let touched =
            required.is_empty() && current.only_ctime_differs(&newest.fingerprint) && content == base;
        (newest.generation > fence.generation && (grown || touched)).then_some(newest.generation)
    }

    /// An unowned, non-benign change: poison and fail.
    fn takeover(&self, op: OpId) -> Result<(), ControllerError> {
        self.poison_now(op, PoisonReason::Takeover);
        Err(ControllerError::Takeover {
            reason: PoisonReason::Takeover,
        })
    }

    /// One transcript write under `handle`, recorded as owned when it is provably ours.
    /// `cleanup`: a cleanup lock's write, which also refuses a handle released from under it
    /// (dispose takes a cleanup lock still out); a scope's write is fenced by the poison that
    /// precedes any forced release (SPEC I6).
    async fn write_entry(
        &self,
        op: OpId,
        handle: &LockHandle,
        entry: &[u8],
        cleanup: bool,
    ) -> Result<(), ControllerError> {
        let fs = &self.locks.platform().fs;
        let before = Fingerprint::from(fs.stat(&self.transcript).await.map_err(self.io())?);
        // The last await before the append: a lock moved off its path meanwhile is lost (I1).
        let in_place = self.locks.in_place(handle).await.map_err(|source| ControllerError::Io {
            path: handle.lock_path().to_owned(),
            source,
        })?;
        // Checked with no await before the append: poison or loss may strike during the stats.
        let Some(write) = self.start_write(op, handle, entry, cleanup, in_place)? else {
            // Poisoned first: the handle is let go while this scope still uses it (SPEC I6).
            self.locks.lose_displaced(handle).await;
            return Err(ControllerError::LockLost);
        };
        self.emit(LockEvent::WriteBegin {
            ctl: self.id,
            op,
            handle: Some(handle.id()),
        });
        let result = fs.append(&self.transcript, entry).await;
        self.emit(LockEvent::WriteEnd {
            ctl: self.id,
            op,
            ok: result.is_ok(),
        });
        if let Err(e) = result {
            self.settle_write(write);
            return Err(self.io()(e));
        }
        let after = fs.stat(&self.transcript).await.map(Fingerprint::from);
        // The entry stays in flight until its record is made: a fence check meanwhile must
        // find it one way or the other (in flight, recorded as owned, or landed unrecorded).
        if !self.record_owned(write, before, after.as_ref().ok().copied(), entry).await {
            self.locks.owned_writes().landed_unrecorded(self.session(), entry);
        }
        self.settle_write(write);
        after.map(|_| ()).map_err(self.io())
    }

    /// May the append start now? Its in-flight id if so; `None` when the lock file is no longer
    /// at the lock path (`in_place` false): the controller is poisoned and the handle is to be
    /// let go. Poison, dispose and loss are judged here, with the state locked.
    fn start_write(
        &self,
        op: OpId,
        handle: &LockHandle,
        entry: &[u8],
        cleanup: bool,
        in_place: bool,
    ) -> Result<Option<u64>, ControllerError> {
        let mut st = self.lock_state();
        if let Some(reason) = st.takeover {
            return Err(ControllerError::Takeover { reason });
        }
        // Disposed from outside while this scope ran on its short lock: dispose has
        // returned, nothing writes after it (SPEC I4). A dispose from inside the scope
        // (deferred) lets the scope finish.
        if st.disposed && !st.deferred_dispose && !mutant_on!(self.locks, M21WriteAfterDispose) {
            return Err(ControllerError::Disposed);
        }
        if handle.is_lost() || (cleanup && handle.is_released()) {
            self.poison(&mut st, op, PoisonReason::LockLost);
            return Err(ControllerError::LockLost);
        }
        if !in_place {
            self.poison(&mut st, op, PoisonReason::LockLost);
            return Ok(None);
        }
        assert!(st.in_flight.len() < MAX_IN_FLIGHT_WRITES, "in-flight appends beyond their bound");
        st.next_write += 1;
        let id = st.next_write;
        st.in_flight.push((id, entry.to_vec()));
        self.locks.owned_writes().write_started(self.session(), self.id.0, id, entry);
        Ok(Some(id))
    }

    /// An in-flight append is over: out of the in-flight list (and of the absorbed one).
    fn settle_write(&self, write: u64) {
        let mut st = self.lock_state();
        st.in_flight.retain(|(id, _)| *id != write);
        st.absorbed.retain(|id| *id != write);
        self.locks.owned_writes().write_settled(self.session(), self.id.0, write);
    }

    /// The version our append made is ours — for every controller of the process, and as this
    /// controller's fence — when nothing unowned can hide in it: the file grew by exactly our
    /// entry (or, re-read, by our entry and benign lines) from a version the fence had accepted,
    /// and no takeover poisoned us meanwhile.
    /// A fence check that vouched for the entry first (it took it out of the in-flight list
    /// into `absorbed`) has made its record already: then nothing is recorded twice.
    /// Returns whether a record of the process now holds the entry.
    async fn record_owned(
        &self,
        write: u64,
        before: Fingerprint,
        after: Option<Fingerprint>,
        entry: &[u8],
    ) -> bool {
        let (fence, poison) = {
            let st = self.lock_state();
            if st.absorbed.contains(&write) {
                return true;
            }
            (st.fence.clone(), st.takeover)
        };
        match poison {
            None => {}
            Some(PoisonReason::Takeover) => return false,
            // The lock was forced or taken away while this append was in flight (SPEC I5 does
            // not wait for it), so it may land after a later attempt of this process wrote.
            Some(_) => return self.record_on_newest_owned(entry).await,
        }
        let contiguous = after.is_none_or(|a| {
            a.same_file(&before) && Some(a.size) == before.size.checked_add(entry.len() as u64)
        });
        let Some(fence) = fence else {
            let Some(after) = after.filter(|_| contiguous) else {
                return false;
            };
            self.locks.owned_writes().record(self.session(), after, None);
            return true;
        };
        let verified = if contiguous && fence.fingerprint == Some(before) && fence.pending.is_empty() {
            let mut snapshot = fence.snapshot.clone();
            snapshot.extend_from_slice(entry);
            after.map(|fp| (fp, snapshot))
        } else {
            // Something moved around our append (a benign line, a chmod, a lost stat): re-read
            // and accept only our entries plus benign lines on top of the fence.
            let mut ours = fence.pending.clone();
            ours.push(entry.to_vec());
            self.read_stable()
                .await
                .ok()
                .flatten()
                .filter(|(_, content)| is_owned_append(&fence.snapshot, content, &ours))
        };
        let mut st = self.lock_state();
        if st.absorbed.contains(&write) {
            return true; // a fence check vouched for the entry during our re-read
        }
        if st.takeover.is_some() {
            return false;
        }
        let recorded = verified.is_some();
        let new_fence = match verified {
            Some((fp, snapshot)) => {
                let generation = self.locks.owned_writes().record(self.session(), fp, Some(snapshot.clone()));
                Fence {
                    fingerprint: Some(fp),
                    snapshot,
                    pending: Vec::new(),
                    generation,
                    file: fp.file(),
                }
            }
            // Unverifiable now: remember the entry; the next check accepts it.
            None => {
                let mut pending = fence.pending;
                pending.push(entry.to_vec());
                Fence {
                    fingerprint: None,
                    snapshot: fence.snapshot,
                    pending,
                    generation: fence.generation,
                    // The file we stat'ed right before our append.
                    file: before.file(),
                }
            }
        };
        st.fence = Some(new_fence);
        recorded
    }

    /// A write of ours that landed outside our lock is still this process's own (SPEC §3:
    /// recorded as owned, for every controller of the process) when nothing unowned can hide
    /// in it: the file, same inode, is the process's newest owned version plus our entry
    /// (and benign lines). Anything else stays unowned: the next fence check is a takeover.
    /// Returns whether it was recorded.
    async fn record_on_newest_owned(&self, entry: &[u8]) -> bool {
        let owned = self.locks.owned_writes();
        let Some(newest) = owned.newest(self.session()) else {
            return false;
        };
        let Some(base) = newest.snapshot else { return false };
        let Ok(Some((fp, content))) = self.read_stable().await else {
            return false;
        };
        fp.same_file(&newest.fingerprint)
            && is_owned_append(&base, &content, &[entry.to_vec()])
            && owned.record_on(self.session(), newest.generation, fp, content).is_some()
    }

    /// The transcript's content with a fingerprint that describes it (stat, read, stat);
    /// `None` when it moved in between.
    async fn read_stable(&self) -> std::io::Result<Option<(Fingerprint, Vec<u8>)>> {
        let fs = &self.locks.platform().fs;
        let before = Fingerprint::from(fs.stat(&self.transcript).await?);
        let content = fs.read(&self.transcript).await?;
        let after = Fingerprint::from(fs.stat(&self.transcript).await?);
        Ok((before == after).then_some((after, content)))
    }
}

impl WriteScope {
    /// Append one entry (a whole JSON line) to the transcript.
    pub async fn append(&self, entry: &[u8]) -> Result<(), ControllerError> {
        self.inner.write_entry(self.op, &self.handle, entry, false).await
    }

    /// A nested `with_write_lock`: runs inline under this scope's lock.
    pub async fn with_write_lock<T, F, Fut>(&self, f: F) -> Result<T, ControllerError>
    where
        F: FnOnce(WriteScope) -> Fut,
        Fut: Future<Output = Result<T, ControllerError>>,
    {
        if let Some(reason) = self.inner.lock_state().takeover {
            return Err(ControllerError::Takeover { reason });
        }
        f(self.clone()).await
    }

    /// A prompt release from inside the scope: deferred to the scope's end.
    pub fn release_for_prompt(&self) {
        self.inner.prompt_release_in_scope(self.op);
    }

    /// Dispose from inside the scope: marks disposed now, lets go at the scope's end.
    pub fn dispose(&self) {
        let mut st = self.inner.lock_state();
        st.disposed = true;
        st.deferred_dispose = true;
    }
}

impl CleanupLock {
    /// Whether this lock will write (false: the controller was poisoned or lost its lock).
    pub fn is_noop(&self) -> bool {
        self.handle.is_none()
    }

    /// Append one entry; a no-op lock writes nothing and says so (the TakeoverError).
    pub async fn append(&self, entry: &[u8]) -> Result<(), ControllerError> {
        match &self.handle {
            Some(handle) => self.inner.write_entry(self.op, handle, entry, !self.borrowed).await,
            None if self.silent => Ok(()),
            None => {
                let poisoned = self.inner.lock_state().takeover;
                debug_assert!(poisoned.is_some(), "a no-op cleanup lock of an unpoisoned controller");
                Err(ControllerError::Takeover {
                    reason: poisoned.unwrap_or(PoisonReason::Takeover),
                })
            }
        }
    }

    /// Release the cleanup lock (a lock borrowed from a scope stays with the scope).
    pub async fn release(self) -> Result<(), ControllerError> {
        let Some(handle) = self.handle.as_ref().filter(|_| !self.borrowed) else {
            return Ok(());
        };
        {
            let mut st = self.inner.lock_state();
            if st.cleanup.as_ref().is_some_and(|h| h.same(handle)) {
                st.cleanup = None;
                self.inner.changed.notify(usize::MAX);
            }
        }
        // Idempotent: a no-op when the handle was already released.
        self.inner.release_logged(handle).await
    }
}

#[cfg(test)]
mod send_checks {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Every controller future must be `Send`: runtimes spawn them on any worker.
    #[allow(dead_code)]
    fn controller_futures_are_send(ctl: AttemptController, locks: Arc<ProcessLocks>) {
        assert_send(&AttemptController::create(locks, Path::new("/t"), ControllerOptions::default()));
        assert_send(&ctl.release_for_prompt());
        assert_send(&ctl.reacquire_after_prompt());
        assert_send(&ctl.release_for_abort());
        assert_send(&ctl.acquire_for_cleanup());
        assert_send(&ctl.dispose());
        assert_send(&ctl.with_write_lock(|scope| async move { scope.append(b"x\n").await }));
    }
}
