//! A small deterministic test world for heldlock-core: one `MemFs` disk and one process table
//! shared by several "processes", tokio's paused clock as the only time source, an observer
//! that records every event, and an `Fs` wrapper that fails or pauses chosen operations.
//!
//! Every test using it runs under `#[tokio::test(start_paused = true)]`: time moves only
//! virtually (auto-advanced when every task is idle), so hangs are detected with virtual
//! timeouts and every duration asserted is exact.

#![allow(dead_code)]

pub mod checks;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use heldlock_core::event::{Duty, HandleId, LockEvent, PoisonReason, Refusal, ReleaseBy};
use heldlock_core::judge::StaleReason;
use heldlock_core::memfs::{MemFs, MemFsView, DEFAULT_FD_LIMIT};
use heldlock_core::memprocs::{ProcEntry, ProcState, ProcessTable};
use heldlock_core::payload::{format_iso8601, LockPayload};
use heldlock_core::platform::{errno, os_error, BoxFuture, Clock, Fd, FileStat, Fs, Observer, Platform};
use heldlock_core::real::{TokioClock, TokioSpawner};
use heldlock_core::{
    AttemptController, ControllerError, ControllerOptions, LockOptions, OwnerMutex, ProcessLocks,
};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

/// The mutant switch. Without the `mutants` feature there is no mutant: an uninhabited enum
/// keeps the check functions' signatures the same in both builds.
#[cfg(feature = "mutants")]
pub use heldlock_core::Mutant;
#[cfg(not(feature = "mutants"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutant {}

/// Wall time at the start of every world (2026-09-21).
pub const WALL0_MS: i64 = 1_790_000_000_000;
pub const DIR: &str = "/s";
pub const TRANSCRIPT: &str = "/s/sess.jsonl";
pub const LOCK: &str = "/s/sess.jsonl.lock";
pub const GUARD: &str = "/s/sess.jsonl.lock.reclaim";
/// The pid of the "tool": edits made outside any process of the system under test.
pub const TOOL_PID: u32 = 1;
pub const INITIAL: &[u8] = b"{\"type\":\"message\",\"n\":0}\n";

pub fn transcript() -> &'static Path {
    Path::new(TRANSCRIPT)
}
pub fn lock() -> &'static Path {
    Path::new(LOCK)
}

/// Lock options with a short timeout (the orphan grace is then 5 s).
pub fn opts_timeout(timeout_ms: u64) -> LockOptions {
    LockOptions {
        timeout_ms,
        ..LockOptions::default()
    }
}

pub fn ctl_opts_timeout(timeout_ms: u64) -> ControllerOptions {
    let mut opts = ControllerOptions::default();
    opts.lock.timeout_ms = timeout_ms;
    opts
}

/// Sleep `ms` of virtual time.
pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Let every ready task run (no virtual time passes).
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Run `fut` with a virtual-time bound: `None` when it did not finish (a hang).
pub async fn within<T>(ms: u64, fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_millis(ms), fut).await.ok()
}

pub fn errno_of(err: &ControllerError) -> Option<i32> {
    err.raw_os_error()
}

// ----------------------------------------------------------------------------------------
// The world

pub struct World {
    pub fs: MemFs,
    pub table: Arc<ProcessTable>,
    pub clock: Arc<TokioClock>,
    pub start: Instant,
    pub mutant: Option<Mutant>,
    tool: MemFsView,
}

impl World {
    pub fn new() -> World {
        World::with_mutant(None)
    }

    /// Must be called inside the paused runtime: the disk's file times and the clock both read
    /// tokio's virtual time from this moment on.
    pub fn with_mutant(mutant: Option<Mutant>) -> World {
        let start = Instant::now();
        let fs =
            MemFs::new(Arc::new(move || WALL0_MS as i128 * 1_000_000 + start.elapsed().as_nanos() as i128));
        fs.create_dir_all(Path::new(DIR)).unwrap();
        let tool = fs.view(TOOL_PID, DEFAULT_FD_LIMIT);
        tool.write_path_now(transcript(), INITIAL, true).unwrap();
        World {
            fs,
            table: ProcessTable::new(),
            clock: Arc::new(TokioClock::paused_at(WALL0_MS)),
            start,
            mutant,
            tool,
        }
    }

