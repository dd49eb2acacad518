//! The gateways' work: turns (SPEC §2–§3), sometimes two attempts of one process at once on one
//! transcript (each spelling the session its own way), provider streams that finish, fail or
//! hang and ignore the abort, timeout and manual aborts (some arriving late, during teardown),
//! cleanup and dispose from inside a write scope, and cleanup locks dropped unreleased. What
//! each call returned goes to the world's witness.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select, Either};
use heldlock_core::controller::ATTEMPT_MAX_HOLD_MS;
use heldlock_core::{
    AbortKind, AbortSignal, AttemptController, ControllerError, ControllerOptions, OwnerMutex, ProcessLocks,
    WriteScope,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use heldlock_core::memfs::MemFsView;

use crate::oracle::NoopReacquire;
use crate::seed::{derive, world_rng, Stream, WorldDraw};
use crate::world::World;

/// How a provider stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamPlan {
    Finish(u64),
    Fail(u64),
    /// Ignores the abort; ends (failing) only when the world heals.
    Hang,
}

impl StreamPlan {
    fn draw(rng: &mut ChaCha8Rng, world: &World) -> StreamPlan {
        let p = &world.profile;
        let ms = rng.gen_range(50..6_000);
        let roll: f64 = rng.gen();
        if p.long_stream_rate > 0.0 && rng.gen_bool(p.long_stream_rate) {
            StreamPlan::Finish(LONG_STREAM_MS + rng.gen_range(0..120_000))
        } else if roll < p.stream_hang_rate {
            StreamPlan::Hang
        } else if roll < p.stream_hang_rate + p.stream_fail_rate {
            StreamPlan::Fail(ms)
        } else {
            StreamPlan::Finish(ms)
        }
    }

    /// The "path" a provider stream's errors name (a socket has none).
    const PROVIDER_STREAM: &'static str = "<provider stream>";

    /// Stream the prompt over a socket of the process: its descriptor counts against the
    /// process's fd limit for as long as the stream runs (forever, when it hangs).
    async fn run(self, world: &World, sockets: &MemFsView) -> Result<(), ControllerError> {
        let socket = sockets.open_anonymous_now().map_err(|source| ControllerError::Io {
            path: Self::PROVIDER_STREAM.into(),
            source,
        })?;
        let result = match self {
            StreamPlan::Finish(ms) => {
                madsim::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            StreamPlan::Fail(ms) => {
                madsim::time::sleep(Duration::from_millis(ms)).await;
                Err(ControllerError::Io {
                    path: Self::PROVIDER_STREAM.into(),
                    source: std::io::Error::other("provider stream failed"),
                })
            }
            StreamPlan::Hang => {
                world.until_healed().await;
                Err(ControllerError::Io {
                    path: Self::PROVIDER_STREAM.into(),
                    source: std::io::Error::other("provider stream hung until the healing"),
                })
            }
        };
        let _ = sockets.close_now(socket);
        result
    }
}

/// Everything a turn will do, drawn up front from the gateway's stream.
#[derive(Clone, Debug)]
pub struct TurnPlan {
    pub abort: Option<(AbortKind, u64)>,
    /// The first write scope awaits this stream while it holds the retained lock.
    pub retained_stream: Option<StreamPlan>,
    pub deferred_release: bool,
    pub short_write: bool,
    pub stream: StreamPlan,
    pub skip_cleanup: bool,
    /// Work done under the lock (tool calls, post-processing) in the first and last scopes.
    pub hold_ms: (u64, u64),
    /// The session spelled through the symlinked directory.
    pub alias: bool,
    /// Cleanup or dispose called from inside the last write scope.
    pub in_scope: Option<InScope>,
    /// The cleanup lock is dropped without `release()`.
    pub drop_cleanup: bool,
    /// An abort arriving this long after teardown began (while cleanup holds its lock).
    pub late_abort: Option<(AbortKind, u64)>,
    /// Work done under the cleanup lock before its append.
    pub cleanup_hold_ms: u64,
    /// Another task disposes the controller this long after the last write scope's body
    /// began (`Profile::outside_dispose_rate`).
    pub outside_dispose: Option<u64>,
}

/// A teardown call made from inside a write scope (SPEC I9: it must return), or a prompt
/// release asked for from inside one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InScope {
    Cleanup,
    Dispose,
    PromptRelease,
}

