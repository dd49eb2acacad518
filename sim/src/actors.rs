//! External actors: what people and other programs do to the session directory behind the
//! gateways' backs — transcript edits (benign and not), deletes, replacements and in-place
//! rewrites; foreign lock files planted at a lock path; held lock files removed or replaced.
//! Each actor records what it did (`World::external_change`, the witness's planted locks, the
//! oracle's tampered inodes): the oracle judges from that record, not from the lock's account.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::select;
use heldlock_core::memprocs::{ProcEntry, ProcState};
use heldlock_core::payload::format_iso8601;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::oracle::{ExternalChange, ExternalEdit, PlacedBy};
use crate::seed::{rng, world_rng, Stream, WorldDraw};
use crate::witness::PlantedLive;
use crate::world::World;

/// Foreign processes (planted lock holders) take pids from here up.
const FOREIGN_FIRST_PID: u32 = 5_000;
/// Each actor acts at most this often per run, whatever the profile says.
const MAX_ACTS: u32 = 32;
/// A huge planted lock file (the real adapter must cap its read; here it costs a copy a read).
const HUGE_LOCK_BYTES: usize = 16 * 1024;
/// Where a planted dangling symlink points: nothing ever exists there.
const DANGLING_TARGET: &str = "/nonexistent/heldlock-planted-target";

fn entry(kind: &str, who: &str) -> Vec<u8> {
    format!("{{\"type\":\"{kind}\",\"from\":\"{who}\"}}\n").into_bytes()
}

/// The whole transcript an external rewrite leaves: numbered per act, as real entries carry
/// ids and times. Two rewrites with the same bytes would undo a change in between (A-B-A),
/// which no fence of content and inode can see — and real transcripts never repeat so
/// (swarm seed 298219: a second identical rewrite erased another gateway's writes).
fn rewritten(act: u32) -> Vec<u8> {
    format!("{{\"type\":\"message\",\"from\":\"rewritten\",\"act\":{act}}}\n").into_bytes()
}

/// The lock file of a transcript (SPEC §1: `<transcript>.lock`).
pub(crate) fn lock_path_of(transcript: &Path) -> PathBuf {
    let mut name = transcript.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}

/// Edits the transcripts behind the gateways' backs: benign appends and ctime-only changes,
/// and non-benign appends and rewrites that the fence must catch.
pub async fn external_writer(world: Arc<World>) {
    let mut rng = rng(world.seed, Stream::External, 0);
    for act in 0..world.profile.external_edits.min(MAX_ACTS) {
        sleep_ms(rng.gen_range(500..40_000)).await;
        if world.is_healed() {
            return; // the liveness phase: the world is healed
        }
        let path = world.session_path(rng.gen_range(0..world.profile.sessions), false);
        let nonbenign = rng.gen_bool(world.profile.external_nonbenign_share);
        let change = match (nonbenign, rng.gen_bool(0.5)) {
            (false, true) => ExternalChange::BenignAppend,
            (false, false) => ExternalChange::CtimeOnly,
            (true, true) => ExternalChange::NonBenignAppend,
            (true, false) => ExternalChange::Rewrite,
        };
        edit_now(&world, &path, change, act);
    }
}

