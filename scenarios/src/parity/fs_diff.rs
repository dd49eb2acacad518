//! The filesystem parity check: one script through a MemFs view and through the real adapter
//! on a temp directory, compared operation by operation.
//!
//! Compared exactly: success or the errno; the bytes read; the path `canonical_dir` returns;
//! `is_dir`; a file's size. Compared as relations between every two stats of a script: same
//! file or not (dev, ino); for one file, whether its mtime and its ctime moved; for two files,
//! the order of their mtimes. After the script, the whole tree is read and stat'ed again.
//!
//! The intended differences — nothing else may differ:
//! - inode and device numbers themselves (only "same file or not" is compared), and Linux may
//!   give a freed inode number to a new file where MemFs never reuses one: allowed only when
//!   MemFs says the earlier file no longer exists;
//! - absolute times (MemFs reads a clock and makes every change strictly later): only which
//!   stamps moved and their order; two different files may share a stamp in one world and
//!   not in the other (Linux's coarse clock; MemFs stamps a new name and its directory alike);
//! - the size of a directory (ext4 reports blocks, MemFs 0): the lock never reads it;
//! - descriptor numbers (both hand out fresh handles; only their effects are compared).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use heldlock_core::memfs::{MemFs, MemFsView};
use heldlock_core::platform::{Fd, FileStat, Fs};
use heldlock_core::real::RealFs;

use super::fdroom::FdSqueeze;
use super::script::{Op, Script, DATA, DIRS, FILES, PATHS, PLENTY_FDS, SYMLINKS};

/// What one operation returned, in terms both worlds share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Opened,
    Bytes(Vec<u8>),
    Stat(FileStat),
    Path(PathBuf),
    Failed(i32),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Done => write!(f, "Ok"),
            Outcome::Opened => write!(f, "Ok(fd)"),
            Outcome::Bytes(b) => write!(f, "Ok({:?})", String::from_utf8_lossy(b)),
            Outcome::Stat(s) => write!(
                f,
                "Ok(stat ino={} size={} dir={} mtime={} ctime={})",
                s.ino, s.size, s.is_dir, s.mtime_ns, s.ctime_ns
            ),
            Outcome::Path(p) => write!(f, "Ok({})", p.display()),
            Outcome::Failed(e) => write!(f, "Err({})", errno_name(*e)),
        }
    }
}

/// The name of an errno, for reports.
pub fn errno_name(code: i32) -> String {
    let name = match code {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EBADF => "EBADF",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        -1 => "no errno",
        _ => return format!("errno {code}"),
    };
    name.to_owned()
}

/// A difference between MemFs and Linux.
#[derive(Clone, Debug)]
pub struct FsMismatch {
    /// `#3 unlink lf`, or `after the script: stat d`.
    pub step: String,
    pub memfs: String,
    pub linux: String,
    pub why: String,
}

impl fmt::Display for FsMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} — MemFs {} vs Linux {}", self.step, self.why, self.memfs, self.linux)
    }
}

/// `lstat` of one world (not a method of `Fs` here).
type Lstat<'a> = &'a dyn Fn(&Path) -> io::Result<FileStat>;

/// One world's side of a run: its `Fs`, its `lstat`, and the descriptors its creates opened.
struct Side<'a> {
    fs: &'a dyn Fs,
    lstat: Lstat<'a>,
    fds: HashMap<u32, Fd>,
}

/// `lstat` on Linux, in the real adapter's terms.
fn real_lstat(path: &Path) -> io::Result<FileStat> {
    std::fs::symlink_metadata(path).map(|m| heldlock_core::real::stat_of(&m))
}

/// A descriptor neither world ever handed out.
const UNKNOWN_FD: Fd = Fd(u64::MAX / 2);

