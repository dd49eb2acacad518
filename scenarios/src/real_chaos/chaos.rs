//! The chaos loop of the real run: the contender fleet (spawned, respawned after a kill) and
//! what it does to them and to their files from outside, each act written to the witness.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::witness::Witness;
use super::Layout;

/// Counts of what the chaos did.
#[derive(Debug, Default, Clone)]
pub struct ChaosCounts {
    pub kills: u64,
    pub stops: u64,
    pub lock_deletes: u64,
    pub lock_replaces: u64,
    pub transcript_deletes: u64,
    pub transcript_replaces: u64,
    pub squeezes: u64,
}

/// One contender slot: its current process and generation (a killed one is respawned as the
/// next generation, so `(worker, round)` stays unique).
pub struct Slot {
    pub child: Child,
    pub worker: String,
    generation: u32,
    via_alias: bool,
    /// When a SIGSTOPped contender is to get SIGCONT.
    pub resume_at: Option<Instant>,
}

pub struct Fleet {
    exe: PathBuf,
    mutant: Option<heldlock_core::Mutant>,
    layout: Layout,
    pub slots: Vec<Slot>,
    /// Exit statuses of contenders that ended by themselves (not by our SIGKILL).
    pub exits: Vec<(String, std::process::ExitStatus)>,
}

impl Fleet {
    pub fn new(exe: &Path, layout: &Layout, mutant: Option<heldlock_core::Mutant>) -> Fleet {
        Fleet {
            exe: exe.to_owned(),
            mutant,
            layout: layout.clone(),
            slots: Vec::new(),
            exits: Vec::new(),
        }
    }

    fn spawn_child(&self, worker: &str, via_alias: bool) -> Result<Child, String> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["real", "--contender", worker, "--root"])
            .arg(&self.layout.root)
            .args(["--sessions", &self.layout.sessions_count.to_string()]);
        if via_alias {
            cmd.arg("--via-alias");
        }
        if let Some(m) = self.mutant {
            cmd.args(["--mutant", m.name()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn a contender ({}): {e}", self.exe.display()))
    }

    pub fn spawn(&mut self, index: usize) -> Result<(), String> {
        let worker = format!("c{index}g0");
        let via_alias = index % 2 == 1;
        let child = self.spawn_child(&worker, via_alias)?;
        self.slots.push(Slot {
            child,
            worker,
            generation: 0,
            via_alias,
            resume_at: None,
        });
        Ok(())
    }

    /// SIGKILL slot `i`, reap it, tell the witness, start its next generation.
    pub fn kill_and_respawn(&mut self, i: usize, witness: &Witness) -> Result<u32, String> {
        let slot = &mut self.slots[i];
        let pid = slot.child.id();
        witness.line(&format!("CHAOS kill {}", slot.worker)).map_err(|e| e.to_string())?;
        let _ = slot.child.kill();
        let _ = slot.child.wait();
        witness.line(&format!("CHAOS killed {} {pid}", slot.worker)).map_err(|e| e.to_string())?;
        slot.generation += 1;
        slot.worker = format!("c{i}g{}", slot.generation);
        slot.resume_at = None;
        let (worker, via_alias) = (slot.worker.clone(), slot.via_alias);
        self.slots[i].child = self.spawn_child(&worker, via_alias)?;
        Ok(pid)
    }

    pub fn signal(&self, i: usize, signal: i32) {
        // SAFETY: signals our own child, which we have not reaped (a dead one is a no-op).
        unsafe { libc::kill(self.slots[i].child.id() as i32, signal) };
    }

    /// SIGCONT the stopped contenders whose time is up (all of them with `all`).
    pub fn resume_due(&mut self, all: bool) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if self.slots[i].resume_at.is_some_and(|t| all || t <= now) {
                self.signal(i, libc::SIGCONT);
                self.slots[i].resume_at = None;
            }
        }
    }

    /// Slots whose process ended on its own: record the status, start the next generation.
    pub fn reap_exited(&mut self) -> Result<(), String> {
        for i in 0..self.slots.len() {
            if let Ok(Some(status)) = self.slots[i].child.try_wait() {
                self.exits.push((self.slots[i].worker.clone(), status));
                let slot = &mut self.slots[i];
                slot.generation += 1;
                slot.worker = format!("c{i}g{}", slot.generation);
                let (worker, via_alias) = (slot.worker.clone(), slot.via_alias);
                self.slots[i].child = self.spawn_child(&worker, via_alias)?;
            }
        }
        Ok(())
    }

    /// The slot whose process holds `session`'s lock now, by the pid in the lock file.
    fn holder_of(&self, session: usize) -> Option<usize> {
        let bytes = std::fs::read(self.layout.lock(session)).ok()?;
        let payload: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let pid = payload.get("pid")?.as_u64()?;
        self.slots.iter().position(|s| s.child.id() as u64 == pid)
    }
}

