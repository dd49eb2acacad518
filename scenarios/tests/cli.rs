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
    assert!(text(&merged).contains("passed 30   failed 0"), "{}", text(&merged));
}

// ---- issue 8: a CLI that CI can trust ----

fn spawn(args: &[&str], store: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_heldlock"))
        .args(args)
        .env("HELDLOCK_STORE", store)
        .env_remove("HELDLOCK_SEED")
        .env_remove("HELDLOCK_SEEDS")
        .env_remove("HELDLOCK_JOBS")
        .env_remove("GITHUB_ACTIONS")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// The seeds a run reported as failing (its `FAIL ... seed N` lines).
fn reported_seeds(out: &str) -> std::collections::BTreeSet<u64> {
    out.lines()
        .filter_map(|l| l.trim_start().strip_prefix("FAIL "))
        .filter_map(|l| {
            l.split("seed ").nth(1)?.split_whitespace().next()?.trim_end_matches(':').parse().ok()
        })
        .collect()
}

/// Every line of the store parses; the seeds it holds.
fn store_seeds(store: &std::path::Path) -> std::collections::BTreeSet<u64> {
    let text = std::fs::read(store).expect("the store exists");
    let mut seeds = std::collections::BTreeSet::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(line)));
        seeds.insert(v["seed"].as_u64().expect("a seed"));
    }
    seeds
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Every line of the store is JSON and holds every failure a run printed.
fn assert_every_reported_failure_saved(reported: &std::collections::BTreeSet<u64>, store: &std::path::Path) {
    let saved = store_seeds(store);
    let lost: Vec<_> = reported.difference(&saved).collect();
    assert!(lost.is_empty(), "reported but not in the store: {lost:?}");
}

#[test]
fn item1_two_concurrent_campaigns_on_one_store_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let args = |range: &'static str| {
        vec![
            "run",
            "--mutant",
            "m5-deferred-release-lost",
            "--seed-range",
            range,
            "--jobs",
            "2",
            "--quiet",
        ]
    };
    let a = spawn(&args("0..400"), &store);
    let b = spawn(&args("400..800"), &store);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.code(), Some(1), "{}", text(&a));
    assert_eq!(b.status.code(), Some(1), "{}", text(&b));
    let mut reported = reported_seeds(&text(&a));
    reported.extend(reported_seeds(&text(&b)));
    assert!(reported.len() > 20, "m5 fails often: {reported:?}");
    assert_every_reported_failure_saved(&reported, &store);
}

#[test]
fn item1_kill_9_loops_leave_every_line_json_and_every_reported_failure_saved() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let mut reported = std::collections::BTreeSet::new();
    for round in 0..6u64 {
        let range = format!("{}..{}", round * 100_000, round * 100_000 + 100_000);
        let child = spawn(
            &[
                "run",
                "--mutant",
                "m5-deferred-release-lost",
                "--seed-range",
                &range,
                "--jobs",
                "2",
                "--quiet",
            ],
            &store,
        );
        std::thread::sleep(std::time::Duration::from_millis(400 + 150 * round));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let out = child.wait_with_output().unwrap();
        reported.extend(reported_seeds(&String::from_utf8_lossy(&out.stdout)));
    }
    assert!(!reported.is_empty(), "the killed runs reported failures");
    assert_every_reported_failure_saved(&reported, &store);
}

