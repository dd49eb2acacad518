//! The simulated world of one seed: the disk, the process table, the fault plan, and the
//! oracle, trace and counters every actor reports to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use heldlock_core::event::{ControllerId, LockEvent, LossCause, Refusal};
use heldlock_core::file_lock::{MAX_LOCK_FILE_BYTES, ORPHAN_GRACE_MS};
use heldlock_core::memfs::MemFs;
use heldlock_core::memprocs::ProcessTable;
use heldlock_core::payload::LockPayload;
use heldlock_core::platform::errno::{EIO, EISDIR};
use heldlock_core::platform::{Observer, Platform, Processes};
use heldlock_core::Mutant;

use crate::actors::RecoveryAim;
use crate::clock::{now_ns, SimClock, SimSpawner, WatchdogOf};
use crate::coverage::Coverage;
use crate::faults::{Decision, FaultKind, FaultPlan, PathClass};
use crate::litter::{Litter, Owed};
use crate::oracle::{ExternalChange, ExternalEdit, Oracle, ProcFacts};
use crate::profile::Profile;
use crate::simfs::{SimFs, Writer};
use crate::simprocs::SimProcs;
use crate::trace::{describe, Trace, TraceMode, Who};
use crate::wallclock::WallClocks;
use crate::witness::{PlantedLive, StaleFailure, Witness};

/// Wall-clock time at simulated time zero: 2026-01-01T00:00:00Z.
pub const EPOCH_WALL_MS: i64 = 1_767_225_600_000;
/// Where the session transcripts live, and a symlink to it.
pub const SESSION_DIR: &str = "/srv/sessions";
pub const ALIAS_DIR: &str = "/srv/alias";

/// What the world knows of one simulated process.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub name: String,
    /// Bumped on every (re)start of a pid: events of an older incarnation are ignored.
    pub incarnation: u32,
    pub facts: ProcFacts,
}

struct Observed {
    oracle: Oracle,
    witness: Witness,
    litter: Litter,
    trace: Trace,
    coverage: Coverage,
    events: u64,
    procs: BTreeMap<u32, ProcInfo>,
    facts: BTreeMap<u32, ProcFacts>,
    /// (pid, guard path) ⇒ the mtime its last `lstat` of that reclaim guard read, and when.
    guards_seen: BTreeMap<(u32, PathBuf), (i128, u64)>,
    /// Set at quiescence: tasks dropped with the runtime afterwards report nothing.
    finished: bool,
    /// Per violation found so far: how many trace lines were recorded when it was found.
    violation_lines: Vec<usize>,
}

impl Observed {
    /// Stamp newly found violations with the trace's length: a report's excerpt ends there.
    fn stamp_violations(&mut self) {
        let found = self.oracle.violations.len();
        while self.violation_lines.len() < found {
            self.violation_lines.push(self.trace.len());
        }
    }
}

pub struct World {
    pub seed: u64,
    pub scenario: String,
    pub profile: Profile,
    pub mutant: Option<Mutant>,
    pub disk: MemFs,
    pub table: Arc<ProcessTable>,
    pub faults: FaultPlan,
    /// Each process's wall clock.
    pub clocks: WallClocks,
    /// One `Processes` port per process incarnation, shared by every platform of it: the
    /// core keys a process's one lock state by that port (SPEC §1.1, ownership is
    /// process-wide), as the real adapter's process-wide port does.
    process_ports: Mutex<BTreeMap<(u32, u32), Arc<dyn Processes>>>,
    /// Set once, by the liveness phase: faults off, hangs ended, pauses lifted.
    healed: std::sync::atomic::AtomicBool,
    heal_event: event_listener::Event,
    /// Where the error-recovery tamperer aims (`actors::recovery_tamperer`).
    pub aim: RecoveryAim,
    /// Edits aimed into gateways' transcript calls (`racing`).
    pub racing: crate::racing::RacingEdits,
    /// Removals aimed into gateways' releases (`lock_races`).
    pub lock_races: crate::lock_races::LockRaces,
    /// Numbers the gateways' transcript entries: each write is unique on disk.
    entries: std::sync::atomic::AtomicU64,
    /// Fixed for the run: lets the per-op trace notes skip the lock when the trace is off.
    trace_mode: TraceMode,
    observed: Mutex<Observed>,
}

impl World {
    pub fn new(
        seed: u64,
        scenario: &str,
        profile: Profile,
        faults: FaultPlan,
        mutant: Option<Mutant>,
        trace: TraceMode,
    ) -> Arc<World> {
        let disk = MemFs::new(Arc::new(|| EPOCH_WALL_MS as i128 * 1_000_000 + now_ns() as i128));
        let racing = crate::racing::RacingEdits::new(seed, profile.racing_edits);
        let lock_races = crate::lock_races::LockRaces::new(seed, profile.lock_races);
        Arc::new(World {
            seed,
            scenario: scenario.to_owned(),
            profile,
            mutant,
            disk,
            table: ProcessTable::new(),
            faults,
            clocks: WallClocks::default(),
            process_ports: Mutex::new(BTreeMap::new()),
            healed: std::sync::atomic::AtomicBool::new(false),
            heal_event: event_listener::Event::new(),
            aim: RecoveryAim::default(),
            racing,
            lock_races,
            entries: std::sync::atomic::AtomicU64::new(0),
            trace_mode: trace,
            observed: Mutex::new(Observed {
                oracle: Oracle::default(),
                witness: Witness::default(),
                litter: Litter::default(),
                trace: Trace::new(trace),
                coverage: Coverage::default(),
                events: 0,
                procs: BTreeMap::new(),
                facts: BTreeMap::new(),
                guards_seen: BTreeMap::new(),
                finished: false,
                violation_lines: Vec::new(),
            }),
        })
    }

    /// The transcript of session `i`, through the alias directory or not.
    pub fn session_path(&self, i: u32, alias: bool) -> PathBuf {
        let dir = if alias { ALIAS_DIR } else { SESSION_DIR };
        Path::new(dir).join(format!("s{i}.jsonl"))
    }

    /// The platform process `pid` runs the lock on.
    pub fn platform_for(self: &Arc<Self>, pid: u32) -> Platform {
        self.platform_of_table(pid, 0)
    }

