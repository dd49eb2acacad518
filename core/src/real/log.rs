//! The production observer: the lock's events as `tracing` events under the target
//! `heldlock`. What SPEC calls "logged" is loud — a watchdog force-release and a forced abort
//! release warn, a failed release or abort release is an error, a reclaim is info — and the
//! rest is `trace`, which costs nothing when no subscriber wants it.

use tracing::{debug, error, info, trace, warn};

use crate::event::{LockEvent, OpKind, PoisonReason};
use crate::platform::{errno, Observer};

/// Logs the lock's events through `tracing` (the observer of [`super::platform`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_event(&self, event: &LockEvent) {
        match event {
            LockEvent::HandleLost {
                handle,
                lock,
                held_ms,
                cause,
            } => warn!(
                target: "heldlock",
                lock = %lock.display(), %handle, held_ms, cause = cause.name(),
                "a lock was taken from its holder; its holder's writes now fail"
            ),
            LockEvent::Reclaimed { lock, ino, reasons } => info!(
                target: "heldlock",
                lock = %lock.display(), ino, reasons = %reason_names(reasons),
                "reclaimed a stale lock file"
            ),
            LockEvent::GuardRecovered { guard } => info!(
                target: "heldlock",
                guard = %guard.display(),
                "removed a reclaim guard its reclaimer left behind"
            ),
            LockEvent::ReleaseEnd {
                handle,
                lock,
                errno: Some(code),
                ..
            } => error!(
                target: "heldlock",
                lock = %lock.display(), %handle, errno = errno::name(*code),
                "lock release failed: the file stays, an orphan this process reclaims on its next acquire"
            ),
            LockEvent::OpEnd {
                ctl,
                op,
                kind: OpKind::AbortRelease,
                ok: false,
            } => error!(target: "heldlock", %ctl, %op, "abort release failed"),
            LockEvent::Poisoned { ctl, op, reason } => log_poison(ctl, op, *reason),
            LockEvent::AcquireFailed { lock, error, .. } => {
                debug!(target: "heldlock", lock = %lock.display(), %error, "acquire failed")
            }
            other => trace!(target: "heldlock", event = ?other),
        }
    }
}

fn log_poison(ctl: &crate::event::ControllerId, op: &crate::event::OpId, reason: PoisonReason) {
    let reason_name = reason.name();
    match reason {
        PoisonReason::AbortForced => warn!(
            target: "heldlock",
            %ctl, %op, reason = reason_name,
            "abort settle bound expired: the lock was force-released and the controller poisoned"
        ),
        PoisonReason::Takeover => warn!(
            target: "heldlock",
            %ctl, %op, reason = reason_name,
            "the transcript changed under the released lock: controller poisoned"
        ),
        _ => {
            info!(target: "heldlock", %ctl, %op, reason = reason_name, "controller poisoned")
        }
    }
}

fn reason_names(reasons: &[crate::judge::StaleReason]) -> String {
    let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
    names.join(",")
}
