//! Removals aimed into a gateway's own release. A release reads its lock file, sees its own,
//! then unlinks it. Its lock file removed in between by an outside `rm` (an operator, a sync
//! tool), at the last moment before the unlink, must cost the release nothing: the unlink's
//! ENOENT is "gone already", never an error (SPEC §1 handles ENOENT). The lock tamperer
//! removes held lock files at random moments, which almost never fall between those two
//! calls. The oracle judges from what it already knows: the removal is the lock tamperer's
//! kind of act (`World::lock_tampered`), and the release's result is a locked operation's
//! (I15: an errno that never struck the process).
//!
//! Not aimed, because the core cannot survive it yet (BENCHMARKS, eleventh session; branch
//! `wip/reclaim-race`):
//! - a removal earlier in the window: a waiter publishes, and the release's unlink removes
//!   that live lock (an unlink-by-path race no check can close);
//! - a dead lock removed inside a reclaim's stalled exchange: a live waiter publishes, the
//!   exchange takes its lock, and the holder's release, checked before the exchange, unlinks
//!   the reclaimer's lock in between, so the exchange back finds the path empty (ENOENT
//!   returned as an I/O error: swarm seeds 166848, 339676) or a newcomer's lock; on FUSE the
//!   release removes the reclaimer's next lock (seed 158340). Branch `wip/reclaim-fix` fixes
//!   the first two in the core and aims this window everywhere but FUSE (BENCHMARKS, twelfth
//!   session); not merged yet.

use std::sync::Mutex;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::seed::{world_rng, WorldDraw};

/// The chance a release's unlink carries a removal, while the budget lasts.
const ARM_CHANCE: f64 = 0.5;

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

    /// A gateway's `unlink` of a lock path is about to go: whether it carries a removal.
    pub fn on_unlink(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        if st.left == 0 || !st.rng.gen_bool(ARM_CHANCE) {
            return false;
        }
        st.left -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_spent_once_at_even_odds() {
        let mut armed_first = 0;
        for seed in 0..200 {
            let races = LockRaces::new(seed, 3);
            let calls: Vec<bool> = (0..400).map(|_| races.on_unlink()).collect();
            assert_eq!(calls.iter().filter(|a| **a).count(), 3, "seed {seed}: three removals, no more");
            armed_first += usize::from(calls[0]);
        }
        assert!(
            (60..140).contains(&armed_first),
            "a first unlink arms about half the time: {armed_first}/200"
        );
    }

    #[test]
    fn no_budget_arms_nothing() {
        let races = LockRaces::new(5, 0);
        assert!((0..100).all(|_| !races.on_unlink()));
    }

    #[test]
    fn a_seed_replays_its_removals() {
        let draws = |seed| {
            let races = LockRaces::new(seed, 6);
            (0..50).map(|_| races.on_unlink()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert!((0..20).any(|s| draws(s) != draws(7)), "seeds differ in where they arm");
    }
}
