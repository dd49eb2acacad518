//! SimFs: one process's view of the in-memory disk, with simulated latency, injected errnos,
//! torn writes and hung operations; it reports lock-file and transcript changes to the oracle.
//!
//! The disk model is fsync-less, like the lock (SPEC §1 never syncs): a process crash loses
//! nothing (its writes are in the shared page cache), so nothing is dropped at a crash. What a
//! failing write leaves is modelled: a write that returns an errno may have put a prefix of
//! its bytes in the file first (a torn append, a half-written lock payload), and the caller
//! was told it failed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use heldlock_core::memfs::MemFsView;
use heldlock_core::platform::{os_error, BoxFuture, EntryRead, Fd, FileStat, Fs};

use rand::Rng;

use crate::faults::{FaultKind, FaultSite, FsOp, PathClass};
use crate::lock_races::ReclaimCall;
use crate::lookup_cache::NegativeLookups;
use crate::oracle::ExternalChange;
use crate::profile::Mount;
use crate::seed::{world_rng, WorldDraw};
use crate::world::World;

/// Whose writes a `SimFs` makes: a gateway's, or a plugin's (usage lines the oracle counts
/// as a benign external append).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    Gateway,
    Plugin,
}
/// Stalls from this long on are told to the oracle (they may carry an acquire past its
/// deadline); shorter ones fit in its slack.
const STALL_NOTED_MS: u64 = 100;

pub struct SimFs {
    world: Arc<World>,
    view: MemFsView,
    writer: Writer,
    /// This host's cached absences of lock paths (`Profile::negative_lookup_ttl_ms`).
    lookups: NegativeLookups,
}

/// A failed gated op: the errno, and how many bytes of the write reached the file first.
struct Failed {
    err: io::Error,
    torn: usize,
    /// The errno the world injected (`None`: a hang that ended).
    injected: Option<i32>,
}

impl SimFs {
    pub fn new(world: Arc<World>, view: MemFsView, writer: Writer) -> Self {
        let lookups = NegativeLookups::new(world.profile.negative_lookup_ttl_ms);
        SimFs {
            world,
            view,
            writer,
            lookups,
        }
    }

    /// A lookup of `path` (stat, lstat, entry read): a lock path this host has cached as absent
    /// answers ENOENT without asking the disk; what the disk answers updates the cache.
    fn look_up<T>(&self, path: &Path, on_disk: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if PathClass::of(path) != PathClass::Lock {
            return self.seen(on_disk());
        }
        let now_ms = crate::clock::now_ns() / 1_000_000;
        if self.lookups.hides(path, now_ms) {
            self.world.note(self.view.pid(), || {
                format!("fs {} absent in this host's lookup cache", path.display())
            });
            return self.seen(Err(os_error(heldlock_core::platform::errno::ENOENT)));
        }
        let result = on_disk();
        self.lookups.looked_up(path, &result, now_ms);
        self.seen(result)
    }

    /// A call of ours that removes or moves `path` away: the litter debts of a guard or a
    /// private name are paid by issuing it (lock paths and transcripts owe none).
    fn removal_issued(&self, path: &Path) {
        if matches!(PathClass::of(path), PathClass::Guard | PathClass::Dir) {
            self.world.removal_issued(self.view.pid(), path);
        }
    }

    /// `renameat2` with a flag on this seed's mount: an NFS client refuses it (EINVAL) before
    /// any request leaves the host, so no latency and no fault. An answer the lock handles, not
    /// an error that struck the process.
    fn refuse_renameat2_flags(&self) -> io::Result<()> {
        if matches!(self.world.profile.mount, Mount::Nfs | Mount::Fuse) {
            return Err(os_error(heldlock_core::platform::errno::EINVAL));
        }
        Ok(())
    }

    /// `link` on a FUSE mount whose daemon has none: ENOSYS, answered as the refusal above is.
    fn refuse_link(&self) -> io::Result<()> {
        if self.world.profile.mount == Mount::Fuse {
            return Err(os_error(heldlock_core::platform::errno::ENOSYS));
        }
        Ok(())
    }

    /// This process itself made `path` present or absent (create, rename, exchange, unlink).
    fn changed_itself(&self, path: &Path, present: bool) {
        if PathClass::of(path) == PathClass::Lock {
            self.lookups.saw(path, present, crate::clock::now_ns() / 1_000_000);
        }
    }

    async fn gate(&self, op: FsOp, path: &Path) -> io::Result<()> {
        self.gate_write(op, path, 0).await.map_err(|f| f.err)
    }

