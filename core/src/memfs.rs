//! The project's one in-memory filesystem. A `MemFs` is the machine's disk (inodes, names,
//! symlinks); a `MemFsView` is one process's window on it, with its own fd table and fd limit,
//! so EMFILE arises from real exhaustion. Tests use a view as their `Fs`; the simulator wraps
//! views with latency, faults and hangs.
//!
//! It answers as Linux does (checked op by op against the real filesystem by `heldlock parity`):
//! paths are walked component by component, symlinks followed in the middle and, per operation,
//! at the end (`unlink`, `mkdir`, `rmdir` and `O_EXCL` creates act on the link itself); `..` is
//! physical; an open counts against the fd limit before the path is looked at; descriptors
//! write at their own offset; a change stamps the parent directory's times. Permissions: each
//! inode has an owner and mode bits, a view a uid; a view other than root gets EACCES where
//! Linux's DAC checks give it (search on every directory looked in, write on the directory to
//! create or remove a name, read or write on a file to open it). Intended differences: inode
//! numbers are never reused, directory sizes are 0, times come from the `TimeSource` and every
//! change gets a strictly later one; there are no groups (a non-owner is judged by the "other"
//! bits), no sticky bit, no ACLs or capabilities but root's.

use std::collections::{BTreeMap, HashMap, VecDeque};

use fnv::FnvHashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::platform::{errno, os_error, BoxFuture, EntryRead, Fd, FileStat, Fs};

/// The device number every MemFs file reports.
pub const MEMFS_DEV: u64 = 1;
/// The default per-process fd limit (`ulimit -n`).
pub const DEFAULT_FD_LIMIT: usize = 64;

/// The superuser: every permission check passes (`CAP_DAC_OVERRIDE`).
pub const ROOT_UID: u32 = 0;
/// The umask of every MemFs process: a new file is `0o666 & !UMASK`, a new directory
/// `0o777 & !UMASK`, an exclusive create `mode & !UMASK`.
pub const UMASK: u32 = 0o022;
/// Permission bits, as `access(2)` names them.
const READ: u32 = 4;
const WRITE: u32 = 2;
const SEARCH: u32 = 1;

/// Where file times come from: wall-clock nanoseconds.
pub type TimeSource = Arc<dyn Fn() -> i128 + Send + Sync>;

struct Inode {
    data: Vec<u8>,
    is_dir: bool,
    mtime_ns: i128,
    ctime_ns: i128,
    /// Permission bits (`0o777`) and owner.
    mode: u32,
    uid: u32,
    /// Names pointing at it.
    links: u32,
    /// Descriptors open on it.
    opens: u32,
}

struct OpenFile {
    ino: u64,
    pid: u32,
    /// The file position: writes land here (no descriptor of the trait is `O_APPEND`).
    offset: u64,
}

/// The first inode number a symlink gets.
pub const SYMLINK_INO_BASE: u64 = 1 << 62;

/// Linux's bound on symlinks followed in one lookup (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: u32 = 40;

/// What a path leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Missing,
    Inode(u64),
    /// A symlink that was not followed (the operation acts on the link itself).
    Symlink,
}

/// How a walk takes `..`: the kernel looks it up in the directory it leaves (search permission
/// needed); glibc's `realpath` takes it off the resolved path as text (none needed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dotdot {
    LookedUp,
    Textual,
}

/// A symlink's own identity and times (`lstat`); a rename moves its ctime only.
#[derive(Clone, Copy)]
struct LinkStat {
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// The entries below a directory an exchange moves: names relative to it.
struct Subtree {
    names: Vec<(PathBuf, u64)>,
    symlinks: Vec<(PathBuf, PathBuf, LinkStat)>,
}

/// An entry taken off its name by an exchange.
enum Taken {
    Inode(u64),
    Symlink(PathBuf, LinkStat),
}

/// A walked path: where its last component lives (parent resolved) and what is there.
struct Walked {
    path: PathBuf,
    entry: Entry,
}

#[derive(Default)]
struct Disk {
    inodes: HashMap<u64, Inode>,
    /// Keyed by the bytes of the normalized absolute path (every key and every lookup is a
    /// walked path: `/`-rooted, no `.`, `..` or `//`), so byte equality is path equality and a
    /// lookup hashes the bytes once. Hashed, not ordered: nothing iterates names in an order
    /// that could reach a trace (`has_children` only asks whether any exists).
    names: FnvHashMap<OsString, u64>,
    /// Symlinks: link path ⇒ target as written (absolute, or relative to the link's directory).
    symlinks: FnvHashMap<OsString, PathBuf>,
    /// Each symlink's own identity and time, for `lstat` (numbers from `SYMLINK_INO_BASE`, so
    /// the inode numbers of files and directories are what they were before links had any).
    symlink_stats: FnvHashMap<OsString, LinkStat>,
    next_symlink_ino: u64,
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
    /// Whose permissions its operations have (`ROOT_UID` unless `as_user` said otherwise).
    uid: u32,
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
        disk.names.insert(OsString::from("/"), root);
        drop(disk);
        fs
    }

    /// The view of process `pid`, with at most `fd_limit` open descriptors.
    pub fn view(&self, pid: u32, fd_limit: usize) -> MemFsView {
        MemFsView {
            fs: self.clone(),
            pid,
            fd_limit,
            uid: ROOT_UID,
        }
    }

