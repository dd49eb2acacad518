//! One contender of the real multi-process lock test (`core/tests/real_processes.rs`).
//!
//! ```text
//! heldlock-contender <dir> <worker> <rounds> [--gate-at K [--gate-file NAME]]
//!                    [--hold-forever-after N]
//! ```
//!
//! Every round takes the file lock of `<dir>/session.jsonl` on the real platform and, under
//! it, checks that nobody else is inside, checks the shared counter against the shared log,
//! appends `<worker> <round>` to the log, writes counter + 1, and releases. Then it prints
//! `ACK <worker> <round>`.
//!
//! - `--gate-at K`: before round K, print `AT-GATE`, wait until `<dir>/<gate file>` exists
//!   (default `go`), then print `GATE-PASSED`.
//! - `--hold-forever-after N`: after N rounds (`<rounds>` is then ignored), pass the gate if it
//!   is at N, take the lock once more, create
//!   `<dir>/victim-holding`, print `HOLDING ino=<lock inode>`, and sleep forever holding it (the
//!   test SIGKILLs it there).
//!
//! Every lock this process reclaims is printed as `RECLAIMED ino=<inode> reasons=<r1,r2>`.
//!
//! Exit codes: 0 ok, 2 usage, 3 exclusion broken (someone else was inside), 4 counter and log
//! disagree (a lost or doubled update), 5 lock error, 6 other I/O error.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use heldlock_core::platform::errno;
use heldlock_core::{LockEvent, LockOptions, Observer, ProcessLocks};

/// The acquire timeout: far above any real contention here, far below the test's safety net.
const TIMEOUT_MS: u64 = 30_000;

/// Prints every reclaim this process performs.
struct PrintReclaims;

impl Observer for PrintReclaims {
    fn on_event(&self, event: &LockEvent) {
        match event {
            LockEvent::Reclaimed { ino, reasons, .. } => {
                let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
                println!("RECLAIMED ino={ino} reasons={}", names.join(","));
            }
            LockEvent::AcquireFailed { error, .. } => eprintln!("acquire failed: {error}"),
            _ => {}
        }
    }
}

enum Failure {
    Exclusion(String),
    Counter(String),
    Lock(String),
    Io(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Exclusion(m) | Failure::Counter(m) | Failure::Lock(m) | Failure::Io(m) => m,
        }
    }

    fn code(&self) -> u8 {
        match self {
            Failure::Exclusion(_) => 3,
            Failure::Counter(_) => 4,
            Failure::Lock(_) => 5,
            Failure::Io(_) => 6,
        }
    }
}

fn io_fail(what: &str) -> impl FnOnce(io::Error) -> Failure + '_ {
    move |e| Failure::Io(format!("{what}: {e}"))
}

struct Args {
    dir: PathBuf,
    worker: String,
    rounds: u32,
    gate_at: Option<u32>,
    gate_file: String,
    hold_forever_after: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut gate_at = None;
    let mut hold_forever_after = None;
    let mut gate_file = String::from("go");
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u32, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value.parse().map_err(|e| format!("{name} {value}: {e}"))
        };
        match arg.as_str() {
            "--gate-at" => gate_at = Some(number("--gate-at")?),
            "--hold-forever-after" => hold_forever_after = Some(number("--hold-forever-after")?),
            "--gate-file" => gate_file = args.next().ok_or("--gate-file needs a value")?,
            _ => positional.push(arg),
        }
    }
    let [dir, worker, rounds] = <[String; 3]>::try_from(positional)
        .map_err(|p| format!("expected <dir> <worker> <rounds>, got {p:?}"))?;
    Ok(Args {
        dir: PathBuf::from(dir),
        worker,
        rounds: rounds.parse().map_err(|e| format!("rounds {rounds}: {e}"))?,
        gate_at,
        gate_file,
        hold_forever_after,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("usage: heldlock-contender <dir> <worker> <rounds> [--gate-at K [--gate-file NAME]] [--hold-forever-after N]: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{} failed: {}", args.worker, failure.message());
            ExitCode::from(failure.code())
        }
    }
}

