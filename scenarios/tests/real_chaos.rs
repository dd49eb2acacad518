//! The real lock under real chaos, short: 6 contender processes, 10 s of chaos, then recovery.
//! The witness must find exclusion, exactly-once writes and recovery intact.

use std::process::Command;

#[test]
fn the_real_lock_survives_real_chaos() {
    let run = Command::new(env!("CARGO_BIN_EXE_heldlock"))
        .args(["real", "--processes", "6", "--seconds", "10", "--seed", "1"])
        .output()
        .expect("run heldlock real");
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(out.contains("exclusion, exactly-once and recovery held"), "{out}");
    // The chaos did act (a 10 s window makes ~40 acts; each kind is likely, kills certain).
    assert!(!out.contains(" 0 SIGKILLs"), "{out}");
}

#[test]
fn real_rejects_bad_input_with_exit_2() {
    for bad in [
        &["real", "--processes", "1"][..],
        &["real", "--seconds", "0"],
        &["real", "--mutant", "m99"],
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_heldlock")).args(bad).output().expect("run heldlock");
        assert_eq!(run.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&run.stderr));
    }
}
