//! Random scripts of `Fs` operations over a small tree: what the filesystem parity check runs
//! through MemFs and through the real adapter.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The tree every script starts from, under its root `R`: directories, files, and symlinks of
/// every kind the lock can meet (absolute, relative, through `..`, dangling, looping).
pub const DIRS: &[&str] = &["d", "d/sub", "e"];
pub const FILES: &[(&str, &[u8])] = &[("f", b"x\n"), ("d/g", b"g")];
/// `(link, target)`; an absolute target is written relative to `R` and made absolute.
pub const SYMLINKS: &[(&str, &str, bool)] = &[
    ("ld", "d", true),
    ("lf", "f", false),
    ("dang", "nowhere", false),
    ("loop", "loop", false),
    ("rel", "d/sub/..", false),
    ("ldd", "nodir/x", true),
];

/// The paths operations pick from (relative to `R`). No trailing `/` and no final `.` or `..`:
/// `Path` drops the first and the lock never builds the others.
pub const PATHS: &[&str] = &[
    "f",
    "d/g",
    "d/new",
    "ld/g",
    "ld/new",
    "lf",
    "dang",
    "nowhere",
    "ldd",
    "e",
    "e/x",
    "f/x",
    "missing/x",
    "ld/../f",
    "rel/g",
    "d/sub",
    "n",
    "n/m",
    "loop",
    "loop/x",
    "lf/x",
    "d",
    "ld",
    "lock",
    "lock.reclaim",
];

/// What writes write.
pub const DATA: &[&[u8]] = &[b"", b"a", b"bc\n", b"{\"pid\":1}"];

/// One operation. `path` and `data` index `PATHS` and `DATA`; `id` names the descriptor the
/// create with that id opened (a create that failed or was shrunk away leaves a dead id: both
/// worlds then get the same unknown descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create {
        path: usize,
        id: u32,
    },
    WriteFd {
        id: u32,
        data: usize,
    },
    Close {
        id: u32,
    },
    StatFd {
        id: u32,
    },
    Read {
        path: usize,
    },
    Stat {
        path: usize,
    },
    /// Not a method of `Fs` here: MemFs's `lstat_now` against `symlink_metadata`.
    Lstat {
        path: usize,
    },
    Unlink {
        path: usize,
    },
    Mkdir {
        path: usize,
    },
    Rmdir {
        path: usize,
    },
    Append {
        path: usize,
        data: usize,
    },
    WriteAll {
        path: usize,
        data: usize,
    },
    Canonical {
        path: usize,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = |d: &usize| String::from_utf8_lossy(DATA[*d]).into_owned();
        match self {
            Op::Create { path, id } => write!(f, "create_exclusive {} -> fd#{id}", PATHS[*path]),
            Op::WriteFd { id, data: d } => write!(f, "write_fd fd#{id} {:?}", data(d)),
            Op::Close { id } => write!(f, "close fd#{id}"),
            Op::StatFd { id } => write!(f, "stat_fd fd#{id}"),
            Op::Read { path } => write!(f, "read {}", PATHS[*path]),
            Op::Stat { path } => write!(f, "stat {}", PATHS[*path]),
            Op::Lstat { path } => write!(f, "lstat {}", PATHS[*path]),
            Op::Unlink { path } => write!(f, "unlink {}", PATHS[*path]),
            Op::Mkdir { path } => write!(f, "mkdir {}", PATHS[*path]),
            Op::Rmdir { path } => write!(f, "rmdir {}", PATHS[*path]),
            Op::Append { path, data: d } => write!(f, "append {} {:?}", PATHS[*path], data(d)),
            Op::WriteAll { path, data: d } => write!(f, "write_all {} {:?}", PATHS[*path], data(d)),
            Op::Canonical { path } => write!(f, "canonical_dir {}", PATHS[*path]),
        }
    }
}

/// Descriptors a script may open when its fd room is not squeezed.
pub const PLENTY_FDS: usize = 64;
/// The most operations in one script.
pub const MAX_OPS: usize = 24;

/// A script: its seed, how many descriptors the process may still open (the MemFs view's
/// limit and, on Linux, the free slots below `RLIMIT_NOFILE`), and its operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    pub seed: u64,
    pub fd_room: usize,
    pub ops: Vec<Op>,
}

impl Script {
    /// The script of `seed`. `squeeze_fds`: a third of the scripts get only 1–4 free
    /// descriptors (EMFILE for real), which needs a process whose fd limit may be lowered.
    pub fn generate(seed: u64, squeeze_fds: bool) -> Script {
        let mut rng = ChaCha8Rng::seed_from_u64(heldlock_sim::seed::mix(seed));
        let fd_room = if squeeze_fds && rng.gen_bool(0.33) {
            rng.gen_range(1..=4)
        } else {
            PLENTY_FDS
        };
        let count = rng.gen_range(1..=MAX_OPS);
        let mut ops = Vec::with_capacity(count);
        let mut next_id = 0u32;
        for _ in 0..count {
            ops.push(random_op(&mut rng, &mut next_id));
        }
        Script { seed, fd_room, ops }
    }
}

fn random_op(rng: &mut ChaCha8Rng, next_id: &mut u32) -> Op {
    let path = rng.gen_range(0..PATHS.len());
    let data = rng.gen_range(0..DATA.len());
    // A descriptor id among those created so far (or one never created).
    let id = rng.gen_range(0..=*next_id);
    match rng.gen_range(0..100) {
        0..=17 => {
            *next_id += 1;
            Op::Create {
                path,
                id: *next_id - 1,
            }
        }
        18..=29 => Op::WriteFd { id, data },
        30..=36 => Op::Close { id },
        37..=43 => Op::StatFd { id },
        44..=51 => Op::Read { path },
        52..=57 => Op::Stat { path },
        58..=61 => Op::Lstat { path },
        62..=69 => Op::Unlink { path },
        70..=75 => Op::Mkdir { path },
        76..=81 => Op::Rmdir { path },
        82..=88 => Op::Append { path, data },
        89..=94 => Op::WriteAll { path, data },
        _ => Op::Canonical { path },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_a_function_of_their_seed() {
        assert_eq!(Script::generate(7, true), Script::generate(7, true));
        assert_ne!(Script::generate(7, true).ops, Script::generate(8, true).ops);
        let squeezed = (0..200).filter(|s| Script::generate(*s, true).fd_room < PLENTY_FDS).count();
        assert!((30..120).contains(&squeezed), "{squeezed} of 200 squeezed");
        assert!((0..200).all(|s| Script::generate(s, false).fd_room == PLENTY_FDS));
    }
}