    /// The platform of a plugin in process `pid`: its writes are usage lines; it shares the
    /// process's `Processes` port, so `ProcessLocks::new` over it finds the process's live
    /// lock state (the gateway's) instead of making a second table.
    pub fn platform_for_plugin(self: &Arc<Self>, pid: u32) -> Platform {
        self.platform_of_table(pid, 1)
    }

    fn platform_of_table(self: &Arc<Self>, pid: u32, table: u32) -> Platform {
        let incarnation = self.observed.lock().unwrap().procs.get(&pid).map_or(0, |p| p.incarnation);
        let writer = if table == 0 {
            Writer::Gateway
        } else {
            Writer::Plugin
        };
        Platform {
            fs: Arc::new(SimFs::new(self.clone(), self.disk.view(pid, self.profile.fd_limit), writer)),
            clock: Arc::new(SimClock {
                world: self.clone(),
                pid,
            }),
            processes: self
                .process_ports
                .lock()
                .unwrap()
                .entry((pid, incarnation))
                .or_insert_with(|| Arc::new(SimProcs::new(self, pid)))
                .clone(),
            spawner: Arc::new(SimSpawner {
                table: WatchdogOf { pid, table },
            }),
            observer: Arc::new(SimObserver {
                world: self.clone(),
                pid,
                incarnation,
                table,
            }),
        }
    }