impl Side<'_> {
    async fn apply(&mut self, op: Op, root: &Path) -> Outcome {
        let at = |path: usize| root.join(PATHS[path]);
        let fd = |fds: &HashMap<u32, Fd>, id: u32| fds.get(&id).copied().unwrap_or(UNKNOWN_FD);
        let done = |r: io::Result<()>| r.map_or_else(|e| failed(&e), |()| Outcome::Done);
        match op {
            Op::Create { path, id } => match self.fs.create_exclusive(&at(path), 0o600).await {
                Ok(opened) => {
                    self.fds.insert(id, opened);
                    Outcome::Opened
                }
                Err(e) => failed(&e),
            },
            Op::WriteFd { id, data } => done(self.fs.write_fd(fd(&self.fds, id), DATA[data]).await),
            Op::Close { id } => done(self.fs.close(fd(&self.fds, id)).await),
            Op::StatFd { id } => stat_outcome(self.fs.stat_fd(fd(&self.fds, id)).await),
            Op::Read { path } => self.fs.read(&at(path)).await.map_or_else(|e| failed(&e), Outcome::Bytes),
            Op::Stat { path } => stat_outcome(self.fs.stat(&at(path)).await),
            Op::Lstat { path } => stat_outcome((self.lstat)(&at(path))),
            Op::Unlink { path } => done(self.fs.unlink(&at(path)).await),
            Op::Mkdir { path } => done(self.fs.mkdir(&at(path)).await),
            Op::Rmdir { path } => done(self.fs.rmdir(&at(path)).await),
            Op::Append { path, data } => done(self.fs.append(&at(path), DATA[data]).await),
            Op::WriteAll { path, data } => done(self.fs.write_all(&at(path), DATA[data]).await),
            Op::Canonical { path } => {
                self.fs.canonical_dir(&at(path)).await.map_or_else(|e| failed(&e), Outcome::Path)
            }
        }
    }

    async fn close_all(&mut self) {
        for fd in std::mem::take(&mut self.fds).into_values() {
            let _ = self.fs.close(fd).await;
        }
    }
}

fn failed(e: &io::Error) -> Outcome {
    Outcome::Failed(e.raw_os_error().unwrap_or(-1))
}

fn stat_outcome(r: io::Result<FileStat>) -> Outcome {
    r.map_or_else(|e| failed(&e), Outcome::Stat)
}

/// The tree of `script.rs`, on the real filesystem under `root`.
fn build_real_tree(root: &Path) -> io::Result<()> {
    std::fs::create_dir(root)?;
    for dir in DIRS {
        std::fs::create_dir(root.join(dir))?;
    }
    for (file, data) in FILES {
        std::fs::write(root.join(file), data)?;
    }
    for (link, target, absolute) in SYMLINKS {
        let target = if *absolute {
            root.join(target)
        } else {
            PathBuf::from(target)
        };
        std::os::unix::fs::symlink(target, root.join(link))?;
    }
    Ok(())
}

/// The same tree in a fresh MemFs, at the same absolute path.
fn build_mem_tree(root: &Path) -> io::Result<MemFs> {
    let disk = MemFs::new(Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128)
    }));
    disk.create_dir_all(root)?;
    let tool = disk.view(1, PLENTY_FDS);
    for dir in DIRS {
        tool.mkdir_now(&root.join(dir))?;
    }
    for (file, data) in FILES {
        tool.write_path_now(&root.join(file), data, true)?;
    }
    for (link, target, absolute) in SYMLINKS {
        let target = if *absolute {
            root.join(target)
        } else {
            PathBuf::from(target)
        };
        disk.symlink(&target, &root.join(link))?;
    }
    Ok(disk)
}

/// Every stat of a run so far, to compare new ones against.
#[derive(Default)]
struct Stats {
    seen: Vec<(String, FileStat, FileStat)>,
    /// Times Linux gave a freed inode number to a new file (the allowed difference).
    inode_reuses: u64,
}

