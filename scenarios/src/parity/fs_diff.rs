//! The filesystem parity check: one script through a MemFs view and through the real adapter
//! on a temp directory, compared operation by operation.
//!
//! Compared exactly: success or the errno; the bytes read; the path `canonical_dir` returns;
//! `is_dir`; a file's (or a symlink's) size; `read_entry`'s capped bytes, its stat compared like
//! any stat. Compared as relations between every two stats of a script: same
//! file or not (dev, ino); for one file, whether its mtime and its ctime moved; for two files,
//! the order of their mtimes. After the script, every path is stat'ed, lstat'ed, read and
//! read as an entry (a cap below and one above every size) again, as root.
//!
//! Permissions: a quarter of the scripts set modes on the tree (its root, directories and
//! files: `script::MODED`) before their first op and run as uid 65534, which owns nothing in
//! it: the MemFs view `as_user(65534)`, the real side in a child of this binary started as
//! that uid (`unprivileged`), since root passes every permission check. Run as anyone but
//! root, or without the binary, those scripts run as the caller with no modes.
//!
//! The intended differences — nothing else may differ:
//! - inode and device numbers themselves (only "same file or not" is compared), and Linux may
//!   give a freed inode number to a new file where MemFs never reuses one: allowed only when
//!   MemFs says the earlier file no longer exists;
//! - absolute times (MemFs reads a clock and makes every change strictly later): only which
//!   stamps moved and their order; two different files may share a stamp in one world and
//!   not in the other (Linux's coarse clock; MemFs stamps a new name and its directory alike);
//! - the size of a directory (ext4 reports blocks, MemFs 0): the lock never reads it;
//! - descriptor numbers (both hand out fresh handles; only their effects are compared);
//! - short and failing writes, which the scripts cannot meet: MemFs has no file-size limit and
//!   no full disk, so its writes never stop midway. On Linux `write(2)` to a regular file comes
//!   back short only at such a limit; the real adapter then writes on (std's `write_all`, which
//!   also retries EINTR) and fails with the errno that stopped it (EFBIG, ENOSPC), leaving the
//!   prefix written so far on disk. The port promises only that a failed call was not a whole
//!   write, so a caller never takes it as acknowledged; `core/tests/real_short_writes.rs` holds
//!   the adapter to that (it failed with a single unlooped `write(2)`). MemFs never leaves a
//!   prefix; whether a failed write in the simulator did is for SimFs's injected faults;
//! - permissions beyond owner and other bits: MemFs has no groups (a non-owner is judged by
//!   the other bits; in the scripts uid 65534 is never in a file's group: the tree is root's,
//!   gid 0, and what it creates is its own), no sticky bit, no ACLs, no capability but root's
//!   bypass of every check;
//! - special files (FIFOs, sockets, devices): MemFs has none, so the scripts make none; the
//!   real adapter's reading of a FIFO at a lock path is tested in `core/tests/real_hostile.rs`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use heldlock_core::memfs::{MemFs, MemFsView, ROOT_UID};
use heldlock_core::platform::{Fd, FileStat, Fs};
use heldlock_core::real::RealFs;

use super::fdroom::FdSqueeze;
use super::script::{Op, Script, CAPS, DATA, DIRS, FILES, MODED, PATHS, PLENTY_FDS, SYMLINKS};

/// What one operation returned, in terms both worlds share (and the unprivileged child sends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    Opened,
    Bytes(Vec<u8>),
    Stat(#[serde(with = "stat_wire")] FileStat),
    /// What `read_entry` saw: the capped bytes and the entry's own stat.
    Entry(Vec<u8>, #[serde(with = "stat_wire")] FileStat),
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
            Outcome::Entry(b, s) => write!(
                f,
                "Ok({:?}, stat ino={} size={} dir={})",
                String::from_utf8_lossy(b),
                s.ino,
                s.size,
                s.is_dir
            ),
            Outcome::Path(p) => write!(f, "Ok({})", p.display()),
            Outcome::Failed(e) => write!(f, "Err({})", errno_name(*e)),
        }
    }
}

/// `FileStat` (core has no serde) as a tuple on the wire.
mod stat_wire {
    use heldlock_core::platform::FileStat;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Wire = (u64, u64, u64, i128, i128, bool);

