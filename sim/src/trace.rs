//! The trace: one stable line per event (simulated time, process, event). The same seed and
//! binary give byte-identical lines. Lines are also emitted as `tracing` events (target
//! `heldlock::trace`) for whoever subscribes.

use std::path::Path;

use heldlock_core::event::{LockEvent, LossCause};
use heldlock_core::platform::errno;

/// Whether a run records its trace. Campaigns run without one and re-run a failing seed with
/// it: a seed replays to the same run either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    Off,
    Full,
}

pub struct Trace {
    mode: TraceMode,
    lines: Vec<String>,
}

/// Who a trace line is about.
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Process(u32),
    External,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Process(pid) => write!(f, "p{pid}"),
            Who::External => f.write_str("ext"),
        }
    }
}

/// `   12.345678s`
pub fn format_time(ns: u64) -> String {
    format!("{:>5}.{:06}s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

impl Trace {
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            lines: Vec::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.mode == TraceMode::Full
    }

    /// Record a line; nothing is formatted when the trace is off (the hot path of a campaign).
    pub fn record(&mut self, now_ns: u64, who: Who, text: impl FnOnce() -> String) {
        if self.mode == TraceMode::Off {
            return;
        }
        let line = format!("{} {:<7} {}", format_time(now_ns), who.to_string(), text());
        tracing::debug!(target: "heldlock::trace", "{line}");
        self.lines.push(line);
    }

    /// Lines recorded so far.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }
}

fn file(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The trace text of a lock event.
pub fn describe(ev: &LockEvent<'_>) -> String {
    match ev {
        LockEvent::AcquireStart {
            acquire,
            lock,
            timeout_ms,
        } => {
            format!("acquire#{acquire} start {} timeout={timeout_ms}ms", file(lock))
        }
        LockEvent::Acquired {
            acquire,
            handle,
            lock,
            ino,
            ..
        } => {
            format!("acquire#{acquire} got {handle} {} ino={ino}", file(lock))
        }
        LockEvent::AcquireFailed { acquire, error, .. } => format!("acquire#{acquire} failed: {error}"),
        LockEvent::Reclaimed { lock, ino, reasons } => {
            let r: Vec<_> = reasons.iter().map(|r| r.name()).collect();
            format!("reclaimed {} ino={ino} [{}]", file(lock), r.join(","))
        }
        LockEvent::GuardRecovered { guard } => format!("recovered abandoned guard {}", file(guard)),
        LockEvent::ReleaseBegin { handle, by, .. } => format!("release {handle} begin by {by:?}"),
        LockEvent::ReleaseEnd {
            handle,
            unlinked,
            errno: e,
            ..
        } => match e {
            Some(code) => format!("release {handle} end: unlink check failed {}", errno::name(*code)),
            None => format!("release {handle} end unlinked={unlinked}"),
        },
        LockEvent::HandleLost {
            handle,
            lock,
            held_ms,
            cause: LossCause::Watchdog,
        } => {
            format!("watchdog force-released {handle} {} after {held_ms} ms held", file(lock))
        }
        LockEvent::HandleLost {
            handle,
            lock,
            held_ms,
            cause,
        } => {
            format!("lost {handle} {} after {held_ms} ms held: {}", file(lock), cause.name())
        }
        LockEvent::OwnerAcquired { session, attempt } => {
            format!("owner {} attempt#{attempt} acquired", file(session))
        }
        LockEvent::OwnerReleased { session, attempt } => {
            format!("owner {} attempt#{attempt} released", file(session))
        }
        LockEvent::ControllerCreated { ctl, transcript } => format!("{ctl} created for {}", file(transcript)),
        LockEvent::OpBegin { ctl, op, kind } => format!("{ctl} {op} {} begin", kind.name()),
        LockEvent::OpEnd { ctl, op, kind, ok } => {
            format!("{ctl} {op} {} end {}", kind.name(), if *ok { "ok" } else { "err" })
        }
        LockEvent::HeldSet { ctl, op, handle } => format!("{ctl} {op} held := {handle}"),
        LockEvent::HeldCleared {
            ctl,
            op,
            handle,
            duty,
        } => {
            format!("{ctl} {op} held cleared ({handle}, duty {duty:?})")
        }
        LockEvent::Poisoned { ctl, op, reason } => format!("{ctl} {op} poisoned: {}", reason.name()),
        LockEvent::DrainOwned { ctl, op } => format!("{ctl} {op} owns the drain"),
        LockEvent::DrainFreed { ctl, op } => format!("{ctl} {op} frees the drain"),
        LockEvent::ReleaseDeferred { ctl, op } => format!("{ctl} {op} prompt release deferred to scope end"),
        LockEvent::AbortRequested { ctl, kind } => format!("{ctl} abort ({})", kind.name()),
        LockEvent::FenceRecorded { ctl, op } => format!("{ctl} {op} fence recorded"),
        LockEvent::FenceChecked { ctl, op } => format!("{ctl} {op} fence checked"),
        LockEvent::WriteBegin { ctl, op, handle } => match handle {
            Some(h) => format!("{ctl} {op} write under {h}"),
            None => format!("{ctl} {op} write (no-op lock)"),
        },
        LockEvent::WriteEnd { ctl, op, ok } => {
            format!("{ctl} {op} write end {}", if *ok { "ok" } else { "err" })
        }
        LockEvent::PromptReleased { ctl, op } => format!("{ctl} {op} prompt released"),
        LockEvent::Disposed { ctl } => format!("{ctl} disposed"),
    }
}