    async fn gate_write(&self, op: FsOp, path: &Path, len: usize) -> Result<(), Failed> {
        self.gate_call(op, path, len, false).await
    }

    /// Latency, then the fault decision's effect: an errno (after a torn prefix of a `len`-byte
    /// write, sometimes), a hang, or go ahead. `put_back`: a raced reclaim's put back, which a
    /// fault aims at (`lock_races`).
    async fn gate_call(&self, op: FsOp, path: &Path, len: usize, put_back: bool) -> Result<(), Failed> {
        let site = FaultSite {
            op,
            class: PathClass::of(path),
        };
        // The profile first: most seeds arm no racing edit, and `active` takes a lock.
        if self.world.profile.racing_edits > 0
            && site.class == PathClass::Transcript
            && self.writer == Writer::Gateway
            && self.world.racing.active()
        {
            self.race(op, path).await;
        }
        let decision = self.world.faults.decide_aimed(site, crate::clock::now_ns() / 1_000_000, put_back);
        // Gateways whose pid is 1 mod 4 run on the slow side when the profile skews latency.
        let factor = if self.view.pid() % 4 == 1 {
            self.world.profile.slow_process_factor
        } else {
            1
        };
        let stall = decision.latency_ms * factor + decision.slow_ms;
        if stall > 0 {
            // Short latencies are inside the oracle's slack; long stalls it must excuse.
            if stall >= STALL_NOTED_MS {
                self.world.fs_stalled(self.view.pid(), stall);
            }
            madsim::time::sleep(Duration::from_millis(stall)).await;
        }
        match decision.fault {
            None => {
                self.world.note(self.view.pid(), || format!("fs {} {}", op.name(), path.display()));
                Ok(())
            }
            Some(kind) => {
                self.world.fs_fault(self.view.pid(), &decision, kind, path);
                match kind.errno() {
                    Some(code) => Err(Failed {
                        err: os_error(code),
                        torn: self.torn_prefix(&decision, kind, len),
                        injected: Some(code),
                    }),
                    // Hung until the world heals (then it fails), or until the process dies and
                    // its tasks are dropped.
                    None => {
                        self.world.until_healed().await;
                        self.world.hang_ended(self.view.pid());
                        Err(Failed {
                            err: os_error(heldlock_core::platform::errno::EIO),
                            torn: 0,
                            injected: None,
                        })
                    }
                }
            }
        }
    }

    /// A transcript call that carries a racing edit (`racing`) stalls, and the edit lands
    /// inside the stall, before the call acts.
    async fn race(&self, op: FsOp, path: &Path) {
        let transcript = self.world.canonical_transcript(path);
        let Some(edit) = self.world.racing.on_call(self.view.pid(), op, &transcript) else {
            return;
        };
        self.world.fs_stalled(self.view.pid(), edit.stall_ms);
        madsim::time::sleep(Duration::from_millis(edit.at_ms)).await;
        if !self.world.is_healed()
            && crate::actors::edit_now(&self.world, &transcript, edit.change, edit.act)
            && edit.change == ExternalChange::Delete
        {
            self.world.racing.deleted(&transcript);
        }
        madsim::time::sleep(Duration::from_millis(edit.stall_ms - edit.at_ms)).await;
    }

    /// Whether this call at `lock` may carry a lock race (`lock_races`): a gateway's, on a lock
    /// path, before the healing.
    fn races_lock(&self, lock: &Path) -> bool {
        self.world.profile.lock_races > 0
            && self.writer == Writer::Gateway
            && PathClass::of(lock) == PathClass::Lock
            && !self.world.is_healed()
    }

