//! The project's one in-memory filesystem. A `MemFs` is the machine's disk (inodes, names,
//! directory symlinks); a `MemFsView` is one process's window on it, with its own fd table and
//! fd limit, so EMFILE arises from real exhaustion. Tests use a view as their `Fs`; the
//! simulator wraps views with latency, faults and hangs.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::platform::{errno, os_error, BoxFuture, Fd, FileStat, Fs};

/// The device number every MemFs file reports.
pub const MEMFS_DEV: u64 = 1;
/// The default per-process fd limit (`ulimit -n`).
pub const DEFAULT_FD_LIMIT: usize = 64;

/// Where file times come from: wall-clock nanoseconds.
pub type TimeSource = Arc<dyn Fn() -> i128 + Send + Sync>;

struct Inode {
    data: Vec<u8>,
    is_dir: bool,
    mtime_ns: i128,
    ctime_ns: i128,
    /// Names pointing at it.
    links: u32,
    /// Descriptors open on it.
    opens: u32,
}

struct OpenFile {
    ino: u64,
    pid: u32,
}

#[derive(Default)]
struct Disk {
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    /// Directory symlinks: link path ⇒ target directory.
    symlinks: BTreeMap<PathBuf, PathBuf>,
    fds: BTreeMap<u64, OpenFile>,
    next_ino: u64,
    next_fd: u64,
    /// The last file time handed out: every change gets a strictly later time.
    last_time_ns: i128,
}

/// The shared disk.
#[derive(Clone)]
pub struct MemFs {
    disk: Arc<Mutex<Disk>>,
    now_ns: TimeSource,
}

/// One process's view: the disk plus its fd table.
#[derive(Clone)]
pub struct MemFsView {
    fs: MemFs,
    pid: u32,
    fd_limit: usize,
}

impl MemFs {
    /// An empty disk with a root directory.
    pub fn new(now_ns: TimeSource) -> Self {
        let fs = MemFs {
            disk: Arc::new(Mutex::new(Disk {
                next_ino: 1,
                next_fd: 3,
                ..Disk::default()
            })),
            now_ns,
        };
        let mut disk = fs.disk.lock().unwrap();
        let t = fs.tick(&mut disk);
        let root = disk.new_inode(true, t);
        disk.names.insert(PathBuf::from("/"), root);
        drop(disk);
        fs
    }

    /// The view of process `pid`, with at most `fd_limit` open descriptors.
    pub fn view(&self, pid: u32, fd_limit: usize) -> MemFsView {
        MemFsView {
            fs: self.clone(),
            pid,
            fd_limit,
        }
    }

    fn tick(&self, disk: &mut Disk) -> i128 {
        let t = (self.now_ns)().max(disk.last_time_ns + 1);
        disk.last_time_ns = t;
        t
    }

    /// `mkdir -p`.
    pub fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = absolute(path);
        let mut disk = self.disk.lock().unwrap();
        let mut current = PathBuf::from("/");
        for part in path.components().skip(1) {
            current.push(part);
            match disk.names.get(&current) {
                Some(ino) if disk.inodes[ino].is_dir => {}
                Some(_) => return Err(os_error(errno::ENOTDIR)),
                None => {
                    let t = self.tick(&mut disk);
                    let ino = disk.new_inode(true, t);
                    disk.names.insert(current.clone(), ino);
                }
            }
        }
        Ok(())
    }

    /// `ln -s target link` for directories.
    pub fn symlink_dir(&self, target: &Path, link: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let link = absolute(link);
        if disk.names.contains_key(&link) || disk.symlinks.contains_key(&link) {
            return Err(os_error(errno::EEXIST));
        }
        disk.symlinks.insert(link, absolute(target));
        Ok(())
    }

    /// Change only the inode change time (what `chmod` does).
    pub fn touch_ctime(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let path = disk.resolve(path);
        let ino = *disk.names.get(&path).ok_or_else(|| os_error(errno::ENOENT))?;
        let t = self.tick(&mut disk);
        disk.inodes.get_mut(&ino).expect("named inode exists").ctime_ns = t;
        Ok(())
    }

    /// The content of a file, outside any process (for oracles and tests).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk.lock().unwrap();
        let path = disk.resolve(path);
        disk.names.get(&path).map(|ino| disk.inodes[ino].data.clone())
    }

    /// The inode a path names now, if any.
    pub fn ino_of(&self, path: &Path) -> Option<u64> {
        let disk = self.disk.lock().unwrap();
        let path = disk.resolve(path);
        disk.names.get(&path).copied()
    }

    /// Close every descriptor of `pid` (the process died).
    pub fn close_all(&self, pid: u32) {
        let mut disk = self.disk.lock().unwrap();
        let fds: Vec<u64> = disk.fds.iter().filter(|(_, f)| f.pid == pid).map(|(fd, _)| *fd).collect();
        for fd in fds {
            disk.close(fd);
        }
    }

    /// Descriptors open per pid.
    pub fn open_fds(&self) -> BTreeMap<u32, usize> {
        let disk = self.disk.lock().unwrap();
        let mut counts = BTreeMap::new();
        for f in disk.fds.values() {
            *counts.entry(f.pid).or_insert(0) += 1;
        }
        counts
    }
}