    /// The transcript `path` names, with its directory resolved as the disk does now.
    pub fn canonical_transcript(&self, path: &Path) -> PathBuf {
        let view = self.disk.view(0, usize::MAX);
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => view.canonical_dir_now(dir).map_or(path.to_owned(), |d| d.join(name)),
            _ => path.to_owned(),
        }
    }

    /// Judge something `pid` was told only while it lives and the run is not over: a dead
    /// process's late returns and the final drain judge nothing.
    fn while_alive(&self, pid: u32, f: impl FnOnce(&mut Observed)) {
        self.with(|o| {
            if o.procs.get(&pid).is_some_and(|p| p.facts.alive) && !o.finished {
                f(o);
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut Observed) -> T) -> T {
        let mut observed = self.observed.lock().unwrap();
        let result = f(&mut observed);
        observed.stamp_violations();
        result
    }

    /// A process (re)starts under `pid`.
    pub fn process_started(&self, pid: u32, name: String, starttime: Option<u64>) {
        self.with(|o| {
            let incarnation = o.procs.get(&pid).map_or(1, |p| p.incarnation + 1);
            let offset = self.clocks.start(self.seed, pid, incarnation, self.profile.clock_skew_ms);
            o.oracle.set_wall_offset(pid, offset);
            let facts = ProcFacts {
                alive: true,
                starttime,
                ..ProcFacts::default()
            };
            o.procs.insert(
                pid,
                ProcInfo {
                    name: name.clone(),
                    incarnation,
                    facts,
                },
            );
            o.facts.insert(pid, facts);
            o.witness.pid_changed(pid, now_ns());
            o.trace.record(now_ns(), Who::Process(pid), || {
                format!("process {name} starts (starttime {starttime:?}, wall clock {offset:+} ms)")
            });
        });
    }

    fn update_facts(o: &mut Observed, pid: u32, f: impl FnOnce(&mut ProcFacts)) {
        if let Some(p) = o.procs.get_mut(&pid) {
            f(&mut p.facts);
            o.facts.insert(pid, p.facts);
        }
    }

    pub fn process_crashed(&self, pid: u32, how: &str) {
        self.with(|o| {
            let now = now_ns();
            Self::update_facts(o, pid, |f| {
                f.alive = false;
                f.died_ns = Some(now);
            });
            o.oracle.process_died(pid, now);
            o.witness.process_died(pid);
            o.litter.process_died(pid);
            o.witness.pid_changed(pid, now);
            o.trace.record(now, Who::Process(pid), || format!("process crashes ({how})"));
        });
    }

    /// A crashed process left as a zombie is reaped: its pid is free.
    pub fn process_reaped(&self, pid: u32) {
        self.with(|o| {
            let now = now_ns();
            o.witness.pid_changed(pid, now);
            o.trace.record(now, Who::Process(pid), || "zombie reaped".into());
        });
    }

    pub fn process_paused(&self, pid: u32) {
        self.with(|o| {
            let now = now_ns();
            Self::update_facts(o, pid, |f| f.paused_since_ns = Some(now));
            o.trace.record(now, Who::Process(pid), || "event loop wedged (paused)".into());
        });
    }

    pub fn process_resumed(&self, pid: u32) {
        self.with(|o| {
            let now = now_ns();
            Self::update_facts(o, pid, |f| {
                f.paused_since_ns = None;
                f.last_resume_ns = Some(now);
            });
            o.trace.record(now, Who::Process(pid), || "event loop resumed".into());
        });
    }

    /// A gateway holding a lock at least `waiters` other processes wait for, if any.
    pub fn contended_holder(&self, waiters: usize) -> Option<u32> {
        self.with(|o| o.oracle.contended_holder(waiters, &o.facts))
    }

    /// The gateways alive now (foreign processes have no name starting with `gw`).
    pub fn live_gateways(&self) -> Vec<u32> {
        self.with(|o| {
            o.procs
                .iter()
                .filter(|(_, p)| p.facts.alive && p.name.starts_with("gw"))
                .map(|(pid, _)| *pid)
                .collect()
        })
    }

    pub fn is_alive(&self, pid: u32) -> bool {
        self.with(|o| o.facts.get(&pid).is_some_and(|f| f.alive))
    }

    /// The next gateway entry number.
    pub fn next_entry(&self) -> u64 {
        self.entries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// A workload line in the trace.
    pub fn note(&self, pid: u32, text: impl FnOnce() -> String) {
        if self.trace_mode == TraceMode::Off {
            return;
        }
        self.with(|o| o.trace.record(now_ns(), Who::Process(pid), text));
    }

    fn lock_event(&self, pid: u32, incarnation: u32, ev: &LockEvent<'_>) {
        // A destructor (an owner guard) run while a panic unwinds the runtime has no clock left.
        if madsim::time::TimeHandle::try_current().is_none() {
            return;
        }
        let canonical = |p: &Path| self.canonical_transcript(p);
        let mut guard = self.observed.lock().unwrap();
        let o = &mut *guard;
        // A dropped task of a crashed incarnation may still run destructors: not an event.
        let current = o.procs.get(&pid).is_some_and(|p| p.incarnation == incarnation && p.facts.alive);
        if !current || o.finished {
            return;
        }
        let now = now_ns();
        o.events += 1;
        o.coverage.note(ev);
        o.trace.record(now, Who::Process(pid), || describe(ev));
        // When a failing acquire began (the witness forgets it on the failure).
        let began = match ev {
            LockEvent::AcquireFailed { acquire, .. } => o.witness.acquire_began(pid, *acquire),
            _ => None,
        };
        o.oracle.on_lock_event(pid, now, ev, &o.facts);
        o.witness.on_lock_event(pid, now, ev, canonical);
        self.judge_by_world(o, pid, (began, now), ev);
        o.stamp_violations();
    }

    /// A StaleError, judged by the disk, the process table and the acquirer's own clock (witness).
    fn judge_stale_failure(
        &self,
        o: &mut Observed,
        pid: u32,
        (began, now): (Option<u64>, u64),
        acquire: u64,
        lock: &Path,
    ) {
        // The verdict read the acquirer's clock at some instant after the acquire began and
        // the file there was written (server time = simulated time).
        let view = self.disk.view(0, usize::MAX);
        let written = view
            .lstat_now(lock)
            .ok()
            .map_or(0, |st| (st.mtime_ns - EPOCH_WALL_MS as i128 * 1_000_000).clamp(0, now as i128) as u64);
        let since = began.unwrap_or(0).max(written);
        let on_disk = self.disk.ino_of(lock).zip(self.disk.contents(lock));
        let holder = on_disk.as_ref().and_then(|(_, bytes)| LockPayload::parse(bytes)).and_then(|p| {
            let pid = p.pid?;
            Some((pid, crate::oracle::holder_gone(pid, p.starttime, &self.table)))
        });
        let failure = StaleFailure {
            acquire,
            lock,
            on_disk,
            holder,
            wall_ms: self.clocks.highest_wall_ms(pid, since, now),
            stale_ms: heldlock_core::file_lock::LockOptions::default().stale_ms,
        };
        o.witness.stale_failure(pid, now, &failure, &mut o.oracle.violations);
    }

    /// The checks of a lock event that need the world's own facts (the disk, the process table,
    /// the clocks) beside the oracle's records; `began`: when a failing acquire began.
    fn judge_by_world(
        &self,
        o: &mut Observed,
        pid: u32,
        (began, now): (Option<u64>, u64),
        ev: &LockEvent<'_>,
    ) {
        if let LockEvent::AcquireFailed {
            acquire,
            lock,
            refusal: Refusal::Stale(_),
            ..
        } = ev
        {
            self.judge_stale_failure(o, pid, (began, now), *acquire, lock);
        }
        if let LockEvent::HandleLost {
            handle,
            lock,
            cause: LossCause::FileGone,
            ..
        } = ev
        {
            // The core says the file is gone: the disk says what stands at the path.
            o.oracle.check_file_gone_loss(pid, now, *handle, self.disk.ino_of(lock));
        }
        if let LockEvent::WriteBegin {
            ctl,
            handle: Some(handle),
            ..
        } = ev
        {
            // What stands at the writer's lock path as its write starts, by the disk.
            let at_path = o.oracle.lock_of(pid, *handle).and_then(|lock: PathBuf| self.disk.ino_of(&lock));
            o.oracle.check_write_off_path(pid, now, *ctl, *handle, at_path);
        }
        if let LockEvent::ControllerCreated { ctl, transcript } = ev {
            // Judge fence changes on the transcript itself, whichever path the gateway used.
            let view = self.disk.view(pid, usize::MAX);
            if let (Some(dir), Some(name)) = (transcript.parent(), transcript.file_name()) {
                if let Ok(dir) = view.canonical_dir_now(dir) {
                    o.oracle.set_transcript(pid, *ctl, dir.join(name));
                }
            }
        }
        match ev {
            LockEvent::OwnerAcquired { session, attempt } => {
                o.oracle.owner_acquired(pid, now, &self.canonical_transcript(session), *attempt)
            }
            LockEvent::OwnerReleased { session, attempt } => {
                o.oracle.owner_released(pid, &self.canonical_transcript(session), *attempt)
            }
            _ => {}
        }
        if let LockEvent::AcquireFailed {
            lock,
            refusal: Refusal::Timeout,
            ..
        } = ev
        {
            // A reclaim guard the waiter's own wall clock still sees as fresh blocks by SPEC (a
            // clock stepped back sees a crashed reclaimer's guard as young): no recovery owed.
            let guard = crate::oracle::LockSight {
                file: None,
                guard_age_ms: self.guard_age_by(pid, lock, now),
            };
            let guarded = crate::oracle::blocks(&guard, pid, ORPHAN_GRACE_MS, &self.table);
            // An acquire answered at its budget while one of its own fs calls hangs (the core
            // races the hang against the budget) could not recover anything: excused, as I12 is,
            // only while the hang lasts.
            let hung = o.facts.get(&pid).is_some_and(|f| f.hung_ops > 0);
            // A budget spent while the acquirer's event loop was paused recovered nothing by
            // SPEC (one budget, wall time): excused, as I12 is (swarm seed 345604).
            let paused = o.facts.get(&pid).is_some_and(|f| !f.ran_freely_since(began.unwrap_or(0)));
            if !guarded && !hung && !paused {
                let on_disk = self.disk.ino_of(lock).zip(self.disk.contents(lock));
                o.oracle.check_recoverable(pid, now, lock, on_disk, &self.table);
            }
        }
    }

    /// The chaos window is over: no more faults, stalls or latency; every hung op and hung
    /// stream ends; from now on the oracle bounds how long until every session is live (I16).
    pub fn heal(&self) {
        self.faults.heal();
        self.healed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.heal_event.notify(usize::MAX);
        self.with(|o| {
            o.oracle.healed(now_ns());
            o.trace
                .record(now_ns(), Who::External, || "the world heals: faults off, hangs end".into());
        });
    }

    pub fn is_healed(&self) -> bool {
        self.healed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Park until the world heals (a hung op, a hung stream); forever if it never does.
    pub async fn until_healed(&self) {
        // Bounded: one pass per notification, and the healing notifies once.
        loop {
            if self.is_healed() {
                return;
            }
            let listener = self.heal_event.listen();
            if self.is_healed() {
                return;
            }
            listener.await;
        }
    }

    /// A hung fs op of `pid` ended (the healing).
    pub fn hang_ended(&self, pid: u32) {
        self.with(|o| {
            let now = now_ns();
            Self::update_facts(o, pid, |f| {
                f.hung_ops = f.hung_ops.saturating_sub(1);
                f.last_unhung_ns = Some(now);
            });
        });
    }

    /// A fresh turn locked and wrote `session` after the healing (I16).
    pub fn session_proven(&self, session: &Path) {
        let path = self.canonical_transcript(session);
        self.with(|o| o.oracle.session_proven(&path));
    }

    /// Proven live since the healing: no more probing needed.
    pub fn is_proven(&self, session: &Path) -> bool {
        let path = self.canonical_transcript(session);
        self.with(|o| !o.oracle.unproven_sessions().contains(&path))
    }

    /// Kept locked by SPEC itself for now (a lock no one may reclaim): a probe would only wait
    /// out its budget. Only for now — an outside actor may still remove that lock.
    pub fn is_kept_locked(&self, session: &Path) -> bool {
        self.spec_keeps_locked(&self.canonical_transcript(session))
    }

    /// Every session settled, and no lock held by anyone.
    pub fn settled(&self) -> bool {
        let unproven = self.with(|o| o.oracle.unproven_sessions());
        unproven.iter().all(|s| self.spec_keeps_locked(s)) && self.with(|o| !o.oracle.holds_any(&o.facts))
    }

    /// Whether the lock file of `transcript` names a pid SPEC §1.1 cannot reclaim (I16 excuse).
    fn spec_keeps_locked(&self, transcript: &Path) -> bool {
        self.disk
            .contents(&crate::actors::lock_path_of(transcript))
            .is_some_and(|bytes| crate::oracle::unrecoverable_by_spec(&bytes, &self.table))
    }

    pub fn is_paused(&self, pid: u32) -> bool {
        self.with(|o| o.facts.get(&pid).is_some_and(|f| f.paused_since_ns.is_some()))
    }

    /// An fs op of `pid` stalls `ms` (latency, a slow op).
    pub fn fs_stalled(&self, pid: u32, ms: u64) {
        self.with(|o| Self::update_facts(o, pid, |f| f.stalled_ms += ms));
    }

    /// An fs op drew a fault.
    pub fn fs_fault(&self, pid: u32, decision: &Decision, kind: FaultKind, path: &Path) {
        if self.profile.recovery_tampering > 0 && decision.site.class == PathClass::Transcript {
            self.aim.arm(self.canonical_transcript(path));
        }
        self.with(|o| {
            o.events += 1;
            o.coverage.note_fault(decision.site);
            let now = now_ns();
            Self::update_facts(o, pid, |f| f.last_error_ns = Some(now));
            // A hung fs op fails with EIO once it ends; a hung probe answers, no errno.
            if decision.site.op != crate::faults::FsOp::Probe {
                o.oracle.error_struck(pid, kind.errno().unwrap_or(EIO), now);
            }
            if let Some(code) = kind.errno() {
                if decision.site.op.propagated_by_acquire() {
                    o.oracle.propagated_call_failed(pid, path, code);
                } else if decision.site.op.on_acquires_descriptor() {
                    o.oracle.descriptor_call_failed(pid, code);
                }
            }
            if kind == FaultKind::Hang {
                Self::update_facts(o, pid, |f| f.hung_ops += 1);
            }
            o.trace.record(now_ns(), Who::Process(pid), || {
                format!("fault {} #{} on {}: {}", decision.site, decision.occurrence, path.display(), kind)
            });
        });
    }

    /// `pid` issued a `rename` that moves the lock at `lock` off its path (a reclaim's move
    /// aside, where the filesystem cannot exchange).
    pub fn moved_aside(&self, pid: u32, lock: &Path, aside: &Path) {
        self.with(|o| o.oracle.moved_aside(pid, lock, aside));
    }

    /// The world injected `errno` into `pid`'s `link` or `rename` from private name `from`
    /// to a lock path: a reclaimer's put back of what it moved aside, if `from` is that name.
    pub fn put_back_failed(&self, pid: u32, from: &Path, errno: i32) {
        self.with(|o| o.oracle.put_back_failed(pid, from, errno));
    }

    pub fn lock_created(&self, pid: u32, ino: u64) {
        self.with(|o| {
            o.events += 1;
            o.oracle.lock_created(pid, now_ns(), ino);
        });
    }

    /// An fs op of `pid` failed for real (not injected): EMFILE from its fd limit, … —
    /// EEXIST and ENOENT are answers the lock handles, not faults.
    pub fn fs_error(&self, pid: u32, errno: Option<i32>) {
        use heldlock_core::platform::errno::{EEXIST, ENOENT};
        if matches!(errno, Some(EEXIST) | Some(ENOENT)) {
            return;
        }
        self.with(|o| {
            let now = now_ns();
            Self::update_facts(o, pid, |f| f.last_error_ns = Some(now));
            if let Some(code) = errno {
                o.oracle.error_struck(pid, code, now);
            }
        });
    }

    /// I15's sampling: for each acquire under way, does what stands at its lock block it?
    fn sample_acquires(&self, o: &mut Observed) {
        let now = now_ns();
        let view = self.disk.view(0, usize::MAX);
        for (pid, acquire, lock, timeout_ms) in o.oracle.acquires_in_flight() {
            // Ages as the waiter judges them: by its own wall clock.
            let wall_ms = |mtime_ns: i128| self.age_by(pid, now, mtime_ns);
            // A paused or hung waiter is excused anyway: no need to look at its lock.
            if o.facts.get(&pid).is_none_or(|f| f.hung_ops > 0 || f.paused_since_ns.is_some()) {
                o.oracle.sample_acquire(now, pid, acquire, true, &o.facts);
                continue;
            }
            // The entry as the lock reads it (`read_entry`): a symlink is a payload-less entry
            // aging by its own mtime; a directory is EISDIR, which the lock can neither judge nor
            // remove, so it blocks by SPEC.
            let entry = view.read_entry_now(&lock, MAX_LOCK_FILE_BYTES);
            let directory = entry.as_ref().is_err_and(|e| e.raw_os_error() == Some(EISDIR));
            let file = entry.ok().map(|e| (e.bytes, wall_ms(e.stat.mtime_ns)));
            let guard_age_ms = self.guard_age_by(pid, &lock, now);
            let sight = crate::oracle::LockSight { file, guard_age_ms };
            // What the disk alone does not show also blocks by SPEC: the waiter's process holding
            // the path (its file removed or replaced behind its back).
            let blocked = directory
                || o.oracle.process_holds_path(pid, &lock)
                || crate::oracle::blocks(&sight, pid, crate::oracle::grace_for(timeout_ms), &self.table);
            o.oracle.sample_acquire(now, pid, acquire, blocked, &o.facts);
        }
    }

    /// A reclaimer's exchange at a lock path: `arrived` is there now, `left` went to its
    /// private name (moved, not removed).
    pub fn lock_exchanged(&self, pid: u32, arrived: Option<u64>, left: Option<u64>) {
        self.with(|o| {
            o.events += 1;
            o.oracle.lock_exchanged(pid, now_ns(), arrived, left);
        });
    }

    /// The age (ms) of an entry with mtime `mtime_ns` by `pid`'s own wall clock at `now`.
    fn age_by(&self, pid: u32, now: u64, mtime_ns: i128) -> u64 {
        let own_now_ns =
            EPOCH_WALL_MS as i128 * 1_000_000 + now as i128 + self.clocks.offset(pid) as i128 * 1_000_000;
        ((own_now_ns - mtime_ns).max(0) / 1_000_000) as u64
    }

    /// The age of `lock`'s reclaim guard by `pid`'s own wall clock, if one stands.
    fn guard_age_by(&self, pid: u32, lock: &Path, now: u64) -> Option<u64> {
        let mut guard = lock.as_os_str().to_owned();
        guard.push(".reclaim");
        let view = self.disk.view(0, usize::MAX);
        view.lstat_now(Path::new(&guard)).ok().map(|st| self.age_by(pid, now, st.mtime_ns))
    }

    /// `pid`'s `lstat` of a reclaim guard read its mtime (what a recovery of it is judged by).
    pub fn guard_seen(&self, pid: u32, guard: &Path, mtime_ns: i128) {
        let now = now_ns();
        self.with(|o| o.guards_seen.insert((pid, guard.to_owned()), (mtime_ns, now)));
    }

    /// `pid` removed a reclaim guard (`rmdir`): its lock is unguarded from now. A recovery is
    /// judged by the guard `pid` last saw (its `lstat`, the lock's verdict): its age by `pid`'s
    /// own clock at the highest reading since then (a step back lowers only what it reads now).
    pub fn guard_removed(&self, pid: u32, guard: &Path) {
        let lock = lock_of_guard(guard);
        let now = now_ns();
        self.with(|o| {
            let max_age_ms = o.guards_seen.get(&(pid, guard.to_owned())).map(|&(mtime_ns, seen_ns)| {
                let highest = self.clocks.highest_wall_ms(pid, seen_ns, now) as i128;
                (highest - mtime_ns / 1_000_000).max(0) as u64
            });
            o.oracle.guard_removed(pid, &lock, now, max_age_ms)
        });
    }

    pub fn lock_unlinked(&self, pid: u32, lock: &Path, ino: u64) {
        self.aim.lock_gone();
        self.with(|o| {
            o.events += 1;
            // Read before the oracle marks the inode gone.
            let aside = o.oracle.aside_of(ino);
            o.oracle.lock_unlinked(pid, now_ns(), lock, ino, &o.facts);
            o.witness.lock_unlinked(pid, now_ns(), (lock, ino, aside), &mut o.oracle.violations);
        });
    }

    /// A failing append of `pid` put `prefix` of its entry in the transcript first.
    pub fn transcript_torn(&self, pid: u32, path: &Path, prefix: &[u8]) {
        self.with(|o| {
            o.events += 1;
            o.trace.record(now_ns(), Who::Process(pid), || {
                format!("torn append: {} of its bytes reached {}", prefix.len(), path.display())
            });
            o.oracle.transcript_changed(path, now_ns());
            o.oracle.transcript_torn(path, prefix);
        });
    }

    /// A plugin of `pid` appended usage lines to a transcript: benign, like an external one.
    pub fn plugin_appended(&self, pid: u32, path: &Path, data: &[u8]) {
        self.with(|o| {
            o.events += 1;
            o.trace.record(now_ns(), Who::Process(pid), || {
                format!("plugin appends usage to {}", path.display())
            });
            o.oracle.transcript_changed(path, now_ns());
            o.oracle.external_change(path, ExternalChange::BenignAppend);
            o.oracle.external_edit(path, ExternalEdit::Append(data.to_vec()));
        });
    }

    /// Whether a gateway's write call on `path` (canonical) carried `bytes`.
    pub fn gateway_wrote(&self, path: &Path, bytes: &[u8]) -> bool {
        self.with(|o| o.oracle.gateway_wrote(path, bytes))
    }

    /// Whether anything (a file, a directory, a symlink) stands at `path`.
    pub fn entry_at(&self, path: &Path) -> bool {
        self.disk.view(0, usize::MAX).lstat_now(path).is_ok()
    }

    /// Whether `path` is a symlink to nothing (a planted foreign lock entry).
    pub fn dangling_symlink_at(&self, path: &Path) -> bool {
        let view = self.disk.view(0, usize::MAX);
        view.lstat_now(path).is_ok() && view.stat_now(path).is_err()
    }

    /// A process unlinked a dangling symlink at a lock path.
    pub fn dangling_removed(&self, pid: u32, path: &Path) {
        self.note(pid, || format!("removes the dangling symlink at {}", path.display()));
    }

    /// The watchdog of `who` is about to sleep until its next tick.
    pub fn watchdog_ticked(&self, who: WatchdogOf) {
        self.with(|o| o.witness.watchdog_ticked(who, now_ns()));
    }

    /// Step `pid`'s wall clock by `delta_ms` (the clock-step actor).
    pub fn step_clock(&self, pid: u32, delta_ms: i64) {
        let offset = self.clocks.step(pid, delta_ms, now_ns());
        self.with(|o| {
            o.oracle.set_wall_offset(pid, offset);
            o.trace.record(now_ns(), Who::Process(pid), || {
                format!("wall clock steps by {delta_ms} ms (offset now {offset} ms)")
            });
        });
    }

    /// `pid` took the reclaim guard `path`: it owes its removal (litter).
    pub fn guard_made(&self, pid: u32, path: &Path) {
        self.with(|o| {
            let now = now_ns();
            o.witness.guard_made(pid, now);
            o.oracle.guard_made(pid, &lock_of_guard(path));
            o.litter.made(pid, path, Owed::Guard, now, o.facts.get(&pid));
        });
    }

    /// `pid` swapped a lock out of a lock path to its private name `path` (`Fs::exchange`): it
    /// owes its removal, or the exchange that puts it back (litter).
    pub fn swapped_out(&self, pid: u32, path: &Path) {
        self.with(|o| o.litter.made(pid, path, Owed::SwappedOut, now_ns(), o.facts.get(&pid)));
    }

    /// `pid` issued a call that removes or moves `path` away (litter's debts are paid by it).
    pub fn removal_issued(&self, pid: u32, path: &Path) {
        self.with(|o| o.litter.issued(pid, path));
    }

    /// A line in the trace from the external actors.
    pub fn external_note(&self, text: impl FnOnce() -> String) {
        if self.trace_mode == TraceMode::Off {
            return;
        }
        self.with(|o| o.trace.record(now_ns(), Who::External, text));
    }

    /// A transcript a live controller has released under a fence, if any.
    pub fn released_transcript(&self) -> Option<PathBuf> {
        self.with(|o| o.witness.released_transcript())
    }

    /// Whether a live gateway holds lock inode `ino` now.
    pub fn holds_inode(&self, ino: u64) -> bool {
        self.with(|o| o.oracle.holds_inode(ino, &o.facts))
    }

    /// Whether lock inode `ino` was made by process `pid` in its current life.
    pub fn is_lock_of(&self, ino: u64, pid: u32) -> bool {
        self.with(|o| o.oracle.is_lock_of(ino, pid))
    }

    /// Whether lock inode `ino` was made by a gateway (or copied from one's) that has died since.
    pub fn is_dead_gateway_lock(&self, ino: u64) -> bool {
        self.with(|o| o.oracle.is_dead_gateway_lock(ino))
    }

    /// An external actor removed (or replaced) the held lock inode `ino` at `lock`.
    pub fn lock_tampered(&self, lock: &Path, ino: u64) {
        self.with(|o| {
            o.events += 1;
            o.trace.record(now_ns(), Who::External, || {
                format!("external removes the held lock {}", lock.display())
            });
            o.oracle.lock_tampered(ino);
        });
    }

    /// An outside actor made lock file `ino` at a lock path (planted, or a copy put back).
    pub fn lock_placed_outside(&self, ino: u64, by: crate::oracle::PlacedBy) {
        self.with(|o| o.oracle.lock_placed_outside(now_ns(), ino, by));
    }

    /// A foreign live holder planted its lock file (inode `ino`).
    pub fn planted_live(&self, ino: u64, planted: PlantedLive) {
        self.with(|o| o.witness.planted_live(ino, planted));
    }

    pub fn planted_gone(&self, ino: u64) {
        self.with(|o| o.witness.planted_gone(ino));
    }

    /// A locked operation of `ctl` (a write scope, a reacquire) returned `result`.
    pub fn locked_op_returned(
        &self,
        pid: u32,
        (ctl, transcript): (ControllerId, &Path),
        began: u64,
        result: &Result<(), heldlock_core::ControllerError>,
        poisoned_now: bool,
    ) {
        // Only an error is judged by it: no disk lookup on the common Ok.
        let absent = result.is_err() && !self.entry_at(transcript);
        self.with(|o| {
            let Some(facts) = o.procs.get(&pid).map(|p| p.facts).filter(|f| f.alive && !o.finished) else {
                return;
            };
            let now = now_ns();
            let returned = (result, poisoned_now);
            o.witness.locked_op_returned(pid, (now, began), ctl, returned, &mut o.oracle.violations);
            match result {
                Ok(()) => o.oracle.locked_op_ok(pid, now, ctl),
                Err(heldlock_core::ControllerError::Disposed) => {
                    o.oracle.check_disposed_refusal(pid, now, ctl)
                }
                Err(e) => {
                    let facts = (facts.last_error_ns, absent);
                    o.oracle.check_locked_op_error(pid, (began, now), transcript, e, facts)
                }
            }
        });
    }

    /// The inode at `transcript`'s lock path, by the disk.
    fn ino_at_lock(&self, transcript: &Path) -> Option<u64> {
        let lock = crate::actors::lock_path_of(transcript);
        self.disk.view(0, usize::MAX).lstat_now(&lock).ok().map(|s| s.ino)
    }

    /// The inode of the lock `ctl` holds in `held` now, or (`cleanup`) of the one its cleanup
    /// took over from `held`: another controller of the process may hold the lock file at the
    /// path meanwhile (a late teardown, an overlapping attempt), so the disk alone cannot say.
    pub fn ctl_lock_ino(&self, pid: u32, ctl: ControllerId, cleanup: bool) -> Option<u64> {
        self.with(|o| o.oracle.ctl_lock_ino(pid, ctl, cleanup))
    }

    /// A release the workload asked for (`what`) returned Ok; `before`: the inode of the
    /// controller's own lock when it called (`ctl_lock_ino`), judged on the disk now (I3).
    pub fn release_returned_ok(
        &self,
        pid: u32,
        ctl: ControllerId,
        transcript: &Path,
        before: Option<u64>,
        what: &str,
    ) {
        let Some(ino) = before else {
            return;
        };
        let still_there = self.ino_at_lock(transcript) == Some(ino);
        self.while_alive(pid, |o| o.oracle.release_reported_ok(pid, now_ns(), ctl, ino, still_there, what));
    }

    /// A cleanup append of `ctl` returned `result`: a lock-lost refusal while the cleanup's own
    /// lock file (`ino`, from `ctl_lock_ino`) is still at the lock path is judged (I15).
    pub fn cleanup_write_returned(
        &self,
        pid: u32,
        ctl: ControllerId,
        transcript: &Path,
        ino: Option<u64>,
        result: &Result<(), heldlock_core::ControllerError>,
    ) {
        let Some(ino) = ino.filter(|_| matches!(result, Err(heldlock_core::ControllerError::LockLost)))
        else {
            return;
        };
        if self.ino_at_lock(transcript) == Some(ino) {
            self.while_alive(pid, |o| o.oracle.check_lock_lost_refusal(pid, now_ns(), ctl, ino));
        }
    }

    /// `acquire_for_cleanup` of `ctl`, called at `began`, returned `error` (I15).
    pub fn cleanup_refused(
        &self,
        pid: u32,
        ctl: ControllerId,
        transcript: &Path,
        began: u64,
        error: &heldlock_core::ControllerError,
    ) {
        self.while_alive(pid, |o| {
            let last_error_ns = o.procs.get(&pid).and_then(|p| p.facts.last_error_ns);
            o.oracle
                .check_cleanup_refusal(pid, (began, now_ns()), ctl, transcript, error, last_error_ns);
        });
    }

    /// A reacquire of `ctl` that SPEC §3 made a no-op when it was called at `began` returned
    /// (I6, I4).
    pub fn noop_reacquire_returned(
        &self,
        pid: u32,
        ctl: (ControllerId, crate::oracle::NoopReacquire),
        transcript: &Path,
        began: u64,
    ) {
        // Whose it is, the oracle's handle records say (a handle of `ctl` taken since `began`).
        let on_disk = self.ino_at_lock(transcript);
        self.while_alive(pid, |o| o.oracle.noop_reacquire_returned(pid, now_ns(), ctl, began, on_disk));
    }

    /// The workload is about to call `acquire_for_cleanup` on `ctl`.
    pub fn cleanup_asked(&self, pid: u32, ctl: ControllerId) {
        self.with(|o| o.oracle.cleanup_asked(pid, ctl));
    }

    /// Whether the workload has called `acquire_for_cleanup` on `ctl`.
    pub fn was_cleanup_asked(&self, pid: u32, ctl: ControllerId) -> bool {
        self.with(|o| o.oracle.was_cleanup_asked(pid, ctl))
    }

    /// A write scope of `ctl` returned Ok and the turn asked for no release (no abort, no
    /// prompt release, no dispose, no cleanup): SPEC §3 keeps `held` — only a poisoned
    /// controller lets go of it at a scope's exit — so the lock file on disk is still this
    /// process's (I6). An external actor's tampering with the lock excuses it.
    pub fn expect_retained(&self, pid: u32, (ctl, transcript): (ControllerId, &Path), poisoned_now: bool) {
        let lock = crate::actors::lock_path_of(transcript);
        let holder = self.disk.contents(&lock).and_then(|b| LockPayload::parse(&b)).and_then(|p| p.pid);
        if poisoned_now || holder == Some(pid) {
            return;
        }
        self.while_alive(pid, |o| {
            o.oracle.check_retained(pid, now_ns(), ctl, &lock, holder);
        });
    }

    /// A cleanup append on a cleanup lock that is not a no-op returned `result`.
    pub fn cleanup_appended(
        &self,
        pid: u32,
        ctl: ControllerId,
        result: &Result<(), heldlock_core::ControllerError>,
    ) {
        self.while_alive(pid, |o| {
            o.witness.cleanup_appended(pid, now_ns(), ctl, result, &mut o.oracle.violations);
        });
    }

    pub fn transcript_appended(&self, pid: u32, path: &Path) {
        self.with(|o| {
            o.events += 1;
            o.oracle.transcript_changed(path, now_ns());
            o.oracle.transcript_appended(pid, path);
        });
    }

    /// Process `pid` calls a transcript write of `bytes` on `transcript` (canonical;
    /// `declined`: its lock told it beforehand that nothing will be written); the id for
    /// `write_returned`.
    pub fn write_called(&self, pid: u32, transcript: &Path, bytes: &[u8], declined: bool) -> usize {
        self.with(|o| o.oracle.write_called(pid, transcript, bytes, declined))
    }

    /// The write call `id` returned Ok (`ok`) or an error to its caller.
    pub fn write_returned(&self, id: usize, ok: bool) {
        self.with(|o| {
            if !o.finished {
                o.oracle.write_returned(id, ok);
            }
        });
    }

    /// The cleanup lock of `ctl` came back a no-op.
    pub fn cleanup_declined(&self, pid: u32, ctl: ControllerId) {
        self.with(|o| o.oracle.cleanup_declined(pid, now_ns(), ctl));
    }

    pub fn transcript_created(&self, path: &Path, content: &[u8]) {
        self.with(|o| o.oracle.transcript_created(path, content));
    }

    /// An external actor changed a transcript; `edit`: what it wrote, by its own record.
    pub fn external_change(&self, path: &Path, change: ExternalChange, edit: Option<ExternalEdit>) {
        self.with(|o| {
            if change == ExternalChange::Delete {
                o.witness.transcript_deleted(path);
            }
            o.events += 1;
            o.trace.record(now_ns(), Who::External, || {
                format!("external {} of {}", change.name(), path.display())
            });
            o.oracle.transcript_changed(path, now_ns());
            o.oracle.external_change(path, change);
            if let Some(edit) = edit {
                o.oracle.external_edit(path, edit);
            }
        });
    }

    /// An owner-mutex wait of `pid` returned `result` (witness: I12 owner timeout, I5 abort).
    pub fn owner_wait_returned(
        &self,
        pid: u32,
        wait: &crate::witness::OwnerWait,
        result: &Result<heldlock_core::OwnerGuard, heldlock_core::OwnerError>,
    ) {
        self.while_alive(pid, |o| {
            let facts = o.facts.get(&pid).copied().unwrap_or_default();
            o.witness
                .owner_wait_returned(pid, now_ns(), wait, result, &facts, &mut o.oracle.violations);
        });
    }

    /// The fs stalls `pid` has sat through so far (ms).
    pub fn stalled_ms(&self, pid: u32) -> u64 {
        self.with(|o| o.facts.get(&pid).map_or(0, |f| f.stalled_ms))
    }

    /// The workload let go of its owner guard of `session`, by `release` or by dropping it.
    pub fn owner_let_go(&self, pid: u32, session: &Path) {
        let session = self.canonical_transcript(session);
        self.with(|o| o.witness.owner_let_go(pid, now_ns(), &session));
    }

    /// The workload called `what` on a write scope of `ctl`: when the scope ends, the
    /// controller must hold nothing (SPEC §3: the call defers to the scope's end).
    pub fn asked_in_scope(&self, pid: u32, ctl: ControllerId, what: crate::workload::InScope) {
        self.with(|o| o.oracle.asked_in_scope(pid, ctl, what == crate::workload::InScope::Dispose));
    }

    /// The workload entered a write-scope body of `ctl`; the guard tells when it left (returned
    /// or was dropped).
    pub fn scope_body(self: &Arc<Self>, pid: u32, ctl: ControllerId) -> ScopeBody {
        self.with(|o| o.oracle.scope_body(pid, ctl, true));
        ScopeBody {
            world: self.clone(),
            pid,
            ctl,
        }
    }

    /// The workload is about to call `dispose` on `ctl` from outside any scope.
    pub fn dispose_asked(&self, pid: u32, ctl: ControllerId) {
        self.with(|o| o.oracle.dispose_asked(pid, ctl));
    }

    /// `dispose` of `ctl` returned to the workload (outside any scope): it holds nothing (I4).
    pub fn dispose_returned(&self, pid: u32, ctl: ControllerId) {
        self.while_alive(pid, |o| {
            o.oracle.dispose_returned(pid, now_ns(), ctl);
        });
    }

    /// `release_for_prompt` of `ctl` returned Ok to the workload, outside any scope: it holds
    /// nothing (I3), whatever the core reported. `let_go`: the caller held the lock when it
    /// called and no abort came meanwhile, so a fence is owed (SPEC §3).
    pub fn prompt_release_returned(&self, pid: u32, ctl: ControllerId, let_go: bool) {
        self.while_alive(pid, |o| {
            o.oracle.on_prompt_released(pid, now_ns(), ctl);
            if let_go {
                o.oracle.fence_owed_by_release(pid, ctl);
            }
        });
    }

    pub fn turn_ended(&self, pid: u32, ctl: ControllerId) {
        self.with(|o| o.oracle.turn_ended(pid, now_ns(), ctl));
    }

    /// The periodic time-driven checks.
    pub fn tick(&self) {
        self.with(|o| {
            let now = now_ns();
            o.oracle.check_time(now, &o.facts);
            o.witness.check_time(now, &o.facts, &mut o.oracle.violations);
            o.litter.check_time(now, &o.facts, &mut o.oracle.violations);
            self.sample_acquires(o);
            self.check_liveness(o);
        });
    }

    /// I16, excusing a session whose lock file SPEC §1.1 itself keeps locked.
    fn check_liveness(&self, o: &mut Observed) {
        o.oracle.check_liveness(now_ns(), |s| self.spec_keeps_locked(s));
    }

    pub fn violated(&self) -> bool {
        self.with(|o| !o.oracle.violations.is_empty())
    }

    /// Quiescence: the final checks, then everything the run produced.
    pub fn finish(&self) -> crate::report::SeedReport {
        let disk = self.disk.clone();
        self.with(|o| {
            o.finished = true;
            let now = now_ns();
            o.oracle.final_check(now, &o.facts, |p| disk.contents(p));
            self.check_liveness(o);
            o.stamp_violations();
            let mut faults = BTreeMap::new();
            for ((_, kind), n) in self.faults.fired() {
                *faults.entry(kind.name()).or_insert(0) += n;
            }
            crate::report::SeedReport {
                seed: self.seed,
                scenario: self.scenario.clone(),
                profile: self.profile.summary(),
                violations: std::mem::take(&mut o.oracle.violations),
                violation_lines: std::mem::take(&mut o.violation_lines),
                events: o.events,
                faults,
                coverage: o.coverage.clone(),
                sim_ns: now,
                actors: o.procs.iter().map(|(pid, p)| format!("p{pid}={}", p.name)).collect(),
                trace: o.trace.take(),
                fired: self.faults.fired_log(),
            }
        })
    }
}

/// The oracle's and the trace's eyes inside one process.
struct SimObserver {
    world: Arc<World>,
    pid: u32,
    incarnation: u32,
    /// 0: the gateway's lock table; 1: a plugin's, whose ids are moved apart.
    table: u32,
}

impl Observer for SimObserver {
    fn on_event(&self, event: &LockEvent<'_>) {
        if self.table == 0 {
            self.world.lock_event(self.pid, self.incarnation, event);
        } else {
            self.world.lock_event(self.pid, self.incarnation, &crate::plugin::remap(event));
        }
    }
}

/// A write-scope body of the workload, running until dropped (SPEC I6's "retained use active",
/// from the caller's side).
pub struct ScopeBody {
    world: Arc<World>,
    pid: u32,
    ctl: ControllerId,
}

impl Drop for ScopeBody {
    fn drop(&mut self) {
        self.world.with(|o| o.oracle.scope_body(self.pid, self.ctl, false));
    }
}

/// The lock path a reclaim guard (`<lock>.reclaim`) guards.
fn lock_of_guard(guard: &Path) -> PathBuf {
    let guard = guard.to_string_lossy();
    PathBuf::from(guard.strip_suffix(".reclaim").unwrap_or(&guard))
}