/// A long stream outlasts an attempt's maxHoldMs (1 020 000 ms): the watchdog takes its lock.
const LONG_STREAM_MS: u64 = 1_060_000;

/// A run timeout aborts any turn whose stream hangs: no turn waits forever.
const RUN_TIMEOUT_MS: u64 = 20_000;

impl TurnPlan {
    fn draw(rng: &mut ChaCha8Rng, world: &World) -> TurnPlan {
        let p = &world.profile;
        let retained_stream = rng.gen_bool(p.retained_stream_rate).then(|| StreamPlan::draw(rng, world));
        let stream = StreamPlan::draw(rng, world);
        let mut abort = rng.gen_bool(p.abort_rate).then(|| {
            let kind = if rng.gen_bool(p.manual_abort_share) {
                AbortKind::Manual
            } else {
                AbortKind::Timeout
            };
            (kind, rng.gen_range(0..8_000))
        });
        let hangs = stream == StreamPlan::Hang || retained_stream == Some(StreamPlan::Hang);
        if hangs && abort.is_none() {
            abort = Some((AbortKind::Timeout, RUN_TIMEOUT_MS));
        }
        let in_scope = rng.gen_bool(p.in_scope_teardown_rate).then(|| {
            if rng.gen_bool(0.5) {
                InScope::Cleanup
            } else {
                InScope::Dispose
            }
        });
        let late_abort = rng.gen_bool(p.late_abort_rate).then(|| {
            let kind = if rng.gen_bool(p.manual_abort_share) {
                AbortKind::Manual
            } else {
                AbortKind::Timeout
            };
            (kind, rng.gen_range(0..3_000))
        });
        TurnPlan {
            abort,
            retained_stream,
            deferred_release: rng.gen_bool(p.deferred_release_rate),
            short_write: rng.gen_bool(p.short_write_rate),
            stream,
            skip_cleanup: rng.gen_bool(p.cleanup_skip_rate),
            hold_ms: (rng.gen_range(0..1_500), rng.gen_range(0..1_500)),
            alias: p.alias_paths && rng.gen_bool(0.5),
            in_scope,
            drop_cleanup: rng.gen_bool(p.cleanup_drop_rate),
            late_abort,
            cleanup_hold_ms: rng.gen_range(0..4_000),
            outside_dispose: None,
        }
    }

    /// Turn `turn` (`second`: its overlapping twin) of process `pid` may be disposed from
    /// outside: drawn from a stream of its own, so no other draw of the seed moves.
    fn with_outside_dispose(mut self, world: &World, pid: u32, turn: u32, second: bool) -> TurnPlan {
        let index = u64::from(pid) << 16 | u64::from(turn.min(0x7fff)) << 1 | u64::from(second);
        let mut rng = world_rng(world.seed, WorldDraw::OutsideDispose, index);
        self.outside_dispose =
            rng.gen_bool(world.profile.outside_dispose_rate).then(|| rng.gen_range(0..1_500));
        self
    }
}

/// A gateway's entry, numbered: every write is unique on disk, so I14 can tell which is which.
fn entry(kind: &str, who: &str, n: u64) -> Vec<u8> {
    format!("{{\"type\":\"{kind}\",\"from\":\"{who}\",\"n\":{n}}}\n").into_bytes()
}

/// Who writes, and where: what the oracle hears of each write call.
#[derive(Clone)]
struct Writer {
    world: Arc<World>,
    pid: u32,
    session: PathBuf,
    /// The transcript itself, its directory resolved: what the oracle keys writes by.
    transcript: PathBuf,
    label: String,
}

impl Writer {
    fn new(world: &Arc<World>, pid: u32, session: &Path, label: &str) -> Writer {
        Writer {
            world: world.clone(),
            pid,
            session: session.to_owned(),
            transcript: world.canonical_transcript(session),
            label: label.to_owned(),
        }
    }

    /// One transcript write as its caller sees it: the call and its result, told to the
    /// oracle (I14 judges the disk against these, never against the filesystem's log).
    async fn write<F, Fut>(&self, kind: &str, append: F) -> Result<(), ControllerError>
    where
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<(), ControllerError>>,
    {
        let bytes = entry(kind, &self.label, self.world.next_entry());
        let id = self.world.write_called(self.pid, &self.transcript, &bytes, false);
        let result = append(bytes).await;
        self.world.write_returned(id, result.is_ok());
        result
    }