    /// Virtual milliseconds since the world began.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn wall_ms(&self) -> i64 {
        WALL0_MS + self.now_ms() as i64
    }

    /// A running gateway process `pid` (start time 1000 + pid) with its own lock machinery.
    pub fn process(&self, pid: u32) -> Proc {
        self.process_with(
            pid,
            ProcEntry {
                state: ProcState::Running,
                starttime: Some(1000 + pid as u64),
                gateway: Some(true),
                probe_denied: false,
            },
        )
    }

    pub fn process_with(&self, pid: u32, entry: ProcEntry) -> Proc {
        self.process_on(pid, entry, self.clock.clone())
    }

    /// A running gateway process whose wall clock is the world's plus `clock`'s offset, which
    /// the test steps at will.
    pub fn process_with_clock(&self, pid: u32, clock: Arc<SteppedClock>) -> Proc {
        let entry = ProcEntry {
            state: ProcState::Running,
            starttime: Some(1000 + pid as u64),
            gateway: Some(true),
            probe_denied: false,
        };
        self.process_on(pid, entry, clock)
    }

    fn process_on(&self, pid: u32, entry: ProcEntry, clock: Arc<dyn Clock>) -> Proc {
        self.table.spawn(pid, entry);
        let fs = Arc::new(FaultFs::new(self.fs.view(pid, DEFAULT_FD_LIMIT)));
        let events = Arc::new(Recorder::new(self.start));
        let platform = Platform {
            fs: fs.clone(),
            clock,
            processes: Arc::new(self.table.view(pid)),
            spawner: Arc::new(TokioSpawner),
            observer: events.clone(),
        };
        let locks = make_locks(platform.clone(), self.mutant);
        Proc {
            pid,
            fs,
            events,
            platform,
            locks,
        }
    }

    /// Another machine process in the table (not running our lock code).
    pub fn spawn_pid(&self, pid: u32, gateway: Option<bool>) {
        self.table.spawn(
            pid,
            ProcEntry {
                state: ProcState::Running,
                starttime: Some(1000 + pid as u64),
                gateway,
                probe_denied: false,
            },
        );
    }

    pub fn lock_exists(&self) -> bool {
        self.fs.contents(lock()).is_some()
    }
    pub fn lock_bytes(&self) -> Option<Vec<u8>> {
        self.fs.contents(lock())
    }
    pub fn lock_ino(&self) -> Option<u64> {
        self.fs.ino_of(lock())
    }
    pub fn guard_exists(&self) -> bool {
        self.fs.ino_of(Path::new(GUARD)).is_some()
    }
    pub fn transcript_bytes(&self) -> Vec<u8> {
        self.fs.contents(transcript()).unwrap_or_default()
    }

    /// Put a lock file with these bytes on disk (replacing any), as a crashed or foreign
    /// holder would have left it.
    pub fn plant_lock(&self, bytes: &[u8]) {
        let _ = self.tool.unlink_now(lock());
        self.tool.write_path_now(lock(), bytes, true).unwrap();
    }

    /// Put a file with these bytes at `path` (replacing any), as something outside left it.
    pub fn plant_file(&self, path: &Path, bytes: &[u8]) {
        self.tool.write_path_now(path, bytes, true).unwrap();
    }

    pub fn unlink_lock(&self) {
        self.tool.unlink_now(lock()).unwrap();
    }

    /// An edit of the transcript by someone outside the system (another tool, a user).
    pub fn tool_append(&self, data: &[u8]) {
        self.tool.write_path_now(transcript(), data, false).unwrap();
    }

    /// Replace the transcript by a new file (new inode) with `data`.
    pub fn tool_replace_transcript(&self, data: &[u8]) {
        self.tool.unlink_now(transcript()).unwrap();
        self.tool.write_path_now(transcript(), data, true).unwrap();
    }

    pub fn mkdir_guard(&self) {
        self.tool.mkdir_now(Path::new(GUARD)).unwrap();
    }
}

