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

/// What `heldlock parity` compares `read_entry` on: a looping link is an entry of its own and
/// only a path through it is ELOOP; a file on the way is ENOTDIR; the cap reads `max + 1`.
#[test]
fn read_entry_of_loops_files_on_the_way_and_caps_as_linux() {
    let (fs, view) = world();
    fs.symlink_dir(Path::new("loop"), Path::new("/r/loop")).unwrap();
    let looped = view.read_entry_now(Path::new("/r/loop"), 0).unwrap();
    assert_eq!((looped.bytes.len(), looped.stat.size), (0, 4), "the link itself, size = target length");
    assert_eq!(errno_of(view.read_entry_now(Path::new("/r/loop/x"), 0)), libc::ELOOP);
    assert_eq!(errno_of(view.read_entry_now(Path::new("/r/f/x"), 0)), errno::ENOTDIR);
    assert_eq!(errno_of(view.read_entry_now(Path::new("/r/no/x"), 0)), errno::ENOENT);
    view.write_path_now(Path::new("/r/f"), b"abc", true).unwrap();
    assert_eq!(view.read_entry_now(Path::new("/r/f"), 0).unwrap().bytes, b"a");
    assert_eq!(view.read_entry_now(Path::new("/r/f"), 64).unwrap().bytes, b"abc");
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    assert!(
        !view.read_entry_now(Path::new("/r/ld"), 0).unwrap().stat.is_dir,
        "a link to a dir is no dir"
    );
}

/// Permissions as Linux gives them to an unprivileged process (uid 65534 against root's tree):
/// search on every directory looked in, write on the directory to add or remove a name, read
/// or write on the file to open it; an existing entry is EEXIST/ENOENT/EISDIR before EACCES
/// where Linux looks it up first. Root (the default view) is never refused.
#[test]
fn an_unprivileged_view_gets_eacces_where_linux_gives_it() {
    let (fs, root) = world();
    let nobody = fs.view(8, 8).as_user(65534);
    let p = Path::new;
    fs.chmod(p("/r/d"), 0o555).unwrap(); // no write
    assert_eq!(errno_of(nobody.create_exclusive_now(p("/r/d/lock"))), errno::EACCES);
    assert_eq!(errno_of(nobody.mkdir_now(p("/r/d/x"))), errno::EACCES);
    assert_eq!(errno_of(nobody.write_path_now(p("/r/d/t"), b"a", false)), errno::EACCES);
    root.write_path_now(p("/r/d/g"), b"g", true).unwrap();
    assert_eq!(errno_of(nobody.unlink_now(p("/r/d/g"))), errno::EACCES);
    assert_eq!(errno_of(nobody.unlink_now(p("/r/d/none"))), errno::ENOENT, "missing first");
    assert_eq!(errno_of(nobody.mkdir_now(p("/r/d/g"))), errno::EEXIST, "existing first");
    assert_eq!(errno_of(nobody.create_exclusive_now(p("/r/d/g"))), errno::EEXIST);
    assert_eq!(nobody.read_now(p("/r/d/g")).unwrap(), b"g");
    fs.chmod(p("/r/d"), 0o644).unwrap(); // readable, not searchable
    assert_eq!(errno_of(nobody.stat_now(p("/r/d/g"))), errno::EACCES);
    assert_eq!(errno_of(nobody.read_entry_now(p("/r/d/none"), 4)), errno::EACCES, "before ENOENT");
    assert!(nobody.stat_now(p("/r/d")).unwrap().is_dir, "the directory itself is looked up in /r");
    assert_eq!(errno_of(nobody.read_now(p("/r/d"))), errno::EISDIR, "readable: opens, then EISDIR");
    fs.chmod(p("/r/d"), 0o700).unwrap();
    assert_eq!(errno_of(nobody.read_now(p("/r/d"))), errno::EACCES);
    fs.chmod(p("/r/f"), 0o600).unwrap(); // root's file, private
    assert_eq!(errno_of(nobody.read_now(p("/r/f"))), errno::EACCES);
    assert_eq!(errno_of(nobody.read_entry_now(p("/r/f"), 4)), errno::EACCES);
    assert_eq!(errno_of(nobody.write_path_now(p("/r/f"), b"", false)), errno::EACCES);
    assert_eq!(root.read_now(p("/r/f")).unwrap(), b"x", "root is never refused");
    // What the unprivileged process creates is its own: mode & !umask, owner bits apply.
    fs.chmod(p("/r"), 0o777).unwrap();
    let fd = nobody.create_exclusive_mode_now(p("/r/mine"), 0o200).unwrap();
    nobody.write_fd_now(fd, b"m").unwrap();
    assert_eq!(errno_of(nobody.read_now(p("/r/mine"))), errno::EACCES, "write-only for its owner");
    nobody.write_path_now(p("/r/mine"), b"n", false).unwrap();
}

