//! The filesystem parity check in `cargo test`: a few hundred seeded scripts through MemFs and
//! the real adapter, with squeezed fd tables. Its own test binary: the squeeze lowers this
//! process's fd limit, so nothing else may open files meanwhile.
//!
//! The intended differences, and nothing else, are allowed (see `heldlock::parity::fs_diff`):
//! inode/device numbers (only same-file-or-not is compared; Linux may reuse a freed inode
//! number, MemFs never does), absolute times (only which stamps moved and their order), the
//! size of a directory, descriptor numbers.

use std::sync::Mutex;

use heldlock::parity::{self, script::Script, ParitySummary};

/// The squeeze is process-wide: the tests of this binary take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn memfs_answers_as_linux_on_seeded_scripts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut summary = ParitySummary::default();
    parity::run_fs(9_000, 400, true, &mut summary).expect("the real side can be set up");
    assert_eq!(summary.scripts, 400);
    assert!(summary.squeezed > 50, "EMFILE paths exercised: {} squeezed", summary.squeezed);
    assert!(summary.fs_mismatch.is_none(), "{}", parity::report(&summary, true));
}

#[test]
fn a_script_replays_identically_from_its_seed() {
    // What `reproduce: heldlock parity --scripts 1 --seed S` relies on.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = parity::runtime().unwrap();
    for seed in [3, 77, 9_123] {
        let script = Script::generate(seed, true);
        assert_eq!(script, Script::generate(seed, true));
        assert!(parity::fs_diff::run_script(&script, &rt, &mut 0).unwrap().is_none());
    }
}
