//! The file lock (SPEC §1): acquire with one time budget, judge and reclaim stale locks under a
//! `.reclaim` guard, release only an unchanged file, and the per-process watchdog.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use event_listener::Event;

use crate::acquire_deadline::AcquireRace;
use crate::event::{HandleId, LockEvent, LossCause, Refusal, ReleaseBy};
use crate::fence::OwnedWrites;
use crate::judge::{judge, probe_holder, Action, JudgeInput, StaleReason};
use crate::mutant::mutant_on;
use crate::payload::LockPayload;
use crate::platform::{errno, is_errno, Fd, Platform};

pub use crate::acquire_deadline::ACQUIRE_OVERRUN_MS;

/// The acquire poll interval.
pub const POLL_MS: u64 = 50;
/// Payload-less locks are stale only once their file is older than this.
pub const ORPHAN_GRACE_MS: u64 = 30_000;
/// The orphan grace when the acquire timeout is below `ORPHAN_GRACE_MS`.
pub const ORPHAN_GRACE_SHORT_MS: u64 = 5_000;
/// The watchdog's tick.
pub const WATCHDOG_INTERVAL_MS: u64 = 60_000;
/// Passes of the acquire loop in a row that do not sleep (a lock that vanished, a reclaim, a
/// recovered guard) before the loop waits one poll anyway. Small: an entry that keeps vanishing
/// between the create and the read must not cost a thousand fs round trips per poll; the time
/// budget, not this count, ends the loop.
const MAX_FAST_ITERATIONS: u64 = 8;

/// Acquire parameters; the defaults are the production ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockOptions {
    /// The acquire's one time budget (60 000 ms).
    pub timeout_ms: u64,
    /// A lock older than this is reported stale (1 800 000 ms).
    pub stale_ms: u64,
    /// How long a holder may keep the lock before the watchdog takes it (300 000 ms).
    pub max_hold_ms: u64,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout_ms: 60_000,
            stale_ms: 1_800_000,
            max_hold_ms: 300_000,
        }
    }
}

impl LockOptions {
    fn orphan_grace_ms(&self) -> u64 {
        if self.timeout_ms < ORPHAN_GRACE_MS {
            ORPHAN_GRACE_SHORT_MS
        } else {
            ORPHAN_GRACE_MS
        }
    }
}

/// Who holds a lock, as its payload says: structured for callers, rendered
/// `pid=N alive=B ageMs=M` (SPEC §1 step 4; `ageMs=?` when `createdAt` is unreadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockOwner {
    /// The pid the payload names.
    pub pid: u32,
    /// Whether the pid answered the liveness probe as alive.
    pub alive: bool,
    /// now − createdAt, when `createdAt` is valid.
    pub age_ms: Option<u64>,
}

impl std::fmt::Display for LockOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid={} alive={} ageMs=", self.pid, self.alive)?;
        match self.age_ms {
            Some(age) => write!(f, "{age}"),
            None => f.write_str("?"),
        }
    }
}

/// `pid=N alive=B ageMs=M`, or `unknown` when the payload names no pid.
fn owner_text(owner: &Option<LockOwner>) -> String {
    owner.map_or_else(|| "unknown".to_owned(), |o| o.to_string())
}

/// Why an acquire or a release failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The budget ran out while someone held the lock (SPEC §1 step 4).
    #[error("SessionWriteLockTimeoutError: no lock on {} within {timeout_ms} ms (owner {})", lock_path.display(), owner_text(owner))]
    Timeout {
        /// The budget.
        timeout_ms: u64,
        /// The holder at the last look; `None` when its payload names no pid.
        owner: Option<LockOwner>,
        /// The lock file.
        lock_path: PathBuf,
    },
    /// The lock is stale only for report-only reasons (`too-old`, `hold-exceeded`): it is
    /// kept, and the acquire fails (SPEC §1 step 3).
    #[error("SessionWriteLockStaleError: {} is stale ({}) but not removable (owner {})", lock_path.display(), reasons_text(reasons), owner_text(owner))]
    Stale {
        /// The holder its payload names; `None` when it names no pid.
        owner: Option<LockOwner>,
        /// The lock file.
        lock_path: PathBuf,
        /// Why it was judged stale.
        reasons: Vec<StaleReason>,
    },
    /// An I/O error on `path` (the lock file, its reclaim guard, or the transcript's
    /// directory while resolving the lock path).
    #[error("lock I/O failed on {}: {source}", path.display())]
    Io {
        /// The file or directory the error happened on.
        path: PathBuf,
        /// The error, with its errno.
        source: io::Error,
    },
}

impl LockError {
    /// The errno of an I/O error, if this is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            LockError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The error's kind, and a StaleError's reasons, for the observer.
    pub fn refusal(&self) -> Refusal<'_> {
        match self {
            LockError::Timeout { .. } => Refusal::Timeout,
            LockError::Stale { reasons, .. } => Refusal::Stale(reasons),
            LockError::Io { source, .. } => Refusal::Io(source.raw_os_error()),
        }
    }
}

/// Name the path an I/O error happened on.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LockError + '_ {
    move |source| LockError::Io {
        path: path.to_owned(),
        source,
    }
}

fn reasons_text(reasons: &[StaleReason]) -> String {
    let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
    names.join(", ")
}

/// What the acquirer saw on disk: bytes and identity, for the unchanged re-checks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    bytes: Vec<u8>,
    dev: u64,
    ino: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReleaseState {
    Open,
    Releasing,
    /// Released; the errno of a failed unlink check, if any.
    Done(Option<i32>),
}

struct HandleInner {
    id: HandleId,
    lock_path: PathBuf,
    fd: Fd,
    snapshot: Snapshot,
    acquired_mono_ms: u64,
    max_hold_ms: u64,
    lost: AtomicBool,
    release: Mutex<ReleaseState>,
    released: Event,
}

/// A held file lock. Cheap to clone; every clone is the same handle.
#[derive(Clone)]
pub struct LockHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for LockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockHandle({} {})", self.inner.id, self.inner.lock_path.display())
    }
}

