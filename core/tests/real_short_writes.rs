//! Short writes on the real adapter. The `Fs` port promises that `write_fd`, `append` and
//! `write_all` write all of `data` or fail: a short `write(2)` is continued, and the error that
//! stops it is surfaced, never acknowledged as a whole write. On a regular file a write is cut
//! short only at a limit (`RLIMIT_FSIZE`, a full disk), so the test sets the file-size limit in
//! the middle of the data: the first `write(2)` returns a short count, the next one EFBIG.
//!
//! Its own test binary, with one test: the limit and the ignored SIGXFSZ are process-wide.

use std::path::Path;

use futures::executor::block_on;
use heldlock_core::platform::Fs;
use heldlock_core::real::RealFs;

/// While alive, files of this process cannot grow past `bytes` (`RLIMIT_FSIZE`); restored on drop.
struct FileSizeLimit {
    old: libc::rlimit,
}

impl FileSizeLimit {
    fn new(bytes: u64) -> FileSizeLimit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut old) }, 0);
        let limit = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: old.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own; lowering the soft limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &limit) }, 0);
        FileSizeLimit { old }
    }
}

impl Drop for FileSizeLimit {
    fn drop(&mut self) {
        // SAFETY: restores the limit read in `new`.
        unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &self.old) };
    }
}

fn efbig<T: std::fmt::Debug>(r: std::io::Result<T>, what: &str) {
    let err = r.expect_err(what);
    assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{what}: {err}");
}

#[test]
fn a_write_cut_short_by_a_limit_fails_and_is_never_acknowledged_whole() {
    // SAFETY: ignoring SIGXFSZ makes a write past the limit fail with EFBIG instead of killing
    // the process; nothing in this binary relies on the signal.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let tmp = tempfile::TempDir::new().unwrap();
    let fs = RealFs::new();
    let at = |name: &str| tmp.path().join(name);
    let content = |path: &Path| std::fs::read(path).unwrap();

    // write_fd: the first write(2) stores 4 of 10 bytes; the adapter goes on and meets EFBIG.
    let lock = at("a.lock");
    let fd = block_on(fs.create_exclusive(&lock, 0o600)).unwrap();
    {
        let _limit = FileSizeLimit::new(4);
        efbig(block_on(fs.write_fd(fd, b"0123456789")), "write_fd past the limit");
    }
    block_on(fs.close(fd)).unwrap();
    assert_eq!(content(&lock), b"0123", "a failed write can leave a prefix on Linux");

    // append: from the end of the file, cut at 5 bytes.
    let transcript = at("t.jsonl");
    std::fs::write(&transcript, b"ab").unwrap();
    {
        let _limit = FileSizeLimit::new(5);
        efbig(block_on(fs.append(&transcript, b"cdefg")), "append past the limit");
        // Ending exactly at the limit is a whole write.
        std::fs::write(at("exact"), b"").unwrap();
        block_on(fs.append(&at("exact"), b"12345")).expect("an append that fits");
    }
    assert_eq!(content(&transcript), b"abcde");
    assert_eq!(content(&at("exact")), b"12345");

    // write_all: truncated, then cut at 3 bytes.
    {
        let _limit = FileSizeLimit::new(3);
        efbig(block_on(fs.write_all(&transcript, b"xyzw")), "write_all past the limit");
    }
    assert_eq!(content(&transcript), b"xyz");
}
