//! `Fs` on the real filesystem. Every operation is a blocking syscall, so each runs off the
//! async worker (`blocking`: tokio's blocking pool, or a thread of its own outside tokio): a
//! hung mount or a FIFO nobody writes then hangs only that operation, while the abort's settle
//! bound, the acquire's polls and every other task keep running (SPEC I5). A hung operation
//! holds its thread until the kernel lets go, so the operations in flight are bounded: past the
//! bound an operation fails at once with EAGAIN instead of piling threads onto a hung mount.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::blocking::Bound;
use crate::platform::{BoxFuture, EntryRead, Fd, FileStat, Fs};

/// Operations in flight at once by default: far above what the lock issues (one per acquire,
/// release or fence step), far below tokio's blocking pool (512 threads).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// The real filesystem; descriptors it hands out stay open until `close`.
pub struct RealFs {
    shared: Arc<Shared>,
}

struct Shared {
    open: Mutex<HashMap<u64, Arc<File>>>,
    next_fd: AtomicU64,
    /// The operations in flight, bounded.
    calls: Arc<Bound>,
}

impl Default for RealFs {
    fn default() -> Self {
        Self::new()
    }
}

impl RealFs {
    /// The real filesystem with [`DEFAULT_MAX_IN_FLIGHT`] operations in flight at most.
    pub fn new() -> Self {
        Self::with_max_in_flight(DEFAULT_MAX_IN_FLIGHT)
    }

    /// The real filesystem with at most `max_in_flight` (at least 1) operations in flight.
    pub fn with_max_in_flight(max_in_flight: usize) -> Self {
        RealFs {
            shared: Arc::new(Shared {
                open: Mutex::new(HashMap::new()),
                next_fd: AtomicU64::new(1),
                calls: Bound::new(max_in_flight),
            }),
        }
    }

    /// Run one blocking operation off the async worker; EAGAIN when the bound is reached.
    fn off_worker<'a, T, F>(&self, op: F) -> BoxFuture<'a, io::Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> io::Result<T> + Send + 'static,
    {
        let shared = self.shared.clone();
        self.shared.calls.run("heldlock-fs", move || op(&shared))
    }
}

impl Shared {
    fn file(&self, fd: Fd) -> io::Result<Arc<File>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&fd.0).cloned().ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }
}

/// The stat facts the lock uses, from std's metadata (`stat`, `lstat` or `fstat` alike).
pub fn stat_of(meta: &fs::Metadata) -> FileStat {
    FileStat {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        is_dir: meta.is_dir(),
    }
}

/// `Fs::read_entry` on the real filesystem: `lstat`, and only a regular file is opened —
/// `O_NOFOLLOW | O_NONBLOCK`, then checked again with `fstat`, since the entry can be replaced
/// between the two — and read through a cap.
fn read_entry_now(path: &Path, max_bytes: usize) -> io::Result<EntryRead> {
    let no_payload = |meta: &fs::Metadata| {
        if meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        Ok(EntryRead {
            bytes: Vec::new(),
            stat: stat_of(meta),
        })
    };
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return no_payload(&meta);
    }
    let opened = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path);
    let file = match opened {
        Ok(file) => file,
        // Replaced by a symlink (ELOOP) or a socket (ENXIO) since the lstat.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENXIO)) => {
            return no_payload(&fs::symlink_metadata(path)?);
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return no_payload(&meta);
    }
    let cap = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(EntryRead {
        bytes,
        stat: stat_of(&meta),
    })
}

/// `renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)`.
fn exchange_now(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

/// `renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE)`.
fn rename_noreplace_now(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

fn renameat2(a: &Path, b: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn owned(path: &Path) -> PathBuf {
    path.to_owned()
}

impl Fs for RealFs {
    fn create_exclusive<'a>(&'a self, path: &'a Path, mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        let path = owned(path);
        self.off_worker(move |shared| {
            // O_EXCL: an existing entry, a symlink (dangling or not) included, is EEXIST.
            let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&path)?;
            let fd = shared.next_fd.fetch_add(1, Ordering::Relaxed);
            shared.open.lock().unwrap_or_else(|e| e.into_inner()).insert(fd, Arc::new(file));
            Ok(Fd(fd))
        })
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        let data = data.to_vec();
        self.off_worker(move |shared| {
            let file = shared.file(fd)?;
            (&*file).write_all(&data)?;
            file.sync_data()
        })
    }
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>> {
        // Dropping the last reference closes it; an operation still using it closes it later.
        let closed = self.shared.open.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd.0);
        Box::pin(std::future::ready(
            closed.map(drop).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF)),
        ))
    }
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>> {
        let path = owned(path);
        self.off_worker(move |_| fs::read(&path))
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        let path = owned(path);
        self.off_worker(move |_| fs::metadata(&path).map(|m| stat_of(&m)))
    }
    fn lstat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        let path = owned(path);
        self.off_worker(move |_| fs::symlink_metadata(&path).map(|m| stat_of(&m)))
    }
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>> {
        self.off_worker(move |shared| shared.file(fd)?.metadata().map(|m| stat_of(&m)))
    }
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let path = owned(path);
        self.off_worker(move |_| fs::remove_file(&path))
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let path = owned(path);
        self.off_worker(move |_| fs::create_dir(&path))
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let path = owned(path);
        self.off_worker(move |_| fs::remove_dir(&path))
    }
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let (a, b) = (owned(a), owned(b));
        self.off_worker(move |_| exchange_now(&a, &b))
    }
    fn rename_noreplace<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let (from, to) = (owned(from), owned(to));
        self.off_worker(move |_| rename_noreplace_now(&from, &to))
    }
    /// std's `hard_link` is `linkat(AT_FDCWD, existing, AT_FDCWD, new, 0)`: a symlink at
    /// `existing` is linked itself, not followed.
    fn link<'a>(&'a self, existing: &'a Path, new: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let (existing, new) = (owned(existing), owned(new));
        self.off_worker(move |_| fs::hard_link(&existing, &new))
    }
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        let (from, to) = (owned(from), owned(to));
        self.off_worker(move |_| fs::rename(&from, &to))
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        let (path, data) = (owned(path), data.to_vec());
        self.off_worker(move |_| {
            let mut file = OpenOptions::new().append(true).create(true).open(&path)?;
            file.write_all(&data)?;
            file.sync_data()
        })
    }
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        let (path, data) = (owned(path), data.to_vec());
        self.off_worker(move |_| fs::write(&path, &data))
    }
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>> {
        let dir = owned(dir);
        self.off_worker(move |_| fs::canonicalize(&dir))
    }
    fn read_entry<'a>(&'a self, path: &'a Path, max_bytes: usize) -> BoxFuture<'a, io::Result<EntryRead>> {
        let path = owned(path);
        self.off_worker(move |_| read_entry_now(&path, max_bytes))
    }
}