impl LockHandle {
    /// This handle's id in events.
    pub fn id(&self) -> HandleId {
        self.inner.id
    }
    /// The lock file: `<canonical dir>/<transcript name>.lock`.
    pub fn lock_path(&self) -> &Path {
        &self.inner.lock_path
    }
    /// The inode of the lock file this handle created.
    pub fn ino(&self) -> u64 {
        self.inner.snapshot.ino
    }
    /// The watchdog took this lock away: writes under it must fail.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }
    /// Whether a release of this handle started (by its owner or the watchdog).
    pub fn is_released(&self) -> bool {
        *self.inner.release.lock().unwrap() != ReleaseState::Open
    }
    /// Whether `other` is a clone of this very handle.
    pub fn same(&self, other: &LockHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[derive(Default)]
struct Table {
    /// Lock path ⇒ the handle this process holds on it.
    held: HashMap<PathBuf, LockHandle>,
    /// Lock paths this process is between create and held-map insert on: as good as held for
    /// the judge, or a second acquire of ours would reclaim our own fresh lock as an orphan.
    creating: HashMap<PathBuf, u32>,
    /// Lock paths with a release of ours under way: still ours for the judge until the unlink
    /// is done, or a concurrent acquire of ours would reclaim the file as an orphan and the
    /// release's unlink could then hit the new file.
    releasing: HashMap<PathBuf, u32>,
}

/// One process's lock state: the held map, handle ids, the watchdog. One per process.
pub struct ProcessLocks {
    platform: Platform,
    table: Mutex<Table>,
    next_id: AtomicU64,
    owned: OwnedWrites,
    #[cfg(feature = "mutants")]
    mutant: Option<crate::mutant::Mutant>,
}

/// The live `ProcessLocks` of each process, keyed by the address of its `Processes` port.
/// A process has one held map (SPEC §1.1: a lock held by this process is never stale): a
/// second instance with its own map would reclaim the first one's live lock as an orphan.
static INSTANCES: Mutex<Vec<(usize, Weak<ProcessLocks>)>> = Mutex::new(Vec::new());

impl ProcessLocks {
    /// This process's lock state. A second call over the same process (the same `Processes`
    /// port, e.g. a cloned `Platform`) returns the live instance: ownership is process-wide.
    /// The watchdog is not started ([`ProcessLocks::start_watchdog`];
    /// [`crate::real::process_locks`] does both).
    pub fn new(platform: Platform) -> Arc<Self> {
        Self::one_per_process(platform, |platform| ProcessLocks {
            platform,
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            owned: OwnedWrites::default(),
            #[cfg(feature = "mutants")]
            mutant: None,
        })
    }

    /// The same, with a historical bug switched on.
    #[cfg(feature = "mutants")]
    pub fn with_mutant(platform: Platform, mutant: Option<crate::mutant::Mutant>) -> Arc<Self> {
        Self::one_per_process(platform, |platform| ProcessLocks {
            platform,
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            owned: OwnedWrites::default(),
            mutant,
        })
    }

    fn one_per_process(platform: Platform, make: impl FnOnce(Platform) -> ProcessLocks) -> Arc<Self> {
        let key = Arc::as_ptr(&platform.processes) as *const () as usize;
        let mut instances = INSTANCES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        instances.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(live) = instances.iter().find(|(k, _)| *k == key).and_then(|(_, weak)| weak.upgrade()) {
            return live;
        }
        let locks = Arc::new(make(platform));
        instances.push((key, Arc::downgrade(&locks)));
        locks
    }

    /// The historical bug switched on, if any.
    #[cfg(feature = "mutants")]
    pub fn mutant(&self) -> Option<crate::mutant::Mutant> {
        self.mutant
    }

    /// The transcript writes this process owns (shared by its controllers).
    pub(crate) fn owned_writes(&self) -> &OwnedWrites {
        &self.owned
    }

    /// The platform the lock runs on.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// A fresh id from this process's counter (handles, controllers, operations share it).
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `<canonical dir>/<name>.lock`: two paths to one transcript share one lock.
    pub async fn lock_path_for(&self, target: &Path) -> io::Result<PathBuf> {
        let mut lock = canonical_transcript(&*self.platform.fs, target).await?.into_os_string();
        lock.push(".lock");
        Ok(PathBuf::from(lock))
    }

    /// Whether this process holds the lock file at `lock_path`.
    pub fn holds(&self, lock_path: &Path) -> bool {
        self.table.lock().unwrap().held.contains_key(lock_path)
    }

    /// Handles this process holds, in lock-path order.
    pub fn held_handles(&self) -> Vec<LockHandle> {
        let table = self.table.lock().unwrap();
        let mut handles: Vec<_> = table.held.values().cloned().collect();
        handles.sort_by(|a, b| a.lock_path().cmp(b.lock_path()));
        handles
    }

    /// SPEC §1 steps 1–5, unbounded by time while a filesystem call hangs:
    /// [`ProcessLocks::acquire`] races it against the budget.
    pub(crate) async fn acquire_unraced(
        &self,
        target: &Path,
        opts: LockOptions,
        race: &AcquireRace,
    ) -> Result<LockHandle, LockError> {
        let lock_path = self.lock_path_for(target).await.map_err(io_at(target))?;
        let acquire = self.next_id();
        if !race.begin(acquire, &lock_path, self.platform.clock.mono_ms()) {
            // Its caller was answered while the path resolved: nobody waits for this acquire.
            return Err(LockError::Timeout {
                timeout_ms: opts.timeout_ms,
                owner: None,
                lock_path,
            });
        }
        self.platform.emit(LockEvent::AcquireStart {
            acquire,
            lock: &lock_path,
            timeout_ms: opts.timeout_ms,
        });
        let mut guard = Guard {
            path: guard_path(&lock_path),
            ours: false,
        };
        let result = self.acquire_loop(acquire, &lock_path, opts, &mut guard).await;
        self.drop_guard(&mut guard).await;
        if let (Err(err), true) = (&result, race.awaited()) {
            self.platform.emit(LockEvent::AcquireFailed {
                acquire,
                lock: &lock_path,
                refusal: err.refusal(),
                error: err.to_string(),
            });
        }
        result
    }

    async fn acquire_loop(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
        guard: &mut Guard,
    ) -> Result<LockHandle, LockError> {
        let deadline = self.platform.clock.mono_ms().saturating_add(opts.timeout_ms);
        let mut owner: Option<LockOwner> = None;
        let polls = (opts.timeout_ms / POLL_MS).saturating_add(2);
        let old_cap = mutant_on!(self, M17VanishIterationCap);
        // Time bounds the loop: at most MAX_FAST_ITERATIONS passes without a poll's sleep (a
        // lock that keeps vanishing, reclaims), so the budget, not a count, ends it; the count
        // stays as the explicit bound.
        let max_iterations = if old_cap {
            polls.saturating_add(MAX_FAST_ITERATIONS)
        } else {
            polls.saturating_mul(MAX_FAST_ITERATIONS + 1)
        };
        let mut since_poll = 0_u64;
        for _ in 0..max_iterations {
            if since_poll >= MAX_FAST_ITERATIONS && !old_cap {
                self.wait_poll(deadline, opts, lock_path, &owner).await?;
                since_poll = 0;
            }
            since_poll += 1;
            match self.attempt(acquire, lock_path, opts, guard, &mut owner).await? {
                Step::Done(handle) => return Ok(handle),
                Step::Retry => {}
                Step::Wait => {
                    self.wait_poll(deadline, opts, lock_path, &owner).await?;
                    since_poll = 0;
                }
            }
        }
        Err(LockError::Timeout {
            timeout_ms: opts.timeout_ms,
            owner,
            lock_path: lock_path.to_owned(),
        })
    }

    /// One pass of SPEC §1 steps 2–3: create the lock, or judge the one there and act.
    async fn attempt(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
        guard: &mut Guard,
        owner: &mut Option<LockOwner>,
    ) -> Result<Step, LockError> {
        if !mutant_on!(self, M19ReacquireAfterRemovalPanics) && self.still_held(lock_path).await? {
            return Ok(Step::Wait);
        }
        if !guard.ours && self.guard_blocks(guard, opts).await? {
            return Ok(Step::Wait);
        }
        // A lock there is judged; none there, ours is published (EEXIST: someone was quicker,
        // and the next pass judges theirs). Looking first keeps a waiter's poll one read.
        let read = read_snapshot(&*self.platform.fs, lock_path).await;
        let Some(seen) = read.map_err(io_at(lock_path))? else {
            return Ok(self.create(acquire, lock_path, opts).await?.unwrap_or(Step::Retry));
        };
        let verdict = self.judge_seen(lock_path, &seen, opts, owner).await;
        match verdict.action {
            Action::Wait => {
                self.drop_guard(guard).await;
                Ok(Step::Wait)
            }
            Action::Report => {
                // Probe the holder again, re-read, and judge again by the clock of now, before
                // failing: the lock may have been released or replaced while its holder was
                // probed, the bytes judged may not be the file stat'ed, and a wall clock stepped
                // back meanwhile can make it in bounds (swarm seed 5140). Nothing that waits
                // comes after the re-read. Anything but the same file, still report-only
                // stale: retry.
                let mut reasons = verdict.reasons;
                if !mutant_on!(self, M16StaleVerdictUnverified) {
                    let probed = self.probe_seen(&seen).await;
                    if !self.unchanged(lock_path, &seen).await? {
                        return Ok(Step::Retry);
                    }
                    let again = self.verdict(lock_path, &seen, &probed, opts, owner);
                    if again.action != Action::Report {
                        return Ok(Step::Retry);
                    }
                    reasons = again.reasons;
                }
                Err(LockError::Stale {
                    owner: *owner,
                    lock_path: lock_path.to_owned(),
                    reasons,
                })
            }
            Action::Remove => self.reclaim(acquire, lock_path, opts, guard, &seen, &verdict.reasons).await,
        }
    }

    /// Make our lock at the lock path (SPEC §1 step 2): `None` when a lock is there (EEXIST).
    async fn create(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
    ) -> Result<Option<Step>, LockError> {
        self.table.lock().unwrap().creating_add(lock_path);
        let result = self.publish(acquire, lock_path, opts).await;
        self.table.lock().unwrap().creating_remove(lock_path);
        result
    }

    /// Our lock made whole at a private name (payload written, stat'ed), then given the lock
    /// path in one step that fails with EEXIST rather than replace anything (`put_whole`): the
    /// exclusive create of SPEC §1 step 2, with no moment at which the path holds a
    /// payload-less file of ours. A failed payload write then removes only our private file.
    /// Made in place (`O_EXCL`, then the payload) and abandoned by a check and an unlink, a
    /// creator whose unlink stalled past the orphan grace removed the lock a reclaimer had
    /// meanwhile taken from its payload-less file (I11 then I1, swarm seed 85695). Only a
    /// filesystem with neither `renameat2` flags nor hard links gets the create in place, and
    /// with it that window.
    async fn publish(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
    ) -> Result<Option<Step>, LockError> {
        let ours = self.make_spare(lock_path, opts).await?;
        let put = self.put_whole(&ours, lock_path).await;
        if !matches!(put, Ok(Put::Published)) {
            self.discard_spare(ours.fd, &ours.path).await;
        }
        match put {
            Ok(Put::Published) => {
                let handle = self.adopt(acquire, lock_path, ours.fd, ours.bytes, ours.made, opts).await;
                Ok(Some(Step::Done(handle)))
            }
            Ok(Put::Exists) => Ok(None),
            Ok(Put::Refused) => self.create_in_place(acquire, lock_path, opts).await,
            Err(e) => Err(io_at(lock_path)(e)),
        }
    }

    /// Give our whole lock, made at its private name, the lock path — never replacing what is
    /// there. `rename_noreplace` (`renameat2(RENAME_NOREPLACE)`) where the filesystem has it;
    /// where it refuses (EINVAL on NFS, ENOSYS, EPERM from a syscall filter), `link(2)` — as
    /// atomic, EEXIST as well, and on NFS too — and then the private name is dropped (best
    /// effort: a name left over is a second name of our lock, which no one judges). `Refused`
    /// when the filesystem has neither (`link`: EPERM, EOPNOTSUPP, ENOSYS).
    async fn put_whole(&self, ours: &Spare, lock_path: &Path) -> io::Result<Put> {
        let fs = &self.platform.fs;
        match fs.rename_noreplace(&ours.path, lock_path).await {
            Ok(()) => return Ok(Put::Published),
            Err(e) if is_errno(&e, errno::EEXIST) => return Ok(Put::Exists),
            Err(e) if refused(&e, &RENAME_FLAG_REFUSED) => {}
            Err(e) => return Err(e),
        }
        match fs.link(&ours.path, lock_path).await {
            Ok(()) => {
                let _ = fs.unlink(&ours.path).await;
                Ok(Put::Published)
            }
            Err(e) if is_errno(&e, errno::EEXIST) => Ok(Put::Exists),
            Err(e) if refused(&e, &[errno::EPERM, errno::EOPNOTSUPP, errno::ENOSYS]) => Ok(Put::Refused),
            Err(e) => Err(e),
        }
    }

    /// The exclusive create at the lock path and then the payload, where no rename can publish
    /// a whole lock: `None` when the lock exists (EEXIST).
    async fn create_in_place(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
    ) -> Result<Option<Step>, LockError> {
        match self.platform.fs.create_exclusive(lock_path, 0o600).await {
            Ok(fd) => match self.finish_create(acquire, lock_path, fd, opts).await {
                Ok(Some(handle)) => Ok(Some(Step::Done(handle))),
                Ok(None) => Ok(Some(Step::Retry)), // our file was replaced while we stalled
                Err(e) => Err(e),
            },
            Err(e) if is_errno(&e, errno::EEXIST) => Ok(None),
            Err(e) => Err(io_at(lock_path)(e)),
        }
    }

    /// Judge a lock as read (SPEC §1.1); `owner` becomes the holder it names.
    async fn judge_seen(
        &self,
        lock_path: &Path,
        seen: &Seen,
        opts: LockOptions,
        owner: &mut Option<LockOwner>,
    ) -> crate::judge::Verdict {
        let probed = self.probe_seen(seen).await;
        self.verdict(lock_path, seen, &probed, opts, owner)
    }

    /// The payload of a lock as read, and what probing the holder it names found (`/proc`:
    /// it takes time, so the verdict's clock and our table are read after it).
    async fn probe_seen(&self, seen: &Seen) -> Probed {
        #[allow(unused_mut)]
        let mut payload = LockPayload::parse(&seen.snapshot.bytes);
        #[cfg(feature = "mutants")]
        if mutant_on!(self, M15CreatedAtOffsetInvalid) {
            crate::mutant::drop_offset_created_at(&mut payload);
        }
        let holder = probe_holder(payload.as_ref(), &*self.judged_processes()).await;
        Probed { payload, holder }
    }

    /// The verdict on a probed lock, by the clock and our lock table of now.
    fn verdict(
        &self,
        lock_path: &Path,
        seen: &Seen,
        probed: &Probed,
        opts: LockOptions,
        owner: &mut Option<LockOwner>,
    ) -> crate::judge::Verdict {
        let now_wall = self.platform.clock.wall_ms();
        let (held_by_us, ours_in_flight) = {
            let table = self.table.lock().unwrap();
            (table.held.contains_key(lock_path), table.in_flight(lock_path))
        };
        let verdict = judge(
            &JudgeInput {
                payload: probed.payload.as_ref(),
                holder: probed.holder,
                file_mtime_ms: (seen.mtime_ns / 1_000_000) as i64,
                now_wall_ms: now_wall,
                stale_ms: opts.stale_ms,
                orphan_grace_ms: opts.orphan_grace_ms(),
                held_by_us,
                ours_in_flight,
            },
            &*self.platform.processes,
        );
        *owner = lock_owner(probed.payload.as_ref(), verdict.alive, now_wall);
        verdict
    }

    /// Whether the lock on disk is still, byte for byte and inode, the one judged.
    async fn unchanged(&self, lock_path: &Path, seen: &Seen) -> Result<bool, LockError> {
        let now = read_snapshot(&*self.platform.fs, lock_path).await.map_err(io_at(lock_path))?;
        Ok(now.as_ref() == Some(seen))
    }

    /// Remove a lock judged removable, under the reclaim guard, only if it is still the one
    /// judged (a successor may have replaced it). `Wait` while another reclaimer has the guard.
    async fn reclaim(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
        guard: &mut Guard,
        seen: &Seen,
        reasons: &[StaleReason],
    ) -> Result<Step, LockError> {
        if mutant_on!(self, M7UnconditionalUnlink) {
            if !self.take_guard(guard).await? {
                return Ok(Step::Wait);
            }
            return self.unlink_judged(lock_path, seen, reasons).await;
        }
        // Our lock is made before the guard is taken: the guard is held only for the re-check,
        // the exchange and its verdict, so a stall in making it never blocks other reclaimers.
        let spare = self.make_spare(lock_path, opts).await?;
        // Every way out but the exchange drops the spare (its descriptor and its name).
        let step = match self.take_guard(guard).await {
            Ok(true) => match self.unchanged(lock_path, seen).await {
                Ok(true) => {
                    self.table.lock().unwrap().creating_add(lock_path);
                    let result = self.swap_in(acquire, lock_path, opts, (seen, reasons), &spare, guard).await;
                    self.table.lock().unwrap().creating_remove(lock_path);
                    if !matches!(result, Ok(Step::Done(_))) {
                        self.drop_guard(guard).await;
                    }
                    return result;
                }
                Ok(false) => Ok(Step::Retry),
                Err(e) => Err(e),
            },
            Ok(false) => Ok(Step::Wait),
            Err(e) => Err(e),
        };
        self.discard_spare(spare.fd, &spare.path).await;
        // No reclaim of what we judged goes on: the guard goes before the next pass, which may
        // publish into an emptied path and hold the lock. A crash there must not leave a guard
        // that blocks every reclaimer of our lock for the orphan grace (swarm seed 7244, I11).
        self.drop_guard(guard).await;
        step
    }

    /// Take the reclaim guard (`mkdir`); `false` when another reclaimer has it.
    async fn take_guard(&self, guard: &mut Guard) -> Result<bool, LockError> {
        if !guard.ours {
            match self.platform.fs.mkdir(&guard.path).await {
                Ok(()) => guard.ours = true,
                Err(e) if is_errno(&e, errno::EEXIST) => return Ok(false),
                Err(e) => return Err(io_at(&guard.path)(e)),
            }
        }
        Ok(true)
    }

    /// Our lock, made at a private name, ready to be published or exchanged in.
    async fn make_spare(&self, lock_path: &Path, opts: LockOptions) -> Result<Spare, LockError> {
        let fs = &self.platform.fs;
        let pid = self.platform.processes.own_pid();
        let mut path = spare_path(lock_path, pid, self.next_id());
        let mut names_tried = 1;
        let fd = loop {
            match fs.create_exclusive(&path, 0o600).await {
                // Left by an earlier life of our pid that died mid-reclaim: junk, ours to drop
                // (best effort: it may not go), and a fresh name serves us either way (seed
                // 249036: an unlink refused, and the retry's EEXIST failed the acquire).
                Err(e) if is_errno(&e, errno::EEXIST) && names_tried < MAX_SPARE_NAMES => {
                    let _ = fs.unlink(&path).await;
                    path = spare_path(lock_path, pid, self.next_id());
                    names_tried += 1;
                }
                created => break created.map_err(io_at(&path))?,
            }
        };
        let bytes = self.own_payload(opts);
        let made = match fs.write_fd(fd, &bytes).await {
            Ok(()) => fs.stat_fd(fd).await,
            Err(e) => Err(e),
        };
        match made {
            Ok(made) => Ok(Spare {
                path,
                fd,
                bytes,
                made,
            }),
            Err(e) => {
                self.discard_spare(fd, &path).await;
                Err(io_at(&path)(e))
            }
        }
    }

    /// The removal of SPEC §1 step 3, made safe against a reclaimer that stops between its
    /// re-check and its removal. A check made before a call cannot bound when the call lands:
    /// a reclaimer stopped (SIGSTOP, a slow disk) past the orphan grace has its guard recovered
    /// by another process, which reclaims the same dead lock and takes the lock — and the
    /// stopped one's unlink, checked before it stopped, then removes that live lock (swarm
    /// seed 484872; a guard removed by a slow recovery does the same, reclaim-race seed 355).
    /// POSIX has one removal conditional on what is removed: `RENAME_EXCHANGE` puts our own
    /// live lock, made at a private name, in place of whatever is at the path, in one step, and
    /// leaves what it replaced at the private name. We judge what we took, after the fact:
    /// the very lock we judged ⇒ it was dead, we hold the lock, and drop it at its private
    /// name. Anything else ⇒ exchange it straight back. While it was out, the path held our
    /// fresh lock, which every process judges live (ours: `creating`) and waits on, so nobody
    /// can have created, reclaimed or removed a lock there meanwhile; the displaced holder's
    /// own release in that window finds a file not its own and leaves it (it then stays as that
    /// process's orphan, which its next acquire reclaims). If the swap back fails, our lock
    /// stays at the path unheld, blocking others as a live lock would, an orphan our next
    /// acquire reclaims; the error surfaces. A filesystem that cannot exchange (EINVAL on
    /// NFS, ENOSYS, EPERM) gets `move_aside`.
    async fn swap_in(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
        (seen, reasons): (&Seen, &[StaleReason]),
        spare: &Spare,
        guard: &mut Guard,
    ) -> Result<Step, LockError> {
        let fs = &self.platform.fs;
        let (fd, made, bytes) = (spare.fd, spare.made, spare.bytes.clone());
        let whole = spare;
        let spare = &spare.path;
        if let Err(e) = fs.exchange(spare, lock_path).await {
            if refused(&e, &RENAME_FLAG_REFUSED) {
                return self.move_aside(acquire, lock_path, opts, (seen, reasons), whole, guard).await;
            }
            self.discard_spare(fd, spare).await;
            return if is_errno(&e, errno::ENOENT) {
                Ok(Step::Retry) // the judged lock vanished meanwhile
            } else {
                Err(io_at(lock_path)(e))
            };
        }
        // Judged by lstat, which needs no descriptor: we hold one for our lock already, and a
        // process at its fd limit must still be able to tell what it took.
        let taken = fs.lstat(spare).await;
        if matches!(&taken, Ok(taken) if seen.same_entry(taken)) {
            self.drop_judged(lock_path, spare, (seen, reasons), guard).await;
            return Ok(Step::Done(self.adopt(acquire, lock_path, fd, bytes, made, opts).await));
        }
        // Not what we judged (a successor's lock, a changed file), or we cannot tell (the
        // lstat failed: that error is the acquire's, SPEC §1 step 4): put it back.
        let step = |next: Step| taken.map(|_| next).map_err(io_at(spare));
        match fs.exchange(spare, lock_path).await {
            Ok(()) => {
                self.settle_returned(whole, lock_path).await;
                step(Step::Wait) // judged again after a poll
            }
            // Our lock was removed from the path while it stood in for what we took: by that
            // lock's holder, whose release checked its file before our exchange and unlinked
            // after it (swarm seeds 166848, 339676 of the reclaim window). What we took was
            // released, so it stays at our private name, never back on the path as a live
            // process's orphan; the path is free, and the acquire goes on.
            Err(e) if is_errno(&e, errno::ENOENT) => {
                let _ = fs.close(fd).await;
                step(Step::Retry)
            }
            Err(e) => {
                let _ = fs.close(fd).await;
                Err(io_at(lock_path)(e))
            }
        }
    }

    /// After the exchange back, our private name should hold our own lock again: drop it then.
    /// Anything else there came to the path after ours was removed from it (a waiter's lock,
    /// published in that moment): exchange once more, so the path is the newcomer's again and
    /// what we took returns to our private name. There it is junk — released by its holder,
    /// or lost to it the moment it left the path — and ours to drop (swarm seed 119336: left
    /// there, a live reclaimer's litter). When the `lstat` fails we
    /// cannot tell, and drop what is there as ours: a newcomer there needs two races at once,
    /// and our lock left behind would be litter in every failure of that `lstat` (seed 17081).
    async fn settle_returned(&self, ours: &Spare, lock_path: &Path) {
        let fs = &self.platform.fs;
        match fs.lstat(&ours.path).await {
            Ok(st) if (st.dev, st.ino) != (ours.made.dev, ours.made.ino) => {
                let _ = fs.close(ours.fd).await;
                if fs.exchange(&ours.path, lock_path).await.is_ok() {
                    let _ = fs.unlink(&ours.path).await;
                }
            }
            _ => self.discard_spare(ours.fd, &ours.path).await,
        }
    }

    /// The reclaim where the filesystem cannot exchange (NFS: EINVAL), as close to `swap_in` as
    /// `rename` and `link` come. The judged lock is moved aside to a private name of ours
    /// (`rename`: one step, and it keeps what it moved), our whole lock is put at the emptied
    /// path at once (`put_whole`), and then we judge what we moved: the very lock we judged ⇒ it
    /// was dead, drop it there; we hold the lock if ours went in. Anything else (a stopped
    /// reclaimer resumed after another took the lock: swarm seed 484872) ⇒ `rename` it back over
    /// our lock, which keeps the path held throughout, as the exchange back does. One window
    /// stays: between the move aside and our put, the path is empty, and a process that
    /// publishes there then is not refused; the lock we moved aside then stays at our private
    /// name, its holder displaced (it finds another lock at its path). With no link either, it
    /// is not put back: no call could do so without replacing what came meanwhile.
    async fn move_aside(
        &self,
        acquire: u64,
        lock_path: &Path,
        opts: LockOptions,
        (seen, reasons): (&Seen, &[StaleReason]),
        spare: &Spare,
        guard: &mut Guard,
    ) -> Result<Step, LockError> {
        let fs = &self.platform.fs;
        let aside = spare_path(lock_path, self.platform.processes.own_pid(), self.next_id());
        if let Err(e) = fs.rename(lock_path, &aside).await {
            self.discard_spare(spare.fd, &spare.path).await;
            return match is_errno(&e, errno::ENOENT) {
                true => Ok(Step::Retry), // the judged lock vanished meanwhile
                false => Err(io_at(lock_path)(e)),
            };
        }
        let put = self.put_whole(spare, lock_path).await;
        // Judged by lstat, which needs no descriptor (as in `swap_in`).
        let taken = fs.lstat(&aside).await;
        if matches!(&taken, Ok(taken) if seen.same_entry(taken)) {
            self.drop_judged(lock_path, &aside, (seen, reasons), guard).await;
            if let Ok(Put::Published) = put {
                let handle =
                    self.adopt(acquire, lock_path, spare.fd, spare.bytes.clone(), spare.made, opts).await;
                return Ok(Step::Done(handle));
            }
            self.discard_spare(spare.fd, &spare.path).await;
            return put.map(|_| Step::Retry).map_err(io_at(lock_path)); // someone was quicker, or no link
        }
        // Not what we judged, or we cannot tell: put it back.
        let back = match put {
            // Our lock is at the path: `rename` replaces only it, and the path stays held.
            Ok(Put::Published) => fs.rename(&aside, lock_path).await,
            // Neither `RENAME_NOREPLACE` nor `link`: nothing puts it back without replacing what
            // came to the emptied path meanwhile (a lock created in place there, swarm seed 1616
            // on a FUSE mount: I11). It stays aside; a holder it is live for finds its lock off
            // the path and loses it before its next write (I1 holds).
            Ok(Put::Refused) => Ok(()),
            Ok(Put::Exists) | Err(_) => match fs.link(&aside, lock_path).await {
                Ok(()) => {
                    let _ = fs.unlink(&aside).await; // a second name of a lock no one judges
                    Ok(())
                }
                Err(e) if is_errno(&e, errno::EEXIST) => Ok(()), // published meanwhile: it stays aside
                Err(e) => Err(e),
            },
        };
        self.discard_spare(spare.fd, &spare.path).await;
        match (back, taken) {
            (Ok(()), Ok(_)) => Ok(Step::Wait), // judged again after a poll
            (Ok(()), Err(e)) => Err(io_at(&aside)(e)),
            (Err(e), _) => Err(io_at(lock_path)(e)),
        }
    }

    /// The dead lock we judged, taken off the path to our private name `at`: the guard has done
    /// its work (a crash of ours from here on must not leave it to age out in everyone's way),
    /// and the lock is nobody else's to keep.
    async fn drop_judged(
        &self,
        lock_path: &Path,
        at: &Path,
        (seen, reasons): (&Seen, &[StaleReason]),
        guard: &mut Guard,
    ) {
        self.drop_guard(guard).await;
        let _ = self.platform.fs.unlink(at).await;
        self.platform.emit(LockEvent::Reclaimed {
            lock: lock_path,
            ino: seen.snapshot.ino,
            reasons,
        });
    }

    /// Unlink the judged lock (the mutant `m7` without a re-check).
    async fn unlink_judged(
        &self,
        lock_path: &Path,
        seen: &Seen,
        reasons: &[StaleReason],
    ) -> Result<Step, LockError> {
        match self.platform.fs.unlink(lock_path).await {
            Ok(()) => self.platform.emit(LockEvent::Reclaimed {
                lock: lock_path,
                ino: seen.snapshot.ino,
                reasons,
            }),
            Err(e) if is_errno(&e, errno::ENOENT) => {}
            Err(e) => return Err(io_at(lock_path)(e)),
        }
        // Retry: the create that follows drops the guard.
        Ok(Step::Retry)
    }

    /// Close and remove our lock at its private name (never taken, or given back).
    async fn discard_spare(&self, fd: Fd, spare: &Path) {
        let fs = &self.platform.fs;
        let _ = fs.close(fd).await;
        let _ = fs.unlink(spare).await;
    }

    /// The process table as the judge sees it (the `m14` mutant blinds it past an EPERM).
    fn judged_processes(&self) -> Arc<dyn crate::platform::Processes> {
        #[cfg(feature = "mutants")]
        if mutant_on!(self, M14EpermSkipsChecks) {
            return Arc::new(crate::mutant::EpermBlind(self.platform.processes.clone()));
        }
        self.platform.processes.clone()
    }

    /// Whether someone else's reclaim guard blocks us. A guard older than the orphan grace was
    /// left by a reclaimer that died: remove it, or every acquirer would wait forever.
    async fn guard_blocks(&self, guard: &Guard, opts: LockOptions) -> Result<bool, LockError> {
        let fs = &self.platform.fs;
        // The entry itself: anything at the guard path (a symlink too) blocks until it ages out.
        match fs.lstat(&guard.path).await {
            Ok(st) => {
                let age = self.platform.clock.wall_ms().saturating_sub((st.mtime_ns / 1_000_000) as i64);
                if age > opts.orphan_grace_ms() as i64 {
                    let removed = if st.is_dir {
                        fs.rmdir(&guard.path).await
                    } else {
                        fs.unlink(&guard.path).await // no reclaimer made it: not a directory
                    };
                    match removed {
                        Ok(()) => {
                            self.platform.emit(LockEvent::GuardRecovered { guard: &guard.path });
                            Ok(false)
                        }
                        Err(e) if is_errno(&e, errno::ENOENT) => Ok(false),
                        Err(e) => Err(io_at(&guard.path)(e)),
                    }
                } else {
                    Ok(true)
                }
            }
            Err(e) if is_errno(&e, errno::ENOENT) => Ok(false),
            Err(e) => Err(io_at(&guard.path)(e)),
        }
    }

    async fn wait_poll(
        &self,
        deadline: u64,
        opts: LockOptions,
        lock_path: &Path,
        owner: &Option<LockOwner>,
    ) -> Result<(), LockError> {
        let now = self.platform.clock.mono_ms();
        if now >= deadline {
            return Err(LockError::Timeout {
                timeout_ms: opts.timeout_ms,
                owner: *owner,
                lock_path: lock_path.to_owned(),
            });
        }
        self.platform.clock.sleep(POLL_MS.min(deadline - now)).await;
        Ok(())
    }

    async fn drop_guard(&self, guard: &mut Guard) {
        if guard.ours {
            guard.ours = false;
            // A guard we fail to remove ages out: others recover it after the orphan grace.
            let _ = self.platform.fs.rmdir(&guard.path).await;
        }
    }

    /// After the exclusive create in place: write the payload, stat, remember the snapshot. `None` when
    /// the file we created is no longer the one at the path: a process that stalled between
    /// create and payload write can find its payload-less file reclaimed and replaced.
    async fn finish_create(
        &self,
        acquire: u64,
        lock_path: &Path,
        fd: Fd,
        opts: LockOptions,
    ) -> Result<Option<LockHandle>, LockError> {
        let fs = &self.platform.fs;
        let bytes = self.own_payload(opts);
        let created = fs.stat_fd(fd).await;
        let written = match &created {
            Ok(_) => fs.write_fd(fd, &bytes).await,
            Err(e) => Err(crate::platform::os_error(e.raw_os_error().unwrap_or(errno::EIO))),
        };
        let stat = match written {
            Ok(()) => fs.stat(lock_path).await,
            Err(e) => Err(e),
        };
        let (created, stat) = match (created, stat) {
            (Ok(created), Ok(stat)) => (created, stat),
            (created, stat) => return self.abandon_create(lock_path, fd, created, stat).await,
        };
        if (stat.dev, stat.ino) != (created.dev, created.ino) {
            let _ = fs.close(fd).await;
            return Ok(None);
        }
        Ok(Some(self.adopt(acquire, lock_path, fd, bytes, stat, opts).await))
    }

    /// Our payload for a new lock.
    fn own_payload(&self, opts: LockOptions) -> Vec<u8> {
        let procs = &self.platform.processes;
        LockPayload::new(
            procs.own_pid(),
            self.platform.clock.wall_ms(),
            procs.own_starttime(),
            opts.max_hold_ms,
        )
        .to_bytes()
    }

    /// The lock file `stat` with our payload `bytes` is at `lock_path` (created or swapped in):
    /// make its handle and record it as held.
    async fn adopt(
        &self,
        acquire: u64,
        lock_path: &Path,
        fd: Fd,
        bytes: Vec<u8>,
        stat: crate::platform::FileStat,
        opts: LockOptions,
    ) -> LockHandle {
        let handle = LockHandle {
            inner: Arc::new(HandleInner {
                id: HandleId(self.next_id()),
                lock_path: lock_path.to_owned(),
                fd,
                snapshot: Snapshot {
                    bytes,
                    dev: stat.dev,
                    ino: stat.ino,
                },
                acquired_mono_ms: self.platform.clock.mono_ms(),
                max_hold_ms: opts.max_hold_ms,
                lost: AtomicBool::new(false),
                release: Mutex::new(ReleaseState::Open),
                released: Event::new(),
            }),
        };
        let previous = self.table.lock().unwrap().held.insert(lock_path.to_owned(), handle.clone());
        if let Some(previous) = previous {
            // Another acquire of ours lost its file and re-created it meanwhile: the older
            // handle is lost (its file is gone). A library never panics over it.
            if mutant_on!(self, M19ReacquireAfterRemovalPanics) {
                panic!("two handles of one process on {}", lock_path.display());
            }
            previous.inner.lost.store(true, Ordering::SeqCst);
            *previous.inner.release.lock().unwrap() = ReleaseState::Done(None);
            self.platform.emit(LockEvent::HandleLost {
                handle: previous.id(),
                lock: lock_path,
                held_ms: self.platform.clock.mono_ms().saturating_sub(previous.inner.acquired_mono_ms),
                cause: LossCause::Superseded,
            });
            // Its file is gone, nothing to unlink; its descriptor is still ours to close (a
            // leak here left a process at its fd limit unable to reclaim: swarm seed 182513).
            let _ = self.platform.fs.close(previous.inner.fd).await;
        }
        self.platform.emit(LockEvent::Acquired {
            acquire,
            handle: handle.id(),
            lock: lock_path,
            ino: stat.ino,
            max_hold_ms: opts.max_hold_ms,
        });
        handle
    }

    /// A create in place whose payload write or stat failed: close, and leave the payload-less
    /// file at the lock path, to age out as payload-less (SPEC §1.1's orphan grace) and be
    /// reclaimed by the next acquirer. Removing it takes a check (is it still ours?) and then an
    /// unlink, two steps no call joins on a filesystem without `link` or `renameat2`'s flags
    /// (the only one that creates in place): an unlink stalled between them removed the lock a
    /// reclaimer whose clock ran ahead had meanwhile taken from our file (swarm seed 218021, a
    /// FUSE mount: I11). ENOENT means our file vanished (reclaimed while we stalled before the
    /// payload): `None`, retried within the budget (SPEC §1); anything else is surfaced.
    async fn abandon_create(
        &self,
        lock_path: &Path,
        fd: Fd,
        created: io::Result<crate::platform::FileStat>,
        stat: io::Result<crate::platform::FileStat>,
    ) -> Result<Option<LockHandle>, LockError> {
        let _ = self.platform.fs.close(fd).await;
        let e = stat.err().or(created.err()).unwrap_or_else(|| crate::platform::os_error(errno::EIO));
        if is_errno(&e, errno::ENOENT) && !mutant_on!(self, M20VanishedCreateSurfaced) {
            return Ok(None);
        }
        Err(io_at(lock_path)(e))
    }

    /// Release a handle (SPEC §1.2): idempotent, a no-op for a stale handle, shared by
    /// concurrent callers, and the file is unlinked only if it is still the one we created.
    pub async fn release(&self, handle: &LockHandle) -> Result<(), LockError> {
        loop {
            let listener = {
                let mut state = handle.inner.release.lock().unwrap();
                match *state {
                    ReleaseState::Done(errno) => {
                        return errno
                            .map_or(Ok(()), |e| Err(io_at(handle.lock_path())(crate::platform::os_error(e))))
                    }
                    ReleaseState::Releasing => handle.inner.released.listen(),
                    ReleaseState::Open => {
                        let mut table = self.table.lock().unwrap();
                        let current = table.held.get(handle.lock_path()).map(|h| h.id());
                        if current != Some(handle.id()) {
                            *state = ReleaseState::Done(None);
                            return Ok(());
                        }
                        table.held.remove(handle.lock_path());
                        count_up(&mut table.releasing, handle.lock_path());
                        *state = ReleaseState::Releasing;
                        break;
                    }
                }
            };
            listener.await;
        }
        self.release_taken(handle, ReleaseBy::Owner).await.map_err(io_at(handle.lock_path()))
    }

    /// The release proper, once the handle has left the held map and is marked Releasing.
    async fn release_taken(&self, handle: &LockHandle, by: ReleaseBy) -> io::Result<()> {
        let fs = &self.platform.fs;
        let lock = handle.lock_path();
        self.platform.emit(LockEvent::ReleaseBegin {
            handle: handle.id(),
            lock,
            by,
        });
        // A failing close leaves nothing on disk; the unlink below is what matters.
        let _ = fs.close(handle.inner.fd).await;
        let result = self.unlink_if_unchanged(handle).await;
        let errno = result.as_ref().err().map(|e| e.raw_os_error().unwrap_or(errno::EIO));
        self.platform.emit(LockEvent::ReleaseEnd {
            handle: handle.id(),
            lock,
            unlinked: matches!(result, Ok(true)),
            errno,
        });
        count_down(&mut self.table.lock().unwrap().releasing, lock);
        *handle.inner.release.lock().unwrap() = ReleaseState::Done(errno);
        handle.inner.released.notify(usize::MAX);
        result.map(|_| ())
    }

    /// Unlink the lock file only if it is byte- and inode-identical to what we created.
    async fn unlink_if_unchanged(&self, handle: &LockHandle) -> io::Result<bool> {
        let fs = &self.platform.fs;
        let lock = handle.lock_path();
        if !mutant_on!(self, M7UnconditionalUnlink) {
            let Some(seen) = read_snapshot(&**fs, lock).await? else {
                return Ok(false);
            };
            if seen.snapshot != handle.inner.snapshot {
                return Ok(false); // a successor's lock: never ours to delete
            }
        }
        match fs.unlink(lock).await {
            Ok(()) => Ok(true),
            Err(e) if is_errno(&e, errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Start this process's watchdog: every `WATCHDOG_INTERVAL_MS`, force-release held locks
    /// past their maxHoldMs. It ends when the `ProcessLocks` is dropped.
    pub fn start_watchdog(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let clock = self.platform.clock.clone();
        let spawner = self.platform.spawner.clone();
        self.platform.spawner.spawn(
            "watchdog",
            Box::pin(async move {
                // Runs for the life of the process, like the production event-loop timer. Each
                // tick runs on its own: a release that hangs (an unlink on a dead server) must
                // not keep the next ticks from freeing other locks (swarm seed 454597). A hung
                // tick holds the lock table until its release returns; each handle is released
                // at most once, so at most one hung tick per handle.
                loop {
                    clock.sleep(WATCHDOG_INTERVAL_MS).await;
                    let Some(locks) = weak.upgrade() else { return };
                    spawner.spawn(
                        "watchdog tick",
                        Box::pin(async move {
                            locks.tick_watchdog().await;
                        }),
                    );
                }
            }),
        );
    }

    /// One watchdog tick by hand (tests and the simulator; feature `testing`); returns how many
    /// handles it force-released.
    #[cfg(feature = "testing")]
    pub async fn watchdog_tick(&self) -> usize {
        self.tick_watchdog().await
    }

    /// One watchdog tick; returns how many handles it force-released.
    async fn tick_watchdog(&self) -> usize {
        let now = self.platform.clock.mono_ms();
        let expired: Vec<LockHandle> = {
            let table = self.table.lock().unwrap();
            let mut expired: Vec<_> = table
                .held
                .values()
                .filter(|h| now.saturating_sub(h.inner.acquired_mono_ms) > h.inner.max_hold_ms)
                .cloned()
                .collect();
            expired.sort_by_key(|h| h.id());
            expired
        };
        // All at once: one failing or hanging release does not hold up the others.
        let losses = expired.iter().map(|handle| self.lose(handle, now, LossCause::Watchdog));
        futures::future::join_all(losses).await.into_iter().filter(Option::is_some).count()
    }

    /// Take `handle` away from its holder (the watchdog, or its file vanished from under it):
    /// out of the held map, marked lost, released (the unlink only if the file is still ours).
    /// `None` when it was no longer held.
    async fn lose(&self, handle: &LockHandle, now: u64, cause: LossCause) -> Option<io::Result<()>> {
        {
            let mut state = handle.inner.release.lock().unwrap();
            let mut table = self.table.lock().unwrap();
            let current = table.held.get(handle.lock_path()).map(|h| h.id());
            if *state != ReleaseState::Open || current != Some(handle.id()) {
                return None;
            }
            table.held.remove(handle.lock_path());
            count_up(&mut table.releasing, handle.lock_path());
            *state = ReleaseState::Releasing;
        }
        handle.inner.lost.store(true, Ordering::SeqCst);
        self.platform.emit(LockEvent::HandleLost {
            handle: handle.id(),
            lock: handle.lock_path(),
            held_ms: now.saturating_sub(handle.inner.acquired_mono_ms),
            cause,
        });
        Some(self.release_taken(handle, ReleaseBy::Lost(cause)).await)
    }

    /// Whether `handle`'s lock file is still the entry at its lock path (one `lstat`: same dev
    /// and inode; nothing there is `false`). A reclaimer's exchange that was never swapped back
    /// (it crashed between the two) leaves our lock at its private name and its own at the path,
    /// where the next process may reclaim it: checked before each transcript write (SPEC I1).
    pub(crate) async fn in_place(&self, handle: &LockHandle) -> io::Result<bool> {
        match self.platform.fs.lstat(handle.lock_path()).await {
            Ok(stat) => Ok((stat.dev, stat.ino) == (handle.inner.snapshot.dev, handle.inner.snapshot.ino)),
            Err(e) if is_errno(&e, errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A held lock found off its lock path: lost as the watchdog's are (the release
    /// unlinks nothing that is not ours).
    pub(crate) async fn lose_displaced(&self, handle: &LockHandle) {
        let _ = self.lose(handle, self.platform.clock.mono_ms(), LossCause::FileGone).await;
    }

    /// SPEC §1 step 5 for a path this process holds: `true` (wait) while the held file is
    /// on disk as we made it; once it is gone or replaced, the old handle is lost, as if the
    /// watchdog took it, and the acquire goes on (`false`).
    async fn still_held(&self, lock_path: &Path) -> Result<bool, LockError> {
        let held = self.table.lock().unwrap().held.get(lock_path).cloned();
        let Some(held) = held else { return Ok(false) };
        let on_disk = read_snapshot(&*self.platform.fs, lock_path).await.map_err(io_at(lock_path))?;
        if on_disk.is_some_and(|seen| seen.snapshot == held.inner.snapshot) {
            return Ok(true);
        }
        let _ = self.lose(&held, self.platform.clock.mono_ms(), LossCause::FileGone).await;
        Ok(false)
    }
}

impl Table {
    fn creating_add(&mut self, lock: &Path) {
        count_up(&mut self.creating, lock);
    }
    fn creating_remove(&mut self, lock: &Path) {
        count_down(&mut self.creating, lock);
    }
    fn in_flight(&self, lock: &Path) -> bool {
        self.creating.contains_key(lock) || self.releasing.contains_key(lock)
    }
}

fn count_up(counts: &mut HashMap<PathBuf, u32>, lock: &Path) {
    let n = counts.entry(lock.to_owned()).or_insert(0);
    *n = n.checked_add(1).expect("more concurrent operations on one lock than u32 counts");
}

fn count_down(counts: &mut HashMap<PathBuf, u32>, lock: &Path) {
    if let Some(n) = counts.get_mut(lock) {
        assert!(*n > 0, "a zero count is removed, never kept");
        *n -= 1;
        if *n == 0 {
            counts.remove(lock);
        }
    }
}

struct Guard {
    path: PathBuf,
    ours: bool,
}

/// Our own lock at its private name, before the rename that publishes it or the exchange.
struct Spare {
    path: PathBuf,
    fd: Fd,
    bytes: Vec<u8>,
    made: crate::platform::FileStat,
}

/// What giving our whole lock the lock path came to.
enum Put {
    /// It is at the lock path.
    Published,
    /// Something is at the lock path (EEXIST): not ours.
    Exists,
    /// The filesystem can neither rename without replacing nor link.
    Refused,
}

/// What one pass of the acquire loop ends in.
enum Step {
    Done(LockHandle),
    /// Loop again at once (the lock vanished, was reclaimed, or changed since judged).
    Retry,
    /// Wait one poll, then loop.
    Wait,
}

/// A private name beside the lock for the lock we publish or swap in: unique per process
/// (pid) and per use (`n` from the process's counter).
/// Private names one make_spare tries before it surfaces EEXIST: an earlier life of our pid
/// leaves at most the one it was using per crash.
const MAX_SPARE_NAMES: u32 = 16;

fn spare_path(lock: &Path, pid: u32, n: u64) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(format!(".{pid}-{n}.swap"));
    PathBuf::from(name)
}

/// How a filesystem refuses `renameat2`'s flags: EINVAL (NFS), ENOSYS, EPERM (a syscall filter).
const RENAME_FLAG_REFUSED: [i32; 3] = [errno::EINVAL, errno::ENOSYS, errno::EPERM];

/// Whether `e` carries one of `codes`.
fn refused(e: &io::Error, codes: &[i32]) -> bool {
    codes.iter().any(|&code| is_errno(e, code))
}

fn guard_path(lock: &Path) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(".reclaim");
    PathBuf::from(name)
}

/// A lock file as read: its bytes and identity, plus its mtime for the orphan grace.
#[derive(Debug)]
struct Seen {
    snapshot: Snapshot,
    mtime_ns: i128,
    size: u64,
}

impl Seen {
    /// Whether `stat` (taken with no descriptor, after a rename) is still the entry we read:
    /// same inode, size and content time. A lock file is written once; a late payload write or
    /// any rewrite moves its mtime (the ctime moves with the rename itself).
    fn same_entry(&self, stat: &crate::platform::FileStat) -> bool {
        (stat.dev, stat.ino, stat.size, stat.mtime_ns)
            == (self.snapshot.dev, self.snapshot.ino, self.size, self.mtime_ns)
    }
}

impl PartialEq for Seen {
    fn eq(&self, other: &Seen) -> bool {
        self.snapshot == other.snapshot
    }
}

/// A lock payload is a few dozen bytes: a lock file read stops past this many, and what is
/// longer is no payload (a 1 GiB file costs 64 KiB to judge, never a gigabyte).
pub const MAX_LOCK_FILE_BYTES: usize = 64 * 1024;

/// A lock as read, its payload parsed and the holder it names probed: what a verdict needs.
struct Probed {
    payload: Option<LockPayload>,
    holder: Option<crate::judge::HolderProbe>,
}

/// Read and stat the entry at a lock path (`Fs::read_entry`: capped, never blocking, a symlink
/// or FIFO there reads as a payload-less entry of its own); `None` when there is none (any more).
async fn read_snapshot(fs: &dyn crate::platform::Fs, lock: &Path) -> io::Result<Option<Seen>> {
    let read = match fs.read_entry(lock, MAX_LOCK_FILE_BYTES).await {
        Ok(read) => read,
        Err(e) if is_errno(&e, errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(Seen {
        snapshot: Snapshot {
            bytes: read.bytes,
            dev: read.stat.dev,
            ino: read.stat.ino,
        },
        mtime_ns: read.stat.mtime_ns,
        size: read.stat.size,
    }))
}

/// The transcript made absolute with its directory resolved through symlinks (SPEC §1): the
/// one name of a session for the lock file and the owner mutex.
pub async fn canonical_transcript(fs: &dyn crate::platform::Fs, target: &Path) -> io::Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "transcript path has no file name"))?;
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok(fs.canonical_dir(parent).await?.join(name))
}

/// The holder a payload names, with the probe's answer; `None` when it names no pid.
fn lock_owner(payload: Option<&LockPayload>, alive: Option<bool>, now_wall_ms: i64) -> Option<LockOwner> {
    let pid = payload.and_then(|p| p.pid)?;
    let age_ms = payload
        .and_then(LockPayload::created_wall_ms)
        .map(|c| u64::try_from(now_wall_ms.saturating_sub(c).max(0)).unwrap_or(0));
    Some(LockOwner {
        pid,
        alive: alive.unwrap_or(false),
        age_ms,
    })
}
