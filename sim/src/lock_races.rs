//! Removals aimed into a gateway's own release. A release reads its lock file, sees its own,
//! then unlinks it. A file removed behind the protocol's back in between (an `rm`, a sync
//! tool) must cost the release nothing: the unlink's ENOENT is "gone already", never an error
//! (SPEC §1 handles ENOENT). The lock tamperer removes held lock files at random moments,
//! which almost never fall between those two calls; here a gateway's `unlink` of a lock path
//! may stall with the held lock file removed inside the stall. The oracle judges from what it
//! already knows: the removal is the lock tamperer's kind of act (`World::lock_tampered`), the
//! stall is the process's (`World::fs_stalled`), and the release's result is a locked
//! operation's (I15: an errno that never struck the process).
//!
//! Tried and not kept (branch `wip/reclaim-stall`): stalling a reclaim's exchange past the
//! orphan grace. It finds real defects of the core (BENCHMARKS, tenth session), whose fix
//! is not finished.

use std::sync::Mutex;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::FsOp;
use crate::seed::{world_rng, WorldDraw};

/// The chance a release's unlink carries a removal, while the budget lasts.
const ARM_CHANCE: f64 = 0.5;
/// The stall the removal lands in, in ms: long enough to be noted as a stall (the oracle's
/// slack), short enough to stay inside every bound.
const STALL_MS: std::ops::Range<u64> = 100..800;

/// One removal carried by a release's unlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRace {
    pub stall_ms: u64,
    /// Into the stall, when the removal lands.
    pub remove_at_ms: u64,
}

struct State {
    rng: ChaCha8Rng,
    /// Removals left in this run.
    left: u32,
}

/// The lock-race actor's state for one run; inert when the profile arms none.
pub struct LockRaces {
    state: Mutex<State>,
}

impl LockRaces {
    pub fn new(seed: u64, budget: u32) -> LockRaces {
        LockRaces {
            state: Mutex::new(State {
                rng: world_rng(seed, WorldDraw::LockRace, 0),
                left: budget,
            }),
        }
    }

    /// A gateway's call `op` on a lock path is about to go: the removal it carries, if any
    /// (only an `unlink` carries one).
    pub fn on_call(&self, op: FsOp) -> Option<LockRace> {
        if op != FsOp::Unlink {
            return None;
        }
        let mut st = self.state.lock().unwrap();
        if st.left == 0 || !st.rng.gen_bool(ARM_CHANCE) {
            return None;
        }
        st.left -= 1;
        let stall_ms = st.rng.gen_range(STALL_MS);
        Some(LockRace {
            stall_ms,
            remove_at_ms: st.rng.gen_range(0..stall_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_land_only_on_unlinks_and_within_the_budget() {
        for seed in 0..100 {
            let races = LockRaces::new(seed, 3);
            let mut carried = Vec::new();
            for _ in 0..400u32 {
                for op in [FsOp::Stat, FsOp::Read, FsOp::Exchange, FsOp::Rename, FsOp::Mkdir] {
                    assert!(races.on_call(op).is_none(), "seed {seed}: {op:?} carries no removal");
                }
                if let Some(race) = races.on_call(FsOp::Unlink) {
                    carried.push(race);
                }
            }
            assert_eq!(carried.len(), 3, "seed {seed}: the budget of three is spent, and only once");
            for race in carried {
                assert!(STALL_MS.contains(&race.stall_ms) && race.remove_at_ms < race.stall_ms);
            }
        }
    }

    #[test]
    fn no_budget_arms_nothing() {
        let races = LockRaces::new(5, 0);
        for _ in 0..100 {
            assert!(races.on_call(FsOp::Unlink).is_none());
        }
    }
}
