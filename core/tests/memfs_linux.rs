//! MemFs answers as Linux does: one test per difference `heldlock parity` found between the old
//! MemFs and the real filesystem (ext4, Linux 6.18). Each failed on the MemFs before the fix.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use heldlock_core::memfs::{MemFs, MemFsView};
use heldlock_core::platform::errno;

fn world() -> (MemFs, MemFsView) {
    let clock = Arc::new(AtomicI64::new(1_000));
    let fs = MemFs::new(Arc::new(move || clock.fetch_add(1_000, Ordering::SeqCst) as i128));
    fs.create_dir_all(Path::new("/r/d")).unwrap();
    let view = fs.view(7, 8);
    view.write_path_now(Path::new("/r/f"), b"x", true).unwrap();
    (fs, view)
}

fn errno_of<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("an error").raw_os_error().expect("an errno")
}

#[test]
fn unlink_of_a_symlink_removes_the_link_not_its_target() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("/r/f"), Path::new("/r/lf")).unwrap();
    view.unlink_now(Path::new("/r/lf")).unwrap();
    assert_eq!(fs.contents(Path::new("/r/f")).as_deref(), Some(&b"x"[..]));
    assert_eq!(errno_of(view.stat_now(Path::new("/r/lf"))), errno::ENOENT);
}

#[test]
fn exclusive_create_and_mkdir_on_a_dangling_symlink_are_eexist() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("/r/nowhere"), Path::new("/r/dang")).unwrap();
    assert_eq!(errno_of(view.create_exclusive_now(Path::new("/r/dang"))), errno::EEXIST);
    assert_eq!(errno_of(view.mkdir_now(Path::new("/r/dang"))), errno::EEXIST);
    assert_eq!(fs.contents(Path::new("/r/nowhere")), None, "nothing created behind the link");
    // An O_CREAT without O_EXCL follows it and creates the target, as Linux does.
    view.write_path_now(Path::new("/r/dang"), b"y", false).unwrap();
    assert_eq!(fs.contents(Path::new("/r/nowhere")).as_deref(), Some(&b"y"[..]));
}

#[test]
fn rmdir_refuses_a_symlink_and_counts_symlinks_as_entries() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    assert_eq!(errno_of(view.rmdir_now(Path::new("/r/ld"))), errno::ENOTDIR);
    fs.symlink_dir(Path::new("/r/f"), Path::new("/r/d/lf")).unwrap();
    assert_eq!(errno_of(view.rmdir_now(Path::new("/r/d"))), errno::ENOTEMPTY);
}

#[test]
fn a_file_on_the_way_is_enotdir() {
    let (_fs, view) = world();
    assert_eq!(errno_of(view.stat_now(Path::new("/r/f/x"))), errno::ENOTDIR);
    assert_eq!(errno_of(view.read_now(Path::new("/r/f/x"))), errno::ENOTDIR);
    assert_eq!(errno_of(view.unlink_now(Path::new("/r/f/x"))), errno::ENOTDIR);
}

#[test]
fn relative_targets_loops_and_dotdot_resolve_as_linux_does() {
    let (fs, view) = world();
    fs.create_dir_all(Path::new("/r/d/sub")).unwrap();
    view.write_path_now(Path::new("/r/d/g"), b"g", true).unwrap();
    // Relative to the link's directory, not to `/`.
    fs.symlink_dir(Path::new("f"), Path::new("/r/lf")).unwrap();
    assert_eq!(view.read_now(Path::new("/r/lf")).unwrap(), b"x");
    // `..` after a symlink goes up from its target (physical), not from the link.
    fs.symlink_dir(Path::new("/r/d/sub"), Path::new("/r/ls")).unwrap();
    assert_eq!(view.read_now(Path::new("/r/ls/../g")).unwrap(), b"g");
    fs.symlink_dir(Path::new("loop"), Path::new("/r/loop")).unwrap();
    assert_eq!(errno_of(view.stat_now(Path::new("/r/loop"))), libc::ELOOP);
}

#[test]
fn a_descriptor_writes_at_its_own_offset() {
    let (fs, view) = world();
    let lock = Path::new("/r/lock");
    let fd = view.create_exclusive_now(lock).unwrap();
    view.write_fd_now(fd, b"abc").unwrap();
    view.write_path_now(lock, b"yy", false).unwrap(); // someone appends by path
    view.write_fd_now(fd, b"Z").unwrap(); // lands at offset 3, over their first byte
    assert_eq!(fs.contents(lock).unwrap(), b"abcZy");
    view.write_path_now(lock, b"", true).unwrap(); // truncated under the descriptor
    view.write_fd_now(fd, b"q").unwrap(); // offset 4: a hole of zeros before it
    assert_eq!(fs.contents(lock).unwrap(), b"\0\0\0\0q");
}

#[test]
fn writing_nothing_leaves_the_times_alone() {
    let (_fs, view) = world();
    let f = Path::new("/r/f");
    let before = view.stat_now(f).unwrap();
    view.write_path_now(f, b"", false).unwrap();
    let fd = view.create_exclusive_now(Path::new("/r/new")).unwrap();
    let new_before = view.stat_fd_now(fd).unwrap();
    view.write_fd_now(fd, b"").unwrap();
    assert_eq!(view.stat_now(f).unwrap(), before);
    assert_eq!(view.stat_fd_now(fd).unwrap(), new_before);
}