    /// A write through a write scope.
    async fn scoped(&self, scope: &WriteScope, kind: &str) -> Result<(), ControllerError> {
        self.write(kind, |b| async move { scope.append(&b).await }).await
    }

    /// A write through the cleanup lock: a no-op lock declines it up front (the caller can
    /// tell nothing will be written), which SPEC allows only for a poisoned controller. The
    /// lock is held `hold_ms` first (post-processing); `drop_unreleased` leaks it. `in_scope`:
    /// asked for from inside a write scope, it writes through that scope's lock — `held` (or
    /// a short lock), which an abort past the settle bound forces (SPEC §3, I5) — so it is
    /// not the cleanup's own lock that I8 protects.
    async fn cleanup_write(
        &self,
        ctl: &AttemptController,
        hold_ms: u64,
        drop_unreleased: bool,
        in_scope: bool,
    ) {
        let began = crate::clock::now_ns();
        self.world.cleanup_asked(self.pid, ctl.id());
        let cleanup = match ctl.acquire_for_cleanup().await {
            Ok(cleanup) => cleanup,
            Err(e) => {
                // Told up front: nothing is written, and the caller knows it.
                self.world.note(self.pid, || format!("turn {} gets no cleanup lock: {e}", self.label));
                self.world.cleanup_refused(self.pid, ctl.id(), &self.transcript, began, &e);
                return;
            }
        };
        // The cleanup's own lock when it took `held` over (from inside a scope it is the scope's).
        let own = (!in_scope && !cleanup.is_noop())
            .then(|| self.world.ctl_lock_ino(self.pid, ctl.id(), true))
            .flatten();
        madsim::time::sleep(Duration::from_millis(hold_ms)).await;
        if cleanup.is_noop() {
            self.world.cleanup_declined(self.pid, ctl.id());
            let bytes = entry("session-end", &self.label, self.world.next_entry());
            let id = self.world.write_called(self.pid, &self.transcript, &bytes, true);
            // Told nothing will be written, it appends anyway: a no-op lock says so with the
            // TakeoverError (SPEC §3). An Ok acknowledges a write that is never made (I14).
            if cleanup.append(&bytes).await.is_ok() {
                self.world.write_returned(id, true);
            }
        } else {
            let lock = &cleanup;
            let appended = self.write("session-end", |b| async move { lock.append(&b).await }).await;
            if !in_scope {
                self.world.cleanup_appended(self.pid, ctl.id(), &appended);
                self.world.cleanup_write_returned(self.pid, ctl.id(), &self.transcript, own, &appended);
            }
        }
        if drop_unreleased {
            self.world
                .note(self.pid, || format!("turn {} drops its cleanup lock unreleased", self.label));
            drop(cleanup);
        } else if cleanup.release().await.is_ok() {
            let what = "the cleanup lock's release";
            self.world.release_returned_ok(self.pid, ctl.id(), &self.transcript, own, what);
        }
    }
}

/// A gateway process: `turns` turns, one after another, from `first_turn` on.
pub async fn gateway(
    world: Arc<World>,
    pid: u32,
    name: String,
    first_turn: u32,
    progress: Arc<std::sync::atomic::AtomicU32>,
) -> (Arc<ProcessLocks>, Arc<OwnerMutex>) {
    let platform = world.platform_for(pid);
    let locks = ProcessLocks::with_mutant(platform.clone(), world.mutant);
    locks.start_watchdog();
    let owner = OwnerMutex::with_mutant(platform, world.mutant);
    let mut rng = ChaCha8Rng::seed_from_u64(derive(
        world.seed,
        Stream::Gateway,
        u64::from(pid) << 16 | u64::from(first_turn),
    ));
    let gw = Gateway {
        world: world.clone(),
        pid,
        locks: locks.clone(),
        owner,
    };
    for turn in first_turn..world.profile.turns_per_gateway {
        // The liveness phase lets turns under way finish and starts no new ones.
        if world.is_healed() {
            break;
        }
        progress.store(turn, std::sync::atomic::Ordering::SeqCst);
        // Users think: mostly a moment, sometimes a minute.
        let think = if rng.gen_bool(0.85) {
            rng.gen_range(10..1_500)
        } else {
            rng.gen_range(5_000..60_000)
        };
        madsim::time::sleep(Duration::from_millis(think)).await;
        let session = rng.gen_range(0..world.profile.sessions);
        let plan = TurnPlan::draw(&mut rng, &world).with_outside_dispose(&world, pid, turn, false);
        let label = format!("{name}/t{turn}");
        if rng.gen_bool(world.profile.overlap_rate) {
            // A second attempt of this process on the same transcript at once (a retry racing
            // the original, a follow-up message): the owner mutex must serialize them.
            let second = TurnPlan::draw(&mut rng, &world).with_outside_dispose(&world, pid, turn, true);
            let label_b = format!("{label}b");
            futures::future::join(gw.turn(&label, session, plan), gw.turn(&label_b, session, second)).await;
        } else {
            gw.turn(&label, session, plan).await;
        }
    }
    progress.store(world.profile.turns_per_gateway, std::sync::atomic::Ordering::SeqCst);
    world.note(pid, || format!("{name} finished its turns"));
    (locks, gw.owner)
}