#[test]
fn item3_unsaved_failures_are_errors_even_quiet_and_every_failure_prints_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    for store in [dir.path().to_path_buf(), std::path::PathBuf::from("/dev/full")] {
        let out = heldlock(
            &[
                "run",
                "--seeds",
                "60",
                "--mutant",
                "m5-deferred-release-lost",
                "--quiet",
                "--json",
                json.to_str().unwrap(),
            ],
            &store,
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let failures = report["failures"].as_array().unwrap();
        assert!(failures.len() > 3, "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let unsaved = stderr.lines().filter(|l| l.contains("NOT saved")).count();
        assert_eq!(unsaved, failures.len(), "one error per unsaved failure, store {store:?}: {stderr}");
        assert!(!text(&out).contains("all saved"), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for f in failures {
            let line = f["reproduce"].as_str().unwrap();
            assert!(stdout.contains(&format!("reproduce: {line}\n")), "missing {line}: {stdout}");
        }
    }
}

#[test]
fn item4_huge_seed_counts_stream_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    for args in [
        &[
            "run",
            "--seed-range",
            "0..18446744073709551615",
            "--jobs",
            "1",
            "--quiet",
        ][..],
        &["check-determinism", "--seeds", "18446744073709551615", "--quiet"],
        &[
            "mutants",
            "--ranges",
            "100000000000",
            "--budget",
            "10",
            "--jobs",
            "1",
            "--quiet",
        ],
    ] {
        let mut child = spawn(args, &store);
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let rss = vm_rss_kb(child.id());
        let still_running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(still_running, "{args:?} ended: {}", text(&out));
        assert!(rss < 150_000, "{args:?}: {rss} KiB after 2.5 s");
    }
    for (args, expected) in [
        (&["mutants", "--budget", "100000001"][..], "--budget"),
        (&["mutants", "--ranges", "184467440737"], "--ranges"),
        (&["run", "--jobs", "100000"], "--jobs"),
    ] {
        let out = heldlock(args, &store);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
}

fn shard_reports(dir: &std::path::Path, store: &std::path::Path, seeds: &str, n: u64) -> Vec<String> {
    (1..=n)
        .map(|k| {
            let json = dir.join(format!("shard{k}.json")).to_str().unwrap().to_owned();
            let shard = format!("{k}/{n}");
            let out = heldlock(
                &[
                    "run", "--seeds", seeds, "--shard", &shard, "--json", &json, "--quiet",
                ],
                store,
            );
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            json
        })
        .collect()
}

#[test]
fn item5_merge_proves_the_shards_tile_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let reports = shard_reports(dir.path(), &store, "40", 4);
    let r: Vec<&str> = reports.iter().map(String::as_str).collect();
    let all = heldlock(&[&["merge"], &r[..]].concat(), &store);
    assert_eq!(all.status.code(), Some(0), "{}", text(&all));
    let t = text(&all);
    assert!(t.contains("passed 40") && t.contains("coverage") && t.contains("faults fired"), "{t}");
    let missing = heldlock(&["merge", r[0], r[1], r[2]], &store);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("missing shard 4/4 of seeds 0..40"), "{}", text(&missing));
    let twice = heldlock(&["merge", r[0], r[1], r[2], r[3], r[3]], &store);
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(text(&twice).contains("overlap"), "{}", text(&twice));
    let other = dir.path().join("quiet.json");
    let out = heldlock(
        &[
            "run",
            "--scenario",
            "quiet",
            "--seeds",
            "40",
            "--shard",
            "4/4",
            "--json",
            other.to_str().unwrap(),
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mixed = heldlock(&["merge", r[0], r[1], r[2], other.to_str().unwrap()], &store);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
    assert!(text(&mixed).contains("scenario"), "{}", text(&mixed));
}

#[test]
fn item6_a_closed_pipe_neither_panics_nor_loses_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let json = dir.path().join("report.json");
    for (args, codes) in [
        (vec!["replay", "--seed", "4620"], [0, 1]),
        (
            vec![
                "run",
                "--seeds",
                "200",
                "--jobs",
                "1",
                "--mutant",
                "m5-deferred-release-lost",
                "--json",
                json.to_str().unwrap(),
            ],
            [1, 1],
        ),
    ] {
        let mut child = spawn(&args, &store);
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
        drop(stdout); // `| head -c 1`
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(codes.contains(&out.status.code().unwrap_or(-1)), "{args:?}: {:?} {stderr}", out.status);
    }
    assert!(std::fs::read_to_string(&json).unwrap().contains("\"failures\""));
}

#[test]
fn item7_unwritable_outputs_are_refused_before_the_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    for flag in ["--json", "--junit"] {
        let started = std::time::Instant::now();
        let out = heldlock(&["run", "--seeds", "1000000", flag, "/nonexistent/dir/out"], &store);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("/nonexistent/dir/out"), "{}", text(&out));
        assert!(started.elapsed().as_secs() < 20, "checked up front, not after a million seeds");
    }
    let out = heldlock(
        &[
            "run",
            "--seeds",
            "30",
            "--mutant",
            "m5-deferred-release-lost",
            "--json",
            "/dev/full",
            "--quiet",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(1), "a violation still exits 1: {}", text(&out));
    assert!(text(&out).contains("/dev/full"), "the failed write is named: {}", text(&out));
    let clean = heldlock(&["run", "--seeds", "3", "--json", "/dev/full", "--quiet"], &store);
    assert_eq!(clean.status.code(), Some(2), "no violation, an unwritten report: {}", text(&clean));
}

/// Shrink the self-test's first kill of M1.
fn shrink_m1(store: &std::path::Path) -> Output {
    heldlock(
        &[
            "shrink",
            "--seed",
            "1000000008",
            "--mutant",
            "m1-timeout-abort-no-release",
        ],
        store,
    )
}

#[test]
fn item9_small_things() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let all = heldlock(&["replay", "--scenario", "all", "--seed", "1"], &store);
    assert_eq!(all.status.code(), Some(2));
    assert!(!text(&all).contains("or all"), "{}", text(&all));
    let both = heldlock(&["run", "--seeds", "5", "--seed-range", "0..10"], &store);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    let empty = heldlock(&["run", "--seeds", "2", "--shard", "3/4"], &store);
    assert_eq!(empty.status.code(), Some(0), "{}", text(&empty));
    assert!(text(&empty).contains("holds no seeds"), "{}", text(&empty));
    let shrunk = shrink_m1(&store);
    assert_eq!(shrunk.status.code(), Some(1), "{}", text(&shrunk));
    assert!(text(&shrunk).contains("reproduce: heldlock replay --scenario swarm --seed 1000000008 --mutant m1-timeout-abort-no-release --faults"), "{}", text(&shrunk));
}

// ---- reports CI reads, shrink's reproducer, regressions ----

