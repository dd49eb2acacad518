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
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EMFILE: i32 = 24;
    pub const ENOSPC: i32 = 28;
    pub const ENOTEMPTY: i32 = 39;

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
            EMFILE => "EMFILE",
            ENOSPC => "ENOSPC",
            ENOTEMPTY => "ENOTEMPTY",
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
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
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
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>>;
    /// `fstat(2)`: the file a descriptor is open on, wherever its name went.
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>>;
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>>;
    /// `open(O_APPEND|O_CREAT)`, one write of all of `data`, close.
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Replace the whole content (truncate and write), creating the file if needed.
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// The directory made absolute with every symlink resolved (`realpath`).
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>>;
}

/// Wall and monotonic time, and sleeping.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
    /// Monotonic milliseconds from an arbitrary origin.
    fn mono_ms(&self) -> u64;
    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()>;
}

/// What a liveness probe of a pid found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Dead,
    Zombie,
    /// Running; its start time in clock ticks when the platform can tell.
    Alive {
        starttime: Option<u64>,
    },
    /// The signal probe was refused (EPERM): the process exists, so it counts as alive. Its
    /// start time when the platform can still read it (`/proc/<pid>/stat` is world-readable):
    /// the recycled-pid check applies to it like to any live pid.
    PermissionDenied {
        starttime: Option<u64>,
    },
}

/// The processes of the machine, as the stale-lock judge sees them.
pub trait Processes: Send + Sync {
    fn own_pid(&self) -> u32;
    /// This process's start time in clock ticks (`/proc/self/stat` field 22).
    fn own_starttime(&self) -> Option<u64>;
    fn probe(&self, pid: u32) -> Liveness;
    /// Whether a live pid is a gateway of this system; `None` when unknown.
    fn is_gateway(&self, pid: u32) -> Option<bool>;
}

/// Fire-and-forget tasks (the abort release, the watchdog).
pub trait Spawn: Send + Sync {
    fn spawn(&self, name: &'static str, task: BoxFuture<'static, ()>);
}

/// Told of every state change of the lock, the owner mutex and the controllers. A no-op in
/// production; the simulator's oracle and trace in simulation.
pub trait Observer: Send + Sync {
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
    pub fs: Arc<dyn Fs>,
    pub clock: Arc<dyn Clock>,
    pub processes: Arc<dyn Processes>,
    pub spawner: Arc<dyn Spawn>,
    pub observer: Arc<dyn Observer>,
}

impl Platform {
    pub(crate) fn emit(&self, event: LockEvent) {
        self.observer.on_event(&event);
    }
}