impl Disk {
    fn new_inode(&mut self, is_dir: bool, t: i128) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                data: Vec::new(),
                is_dir,
                mtime_ns: t,
                ctime_ns: t,
                links: 1,
                opens: 0,
            },
        );
        ino
    }

    /// Absolute, `.`/`..` folded, directory symlinks followed (bounded depth).
    fn resolve(&self, path: &Path) -> PathBuf {
        let mut path = absolute(path);
        for _ in 0..16 {
            let hit = self.symlinks.iter().rev().find(|(link, _)| path.starts_with(link));
            match hit {
                Some((link, target)) => {
                    let rest = path.strip_prefix(link).expect("prefix checked").to_owned();
                    path = absolute(&target.join(rest));
                }
                None => return path,
            }
        }
        path
    }

    fn parent_is_dir(&self, path: &Path) -> io::Result<()> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        match self.names.get(parent) {
            Some(ino) if self.inodes[ino].is_dir => Ok(()),
            Some(_) => Err(os_error(errno::ENOTDIR)),
            None => Err(os_error(errno::ENOENT)),
        }
    }

    fn open_count(&self, pid: u32) -> usize {
        self.fds.values().filter(|f| f.pid == pid).count()
    }

    fn open(&mut self, ino: u64, pid: u32) -> u64 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.fds.insert(fd, OpenFile { ino, pid });
        self.inodes.get_mut(&ino).expect("open of a live inode").opens += 1;
        fd
    }

    fn close(&mut self, fd: u64) -> bool {
        let Some(file) = self.fds.remove(&fd) else {
            return false;
        };
        let inode = self.inodes.get_mut(&file.ino).expect("open inode exists");
        inode.opens -= 1;
        if inode.opens == 0 && inode.links == 0 {
            self.inodes.remove(&file.ino);
        }
        true
    }

    fn unname(&mut self, path: &Path) {
        if let Some(ino) = self.names.remove(path) {
            let inode = self.inodes.get_mut(&ino).expect("named inode exists");
            inode.links -= 1;
            if inode.links == 0 && inode.opens == 0 {
                self.inodes.remove(&ino);
            }
        }
    }
}

/// Make a path absolute (relative paths are taken from `/`) with `.` and `..` folded.
fn absolute(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    out
}

