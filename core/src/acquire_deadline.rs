//! The acquire's one time budget against the process's own hung I/O (SPEC §1 step 1; issue 6,
//! defect 15). The acquire loop checks its budget between filesystem calls, so a call that
//! never returns — a create or a `realpath` on a hung mount — would hold the caller forever.
//! [`ProcessLocks::acquire`] therefore races the loop against a timer at the budget plus
//! [`ACQUIRE_OVERRUN_MS`]. When the timer wins, the caller gets a `Timeout` at once and the
//! loop is handed, still running, to a task of its own: should the hung call come back and
//! the loop take the lock after all, that task releases it, so no lock file is left behind.
//!
//! The race adds no task and no wake-up while the loop wins: the loop is polled in the
//! caller's task as before, and the timer wakes the caller through a waker of its own that is
//! disarmed once the loop has answered (or once the timer is replaced, when the loop begins
//! after the lock path resolved). A simulated run whose acquires all answer in time therefore
//! schedules exactly as it did without the race.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::event::LockEvent;
use crate::file_lock::{LockError, LockHandle, LockOptions, ProcessLocks};
use crate::platform::BoxFuture;

/// How long past its budget an acquire may take before its caller is answered anyway: room
/// for the one filesystem call in flight when the budget ran out (slow, not hung).
pub const ACQUIRE_OVERRUN_MS: u64 = 500;

type Answer = Result<LockHandle, LockError>;

impl ProcessLocks {
    /// Acquire the lock of the transcript `target` (SPEC §1 steps 1–5). Answers within
    /// `opts.timeout_ms` + [`ACQUIRE_OVERRUN_MS`] even when one of its own filesystem calls
    /// hangs: then with [`LockError::Timeout`] (owner unknown), and a lock the hung acquire
    /// still takes once the call returns is released at once, never left on disk.
    pub async fn acquire(self: &Arc<Self>, target: &Path, opts: LockOptions) -> Answer {
        let race = Arc::new(AcquireRace::default());
        let work: BoxFuture<'static, Answer> = {
            let (locks, target, race) = (self.clone(), target.to_owned(), race.clone());
            Box::pin(async move { locks.acquire_unraced(&target, opts, &race).await })
        };
        let clock = self.platform().clock.clone();
        let span = opts.timeout_ms.saturating_add(ACQUIRE_OVERRUN_MS);
        // Until the loop begins, the limit bounds the lock path's resolve (a `realpath` that
        // hangs); from then on the budget runs from the loop's first attempt (SPEC §1 step 1).
        let resolve_limit = clock.sleep(span);
        let loop_began = race.clone();
        let rebase: Rebase = Box::new(move || {
            let begun = loop_began.begun_ms()?;
            Some(clock.sleep(begun.saturating_add(span).saturating_sub(clock.mono_ms())))
        });
        match FirstOf::new(work, resolve_limit).rebased_by(rebase).await {
            Raced::Answered(answer) => answer,
            Raced::Late(work) => Err(self.abandon(work, &race, target, opts)),
        }
    }

    /// The caller's answer for an acquire whose budget ran out while it hung; the acquire
    /// goes on in a task of its own, which releases whatever lock it takes.
    fn abandon(
        self: &Arc<Self>,
        work: BoxFuture<'static, Answer>,
        race: &AcquireRace,
        target: &Path,
        opts: LockOptions,
    ) -> LockError {
        let started = race.abandon();
        let lock_path = match &started {
            Some((_, lock)) => lock.clone(),
            None => literal_lock_path(target), // still resolving its directory
        };
        let err = LockError::Timeout {
            timeout_ms: opts.timeout_ms,
            owner: None,
            lock_path,
        };
        if let Some((acquire, lock)) = &started {
            self.platform().emit(LockEvent::AcquireFailed {
                acquire: *acquire,
                lock,
                refusal: err.refusal(),
                error: err.to_string(),
            });
        }
        let locks = self.clone();
        let finish = async move {
            if let Ok(handle) = work.await {
                // Taken after its caller was told no: no one else will ever release it.
                let _ = locks.release(&handle).await;
            }
        };
        self.platform().spawner.spawn("abandoned-acquire", Box::pin(finish));
        err
    }
}