/// Make `change` to the transcript at `path` now, and record it (`World::external_change`)
/// if it was made: the record I10 and I14 judge by. `act` numbers a rewrite's bytes. A change
/// the transcript's state rules out (nothing to delete, no mtime moved) is not recorded:
/// `false`.
pub(crate) fn edit_now(world: &World, path: &Path, change: ExternalChange, act: u32) -> bool {
    let view = world.disk.view(0, usize::MAX);
    // Its own record of what it wrote: I14 explains the disk by it.
    let (edit, done) = match change {
        ExternalChange::BenignAppend | ExternalChange::NonBenignAppend => {
            let kind = if change == ExternalChange::BenignAppend {
                "usage"
            } else {
                "message"
            };
            let bytes = entry(kind, "external");
            let done = view.write_path_now(path, &bytes, false);
            (Some(ExternalEdit::Append(bytes)), done)
        }
        ExternalChange::Rewrite => {
            let bytes = rewritten(act);
            let done = view.write_path_now(path, &bytes, true);
            (Some(ExternalEdit::Replace(bytes)), done)
        }
        ExternalChange::Delete => (Some(ExternalEdit::Replace(Vec::new())), view.unlink_now(path)),
        ExternalChange::Replace => {
            let Some(bytes) = world.disk.contents(path) else {
                return false;
            };
            let done = view.unlink_now(path).and_then(|()| view.write_path_now(path, &bytes, true));
            (Some(ExternalEdit::Replace(bytes)), done)
        }
        ExternalChange::SameBytes => {
            let (Some(bytes), Ok(before)) = (world.disk.contents(path), view.stat_now(path)) else {
                return false;
            };
            let done = view.write_path_now(path, &bytes, true);
            // Within one tick of the last write the mtime cannot move: nothing an observer can
            // tell from no change at all, so no change is recorded.
            match view.stat_now(path) {
                Ok(after) if done.is_ok() && after.mtime_ns != before.mtime_ns => {}
                _ => return false,
            }
            (Some(ExternalEdit::Replace(bytes)), done)
        }
        ExternalChange::ReplayAppend => {
            // A gateway's entry, whole: a file ending in a torn fragment or in a line of
            // another writer (a benign usage line, whose copy is benign too) has none last.
            let content = world.disk.contents(path);
            let Some(line) = content.as_deref().and_then(last_line).filter(|l| world.gateway_wrote(path, l))
            else {
                return false;
            };
            let line = line.to_vec();
            let done = view.write_path_now(path, &line, false);
            (Some(ExternalEdit::Append(line)), done)
        }
        ExternalChange::CtimeOnly => (None, world.disk.touch_ctime(path)),
        ExternalChange::Recreate | ExternalChange::RewriteInPlace => {
            unreachable!("the transcript tamperer makes {} itself", change.name())
        }
    };
    if done.is_ok() {
        world.external_change(path, change, edit);
    }
    done.is_ok()
}

/// The last whole line of `content`, its newline included; `None` when `content` is empty or
/// ends in a fragment.
fn last_line(content: &[u8]) -> Option<&[u8]> {
    let body = content.strip_suffix(b"\n")?;
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Some(&content[start..])
}

/// A deleted transcript comes back `ms` later as a fresh session (a user's reset), unless
/// something brought it back meanwhile. A gateway never does: its writes need the file there.
pub(crate) async fn recreate_after(world: &World, path: &Path, ms: u64) {
    sleep_ms(ms).await;
    if world.disk.contents(path).is_none() {
        let header = entry("session", "reset");
        if world.disk.view(0, usize::MAX).write_path_now(path, &header, true).is_ok() {
            world.external_change(path, ExternalChange::Recreate, Some(ExternalEdit::Replace(header)));
        }
    }
}

/// Deletes a transcript (and brings a fresh one back a while later), replaces it by a new
/// inode with the same bytes, or rewrites bytes inside it at the same length.
pub async fn transcript_tamperer(world: Arc<World>) {
    let mut rng = world_rng(world.seed, WorldDraw::TranscriptTamper, 0);
    let acts = (world.profile.transcript_tampering * world.profile.sessions).min(MAX_ACTS);
    for _ in 0..acts {
        sleep_ms(rng.gen_range(500..40_000)).await;
        if world.is_healed() {
            return; // the liveness phase: the world is healed
        }
        let mut path = world.session_path(rng.gen_range(0..world.profile.sessions), false);
        if rng.gen_bool(0.7) {
            // Mostly aim at a transcript a controller has let go of: its fence must catch this.
            for _ in 0..300 {
                if let Some(released) = world.released_transcript() {
                    path = released;
                    break;
                }
                sleep_ms(100).await;
            }
        }
        let view = world.disk.view(0, usize::MAX);
        let Some(bytes) = world.disk.contents(&path) else {
            continue;
        };
        match rng.gen_range(0..3) {
            0 => {
                if edit_now(&world, &path, ExternalChange::Delete, 0) {
                    recreate_after(&world, &path, rng.gen_range(500..20_000)).await;
                }
            }
            1 => {
                edit_now(&world, &path, ExternalChange::Replace, 0);
            }
            _ => {
                // One letter upper-cased: same length, same inode, different bytes.
                let Some(at) = bytes.iter().position(u8::is_ascii_lowercase) else {
                    continue;
                };
                let mut edited = bytes;
                edited[at] = edited[at].to_ascii_uppercase();
                if view.write_path_now(&path, &edited, true).is_ok() {
                    world.external_change(
                        &path,
                        ExternalChange::RewriteInPlace,
                        Some(ExternalEdit::Replace(edited)),
                    );
                }
            }
        }
    }
}

