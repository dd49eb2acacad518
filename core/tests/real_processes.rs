//! The file lock across real OS processes on the real filesystem.
//!
//! Several `heldlock-contender` processes contend on one lock file in a temp dir, appending to
//! a shared log and bumping a shared counter under the lock. A victim process takes the lock
//! and is SIGKILLed while holding it; the others must reclaim it as `dead-pid` and carry on.
//! Afterwards the counter and the log must show that no two processes ever held the lock at
//! once and that no acknowledged append was lost.
//!
//! Half the contenders reach the directory through a symlink: one transcript, one lock.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CONTENDERS: usize = 4;
const ROUNDS: u32 = 25;
/// Contenders stop at this round until the victim holds the lock, so that they still have
/// work (and poll the victim's live lock) when it is killed.
const GATE_AT: u32 = 12;
/// The victim's ordinary rounds before it takes the lock for good.
const VICTIM_ROUNDS: u32 = 3;
const SAFETY_NET: Duration = Duration::from_secs(60);

enum Msg {
    Line(usize, String),
    Eof(usize),
}

struct Proc {
    name: String,
    child: Child,
    stderr: Option<thread::JoinHandle<String>>,
    lines: Vec<String>,
    eof: bool,
    status: Option<ExitStatus>,
}

fn spawn(index: usize, name: &str, dir: &Path, extra: &[String], tx: &mpsc::Sender<Msg>) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heldlock-contender"))
        .arg(dir)
        .arg(name)
        .arg(ROUNDS.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn heldlock-contender");
    let stdout = child.stdout.take().unwrap();
    let tx = tx.clone();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(Msg::Line(index, line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Msg::Eof(index));
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Proc {
        name: name.to_owned(),
        child,
        stderr: Some(stderr),
        lines: Vec::new(),
        eof: false,
        status: None,
    }
}

fn report(procs: &mut [Proc]) -> String {
    let mut out = String::new();
    for p in procs.iter_mut() {
        let stderr = p.stderr.take().map(|h| h.join().unwrap_or_default());
        out += &format!(
            "--- {} status={:?}\nstdout:\n{}\nstderr:\n{}\n",
            p.name,
            p.status,
            p.lines.join("\n"),
            stderr.unwrap_or_default()
        );
    }
    out
}

#[test]
fn contenders_keep_exclusion_and_reclaim_a_sigkilled_holder() {
    let started = Instant::now();
    let tmp = tempfile::TempDir::new().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    let (tx, rx) = mpsc::channel();
    let mut procs = Vec::new();
    for i in 0..CONTENDERS {
        let dir = if i % 2 == 0 { &real } else { &link };
        let gate = vec!["--gate-at".to_string(), GATE_AT.to_string()];
        procs.push(spawn(i, &format!("c{i}"), dir, &gate, &tx));
    }
    let victim = CONTENDERS;
    // The victim takes its last lock only once every contender waits at its gate.
    let victim_args: Vec<String> = [
        "--hold-forever-after",
        &VICTIM_ROUNDS.to_string(),
        "--gate-at",
        &VICTIM_ROUNDS.to_string(),
        "--gate-file",
        "hold",
    ]
    .map(String::from)
    .to_vec();
    procs.push(spawn(victim, "victim", &real, &victim_args, &tx));
    drop(tx);

    // The choreography: all contend until the contenders reach their gate; then the victim
    // takes the lock and holds it; then the contenders pass their gate and poll the victim's
    // live lock; then the victim is SIGKILLed; then the contenders reclaim it and finish.
    let lock_path = real.join("session.jsonl.lock");
    let mut victim_ino: Option<u64> = None;
    let mut at_gate = BTreeSet::new();
    let mut gate_passed = BTreeSet::new();
    let (mut hold, mut go, mut killed) = (false, false, false);
    let deadline = started + SAFETY_NET;
    while procs.iter().any(|p| !p.eof) {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match rx.recv_timeout(left) {
            Ok(msg) => msg,
            Err(_) => {
                for p in procs.iter_mut() {
                    let _ = p.child.kill();
                    p.status = p.child.wait().ok();
                }
                panic!("safety net: not done after {SAFETY_NET:?}\n{}", report(&mut procs));
            }
        };
        match msg {
            Msg::Line(i, line) => {
                if i == victim {
                    if let Some(ino) = line.strip_prefix("HOLDING ino=") {
                        victim_ino = Some(ino.parse().unwrap());
                        // The lock on disk is the victim's, with its pid.
                        let payload: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(&lock_path).unwrap()).unwrap();
                        assert_eq!(
                            payload["pid"].as_u64(),
                            Some(procs[victim].child.id() as u64),
                            "lock payload while the victim holds: {payload}"
                        );
                    }
                } else if line == "AT-GATE" {
                    at_gate.insert(i);
                } else if line == "GATE-PASSED" {
                    gate_passed.insert(i);
                }
                procs[i].lines.push(line);
            }
            Msg::Eof(i) => procs[i].eof = true,
        }
        // Anyone ending early is a failure the assertions below report: stop choreographing.
        let someone_gone = procs.iter().any(|p| p.eof);
        if !hold && (at_gate.len() == CONTENDERS || someone_gone) {
            std::fs::write(real.join("hold"), b"").unwrap();
            hold = true;
        }
        if hold && !go && (victim_ino.is_some() || someone_gone) {
            std::fs::write(real.join("go"), b"").unwrap();
            go = true;
        }
        if go && !killed && (gate_passed.len() == CONTENDERS || someone_gone) {
            // Give the contenders a few polls of the live lock (nothing asserted on this
            // pause), then kill the holder. The marker goes first: a contender that finds it
            // under the lock took the lock from a live holder.
            thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(real.join("victim-holding")).ok();
            let v = &mut procs[victim];
            v.child.kill().expect("SIGKILL the victim");
            v.status = Some(v.child.wait().expect("reap the victim"));
            killed = true;
        }
    }
    for p in procs.iter_mut() {
        if p.status.is_none() {
            p.status = Some(p.child.wait().unwrap());
        }
    }
    let elapsed = started.elapsed();
    let details = report(&mut procs);
    eprintln!("real_processes: done in {elapsed:?}");

    // The victim held the lock and died by SIGKILL, not by its own exit.
    assert!(victim_ino.is_some(), "the victim never held\n{details}");
    assert_eq!(procs[victim].status.unwrap().signal(), Some(libc::SIGKILL), "victim\n{details}");
    // Every contender finished cleanly: no exclusion break (3), counter/log mismatch (4), lock
    // error (5) or I/O error (6) was seen from inside.
    for p in &procs[..CONTENDERS] {
        assert_eq!(p.status.unwrap().code(), Some(0), "{} exit status\n{details}", p.name);
    }

    // The acknowledgements.
    let mut acked: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut reclaims = Vec::new();
    for p in &procs {
        for line in &p.lines {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let (worker, round) = rest.split_once(' ').unwrap();
                assert_eq!(worker, p.name, "{details}");
                acked.entry(worker.to_owned()).or_default().push(round.parse().unwrap());
            } else if let Some(rest) = line.strip_prefix("RECLAIMED ") {
                reclaims.push((p.name.clone(), rest.to_owned()));
            }
        }
    }
    for p in &procs[..CONTENDERS] {
        assert_eq!(
            acked.get(&p.name).cloned().unwrap_or_default(),
            (0..ROUNDS).collect::<Vec<_>>(),
            "{} acknowledgements\n{details}",
            p.name
        );
    }
    assert_eq!(
        acked.get("victim").cloned().unwrap_or_default(),
        (0..VICTIM_ROUNDS).collect::<Vec<_>>(),
        "victim acknowledgements\n{details}"
    );
    let total: usize = acked.values().map(Vec::len).sum();
    assert_eq!(total, CONTENDERS * ROUNDS as usize + VICTIM_ROUNDS as usize);

    // The counter counts every acknowledged round, once.
    let counter: usize = std::fs::read_to_string(real.join("counter")).unwrap().trim().parse().unwrap();
    assert_eq!(counter, total, "counter\n{details}");

    // The log holds every acknowledged (worker, round) exactly once, whole, and nothing else;
    // each worker's rounds in its own order.
    let log = std::fs::read_to_string(real.join("log")).unwrap();
    let mut logged: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for line in log.lines() {
        let (worker, round) = line.split_once(' ').unwrap_or_else(|| panic!("torn log line {line:?}"));
        logged.entry(worker.to_owned()).or_default().push(round.parse().unwrap());
    }
    assert_eq!(logged, acked, "log vs acknowledgements\n{details}");
    assert_eq!(log.lines().count(), counter);

    // Exactly one reclaim happened: the victim's lock, as dead-pid. Live holders were never
    // judged stale.
    assert_eq!(reclaims.len(), 1, "reclaims: {reclaims:?}\n{details}");
    let (reclaimer, what) = &reclaims[0];
    assert_eq!(
        what,
        &format!("ino={} reasons=dead-pid", victim_ino.unwrap()),
        "{reclaimer} reclaimed\n{details}"
    );

    // Nothing is left behind: no lock, no reclaim guard, nobody inside.
    assert!(!lock_path.exists(), "lock file left\n{details}");
    assert!(!real.join("session.jsonl.lock.reclaim").exists());
    assert!(!real.join("inside").exists());
}