    /// A gateway's reclaim (its first exchange or move aside between `lock` and its private
    /// name `private`) that carries a lock race stalls, and an outside removal of the dead
    /// lock it judged lands inside the stall: a waiter may publish a live lock there before
    /// the exchange takes it. Not on a FUSE mount without `link` or `rename` flags: there the
    /// live lock a move aside took cannot be put back without replacing what came meanwhile,
    /// and its holder's release, checked before the move, unlinks the next lock at the path
    /// (swarm seed 158340, I2) — a window no reclaim over those calls closes (BENCHMARKS,
    /// twelfth session).
    /// Returns whether the call is such a reclaim's put back, which a fault aims at.
    async fn race_reclaim(&self, lock: &Path, private: &Path) -> bool {
        if !self.races_lock(lock) || self.world.profile.mount == Mount::Fuse {
            return false;
        }
        let race = match self.world.lock_races.on_reclaim(private) {
            ReclaimCall::Raced(race) => race,
            ReclaimCall::PutBack { remove } => {
                // At the last moment before the put back (no `await` between): an outside `rm`
                // of the lock standing in at the path, never a held one.
                if let Some(ino) = self.view.disk().ino_of(lock).filter(|_| remove) {
                    crate::actors::remove_unheld_lock(&self.world, lock, ino, "unheld");
                }
                return true;
            }
            ReclaimCall::Plain => return false,
        };
        let judged = self.view.disk().ino_of(lock);
        self.world.fs_stalled(self.view.pid(), race.stall_ms);
        madsim::time::sleep(Duration::from_millis(race.remove_at_ms)).await;
        let there = self.view.disk().ino_of(lock);
        if let Some(ino) = there.filter(|ino| Some(*ino) == judged) {
            crate::actors::remove_dead_lock(&self.world, lock, ino);
        }
        madsim::time::sleep(Duration::from_millis(race.stall_ms - race.remove_at_ms)).await;
        false
    }

    /// The gate (on `gated`) of a `link` or `rename` from `from` to `to`. An errno injected
    /// into one from a private name to a lock path is a reclaimer's put back failing, which the
    /// oracle charges to the acquire that moved a lock aside to `from`.
    async fn gate_move(&self, gated: &Path, (from, to): (&Path, &Path)) -> io::Result<()> {
        let failed = match self.gate_write(FsOp::Rename, gated, 0).await {
            Ok(()) => return Ok(()),
            Err(failed) => failed,
        };
        if let Some(code) = failed.injected {
            if PathClass::of(to) == PathClass::Lock && PathClass::of(from) == PathClass::Dir {
                self.world.put_back_failed(self.view.pid(), from, code);
            }
        }
        Err(failed.err)
    }

    /// A gateway's release `unlink` of a lock path that carries a lock race: an outside removal
    /// of its own lock file lands between the release's check and its unlink, at the last
    /// moment (no `await` between it and the unlink: a waiter publishing in a wider window
    /// would have its live lock unlinked by the release, an unlink-by-path race nothing can
    /// close, damage of the outside `rm` rather than of the lock).
    fn race_release(&self, lock: &Path) {
        if !self.races_lock(lock) || !self.world.lock_races.on_unlink() {
            return;
        }
        // Its own lock, whose release began (the oracle no longer counts it held).
        let own = self.view.disk().ino_of(lock).filter(|ino| self.world.is_lock_of(*ino, self.view.pid()));
        if let Some(ino) = own {
            crate::actors::remove_held_lock(&self.world, lock, ino);
        }
    }

    /// How many bytes of a failing `len`-byte write reach the file first (0: none).
    /// Only errnos a write can report after moving some bytes (EIO, ENOSPC) tear it.
    fn torn_prefix(&self, decision: &crate::faults::Decision, kind: FaultKind, len: usize) -> usize {
        let rate = self.world.profile.torn_write_rate;
        if len < 2 || rate <= 0.0 || !matches!(kind, FaultKind::Eio | FaultKind::Enospc) {
            return 0;
        }
        let index =
            (decision.site.op as u64) << 40 ^ (decision.site.class as u64) << 32 ^ decision.occurrence;
        let mut rng = world_rng(self.world.seed, WorldDraw::TornWrite, index & ((1 << 48) - 1));
        if rng.gen_bool(rate) {
            rng.gen_range(1..len)
        } else {
            0
        }
    }

    /// Tell the oracle about bytes this process put in a transcript.
    fn report_transcript_write(&self, path: &Path, data: &[u8], complete: bool) -> io::Result<()> {
        if PathClass::of(path) != PathClass::Transcript {
            return Ok(());
        }
        let canonical = self.view.canonical_dir_now(path.parent().unwrap_or(Path::new("/")))?;
        let canonical = canonical.join(path.file_name().unwrap_or_default());
        match (self.writer, complete) {
            (Writer::Plugin, true) => self.world.plugin_appended(self.view.pid(), &canonical, data),
            (Writer::Gateway, true) => self.world.transcript_appended(self.view.pid(), &canonical),
            (_, false) => self.world.transcript_torn(self.view.pid(), &canonical, data),
        }
        Ok(())
    }
}

impl SimFs {
    /// A real error of the in-memory disk (EMFILE at the fd limit, ENOENT, …) is a fact the
    /// oracle judges refusals by (I15).
    fn seen<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            self.world.fs_error(self.view.pid(), e.raw_os_error());
        }
        result
    }
}

