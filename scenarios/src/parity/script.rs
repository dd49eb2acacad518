//! Random scripts of `Fs` operations over a small tree: what the filesystem parity check runs
//! through MemFs and through the real adapter.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

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

/// What an unprivileged script's modes are set on (out of band, before its first op): the root
/// `R` itself (""), its directories and its files.
pub const MODED: &[&str] = &["", "d", "d/sub", "e", "f", "d/g"];
/// Directory modes: search and write, no write, write but no read, no search, owner only, all.
pub const DIR_MODES: &[u32] = &[0o755, 0o555, 0o733, 0o644, 0o700, 0o777];
/// File modes: readable, private, writable by all, write-only, nothing.
pub const FILE_MODES: &[u32] = &[0o644, 0o600, 0o666, 0o222, 0o000];
/// The uid an unprivileged script runs as (`nobody`): it owns nothing in the tree.
pub const NOBODY: u32 = 65534;

/// What writes write.
pub const DATA: &[&[u8]] = &[b"", b"a", b"bc\n", b"{\"pid\":1}"];

/// The `max_bytes` a `read_entry` passes: below, at and above the sizes `DATA` and `FILES`
/// make (it reads at most `max_bytes + 1`).
pub const CAPS: &[usize] = &[0, 1, 3, 64];

/// One operation. `path` and `data` index `PATHS` and `DATA`; `id` names the descriptor the
/// create with that id opened (a create that failed or was shrunk away leaves a dead id: both
/// worlds then get the same unknown descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    Lstat {
        path: usize,
    },
    /// `read_entry` with `max_bytes` = `CAPS[cap]`.
    ReadEntry {
        path: usize,
        cap: usize,
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
    /// `renameat2(RENAME_EXCHANGE)` of two paths.
    Exchange {
        path: usize,
        other: usize,
    },
    /// `renameat2(RENAME_NOREPLACE)` of `path` to `other`.
    RenameNoreplace {
        path: usize,
        other: usize,
    },
    /// `link(path, other)`.
    Link {
        path: usize,
        other: usize,
    },
    /// `rename(path, other)`.
    Rename {
        path: usize,
        other: usize,
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
            Op::ReadEntry { path, cap } => write!(f, "read_entry {} max {}", PATHS[*path], CAPS[*cap]),
            Op::Unlink { path } => write!(f, "unlink {}", PATHS[*path]),
            Op::Mkdir { path } => write!(f, "mkdir {}", PATHS[*path]),
            Op::Rmdir { path } => write!(f, "rmdir {}", PATHS[*path]),
            Op::Append { path, data: d } => write!(f, "append {} {:?}", PATHS[*path], data(d)),
            Op::WriteAll { path, data: d } => write!(f, "write_all {} {:?}", PATHS[*path], data(d)),
            Op::Canonical { path } => write!(f, "canonical_dir {}", PATHS[*path]),
            Op::Exchange { path, other } => write!(f, "exchange {} {}", PATHS[*path], PATHS[*other]),
            Op::RenameNoreplace { path, other } => {
                write!(f, "rename_noreplace {} {}", PATHS[*path], PATHS[*other])
            }
            Op::Link { path, other } => write!(f, "link {} {}", PATHS[*path], PATHS[*other]),
            Op::Rename { path, other } => write!(f, "rename {} {}", PATHS[*path], PATHS[*other]),
        }
    }
}

/// Descriptors a script may open when its fd room is not squeezed.
pub const PLENTY_FDS: usize = 64;
/// The most operations in one script.
pub const MAX_OPS: usize = 24;

/// A script: its seed, how many descriptors the process may still open (the MemFs view's
/// limit and, on Linux, the free slots below `RLIMIT_NOFILE`), whose permissions its ops have
/// (root, or `NOBODY` with `modes` set on the tree first: `(index into MODED, mode)`), and its
/// operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub seed: u64,
    pub fd_room: usize,
    pub uid: u32,
    pub modes: Vec<(usize, u32)>,
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
        let (uid, modes) = if rng.gen_bool(0.25) {
            (NOBODY, random_modes(&mut rng))
        } else {
            (0, Vec::new())
        };
        Script {
            seed,
            fd_room,
            uid,
            modes,
            ops,
        }
    }
}