/// A small well-formedness check: balanced tags, quoted attributes, known entities only.
fn assert_well_formed_xml(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("an XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find(['<', '&']) {
        let text = &rest[..open];
        assert!(!text.contains('>'), "a bare '>' in text: {text:?}");
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix('&') {
            let end = after.find(';').expect("an entity ends with ';'");
            assert!(["amp", "lt", "gt", "quot", "apos"].contains(&&after[..end]), "entity {}", &after[..end]);
            rest = &after[end + 1..];
            continue;
        }
        let close = rest.find('>').expect("a tag ends");
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name = tag.split_whitespace().next().expect("a tag name");
        assert!(!tag.contains('<'), "a '<' inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        if !self_closing {
            stack.push(name.to_owned());
        }
    }
    assert!(rest.trim().is_empty() && stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn junit_is_well_formed_with_a_case_per_failing_seed_and_per_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_heldlock"))
        .args([
            "run",
            "--seeds",
            "40",
            "--quiet",
            "--mutant",
            "m5-deferred-release-lost",
        ])
        .args([
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .env("HELDLOCK_STORE", &store)
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_well_formed_xml(&xml);
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(xml.matches("classname=\"heldlock.swarm\"").count(), failures.len(), "{xml}");
    assert_eq!(xml.matches("classname=\"heldlock.invariants\"").count(), 17, "I1..I16 and assert: {xml}");
    let first = failures[0]["reproduce"].as_str().unwrap();
    assert!(xml.contains(&format!("message=\"{first}\"")), "{xml}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let annotations = stdout.lines().filter(|l| l.starts_with("::error title=heldlock swarm broke")).count();
    assert_eq!(annotations, failures.len(), "{stdout}");
}

fn trace_part(out: &Output) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().take_while(|l| *l != "--").map(str::to_owned).collect()
}

#[test]
fn shrink_hands_back_a_replay_of_exactly_the_shrunk_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let shrunk = shrink_m1(&store);
    assert_eq!(shrunk.status.code(), Some(1), "{}", text(&shrunk));
    let stdout = String::from_utf8_lossy(&shrunk.stdout).into_owned();
    assert!(stdout.contains("faults ") && stdout.contains(" → "), "{stdout}");
    let command = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reproduce: heldlock "))
        .expect("a reproduce line");
    let args: Vec<&str> = command.split_whitespace().collect();
    assert!(args.contains(&"--faults"), "{command}");
    let replayed = heldlock(&args, &store);
    assert_eq!(replayed.status.code(), Some(1), "{}", text(&replayed));
    assert_eq!(trace_part(&replayed), trace_part(&shrunk), "the replay is the shrunk run");
    let bad = heldlock(&["replay", "--seed", "1", "--faults", "stat:nowhere#1"], &store);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn regressions_add_from_the_store_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let file = dir.path().join("regressions/seeds.txt");
    let file = file.to_str().unwrap();
    let run = heldlock(
        &[
            "run",
            "--seeds",
            "30",
            "--quiet",
            "--mutant",
            "m5-deferred-release-lost",
        ],
        &store,
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let added = heldlock(&["regressions", "add", "--from-store", "--file", file], &store);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added));
    let listed = std::fs::read_to_string(file).unwrap();
    let entries = listed.lines().filter(|l| l.contains(" m5-deferred-release-lost I3")).count();
    assert_eq!(entries, store_seeds(&store).len(), "{listed}");
    let again = heldlock(&["regressions", "add", "--from-store", "--file", file], &store);
    assert!(text(&again).contains("0 new regression(s)"), "{}", text(&again));
    let check = heldlock(&["regressions", "check", "--file", file], &store);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

/// `heldlock parity | head -1` and `heldlock real | head -1`: a reader that goes away never
/// makes the library's subcommands panic; the exit status still tells the verdict.
#[test]
fn a_closed_pipe_does_not_panic_the_parity_command() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heldlock"))
        .args(["parity", "--scripts", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `heldlock mutants` runs what the simulated world can reach: `m20` only when asked by name,
/// and `heldlock list` says why.
#[test]
fn the_self_test_skips_a_mutant_no_simulated_filesystem_runs_unless_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("failures.jsonl");
    let json = dir.path().join("m.json");
    let json_arg = json.to_str().unwrap();
    let args = [
        "mutants", "--ranges", "1", "--budget", "1", "--jobs", "1", "--quiet", "--json", json_arg,
    ];
    heldlock(&args, &store);
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(report.contains("m1-timeout-abort-no-release"), "{report}");
    assert!(!report.contains("m20-vanished-create-surfaced"), "{report}");
    let named = [
        "mutants",
        "--mutant",
        "m20-vanished-create-surfaced",
        "--ranges",
        "1",
        "--budget",
        "1",
    ];
    heldlock(&[&named[..], &["--jobs", "1", "--quiet", "--json", json_arg]].concat(), &store);
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(report.contains("m20-vanished-create-surfaced"), "{report}");
    let list = text(&heldlock(&["list"], &store));
    let m20 = list.lines().find(|l| l.contains("m20-")).unwrap();
    assert!(m20.contains("FUSE mount only"), "{m20}");
}
