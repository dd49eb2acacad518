//! The invariants of SPEC §4 as ids the compiler checks: reports, the campaign's failure store,
//! the mutant self-test and the CLI all name an invariant through this enum, never a string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One invariant of SPEC §4, or `Assert`: a panic inside the simulation (the core's or the
/// harness's own assertion).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InvariantId {
    I1,
    I2,
    I3,
    I4,
    I5,
    I6,
    I7,
    I8,
    I9,
    I10,
    I11,
    I12,
    I13,
    I14,
    I15,
    I16,
    #[serde(rename = "assert")]
    Assert,
}

impl InvariantId {
    /// The invariants the oracle checks, in SPEC order.
    pub const CHECKED: [InvariantId; 16] = [
        InvariantId::I1,
        InvariantId::I2,
        InvariantId::I3,
        InvariantId::I4,
        InvariantId::I5,
        InvariantId::I6,
        InvariantId::I7,
        InvariantId::I8,
        InvariantId::I9,
        InvariantId::I10,
        InvariantId::I11,
        InvariantId::I12,
        InvariantId::I13,
        InvariantId::I14,
        InvariantId::I15,
        InvariantId::I16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InvariantId::I1 => "I1",
            InvariantId::I2 => "I2",
            InvariantId::I3 => "I3",
            InvariantId::I4 => "I4",
            InvariantId::I5 => "I5",
            InvariantId::I6 => "I6",
            InvariantId::I7 => "I7",
            InvariantId::I8 => "I8",
            InvariantId::I9 => "I9",
            InvariantId::I10 => "I10",
            InvariantId::I11 => "I11",
            InvariantId::I12 => "I12",
            InvariantId::I13 => "I13",
            InvariantId::I14 => "I14",
            InvariantId::I15 => "I15",
            InvariantId::I16 => "I16",
            InvariantId::Assert => "assert",
        }
    }

    /// One line: what the invariant promises.
    pub fn description(self) -> &'static str {
        match self {
            InvariantId::I1 => {
                "exclusion: one live holder per lock; a holder that lost its lock never writes again"
            }
            InvariantId::I2 => {
                "exactly-once: a handle is released at most once; a release removes only its own file"
            }
            InvariantId::I3 => {
                "held ⇒ released: once held is cleared, the release is issued before the clearing op returns"
            }
            InvariantId::I4 => "dispose: after dispose the controller holds nothing, and never holds again",
            InvariantId::I5 => "bounded abort: an abort's release is issued within the settle bound + ε",
            InvariantId::I6 => {
                "poison before force: a poisoned controller never touches the transcript again"
            }
            InvariantId::I7 => "next turn: when the owner is released, the attempt's lock is already free",
            InvariantId::I8 => "drain: one drain owner; no handle taken or released by two paths",
            InvariantId::I9 => "no deadlock: release, reacquire, cleanup and dispose return",
            InvariantId::I10 => {
                "fence: unowned non-benign changes while released are caught; owned and benign are not"
            }
            InvariantId::I11 => {
                "breaker safety: never remove a live lock; always recover dead/recycled/orphan locks"
            }
            InvariantId::I12 => {
                "timeout: contention with a live holder ends in TimeoutError after ≈ timeoutMs"
            }
            InvariantId::I13 => "watchdog: a lock held past maxHoldMs is freed within maxHoldMs + 60 s",
            InvariantId::I14 => {
                "no lost writes: every acknowledged transcript write is in the file, whole, in order"
            }
            InvariantId::I15 => "availability: the lock refuses a caller only for a reason SPEC §1 allows",
            InvariantId::I16 => {
                "liveness: after healing, every session is locked and written by a fresh turn in bounded time"
            }
            InvariantId::Assert => "a panic inside the simulation (an assertion of the core or the harness)",
        }
    }

    /// Invariants a leaked lock breaks (the mutant report shows what such a leak led to).
    pub fn is_leak(self) -> bool {
        matches!(self, InvariantId::I3 | InvariantId::I7)
    }
}

impl fmt::Display for InvariantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InvariantId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        InvariantId::CHECKED
            .into_iter()
            .chain([InvariantId::Assert])
            .find(|id| id.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown invariant {text:?} (I1 … I16, assert)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_spec_ids() {
        for id in InvariantId::CHECKED.into_iter().chain([InvariantId::Assert]) {
            assert_eq!(id.name().parse::<InvariantId>(), Ok(id));
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.name()));
        }
        assert!("I99".parse::<InvariantId>().is_err());
    }
}