/// A process's wall clock: the world's, moved by an offset the test steps (NTP, an admin).
pub struct SteppedClock {
    world: Arc<TokioClock>,
    offset_ms: std::sync::atomic::AtomicI64,
}

impl SteppedClock {
    pub fn new(world: &World, offset_ms: i64) -> Arc<SteppedClock> {
        Arc::new(SteppedClock {
            world: world.clock.clone(),
            offset_ms: std::sync::atomic::AtomicI64::new(offset_ms),
        })
    }

    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn wall_ms(&self) -> i64 {
        self.world.wall_ms() + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn mono_ms(&self) -> u64 {
        self.world.mono_ms()
    }
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        self.world.sleep(ms)
    }
}

#[cfg(feature = "mutants")]
fn make_locks(platform: Platform, mutant: Option<Mutant>) -> Arc<ProcessLocks> {
    ProcessLocks::with_mutant(platform, mutant)
}

#[cfg(not(feature = "mutants"))]
fn make_locks(platform: Platform, mutant: Option<Mutant>) -> Arc<ProcessLocks> {
    match mutant {
        None => ProcessLocks::new(platform),
        Some(never) => match never {},
    }
}

#[cfg(feature = "mutants")]
pub fn make_owner(platform: Platform, mutant: Option<Mutant>) -> Arc<OwnerMutex> {
    OwnerMutex::with_mutant(platform, mutant)
}

#[cfg(not(feature = "mutants"))]
pub fn make_owner(platform: Platform, mutant: Option<Mutant>) -> Arc<OwnerMutex> {
    match mutant {
        None => OwnerMutex::new(platform),
        Some(never) => match never {},
    }
}

/// A payload as JSON bytes; `created_ago_ms` is subtracted from the world's wall time now.
pub fn payload(
    world: &World,
    pid: Option<u32>,
    created_ago_ms: Option<i64>,
    starttime: Option<u64>,
    max_hold_ms: Option<u64>,
) -> Vec<u8> {
    LockPayload {
        pid,
        created_at: created_ago_ms.map(|ago| format_iso8601(world.wall_ms() - ago)),
        starttime,
        max_hold_ms,
    }
    .to_bytes()
}

/// One process of the world.
pub struct Proc {
    pub pid: u32,
    pub fs: Arc<FaultFs>,
    pub events: Arc<Recorder>,
    pub platform: Platform,
    pub locks: Arc<ProcessLocks>,
}

impl Proc {
    pub async fn controller(&self, opts: ControllerOptions) -> Result<AttemptController, ControllerError> {
        AttemptController::create(self.locks.clone(), transcript(), opts).await
    }

    pub fn holds_lock(&self) -> bool {
        self.locks.holds(lock())
    }
}

// ----------------------------------------------------------------------------------------
// The recording observer

/// The events the tests look at, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    Acquired {
        handle: HandleId,
        ino: u64,
    },
    AcquireFailed {
        timeout: bool,
    },
    Reclaimed {
        ino: u64,
        reasons: Vec<StaleReason>,
    },
    GuardRecovered,
    ReleaseBegin {
        handle: HandleId,
        by: ReleaseBy,
    },
    ReleaseEnd {
        handle: HandleId,
        unlinked: bool,
        errno: Option<i32>,
    },
    HandleLost {
        handle: HandleId,
    },
    HeldSet {
        handle: HandleId,
    },
    HeldCleared {
        handle: HandleId,
        duty: Duty,
    },
    Poisoned {
        reason: PoisonReason,
    },
    ReleaseDeferred,
    WriteBegin,
    Disposed,
    Other(String),
}

pub struct Recorder {
    start: Instant,
    events: Mutex<Vec<(u64, Ev)>>,
}

impl Recorder {
    fn new(start: Instant) -> Self {
        Recorder {
            start,
            events: Mutex::new(Vec::new()),
        }
    }

    /// Every event with its virtual time (ms since the world began).
    pub fn timed(&self) -> Vec<(u64, Ev)> {
        self.events.lock().unwrap().clone()
    }

