//! Edits aimed into a gateway's own transcript calls. The external writer edits at random
//! moments, which almost never fall inside a fence check: between its `stat` and its `read`,
//! between the `read` and the second `stat`, or while an append is in flight. Here a transcript
//! `stat` of a gateway arms an edit that lands inside the stall of that call or of one of the
//! process's next two calls on that transcript — a slow disk and a user (or a sync tool)
//! acting at the worst moment. The oracle judges each edit as it judges the external
//! writer's, from the actor's own record of what it did (`World::external_change`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::actors::recreate_after;
use crate::faults::FsOp;
use crate::oracle::ExternalChange;
use crate::seed::{world_rng, WorldDraw};
use crate::world::World;

/// An armed edit covers the arming call and this many more transcript calls of its process.
const CALLS_COVERED: u32 = 3;
/// The chance a gateway's transcript `stat` arms an edit, while the run's budget lasts.
const ARM_CHANCE: f64 = 0.25;
/// The stall an edit lands in, in ms: long enough to be noted as a stall (the oracle's
/// slack), short enough to stay inside an acquire's budget.
const STALL_MS: std::ops::Range<u64> = 100..800;
/// Rewrites of this actor are numbered from here: never the bytes of another actor's rewrite.
const FIRST_ACT: u32 = 1_000;

/// The kinds of edit, each as likely: benign ones the fence must accept, the rest it must
/// take over on.
const CHANGES: [ExternalChange; 8] = [
    ExternalChange::BenignAppend,
    ExternalChange::CtimeOnly,
    ExternalChange::NonBenignAppend,
    ExternalChange::Rewrite,
    ExternalChange::Delete,
    ExternalChange::Replace,
    ExternalChange::SameBytes,
    ExternalChange::ReplayAppend,
];

/// One edit to land inside the stall of a transcript call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RacingEdit {
    pub stall_ms: u64,
    /// Into the stall, when the edit lands.
    pub at_ms: u64,
    pub change: ExternalChange,
    /// This actor's act number (numbers a rewrite's bytes).
    pub act: u32,
}

/// An edit armed for a process: which of its next calls on `transcript` carries it.
struct Armed {
    transcript: PathBuf,
    /// Calls still to come before the edit's (0: the next one carries it).
    calls_before: u32,
    edit: RacingEdit,
}

struct State {
    rng: ChaCha8Rng,
    /// Edits left to arm in this run.
    left: u32,
    acts: u32,
    armed: BTreeMap<u32, Armed>,
}

/// The racing-edit actor's state for one run; inert when the profile arms none.
pub struct RacingEdits {
    state: Mutex<State>,
    /// Transcripts a racing edit deleted, for `restorer` to bring back.
    deleted: Mutex<Vec<PathBuf>>,
    wake: event_listener::Event,
}

/// Brings back what racing edits deleted, as the transcript tamperer does its own deletes:
/// a session reset comes back as a fresh transcript, 0.5–20 s later. Spawned only where
/// racing edits are armed (a task spawned moves every later scheduling draw of the seed).
pub async fn restorer(world: Arc<World>) {
    let mut rng = world_rng(world.seed, WorldDraw::RacingEdit, 1);
    // Each delete takes at most two passes: the wake-up, then its restore.
    for _ in 0..2 * world.profile.racing_edits {
        let listener = world.racing.wake.listen();
        let next = world.racing.deleted.lock().unwrap().pop();
        match next {
            Some(path) => recreate_after(&world, &path, rng.gen_range(500..20_000)).await,
            None => listener.await,
        }
    }
}

impl RacingEdits {
    pub fn new(seed: u64, budget: u32) -> RacingEdits {
        RacingEdits {
            state: Mutex::new(State {
                rng: world_rng(seed, WorldDraw::RacingEdit, 0),
                left: budget,
                acts: 0,
                armed: BTreeMap::new(),
            }),
            deleted: Mutex::new(Vec::new()),
            wake: event_listener::Event::new(),
        }
    }

    /// A racing edit deleted `transcript`: `restorer` brings it back.
    pub fn deleted(&self, transcript: &Path) {
        self.deleted.lock().unwrap().push(transcript.to_owned());
        self.wake.notify(usize::MAX);
    }

    /// Whether any edit may still be armed or land: the hot path's one check.
    pub fn active(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.left > 0 || !st.armed.is_empty()
    }

    /// A transcript call `op` of gateway `pid` on `transcript` (canonical) is about to go: the
    /// edit that lands in its stall, if this call carries one.
    pub fn on_call(&self, pid: u32, op: FsOp, transcript: &Path) -> Option<RacingEdit> {
        let mut st = self.state.lock().unwrap();
        if !st.armed.contains_key(&pid) && op == FsOp::Stat && st.left > 0 && st.rng.gen_bool(ARM_CHANCE) {
            st.left -= 1;
            let act = FIRST_ACT + st.acts;
            st.acts += 1;
            let stall_ms = st.rng.gen_range(STALL_MS);
            let edit = RacingEdit {
                stall_ms,
                at_ms: st.rng.gen_range(0..stall_ms),
                change: CHANGES[st.rng.gen_range(0..CHANGES.len())],
                act,
            };
            let calls_before = st.rng.gen_range(0..CALLS_COVERED);
            st.armed.insert(
                pid,
                Armed {
                    transcript: transcript.to_owned(),
                    calls_before,
                    edit,
                },
            );
        }
        let armed = st.armed.get_mut(&pid)?;
        if armed.transcript != transcript {
            return None;
        }
        if armed.calls_before > 0 {
            armed.calls_before -= 1;
            return None;
        }
        st.armed.remove(&pid).map(|armed| armed.edit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "/srv/sessions/s0.jsonl";

    #[test]
    fn an_armed_edit_lands_within_the_calls_it_covers_and_only_on_its_transcript() {
        for seed in 0..200 {
            let racing = RacingEdits::new(seed, 1);
            let mut landed = Vec::new();
            // Stats until one arms, then the covered calls, with a call on another transcript
            // in between: it neither carries the edit nor counts.
            for call in 0..200u32 {
                if let Some(edit) = racing.on_call(7, FsOp::Stat, Path::new(T)) {
                    landed.push((call, edit));
                }
                assert!(racing.on_call(7, FsOp::Read, Path::new("/srv/sessions/s1.jsonl")).is_none());
                if !racing.active() {
                    break;
                }
            }
            assert_eq!(landed.len(), 1, "seed {seed}: the budget of one edit lands once");
            let edit = landed[0].1;
            assert!(STALL_MS.contains(&edit.stall_ms) && edit.at_ms < edit.stall_ms);
            assert_eq!(edit.act, FIRST_ACT);
            assert!(!racing.active(), "spent: the hot path's check turns it off");
        }
    }

    #[test]
    fn no_budget_arms_nothing_and_draws_nothing() {
        let racing = RacingEdits::new(3, 0);
        assert!(!racing.active());
        for _ in 0..100 {
            assert!(racing.on_call(1, FsOp::Stat, Path::new(T)).is_none());
        }
    }
}