impl MemFsView {
    pub fn disk(&self) -> &MemFs {
        &self.fs
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn with_disk<T>(&self, f: impl FnOnce(&mut Disk, &MemFs) -> io::Result<T>) -> io::Result<T> {
        let mut disk = self.fs.disk.lock().unwrap();
        f(&mut disk, &self.fs)
    }

    fn check_fd_room(&self, disk: &Disk) -> io::Result<()> {
        if disk.open_count(self.pid) >= self.fd_limit {
            return Err(os_error(errno::EMFILE));
        }
        Ok(())
    }

    pub fn create_exclusive_now(&self, path: &Path) -> io::Result<Fd> {
        self.with_disk(|disk, fs| {
            let path = disk.resolve(path);
            disk.parent_is_dir(&path)?;
            if disk.names.contains_key(&path) {
                return Err(os_error(errno::EEXIST));
            }
            self.check_fd_room(disk)?;
            let t = fs.tick(disk);
            let ino = disk.new_inode(false, t);
            disk.names.insert(path, ino);
            Ok(Fd(disk.open(ino, self.pid)))
        })
    }

    /// A descriptor on no file (a socket, a pipe): it counts against the fd limit like any.
    pub fn open_anonymous_now(&self) -> io::Result<Fd> {
        self.with_disk(|disk, fs| {
            self.check_fd_room(disk)?;
            let t = fs.tick(disk);
            let ino = disk.new_inode(false, t);
            disk.inodes.get_mut(&ino).expect("just made").links = 0;
            Ok(Fd(disk.open(ino, self.pid)))
        })
    }

    pub fn write_fd_now(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let file =
                disk.fds.get(&fd.0).filter(|f| f.pid == self.pid).ok_or_else(|| os_error(errno::EBADF))?;
            let ino = file.ino;
            let t = fs.tick(disk);
            let inode = disk.inodes.get_mut(&ino).expect("open inode exists");
            inode.data.extend_from_slice(data);
            inode.mtime_ns = t;
            inode.ctime_ns = t;
            Ok(())
        })
    }

    pub fn close_now(&self, fd: Fd) -> io::Result<()> {
        self.with_disk(|disk, _| {
            let ours = disk.fds.get(&fd.0).is_some_and(|f| f.pid == self.pid);
            if ours && disk.close(fd.0) {
                Ok(())
            } else {
                Err(os_error(errno::EBADF))
            }
        })
    }

    pub fn read_now(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.with_disk(|disk, _| {
            let path = disk.resolve(path);
            let ino = *disk.names.get(&path).ok_or_else(|| os_error(errno::ENOENT))?;
            if disk.inodes[&ino].is_dir {
                return Err(os_error(errno::EISDIR));
            }
            self.check_fd_room(disk)?;
            Ok(disk.inodes[&ino].data.clone())
        })
    }

    pub fn stat_now(&self, path: &Path) -> io::Result<FileStat> {
        self.with_disk(|disk, _| {
            let path = disk.resolve(path);
            let ino = *disk.names.get(&path).ok_or_else(|| os_error(errno::ENOENT))?;
            let inode = &disk.inodes[&ino];
            Ok(FileStat {
                dev: MEMFS_DEV,
                ino,
                size: inode.data.len() as u64,
                mtime_ns: inode.mtime_ns,
                ctime_ns: inode.ctime_ns,
                is_dir: inode.is_dir,
            })
        })
    }

    pub fn stat_fd_now(&self, fd: Fd) -> io::Result<FileStat> {
        self.with_disk(|disk, _| {
            let file =
                disk.fds.get(&fd.0).filter(|f| f.pid == self.pid).ok_or_else(|| os_error(errno::EBADF))?;
            let inode = &disk.inodes[&file.ino];
            Ok(FileStat {
                dev: MEMFS_DEV,
                ino: file.ino,
                size: inode.data.len() as u64,
                mtime_ns: inode.mtime_ns,
                ctime_ns: inode.ctime_ns,
                is_dir: inode.is_dir,
            })
        })
    }

    pub fn unlink_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, _| {
            let path = disk.resolve(path);
            let ino = *disk.names.get(&path).ok_or_else(|| os_error(errno::ENOENT))?;
            if disk.inodes[&ino].is_dir {
                return Err(os_error(errno::EISDIR));
            }
            disk.unname(&path);
            Ok(())
        })
    }

    pub fn mkdir_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let path = disk.resolve(path);
            disk.parent_is_dir(&path)?;
            if disk.names.contains_key(&path) {
                return Err(os_error(errno::EEXIST));
            }
            let t = fs.tick(disk);
            let ino = disk.new_inode(true, t);
            disk.names.insert(path, ino);
            Ok(())
        })
    }

    pub fn rmdir_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, _| {
            let path = disk.resolve(path);
            let ino = *disk.names.get(&path).ok_or_else(|| os_error(errno::ENOENT))?;
            if !disk.inodes[&ino].is_dir {
                return Err(os_error(errno::ENOTDIR));
            }
            let has_children =
                disk.names.range(path.clone()..).nth(1).is_some_and(|(p, _)| p.starts_with(&path));
            if has_children {
                return Err(os_error(errno::ENOTEMPTY));
            }
            disk.unname(&path);
            Ok(())
        })
    }

    /// `replace`: true truncates first (write_all), false appends.
    pub fn write_path_now(&self, path: &Path, data: &[u8], replace: bool) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let path = disk.resolve(path);
            self.check_fd_room(disk)?;
            let t = fs.tick(disk);
            let ino = match disk.names.get(&path) {
                Some(&ino) if disk.inodes[&ino].is_dir => return Err(os_error(errno::EISDIR)),
                Some(&ino) => ino,
                None => {
                    disk.parent_is_dir(&path)?;
                    let ino = disk.new_inode(false, t);
                    disk.names.insert(path, ino);
                    ino
                }
            };
            let inode = disk.inodes.get_mut(&ino).expect("named inode exists");
            if replace {
                inode.data.clear();
            }
            inode.data.extend_from_slice(data);
            inode.mtime_ns = t;
            inode.ctime_ns = t;
            Ok(())
        })
    }

    pub fn canonical_dir_now(&self, dir: &Path) -> io::Result<PathBuf> {
        self.with_disk(|disk, _| {
            let path = disk.resolve(dir);
            match disk.names.get(&path) {
                Some(ino) if disk.inodes[ino].is_dir => Ok(path),
                Some(_) => Err(os_error(errno::ENOTDIR)),
                None => Err(os_error(errno::ENOENT)),
            }
        })
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Fs for MemFsView {
    fn create_exclusive<'a>(&'a self, path: &'a Path, _mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        ready(self.create_exclusive_now(path))
    }
    fn write_fd<'a>(&'a self, fd: Fd, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready(self.write_fd_now(fd, data))
    }
    fn close(&self, fd: Fd) -> BoxFuture<'_, io::Result<()>> {
        ready(self.close_now(fd))
    }
    fn read<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<Vec<u8>>> {
        ready(self.read_now(path))
    }
    fn stat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        ready(self.stat_now(path))
    }
    fn stat_fd(&self, fd: Fd) -> BoxFuture<'_, io::Result<FileStat>> {
        ready(self.stat_fd_now(fd))
    }
    fn unlink<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.unlink_now(path))
    }
    fn mkdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.mkdir_now(path))
    }
    fn rmdir<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.rmdir_now(path))
    }
    fn append<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready(self.write_path_now(path, data, false))
    }
    fn write_all<'a>(&'a self, path: &'a Path, data: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        ready(self.write_path_now(path, data, true))
    }
    fn canonical_dir<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, io::Result<PathBuf>> {
        ready(self.canonical_dir_now(dir))
    }
}