    /// `chmod(2)` from outside any process: the permission bits of what `path` leads to
    /// (symlinks followed); its ctime moves.
    pub fn chmod(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let ino = disk.existing(path)?;
        let t = self.tick(&mut disk);
        let inode = disk.inodes.get_mut(&ino).expect("named inode exists");
        inode.mode = mode & 0o777;
        inode.ctime_ns = t;
        Ok(())
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
            // Each prefix walked as Linux would: through symlinks, to where it really lives.
            let walked = disk.walk(&current, true)?;
            match walked.entry {
                Entry::Inode(ino) if disk.inodes[&ino].is_dir => {}
                Entry::Inode(_) => return Err(os_error(errno::ENOTDIR)),
                Entry::Missing => {
                    let t = self.tick(&mut disk);
                    let ino = disk.new_inode(true, t);
                    disk.stamp_parent(&walked.path, t);
                    disk.names.insert(walked.path.into_os_string(), ino);
                }
                Entry::Symlink => return Err(os_error(libc::ELOOP)),
            }
        }
        Ok(())
    }

    /// `ln -s target link` for directories (any target works: see `symlink`).
    pub fn symlink_dir(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.symlink(target, link)
    }

    /// `ln -s target link`: the target may be absolute or relative to the link's directory, a
    /// file, a directory or nothing at all (a dangling link).
    pub fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let walked = disk.walk(link, false)?;
        if walked.entry != Entry::Missing {
            return Err(os_error(errno::EEXIST));
        }
        let t = self.tick(&mut disk);
        disk.stamp_parent(&walked.path, t);
        let ino = SYMLINK_INO_BASE + disk.next_symlink_ino;
        disk.next_symlink_ino += 1;
        disk.symlink_stats.insert(
            walked.path.clone().into_os_string(),
            LinkStat {
                ino,
                mtime_ns: t,
                ctime_ns: t,
            },
        );
        disk.symlinks.insert(walked.path.into_os_string(), target.to_owned());
        Ok(())
    }

    /// Change only the inode change time (what `chmod` does).
    pub fn touch_ctime(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let ino = disk.existing(path)?;
        let t = self.tick(&mut disk);
        disk.inodes.get_mut(&ino).expect("named inode exists").ctime_ns = t;
        Ok(())
    }

    /// The content of a file, outside any process (for oracles and tests).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk.lock().unwrap();
        let ino = disk.existing(path).ok()?;
        Some(disk.inodes[&ino].data.clone())
    }

    /// The inode a path names now, if any.
    pub fn ino_of(&self, path: &Path) -> Option<u64> {
        self.disk.lock().unwrap().existing(path).ok()
    }

    /// Whether inode `ino` still exists (named or open). MemFs never reuses a number; Linux may
    /// hand a freed one out again, which is what the parity check needs to know.
    pub fn inode_exists(&self, ino: u64) -> bool {
        self.disk.lock().unwrap().inodes.contains_key(&ino)
    }

    /// How many names inode `ino` has (0 when it has none left, or is gone).
    pub fn link_count(&self, ino: u64) -> u32 {
        self.disk.lock().unwrap().inodes.get(&ino).map_or(0, |inode| inode.links)
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
                mode: (if is_dir { 0o777 } else { 0o666 }) & !UMASK,
                uid: ROOT_UID,
                links: 1,
                opens: 0,
            },
        );
        ino
    }

    /// Walk `path` from `/` (relative paths too) component by component, as Linux does:
    /// symlinks in the middle are followed, the last one only when `follow_last`; `..` goes to
    /// the parent of where the walk is (physical, not textual). ENOENT for a missing directory
    /// on the way, ENOTDIR for a file on the way, ELOOP past `MAX_SYMLINK_HOPS` links.
    fn walk(&self, path: &Path, follow_last: bool) -> io::Result<Walked> {
        self.walk_as(path, follow_last, ROOT_UID)
    }

    /// `walk` as `uid`: every directory a name is looked up in needs search permission
    /// (EACCES otherwise, before the name is looked at: Linux's `may_lookup`), `..` included.
    /// Root skips the checks, so a plain path takes the fast prefix walk.
    fn walk_as(&self, path: &Path, follow_last: bool, uid: u32) -> io::Result<Walked> {
        if uid == ROOT_UID {
            if let Some(walked) = self.walk_plain(path, follow_last) {
                return walked;
            }
        }
        self.walk_checked(path, follow_last, uid, Dotdot::LookedUp)
    }

    /// The walk itself, one component at a time.
    fn walk_checked(&self, path: &Path, follow_last: bool, uid: u32, dotdot: Dotdot) -> io::Result<Walked> {
        let mut pending: VecDeque<OsString> = parts(path).into();
        let mut current = PathBuf::from("/");
        let mut hops = 0;
        while let Some(name) = pending.pop_front() {
            if uid != ROOT_UID && !(name == ".." && dotdot == Dotdot::Textual) {
                let dir =
                    *self.names.get(current.as_os_str()).expect("the walk only enters existing directories");
                self.permits(dir, uid, SEARCH)?;
            }
            if name == ".." {
                current.pop();
                continue;
            }
            let candidate = current.join(&name);
            let last = pending.is_empty();
            if let Some(target) = self.symlinks.get(candidate.as_os_str()) {
                if last && !follow_last {
                    return Ok(Walked {
                        path: candidate,
                        entry: Entry::Symlink,
                    });
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(os_error(libc::ELOOP));
                }
                if target.is_absolute() {
                    current = PathBuf::from("/");
                }
                for part in parts(target).into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            match self.names.get(candidate.as_os_str()) {
                Some(&ino) if last => {
                    return Ok(Walked {
                        path: candidate,
                        entry: Entry::Inode(ino),
                    })
                }
                Some(&ino) if self.inodes[&ino].is_dir => current = candidate,
                Some(_) => return Err(os_error(errno::ENOTDIR)),
                None if last => {
                    return Ok(Walked {
                        path: candidate,
                        entry: Entry::Missing,
                    })
                }
                None => return Err(os_error(errno::ENOENT)),
            }
        }
        // The path ended on a directory (`/`, or `..`).
        let ino = *self.names.get(current.as_os_str()).expect("the walk only enters existing directories");
        Ok(Walked {
            path: current,
            entry: Entry::Inode(ino),
        })
    }

    /// `walk` for a plain absolute path (`/a/b/c`: no empty, `.` or `..` component, no
    /// trailing `/`) that meets no symlink but perhaps its last, unfollowed: the same answer,
    /// looked up by prefixes of the path's own bytes instead of a component queue and a join
    /// per step (the simulator walks a lock path several times per acquire poll). `None`: not
    /// plain, or a symlink to follow on the way; the component walk decides.
    fn walk_plain(&self, path: &Path, follow_last: bool) -> Option<io::Result<Walked>> {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() < 2 || bytes[0] != b'/' {
            return None;
        }
        let plain = |part: &[u8]| !part.is_empty() && part != b"." && part != b"..";
        if !bytes[1..].split(|b| *b == b'/').all(plain) {
            return None;
        }
        // Symlinks are few: one pass over them says whether any is a prefix of the path at all,
        // instead of a hash lookup per prefix.
        let link_on_way = self.symlinks.keys().any(|link| {
            let link = link.as_bytes();
            bytes.starts_with(link) && bytes.get(link.len()).is_none_or(|b| *b == b'/')
        });
        let ends = (1..bytes.len()).filter(|&i| bytes[i] == b'/').chain(std::iter::once(bytes.len()));
        for end in ends {
            let prefix = Path::new(OsStr::from_bytes(&bytes[..end]));
            let last = end == bytes.len();
            if link_on_way && self.symlinks.contains_key(prefix.as_os_str()) {
                if last && !follow_last {
                    return Some(Ok(Walked {
                        path: prefix.to_owned(),
                        entry: Entry::Symlink,
                    }));
                }
                return None;
            }
            let entry = match self.names.get(prefix.as_os_str()) {
                Some(&ino) if last => Entry::Inode(ino),
                Some(&ino) if self.inodes[&ino].is_dir => continue,
                Some(_) => return Some(Err(os_error(errno::ENOTDIR))),
                None if last => Entry::Missing,
                None => return Some(Err(os_error(errno::ENOENT))),
            };
            return Some(Ok(Walked {
                path: prefix.to_owned(),
                entry,
            }));
        }
        None
    }

    /// The inode `path` leads to, every symlink followed; ENOENT when there is none.
    fn existing(&self, path: &Path) -> io::Result<u64> {
        self.existing_as(path, ROOT_UID)
    }

    fn existing_as(&self, path: &Path, uid: u32) -> io::Result<u64> {
        match self.walk_as(path, true, uid)?.entry {
            Entry::Inode(ino) => Ok(ino),
            Entry::Missing | Entry::Symlink => Err(os_error(errno::ENOENT)),
        }
    }

    /// Ok when `uid` may do `want` (`READ`, `WRITE`, `SEARCH` or'ed) to inode `ino`, else
    /// EACCES: root may do anything, the owner is judged by the owner bits, anyone else by the
    /// other bits (MemFs has no groups).
    fn permits(&self, ino: u64, uid: u32, want: u32) -> io::Result<()> {
        if uid == ROOT_UID {
            return Ok(());
        }
        let inode = &self.inodes[&ino];
        let bits = if inode.uid == uid {
            inode.mode >> 6
        } else {
            inode.mode
        } & 0o7;
        if bits & want == want {
            Ok(())
        } else {
            Err(os_error(errno::EACCES))
        }
    }

    /// Ok when `uid` may add or remove a name in the directory holding `path` (write and
    /// search on it: `may_create`, `may_delete`).
    fn permits_in_parent(&self, path: &Path, uid: u32) -> io::Result<()> {
        if uid == ROOT_UID {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir = *self.names.get(parent.as_os_str()).expect("a walked path's parent exists");
        self.permits(dir, uid, WRITE | SEARCH)
    }

    /// A new inode named `path`, owned by `uid`, with `mode & !UMASK`; the parent is stamped.
    fn create_named(&mut self, path: PathBuf, is_dir: bool, mode: u32, uid: u32, t: i128) -> u64 {
        let ino = self.new_inode(is_dir, t);
        let inode = self.inodes.get_mut(&ino).expect("just made");
        (inode.mode, inode.uid) = (mode & 0o777 & !UMASK, uid);
        self.stamp_parent(&path, t);
        self.names.insert(path.into_os_string(), ino);
        ino
    }

    /// A symlink's own stat (`lstat`): its identity and time; its size is its target's length.
    fn symlink_stat(&self, link: &Path) -> FileStat {
        let target = &self.symlinks[link.as_os_str()];
        let stat = self.symlink_stats[link.as_os_str()];
        FileStat {
            dev: MEMFS_DEV,
            ino: stat.ino,
            size: target.as_os_str().len() as u64,
            mtime_ns: stat.mtime_ns,
            ctime_ns: stat.ctime_ns,
            is_dir: false,
        }
    }

    /// A name was added to or removed from the directory holding `path`: its times move.
    fn stamp_parent(&mut self, path: &Path, t: i128) {
        let parent = path.parent().unwrap_or(Path::new("/"));
        if let Some(ino) = self.names.get(parent.as_os_str()).copied() {
            let dir = self.inodes.get_mut(&ino).expect("named inode exists");
            dir.mtime_ns = t;
            dir.ctime_ns = t;
        }
    }

    /// Whether the directory at `path` has any entry (a name or a symlink).
    fn has_children(&self, path: &Path) -> bool {
        // Any name below it means an entry in it (a descendant's parents are named too).
        let below = |p: &OsString| Path::new(p) != path && Path::new(p).starts_with(path);
        self.names.keys().any(below) || self.symlinks.keys().any(below)
    }

    fn stat_of(&self, ino: u64) -> FileStat {
        let inode = &self.inodes[&ino];
        FileStat {
            dev: MEMFS_DEV,
            ino,
            size: inode.data.len() as u64,
            mtime_ns: inode.mtime_ns,
            ctime_ns: inode.ctime_ns,
            is_dir: inode.is_dir,
        }
    }

    fn open_count(&self, pid: u32) -> usize {
        self.fds.values().filter(|f| f.pid == pid).count()
    }

    fn open(&mut self, ino: u64, pid: u32) -> u64 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.fds.insert(fd, OpenFile { ino, pid, offset: 0 });
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

    /// Take the entry a walk found off its name (for an exchange or a rename): an inode or a
    /// symlink.
    fn take_entry(&mut self, walked: &Walked) -> Taken {
        match walked.entry {
            Entry::Inode(_) => {
                Taken::Inode(self.names.remove(walked.path.as_os_str()).expect("walked inode is named"))
            }
            Entry::Symlink => Taken::Symlink(
                self.symlinks.remove(walked.path.as_os_str()).expect("walked symlink exists"),
                self.symlink_stats.remove(walked.path.as_os_str()).expect("every symlink has its stat"),
            ),
            Entry::Missing => unreachable!("an exchange or a rename checks its entries exist"),
        }
    }

    /// Everything below a directory, taken off the tree with names relative to it (an
    /// exchange moves a directory with its entries).
    fn take_subtree(&mut self, dir: &Path) -> Subtree {
        let below = |p: &&OsString| Path::new(p) != dir && Path::new(p).starts_with(dir);
        let names: Vec<OsString> = self.names.keys().filter(below).cloned().collect();
        let links: Vec<OsString> = self.symlinks.keys().filter(below).cloned().collect();
        let relative = |p: &OsString| Path::new(p).strip_prefix(dir).expect("below the directory").to_owned();
        Subtree {
            names: names.iter().map(|p| (relative(p), self.names.remove(p).expect("listed"))).collect(),
            symlinks: links
                .iter()
                .map(|p| {
                    let target = self.symlinks.remove(p).expect("listed");
                    let stat = self.symlink_stats.remove(p).expect("every symlink has its stat");
                    (relative(p), target, stat)
                })
                .collect(),
        }
    }

    /// A taken subtree put back below `dir`; nothing in it changes but its names.
    fn put_subtree(&mut self, dir: &Path, subtree: Subtree) {
        for (rel, ino) in subtree.names {
            self.names.insert(dir.join(rel).into_os_string(), ino);
        }
        for (rel, target, stat) in subtree.symlinks {
            self.symlinks.insert(dir.join(&rel).into_os_string(), target);
            self.symlink_stats.insert(dir.join(rel).into_os_string(), stat);
        }
    }

    /// Put a taken entry under `path` at time `t` (its parent's times and its ctime move).
    fn put_entry(&mut self, path: &Path, entry: Taken, t: i128) {
        self.stamp_parent(path, t);
        match entry {
            Taken::Inode(ino) => {
                self.inodes.get_mut(&ino).expect("taken inode exists").ctime_ns = t;
                self.names.insert(path.as_os_str().to_owned(), ino);
            }
            Taken::Symlink(target, stat) => {
                self.symlinks.insert(path.as_os_str().to_owned(), target);
                self.symlink_stats.insert(path.as_os_str().to_owned(), stat);
                self.stamp_symlink(stat.ino, t);
            }
        }
    }

    /// What a walk found, as an identity: an inode or a symlink's own number (two names of
    /// one file, or of one symlink, share it).
    fn identity(&self, walked: &Walked) -> Option<u64> {
        match walked.entry {
            Entry::Inode(ino) => Some(ino),
            Entry::Symlink => self.symlink_stats.get(walked.path.as_os_str()).map(|s| s.ino),
            Entry::Missing => None,
        }
    }

    /// A symlink inode's link count changed at `t`: every name of it shows the new ctime.
    fn stamp_symlink(&mut self, ino: u64, t: i128) {
        for stat in self.symlink_stats.values_mut().filter(|s| s.ino == ino) {
            stat.ctime_ns = t;
        }
    }

    /// Remove the symlink named `path` at time `t` (its other names, if any, show the ctime).
    fn unname_symlink(&mut self, path: &Path, t: i128) {
        self.stamp_parent(path, t);
        self.symlinks.remove(path.as_os_str());
        if let Some(stat) = self.symlink_stats.remove(path.as_os_str()) {
            self.stamp_symlink(stat.ino, t);
        }
    }

    /// `may_linkat` with `fs.protected_hardlinks = 1` (the distributions' default): root and
    /// the owner may link anything; anyone else only a regular file they may read and write.
    /// MemFs's symlinks are root's.
    fn may_link(&self, walked: &Walked, uid: u32) -> io::Result<()> {
        if uid == ROOT_UID {
            return Ok(());
        }
        match walked.entry {
            Entry::Inode(ino) if self.inodes[&ino].uid == uid => Ok(()),
            Entry::Inode(ino)
                if !self.inodes[&ino].is_dir && self.permits(ino, uid, READ | WRITE).is_ok() =>
            {
                Ok(())
            }
            _ => Err(os_error(errno::EPERM)),
        }
    }

    /// Remove the name `path` at time `t`: the parent's times and the inode's ctime move.
    fn unname(&mut self, path: &Path, t: i128) {
        self.stamp_parent(path, t);
        if let Some(ino) = self.names.remove(path.as_os_str()) {
            let inode = self.inodes.get_mut(&ino).expect("named inode exists");
            inode.ctime_ns = t;
            inode.links -= 1;
            if inode.links == 0 && inode.opens == 0 {
                self.inodes.remove(&ino);
            }
        }
    }
}

/// The names of a path from `/` (relative paths are taken from `/`), `.` dropped, `..` kept:
/// whether `..` goes up from a symlink's target is for the walk to decide.
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|part| match part {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
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

    /// This view with the permissions of `uid` (not root: the DAC checks apply).
    pub fn as_user(mut self, uid: u32) -> MemFsView {
        self.uid = uid;
        self
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

    /// `open(O_CREAT|O_EXCL|O_WRONLY)`: the descriptor is allocated first (EMFILE wins over
    /// every path error, as in Linux's `do_sys_openat2`); the last component is not followed,
    /// so any symlink there, dangling or not, is EEXIST.
    pub fn create_exclusive_now(&self, path: &Path) -> io::Result<Fd> {
        self.create_exclusive_mode_now(path, 0o600)
    }

    /// `create_exclusive_now` with the file's mode (`mode & !UMASK`). An existing entry is
    /// EEXIST before the directory's write permission is looked at (Linux's `lookup_open`).
    pub fn create_exclusive_mode_now(&self, path: &Path, mode: u32) -> io::Result<Fd> {
        self.with_disk(|disk, fs| {
            self.check_fd_room(disk)?;
            let walked = disk.walk_as(path, false, self.uid)?;
            if walked.entry != Entry::Missing {
                return Err(os_error(errno::EEXIST));
            }
            disk.permits_in_parent(&walked.path, self.uid)?;
            let t = fs.tick(disk);
            let ino = disk.create_named(walked.path, false, mode, self.uid, t);
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

    /// `write(2)` of all of `data` at the descriptor's offset (a gap left by a truncate reads as
    /// zeros). Nothing to write is no write at all: the times stay.
    pub fn write_fd_now(&self, fd: Fd, data: &[u8]) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let file =
                disk.fds.get(&fd.0).filter(|f| f.pid == self.pid).ok_or_else(|| os_error(errno::EBADF))?;
            let (ino, offset) = (file.ino, file.offset as usize);
            if data.is_empty() {
                return Ok(());
            }
            let t = fs.tick(disk);
            let inode = disk.inodes.get_mut(&ino).expect("open inode exists");
            let end = offset + data.len();
            if inode.data.len() < end {
                inode.data.resize(end, 0);
            }
            inode.data[offset..end].copy_from_slice(data);
            inode.mtime_ns = t;
            inode.ctime_ns = t;
            disk.fds.get_mut(&fd.0).expect("checked above").offset = end as u64;
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

    /// Open, read everything, close: EMFILE first, then the path; a directory opens and then
    /// refuses the read (EISDIR); opening needs read permission on it.
    pub fn read_now(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.with_disk(|disk, _| {
            self.check_fd_room(disk)?;
            let ino = disk.existing_as(path, self.uid)?;
            disk.permits(ino, self.uid, READ)?;
            if disk.inodes[&ino].is_dir {
                return Err(os_error(errno::EISDIR));
            }
            Ok(disk.inodes[&ino].data.clone())
        })
    }

    pub fn stat_now(&self, path: &Path) -> io::Result<FileStat> {
        self.with_disk(|disk, _| {
            let ino = disk.existing_as(path, self.uid)?;
            Ok(disk.stat_of(ino))
        })
    }

    /// `lstat(2)`: a symlink at the end is described itself (its size is its target's length).
    pub fn lstat_now(&self, path: &Path) -> io::Result<FileStat> {
        self.with_disk(|disk, _| {
            let walked = disk.walk_as(path, false, self.uid)?;
            match walked.entry {
                Entry::Inode(ino) => Ok(disk.stat_of(ino)),
                Entry::Missing => Err(os_error(errno::ENOENT)),
                Entry::Symlink => Ok(disk.symlink_stat(&walked.path)),
            }
        })
    }

    /// `Fs::read_entry` as the real adapter does it on Linux: `lstat` first (path errors before
    /// EMFILE), a symlink reads as empty with its own identity, a directory is EISDIR, and only
    /// a regular file takes a descriptor (EMFILE before EACCES) and is read, through the cap.
    pub fn read_entry_now(&self, path: &Path, max_bytes: usize) -> io::Result<EntryRead> {
        self.with_disk(|disk, _| {
            let walked = disk.walk_as(path, false, self.uid)?;
            let ino = match walked.entry {
                Entry::Missing => return Err(os_error(errno::ENOENT)),
                Entry::Symlink => {
                    return Ok(EntryRead {
                        bytes: Vec::new(),
                        stat: disk.symlink_stat(&walked.path),
                    })
                }
                Entry::Inode(ino) => ino,
            };
            if disk.inodes[&ino].is_dir {
                return Err(os_error(errno::EISDIR));
            }
            self.check_fd_room(disk)?;
            disk.permits(ino, self.uid, READ)?;
            let data = &disk.inodes[&ino].data;
            let cap = data.len().min(max_bytes.saturating_add(1));
            Ok(EntryRead {
                bytes: data[..cap].to_vec(),
                stat: disk.stat_of(ino),
            })
        })
    }

    pub fn stat_fd_now(&self, fd: Fd) -> io::Result<FileStat> {
        self.with_disk(|disk, _| {
            let file =
                disk.fds.get(&fd.0).filter(|f| f.pid == self.pid).ok_or_else(|| os_error(errno::EBADF))?;
            Ok(disk.stat_of(file.ino))
        })
    }

    /// `unlink(2)`: removes a symlink itself, never what it points at; a directory is EISDIR.
    /// An existing entry needs write permission on its directory first (`may_delete`).
    pub fn unlink_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let walked = disk.walk_as(path, false, self.uid)?;
            if walked.entry != Entry::Missing {
                disk.permits_in_parent(&walked.path, self.uid)?;
            }
            match walked.entry {
                Entry::Missing => Err(os_error(errno::ENOENT)),
                Entry::Inode(ino) if disk.inodes[&ino].is_dir => Err(os_error(errno::EISDIR)),
                Entry::Inode(_) => {
                    let t = fs.tick(disk);
                    disk.unname(&walked.path, t);
                    Ok(())
                }
                Entry::Symlink => {
                    let t = fs.tick(disk);
                    disk.unname_symlink(&walked.path, t);
                    Ok(())
                }
            }
        })
    }

    /// `mkdir(2)`: anything at the path, a dangling symlink included, is EEXIST (before the
    /// directory's write permission is looked at).
    pub fn mkdir_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let walked = disk.walk_as(path, false, self.uid)?;
            if walked.entry != Entry::Missing {
                return Err(os_error(errno::EEXIST));
            }
            disk.permits_in_parent(&walked.path, self.uid)?;
            let t = fs.tick(disk);
            disk.create_named(walked.path, true, 0o777, self.uid, t);
            Ok(())
        })
    }

    /// `rmdir(2)`: a symlink (even to a directory) or a file is ENOTDIR; an entry inside, a
    /// symlink included, is ENOTEMPTY; all of these after the directory's write permission.
    pub fn rmdir_now(&self, path: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let walked = disk.walk_as(path, false, self.uid)?;
            if walked.entry != Entry::Missing && walked.path != Path::new("/") {
                disk.permits_in_parent(&walked.path, self.uid)?;
            }
            match walked.entry {
                Entry::Missing => Err(os_error(errno::ENOENT)),
                Entry::Symlink => Err(os_error(errno::ENOTDIR)),
                Entry::Inode(ino) if !disk.inodes[&ino].is_dir => Err(os_error(errno::ENOTDIR)),
                Entry::Inode(_) if walked.path == Path::new("/") => Err(os_error(libc::EBUSY)),
                Entry::Inode(_) if disk.has_children(&walked.path) => Err(os_error(errno::ENOTEMPTY)),
                Entry::Inode(_) => {
                    let t = fs.tick(disk);
                    disk.unname(&walked.path, t);
                    Ok(())
                }
            }
        })
    }

    /// `renameat2(RENAME_EXCHANGE)`: the two entries (files, empty directories or symlinks,
    /// never followed at the end) swap names; both must exist (ENOENT). A directory with
    /// entries is not modelled (EINVAL). Parents' times and the inodes' ctimes move.
    pub fn exchange_now(&self, a: &Path, b: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let (wa, wb) = (disk.walk_as(a, false, self.uid)?, disk.walk_as(b, false, self.uid)?);
            if wa.entry == Entry::Missing || wb.entry == Entry::Missing {
                return Err(os_error(errno::ENOENT));
            }
            // A directory never moves into its own subtree, either way round.
            if wa.path != wb.path && (wa.path.starts_with(&wb.path) || wb.path.starts_with(&wa.path)) {
                return Err(os_error(errno::EINVAL));
            }
            // One entry (or two names of one inode) exchanged with itself: Linux's vfs_rename
            // returns before any permission.
            if wa.path == wb.path || disk.identity(&wa) == disk.identity(&wb) {
                return Ok(());
            }
            // Both names change: write and search on both directories, as for unlink.
            disk.permits_in_parent(&wa.path, self.uid)?;
            disk.permits_in_parent(&wb.path, self.uid)?;
            // A directory moving to another parent rewrites its `..`: write on it (vfs_rename).
            if wa.path.parent() != wb.path.parent() {
                for w in [&wa, &wb] {
                    if let Entry::Inode(ino) = w.entry {
                        if disk.inodes[&ino].is_dir {
                            disk.permits(ino, self.uid, WRITE)?;
                        }
                    }
                }
            }
            let t = fs.tick(disk);
            let (sub_a, sub_b) = (disk.take_subtree(&wa.path), disk.take_subtree(&wb.path));
            let (ta, tb) = (disk.take_entry(&wa), disk.take_entry(&wb));
            disk.put_entry(&wa.path, tb, t);
            disk.put_entry(&wb.path, ta, t);
            disk.put_subtree(&wb.path, sub_a);
            disk.put_subtree(&wa.path, sub_b);
            Ok(())
        })
    }

    /// `renameat2(RENAME_NOREPLACE)`: the entry at `from` (a file, a directory with what is
    /// below it, or a symlink, never followed) takes the name `to`, which must not exist. As in
    /// `do_renameat2`: both paths walked first, then ENOENT for a missing `from`, EEXIST for any
    /// entry at `to` (the same name included), EINVAL for a directory moved below itself, then
    /// write on both directories (`may_delete`, `may_create`) and, for a directory changing
    /// parent, write on itself. Both parents' times and the entry's ctime move.
    pub fn rename_noreplace_now(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let (wf, wt) = (disk.walk_as(from, false, self.uid)?, disk.walk_as(to, false, self.uid)?);
            if wf.entry == Entry::Missing {
                return Err(os_error(errno::ENOENT));
            }
            if wt.entry != Entry::Missing {
                return Err(os_error(errno::EEXIST));
            }
            if wt.path.starts_with(&wf.path) {
                return Err(os_error(errno::EINVAL));
            }
            disk.permits_in_parent(&wf.path, self.uid)?;
            disk.permits_in_parent(&wt.path, self.uid)?;
            if let Entry::Inode(ino) = wf.entry {
                if disk.inodes[&ino].is_dir && wf.path.parent() != wt.path.parent() {
                    disk.permits(ino, self.uid, WRITE)?;
                }
            }
            let t = fs.tick(disk);
            let subtree = disk.take_subtree(&wf.path);
            let taken = disk.take_entry(&wf);
            disk.stamp_parent(&wf.path, t);
            disk.put_entry(&wt.path, taken, t);
            disk.put_subtree(&wt.path, subtree);
            Ok(())
        })
    }

    /// `link(2)` (`linkat` without `AT_SYMLINK_FOLLOW`): a second name `new` for the entry at
    /// `existing`, a symlink itself included. As in `do_linkat`: `existing` walked first
    /// (ENOENT), then `new` (EEXIST for any entry there), then `may_linkat` (EPERM: see
    /// `may_link`), then write on `new`'s directory (EACCES), then EPERM for a directory. The
    /// new name's directory times and the inode's ctime move.
    pub fn link_now(&self, existing: &Path, new: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let wo = disk.walk_as(existing, false, self.uid)?;
            if wo.entry == Entry::Missing {
                return Err(os_error(errno::ENOENT));
            }
            let wn = disk.walk_as(new, false, self.uid)?;
            if wn.entry != Entry::Missing {
                return Err(os_error(errno::EEXIST));
            }
            disk.may_link(&wo, self.uid)?;
            disk.permits_in_parent(&wn.path, self.uid)?;
            let t = fs.tick(disk);
            match wo.entry {
                Entry::Inode(ino) if disk.inodes[&ino].is_dir => return Err(os_error(errno::EPERM)),
                Entry::Inode(ino) => {
                    let inode = disk.inodes.get_mut(&ino).expect("walked inode exists");
                    inode.links += 1;
                    inode.ctime_ns = t;
                    disk.names.insert(wn.path.as_os_str().to_owned(), ino);
                }
                Entry::Symlink => {
                    let target = disk.symlinks[wo.path.as_os_str()].clone();
                    let stat = disk.symlink_stats[wo.path.as_os_str()];
                    disk.symlinks.insert(wn.path.as_os_str().to_owned(), target);
                    disk.symlink_stats.insert(wn.path.as_os_str().to_owned(), stat);
                    disk.stamp_symlink(stat.ino, t);
                }
                Entry::Missing => unreachable!("checked above"),
            }
            disk.stamp_parent(&wn.path, t);
            Ok(())
        })
    }

    /// `rename(2)`: the entry at `from` (never followed) takes the name `to`, replacing what is
    /// there. As in `do_renameat2` and `vfs_rename`: ENOENT for a missing `from`; EINVAL when
    /// `to` is below `from`, ENOTEMPTY when `from` is below `to`; two names of one inode: done,
    /// nothing changes; write on both directories (EACCES); a directory over a non-directory
    /// ENOTDIR, the other way EISDIR; a directory changing parent needs write on itself; a
    /// directory with entries at `to` is ENOTEMPTY. What `to` named loses that name.
    pub fn rename_now(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            let (wf, wt) = (disk.walk_as(from, false, self.uid)?, disk.walk_as(to, false, self.uid)?);
            if wf.entry == Entry::Missing {
                return Err(os_error(errno::ENOENT));
            }
            if wf.path != wt.path && wt.path.starts_with(&wf.path) {
                return Err(os_error(errno::EINVAL));
            }
            if wf.path != wt.path && wf.path.starts_with(&wt.path) {
                return Err(os_error(errno::ENOTEMPTY));
            }
            if disk.identity(&wf) == disk.identity(&wt) {
                return Ok(());
            }
            disk.permits_in_parent(&wf.path, self.uid)?;
            disk.permits_in_parent(&wt.path, self.uid)?;
            let is_dir = |entry: Entry| matches!(entry, Entry::Inode(ino) if disk.inodes[&ino].is_dir);
            let (from_dir, to_dir) = (is_dir(wf.entry), is_dir(wt.entry));
            if wt.entry != Entry::Missing && from_dir && !to_dir {
                return Err(os_error(errno::ENOTDIR));
            }
            if wt.entry != Entry::Missing && !from_dir && to_dir {
                return Err(os_error(errno::EISDIR));
            }
            if let Entry::Inode(ino) = wf.entry {
                if from_dir && wf.path.parent() != wt.path.parent() {
                    disk.permits(ino, self.uid, WRITE)?;
                }
            }
            if to_dir && disk.has_children(&wt.path) {
                return Err(os_error(errno::ENOTEMPTY));
            }
            let t = fs.tick(disk);
            match wt.entry {
                Entry::Inode(_) => disk.unname(&wt.path, t),
                Entry::Symlink => disk.unname_symlink(&wt.path, t),
                Entry::Missing => {}
            }
            let subtree = disk.take_subtree(&wf.path);
            let taken = disk.take_entry(&wf);
            disk.stamp_parent(&wf.path, t);
            disk.put_entry(&wt.path, taken, t);
            disk.put_subtree(&wt.path, subtree);
            Ok(())
        })
    }

    /// `replace`: true truncates first (write_all), false appends. Opens with O_CREAT, so the
    /// last symlink is followed and a dangling one creates its target. An append of nothing
    /// writes nothing (its times stay); a truncate always stamps them. An existing file needs
    /// write permission on it (a directory is EISDIR first), a new one on its directory.
    pub fn write_path_now(&self, path: &Path, data: &[u8], replace: bool) -> io::Result<()> {
        self.with_disk(|disk, fs| {
            self.check_fd_room(disk)?;
            let walked = disk.walk_as(path, true, self.uid)?;
            let existing = match walked.entry {
                Entry::Inode(ino) if disk.inodes[&ino].is_dir => return Err(os_error(errno::EISDIR)),
                Entry::Inode(ino) => Some(ino),
                Entry::Missing => None,
                Entry::Symlink => return Err(os_error(libc::ELOOP)), // a followed walk ends on none
            };
            match existing {
                Some(ino) => disk.permits(ino, self.uid, WRITE)?,
                None => disk.permits_in_parent(&walked.path, self.uid)?,
            }
            if data.is_empty() && !replace && existing.is_some() {
                return Ok(()); // nothing appended to an existing file: its times stay
            }
            let t = fs.tick(disk);
            let ino = existing.unwrap_or_else(|| disk.create_named(walked.path, false, 0o666, self.uid, t));
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

    /// `realpath(3)`: every symlink resolved; a file resolves too (ENOTDIR only on the way);
    /// `..` needs no search permission on the directory it leaves (glibc pops it as text).
    pub fn canonical_dir_now(&self, dir: &Path) -> io::Result<PathBuf> {
        self.with_disk(|disk, _| match disk.walk_checked(dir, true, self.uid, Dotdot::Textual)? {
            Walked {
                path,
                entry: Entry::Inode(_),
            } => Ok(path),
            _ => Err(os_error(errno::ENOENT)),
        })
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Fs for MemFsView {
    fn create_exclusive<'a>(&'a self, path: &'a Path, mode: u32) -> BoxFuture<'a, io::Result<Fd>> {
        ready(self.create_exclusive_mode_now(path, mode))
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
    fn lstat<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, io::Result<FileStat>> {
        ready(self.lstat_now(path))
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
    fn exchange<'a>(&'a self, a: &'a Path, b: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.exchange_now(a, b))
    }
    fn rename_noreplace<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.rename_noreplace_now(from, to))
    }
    fn link<'a>(&'a self, existing: &'a Path, new: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.link_now(existing, new))
    }
    fn rename<'a>(&'a self, from: &'a Path, to: &'a Path) -> BoxFuture<'a, io::Result<()>> {
        ready(self.rename_now(from, to))
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
    fn read_entry<'a>(&'a self, path: &'a Path, max_bytes: usize) -> BoxFuture<'a, io::Result<EntryRead>> {
        ready(self.read_entry_now(path, max_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticking() -> MemFs {
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(1));
        MemFs::new(Arc::new(move || clock.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as i128))
    }

    fn errno_of<T: std::fmt::Debug>(r: io::Result<T>) -> i32 {
        r.expect_err("an error").raw_os_error().expect("an errno")
    }

    /// `link` as `do_linkat` answers (`heldlock parity` compares it with Linux op by op; this
    /// pins the answers the lock relies on).
    #[test]
    fn link_names_one_inode_twice_and_refuses_what_linux_refuses() {
        let fs = ticking();
        fs.create_dir_all(Path::new("/r/d")).unwrap();
        let view = fs.view(1, 8);
        view.write_path_now(Path::new("/r/f"), b"x", true).unwrap();
        fs.symlink(Path::new("/r/nowhere"), Path::new("/r/dang")).unwrap();
        let before = view.stat_now(Path::new("/r/f")).unwrap();
        view.link_now(Path::new("/r/f"), Path::new("/r/g")).unwrap();
        let (f, g) = (view.stat_now(Path::new("/r/f")).unwrap(), view.stat_now(Path::new("/r/g")).unwrap());
        assert_eq!((f.ino, f), (before.ino, g), "one inode, two names");
        assert!(f.ctime_ns > before.ctime_ns, "the link count changed: ctime moves");
        assert_eq!(fs.link_count(f.ino), 2);
        assert_eq!(errno_of(view.link_now(Path::new("/r/f"), Path::new("/r/g"))), errno::EEXIST);
        assert_eq!(errno_of(view.link_now(Path::new("/r/f"), Path::new("/r/dang"))), errno::EEXIST);
        assert_eq!(errno_of(view.link_now(Path::new("/r/no"), Path::new("/r/dang"))), errno::ENOENT);
        assert_eq!(errno_of(view.link_now(Path::new("/r/d"), Path::new("/r/e"))), errno::EPERM);
        let nobody = fs.view(2, 8).as_user(65534);
        assert_eq!(
            errno_of(nobody.link_now(Path::new("/r/f"), Path::new("/r/h"))),
            errno::EPERM,
            "protected_hardlinks: root's 0644 file is not nobody's to link"
        );
        view.unlink_now(Path::new("/r/f")).unwrap();
        assert_eq!(fs.contents(Path::new("/r/g")).as_deref(), Some(&b"x"[..]));
        assert_eq!(fs.link_count(f.ino), 1);
    }

    /// `rename` replaces what the target named; two names of one inode are left as they are.
    #[test]
    fn rename_replaces_the_target_and_leaves_two_names_of_one_inode_alone() {
        let fs = ticking();
        fs.create_dir_all(Path::new("/r/d/sub")).unwrap();
        let view = fs.view(1, 8);
        view.write_path_now(Path::new("/r/f"), b"x", true).unwrap();
        view.write_path_now(Path::new("/r/h"), b"h", true).unwrap();
        view.link_now(Path::new("/r/f"), Path::new("/r/g")).unwrap();
        view.rename_now(Path::new("/r/f"), Path::new("/r/g")).unwrap();
        assert!(view.stat_now(Path::new("/r/f")).is_ok(), "two names of one inode: nothing moves");
        let h = view.stat_now(Path::new("/r/h")).unwrap().ino;
        view.rename_now(Path::new("/r/f"), Path::new("/r/h")).unwrap();
        assert_eq!(fs.contents(Path::new("/r/h")).as_deref(), Some(&b"x"[..]));
        assert!(!fs.inode_exists(h), "the replaced file had no other name");
        assert_eq!(errno_of(view.rename_now(Path::new("/r/f"), Path::new("/r/h"))), errno::ENOENT);
        assert_eq!(errno_of(view.rename_now(Path::new("/r/h"), Path::new("/r/d"))), errno::EISDIR);
        assert_eq!(errno_of(view.rename_now(Path::new("/r/d"), Path::new("/r/h"))), errno::ENOTDIR);
        assert_eq!(errno_of(view.rename_now(Path::new("/r/d"), Path::new("/r/d/sub/x"))), errno::EINVAL);
        assert_eq!(errno_of(view.rename_now(Path::new("/r/d/sub"), Path::new("/r/d"))), errno::ENOTEMPTY);
    }

    /// A symlink linked is the same inode under two names: a change of one name's links shows
    /// on both (Linux keeps one ctime per inode).
    #[test]
    fn a_hard_linked_symlink_keeps_one_ctime() {
        let fs = ticking();
        fs.create_dir_all(Path::new("/r")).unwrap();
        fs.symlink(Path::new("/r/nowhere"), Path::new("/r/l")).unwrap();
        let view = fs.view(1, 8);
        view.link_now(Path::new("/r/l"), Path::new("/r/m")).unwrap();
        view.rename_now(Path::new("/r/m"), Path::new("/r/n")).unwrap();
        let (l, n) = (view.lstat_now(Path::new("/r/l")).unwrap(), view.lstat_now(Path::new("/r/n")).unwrap());
        assert_eq!(l, n, "one inode: same number, same times");
        view.unlink_now(Path::new("/r/n")).unwrap();
        assert!(view.lstat_now(Path::new("/r/l")).unwrap().ctime_ns > l.ctime_ns);
    }

    /// `walk_plain` is a shortcut: wherever it answers, the component walk answers the same
    /// (path, entry, errno) — over every path of up to three components from a mix of files,
    /// directories, symlinks in the middle and at the end (dangling too), `.`, `..` and empty
    /// components.
    #[test]
    fn plain_walk_agrees_with_the_component_walk() {
        let fs = MemFs::new(Arc::new(|| 0));
        fs.create_dir_all(Path::new("/d/e")).unwrap();
        let view = fs.view(1, usize::MAX);
        for file in ["/f", "/d/f", "/d/e/f"] {
            view.write_path_now(Path::new(file), b"x", true).unwrap();
        }
        fs.symlink(Path::new("/d"), Path::new("/l")).unwrap();
        fs.symlink(Path::new("e"), Path::new("/d/l")).unwrap();
        fs.symlink(Path::new("/nowhere"), Path::new("/d/dangling")).unwrap();
        fs.symlink(Path::new("/f"), Path::new("/d/e/tofile")).unwrap();
        let names = ["d", "e", "f", "l", "dangling", "tofile", "x", ".", "..", ""];
        let mut paths = vec![String::from("/")];
        let mut level = vec![String::new()];
        for _ in 0..3 {
            level = level.iter().flat_map(|p| names.iter().map(move |n| format!("{p}/{n}"))).collect();
            paths.extend(level.iter().cloned());
        }
        let disk = fs.disk.lock().unwrap();
        let mut shortcut = 0;
        for path in &paths {
            for follow in [false, true] {
                let Some(fast) = disk.walk_plain(Path::new(path), follow) else {
                    continue;
                };
                shortcut += 1;
                let slow = disk.walk_checked(Path::new(path), follow, ROOT_UID, Dotdot::LookedUp);
                let show = |w: io::Result<Walked>| match w {
                    Ok(w) => format!("{} {:?}", w.path.display(), w.entry),
                    Err(e) => format!("errno {:?}", e.raw_os_error()),
                };
                assert_eq!(show(fast), show(slow), "{path} follow_last={follow}");
            }
        }
        assert!(shortcut > 100, "the shortcut answered only {shortcut} walks");
    }
}
