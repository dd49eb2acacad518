//! A network mount's cache of failed lookups (the Linux NFS client's negative dentries,
//! `lookupcache=all`, its default). A host that saw a lock path absent — a lookup answered
//! ENOENT, or its own unlink — answers its later lookups of that path (stat, lstat, the entry
//! read) with ENOENT from the cache until its cached view of the directory expires
//! (`acdirmin`), even after another host created a file there. The exclusive create always
//! asks the server (EEXIST) and, failing, leaves the cached entry as it was. To the lock this
//! is a file that is there to create and gone to read, again and again: a lock that keeps
//! vanishing (issue 6 defect 10), which must cost it polls, not its budget.
//!
//! Each `SimFs` (one process on its own host) keeps its own cache; only lock paths are cached
//! (the transcript and the guard are looked up through paths the lock's own writes keep fresh).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use heldlock_core::platform::errno;

/// Lock paths one process looks up: one per session, each spelled at most a few ways.
const MAX_CACHED_PATHS: usize = 64;

pub struct NegativeLookups {
    /// How long a cached absence is trusted (0: no cache).
    ttl_ms: u64,
    /// Lock path ⇒ when the process last saw it absent (simulated ms).
    absent_since: Mutex<BTreeMap<PathBuf, u64>>,
}

impl NegativeLookups {
    pub fn new(ttl_ms: u64) -> Self {
        NegativeLookups {
            ttl_ms,
            absent_since: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a lookup of `path` at `now_ms` is answered ENOENT from the cache.
    pub fn hides(&self, path: &Path, now_ms: u64) -> bool {
        if self.ttl_ms == 0 {
            return false;
        }
        let cached = self.absent_since.lock().unwrap().get(path).copied();
        cached.is_some_and(|since| now_ms < since.saturating_add(self.ttl_ms))
    }

    /// A lookup of `path` went to the server and answered `result`: an absence is cached (from
    /// now), a presence drops what was cached; other errors tell nothing.
    pub fn looked_up<T>(&self, path: &Path, result: &io::Result<T>, now_ms: u64) {
        match result {
            Ok(_) => self.saw(path, true, now_ms),
            Err(e) if e.raw_os_error() == Some(errno::ENOENT) => self.saw(path, false, now_ms),
            Err(_) => {}
        }
    }

    /// The process learned `path` is `present` (its own create or exchange) or absent (its own
    /// unlink, a server lookup's ENOENT).
    pub fn saw(&self, path: &Path, present: bool, now_ms: u64) {
        if self.ttl_ms == 0 {
            return;
        }
        let mut cached = self.absent_since.lock().unwrap();
        if present {
            cached.remove(path);
        } else {
            cached.insert(path.to_owned(), now_ms);
            assert!(cached.len() <= MAX_CACHED_PATHS, "more lock paths cached than a process looks up");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heldlock_core::platform::os_error;

    const LOCK: &str = "/srv/sessions/a.jsonl.lock";

    #[test]
    fn an_absence_seen_hides_the_path_until_it_expires() {
        let cache = NegativeLookups::new(1_000);
        let lock = Path::new(LOCK);
        assert!(!cache.hides(lock, 0), "nothing cached yet");
        cache.looked_up::<()>(lock, &Err(os_error(errno::ENOENT)), 100);
        assert!(cache.hides(lock, 100) && cache.hides(lock, 1_099));
        assert!(!cache.hides(lock, 1_100), "revalidated once the directory's view expires");
        cache.saw(lock, false, 2_000); // our own unlink
        cache.looked_up::<()>(lock, &Err(os_error(errno::EIO)), 2_001);
        assert!(cache.hides(lock, 2_500), "an EIO tells nothing about the entry");
        cache.saw(lock, true, 2_600); // our own create
        assert!(!cache.hides(lock, 2_601));
        assert!(!cache.hides(Path::new("/srv/sessions/b.jsonl.lock"), 2_601), "per path");
    }

    #[test]
    fn without_a_ttl_nothing_is_cached() {
        let cache = NegativeLookups::new(0);
        cache.saw(Path::new(LOCK), false, 0);
        assert!(!cache.hides(Path::new(LOCK), 0));
    }
}