/// A gateway in the liveness phase, once its turns are done: a fresh turn on every session
/// the fresh prober has not proven (its own orphans — lock files whose unlink the filesystem
/// refused — only its own next acquire reclaims, SPEC §1.2).
pub async fn gateway_liveness(
    world: Arc<World>,
    pid: u32,
    name: String,
    locks: Arc<ProcessLocks>,
    owner: Arc<OwnerMutex>,
) {
    world.until_healed().await;
    madsim::time::sleep(Duration::from_millis(PROBE_DEFER_MS)).await;
    probe_sessions(&world, pid, &name, &locks, &owner).await;
}

/// Gateways leave the first try of the liveness phase to the fresh prober.
const PROBE_DEFER_MS: u64 = 2_000;

/// One gateway process's lock machinery.
struct Gateway {
    world: Arc<World>,
    pid: u32,
    locks: Arc<ProcessLocks>,
    owner: Arc<OwnerMutex>,
}

impl Gateway {
    async fn turn(&self, label: &str, session: u32, plan: TurnPlan) {
        let path = self.world.session_path(session, plan.alias);
        self.world.note(self.pid, || format!("turn {label} on {} plan {plan:?}", path.display()));
        self.run_turn(label, &path, plan).await;
    }

    /// One turn: owner → controller → body (raced against the abort) → teardown → owner release.
    async fn run_turn(&self, label: &str, session: &std::path::Path, plan: TurnPlan) {
        let (world, pid) = (&self.world, self.pid);
        let abort_signal = AbortSignal::new();
        let guard = match self.owner_wait(session, &abort_signal, plan.abort).await {
            Ok(g) => g,
            Err(e) => {
                world.note(pid, || format!("turn {label} failed: {e}"));
                return;
            }
        };
        let ctl = match AttemptController::create(self.locks.clone(), session, ControllerOptions::default())
            .await
        {
            Ok(c) => c,
            Err(e) => {
                world.note(pid, || format!("turn {label} failed before reply: {e}"));
                // The early return lets go by drop, as RAII code does (SPEC §2: unconditionally).
                drop(guard);
                world.owner_let_go(pid, session);
                return;
            }
        };
        let sockets = world.disk.view(pid, world.profile.fd_limit);
        let writer = Writer::new(world, pid, session, label);
        let report = Reporter {
            world: world.clone(),
            pid,
            ctl: ctl.clone(),
        };
        let body = madsim::task::spawn(turn_body(
            report,
            plan.clone(),
            writer.clone(),
            abort_signal.clone(),
            sockets,
        ));
        let outcome = match plan.abort {
            None => Some(body.await),
            Some((kind, after_ms)) => {
                let timer = Box::pin(madsim::time::sleep(Duration::from_millis(after_ms)));
                match select(body, timer).await {
                    Either::Left((done, _)) => Some(done),
                    Either::Right(((), body)) => {
                        abort_signal.abort();
                        world.note(pid, || format!("turn {label} aborted ({})", kind.name()));
                        ctl.abort(kind);
                        // The body goes on in the background: a stream may ignore the abort.
                        drop(body);
                        None
                    }
                }
            }
        };
        if let Some(result) = outcome {
            let text = match result {
                Ok(Ok(())) => "completed".to_owned(),
                Ok(Err(e)) => format!("failed: {e}"),
                Err(e) => format!("body task ended: {e}"),
            };
            world.note(pid, || format!("turn {label} {text}"));
        }
        self.teardown(&writer, &ctl, &plan, abort_signal.is_aborted()).await;
        world.turn_ended(pid, ctl.id());
        guard.release();
        world.owner_let_go(pid, session);
    }

