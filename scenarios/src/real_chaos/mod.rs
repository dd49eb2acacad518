//! `heldlock real`: the real lock under real chaos. N contender processes (this binary, run as
//! `heldlock real --contender …`) share a few sessions on the real filesystem through the real
//! adapter, half of them through a symlinked directory; a chaos loop SIGKILLs holders,
//! SIGSTOPs and SIGCONTs them, deletes and replaces lock files and transcripts from outside,
//! and fills contenders' fd tables. Then the chaos stops and every session must be written
//! again within the lock's bound. An independent witness (`witness`) judges exclusion,
//! exactly-once writes and recovery; the lock's own events are only counted.

pub mod chaos;
pub mod contender;
pub mod witness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use heldlock_core::file_lock::WATCHDOG_INTERVAL_MS;
use heldlock_core::{LockOptions, Mutant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use chaos::{ChaosCounts, Fleet};
use witness::Witness;

/// The contenders' lock options: short, so the bounds are seconds. The acquire timeout is
/// below 30 s, so the orphan grace is 5 s.
pub const LOCK_OPTIONS: LockOptions = LockOptions {
    timeout_ms: 2_000,
    stale_ms: 1_800_000,
    max_hold_ms: 5_000,
};

/// SPEC I16's bound on recovery once the chaos stops: acquire timeout + maxHoldMs + two
/// watchdog intervals.
pub const RECOVERY_BOUND_MS: u64 =
    LOCK_OPTIONS.timeout_ms + LOCK_OPTIONS.max_hold_ms + 2 * WATCHDOG_INTERVAL_MS;

/// How long the contenders get to finish their round and exit once told to stop.
const STOP_GRACE: Duration = Duration::from_secs(30);

#[derive(Args, Debug)]
pub struct RealArgs {
    /// Contender processes.
    #[arg(long, default_value_t = 6)]
    pub processes: usize,
    /// Seconds of chaos (recovery and shutdown come on top).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Sessions the contenders share.
    #[arg(long, default_value_t = 3)]
    pub sessions: usize,
    /// Seed of the chaos loop's choices (the processes' timing is the machine's).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Switch a historical bug on in every contender (see `heldlock list`): the witness must
    /// then catch it.
    #[arg(long)]
    pub mutant: Option<String>,
    /// Internal: run as contender WORKER (spawned by the run itself).
    #[arg(long, hide = true)]
    pub contender: Option<String>,
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub via_alias: bool,
}

/// Where everything of a run lives.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
    pub sessions: PathBuf,
    /// A symlink to `sessions`.
    pub alias: PathBuf,
    pub witness: PathBuf,
    pub graveyard: PathBuf,
    pub control: PathBuf,
    pub stop: PathBuf,
    pub sessions_count: usize,
}

impl Layout {
    pub fn new(root: &Path, sessions_count: usize) -> Layout {
        Layout {
            root: root.to_owned(),
            sessions: root.join("sessions"),
            alias: root.join("alias"),
            witness: root.join("witness.log"),
            graveyard: root.join("graveyard"),
            control: root.join("control"),
            stop: root.join("control").join("stop"),
            sessions_count,
        }
    }

    pub fn transcript(&self, session: usize) -> PathBuf {
        self.sessions.join(format!("s{session}.jsonl"))
    }

    pub fn lock(&self, session: usize) -> PathBuf {
        self.sessions.join(format!("s{session}.jsonl.lock"))
    }