    pub fn all(&self) -> Vec<Ev> {
        self.timed().into_iter().map(|(_, e)| e).collect()
    }

    pub fn count(&self, pred: impl Fn(&Ev) -> bool) -> usize {
        self.all().iter().filter(|e| pred(e)).count()
    }

    /// Index and time of the first event matching `pred`.
    pub fn first(&self, pred: impl Fn(&Ev) -> bool) -> Option<(usize, u64)> {
        self.timed().iter().enumerate().find(|(_, (_, e))| pred(e)).map(|(i, (t, _))| (i, *t))
    }

    pub fn release_begins(&self, handle: HandleId) -> usize {
        self.count(|e| matches!(e, Ev::ReleaseBegin { handle: h, .. } if *h == handle))
    }

    pub fn reclaim_reasons(&self) -> Vec<Vec<StaleReason>> {
        self.all()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Reclaimed { reasons, .. } => Some(reasons),
                _ => None,
            })
            .collect()
    }
}

impl Observer for Recorder {
    fn on_event(&self, event: &LockEvent) {
        let ev = match event {
            LockEvent::Acquired { handle, ino, .. } => Ev::Acquired {
                handle: *handle,
                ino: *ino,
            },
            LockEvent::AcquireFailed { refusal, .. } => Ev::AcquireFailed {
                timeout: *refusal == Refusal::Timeout,
            },
            LockEvent::Reclaimed { ino, reasons, .. } => Ev::Reclaimed {
                ino: *ino,
                reasons: reasons.to_vec(),
            },
            LockEvent::GuardRecovered { .. } => Ev::GuardRecovered,
            LockEvent::ReleaseBegin { handle, by, .. } => Ev::ReleaseBegin {
                handle: *handle,
                by: *by,
            },
            LockEvent::ReleaseEnd {
                handle,
                unlinked,
                errno,
                ..
            } => Ev::ReleaseEnd {
                handle: *handle,
                unlinked: *unlinked,
                errno: *errno,
            },
            LockEvent::HandleLost { handle, .. } => Ev::HandleLost { handle: *handle },
            LockEvent::HeldSet { handle, .. } => Ev::HeldSet { handle: *handle },
            LockEvent::HeldCleared { handle, duty, .. } => Ev::HeldCleared {
                handle: *handle,
                duty: *duty,
            },
            LockEvent::Poisoned { reason, .. } => Ev::Poisoned { reason: *reason },
            LockEvent::ReleaseDeferred { .. } => Ev::ReleaseDeferred,
            LockEvent::WriteBegin { .. } => Ev::WriteBegin,
            LockEvent::Disposed { .. } => Ev::Disposed,
            other => Ev::Other(format!("{other:?}")),
        };
        let t = self.start.elapsed().as_millis() as u64;
        self.events.lock().unwrap().push((t, ev));
    }
}

// ----------------------------------------------------------------------------------------
// The fault-injecting filesystem

/// The `Fs` operations, for choosing which to fail or pause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    WriteFd,
    Close,
    Read,
    Stat,
    Unlink,
    Mkdir,
    Rmdir,
    Exchange,
    /// `rename_noreplace`.
    Rename,
    Link,
    /// The plain `rename`.
    Move,
    Append,
    WriteAll,
    CanonicalDir,
}

