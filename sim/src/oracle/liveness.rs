//! I16 liveness after healing (TigerBeetle's VOPR liveness mode): once the world is healed —
//! faults off, hung ops ended, paused processes resumed — every session must be locked and
//! written by a fresh turn within acquire timeout + maxHoldMs + 2 watchdog ticks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use heldlock_core::controller::ATTEMPT_MAX_HOLD_MS;
use heldlock_core::file_lock::WATCHDOG_INTERVAL_MS;
use heldlock_core::memprocs::{ProcState, ProcessTable};
use heldlock_core::payload::LockPayload;

use super::{ms, InvariantId, Oracle, SLACK_MS};

/// The acquire timeout of an attempt (`ControllerOptions::default`).
const ACQUIRE_TIMEOUT_MS: u64 = 60_000;
/// SPEC §4 I16: acquire timeout + maxHoldMs + 2 × watchdog interval.
pub const LIVENESS_BOUND_MS: u64 = ACQUIRE_TIMEOUT_MS + ATTEMPT_MAX_HOLD_MS + 2 * WATCHDOG_INTERVAL_MS;

#[derive(Default)]
pub(super) struct Liveness {
    healed_ns: Option<u64>,
    /// Sessions a fresh turn locked and wrote after the healing.
    proven: BTreeSet<PathBuf>,
    reported: bool,
}

impl Oracle {
    /// The world is healed: the liveness bound runs from now.
    pub fn healed(&mut self, now: u64) {
        self.liveness.healed_ns.get_or_insert(now);
    }

    /// A fresh turn's write on `session` (canonical) returned Ok after the healing.
    pub fn session_proven(&mut self, session: &Path) {
        if self.liveness.healed_ns.is_some() {
            self.liveness.proven.insert(session.to_owned());
        }
    }

    /// Sessions not yet locked and written since the healing.
    pub fn unproven_sessions(&self) -> Vec<PathBuf> {
        self.writes.edits.keys().filter(|p| !self.liveness.proven.contains(*p)).cloned().collect()
    }

    /// I16: past the bound, every session proven — but a session whose lock file names a pid
    /// the judge legitimately cannot tell from a live holder (`excused`) stays locked by
    /// SPEC §1.1 itself.
    pub fn check_liveness(&mut self, now: u64, excused: impl Fn(&Path) -> bool) {
        let Some(healed) = self.liveness.healed_ns else {
            return;
        };
        if self.liveness.reported || ms(now - healed) <= LIVENESS_BOUND_MS + SLACK_MS {
            return;
        }
        self.liveness.reported = true;
        for session in self.unproven_sessions().into_iter().filter(|s| !excused(s)) {
            let detail = format!(
                "liveness: {} was not locked and written by a fresh turn within {} ms of the healing",
                session.display(),
                LIVENESS_BOUND_MS
            );
            self.violate(now, InvariantId::I16, None, None, detail);
        }
    }
}

/// Whether a lock file with these bytes stays locked by SPEC §1.1 whoever asks: its pid is a
/// live process that is not a gateway of ours (a dead holder's pid taken by another
/// program) and that the judge cannot place — no start times to compare, and not known to be
/// a non-gateway. (A refused liveness probe means alive, but the start time is still read.)
pub fn unrecoverable_by_spec(bytes: &[u8], table: &ProcessTable) -> bool {
    let Some(payload) = LockPayload::parse(bytes) else {
        return false;
    };
    let Some(entry) = payload.pid.and_then(|pid| table.get(pid)) else {
        return false;
    };
    let recycled = matches!((payload.starttime, entry.starttime), (Some(a), Some(b)) if a != b);
    entry.state != ProcState::Zombie && entry.gateway != Some(true) && entry.gateway.is_none() && !recycled
}

#[cfg(test)]
mod tests {
    use super::*;
    use heldlock_core::memprocs::ProcEntry;

    const S: &str = "/srv/sessions/s0.jsonl";

    #[test]
    fn a_session_not_proven_within_the_bound_is_caught_unless_spec_keeps_it_locked() {
        let mut o = Oracle::default();
        o.transcript_created(Path::new(S), b"h\n");
        o.healed(0);
        let past = (LIVENESS_BOUND_MS + SLACK_MS + 1) * 1_000_000;
        o.check_liveness(past - 2_000_000_000, |_| false);
        assert!(o.violations.is_empty(), "within the bound");
        o.check_liveness(past, |_| true);
        assert!(o.violations.is_empty(), "excused");
        let mut o2 = Oracle::default();
        o2.transcript_created(Path::new(S), b"h\n");
        o2.healed(0);
        o2.check_liveness(past, |_| false);
        assert_eq!(o2.violations.len(), 1);
        assert_eq!(o2.violations[0].invariant, InvariantId::I16);
        let mut o3 = Oracle::default();
        o3.transcript_created(Path::new(S), b"h\n");
        o3.healed(0);
        o3.session_proven(Path::new(S));
        o3.check_liveness(past, |_| false);
        assert!(o3.violations.is_empty(), "proven");
    }

    #[test]
    fn only_a_foreign_pid_the_judge_cannot_place_keeps_a_lock() {
        let table = ProcessTable::new();
        let bytes = |pid: u32, start: Option<u64>| LockPayload::new(pid, 0, start, 1_000).to_bytes();
        let foreign = |gateway, probe_denied, starttime| ProcEntry {
            state: ProcState::Running,
            starttime,
            gateway,
            probe_denied,
        };
        table.spawn(7, foreign(None, true, Some(5)));
        table.spawn(8, foreign(None, false, None));
        table.spawn(9, foreign(Some(false), false, None));
        table.spawn(10, foreign(Some(true), true, None));
        table.spawn(11, foreign(None, false, Some(5)));
        assert!(!unrecoverable_by_spec(&bytes(7, Some(1)), &table), "EPERM, yet recycled");
        assert!(unrecoverable_by_spec(&bytes(7, None), &table), "EPERM, nothing to compare");
        assert!(unrecoverable_by_spec(&bytes(8, None), &table), "nothing to compare");
        assert!(!unrecoverable_by_spec(&bytes(9, None), &table), "non-owner");
        assert!(!unrecoverable_by_spec(&bytes(10, None), &table), "a gateway of ours");
        assert!(!unrecoverable_by_spec(&bytes(11, Some(1)), &table), "recycled");
        assert!(!unrecoverable_by_spec(&bytes(12, None), &table), "dead");
        assert!(!unrecoverable_by_spec(b"garbage", &table), "payload-less");
    }
}
