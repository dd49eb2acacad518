//! Squeezing this process's descriptor table to a chosen number of free slots, so the real
//! filesystem returns EMFILE exactly where a MemFs view with that fd limit does.

use std::io;

/// While alive, `RLIMIT_NOFILE`'s soft limit leaves exactly `room` free descriptor numbers
/// (Linux hands out the lowest free number below the limit). Restores the limit on drop.
/// Process-wide: only for a process (or test binary) where nothing else opens files meanwhile.
pub struct FdSqueeze {
    old: libc::rlimit,
}

/// Descriptor numbers open now.
fn open_fds() -> io::Result<Vec<i32>> {
    let mut listed = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            listed.push(fd);
        }
    }
    // The listing's own descriptor is closed now: keep only what is still open.
    // SAFETY: F_GETFD only queries the descriptor's flags.
    listed.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1);
    listed.sort_unstable();
    Ok(listed)
}

impl FdSqueeze {
    pub fn new(room: usize) -> io::Result<FdSqueeze> {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let open = open_fds()?;
        // The smallest limit with `room` free numbers below it; `used` counts open ones below.
        let (mut limit, mut used, mut next_open) = (0usize, 0usize, 0usize);
        while limit - used < room {
            if open.get(next_open) == Some(&(limit as i32)) {
                used += 1;
                next_open += 1;
            }
            limit += 1;
            if limit as u64 > old.rlim_cur {
                return Err(io::Error::other(format!(
                    "cannot leave {room} free descriptors under the fd limit"
                )));
            }
        }
        let squeezed = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; lowering the soft limit is always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &squeezed) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FdSqueeze { old })
    }
}

impl Drop for FdSqueeze {
    fn drop(&mut self) {
        // SAFETY: restores the limit read in `new` (soft ≤ hard, as it was).
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
    }
}
