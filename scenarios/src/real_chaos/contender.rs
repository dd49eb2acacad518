//! One contender process of the real chaos run (`heldlock real --contender …`, spawned by the
//! run itself): on the real platform, round after round, take the file lock of a random
//! session, append `<worker> <round>` to its transcript through the real adapter, release —
//! telling the witness what it did at each step. It stops when `control/stop` exists.
//! `control/squeeze-<worker>` makes it fill its fd table for `SQUEEZE_ROUNDS` rounds, taken
//! inside a critical section (the append and the release then run with no descriptor free).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use heldlock_core::{LockError, LockEvent, LockHandle, Observer, ProcessLocks};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::witness::Witness;
use super::{Layout, LOCK_OPTIONS};
use crate::parity::fs_diff::errno_name;

/// Rounds a squeeze lasts.
const SQUEEZE_ROUNDS: u32 = 3;
/// The soft fd limit a contender runs under, so a squeeze fills the table quickly.
const CONTENDER_FD_LIMIT: u64 = 256;
/// The most rounds one contender runs (a bound; the stop file ends it long before).
const MAX_ROUNDS: u64 = 10_000_000;

/// Writes the lock's reclaims (statistics) and watchdog takeovers (an excuse, see `witness`).
struct WitnessObserver {
    witness: Arc<Witness>,
    worker: String,
}

/// `s<k>` of a session's lock or transcript path (`…/s<k>.jsonl[.lock]`).
fn session_of(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}

impl Observer for WitnessObserver {
    fn on_event(&self, event: &LockEvent) {
        let text = match event {
            LockEvent::Reclaimed { lock, reasons, .. } => {
                let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
                format!("RECLAIM {} {} {}", session_of(lock), self.worker, names.join(","))
            }
            LockEvent::HandleLost { lock, .. } => format!("LOST {} {}", session_of(lock), self.worker),
            _ => return,
        };
        let _ = self.witness.line(&text);
    }
}

fn refusal_kind(e: &LockError) -> String {
    match e {
        LockError::Timeout { .. } => "timeout".into(),
        LockError::Stale { reasons, .. } => {
            let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
            format!("stale:{}", names.join(","))
        }
        LockError::Io { source, .. } => format!("io:{}", errno_name(source.raw_os_error().unwrap_or(-1))),
    }
}

/// Lower this process's soft fd limit (a squeeze then fills the table in a few hundred opens).
fn lower_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit on structs we own; lowering the soft limit is always allowed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur > CONTENDER_FD_LIMIT {
            limit.rlim_cur = CONTENDER_FD_LIMIT;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Open `/dev/null` until the table is full (bounded by the lowered limit).
fn fill_fd_table() -> Vec<File> {
    let mut held = Vec::new();
    while held.len() < CONTENDER_FD_LIMIT as usize {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(_) => break,
        }
    }
    held
}