/// One act of chaos, chosen at random. `dead_pid`: a pid known dead, for planted locks.
pub fn act(
    fleet: &mut Fleet,
    layout: &Layout,
    witness: &Witness,
    rng: &mut ChaCha8Rng,
    counts: &mut ChaosCounts,
    dead_pid: &mut u32,
) -> Result<(), String> {
    let session = rng.gen_range(0..layout.sessions_count);
    let s = format!("s{session}");
    let say = |text: String| witness.line(&text).map_err(|e| format!("witness: {e}"));
    let pick = |fleet: &Fleet, rng: &mut ChaCha8Rng| {
        fleet.holder_of(session).unwrap_or_else(|| rng.gen_range(0..fleet.slots.len()))
    };
    match rng.gen_range(0..100) {
        0..=24 => {
            let i = pick(fleet, rng);
            *dead_pid = fleet.kill_and_respawn(i, witness)?;
            counts.kills += 1;
        }
        25..=44 => {
            let i = pick(fleet, rng);
            if fleet.slots[i].resume_at.is_none() {
                fleet.signal(i, libc::SIGSTOP);
                // Now and then a wedge past maxHoldMs: waiters then get the report-only
                // hold-exceeded StaleError, and nobody may take the lock from the live holder.
                let max_hold = super::LOCK_OPTIONS.max_hold_ms;
                let pause = if rng.gen_bool(0.1) {
                    Duration::from_millis(rng.gen_range(max_hold + 500..max_hold + 3_000))
                } else {
                    Duration::from_millis(rng.gen_range(200..1_500))
                };
                fleet.slots[i].resume_at = Some(Instant::now() + pause);
                say(format!("CHAOS stopped {} {}", fleet.slots[i].worker, pause.as_millis()))?;
                counts.stops += 1;
            }
        }
        45..=59 => {
            // The marker goes first: whoever enters from now until `lock-done` may lose it.
            say(format!("CHAOS lock-delete {s}"))?;
            if std::fs::remove_file(layout.lock(session)).is_ok() {
                counts.lock_deletes += 1;
            }
            settle_then_done(witness, &s)?;
        }
        60..=74 => {
            say(format!("CHAOS lock-replace {s}"))?;
            if replace_lock(layout, session, rng, *dead_pid)? {
                counts.lock_replaces += 1;
            }
            settle_then_done(witness, &s)?;
        }
        75..=89 => {
            let replace = rng.gen_bool(0.5);
            if move_transcript(layout, session, replace, rng.gen())? {
                say(format!("CHAOS transcript-{} {s}", if replace { "replace" } else { "delete" }))?;
                if replace {
                    counts.transcript_replaces += 1;
                } else {
                    counts.transcript_deletes += 1;
                }
            }
        }
        _ => {
            let i = rng.gen_range(0..fleet.slots.len());
            let trigger = layout.control.join(format!("squeeze-{}", fleet.slots[i].worker));
            std::fs::write(&trigger, b"").map_err(|e| format!("squeeze trigger: {e}"))?;
            say(format!("CHAOS squeeze {}", fleet.slots[i].worker))?;
            counts.squeezes += 1;
        }
    }
    Ok(())
}

/// How long after an act on a lock its excuse window stays open: a holder whose acquire
/// returned just before the act may write its ENTER a little later (descheduled).
const SETTLE: Duration = Duration::from_millis(50);

fn settle_then_done(witness: &Witness, session: &str) -> Result<(), String> {
    std::thread::sleep(SETTLE);
    witness.line(&format!("CHAOS lock-done {session}")).map_err(|e| format!("witness: {e}"))
}

/// Put another file at the lock path (a new inode, by rename): garbage, a dead holder's
/// payload, or a byte-identical copy of the current lock. Never a live stranger's pid: SPEC
/// §1.1 lets such a lock block forever.
fn replace_lock(
    layout: &Layout,
    session: usize,
    rng: &mut ChaCha8Rng,
    dead_pid: u32,
) -> Result<bool, String> {
    let lock = layout.lock(session);
    let Ok(current) = std::fs::read(&lock) else {
        return Ok(false);
    };
    let content = match rng.gen_range(0..3) {
        0 => b"not json".to_vec(),
        1 => format!("{{\"pid\":{dead_pid},\"createdAt\":\"2026-01-01T00:00:00.000Z\"}}").into_bytes(),
        _ => current,
    };
    let temp = layout.control.join("lock.tmp");
    std::fs::write(&temp, &content).map_err(|e| format!("planted lock: {e}"))?;
    std::fs::rename(&temp, &lock).map_err(|e| format!("planted lock: {e}"))?;
    Ok(true)
}

/// Move a transcript into the graveyard (a rename: appends already open land there, nothing is
/// lost unaccounted); with `replace`, start a new one holding a chaos line. The new one is
/// created `O_EXCL|O_APPEND`, so a contender's append that got there first is never clobbered.
fn move_transcript(layout: &Layout, session: usize, replace: bool, tag: u32) -> Result<bool, String> {
    let transcript = layout.transcript(session);
    let grave = layout.graveyard.join(format!("s{session}.{tag}.{}", super::witness::wall_ms()));
    if std::fs::rename(&transcript, &grave).is_err() {
        return Ok(false);
    }
    if replace {
        let created = OpenOptions::new().append(true).create_new(true).mode(0o644).open(&transcript);
        if let Ok(mut file) = created {
            file.write_all(format!("chaos {tag}\n").as_bytes())
                .map_err(|e| format!("replacement: {e}"))?;
        }
    }
    Ok(true)
}

/// Every file of each session: the transcript and the graveyard's, for the exactly-once check.
pub fn session_files(layout: &Layout) -> Result<BTreeMap<String, Vec<Vec<u8>>>, String> {
    let mut files: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for session in 0..layout.sessions_count {
        let s = format!("s{session}");
        if let Ok(content) = std::fs::read(layout.transcript(session)) {
            files.entry(s).or_default().push(content);
        }
    }
    let graves = std::fs::read_dir(&layout.graveyard).map_err(|e| format!("graveyard: {e}"))?;
    for entry in graves {
        let entry = entry.map_err(|e| format!("graveyard: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let session = name.split('.').next().unwrap_or_default().to_owned();
        let content = std::fs::read(entry.path()).map_err(|e| format!("graveyard {name}: {e}"))?;
        files.entry(session).or_default().push(content);
    }
    Ok(files)
}