/// Lock-file descriptors are not tied to a path; their faults count as lock sites.
const FD_PATH: &str = "fd.lock";

impl Fs for SimFs {
    fn create_exclusive<'a>(&'a self, path: &'a Path, _mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        Box::pin(async move {
            self.gate(FsOp::CreateExclusive, path).await?;
            let fd = self.seen(self.view.create_exclusive_now(path))?;
            self.changed_itself(path, true);
            if PathClass::of(path) == PathClass::Lock {
                if let Some(ino) = self.view.disk().ino_of(path) {
                    self.world.lock_created(self.view.pid(), ino);
                }
            }
            Ok(fd)
        })
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if let Err(failed) = self.gate_write(FsOp::WriteFd, Path::new(FD_PATH), data.len()).await {
                if failed.torn > 0 {
                    let _ = self.view.write_fd_now(fd, &data[..failed.torn]);
                }
                return Err(failed.err);
            }
            self.seen(self.view.write_fd_now(fd, data))
        })
    }
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let gated = self.gate(FsOp::Close, Path::new(FD_PATH)).await;
            // close(2) releases the descriptor even when it reports an error.
            let closed = self.seen(self.view.close_now(fd));
            gated.and(closed)
        })
    }
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>> {
        Box::pin(async move {
            self.gate(FsOp::Read, path).await?;
            self.look_up(path, || self.view.read_now(path))
        })
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        Box::pin(async move {
            self.gate(FsOp::Stat, path).await?;
            self.look_up(path, || self.view.stat_now(path))
        })
    }
    /// Gated as a stat: the same fault site, so adding the method moved no seed's draws.
    fn lstat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        Box::pin(async move {
            self.gate(FsOp::Stat, path).await?;
            let st = self.look_up(path, || self.view.lstat_now(path));
            if let (PathClass::Guard, Ok(st)) = (PathClass::of(path), &st) {
                self.world.guard_seen(self.view.pid(), path, st.mtime_ns);
            }
            st
        })
    }
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>> {
        Box::pin(async move {
            self.gate(FsOp::StatFd, Path::new(FD_PATH)).await?;
            self.seen(self.view.stat_fd_now(fd))
        })
    }
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.removal_issued(path);
            self.gate(FsOp::Unlink, path).await?;
            self.race_release(path);
            let ino = self.view.disk().ino_of(path);
            let lock = PathClass::of(path) == PathClass::Lock;
            let dangling = lock && ino.is_none() && self.world.dangling_symlink_at(path);
            self.seen(self.view.unlink_now(path))?;
            self.changed_itself(path, false);
            // A lock inode is also removed at another name: a reclaim drops the lock it swapped
            // out at its private name (`Fs::exchange`). The oracle tells lock inodes by number.
            // A name of a lock inode that still has another (a lock published by `link`, its
            // private name dropped after) removes nothing; at a lock path the lock is gone.
            let may_be_lock_inode = match PathClass::of(path) {
                PathClass::Transcript => false,
                PathClass::Lock => true,
                _ => ino.is_some_and(|ino| self.view.disk().link_count(ino) == 0),
            };
            match ino {
                Some(ino) if may_be_lock_inode => self.world.lock_unlinked(self.view.pid(), path, ino),
                None if dangling => self.world.dangling_removed(self.view.pid(), path),
                _ => {}
            }
            Ok(())
        })
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::Mkdir, path).await?;
            self.seen(self.view.mkdir_now(path))?;
            if PathClass::of(path) == PathClass::Guard {
                self.world.guard_made(self.view.pid(), path);
            }
            Ok(())
        })
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.removal_issued(path);
            self.gate(FsOp::Rmdir, path).await?;
            self.seen(self.view.rmdir_now(path))?;
            if PathClass::of(path) == PathClass::Guard {
                self.world.guard_removed(self.view.pid(), path);
            }
            Ok(())
        })
    }
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.refuse_renameat2_flags()?;
            let put_back = self.race_reclaim(b, a).await;
            self.removal_issued(a);
            self.gate_call(FsOp::Exchange, b, 0, put_back).await.map_err(|f| f.err)?;
            let disk = self.view.disk();
            let (was_a, was_b) = (disk.ino_of(a), disk.ino_of(b));
            self.seen(self.view.exchange_now(a, b))?;
            self.changed_itself(a, true);
            self.changed_itself(b, true);
            if was_b.is_some() && PathClass::of(b) == PathClass::Lock && PathClass::of(a) == PathClass::Dir {
                self.world.swapped_out(self.view.pid(), a);
            }
            for (path, arrived, left) in [(a, was_b, was_a), (b, was_a, was_b)] {
                if PathClass::of(path) == PathClass::Lock {
                    self.world.lock_exchanged(self.view.pid(), arrived, left);
                }
            }
            Ok(())
        })
    }
    /// A lock file published at a lock path comes into being there for the oracle (it was made
    /// at a private name, which no one judges).
    fn rename_noreplace<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.refuse_renameat2_flags()?;
            self.gate(FsOp::Rename, to).await?;
            let moved = self.view.disk().ino_of(from);
            self.seen(self.view.rename_noreplace_now(from, to))?;
            // Our own rename leaves a positive dentry at `to` (and none at `from`) on this host.
            self.changed_itself(from, false);
            self.changed_itself(to, true);
            if let (PathClass::Lock, Some(ino)) = (PathClass::of(to), moved) {
                self.world.lock_created(self.view.pid(), ino);
            }
            Ok(())
        })
    }
    /// Gated as a rename (a name operation of the same fault site: no seed's draws moved). A
    /// name given at a lock path puts that inode on the path for the oracle: a lock of ours we
    /// publish, or a lock a reclaimer moved aside and links back.
    fn link<'a>(&'a self, existing: &'a Path, new: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.refuse_link()?;
            self.gate_move(new, (existing, new)).await?;
            let linked = self.view.lstat_now(existing).ok().map(|st| st.ino);
            self.seen(self.view.link_now(existing, new))?;
            self.changed_itself(new, true);
            if PathClass::of(new) == PathClass::Lock {
                self.world.lock_exchanged(self.view.pid(), linked, None);
            }
            Ok(())
        })
    }
    /// Gated as a rename. What leaves a lock path is moved, not removed (a reclaimer judges it
    /// at its private name and may link it back); what it replaces at a lock path is removed if
    /// that was its last name.
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if PathClass::of(from) == PathClass::Lock {
                // A move aside's put back comes from its private name: never this call.
                let _first = self.race_reclaim(from, to).await;
                self.world.moved_aside(self.view.pid(), from, to);
            }
            self.gate_move(from, (from, to)).await?;
            let disk = self.view.disk();
            let moved = self.view.lstat_now(from).ok().map(|st| st.ino);
            let replaced = self.view.lstat_now(to).ok().map(|st| st.ino).filter(|ino| Some(*ino) != moved);
            self.seen(self.view.rename_now(from, to))?;
            // The client moves its dentry: no negative entry is left at `from` (as `unlink`
            // leaves one), so any cached absence of either name is gone.
            self.changed_itself(from, true);
            self.changed_itself(to, true);
            let pid = self.view.pid();
            if PathClass::of(from) == PathClass::Lock {
                self.world.lock_exchanged(pid, None, moved);
            }
            if let Some(ino) = replaced.filter(|ino| disk.link_count(*ino) == 0) {
                self.world.lock_unlinked(pid, to, ino);
            }
            if PathClass::of(to) == PathClass::Lock {
                self.world.lock_exchanged(pid, moved, None);
            }
            Ok(())
        })
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if let Err(failed) = self.gate_write(FsOp::Append, path, data.len()).await {
                let prefix = &data[..failed.torn];
                if !prefix.is_empty() && self.view.write_path_now(path, prefix, false).is_ok() {
                    self.report_transcript_write(path, prefix, false)?;
                }
                return Err(failed.err);
            }
            self.seen(self.view.write_path_now(path, data, false))?;
            self.report_transcript_write(path, data, true)
        })
    }
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::WriteAll, path).await?;
            self.seen(self.view.write_path_now(path, data, true))
        })
    }
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>> {
        Box::pin(async move {
            self.gate(FsOp::CanonicalDir, dir).await?;
            self.seen(self.view.canonical_dir_now(dir))
        })
    }
    /// One read site for the whole entry read (lstat, open, fstat, read, as the real adapter
    /// does it in one blocking call).
    fn read_entry<'a>(&'a self, path: &'a Path, max_bytes: usize) -> BoxFuture<'a, io::Result<EntryRead>> {
        Box::pin(async move {
            self.gate(FsOp::Read, path).await?;
            self.look_up(path, || self.view.read_entry_now(path, max_bytes))
        })
    }
}