    pub fn serialize<S: Serializer>(s: &FileStat, out: S) -> Result<S::Ok, S::Error> {
        (s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns, s.is_dir).serialize(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<FileStat, D::Error> {
        let (dev, ino, size, mtime_ns, ctime_ns, is_dir) = Wire::deserialize(input)?;
        Ok(FileStat {
            dev,
            ino,
            size,
            mtime_ns,
            ctime_ns,
            is_dir,
        })
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

/// One world's side of a run: its `Fs` and the descriptors its creates opened.
struct Side<'a> {
    fs: &'a dyn Fs,
    fds: HashMap<u32, Fd>,
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
            Op::Lstat { path } => stat_outcome(self.fs.lstat(&at(path)).await),
            Op::ReadEntry { path, cap } => match self.fs.read_entry(&at(path), CAPS[cap]).await {
                Ok(entry) => Outcome::Entry(entry.bytes, entry.stat),
                Err(e) => failed(&e),
            },
            Op::Unlink { path } => done(self.fs.unlink(&at(path)).await),
            Op::Mkdir { path } => done(self.fs.mkdir(&at(path)).await),
            Op::Rmdir { path } => done(self.fs.rmdir(&at(path)).await),
            Op::Append { path, data } => done(self.fs.append(&at(path), DATA[data]).await),
            Op::WriteAll { path, data } => done(self.fs.write_all(&at(path), DATA[data]).await),
            Op::Canonical { path } => {
                self.fs.canonical_dir(&at(path)).await.map_or_else(|e| failed(&e), Outcome::Path)
            }
            Op::Exchange { path, other } => done(self.fs.exchange(&at(path), &at(other)).await),
            Op::RenameNoreplace { path, other } => {
                done(self.fs.rename_noreplace(&at(path), &at(other)).await)
            }
            Op::Link { path, other } => done(self.fs.link(&at(path), &at(other)).await),
            Op::Rename { path, other } => done(self.fs.rename(&at(path), &at(other)).await),
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

/// The tree of `script.rs`, on the real filesystem under `root`, with `modes` set last.
fn build_real_tree(root: &Path, modes: &[(usize, u32)]) -> io::Result<()> {
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
    // Deepest first: a directory closed to everyone is still root's to open.
    for (at, mode) in modes.iter().rev() {
        std::fs::set_permissions(root.join(MODED[*at]), std::fs::Permissions::from_mode(*mode))?;
    }
    Ok(())
}

/// The same tree in a fresh MemFs, at the same absolute path, with the same modes.
fn build_mem_tree(root: &Path, modes: &[(usize, u32)]) -> io::Result<MemFs> {
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
    for (at, mode) in modes.iter().rev() {
        disk.chmod(&root.join(MODED[*at]), *mode)?;
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

/// Whether two stats differ in the facts compared exactly: is-dir, and a non-directory's size.
fn facts_differ(mem: &FileStat, real: &FileStat) -> bool {
    mem.is_dir != real.is_dir || (!mem.is_dir && mem.size != real.size)
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
            if facts_differ(m, r) {
                return Err(mismatch("the stats differ"));
            }
            stats.check(step, *m, *r, disk)
        }
        (Outcome::Entry(mb, m), Outcome::Entry(rb, r)) => {
            if mb != rb {
                return Err(mismatch("the entries' bytes differ"));
            }
            if facts_differ(m, r) {
                return Err(mismatch("the entries' stats differ"));
            }
            stats.check(step, *m, *r, disk)
        }
        (m, r) if m == r => Ok(()),
        _ => Err(mismatch("the outcomes differ")),
    }
}

/// Figures of filesystem parity runs.
#[derive(Debug, Default)]
pub struct FsCounts {
    /// Stat pairs where Linux gave a freed inode number to a new file (allowed, see above).
    pub inode_reuses: u64,
    /// Script ops Linux refused with EACCES (MemFs then did too, or the run stopped there).
    pub eacces: u64,
}

/// Run `script` through both worlds. `Ok(None)`: no difference; `Err`: the real side could not
/// even be set up (a temp directory, the fd limit, the unprivileged child). `counts` gathers
/// figures of the run. A script as `NOBODY` runs its
/// real side in `helper` (this binary: `parity --real-side`) started as that uid.
pub fn run_script(
    script: &Script,
    rt: &tokio::runtime::Runtime,
    helper: Option<&Path>,
    counts: &mut FsCounts,
) -> Result<Option<FsMismatch>, String> {
    let tmp = tempfile::Builder::new()
        .prefix("heldlock-parity")
        .tempdir()
        .map_err(|e| format!("cannot make a temp directory: {e}"))?;
    let base = std::fs::canonicalize(tmp.path()).map_err(|e| format!("temp directory: {e}"))?;
    let root = base.join("w");
    build_real_tree(&root, &script.modes)
        .map_err(|e| format!("cannot build the tree in {}: {e}", root.display()))?;
    let disk =
        build_mem_tree(&root, &script.modes).map_err(|e| format!("cannot build the MemFs tree: {e}"))?;
    let view: MemFsView = disk.view(2, script.fd_room).as_user(script.uid);
    let mem = rt.block_on(run_ops(&view, &script.ops, &root));
    let real = if script.uid == ROOT_UID {
        real_outcomes(script, &root, rt)?
    } else {
        let helper = helper.ok_or("a script as nobody needs the heldlock binary to run it")?;
        // The temp directory is root's and private: nobody must be able to search it.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot open {} to nobody: {e}", base.display()))?;
        super::unprivileged::real_outcomes(helper, script, &root)?
    };
    if real.len() != mem.len() {
        return Err(format!("the real side answered {} of {} ops", real.len(), mem.len()));
    }
    let mut stats = Stats::default();
    let result = (|| {
        for (i, (op, (m, r))) in script.ops.iter().zip(mem.iter().zip(&real)).enumerate() {
            compare(&format!("#{i} {op}"), m, r, &mut stats, &disk)?;
        }
        sweep(&disk, &root, rt, &mut stats)
    })();
    counts.inode_reuses += stats.inode_reuses;
    counts.eacces += real.iter().filter(|r| **r == Outcome::Failed(libc::EACCES)).count() as u64;
    Ok(result.err())
}

/// Every op of `ops` through one world's `Fs`, its descriptors closed afterwards.
async fn run_ops(fs: &dyn Fs, ops: &[Op], root: &Path) -> Vec<Outcome> {
    let mut side = Side {
        fs,
        fds: HashMap::new(),
    };
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(side.apply(*op, root).await);
    }
    side.close_all().await;
    outcomes
}

/// The real side of `script` in this process, with its fd table squeezed as the script says.
pub fn real_outcomes(
    script: &Script,
    root: &Path,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<Outcome>, String> {
    let _squeeze = if script.fd_room < PLENTY_FDS {
        Some(FdSqueeze::new(script.fd_room).map_err(|e| format!("fd limit: {e}"))?)
    } else {
        None
    };
    Ok(rt.block_on(run_ops(&RealFs::new(), &script.ops, root)))
}

/// The whole tree after a script, as root with room to open files: every path stat'ed,
/// lstat'ed, read, and read as an entry below and above every size.
fn sweep(
    disk: &MemFs,
    root: &Path,
    rt: &tokio::runtime::Runtime,
    stats: &mut Stats,
) -> Result<(), FsMismatch> {
    let sweep_view = disk.view(3, PLENTY_FDS);
    let real = RealFs::new();
    for path in 0..PATHS.len() {
        let (small, large) = (1, CAPS.len() - 1);
        let ops = [
            Op::Stat { path },
            Op::Lstat { path },
            Op::Read { path },
            Op::ReadEntry { path, cap: small },
            Op::ReadEntry { path, cap: large },
        ];
        let mem = rt.block_on(run_ops(&sweep_view, &ops, root));
        let linux = rt.block_on(run_ops(&real, &ops, root));
        for (op, (m, r)) in ops.iter().zip(mem.iter().zip(&linux)) {
            compare(&format!("after the script: {op}"), m, r, stats, disk)?;
        }
    }
    Ok(())
}

/// The shortest script (by removing operations, then modes, then the fd squeeze) that still shows a
/// difference, and that difference. Bounded: at most `MAX_SHRINK_TRIALS` runs.
pub fn shrink(
    script: &Script,
    first: FsMismatch,
    rt: &tokio::runtime::Runtime,
    helper: Option<&Path>,
) -> (Script, FsMismatch) {
    shrink_with(script, first, |s| run_script(s, rt, helper, &mut FsCounts::default()).ok().flatten())
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
    // Each mode the difference does not need.
    let mut at = 0;
    while at < best.modes.len() && trials < MAX_SHRINK_TRIALS {
        let mut candidate = best.clone();
        candidate.modes.remove(at);
        trials += 1;
        match fails(&candidate) {
            Some(m) => {
                best = candidate;
                found = m;
            }
            None => at += 1,
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
        // Modes: only the one the difference needs stays.
        let mut moded = script.clone();
        moded.modes = vec![(1, 0o555), (4, 0o600), (5, 0o000)];
        let needs_mode = |s: &Script| (s.ops.contains(&a) && s.modes.contains(&(4, 0o600))).then(mismatch);
        let (shrunk, _) = shrink_with(&moded, mismatch(), needs_mode);
        assert_eq!((shrunk.ops, shrunk.modes), (vec![a], vec![(4, 0o600)]));
    }
}