/// `d=0o555 f=0o600`, or `none`, for reports.
pub fn modes_text(modes: &[(usize, u32)]) -> String {
    if modes.is_empty() {
        return "none".into();
    }
    let named = |at: usize| if MODED[at].is_empty() { "R" } else { MODED[at] };
    modes
        .iter()
        .map(|(at, mode)| format!("{}={mode:#o}", named(*at)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Modes for about half of `MODED`, the rest left as made (0o755 and 0o644).
fn random_modes(rng: &mut ChaCha8Rng) -> Vec<(usize, u32)> {
    let mut modes = Vec::new();
    for (at, path) in MODED.iter().enumerate() {
        if rng.gen_bool(0.5) {
            let choices = if DIRS.contains(path) || path.is_empty() {
                DIR_MODES
            } else {
                FILE_MODES
            };
            modes.push((at, choices[rng.gen_range(0..choices.len())]));
        }
    }
    modes
}

fn random_op(rng: &mut ChaCha8Rng, next_id: &mut u32) -> Op {
    let path = rng.gen_range(0..PATHS.len());
    let data = rng.gen_range(0..DATA.len());
    // A descriptor id among those created so far (or one never created).
    let id = rng.gen_range(0..=*next_id);
    let cap = rng.gen_range(0..CAPS.len());
    let other = rng.gen_range(0..PATHS.len());
    match rng.gen_range(0..112) {
        0..=16 => {
            *next_id += 1;
            Op::Create {
                path,
                id: *next_id - 1,
            }
        }
        17..=27 => Op::WriteFd { id, data },
        28..=33 => Op::Close { id },
        34..=39 => Op::StatFd { id },
        40..=46 => Op::Read { path },
        47..=51 => Op::Stat { path },
        52..=56 => Op::Lstat { path },
        57..=64 => Op::ReadEntry { path, cap },
        65..=71 => Op::Unlink { path },
        72..=76 => Op::Mkdir { path },
        77..=81 => Op::Rmdir { path },
        82..=88 => Op::Append { path, data },
        89..=92 => Op::WriteAll { path, data },
        93..=95 => Op::Canonical { path },
        96..=99 => Op::Exchange { path, other },
        100..=103 => Op::RenameNoreplace { path, other },
        104..=107 => Op::Link { path, other },
        _ => Op::Rename { path, other },
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
        let unprivileged = (0..200).filter(|s| Script::generate(*s, true).uid == NOBODY).count();
        assert!((20..90).contains(&unprivileged), "{unprivileged} of 200 as nobody");
    }

    /// Every method of the `Fs` trait is an op, and the scripts draw each of them.
    #[test]
    fn scripts_draw_every_method_of_the_fs_trait() {
        let drawn: std::collections::BTreeSet<String> = (0..200)
            .flat_map(|s| Script::generate(s, true).ops)
            .map(|op| op.to_string().split(' ').next().unwrap_or_default().to_owned())
            .collect();
        // The trait's methods, read from its source: a method added later fails this test.
        let source = include_str!("../../../core/src/platform.rs");
        let start = source.find("pub trait Fs:").expect("the Fs trait");
        let body = &source[start..start + source[start..].find("\n}\n").expect("its end")];
        let methods: std::collections::BTreeSet<String> = body
            .split("fn ")
            .skip(1)
            .filter_map(|rest| rest.split(['<', '(']).next())
            .map(str::to_owned)
            .collect();
        assert_eq!(methods.len(), 18, "{methods:?}");
        assert_eq!(drawn, methods);
        let caps: std::collections::BTreeSet<usize> = (0..200)
            .flat_map(|s| Script::generate(s, true).ops)
            .filter_map(|op| match op {
                Op::ReadEntry { cap, .. } => Some(CAPS[cap]),
                _ => None,
            })
            .collect();
        assert_eq!(caps.len(), CAPS.len(), "every cap drawn: {caps:?}");
    }
}