    /// The owner wait, with the turn's abort arriving during it when the wait outlasts the
    /// abort's delay (a user cancels a queued run); the witness judges what it returned.
    async fn owner_wait(
        &self,
        session: &Path,
        abort: &AbortSignal,
        abort_after: Option<(AbortKind, u64)>,
    ) -> Result<heldlock_core::OwnerGuard, heldlock_core::OwnerError> {
        let mut judged = owner_wait_begins(&self.world, self.pid, session);
        let wait = Box::pin(self.owner.acquire(session, ATTEMPT_MAX_HOLD_MS, abort));
        let result = match abort_after {
            None => wait.await,
            Some((kind, after_ms)) => {
                let timer = Box::pin(madsim::time::sleep(Duration::from_millis(after_ms)));
                match select(wait, timer).await {
                    Either::Left((result, _)) => result,
                    Either::Right(((), wait)) => {
                        abort.abort();
                        judged.aborted_at = Some(crate::clock::now_ns());
                        self.world.note(self.pid, || {
                            format!("aborted ({}) while waiting for the owner", kind.name())
                        });
                        wait.await
                    }
                }
            }
        };
        self.world.owner_wait_returned(self.pid, &judged, &result);
        result
    }

    /// Cleanup (maybe with a late abort arriving meanwhile, maybe dropped unreleased), dispose.
    async fn teardown(&self, writer: &Writer, ctl: &AttemptController, plan: &TurnPlan, aborted: bool) {
        let (world, pid) = (&self.world, self.pid);
        if let (Some((kind, after_ms)), false) = (plan.late_abort, aborted) {
            let (late, world, label) = (ctl.clone(), world.clone(), writer.label.clone());
            drop(madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(after_ms)).await;
                world.note(pid, || format!("turn {label} aborted late, in teardown ({})", kind.name()));
                late.abort(kind);
            }));
        }
        if !plan.skip_cleanup {
            writer.cleanup_write(ctl, plan.cleanup_hold_ms, plan.drop_cleanup, false).await;
        }
        dispose_told(world, pid, ctl).await;
    }
}

/// `dispose` from outside any scope, the call and its return told to the world (I4, I15).
async fn dispose_told(world: &World, pid: u32, ctl: &AttemptController) {
    world.dispose_asked(pid, ctl.id());
    ctl.dispose().await;
    world.dispose_returned(pid, ctl.id());
}

/// Tells the world what each locked call of one controller returned.
#[derive(Clone)]
struct Reporter {
    world: Arc<World>,
    pid: u32,
    ctl: AttemptController,
}

impl Reporter {
    /// Run a locked call of the controller and tell the world what it returned.
    async fn locked(
        &self,
        transcript: &Path,
        call: impl Future<Output = Result<(), ControllerError>>,
    ) -> Result<(), ControllerError> {
        let began = crate::clock::now_ns();
        let result = call.await;
        let ctl = (self.ctl.id(), transcript);
        self.world.locked_op_returned(self.pid, ctl, began, &result, self.ctl.is_poisoned());
        result
    }

    /// Nothing asked the controller to let go since its last scope returned Ok.
    fn expect_retained(&self, transcript: &Path) {
        self.world.expect_retained(self.pid, (self.ctl.id(), transcript), self.ctl.is_poisoned());
    }
}