impl Stats {
    /// Compare a new pair of stats with every earlier pair (see the module doc).
    fn check(&mut self, step: &str, mem: FileStat, real: FileStat, disk: &MemFs) -> Result<(), FsMismatch> {
        let mismatch = |earlier: &str, why: &str| FsMismatch {
            step: step.to_owned(),
            memfs: format!("ino {}", mem.ino),
            linux: format!("ino {}", real.ino),
            why: format!("{why} (against the stat of {earlier})"),
        };
        for (earlier, m, r) in &self.seen {
            let mem_same = m.ino == mem.ino;
            let real_same = (r.dev, r.ino) == (real.dev, real.ino);
            if mem_same && !real_same {
                return Err(mismatch(earlier, "one file in MemFs, two on Linux"));
            }
            if real_same && !mem_same {
                if disk.inode_exists(m.ino) {
                    return Err(mismatch(earlier, "two live files in MemFs, one on Linux"));
                }
                self.inode_reuses += 1;
            }
            if mem_same && real_same {
                if (m.mtime_ns == mem.mtime_ns) != (r.mtime_ns == real.mtime_ns) {
                    return Err(mismatch(earlier, "the mtime moved in one world only"));
                }
                if (m.ctime_ns == mem.ctime_ns) != (r.ctime_ns == real.ctime_ns) {
                    return Err(mismatch(earlier, "the ctime moved in one world only"));
                }
            } else if !mem_same && !real_same {
                let mem_order = m.mtime_ns.cmp(&mem.mtime_ns);
                let real_order = r.mtime_ns.cmp(&real.mtime_ns);
                let tied = |o: std::cmp::Ordering| o == std::cmp::Ordering::Equal;
                if !tied(real_order) && !tied(mem_order) && real_order != mem_order {
                    return Err(mismatch(earlier, "two files' mtimes are ordered differently"));
                }
            }
        }
        self.seen.push((step.to_owned(), mem, real));
        Ok(())
    }
}

/// Compare one step's outcomes.
fn compare(
    step: &str,
    mem: &Outcome,
    real: &Outcome,
    stats: &mut Stats,
    disk: &MemFs,
) -> Result<(), FsMismatch> {
    let mismatch = |why: &str| FsMismatch {
        step: step.to_owned(),
        memfs: mem.to_string(),
        linux: real.to_string(),
        why: why.to_owned(),
    };
    match (mem, real) {
        (Outcome::Stat(m), Outcome::Stat(r)) => {
            if m.is_dir != r.is_dir || (!m.is_dir && m.size != r.size) {
                return Err(mismatch("the stats differ"));
            }
            stats.check(step, *m, *r, disk)
        }
        (m, r) if m == r => Ok(()),
        _ => Err(mismatch("the outcomes differ")),
    }
}