/// Run one contender until the stop file appears. Returns an error only when the witness
/// cannot be written (the run cannot judge anything then).
pub fn run(
    root: &Path,
    worker: &str,
    sessions: usize,
    via_alias: bool,
    mutant: Option<heldlock_core::Mutant>,
) -> Result<(), String> {
    lower_fd_limit();
    let layout = Layout::new(root, sessions);
    let witness = Arc::new(Witness::open(&layout.witness).map_err(|e| format!("witness: {e}"))?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let mut platform = heldlock_core::real::platform();
    platform.observer = Arc::new(WitnessObserver {
        witness: witness.clone(),
        worker: worker.to_owned(),
    });
    let dir: PathBuf = if via_alias {
        layout.alias.clone()
    } else {
        layout.sessions.clone()
    };
    let seed = heldlock_sim::seed::mix(std::process::id() as u64 ^ super::witness::wall_ms() as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    runtime.block_on(async {
        let locks = ProcessLocks::with_mutant(platform, mutant);
        locks.start_watchdog();
        let say = |text: String| witness.line(&text).map_err(|e| format!("witness: {e}"));
        let squeeze_file = layout.control.join(format!("squeeze-{worker}"));
        let mut squeeze_left = 0u32;
        let mut squeezed: Vec<File> = Vec::new();
        // Sessions where this process may have left a lock: its release failed (a squeeze's
        // EMFILE), or its handle was lost (a file replaced behind its back by a copy naming
        // it). SPEC I7: its own next acquire of the session reclaims such an orphan.
        let mut owed: BTreeSet<PathBuf> = BTreeSet::new();
        for round in 0..MAX_ROUNDS {
            if layout.stop.exists() {
                break;
            }
            if std::fs::remove_file(&squeeze_file).is_ok() {
                squeeze_left = SQUEEZE_ROUNDS;
            }
            let s = format!("s{}", rng.gen_range(0..sessions));
            let transcript = dir.join(format!("{s}.jsonl"));
            let handle = match locks.acquire(&transcript, LOCK_OPTIONS).await {
                Ok(h) => h,
                Err(e) => {
                    say(format!("REFUSED {s} {worker} {}", refusal_kind(&e)))?;
                    squeeze_left = squeeze_left.saturating_sub(1);
                    if squeeze_left == 0 {
                        squeezed.clear();
                    }
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(5..40))).await;
                    continue;
                }
            };
            let id = format!("{s} {worker} {round}");
            let squeeze = squeeze_left > 0 && squeezed.is_empty();
            let section = Section {
                locks: &locks,
                witness: &witness,
                transcript: &transcript,
                id: &id,
            };
            let ended = section.run(handle, &mut rng, squeeze).await?;
            if ended.clean {
                owed.remove(&transcript);
            } else {
                owed.insert(transcript.clone());
            }
            if let Some(fds) = ended.squeezed {
                squeezed = fds;
            }
            squeeze_left = squeeze_left.saturating_sub(1);
            if squeeze_left == 0 {
                squeezed.clear();
            }
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..10))).await;
        }
        // Told to stop: a gateway that carried on would reclaim these at its next turn; this
        // one exits, so it takes each once more (the squeeze lifted) and lets go cleanly.
        squeezed.clear();
        for transcript in &owed {
            match locks.acquire(transcript, LOCK_OPTIONS).await {
                Ok(handle) => match locks.release(&handle).await {
                    Ok(()) => say(format!("TIDY {} {worker} ok", session_of(transcript)))?,
                    Err(e) => say(format!("TIDY {} {worker} release {e}", session_of(transcript)))?,
                },
                Err(e) => say(format!("TIDY {} {worker} {}", session_of(transcript), refusal_kind(&e)))?,
            }
        }
        Ok(())
    })
}

/// How a critical section ended.
struct Ended {
    /// The filled fd table, when the section took the squeeze.
    squeezed: Option<Vec<File>>,
    /// Released whole, the handle never lost: nothing of ours can be left at the lock path.
    clean: bool,
}

/// One critical section: tell the witness, append the round's line through the real adapter
/// (unless the watchdog took the lock), release.
struct Section<'a> {
    locks: &'a ProcessLocks,
    witness: &'a Witness,
    transcript: &'a Path,
    /// `session worker round`.
    id: &'a str,
}

impl Section<'_> {
    /// With `squeeze`, fill the fd table right after entering; the filled table is returned
    /// (it stays full while the caller holds it).
    async fn run(&self, handle: LockHandle, rng: &mut ChaCha8Rng, squeeze: bool) -> Result<Ended, String> {
        let say = |kind: &str, extra: String| {
            self.witness
                .line(&format!("{kind} {}{extra}", self.id))
                .map_err(|e| format!("witness: {e}"))
        };
        say("ENTER", String::new())?;
        let squeezed = squeeze.then(fill_fd_table);
        // A window in which a broken lock would show as an overlap.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..60))).await;
        if !handle.is_lost() {
            say("TRY", String::new())?;
            let line = format!("{}\n", self.id.split_once(' ').map_or("", |(_, rest)| rest));
            match self.locks.platform().fs.append(self.transcript, line.as_bytes()).await {
                Ok(()) => say("ACK", String::new())?,
                Err(e) => say("WFAIL", format!(" {}", e.raw_os_error().unwrap_or(-1)))?,
            }
        }
        say("EXIT", String::new())?;
        let released = self.locks.release(&handle).await;
        if let Err(e) = &released {
            say("RELFAIL", format!(" {}", e.raw_os_error().unwrap_or(-1)))?;
        }
        Ok(Ended {
            squeezed,
            clean: released.is_ok() && !handle.is_lost(),
        })
    }
}
