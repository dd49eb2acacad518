//! Regression snapshots reviewers read (`cargo insta review`): the canonical trace of the
//! lock's happy path, and how each historical bug is caught. They live in /snapshots.

use heldlock::mutants;
use heldlock::scenario::find;
use heldlock_core::Mutant;
use heldlock_sim::{run_seed, RunConfig, TraceMode};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn canonical_trace_of_the_quiet_scenario() {
    let scenario = find("quiet").unwrap();
    let config = RunConfig::new(scenario.name, scenario.profile(1))
        .trace(TraceMode::Full)
        .stop_at_violation(false);
    let report = run_seed(1, &config);
    assert!(report.passed(), "{:?}", report.violations);
    settings().bind(|| insta::assert_snapshot!("quiet_seed_1_trace", report.trace.join("\n")));
}

#[test]
fn mutant_kill_report() {
    let results = mutants::self_test(&Mutant::ALL, 1, 3000, 1, &|| {});
    let lines: Vec<String> = results
        .iter()
        .map(|r| {
            let example = r.example.as_ref().expect("every mutant is killed");
            format!("{}\n  {}\n  {}", r.mutant, example.replay, example.violation)
        })
        .collect();
    settings().bind(|| insta::assert_snapshot!("mutant_kills", lines.join("\n")));
}
