//! SimFs: one process's view of the in-memory disk, with simulated latency, injected errnos
//! and hung operations, reporting lock-file and transcript changes to the oracle.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use heldlock_core::memfs::MemFsView;
use heldlock_core::platform::{os_error, BoxFuture, EntryRead, Fd, FileStat, Fs};

use crate::faults::{FaultSite, FsOp, PathClass};
use crate::world::World;

/// Stalls from this long on are told to the oracle (they may carry an acquire past its
/// deadline); shorter ones fit in its slack.
const STALL_NOTED_MS: u64 = 100;

pub struct SimFs {
    world: Arc<World>,
    view: MemFsView,
}

impl SimFs {
    pub fn new(world: Arc<World>, view: MemFsView) -> Self {
        SimFs { world, view }
    }

    /// Latency, then the fault decision's effect: an errno, a hang, or go ahead.
    async fn gate(&self, op: FsOp, path: &Path) -> io::Result<()> {
        let site = FaultSite {
            op,
            class: PathClass::of(path),
        };
        let decision = self.world.faults.decide(site, crate::clock::now_ns() / 1_000_000);
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
                    Some(code) => Err(os_error(code)),
                    // Hung until the world heals (then it fails), or until the process dies and
                    // its tasks are dropped.
                    None => {
                        self.world.until_healed().await;
                        self.world.hang_ended(self.view.pid());
                        Err(os_error(heldlock_core::platform::errno::EIO))
                    }
                }
            }
        }
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
            if PathClass::of(path) == PathClass::Lock {
                if let Some(ino) = self.view.disk().ino_of(path) {
                    self.world.lock_created(self.view.pid(), path, ino);
                }
            }
            Ok(fd)
        })
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::WriteFd, Path::new(FD_PATH)).await?;
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
            self.seen(self.view.read_now(path))
        })
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        Box::pin(async move {
            self.gate(FsOp::Stat, path).await?;
            self.seen(self.view.stat_now(path))
        })
    }
    /// Gated as a stat: the same fault site, so adding the method moved no seed's draws.
    fn lstat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        Box::pin(async move {
            self.gate(FsOp::Stat, path).await?;
            self.seen(self.view.lstat_now(path))
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
            self.gate(FsOp::Unlink, path).await?;
            let ino = self.view.disk().ino_of(path);
            self.seen(self.view.unlink_now(path))?;
            if let (PathClass::Lock, Some(ino)) = (PathClass::of(path), ino) {
                self.world.lock_unlinked(self.view.pid(), path, ino);
            }
            Ok(())
        })
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::Mkdir, path).await?;
            self.seen(self.view.mkdir_now(path))
        })
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::Rmdir, path).await?;
            self.seen(self.view.rmdir_now(path))
        })
    }
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::Exchange, b).await?;
            let disk = self.view.disk();
            let (was_a, was_b) = (disk.ino_of(a), disk.ino_of(b));
            self.seen(self.view.exchange_now(a, b))?;
            for (path, arrived, left) in [(a, was_b, was_a), (b, was_a, was_b)] {
                if PathClass::of(path) == PathClass::Lock {
                    self.world.lock_exchanged(self.view.pid(), path, arrived, left);
                }
            }
            Ok(())
        })
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.gate(FsOp::Append, path).await?;
            self.seen(self.view.write_path_now(path, data, false))?;
            if PathClass::of(path) == PathClass::Transcript {
                let canonical = self.view.canonical_dir_now(path.parent().unwrap_or(Path::new("/")))?;
                self.world.transcript_appended(
                    self.view.pid(),
                    &canonical.join(path.file_name().unwrap_or_default()),
                );
            }
            Ok(())
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
            self.seen(self.view.read_entry_now(path, max_bytes))
        })
    }
}
