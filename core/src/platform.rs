//! The ports the lock is written against: filesystem, clock, processes, task spawning and the
//! observer. Production plugs in `crate::real`; tests plug in `MemFs` and a paused clock; the
//! simulator plugs in its faulty world. Nothing here names a runtime.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use crate::event::LockEvent;

/// A boxed, sendable future: the ports are object-safe so one build serves every platform.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The errno values the lock distinguishes (Linux numbering, as `raw_os_error` reports them).
pub mod errno {
    /// Operation not permitted (a liveness probe refused: the process exists).
    pub const EPERM: i32 = 1;
    /// No such file or directory (a lock that vanished).
    pub const ENOENT: i32 = 2;
    /// Interrupted system call.
    pub const EINTR: i32 = 4;
    /// Input/output error.
    pub const EIO: i32 = 5;
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Resource temporarily unavailable (also: too many filesystem operations in flight).
    pub const EAGAIN: i32 = 11;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// File exists (the exclusive create lost, or a reclaim guard is taken).
    pub const EEXIST: i32 = 17;
    /// Not a directory.
    pub const ENOTDIR: i32 = 20;
    /// Is a directory.
    pub const EISDIR: i32 = 21;
    /// Invalid argument (also: the filesystem cannot exchange two names).
    pub const EINVAL: i32 = 22;
    /// Too many open files.
    pub const EMFILE: i32 = 24;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// Function not implemented (a kernel without `renameat2`).
    pub const ENOSYS: i32 = 38;
    /// Directory not empty.
    pub const ENOTEMPTY: i32 = 39;
    /// Operation not supported (a filesystem without hard links).
    pub const EOPNOTSUPP: i32 = 95;

    /// The short name of an errno, for errors and traces.
    pub fn name(code: i32) -> &'static str {
        match code {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EINTR => "EINTR",
            EIO => "EIO",
            EBADF => "EBADF",
            EAGAIN => "EAGAIN",
            EACCES => "EACCES",
            EEXIST => "EEXIST",
            ENOTDIR => "ENOTDIR",
            EISDIR => "EISDIR",
            EINVAL => "EINVAL",
            ENOSYS => "ENOSYS",
            EMFILE => "EMFILE",
            ENOSPC => "ENOSPC",
            ENOTEMPTY => "ENOTEMPTY",
            EOPNOTSUPP => "EOPNOTSUPP",
            _ => "E?",
        }
    }
}

/// An `io::Error` carrying a real errno.
pub fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// True when `err` carries exactly this errno.
pub fn is_errno(err: &io::Error, code: i32) -> bool {
    err.raw_os_error() == Some(code)
}

/// An open file descriptor of the platform's filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u64);

/// The parts of `stat(2)` the lock and the fence use. Times are wall-clock nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The device the file lives on.
    pub dev: u64,
    /// The inode: with `dev`, the file's identity whatever its name.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Last content change, wall-clock nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Last inode change (content, mode, links), wall-clock nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// The filesystem, as the lock uses it. Every error is an `io::Error` with a real errno.
pub trait Fs: Send + Sync {
    /// `open(path, O_CREAT|O_EXCL|O_WRONLY, mode)`: EEXIST when the path exists.
    fn create_exclusive<'a>(&'a self, path: &'a Path, mode: u32) -> BoxFuture<'a, io::Result<Fd>>;
    /// Write all of `data` at the descriptor's offset.
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Close a descriptor.
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>>;
    /// The whole content of a file (opens and closes a descriptor).
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>>;
    /// `stat(2)`, following symlinks.
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>>;
    /// `lstat(2)`: the entry itself, a symlink not followed. The default is `stat`: right for
    /// filesystems with no symlinks where the lock looks (test doubles; MemFs and the real adapter implement it).
    fn lstat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        self.stat(path)
    }
    /// `fstat(2)`: the file a descriptor is open on, wherever its name went.
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>>;
    /// `unlink(2)`: removes the name (a symlink itself, never its target).
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `mkdir(2)`: EEXIST when the path exists (the reclaim guard's test-and-set).
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `rmdir(2)` of an empty directory.
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `renameat2(a, b, RENAME_EXCHANGE)`: swap the entries at `a` and `b` in one step (both
    /// must exist, else ENOENT). The only removal POSIX makes conditional on what is removed:
    /// a reclaimer swaps its own lock in for the one it judged and then sees what it took
    /// (SPEC §1 step 3). EINVAL (or ENOSYS) when the filesystem cannot exchange.
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `renameat2(from, to, RENAME_NOREPLACE)`: `from` takes the name `to` in one step, EEXIST
    /// when `to` exists. A creator publishes its lock made whole at a private name: the lock
    /// path never holds a half-made lock, and a failed payload write leaves only its private
    /// file to drop (SPEC §1 step 2). EINVAL (or ENOSYS) when the filesystem cannot.
    fn rename_noreplace<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `link(existing, new)`: a second name for the entry at `existing` (a symlink itself, not
    /// followed), in one step, EEXIST when `new` exists. Where `rename_noreplace` is refused
    /// (NFS: EINVAL), a creator publishes its whole lock by linking its private file to the
    /// lock path. EPERM, EOPNOTSUPP (or ENOSYS) when the filesystem has no hard links.
    fn link<'a>(&'a self, existing: &'a Path, new: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `rename(2)`: `from` takes the name `to` in one step, replacing what is there. Where
    /// `exchange` is refused, a reclaimer moves the judged lock aside to a private name with it,
    /// and judges what it moved there (SPEC §1 step 3).
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `open(O_APPEND|O_CREAT)`, one write of all of `data`, close.
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Replace the whole content (truncate and write), creating the file if needed.
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// The directory made absolute with every symlink resolved (`realpath`).
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>>;

    /// The entry at a lock path as the judge needs it: at most `max_bytes + 1` bytes of its
    /// content (more than `max_bytes` is no payload anyway) and the stat of that entry.
    ///
    /// Never follows a symlink at `path` and never blocks on a FIFO or a device: such an entry
    /// reads as empty (no payload) with its own (`lstat`) identity and mtime, so the judge ages
    /// it out like any payload-less lock and a reclaim unlinks the entry itself. A directory
    /// fails with EISDIR.
    ///
    /// The default reads, then stats: right for filesystems whose lock paths hold only regular
    /// files and directories (test doubles; MemFs and the real adapter implement it).
    fn read_entry<'a>(&'a self, path: &'a Path, max_bytes: usize) -> BoxFuture<'a, io::Result<EntryRead>> {
        Box::pin(async move {
            let mut bytes = self.read(path).await?;
            let stat = self.stat(path).await?;
            bytes.truncate(max_bytes.saturating_add(1));
            Ok(EntryRead { bytes, stat })
        })
    }
}

/// What [`Fs::read_entry`] saw at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRead {
    /// The content, capped at the reader's `max_bytes + 1`; empty for a non-regular entry.
    pub bytes: Vec<u8>,
    /// The entry itself (a symlink's own stat, not its target's).
    pub stat: FileStat,
}

/// Wall and monotonic time, and sleeping.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
    /// Monotonic milliseconds from an arbitrary origin.
    fn mono_ms(&self) -> u64;
    /// A future that completes `ms` milliseconds of monotonic time from now.
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()>;
}

