//! The process parity check and the `heldlock parity` command line.

use std::process::Command;

use heldlock::parity::procs;

fn heldlock(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_heldlock")).args(args).output().expect("run heldlock")
}

#[test]
fn memprocs_answers_as_linux_for_every_process_state() {
    let report = procs::run(std::path::Path::new(env!("CARGO_BIN_EXE_heldlock"))).expect("children spawn");
    assert!(report.mismatches.is_empty(), "{report:#?}");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Own, running, stopped, zombie, two impossible pids, dead, exec, and as root the reused
    // pid and five probes as another user.
    let expected = if root { 11 + 2 + 5 } else { 11 };
    assert!(report.checks >= expected, "{} checks: {report:#?}", report.checks);
}

#[test]
fn parity_cli_exits_0_when_clean_and_2_on_bad_input() {
    let clean = heldlock(&["parity", "--scripts", "30", "--seed", "5"]);
    let out = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{out}");
    assert!(
        out.contains("30 filesystem scripts") && out.contains("memprocs answered as Linux"),
        "{out}"
    );
    for bad in [
        &["parity", "--scripts", "x"][..],
        &["parity", "--scripts", "0", "--no-procs"],
    ] {
        let run = heldlock(bad);
        assert_eq!(run.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&run.stderr));
    }
}