/// A point an operation stops at until the test opens it.
pub struct Gate {
    arrived: watch::Sender<usize>,
    open: watch::Sender<bool>,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate {
            arrived: watch::channel(0).0,
            open: watch::channel(false).0,
        })
    }

    /// Called by the paused operation (or a test's own future): wait until opened.
    pub async fn pass(&self) {
        self.arrived.send_modify(|n| *n += 1);
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    /// Wait until `n` operations have arrived at the gate.
    pub async fn arrived(&self, n: usize) {
        let mut rx = self.arrived.subscribe();
        let _ = rx.wait_for(|c| *c >= n).await;
    }

    pub fn arrivals(&self) -> usize {
        *self.arrived.borrow()
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

#[derive(Clone)]
enum Action {
    Fail(i32),
    Pause(Arc<Gate>),
    /// Stop at the gate, then fail with the errno once it opens.
    PauseThenFail(Arc<Gate>, i32),
}

struct Rule {
    op: Op,
    /// Matches paths whose string ends with this; `None` matches every call (fd ops too).
    suffix: Option<String>,
    /// Calls left to strike; `None`: forever.
    times: Option<usize>,
    action: Action,
}

/// A freeze: once the `after`-th call of `op` on a path ending with `suffix` has gone
/// through, every later call of the process waits at `gate` (a process stopped between two
/// system calls, for as long as the test likes).
struct Freeze {
    op: Op,
    suffix: String,
    after: usize,
    gate: Arc<Gate>,
}

/// Wraps one process's `MemFsView`: counts calls and fails or pauses chosen ones.
pub struct FaultFs {
    inner: MemFsView,
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<HashMap<(Op, Option<PathBuf>), usize>>,
    freeze: Mutex<Option<Freeze>>,
}

impl FaultFs {
    pub fn new(inner: MemFsView) -> Self {
        FaultFs {
            inner,
            rules: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            freeze: Mutex::new(None),
        }
    }

    /// Freeze the process right after its `after`-th call of `op` on a path ending with
    /// `suffix`: every later call waits at the returned gate until it opens.
    pub fn freeze_after(&self, op: Op, suffix: &str, after: usize) -> Arc<Gate> {
        let gate = Gate::new();
        *self.freeze.lock().unwrap() = Some(Freeze {
            op,
            suffix: suffix.to_owned(),
            after,
            gate: gate.clone(),
        });
        gate
    }

    /// The freeze gate to wait at before this call, if the freeze has struck.
    fn frozen(&self, op: Op, path: Option<&Path>) -> Option<Arc<Gate>> {
        let mut freeze = self.freeze.lock().unwrap();
        let f = freeze.as_mut()?;
        if f.after == 0 {
            return Some(f.gate.clone());
        }
        if f.op == op && path.is_some_and(|p| p.to_string_lossy().ends_with(f.suffix.as_str())) {
            f.after -= 1;
        }
        None
    }

    pub fn view(&self) -> &MemFsView {
        &self.inner
    }

    fn add(&self, op: Op, suffix: Option<&str>, times: Option<usize>, action: Action) {
        self.rules.lock().unwrap().push(Rule {
            op,
            suffix: suffix.map(str::to_owned),
            times,
            action,
        });
    }

    /// Fail the next call of `op` on a path ending with `suffix` with `errno`.
    pub fn fail_once(&self, op: Op, suffix: &str, errno: i32) {
        self.add(op, Some(suffix), Some(1), Action::Fail(errno));
    }

    /// Fail every call of `op` (any path or fd) with `errno`.
    pub fn fail_always(&self, op: Op, suffix: Option<&str>, errno: i32) {
        self.add(op, suffix, None, Action::Fail(errno));
    }

    /// Pause the next call of `op` on a path ending with `suffix` at the returned gate.
    pub fn pause_once(&self, op: Op, suffix: &str) -> Arc<Gate> {
        let gate = Gate::new();
        self.add(op, Some(suffix), Some(1), Action::Pause(gate.clone()));
        gate
    }

    /// Pause the next call of `op` on any path or fd at the returned gate.
    pub fn pause_next(&self, op: Op) -> Arc<Gate> {
        let gate = Gate::new();
        self.add(op, None, Some(1), Action::Pause(gate.clone()));
        gate
    }

    /// Pause the next call of `op` on any path or fd at the returned gate; once it opens, the
    /// call fails with `errno` (an operation that stalled and then failed).
    pub fn pause_then_fail_next(&self, op: Op, errno: i32) -> Arc<Gate> {
        let gate = Gate::new();
        self.add(op, None, Some(1), Action::PauseThenFail(gate.clone(), errno));
        gate
    }

    /// A filesystem that cannot publish a whole lock at the lock path (`rename_noreplace`
    /// refused with EINVAL, `link` with EPERM): the lock is made in place. The first payload
    /// write, of the lock that could not be published, is let through before any rule added
    /// after this one.
    pub fn refuse_publish(&self) {
        self.fail_always(Op::Rename, Some(LOCK), errno::EINVAL);
        self.fail_always(Op::Link, Some(LOCK), errno::EPERM);
        self.pause_next(Op::WriteFd).open();
    }

    /// An NFS mount: `renameat2` with any flag is EINVAL (no `rename_noreplace`, no `exchange`);
    /// `link` and the plain `rename` work. The first payload write, of the private lock, is let
    /// through before any rule added after this one.
    pub fn nfs(&self) {
        self.fail_always(Op::Rename, None, errno::EINVAL);
        self.fail_always(Op::Exchange, None, errno::EINVAL);
        self.pause_next(Op::WriteFd).open();
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Calls of `op` on exactly `path` (or fd calls, with `None`).
    pub fn calls(&self, op: Op, path: Option<&Path>) -> usize {
        self.calls.lock().unwrap().get(&(op, path.map(Path::to_owned))).copied().unwrap_or(0)
    }

    async fn intercept(&self, op: Op, path: Option<&Path>) -> io::Result<()> {
        if let Some(gate) = self.frozen(op, path) {
            gate.pass().await;
        }
        let action = {
            *self.calls.lock().unwrap().entry((op, path.map(Path::to_owned))).or_insert(0) += 1;
            let mut rules = self.rules.lock().unwrap();
            let hit = rules.iter_mut().find(|r| {
                r.op == op
                    && r.times != Some(0)
                    && match (&r.suffix, path) {
                        (None, _) => true,
                        (Some(s), Some(p)) => p.to_string_lossy().ends_with(s.as_str()),
                        (Some(_), None) => false,
                    }
            });
            hit.map(|r| {
                if let Some(n) = r.times.as_mut() {
                    *n -= 1;
                }
                r.action.clone()
            })
        };
        match action {
            None => Ok(()),
            Some(Action::Fail(code)) => Err(os_error(code)),
            Some(Action::Pause(gate)) => {
                gate.pass().await;
                Ok(())
            }
            Some(Action::PauseThenFail(gate, code)) => {
                gate.pass().await;
                Err(os_error(code))
            }
        }
    }
}

impl Fs for FaultFs {
    fn create_exclusive<'a>(&'a self, path: &'a Path, mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        Box::pin(async move {
            self.intercept(Op::Create, Some(path)).await?;
            self.inner.create_exclusive(path, mode).await
        })
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::WriteFd, None).await?;
            self.inner.write_fd(fd, data).await
        })
    }
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Close, None).await?;
            self.inner.close(fd).await
        })
    }
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>> {
        Box::pin(async move {
            self.intercept(Op::Read, Some(path)).await?;
            self.inner.read(path).await
        })
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        Box::pin(async move {
            self.intercept(Op::Stat, Some(path)).await?;
            self.inner.stat(path).await
        })
    }
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>> {
        Box::pin(async move {
            self.intercept(Op::Stat, None).await?;
            self.inner.stat_fd(fd).await
        })
    }
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Unlink, Some(path)).await?;
            self.inner.unlink(path).await
        })
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Mkdir, Some(path)).await?;
            self.inner.mkdir(path).await
        })
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Rmdir, Some(path)).await?;
            self.inner.rmdir(path).await
        })
    }
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Exchange, Some(b)).await?;
            self.inner.exchange(a, b).await
        })
    }
    fn rename_noreplace<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Rename, Some(to)).await?;
            self.inner.rename_noreplace(from, to).await
        })
    }
    fn link<'a>(&'a self, existing: &'a Path, new: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Link, Some(new)).await?;
            self.inner.link(existing, new).await
        })
    }
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Move, Some(from)).await?;
            self.inner.rename(from, to).await
        })
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::Append, Some(path)).await?;
            self.inner.append(path, data).await
        })
    }
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.intercept(Op::WriteAll, Some(path)).await?;
            self.inner.write_all(path, data).await
        })
    }
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>> {
        Box::pin(async move {
            self.intercept(Op::CanonicalDir, Some(dir)).await?;
            self.inner.canonical_dir(dir).await
        })
    }
}