/// Transcripts the error-recovery tamperer waits on at once, at most.
const MAX_ARMED: usize = 16;
/// Wake-ups the error-recovery tamperer waits through for one act, at most.
const MAX_WAKES: u32 = 100_000;

/// Where the error-recovery tamperer aims: transcripts a process's operation just failed on
/// (the world arms them at the fault), and a wake-up whenever a lock file goes away.
#[derive(Default)]
pub struct RecoveryAim {
    armed: Mutex<Vec<PathBuf>>,
    wake: event_listener::Event,
}

impl RecoveryAim {
    /// An operation on `transcript` (canonical) failed.
    pub fn arm(&self, transcript: PathBuf) {
        {
            let mut armed = self.armed.lock().unwrap();
            if armed.contains(&transcript) || armed.len() >= MAX_ARMED {
                return;
            }
            armed.push(transcript);
        }
        self.wake.notify(usize::MAX);
    }

    /// A lock file went away: an armed transcript's lock may be free now.
    pub fn lock_gone(&self) {
        // Nothing armed, nobody to wake: the tamperer sleeps through most unlinks.
        if !self.armed.lock().unwrap().is_empty() {
            self.wake.notify(usize::MAX);
        }
    }

    /// An armed transcript whose lock path is free now, disarmed.
    fn take_free(&self, world: &World) -> Option<PathBuf> {
        let mut armed = self.armed.lock().unwrap();
        let at = armed.iter().position(|t| !world.entry_at(&lock_path_of(t)))?;
        Some(armed.remove(at))
    }

    /// Wait for an armed transcript whose lock is free; `None` once the world heals.
    async fn next_free(&self, world: &World) -> Option<PathBuf> {
        for _ in 0..MAX_WAKES {
            if world.is_healed() {
                return None;
            }
            let listener = self.wake.listen();
            if let Some(transcript) = self.take_free(world) {
                return Some(transcript);
            }
            select(listener, Box::pin(world.until_healed())).await;
        }
        None
    }
}

/// Aims at error recovery: after a process's transcript operation failed (a write whose
/// landing it could not verify, a fence read that failed), at the first moment that session's
/// lock file is gone, a backup or sync tool re-saves the transcript — same bytes, new inode —
/// or, every other act, replays its last entry (a retry of the append that failed, when the
/// entry is a gateway's). Whichever controller checks its fence next must take either as a
/// takeover.
pub async fn recovery_tamperer(world: Arc<World>) {
    for act in 0..world.profile.recovery_tampering.min(MAX_ACTS) {
        let Some(path) = world.aim.next_free(&world).await else {
            return;
        };
        // Every other act, a sync tool retries the append that failed: the last entry again.
        if act % 2 == 1 && edit_now(&world, &path, ExternalChange::ReplayAppend, 0) {
            continue;
        }
        let Some(bytes) = world.disk.contents(&path) else {
            continue;
        };
        let view = world.disk.view(0, usize::MAX);
        if view.unlink_now(&path).is_ok() && view.write_path_now(&path, &bytes, true).is_ok() {
            world.external_change(&path, ExternalChange::Replace, Some(ExternalEdit::Replace(bytes)));
        }
    }
}

/// What an actor plants at a free lock path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plant {
    Garbage,
    Empty,
    Huge,
    /// A live foreign gateway's lock whose `createdAt` is spelled this way.
    ForeignLive(&'static str),
    /// A live foreign gateway's lock with a short maxHoldMs: others judge it hold-exceeded.
    ShortHold,
    DanglingSymlink,
    Directory,
}

impl Plant {
    fn draw(rng: &mut ChaCha8Rng) -> Plant {
        match rng.gen_range(0..9) {
            0 => Plant::Garbage,
            1 => Plant::Empty,
            2 => Plant::Huge,
            3 => Plant::ForeignLive("+02:00"),
            4 => Plant::ForeignLive("-05:30"),
            5 => Plant::ForeignLive("Z, no fraction"),
            6 => Plant::ShortHold,
            7 => Plant::DanglingSymlink,
            _ => Plant::Directory,
        }
    }
}