/// `realpath(3)` (glibc, behind `fs::canonicalize`) takes `..` off the resolved path as text:
/// it never looks a name up in the directory it leaves, so that needs no search permission,
/// where a kernel walk (`stat`) of the same path does. Found by `heldlock parity` (seed 238).
#[test]
fn realpath_leaves_an_unsearchable_directory_by_dotdot_where_stat_cannot() {
    let (fs, _root) = world();
    let nobody = fs.view(8, 8).as_user(65534);
    fs.symlink_dir(Path::new("/r/d"), Path::new("/r/ld")).unwrap();
    fs.chmod(Path::new("/r/d"), 0o644).unwrap();
    assert_eq!(nobody.canonical_dir_now(Path::new("/r/ld/../f")).unwrap(), Path::new("/r/f"));
    assert_eq!(nobody.canonical_dir_now(Path::new("/r/d/..")).unwrap(), Path::new("/r"));
    assert_eq!(errno_of(nobody.stat_now(Path::new("/r/ld/../f"))), errno::EACCES);
    assert_eq!(errno_of(nobody.canonical_dir_now(Path::new("/r/d/g"))), errno::EACCES);
}

/// `renameat2(RENAME_EXCHANGE)` as `heldlock parity` found Linux doing it (scripts 17, 397 and
/// 892; MemFs answered EINVAL, EACCES and a still ctime before): a directory moves with its
/// entries, a directory never into its own subtree, an entry exchanged with itself is Ok before
/// any permission, and a moved symlink's ctime moves (not its mtime).
#[test]
fn exchange_moves_directories_whole_and_stamps_moved_links() {
    let (fs, view) = world();
    view.write_path_now(Path::new("/r/d/inner"), b"i", true).unwrap();
    fs.symlink_dir(Path::new("nowhere"), Path::new("/r/ln")).unwrap();
    let link_before = view.lstat_now(Path::new("/r/ln")).unwrap();
    view.exchange_now(Path::new("/r/d"), Path::new("/r/ln")).unwrap();
    assert_eq!(fs.contents(Path::new("/r/ln/inner")).as_deref(), Some(&b"i"[..]));
    assert_eq!(errno_of(view.stat_now(Path::new("/r/d/inner"))), errno::ENOENT);
    let link_after = view.lstat_now(Path::new("/r/d")).unwrap();
    assert_eq!((link_after.ino, link_after.mtime_ns), (link_before.ino, link_before.mtime_ns));
    assert!(link_after.ctime_ns > link_before.ctime_ns, "the rename moved the link's ctime");
    assert_eq!(errno_of(view.exchange_now(Path::new("/r/ln"), Path::new("/r/ln/inner"))), errno::EINVAL);
    let nobody = fs.view(8, 8).as_user(65_534);
    nobody
        .exchange_now(Path::new("/r/f"), Path::new("/r/f"))
        .expect("itself: no permission needed");
    assert_eq!(errno_of(nobody.exchange_now(Path::new("/r/f"), Path::new("/r/ln"))), errno::EACCES);
}

