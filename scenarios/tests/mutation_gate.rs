//! The mutation gate: the default campaign as the only test, for `ci/mutation.sh`.
//!
//! cargo-mutants plants a bug nobody told the harness about in the lock's own code; this test
//! runs the default campaign (`heldlock run`: 10 000 seeds of `swarm`; `HELDLOCK_GATE_SEEDS`
//! overrides the count) on that build and fails when any seed breaks an invariant — a caught
//! mutant. Ignored in `cargo test`: the same campaign already runs in CI as the main job.

use std::process::Command;

#[test]
#[ignore = "the mutation gate: run by ci/mutation.sh through cargo-mutants"]
fn default_campaign_finds_no_violation() {
    let store = tempfile::tempdir().expect("a temp dir for the failure store");
    let mut run = Command::new(env!("CARGO_BIN_EXE_heldlock"));
    // The first failing seed settles it: a mutant caught early never runs into the timeout.
    run.args(["run", "--quiet", "--fail-fast"]);
    if let Ok(seeds) = std::env::var("HELDLOCK_GATE_SEEDS") {
        run.args(["--seeds", &seeds]);
    }
    let out = run
        .env("HELDLOCK_STORE", store.path().join("failures.jsonl"))
        .env_remove("HELDLOCK_SEEDS")
        .output()
        .expect("the heldlock binary runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "the default campaign failed:\n{report}");
}
