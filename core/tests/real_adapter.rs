//! The real adapter (`heldlock_core::real`) on the real filesystem: the errno values and the
//! identities the lock relies on, and one process's lock on disk.

mod real_common;

use real_common::{own_platform, Reclaims};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use futures::executor::block_on;
use heldlock_core::platform::{errno, Fs};
use heldlock_core::real::RealFs;
use heldlock_core::{LockOptions, ProcessLocks};

#[test]
fn exclusive_create_fails_with_eexist_and_stat_is_the_real_identity() {
    let tmp = tempfile::TempDir::new().unwrap();
    let path = tmp.path().join("a.lock");
    let fs = RealFs::new();

    let fd = block_on(fs.create_exclusive(&path, 0o600)).unwrap();
    let err = block_on(fs.create_exclusive(&path, 0o600)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(17));
    assert_eq!(errno::EEXIST, 17);

    block_on(fs.write_fd(fd, b"{\"pid\":1}")).unwrap();
    block_on(fs.close(fd)).unwrap();
    assert_eq!(block_on(fs.close(fd)).unwrap_err().raw_os_error(), Some(errno::EBADF));
    assert_eq!(block_on(fs.read(&path)).unwrap(), b"{\"pid\":1}");

    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let st = block_on(fs.stat(&path)).unwrap();
    assert_eq!((st.dev, st.ino, st.size), (meta.dev(), meta.ino(), 9));
    assert!(st.ino != 0 && !st.is_dir);
    assert_eq!(st.mtime_ns, meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128);

    block_on(fs.unlink(&path)).unwrap();
    for err in [
        block_on(fs.unlink(&path)).unwrap_err(),
        block_on(fs.stat(&path)).unwrap_err(),
        block_on(fs.read(&path)).unwrap_err(),
    ] {
        assert_eq!(err.raw_os_error(), Some(errno::ENOENT));
    }
}

#[test]
fn guard_dirs_and_canonical_dirs() {
    let tmp = tempfile::TempDir::new().unwrap();
    let fs = RealFs::new();
    let guard = tmp.path().join("a.lock.reclaim");
    block_on(fs.mkdir(&guard)).unwrap();
    assert_eq!(block_on(fs.mkdir(&guard)).unwrap_err().raw_os_error(), Some(errno::EEXIST));
    assert!(block_on(fs.stat(&guard)).unwrap().is_dir);
    block_on(fs.rmdir(&guard)).unwrap();
    assert_eq!(block_on(fs.rmdir(&guard)).unwrap_err().raw_os_error(), Some(errno::ENOENT));

    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let canonical = std::fs::canonicalize(&real).unwrap();
    assert_eq!(block_on(fs.canonical_dir(&link)).unwrap(), canonical);
    assert_eq!(block_on(fs.canonical_dir(&real)).unwrap(), canonical);
}

fn locks_with(observer: Arc<Reclaims>) -> Arc<ProcessLocks> {
    let mut platform = own_platform();
    platform.observer = observer;
    ProcessLocks::new(platform)
}

fn payload(lock: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(lock).unwrap()).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn one_process_lock_on_disk() {
    let tmp = tempfile::TempDir::new().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let reclaims = Arc::new(Reclaims::default());
    let locks = locks_with(reclaims.clone());
    let opts = LockOptions {
        timeout_ms: 200,
        ..LockOptions::default()
    };

    // The lock is `<canonical dir>/<name>.lock`, 0600, with our pid and start time.
    let handle = locks.acquire(&link.join("s.jsonl"), opts).await.expect("acquire");
    let lock = std::fs::canonicalize(&real).unwrap().join("s.jsonl.lock");
    assert_eq!(handle.lock_path(), lock);
    assert_eq!(handle.ino(), std::fs::metadata(&lock).unwrap().ino());
    assert_eq!(std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777, 0o600);
    let p = payload(&lock);
    assert_eq!(p["pid"].as_u64(), Some(std::process::id() as u64));
    assert!(p["starttime"].as_u64().is_some(), "{p}");
    assert_eq!(p["maxHoldMs"].as_u64(), Some(300_000));

    // Not reentrant, through the other path too: a timeout, and the lock stays.
    let err = locks.acquire(&real.join("s.jsonl"), opts).await.unwrap_err();
    assert!(matches!(err, heldlock_core::LockError::Timeout { .. }), "{err}");
    assert!(lock.exists());

    locks.release(&handle).await.unwrap();
    assert!(!lock.exists());
    locks.release(&handle).await.unwrap(); // idempotent
    assert!(reclaims.0.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn release_spares_a_successor_and_a_dead_pid_is_reclaimed() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let target = dir.join("s.jsonl");
    let lock = dir.join("s.jsonl.lock");
    let reclaims = Arc::new(Reclaims::default());
    let locks = locks_with(reclaims.clone());
    let opts = LockOptions {
        timeout_ms: 2_000,
        ..LockOptions::default()
    };

    // Someone replaced our lock file: release must not delete theirs.
    let handle = locks.acquire(&target, opts).await.unwrap();
    std::fs::remove_file(&lock).unwrap();
    let successor = b"{\"pid\":1,\"createdAt\":\"2020-01-01T00:00:00Z\"}";
    std::fs::write(&lock, successor).unwrap();
    locks.release(&handle).await.unwrap();
    assert_eq!(std::fs::read(&lock).unwrap(), successor);
    std::fs::remove_file(&lock).unwrap();

    // A fresh lock of a process that exited and was reaped: reclaimed as dead-pid at once.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let created = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    std::fs::write(&lock, format!("{{\"pid\":{dead},\"createdAt\":\"{created}\",\"maxHoldMs\":300000}}"))
        .unwrap();
    let handle = locks.acquire(&target, opts).await.expect("reclaim");
    assert_eq!(*reclaims.0.lock().unwrap(), ["dead-pid"]);
    assert_eq!(payload(&lock)["pid"].as_u64(), Some(std::process::id() as u64));
    assert!(!dir.join("s.jsonl.lock.reclaim").exists());
    locks.release(&handle).await.unwrap();
    assert!(!lock.exists());
}