/// `createdAt` for wall time `ms`, spelled as `form` says (all name the same instant).
fn created_at(ms: i64, form: &str) -> String {
    let z = format_iso8601(ms); // 2026-01-01T00:00:00.000Z
    let shifted = |offset_min: i64| {
        let local = format_iso8601(ms + offset_min * 60_000);
        let sign = if offset_min < 0 { '-' } else { '+' };
        let m = offset_min.abs();
        format!("{}{sign}{:02}:{:02}", &local[..local.len() - 1], m / 60, m % 60)
    };
    match form {
        "+02:00" => shifted(120),
        "-05:30" => shifted(-330),
        "Z, no fraction" => format!("{}Z", &z[..19]),
        _ => z,
    }
}

/// Plants foreign lock files at free lock paths: garbage, empty, huge, live foreign gateways'
/// locks (other `createdAt` forms, a short maxHoldMs), a dangling symlink, a directory.
pub async fn lock_planter(world: Arc<World>) {
    let mut rng = world_rng(world.seed, WorldDraw::PlantLock, 0);
    for i in 0..world.profile.planted_locks.min(MAX_ACTS) {
        sleep_ms(rng.gen_range(200..20_000)).await;
        if world.is_healed() {
            return; // the liveness phase: the world is healed
        }
        let lock = lock_path_of(&world.session_path(rng.gen_range(0..world.profile.sessions), false));
        let plant = Plant::draw(&mut rng);
        // It plants only at a free path: it waits (bounded) for a hand-over, where gateways
        // are waiting and racing for the lock.
        let free = |w: &World| !w.entry_at(&lock);
        let mut polls = 0;
        while !free(&world) && polls < 600 {
            sleep_ms(50).await;
            polls += 1;
        }
        if !free(&world) {
            continue;
        }
        world.external_note(|| format!("external plants {plant:?} at {}", lock.display()));
        let hold_ms = rng.gen_range(5_000..90_000);
        match plant {
            Plant::Garbage => plant_file(&world, &lock, b"\x00not a lock {{{"),
            Plant::Empty => plant_file(&world, &lock, b""),
            Plant::Huge => plant_file(&world, &lock, &vec![b'x'; HUGE_LOCK_BYTES]),
            Plant::ForeignLive(form) => {
                foreign_holder(&world, &lock, FOREIGN_FIRST_PID + i, form, 300_000, hold_ms).await
            }
            Plant::ShortHold => {
                // Many short holds in a row: each hand-over races the others' judging reads.
                let max_hold = rng.gen_range(1_000..5_000);
                for round in 0..rng.gen_range(1..12) {
                    let pid = FOREIGN_FIRST_PID + i * 100 + round;
                    foreign_holder(&world, &lock, pid, "Z", max_hold, rng.gen_range(500..8_000)).await;
                    sleep_ms(rng.gen_range(0..200)).await;
                }
            }
            Plant::DanglingSymlink => {
                if world.disk.symlink(Path::new(DANGLING_TARGET), &lock).is_err() {
                    continue;
                }
                sleep_ms(hold_ms.min(60_000)).await;
                if world.dangling_symlink_at(&lock)
                    && world.disk.view(0, usize::MAX).unlink_now(&lock).is_ok()
                {
                    world.external_note(|| {
                        format!("external removes its dangling symlink at {}", lock.display())
                    });
                }
            }
            Plant::Directory => {
                let view = world.disk.view(0, usize::MAX);
                if view.mkdir_now(&lock).is_ok() {
                    sleep_ms(hold_ms.min(30_000)).await;
                    let _ = view.rmdir_now(&lock);
                }
            }
        }
    }
}

fn plant_file(world: &World, lock: &Path, bytes: &[u8]) {
    let view = world.disk.view(0, usize::MAX);
    if let Ok(fd) = view.create_exclusive_now(lock) {
        if let Some(ino) = world.disk.ino_of(lock) {
            world.lock_placed_outside(ino, PlacedBy::Nobody);
        }
        let _ = view.write_fd_now(fd, bytes);
        let _ = view.close_now(fd);
    }
}