async fn turn_body(
    report: Reporter,
    plan: TurnPlan,
    writer: Writer,
    abort: AbortSignal,
    sockets: MemFsView,
) -> Result<(), ControllerError> {
    let ctl = report.ctl.clone();
    let first = plan.clone();
    let w = writer.clone();
    let streams = sockets.clone();
    let scope_ctl = ctl.id();
    let transcript = writer.transcript.clone();
    let first_scope = ctl.with_write_lock(|scope| async move {
        let _body = w.world.scope_body(w.pid, scope_ctl);
        w.scoped(&scope, "message").await?;
        madsim::time::sleep(Duration::from_millis(first.hold_ms.0)).await;
        if let Some(stream) = first.retained_stream {
            stream.run(&w.world, &streams).await?;
        }
        if first.deferred_release {
            scope.release_for_prompt();
            w.world.asked_in_scope(w.pid, scope_ctl, InScope::PromptRelease);
        }
        w.scoped(&scope, "tool").await
    });
    report.locked(&transcript, first_scope).await?;
    // An abort ends the turn's own flow; only a stream already under way settles later.
    if abort.is_aborted() {
        return Ok(());
    }
    let retained = (!plan.deferred_release).then(|| {
        report.expect_retained(&transcript);
        report.world.ctl_lock_ino(report.pid, ctl.id(), false)
    });
    report.locked(&transcript, ctl.release_for_prompt()).await?;
    let what = "release-for-prompt";
    // An abort's release (or an outside dispose's) may have taken the lock instead, and its
    // failed unlink may leave the file: only this call's own release is judged.
    let retained = retained.flatten().filter(|_| !abort.is_aborted());
    report.world.release_returned_ok(report.pid, ctl.id(), &transcript, retained, what);
    // The first scope returned Ok, so the controller held: unless an abort came meanwhile,
    // this release (or the scope's deferred one) let the lock go and recorded a fence.
    report.world.prompt_release_returned(report.pid, ctl.id(), !abort.is_aborted());
    if plan.short_write && !abort.is_aborted() {
        let w = writer.clone();
        let short = ctl.with_write_lock(|scope| async move {
            let _body = w.world.scope_body(w.pid, scope_ctl);
            w.scoped(&scope, "tool-result").await
        });
        report.locked(&transcript, short).await?;
    }
    let streamed = plan.stream.run(&writer.world, &sockets).await;
    // The prompt settles, maybe long after an abort: it takes the lock back either way.
    // SPEC §3 makes it a no-op on a poisoned controller, and once the turn's teardown has
    // asked for the cleanup lock (an aborted body whose prompt settles late).
    let began = crate::clock::now_ns();
    let noop = if ctl.is_poisoned() {
        Some(NoopReacquire::Poisoned)
    } else if report.world.was_cleanup_asked(report.pid, ctl.id()) {
        Some(NoopReacquire::CleanupAsked)
    } else {
        None
    };
    let reacquired = report.locked(&transcript, ctl.reacquire_after_prompt()).await;
    if let Some(why) = noop {
        report.world.noop_reacquire_returned(report.pid, (ctl.id(), why), &transcript, began);
    }
    reacquired?;
    streamed?;
    if abort.is_aborted() {
        return Ok(());
    }
    let hold = Duration::from_millis(plan.hold_ms.1);
    let (inner, in_scope, outside_dispose) = (ctl.clone(), plan.in_scope, plan.outside_dispose);
    let last_scope = ctl.with_write_lock(|scope| async move {
        let _body = writer.world.scope_body(writer.pid, scope_ctl);
        if let Some(after_ms) = outside_dispose {
            dispose_from_outside(&writer, &inner, after_ms);
        }
        madsim::time::sleep(hold).await;
        writer.scoped(&scope, "message").await?;
        teardown_in_scope(&inner, &scope, in_scope, &writer).await;
        Ok(())
    });
    report.locked(&transcript, last_scope).await
}

/// Another task disposes `ctl` `after_ms` from now, while the scope body that calls this may
/// still run (a session reset racing the turn): dispose waits for the body (SPEC §3, I6).
fn dispose_from_outside(writer: &Writer, ctl: &AttemptController, after_ms: u64) {
    let (world, pid, ctl, label) = (writer.world.clone(), writer.pid, ctl.clone(), writer.label.clone());
    drop(madsim::task::spawn(async move {
        madsim::time::sleep(Duration::from_millis(after_ms)).await;
        world.note(pid, || format!("turn {label} disposed from another task"));
        dispose_told(&world, pid, &ctl).await;
    }));
}

/// Cleanup or dispose from inside a write scope: both must return (SPEC I9).
async fn teardown_in_scope(
    ctl: &AttemptController,
    scope: &WriteScope,
    what: Option<InScope>,
    writer: &Writer,
) {
    match what {
        Some(InScope::Cleanup) => writer.cleanup_write(ctl, 0, false, true).await,
        Some(InScope::Dispose) => {
            scope.dispose();
            writer.world.asked_in_scope(writer.pid, ctl.id(), InScope::Dispose);
        }
        Some(InScope::PromptRelease) | None => {}
    }
}