    fn create(&self) -> std::io::Result<()> {
        for dir in [&self.sessions, &self.graveyard, &self.control] {
            std::fs::create_dir_all(dir)?;
        }
        std::os::unix::fs::symlink(&self.sessions, &self.alias)
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct RealReport {
    pub processes: usize,
    pub chaos_seconds: u64,
    pub rounds: u64,
    pub acks: u64,
    /// Failed transcript appends by errno.
    pub write_failures: std::collections::BTreeMap<String, u64>,
    pub release_failures: u64,
    pub refusals: std::collections::BTreeMap<String, u64>,
    pub reclaims: u64,
    pub watchdog_takeovers: u64,
    pub chaos: ChaosCounts,
    /// Per session: ms from the end of the chaos to its first acknowledged write.
    pub recovery_ms: std::collections::BTreeMap<String, Option<i64>>,
    pub violations: Vec<String>,
}

impl RealReport {
    pub fn max_recovery_ms(&self) -> Option<i64> {
        self.recovery_ms.values().map(|v| v.unwrap_or(i64::MAX)).max()
    }

    pub fn text(&self) -> String {
        let c = &self.chaos;
        let refusals: Vec<String> = self.refusals.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let failed_writes: Vec<String> =
            self.write_failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let recovery: Vec<String> = self
            .recovery_ms
            .iter()
            .map(|(s, v)| format!("{s} {}", v.map_or("never".into(), |ms| format!("{ms} ms"))))
            .collect();
        let mut out = format!(
            "heldlock real — {} contenders, {} s of chaos, {} sessions\n\
             \x20 rounds            {} critical sections, {} acknowledged writes, failed writes: {}, {} failed releases\n\
             \x20 refusals          {}\n\
             \x20 chaos             {} SIGKILLs, {} SIGSTOPs, {} lock deletes, {} lock replaces, {} transcript deletes, {} transcript replaces, {} fd squeezes\n\
             \x20 lock (counted)    {} reclaims, {} watchdog takeovers\n\
             \x20 recovery          {} (bound {} ms)\n",
            self.processes,
            self.chaos_seconds,
            self.recovery_ms.len(),
            self.rounds,
            self.acks,
            if failed_writes.is_empty() { "none".into() } else { failed_writes.join(", ") },
            self.release_failures,
            if refusals.is_empty() { "none".into() } else { refusals.join(", ") },
            c.kills,
            c.stops,
            c.lock_deletes,
            c.lock_replaces,
            c.transcript_deletes,
            c.transcript_replaces,
            c.squeezes,
            self.reclaims,
            self.watchdog_takeovers,
            recovery.join(", "),
            RECOVERY_BOUND_MS,
        );
        if self.violations.is_empty() {
            out += "  verdict           exclusion, exactly-once and recovery held\n";
        } else {
            out += &format!("  verdict           {} violation(s)\n", self.violations.len());
            for v in self.violations.iter().take(20) {
                out += &format!("    {v}\n");
            }
        }
        out
    }
}

/// `heldlock real`. `Ok(true)`: every check held; `Ok(false)`: a violation; `Err`: bad input or
/// an environment that cannot run it (exit 2).
pub fn cli(args: RealArgs) -> Result<bool, String> {
    let mutant = args.mutant.as_deref().map(str::parse::<Mutant>).transpose()?;
    if let Some(worker) = &args.contender {
        let root = args.root.as_deref().ok_or("--contender needs --root")?;
        contender::run(root, worker, args.sessions, args.via_alias, mutant)?;
        return Ok(true);
    }
    if !(2..=64).contains(&args.processes) {
        return Err(format!("--processes {}: expected 2 to 64", args.processes));
    }
    if !(1..=3_600).contains(&args.seconds) {
        return Err(format!("--seconds {}: expected 1 to 3600", args.seconds));
    }
    if !(1..=16).contains(&args.sessions) {
        return Err(format!("--sessions {}: expected 1 to 16", args.sessions));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let plan = Plan {
        processes: args.processes,
        seconds: args.seconds,
        sessions: args.sessions,
        seed: args.seed,
        mutant,
    };
    let report = run(&exe, &plan)?;
    crate::print_quietly(&report.text());
    Ok(report.violations.is_empty())
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub processes: usize,
    pub seconds: u64,
    pub sessions: usize,
    pub seed: u64,
    pub mutant: Option<Mutant>,
}

/// Run the chaos with `plan.processes` contenders of `exe` for `plan.seconds`, then recover,
/// stop and judge. The work happens in a temp directory that is removed afterwards.
pub fn run(exe: &Path, plan: &Plan) -> Result<RealReport, String> {
    let Plan {
        processes,
        seconds,
        sessions,
        seed,
        mutant,
    } = *plan;
    let tmp = tempfile::Builder::new()
        .prefix("heldlock-real")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let root = std::fs::canonicalize(tmp.path()).map_err(|e| format!("temp dir: {e}"))?;
    let layout = Layout::new(&root, sessions);
    layout.create().map_err(|e| format!("cannot lay out {}: {e}", root.display()))?;
    let witness = Witness::open(&layout.witness).map_err(|e| format!("witness: {e}"))?;
    let mut fleet = Fleet::new(exe, &layout, mutant);
    let mut report = RealReport {
        processes,
        chaos_seconds: seconds,
        ..RealReport::default()
    };
    for i in 0..processes {
        fleet.spawn(i)?;
    }
    let result = drive(&mut fleet, &layout, &witness, seconds, seed, &mut report);
    // Whatever happened: nobody stays stopped, everyone is told to stop, stragglers are killed.
    fleet.resume_due(true);
    let _ = std::fs::write(&layout.stop, b"");
    let stopped = stop_all(&mut fleet);
    result?;
    if !stopped {
        report
            .violations
            .push(format!("a contender did not stop within {STOP_GRACE:?} of being told to"));
    }
    judge(&layout, &fleet, &mut report)?;
    Ok(report)
}

/// The chaos window, then the recovery phase (chaos off; wait until every session has been
/// written again, or the bound).
fn drive(
    fleet: &mut Fleet,
    layout: &Layout,
    witness: &Witness,
    seconds: u64,
    seed: u64,
    report: &mut RealReport,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(heldlock_sim::seed::mix(seed));
    let mut dead_pid = u32::MAX;
    // Let the contenders start before the first act.
    std::thread::sleep(Duration::from_millis(300));
    let chaos_end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < chaos_end {
        fleet.resume_due(false);
        fleet.reap_exited()?;
        chaos::act(fleet, layout, witness, &mut rng, &mut report.chaos, &mut dead_pid)?;
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..300)));
    }
    fleet.resume_due(true);
    for i in 0..fleet.slots.len() {
        let _ = std::fs::remove_file(layout.control.join(format!("squeeze-{}", fleet.slots[i].worker)));
    }
    witness.line("CHAOS end").map_err(|e| format!("witness: {e}"))?;
    let started = Instant::now();
    let names: Vec<String> = (0..layout.sessions_count).map(|s| format!("s{s}")).collect();
    while started.elapsed() < Duration::from_millis(RECOVERY_BOUND_MS) {
        fleet.reap_exited()?;
        let text = std::fs::read_to_string(&layout.witness).map_err(|e| format!("witness: {e}"))?;
        let lines = witness::parse(&text)?;
        if witness::recovery_ms(&lines, &names).values().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Wait for every contender to exit (they finish their round after the stop file); kill the
/// ones that do not within `STOP_GRACE`. Returns whether all stopped by themselves.
fn stop_all(fleet: &mut Fleet) -> bool {
    let deadline = Instant::now() + STOP_GRACE;
    let mut all = true;
    for slot in &mut fleet.slots {
        loop {
            match slot.child.try_wait() {
                Ok(Some(status)) => {
                    fleet.exits.push((slot.worker.clone(), status));
                    break;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    all = false;
                    let _ = slot.child.kill();
                    let _ = slot.child.wait();
                    break;
                }
            }
        }
    }
    all
}

/// Read the witness and the files and judge: exclusion, exactly-once, recovery, clean exits,
/// nothing left behind.
fn judge(layout: &Layout, fleet: &Fleet, report: &mut RealReport) -> Result<(), String> {
    let text = std::fs::read_to_string(&layout.witness).map_err(|e| format!("witness: {e}"))?;
    let lines = witness::parse(&text)?;
    for line in &lines {
        match line.kind.as_str() {
            "ENTER" => report.rounds += 1,
            "ACK" => report.acks += 1,
            "WFAIL" => {
                let errno = line.fields.get(3).and_then(|e| e.parse().ok()).unwrap_or(-1);
                *report.write_failures.entry(crate::parity::fs_diff::errno_name(errno)).or_default() += 1;
            }
            "RELFAIL" => report.release_failures += 1,
            "RECLAIM" => report.reclaims += 1,
            "LOST" => report.watchdog_takeovers += 1,
            "REFUSED" => {
                let kind = line.fields.get(2).cloned().unwrap_or_default();
                *report.refusals.entry(kind).or_default() += 1;
            }
            _ => {}
        }
    }
    report.violations.extend(witness::check_exclusion(&lines));
    let files = chaos::session_files(layout)?;
    report.violations.extend(witness::check_writes(&lines, &files));
    let names: Vec<String> = (0..layout.sessions_count).map(|s| format!("s{s}")).collect();
    report.recovery_ms = witness::recovery_ms(&lines, &names);
    for (session, ms) in &report.recovery_ms {
        match ms {
            Some(ms) if *ms as u64 <= RECOVERY_BOUND_MS => {}
            Some(ms) => {
                report.violations.push(format!("{session} written again only {ms} ms after the chaos"))
            }
            None => report.violations.push(format!("{session} never written again after the chaos")),
        }
    }
    for (worker, status) in &fleet.exits {
        if !status.success() {
            report.violations.push(format!("contender {worker} ended with {status}"));
        }
    }
    for session in 0..layout.sessions_count {
        let lock = layout.lock(session);
        let guard = PathBuf::from(format!("{}.reclaim", lock.display()));
        // Named with what is there, so a failure says whose it is.
        for left in [&lock, &guard] {
            if let Ok(bytes) = std::fs::read(left) {
                let name = left.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                report.violations.push(format!(
                    "s{session}: {name} is left after every contender stopped: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ));
            } else if left.symlink_metadata().is_ok() {
                report.violations.push(format!("s{session}: {} is left (unreadable)", left.display()));
            }
        }
    }
    Ok(())
}
