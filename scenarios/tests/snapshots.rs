//! Regression snapshots reviewers read (`cargo insta review`): a trace of each named scenario,
//! how each historical bug is caught, and each bug's shrunk kill trace. They live in
//! /snapshots; a new scenario or mutant only adds a snapshot file.

use heldlock::scenario::{find, SCENARIOS};
use heldlock::{campaign, mutants, shrink};
use heldlock_core::Mutant;
use heldlock_sim::{run_seed, RunConfig, TraceMode};

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../snapshots");
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Seeds 1..=CANDIDATES are tried per scenario; the shortest trace is the snapshot.
const CANDIDATES: u64 = 8;

/// Each scenario's shortest trace among its first seeds, run to the end. The named scenarios
/// pin one hazard each, so a short seed shows it; a behaviour change shows up as a readable
/// diff.
#[test]
fn trace_of_each_named_scenario() {
    for scenario in SCENARIOS {
        let traced = |seed: u64| {
            let config = RunConfig::new(scenario.name, scenario.profile(seed))
                .trace(TraceMode::Full)
                .stop_at_violation(false);
            (seed, run_seed(seed, &config))
        };
        let (seed, report) = (1..=CANDIDATES)
            .map(traced)
            .min_by_key(|(seed, r)| (r.trace.len(), *seed))
            .expect("candidates");
        assert!(report.passed(), "{} seed {seed}: {:?}", scenario.name, report.violations);
        let text = format!("seed {seed}\nprofile: {}\n{}", report.profile, report.trace.join("\n"));
        settings().bind(|| insta::assert_snapshot!(format!("scenario_{}", scenario.name), text));
    }
}

#[test]
fn mutant_kill_report() {
    let results = mutants::self_test(Mutant::HISTORICAL, 1, 3000, 1, &|| {});
    let lines: Vec<String> = results
        .iter()
        .map(|r| {
            let example = r.example.as_ref().expect("every mutant is killed");
            format!("{}\n  {}\n  {}", r.mutant, example.replay, example.violation)
        })
        .collect();
    settings().bind(|| insta::assert_snapshot!("mutant_kills", lines.join("\n")));
}

/// The first seed of the self-test's range 0 that kills `mutant`.
fn first_kill(mutant: Mutant) -> u64 {
    let scenario = find("swarm").unwrap();
    let start = mutants::range_start(0);
    (start..start + 3000)
        .find(|&seed| {
            let config = RunConfig::new(scenario.name, scenario.profile(seed)).mutant(Some(mutant));
            !run_seed(seed, &config).passed()
        })
        .unwrap_or_else(|| panic!("{mutant} survives 3000 seeds"))
}

/// For each public mutant: its first kill, shrunk to the fewest faults, and the trace of the
/// shrunk run up to the violation — the bug's shape in a few dozen lines.
#[test]
fn shrunk_kill_trace_of_each_mutant() {
    let scenario = find("swarm").unwrap();
    for &mutant in Mutant::HISTORICAL {
        let seed = first_kill(mutant);
        let shrunk = shrink::shrink(scenario, seed, Some(mutant)).expect("the seed fails");
        let mut text = format!(
            "reproduce: {}\nfaults {} → {}\nviolation: {}\n--\n",
            shrunk.reproduce(scenario.name, seed, Some(mutant)),
            shrunk.original,
            shrunk.kept.len(),
            shrunk.violation
        );
        text.push_str(&campaign::last_lines(&shrunk.report, 40).join("\n"));
        settings().bind(|| insta::assert_snapshot!(format!("mutant_{}_shrunk", mutant.name()), text));
    }
}