/// Probe attempts per session in the liveness phase: one a second at most, over the bound.
const MAX_PROBES: u64 = crate::oracle::LIVENESS_BOUND_MS / 1_000;

/// The liveness phase's fresh process: probes every session like the gateways do, so that
/// some process does even when every gateway died.
pub async fn liveness_probe(world: Arc<World>, pid: u32, name: String) -> Arc<ProcessLocks> {
    let platform = world.platform_for(pid);
    let locks = ProcessLocks::with_mutant(platform.clone(), world.mutant);
    locks.start_watchdog();
    let owner = OwnerMutex::with_mutant(platform, world.mutant);
    probe_sessions(&world, pid, &name, &locks, &owner).await;
    locks
}

/// The liveness phase (I16) in one process: a fresh turn on each session, retried until it
/// writes; the oracle bounds how long until some process's turn did.
async fn probe_sessions(
    world: &Arc<World>,
    pid: u32,
    name: &str,
    locks: &Arc<ProcessLocks>,
    owner: &Arc<OwnerMutex>,
) {
    let probes: Vec<_> = (0..world.profile.sessions)
        .map(|i| {
            let writer = Writer::new(world, pid, &world.session_path(i, false), &format!("{name}/s{i}"));
            madsim::task::spawn(probe_session(writer, locks.clone(), owner.clone()))
        })
        .collect();
    for probe in probes {
        let _ = probe.await;
    }
}

async fn probe_session(writer: Writer, locks: Arc<ProcessLocks>, owner: Arc<OwnerMutex>) {
    for attempt in 0..MAX_PROBES {
        if writer.world.is_proven(&writer.session) {
            return;
        }
        // A lock SPEC keeps is looked at again each second, not given up on: an outside actor
        // may remove it later, and then the session owes its fresh turn (swarm seed 509921).
        if writer.world.is_kept_locked(&writer.session) {
            madsim::time::sleep(Duration::from_millis(1_000)).await;
            continue;
        }
        match probe_turn(&writer, &locks, &owner).await {
            Ok(()) => {
                writer.world.session_proven(&writer.session);
                return;
            }
            Err(e) => {
                writer.world.note(writer.pid, || format!("probe {} #{attempt} failed: {e}", writer.label));
            }
        }
        madsim::time::sleep(Duration::from_millis(1_000)).await;
    }
}

/// An owner wait of `session` by `pid` begins now, as the witness judges it (SPEC §2).
fn owner_wait_begins(world: &World, pid: u32, session: &Path) -> crate::witness::OwnerWait {
    crate::witness::OwnerWait {
        session: world.canonical_transcript(session),
        began: crate::clock::now_ns(),
        aborted_at: None,
        timeout_ms: ATTEMPT_MAX_HOLD_MS,
        stalled_ms: world.stalled_ms(pid),
    }
}

/// One fresh turn: owner, controller, one write, dispose, owner release.
async fn probe_turn(
    writer: &Writer,
    locks: &Arc<ProcessLocks>,
    owner: &Arc<OwnerMutex>,
) -> Result<(), String> {
    let abort = AbortSignal::new();
    // Judged as a turn's wait is: probes of every session run at once, and a turn of this
    // gateway may wait behind one.
    let judged = owner_wait_begins(&writer.world, writer.pid, &writer.session);
    let waited = owner.acquire(&writer.session, ATTEMPT_MAX_HOLD_MS, &abort).await;
    writer.world.owner_wait_returned(writer.pid, &judged, &waited);
    let guard = waited.map_err(|e| e.to_string())?;
    let written =
        match AttemptController::create(locks.clone(), &writer.session, ControllerOptions::default()).await {
            Ok(ctl) => {
                let w = writer.clone();
                let written =
                    ctl.with_write_lock(|scope| async move { w.scoped(&scope, "liveness").await }).await;
                ctl.dispose().await;
                writer.world.turn_ended(writer.pid, ctl.id());
                written.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
    guard.release();
    writer.world.owner_let_go(writer.pid, &writer.session);
    written
}
