//! `Fs` on the real filesystem. Lock files are tiny, so each operation runs inline.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::platform::{BoxFuture, Fd, FileStat, Fs};

/// The real filesystem; descriptors it hands out stay open until `close`.
#[derive(Default)]
pub struct RealFs {
    open: Mutex<HashMap<u64, File>>,
    next: Mutex<u64>,
}

impl RealFs {
    pub fn new() -> Self {
        Self::default()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

fn stat_of(meta: &fs::Metadata) -> FileStat {
    FileStat {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        is_dir: meta.is_dir(),
    }
}

impl Fs for RealFs {
    fn create_exclusive<'a>(&'a self, path: &'a Path, mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        ready((|| {
            let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
            let mut next = self.next.lock().unwrap();
            *next += 1;
            self.open.lock().unwrap().insert(*next, file);
            Ok(Fd(*next))
        })())
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready((|| {
            let mut open = self.open.lock().unwrap();
            let file = open.get_mut(&fd.0).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
            file.write_all(data)?;
            file.sync_data()
        })())
    }
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>> {
        let closed = self.open.lock().unwrap().remove(&fd.0);
        ready(closed.map(drop).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF)))
    }
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>> {
        ready(fs::read(path))
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        ready(fs::metadata(path).map(|m| stat_of(&m)))
    }
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>> {
        let open = self.open.lock().unwrap();
        let stat = match open.get(&fd.0) {
            Some(file) => file.metadata().map(|m| stat_of(&m)),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        ready(stat)
    }
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(fs::remove_file(path))
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(fs::create_dir(path))
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(fs::remove_dir(path))
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready((|| {
            let mut file = OpenOptions::new().append(true).create(true).open(path)?;
            file.write_all(data)?;
            file.sync_data()
        })())
    }
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready(fs::write(path, data))
    }
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>> {
        ready(fs::canonicalize(dir))
    }
}
