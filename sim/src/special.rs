//! Entries at a path that the in-memory disk does not model: a dangling symlink. `SimFs`
//! consults these before the disk, with Linux's semantics: `open(O_CREAT|O_EXCL)` on a symlink
//! fails with EEXIST (dangling or not), `read` and `stat` follow it and find nothing (ENOENT),
//! `unlink` removes the link itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A kind of special entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// A symlink to a path that does not exist.
    DanglingSymlink,
}

/// The special entries of the machine's disk, by absolute path.
#[derive(Default)]
pub struct SpecialFiles {
    entries: Mutex<BTreeMap<PathBuf, Special>>,
}

impl SpecialFiles {
    pub fn plant(&self, path: &Path, special: Special) {
        self.entries.lock().unwrap().insert(path.to_owned(), special);
    }

    pub fn at(&self, path: &Path) -> Option<Special> {
        self.entries.lock().unwrap().get(path).copied()
    }

    /// Remove the entry (an `unlink`); whether there was one.
    pub fn remove(&self, path: &Path) -> bool {
        self.entries.lock().unwrap().remove(path).is_some()
    }
}