async fn run(args: &Args) -> Result<(), Failure> {
    let mut platform = heldlock_core::real::platform();
    platform.observer = Arc::new(PrintReclaims);
    let locks = ProcessLocks::new(platform);
    let opts = LockOptions {
        timeout_ms: TIMEOUT_MS,
        ..LockOptions::default()
    };
    let transcript = args.dir.join("session.jsonl");
    let rounds = args.hold_forever_after.unwrap_or(args.rounds);
    for round in 0..rounds {
        gate(args, round).await;
        let handle = locks
            .acquire(&transcript, opts)
            .await
            .map_err(|e| Failure::Lock(format!("acquire in round {round}: {e}")))?;
        critical_section(&args.dir, &args.worker, round).await?;
        locks
            .release(&handle)
            .await
            .map_err(|e| Failure::Lock(format!("release in round {round}: {e}")))?;
        println!("ACK {} {round}", args.worker);
        // A short pause outside the lock lets the others' polls in.
        let pause = (std::process::id() as u64 * 31 + round as u64 * 17) % 4;
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    if args.hold_forever_after.is_some() {
        gate(args, rounds).await;
        let handle = locks
            .acquire(&transcript, opts)
            .await
            .map_err(|e| Failure::Lock(format!("acquire to hold: {e}")))?;
        fs::write(args.dir.join("victim-holding"), std::process::id().to_string())
            .map_err(io_fail("victim-holding"))?;
        println!("HOLDING ino={}", handle.ino());
        std::future::pending::<()>().await;
    }
    Ok(())
}

/// Before round `round`: wait at the gate if it is there.
async fn gate(args: &Args, round: u32) {
    if args.gate_at == Some(round) {
        println!("AT-GATE");
        while !args.dir.join(&args.gate_file).exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("GATE-PASSED");
    }
}

/// How long a round stays inside, between reading and writing: a wide window for a broken lock
/// to show as an overlap or a lost update.
const INSIDE_MS: u64 = 5;

/// One round's work under the lock.
async fn critical_section(dir: &Path, worker: &str, round: u32) -> Result<(), Failure> {
    let inside = dir.join("inside");
    match OpenOptions::new().write(true).create_new(true).open(&inside) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(errno::EEXIST) => {
            return Err(Failure::Exclusion(format!(
                "round {round}: `inside` exists: another holder is in the critical section"
            )));
        }
        Err(e) => return Err(io_fail("create inside")(e)),
    }
    if dir.join("victim-holding").exists() {
        return Err(Failure::Exclusion(format!("round {round}: took the lock while the victim holds it")));
    }
    let counter_path = dir.join("counter");
    let counter: u64 = match fs::read_to_string(&counter_path) {
        Ok(text) => text.trim().parse().map_err(|e| Failure::Counter(format!("counter {text:?}: {e}")))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_fail("read counter")(e)),
    };
    let log_path = dir.join("log");
    let lines = match fs::read_to_string(&log_path) {
        Ok(text) => text.lines().count() as u64,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(io_fail("read log")(e)),
    };
    if lines != counter {
        return Err(Failure::Counter(format!(
            "round {round}: counter {counter} but the log has {lines} lines"
        )));
    }
    tokio::time::sleep(Duration::from_millis(INSIDE_MS)).await;
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_path)
        .map_err(io_fail("open log"))?;
    log.write_all(format!("{worker} {round}\n").as_bytes())
        .and_then(|()| log.sync_data())
        .map_err(io_fail("append log"))?;
    fs::write(&counter_path, format!("{}\n", counter + 1)).map_err(io_fail("write counter"))?;
    fs::remove_file(&inside).map_err(io_fail("remove inside"))?;
    Ok(())
}