/// Run `script` through both worlds. `Ok(None)`: no difference; `Err`: the real side could not
/// even be set up (a temp directory, the fd limit). `inode_reuses` counts the stat pairs where
/// Linux reused a freed inode number.
pub fn run_script(
    script: &Script,
    rt: &tokio::runtime::Runtime,
    inode_reuses: &mut u64,
) -> Result<Option<FsMismatch>, String> {
    let tmp = tempfile::Builder::new()
        .prefix("heldlock-parity")
        .tempdir()
        .map_err(|e| format!("cannot make a temp directory: {e}"))?;
    let base = std::fs::canonicalize(tmp.path()).map_err(|e| format!("temp directory: {e}"))?;
    let root = base.join("w");
    build_real_tree(&root).map_err(|e| format!("cannot build the tree in {}: {e}", root.display()))?;
    let disk = build_mem_tree(&root).map_err(|e| format!("cannot build the MemFs tree: {e}"))?;
    let view: MemFsView = disk.view(2, script.fd_room);
    let real = RealFs::new();
    let mem_lstat = |p: &Path| view.lstat_now(p);
    let mut mem_side = Side {
        fs: &view,
        lstat: &mem_lstat,
        fds: HashMap::new(),
    };
    let mut real_side = Side {
        fs: &real,
        lstat: &real_lstat,
        fds: HashMap::new(),
    };
    let mut stats = Stats::default();
    let result = rt.block_on(async {
        let squeeze = if script.fd_room < PLENTY_FDS {
            Some(FdSqueeze::new(script.fd_room).map_err(|e| format!("fd limit: {e}"))?)
        } else {
            None
        };
        for (i, op) in script.ops.iter().enumerate() {
            let m = mem_side.apply(*op, &root).await;
            let r = real_side.apply(*op, &root).await;
            if let Err(found) = compare(&format!("#{i} {op}"), &m, &r, &mut stats, &disk) {
                return Ok(Some(found));
            }
        }
        mem_side.close_all().await;
        real_side.close_all().await;
        drop(squeeze);
        // The whole tree afterwards, with room to open files.
        let sweep_view = disk.view(3, PLENTY_FDS);
        let sweep_lstat = |p: &Path| sweep_view.lstat_now(p);
        for path in 0..PATHS.len() {
            for op in [Op::Stat { path }, Op::Lstat { path }, Op::Read { path }] {
                let m = Side {
                    fs: &sweep_view,
                    lstat: &sweep_lstat,
                    fds: HashMap::new(),
                }
                .apply(op, &root)
                .await;
                let r = real_side.apply(op, &root).await;
                if let Err(found) = compare(&format!("after the script: {op}"), &m, &r, &mut stats, &disk) {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    });
    *inode_reuses += stats.inode_reuses;
    result
}

/// The shortest script (by removing operations, then the fd squeeze) that still shows a
/// difference, and that difference. Bounded: at most `MAX_SHRINK_TRIALS` runs.
pub fn shrink(script: &Script, first: FsMismatch, rt: &tokio::runtime::Runtime) -> (Script, FsMismatch) {
    shrink_with(script, first, |s| run_script(s, rt, &mut 0).ok().flatten())
}

/// Runs of a script one shrink may make.
pub const MAX_SHRINK_TRIALS: usize = 2_000;

/// `shrink` over any check: `fails` gives the difference a script shows, if any.
pub fn shrink_with(
    script: &Script,
    first: FsMismatch,
    fails: impl Fn(&Script) -> Option<FsMismatch>,
) -> (Script, FsMismatch) {
    let mut best = script.clone();
    let mut found = first;
    let mut trials = 0;
    let mut chunk = (best.ops.len() / 2).max(1);
    while trials < MAX_SHRINK_TRIALS {
        let mut removed = false;
        let mut start = 0;
        while start < best.ops.len() && trials < MAX_SHRINK_TRIALS {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.ops.len());
            candidate.ops.drain(start..end);
            trials += 1;
            match fails(&candidate) {
                Some(m) => {
                    best = candidate;
                    found = m;
                    removed = true;
                }
                None => start += chunk,
            }
        }
        if !removed {
            if chunk == 1 {
                break;
            }
            chunk = (chunk / 2).max(1);
        }
    }
    if best.fd_room < PLENTY_FDS {
        let mut roomy = best.clone();
        roomy.fd_room = PLENTY_FDS;
        if let Some(m) = fails(&roomy) {
            best = roomy;
            found = m;
        }
    }
    (best, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_keeps_only_the_ops_the_difference_needs() {
        let script = Script::generate(11, true);
        assert!(script.ops.len() >= 3, "a script worth shrinking");
        let (a, b) = (script.ops[0], script.ops[script.ops.len() - 1]);
        let mismatch = || FsMismatch {
            step: "#0".into(),
            memfs: "Ok".into(),
            linux: "Err".into(),
            why: "planted".into(),
        };
        // A planted difference that needs the first and the last op, and a squeezed table.
        let needs = |s: &Script| s.ops.contains(&a) && s.ops.contains(&b) && s.fd_room < PLENTY_FDS;
        let mut squeezed = script.clone();
        squeezed.fd_room = 2;
        let (shrunk, _) = shrink_with(&squeezed, mismatch(), |s| needs(s).then(mismatch));
        assert_eq!(shrunk.ops, vec![a, b]);
        assert_eq!(shrunk.fd_room, 2, "the squeeze stays: the difference needs it");
        let (roomy, _) = shrink_with(&squeezed, mismatch(), |s| s.ops.contains(&a).then(mismatch));
        assert_eq!((roomy.ops, roomy.fd_room), (vec![a], PLENTY_FDS));
    }
}