#[test]
fn a_full_fd_table_is_emfile_before_any_path_error() {
    let (fs, _) = world();
    let view = fs.view(9, 1);
    let _fd = view.create_exclusive_now(Path::new("/r/a")).unwrap();
    assert_eq!(errno_of(view.create_exclusive_now(Path::new("/r/f"))), errno::EMFILE);
    assert_eq!(errno_of(view.read_now(Path::new("/r/missing"))), errno::EMFILE);
    assert_eq!(errno_of(view.write_path_now(Path::new("/r/d"), b"z", false)), errno::EMFILE);
}

#[test]
fn names_added_or_removed_stamp_the_directory_and_unlink_stamps_the_inode() {
    let (_fs, view) = world();
    let dir = Path::new("/r/d");
    let before = view.stat_now(dir).unwrap();
    let fd = view.create_exclusive_now(Path::new("/r/d/lock")).unwrap();
    let created = view.stat_now(dir).unwrap();
    assert!(created.mtime_ns > before.mtime_ns && created.ctime_ns > before.ctime_ns);
    let open = view.stat_fd_now(fd).unwrap();
    view.unlink_now(Path::new("/r/d/lock")).unwrap();
    assert!(view.stat_now(dir).unwrap().mtime_ns > created.mtime_ns);
    let unlinked = view.stat_fd_now(fd).unwrap();
    assert!(unlinked.ctime_ns > open.ctime_ns, "nlink changed: ctime moves");
    assert_eq!(unlinked.mtime_ns, open.mtime_ns, "the content did not change");
}

#[test]
fn canonical_dir_is_realpath_files_included() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    assert_eq!(view.canonical_dir_now(Path::new("/r/ld")).unwrap(), Path::new("/r/d"));
    assert_eq!(view.canonical_dir_now(Path::new("/r/f")).unwrap(), Path::new("/r/f"));
    assert_eq!(errno_of(view.canonical_dir_now(Path::new("/r/f/x"))), errno::ENOTDIR);
}

#[test]
fn create_dir_all_follows_symlinks_like_mkdir_p() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    fs.create_dir_all(Path::new("/r/ld/sub")).unwrap();
    assert!(view.stat_now(Path::new("/r/d/sub")).unwrap().is_dir, "made where the link points");
    assert_eq!(errno_of(fs.create_dir_all(Path::new("/r/f/x"))), errno::ENOTDIR);
}

#[test]
fn lstat_describes_a_final_symlink_itself() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("nowhere"), Path::new("/r/dang")).unwrap();
    let link = view.lstat_now(Path::new("/r/dang")).unwrap();
    assert_eq!((link.size, link.is_dir), (7, false), "its size is the target's length");
    assert_eq!(errno_of(view.stat_now(Path::new("/r/dang"))), errno::ENOENT);
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    let other = view.lstat_now(Path::new("/r/ld")).unwrap();
    assert_ne!(other.ino, link.ino);
    assert_ne!(other.ino, view.stat_now(Path::new("/r/d")).unwrap().ino);
    assert!(view.lstat_now(Path::new("/r/ld/..")).unwrap().is_dir, "followed in the middle");
}

/// Through the `Fs` port, as the lock calls it: before MemFs implemented `lstat` and
/// `read_entry`, the trait's defaults followed the link (ENOENT for a dangling one, the
/// target's identity for a live one), unlike the real adapter.
#[tokio::test]
async fn the_fs_port_reads_and_lstats_an_entry_without_following_it() {
    use heldlock_core::platform::Fs;
    let (fs, view) = world();
    fs.symlink_dir(Path::new("nowhere"), Path::new("/r/dang")).unwrap();
    fs.symlink_dir(Path::new("/r/f"), Path::new("/r/lf")).unwrap();
    let dang = Fs::read_entry(&view, Path::new("/r/dang"), 16).await.unwrap();
    assert_eq!((dang.bytes.len(), dang.stat), (0, view.lstat_now(Path::new("/r/dang")).unwrap()));
    let live = Fs::read_entry(&view, Path::new("/r/lf"), 16).await.unwrap();
    assert!(live.bytes.is_empty(), "a symlink to a file is no payload");
    assert_ne!(live.stat.ino, view.stat_now(Path::new("/r/f")).unwrap().ino);
    assert_eq!(Fs::lstat(&view, Path::new("/r/lf")).await.unwrap(), live.stat);
    assert_eq!(errno_of(Fs::read_entry(&view, Path::new("/r/d"), 16).await), errno::EISDIR);
    // A regular file is read through the cap (max + 1 bytes: more is no payload anyway).
    view.write_path_now(Path::new("/r/big"), &[b'a'; 40], true).unwrap();
    assert_eq!(Fs::read_entry(&view, Path::new("/r/big"), 16).await.unwrap().bytes.len(), 17);
}

#[test]
fn read_entry_finds_path_errors_before_a_full_fd_table() {
    let (fs, _) = world();
    let full = fs.view(9, 0);
    assert_eq!(errno_of(full.read_entry_now(Path::new("/r/missing"), 16)), errno::ENOENT);
    assert_eq!(errno_of(full.read_entry_now(Path::new("/r/f"), 16)), errno::EMFILE);
    fs.symlink_dir(Path::new("nowhere"), Path::new("/r/dang")).unwrap();
    assert!(full.read_entry_now(Path::new("/r/dang"), 16).is_ok(), "a link takes no descriptor");
}