/// `<target>.lock` as the caller spelled the target (its directory not resolved).
fn literal_lock_path(target: &Path) -> PathBuf {
    let mut lock = target.as_os_str().to_owned();
    lock.push(".lock");
    PathBuf::from(lock)
}

/// What the racing caller and the acquire loop share: whether the caller has been answered
/// without it, and which acquire (id, lock path) the loop started.
#[derive(Default)]
pub(crate) struct AcquireRace {
    state: Mutex<RaceState>,
}

#[derive(Default)]
struct RaceState {
    abandoned: bool,
    /// The acquire's id and lock path, once the loop began.
    started: Option<(u64, PathBuf)>,
    /// When the loop began (monotonic ms).
    begun_ms: Option<u64>,
}

impl AcquireRace {
    fn state(&self) -> std::sync::MutexGuard<'_, RaceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loop starts acquire `acquire` on `lock` at `now_ms`; `false` when its caller was
    /// already answered (the loop then stops: nobody waits for it).
    pub(crate) fn begin(&self, acquire: u64, lock: &Path, now_ms: u64) -> bool {
        let mut state = self.state();
        debug_assert!(state.started.is_none(), "one acquire per race");
        state.started = Some((acquire, lock.to_owned()));
        state.begun_ms = Some(now_ms);
        !state.abandoned
    }

    /// When the loop began, if it did.
    fn begun_ms(&self) -> Option<u64> {
        self.state().begun_ms
    }

    /// Whether the caller still waits for the loop's answer (else it reported the failure).
    pub(crate) fn awaited(&self) -> bool {
        !self.state().abandoned
    }

    /// The caller gives up waiting; the acquire the loop started, if it did.
    fn abandon(&self) -> Option<(u64, PathBuf)> {
        let mut state = self.state();
        state.abandoned = true;
        state.started.clone()
    }
}

/// The outcome of [`FirstOf`]: the work's answer, or the work itself when the limit came
/// first (still running, to be finished elsewhere).
enum Raced<T> {
    Answered(T),
    Late(BoxFuture<'static, T>),
}

/// Asked after each poll of the work that leaves it pending: `Some(limit)` replaces the limit
/// once (and is not asked again).
type Rebase = Box<dyn FnMut() -> Option<BoxFuture<'static, ()>> + Send>;

/// Polls `work` in the caller's task with the caller's waker, and `limit` with an [`Alarm`]:
/// once the work has answered, the race is dropped or the limit is replaced, that limit's
/// timer wakes no one (a simulated timer cannot be cancelled, only ignored).
struct FirstOf<T> {
    work: Option<BoxFuture<'static, T>>,
    limit: BoxFuture<'static, ()>,
    alarm: Arc<Alarm>,
    limit_polled: bool,
    rebase: Option<Rebase>,
}

impl<T> FirstOf<T> {
    fn new(work: BoxFuture<'static, T>, limit: BoxFuture<'static, ()>) -> Self {
        FirstOf {
            work: Some(work),
            limit,
            alarm: Arc::new(Alarm::default()),
            limit_polled: false,
            rebase: None,
        }
    }

    fn rebased_by(mut self, rebase: Rebase) -> Self {
        self.rebase = Some(rebase);
        self
    }