/// A live foreign gateway (another runtime of this system) takes the lock the proper way,
/// holds it in bounds, and lets go of its own file.
async fn foreign_holder(
    world: &World,
    lock: &Path,
    pid: u32,
    form: &'static str,
    max_hold_ms: u64,
    hold_ms: u64,
) {
    let starttime = 900_000 + u64::from(pid);
    let entry = ProcEntry {
        state: ProcState::Running,
        starttime: Some(starttime),
        gateway: Some(true),
        probe_denied: false,
    };
    world.table.spawn(pid, entry);
    world.process_started(pid, format!("foreign-gateway({form})"), Some(starttime));
    let payload = format!(
        "{{\"pid\":{pid},\"createdAt\":\"{}\",\"starttime\":{starttime},\"maxHoldMs\":{max_hold_ms}}}",
        created_at(world.clocks.wall_ms(pid), form)
    );
    let view = world.disk.view(pid, usize::MAX);
    if let Ok(fd) = view.create_exclusive_now(lock) {
        let _ = view.write_fd_now(fd, payload.as_bytes());
        let _ = view.close_now(fd);
        if let Some(ino) = world.disk.ino_of(lock) {
            world.lock_placed_outside(ino, PlacedBy::Named(pid));
            let planted = PlantedLive {
                lock: lock.to_owned(),
                holder: pid,
                form,
            };
            world.planted_live(ino, planted);
            sleep_ms(hold_ms).await;
            world.planted_gone(ino);
            if world.disk.ino_of(lock) == Some(ino) {
                let _ = view.unlink_now(lock);
            }
        }
    }
    world.table.kill(pid);
    world.process_crashed(pid, "exits");
}

/// Remove the held lock inode `ino` at `lock` behind the protocol's back (an `rm`, a sync
/// tool), and tell the world: the holder's handle no longer keeps others out.
pub fn remove_held_lock(world: &World, lock: &Path, ino: u64) -> bool {
    if world.disk.view(0, usize::MAX).unlink_now(lock).is_err() {
        return false;
    }
    world.lock_tampered(lock, ino);
    true
}

/// Remove lock inode `ino` at `lock` if it is a dead gateway's that nobody holds (an operator
/// clearing a crashed process's lock), and say so in the trace. Nobody's lock is lost.
pub fn remove_dead_lock(world: &World, lock: &Path, ino: u64) -> bool {
    world.is_dead_gateway_lock(ino) && remove_unheld_lock(world, lock, ino, "dead")
}

/// Remove lock inode `ino` at `lock` if no handle holds it (a dead gateway's lock, or a
/// reclaimer's own standing in for the lock it took), and say so in the trace: the `what` lock.
pub fn remove_unheld_lock(world: &World, lock: &Path, ino: u64, what: &str) -> bool {
    if world.holds_inode(ino) || world.disk.view(0, usize::MAX).unlink_now(lock).is_err() {
        return false;
    }
    world.external_note(|| format!("external removes the {what} lock {}", lock.display()));
    true
}