/// What a liveness probe of a pid found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// No such process.
    Dead,
    /// Exited but not yet reaped: as good as dead.
    Zombie,
    /// Running.
    Alive {
        /// Its start time in clock ticks, when the platform can tell.
        starttime: Option<u64>,
    },
    /// The signal probe was refused (EPERM): the process exists, so it counts as alive. Its
    /// start time when the platform can still read it (`/proc/<pid>/stat` is world-readable):
    /// the recycled-pid check applies to it like to any live pid.
    PermissionDenied {
        /// Its start time in clock ticks, when the platform can still read it.
        starttime: Option<u64>,
    },
}

/// The processes of the machine, as the stale-lock judge sees them. Probing another process
/// reads `/proc`, which takes time and can block (a target whose memory map is locked holds a
/// `cmdline` read): those calls are futures, and the real adapter runs them off the async
/// workers. What a process knows of itself does not change and is answered at once.
pub trait Processes: Send + Sync {
    /// This process's pid.
    fn own_pid(&self) -> u32;
    /// This process's start time in clock ticks (`/proc/self/stat` field 22), read once.
    fn own_starttime(&self) -> Option<u64>;
    /// Whether `pid` is alive, a zombie or gone (the judge's `dead-pid` / `recycled-pid`).
    fn probe(&self, pid: u32) -> BoxFuture<'_, Liveness>;
    /// Whether a live pid is a gateway of this system; `None` when unknown.
    fn is_gateway(&self, pid: u32) -> BoxFuture<'_, Option<bool>>;
}

/// Fire-and-forget tasks (the abort release, the watchdog).
pub trait Spawn: Send + Sync {
    /// Run `task` detached; `name` says what it is (for threads and traces).
    fn spawn(&self, name: &'static str, task: BoxFuture<'static, ()>);
}

/// Told of every state change of the lock, the owner mutex and the controllers: `tracing` logs
/// in production ([`crate::real::TracingObserver`]); the simulator's oracle and trace in
/// simulation.
pub trait Observer: Send + Sync {
    /// One state change. Called inline, often with internal locks held: return quickly and
    /// never call back into the lock.
    fn on_event(&self, event: &LockEvent);
}

/// The observer that ignores everything.
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_event(&self, _event: &LockEvent) {}
}

/// Everything one process's lock machinery runs on.
#[derive(Clone)]
pub struct Platform {
    /// Where lock files and transcripts live.
    pub fs: Arc<dyn Fs>,
    /// Wall time for payloads and ages, monotonic time for budgets and sleeps.
    pub clock: Arc<dyn Clock>,
    /// Liveness of the pids named in lock payloads.
    pub processes: Arc<dyn Processes>,
    /// Runs the detached tasks: the abort release, the watchdog.
    pub spawner: Arc<dyn Spawn>,
    /// Told of every state change (logging in production, the oracle in simulation).
    pub observer: Arc<dyn Observer>,
}

impl Platform {
    pub(crate) fn emit(&self, event: LockEvent) {
        self.observer.on_event(&event);
    }
}