    /// Swap in the rebased limit, once it is there; the old limit's alarm goes silent.
    fn rebase_limit(&mut self, task: &Waker) {
        if let Some(limit) = self.rebase.as_mut().and_then(|rebase| rebase()) {
            self.rebase = None;
            self.alarm.disarm();
            self.alarm = Arc::new(Alarm::default());
            self.alarm.arm(task);
            self.limit = limit;
            self.limit_polled = false;
        }
    }
}

impl<T> std::future::Future for FirstOf<T> {
    type Output = Raced<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Raced<T>> {
        let this = &mut *self;
        let Some(work) = this.work.as_mut() else {
            return Poll::Pending; // polled after it answered: never answers twice
        };
        this.alarm.arm(cx.waker());
        if let Poll::Ready(answer) = work.as_mut().poll(cx) {
            this.alarm.disarm();
            this.work = None;
            return Poll::Ready(Raced::Answered(answer));
        }
        this.rebase_limit(cx.waker());
        // The limit is polled when it asked to be (and once to start its timer), never on the
        // work's wake-ups: a timer that registers on every poll would pile up.
        if !this.limit_polled || this.alarm.rang.swap(false, Ordering::AcqRel) {
            this.limit_polled = true;
            let waker = Waker::from(this.alarm.clone());
            if this.limit.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                this.alarm.disarm();
                if let Some(work) = this.work.take() {
                    return Poll::Ready(Raced::Late(work));
                }
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for FirstOf<T> {
    fn drop(&mut self) {
        self.alarm.disarm();
    }
}

/// The limit's waker: notes that the limit asked to be polled and wakes the racing task while
/// the race is on; disarmed, it wakes nothing.
#[derive(Default)]
struct Alarm {
    rang: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Alarm {
    fn arm(&self, task: &Waker) {
        let mut slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(task)) {
            *slot = Some(task.clone());
        }
    }

    fn disarm(&self) {
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::atomic::AtomicUsize;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A future that stays pending and hands out the waker it was last polled with.
    fn pending_with_waker(slot: Arc<Mutex<Option<Waker>>>) -> BoxFuture<'static, ()> {
        Box::pin(std::future::poll_fn(move |cx| {
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }))
    }

    #[test]
    fn the_limit_wakes_the_task_only_while_the_race_is_on() {
        let limit_waker = Arc::new(Mutex::new(None));
        let task = Arc::new(Count::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut race = FirstOf::new(Box::pin(std::future::ready(7)), pending_with_waker(limit_waker.clone()));
        assert!(matches!(Pin::new(&mut race).poll(&mut cx), Poll::Ready(Raced::Answered(7))));
        // The work answered first: the limit was never polled, so nothing can wake us.
        assert!(limit_waker.lock().unwrap().is_none());

        let mut race =
            FirstOf::new(Box::pin(std::future::pending::<u8>()), pending_with_waker(limit_waker.clone()));
        assert!(Pin::new(&mut race).poll(&mut cx).is_pending());
        let alarm = limit_waker.lock().unwrap().take().expect("the limit was polled once");
        alarm.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the limit wakes the racing task");
        drop(race);
        alarm.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "a dropped race's limit wakes no one");
    }

    #[test]
    fn a_rebased_limit_silences_the_old_one() {
        let (old_waker, new_waker) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None)));
        let task = Arc::new(Count::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut next = Some(pending_with_waker(new_waker.clone()));
        let mut race =
            FirstOf::new(Box::pin(std::future::pending::<u8>()), pending_with_waker(old_waker.clone()))
                .rebased_by(Box::new(move || next.take()));
        assert!(Pin::new(&mut race).poll(&mut cx).is_pending());
        assert!(old_waker.lock().unwrap().is_none(), "replaced before it was ever polled");
        let alarm = new_waker.lock().unwrap().take().expect("the new limit was polled");
        alarm.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the new limit wakes the racing task");
    }

    #[test]
    fn a_limit_that_comes_first_hands_back_the_unfinished_work() {
        let task = Arc::new(Count::default());
        let waker = Waker::from(task);
        let mut cx = Context::from_waker(&waker);
        let mut race = FirstOf::new(Box::pin(std::future::pending::<u8>()), Box::pin(std::future::ready(())));
        assert!(matches!(Pin::new(&mut race).poll(&mut cx), Poll::Ready(Raced::Late(_))));
    }
}