/// A directory exchanged into another directory needs write permission on itself (its `..`
/// changes), as Linux's `vfs_rename` asks: `heldlock parity` script 5150 (as uid 65534, a
/// root-owned 0o755 directory moved out of a 0o733 one) — MemFs said Ok, Linux EACCES.
#[test]
fn exchanging_a_directory_across_parents_needs_write_on_it() {
    let (fs, root) = world();
    root.mkdir_now(Path::new("/r/d/sub")).unwrap();
    root.write_path_now(Path::new("/r/e"), b"e", true).unwrap();
    fs.chmod(Path::new("/r"), 0o777).unwrap();
    fs.chmod(Path::new("/r/d"), 0o777).unwrap();
    let nobody = fs.view(8, 8).as_user(65_534);
    assert_eq!(errno_of(nobody.exchange_now(Path::new("/r/d/sub"), Path::new("/r/e"))), errno::EACCES);
    fs.chmod(Path::new("/r/d/sub"), 0o777).unwrap();
    nobody.exchange_now(Path::new("/r/d/sub"), Path::new("/r/e")).expect("now writable");
}

/// `renameat2(RENAME_NOREPLACE)`, which publishes a lock made whole at a private name. A new
/// method (no old MemFs to fail on): this pins what `heldlock parity` checks it for against
/// Linux. Any entry at the target, a dangling symlink or the source itself included, is EEXIST
/// (before any write permission); a missing source ENOENT; a directory never moves below itself
/// and moves with its entries; the moved inode keeps its identity and mtime, its ctime moves.
#[test]
fn rename_noreplace_never_replaces_and_moves_entries_whole() {
    let (fs, view) = world();
    let before = view.stat_now(Path::new("/r/f")).unwrap();
    view.rename_noreplace_now(Path::new("/r/f"), Path::new("/r/g")).unwrap();
    let after = view.stat_now(Path::new("/r/g")).unwrap();
    assert_eq!((after.ino, after.mtime_ns), (before.ino, before.mtime_ns));
    assert!(after.ctime_ns > before.ctime_ns, "the rename moved the inode's ctime");
    assert_eq!(errno_of(view.stat_now(Path::new("/r/f"))), errno::ENOENT);
    assert_eq!(errno_of(view.rename_noreplace_now(Path::new("/r/f"), Path::new("/r/h"))), errno::ENOENT);
    fs.symlink_dir(Path::new("/r/nowhere"), Path::new("/r/dang")).unwrap();
    for taken in ["/r/dang", "/r/d", "/r/g"] {
        let r = view.rename_noreplace_now(Path::new("/r/g"), Path::new(taken));
        assert_eq!(errno_of(r), errno::EEXIST, "{taken}");
    }
    assert_eq!(fs.contents(Path::new("/r/g")).as_deref(), Some(&b"x"[..]), "nothing replaced");
    view.write_path_now(Path::new("/r/d/inner"), b"i", true).unwrap();
    assert_eq!(
        errno_of(view.rename_noreplace_now(Path::new("/r/d"), Path::new("/r/d/sub"))),
        errno::EINVAL
    );
    view.rename_noreplace_now(Path::new("/r/d"), Path::new("/r/e")).unwrap();
    assert_eq!(fs.contents(Path::new("/r/e/inner")).as_deref(), Some(&b"i"[..]));
    assert_eq!(errno_of(view.stat_now(Path::new("/r/d/inner"))), errno::ENOENT);
    fs.chmod(Path::new("/r"), 0o555).unwrap();
    let nobody = fs.view(8, 8).as_user(65_534);
    assert_eq!(errno_of(nobody.rename_noreplace_now(Path::new("/r/g"), Path::new("/r/e"))), errno::EEXIST);
    assert_eq!(errno_of(nobody.rename_noreplace_now(Path::new("/r/g"), Path::new("/r/k"))), errno::EACCES);
}
