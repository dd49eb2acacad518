//! The `heldlock` command as a user meets it: exit codes, clear errors, saved failures.

use std::process::{Command, Output};

fn heldlock(args: &[&str], store: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_heldlock"))
        .args(args)
        .env("HELDLOCK_STORE", store)
        .env_remove("HELDLOCK_SEED")
        .env_remove("HELDLOCK_SEEDS")
        .env_remove("HELDLOCK_JOBS")
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--scenario", "nope"], "unknown scenario 'nope'"),
        (&["run", "--mutant", "m9-imaginary"], "unknown mutant 'm9-imaginary'"),
        (&["run", "--seed-range", "9..3"], "malformed seed range '9..3'"),
        (&["run", "--seed-range", "abc"], "malformed seed range 'abc'"),
        (&["run", "--shard", "3/2"], "malformed shard '3/2'"),
        (&["run", "--jobs", "0"], "--jobs must be at least 1"),
        (&["replay", "--seed", "12x"], "malformed seed '12x'"),
        (&["merge", "/nonexistent/report.json"], "cannot read /nonexistent/report.json"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, expected) in cases {
        let out = heldlock(args, &store);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?} should say {expected:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?} panicked: {}", text(&out));
    }
}

#[test]
fn a_clean_run_exits_0_and_a_failing_one_saves_then_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let json = dir.path().join("report.json");
    let ok = heldlock(&["run", "--seeds", "40", "--json", json.to_str().unwrap()], &store);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("passed 40"), "{}", text(&ok));
    assert!(std::fs::read_to_string(&json).unwrap().contains("\"seeds\": 40"));

    let bad = heldlock(&["run", "--seeds", "40", "--mutant", "m5-deferred-release-lost"], &store);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let out = text(&bad);
    assert!(out.contains("reproduce: heldlock replay --scenario swarm --seed"), "{out}");
    assert!(out.contains("--mutant m5-deferred-release-lost"), "{out}");
    let saved = std::fs::read_to_string(&store).expect("failures are saved");
    assert!(saved.contains("\"invariant\":\"I3\""), "{saved}");

    // The stored seeds are replayed first next time.
    let again = heldlock(&["run", "--seeds", "1", "--mutant", "m5-deferred-release-lost"], &store);
    assert!(text(&again).contains("stored failing seed(s)"), "{}", text(&again));
}

#[test]
fn replay_prints_the_trace_and_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let out = heldlock(&["replay", "--scenario", "quiet", "--seed", "3"], &store);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("acquire#") && t.contains("verdict: every invariant held"), "{t}");
}

#[test]
fn shards_split_the_seeds_and_their_reports_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let mut reports = Vec::new();
    for k in 1..=2 {
        let json = dir.path().join(format!("shard{k}.json"));
        let shard = format!("{k}/2");
        let out = heldlock(
            &[
                "run",
                "--seeds",
                "30",
                "--shard",
                &shard,
                "--json",
                json.to_str().unwrap(),
            ],
            &store,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        reports.push(json);
    }
    let paths: Vec<&str> = reports.iter().map(|p| p.to_str().unwrap()).collect();
    let merged = heldlock(&[&["merge"], paths.as_slice()].concat(), &store);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    assert!(text(&merged).contains("30 seeds, 30 passed"), "{}", text(&merged));
}
