//! The production platform (defect 20): `real::platform()` logs SPEC's logged events through
//! `tracing`, and `real::process_locks()` runs the watchdog, so a real gateway's lock has its
//! lease TTL.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use heldlock_core::{LockOptions, ProcessLocks};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every event logged on this thread, as `(level, "field=value …")`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Level, String)>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0.lock().unwrap().push((*event.metadata().level(), text.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Captured {
    /// The events at `level` whose text contains every one of `words`.
    fn find(&self, level: Level, words: &[&str]) -> Vec<String> {
        let events = self.0.lock().unwrap();
        let hits = events.iter().filter(|(l, text)| *l == level && words.iter().all(|w| text.contains(w)));
        hits.map(|(_, text)| text.clone()).collect()
    }
    fn dump(&self) -> String {
        format!("{:#?}", self.0.lock().unwrap())
    }
}

/// The real platform with a `Processes` port of its own: a lock state apart from the other
/// tests of this binary (they share one OS process; each works in its own directory).
fn own_platform() -> heldlock_core::Platform {
    let mut platform = heldlock_core::real::platform();
    platform.processes = Arc::new(heldlock_core::real::RealProcesses::new());
    platform
}

/// Held by the tests that use this binary's process-wide lock state (`real::process_locks`),
/// one at a time.
static PROCESS_WIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[tokio::test(flavor = "current_thread")]
async fn the_real_platform_logs_a_reclaim() {
    let captured = Captured::default();
    let _log = tracing::subscriber::set_default(captured.clone());
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let created = humantime::format_rfc3339_millis(SystemTime::now());
    std::fs::write(
        dir.join("s.jsonl.lock"),
        format!("{{\"pid\":{},\"createdAt\":\"{created}\"}}", dead_pid()),
    )
    .unwrap();

    let locks = ProcessLocks::new(own_platform());
    let handle = locks.acquire(&dir.join("s.jsonl"), LockOptions::default()).await.expect("reclaim");
    locks.release(&handle).await.unwrap();

    let hits = captured.find(Level::INFO, &["reclaimed", "dead-pid", "s.jsonl.lock"]);
    assert_eq!(hits.len(), 1, "{}", captured.dump());
}

/// The production constructor runs the watchdog: a lock held past its maxHoldMs is
/// force-released within maxHoldMs + one tick, and that is logged as a warning. Tokio's paused
/// clock moves the watchdog's time; the files are real.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn process_locks_run_the_watchdog_and_log_its_force_release() {
    let captured = Captured::default();
    let _log = tracing::subscriber::set_default(captured.clone());
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let lock = dir.join("s.jsonl.lock");

    let _serial = PROCESS_WIDE.lock().await;
    let locks: Arc<ProcessLocks> = heldlock_core::real::process_locks();
    let opts = LockOptions {
        max_hold_ms: 1_000,
        ..LockOptions::default()
    };
    let handle = locks.acquire(&dir.join("s.jsonl"), opts).await.expect("acquire");
    assert!(lock.exists());
    tokio::time::sleep(std::time::Duration::from_millis(1_000 + 60_000 + 1_000)).await;

    assert!(handle.is_lost(), "the watchdog did not take the lock\n{}", captured.dump());
    assert!(!Path::new(&lock).exists(), "the lock file is still on disk");
    let hits = captured.find(Level::WARN, &["watchdog", "s.jsonl.lock"]);
    assert_eq!(hits.len(), 1, "{}", captured.dump());
}

/// An abort can come from a thread outside any runtime: the spawner then runs the task on a
/// thread of its own instead of panicking, and the task's timer works there.
#[test]
fn the_spawner_runs_tasks_from_outside_a_runtime() {
    use heldlock_core::platform::Spawn;
    let (tx, rx) = std::sync::mpsc::channel();
    heldlock_core::real::TokioSpawner.spawn(
        "probe",
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            tx.send(std::thread::current().name().map(str::to_owned)).unwrap();
        }),
    );
    let ran_on = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the task never ran");
    assert_eq!(ran_on.as_deref(), Some("heldlock-probe"));
}

/// Outside any tokio runtime (a plain executor): filesystem calls, the poll sleeps and the
/// spawner take threads of their own; nothing panics, and the acquire budget still holds.
#[test]
fn the_lock_works_without_a_tokio_runtime() {
    use futures::executor::block_on;
    let tmp = tempfile::TempDir::new().unwrap();
    let target = tmp.path().join("s.jsonl");
    let locks = ProcessLocks::new(own_platform());
    let opts = LockOptions {
        timeout_ms: 300,
        ..LockOptions::default()
    };
    let handle = block_on(locks.acquire(&target, opts)).expect("acquire");
    let started = std::time::Instant::now();
    let err = block_on(locks.acquire(&target, opts)).expect_err("not reentrant");
    assert!(matches!(err, heldlock_core::LockError::Timeout { .. }), "{err}");
    // The clock counts whole milliseconds: the budget can end up to 1 ms short of 300 here.
    assert!(started.elapsed() >= std::time::Duration::from_millis(299), "{:?}", started.elapsed());
    block_on(locks.release(&handle)).unwrap();
    assert!(!handle.lock_path().exists());
}

/// Defect 11 on the real adapter: every `real::platform()` is this one OS process, so two
/// `ProcessLocks` built on it are one lock state — the second never reclaims the first's live
/// lock as `orphan-self-pid` — and `process_locks()` runs one watchdog for it.
#[tokio::test(flavor = "current_thread")]
async fn two_real_platforms_in_one_process_are_one_lock_state() {
    let tmp = tempfile::TempDir::new().unwrap();
    let target = tmp.path().join("s.jsonl");
    let _serial = PROCESS_WIDE.lock().await;
    let first = ProcessLocks::new(heldlock_core::real::platform());
    let second = ProcessLocks::new(heldlock_core::real::platform());
    assert!(Arc::ptr_eq(&first, &second), "two lock states in one process");
    let opts = LockOptions {
        timeout_ms: 300,
        ..LockOptions::default()
    };
    let handle = first.acquire(&target, opts).await.expect("acquire");
    let err = second.acquire(&target, opts).await.expect_err("took a live lock of its own process");
    assert!(matches!(err, heldlock_core::LockError::Timeout { .. }), "{err}");
    assert!(!handle.is_released());
    assert!(Arc::ptr_eq(&heldlock_core::real::process_locks(), &first));
    first.release(&handle).await.unwrap();
}