/// Removes a lock file a live gateway holds, or replaces it by a copy in a new inode (a
/// backup restore, a sync tool) that the tool removes again a while later.
pub async fn lock_tamperer(world: Arc<World>) {
    let mut rng = world_rng(world.seed, WorldDraw::LockTamper, 0);
    for _ in 0..world.profile.lock_tampering.min(MAX_ACTS) {
        // Wait (bounded) for a held lock to tamper with.
        let mut target = None;
        for _ in 0..600 {
            sleep_ms(rng.gen_range(100..2_000)).await;
            if world.is_healed() {
                return;
            }
            let lock = lock_path_of(&world.session_path(rng.gen_range(0..world.profile.sessions), false));
            if let Some(ino) = world.disk.ino_of(&lock).filter(|ino| world.holds_inode(*ino)) {
                target = Some((lock, ino));
                break;
            }
        }
        let Some((lock, ino)) = target else { return };
        let bytes = world.disk.contents(&lock).unwrap_or_default();
        if !remove_held_lock(&world, &lock, ino) {
            continue;
        }
        let view = world.disk.view(0, usize::MAX);
        if rng.gen_bool(0.5) && view.write_path_now(&lock, &bytes, true).is_ok() {
            let copy = world.disk.ino_of(&lock);
            if let Some(copy) = copy {
                world.lock_placed_outside(copy, PlacedBy::CopyOf(ino));
            }
            world.external_note(|| format!("external puts a copy of {} back (new inode)", lock.display()));
            sleep_ms(rng.gen_range(10_000..60_000)).await;
            if copy.is_some() && world.disk.ino_of(&lock) == copy {
                let _ = view.unlink_now(&lock);
                world.external_note(|| format!("external removes its copy of {}", lock.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use heldlock_core::{AttemptController, ControllerOptions, Mutant, ProcessLocks};

    use super::*;
    use crate::faults::{FaultKind, FaultPlan};
    use crate::oracle::InvariantId;
    use crate::profile::Profile;
    use crate::trace::TraceMode;

    #[test]
    fn a_replay_repeats_the_last_whole_line_only() {
        assert_eq!(last_line(b"a\nbc\n"), Some(&b"bc\n"[..]));
        assert_eq!(last_line(b"bc\n"), Some(&b"bc\n"[..]));
        assert_eq!(last_line(b"a\nb"), None, "a torn fragment is no line");
        assert_eq!(last_line(b""), None);
    }

    /// One gateway's turn, scripted: the fence recorded at the prompt release, then a short-lock
    /// write whose post-append stat fails (the append landed unverified), then the cleanup's
    /// fence check — with the error-recovery tamperer on. Returns the invariants broken.
    fn unverified_append_then_cleanup(mutant: Option<Mutant>) -> Vec<InvariantId> {
        let profile = Profile {
            fault_kinds: vec![FaultKind::Eio],
            post_append_stat_fault_rate: 1.0,
            recovery_tampering: 1,
            ..Profile::quiet()
        };
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async move {
            let faults = FaultPlan::new(1, &profile);
            let world = World::new(1, "scripted", profile, faults, mutant, TraceMode::Off);
            let transcript = world.session_path(0, false);
            let header = b"{\"type\":\"session\",\"id\":\"s0\"}\n".to_vec();
            world.disk.create_dir_all(Path::new(crate::world::SESSION_DIR)).unwrap();
            world.disk.view(0, usize::MAX).write_path_now(&transcript, &header, true).unwrap();
            world.transcript_created(&transcript, &header);
            let pid = 101;
            let entry = ProcEntry {
                state: ProcState::Running,
                starttime: Some(1_000),
                gateway: Some(true),
                probe_denied: false,
            };
            world.table.spawn(pid, entry);
            world.process_started(pid, "gw".into(), Some(1_000));
            let tamperer = madsim::task::spawn(recovery_tamperer(world.clone()));
            let locks = ProcessLocks::with_mutant(world.platform_for(pid), mutant);
            let ctl =
                AttemptController::create(locks, &transcript, ControllerOptions::default()).await.unwrap();
            ctl.release_for_prompt().await.unwrap();
            let bytes = b"{\"type\":\"tool-result\",\"n\":1}\n";
            let id = world.write_called(pid, &transcript, bytes, false);
            let written = ctl.with_write_lock(|scope| async move { scope.append(bytes).await }).await;
            world.write_returned(id, written.is_ok());
            assert!(written.is_err(), "the post-append stat fails: {written:?}");
            assert_eq!(world.disk.contents(&transcript).unwrap().len(), header.len() + bytes.len());
            tamperer.await.unwrap();
            let cleanup = ctl.acquire_for_cleanup().await.unwrap();
            assert_eq!(cleanup.is_noop(), mutant.is_none(), "the fixed core takes the replace as a takeover");
            let _ = cleanup.release().await;
            ctl.dispose().await;
            world.finish().violations.iter().map(|v| v.invariant).collect()
        })
    }

    #[test]
    fn a_replace_after_an_unverified_own_append_is_a_takeover_and_m12_is_caught() {
        assert_eq!(unverified_append_then_cleanup(None), Vec::new());
        let found = unverified_append_then_cleanup(Some(Mutant::M12BenignAppendAnyInode));
        assert_eq!(found.first(), Some(&InvariantId::I10), "{found:?}");
    }

    #[test]
    fn external_rewrites_never_repeat_a_transcript() {
        let all: std::collections::BTreeSet<Vec<u8>> = (0..MAX_ACTS).map(rewritten).collect();
        assert_eq!(all.len(), MAX_ACTS as usize);
        assert!(all.iter().all(|t| t.ends_with(b"\n") && t.starts_with(b"{\"type\":\"message\"")));
    }
}
