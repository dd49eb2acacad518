//! The gateway processes of a run: one madsim node per incarnation. A crash kills the node
//! (every task of it is dropped, its locks stay on disk); a restart is a new node, usually
//! under a new pid; a pause wedges the node's event loop.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heldlock_core::memprocs::{ProcEntry, ProcState};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::seed::{derive, Stream};
use crate::workload::gateway;
use crate::world::World;

/// Gateways get pids from here; foreign processes from `FOREIGN_PID`.
const FIRST_GATEWAY_PID: u32 = 101;

struct Slot {
    pid: u32,
    node: Option<NodeId>,
    incarnation: u32,
    running: bool,
    progress: Arc<AtomicU32>,
}

pub struct Fleet {
    world: Arc<World>,
    slots: Mutex<Vec<Slot>>,
    next_pid: AtomicU32,
    next_starttime: AtomicU64,
}

impl Fleet {
    pub fn new(world: Arc<World>) -> Arc<Fleet> {
        Arc::new(Fleet {
            world,
            slots: Mutex::new(Vec::new()),
            next_pid: AtomicU32::new(FIRST_GATEWAY_PID),
            next_starttime: AtomicU64::new(1_000),
        })
    }

    fn fresh_pid(&self) -> u32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    fn fresh_starttime(&self) -> u64 {
        self.next_starttime.fetch_add(1_000, Ordering::Relaxed)
    }

    /// Start a new gateway slot.
    pub fn start_gateway(self: &Arc<Self>) {
        let pid = self.fresh_pid();
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            slots.push(Slot {
                pid,
                node: None,
                incarnation: 0,
                running: false,
                progress: Arc::new(AtomicU32::new(0)),
            });
            slots.len() - 1
        };
        self.launch(slot, pid);
    }

    /// Run slot `slot` as process `pid` on a fresh node, from its recorded progress on.
    fn launch(self: &Arc<Self>, slot: usize, pid: u32) {
        let starttime = self.world.profile.starttimes_known.then(|| self.fresh_starttime());
        let (incarnation, progress) = {
            let mut slots = self.slots.lock().unwrap();
            let s = &mut slots[slot];
            s.incarnation += 1;
            s.pid = pid;
            s.running = true;
            (s.incarnation, s.progress.clone())
        };
        let name = format!("gw{slot}#{incarnation}");
        self.world.table.spawn(
            pid,
            ProcEntry {
                state: ProcState::Running,
                starttime,
                gateway: Some(true),
                // Gateways running as another user: probes answer EPERM, /proc stays readable.
                probe_denied: self.world.profile.eperm_gateways,
            },
        );
        self.world.process_started(pid, name.clone(), starttime);
        if self.world.profile.eperm_gateways {
            self.world
                .note(pid, || "runs as another user: probes of it answer EPERM, /proc stays readable".into());
        }
        let node = Handle::current().create_node().name(name.clone()).build();
        self.slots.lock().unwrap()[slot].node = Some(node.id());
        let fleet = self.clone();
        let world = self.world.clone();
        let first_turn = progress.load(Ordering::SeqCst);
        if slot == 0 && self.world.profile.plugin_lock_table {
            drop(node.spawn(crate::plugin::plugin(self.world.clone(), pid, incarnation)));
        }
        drop(node.spawn(async move {
            let (locks, owner) = gateway(world.clone(), pid, name.clone(), first_turn, progress).await;
            fleet.finished(slot, incarnation);
            // The process lives on after its turns: its watchdog keeps running.
            crate::workload::gateway_liveness(world, pid, name, locks.clone(), owner).await;
            let _alive = locks;
            std::future::pending::<()>().await;
        }));
    }

    fn finished(&self, slot: usize, incarnation: u32) {
        let mut slots = self.slots.lock().unwrap();
        if slots[slot].incarnation == incarnation {
            slots[slot].running = false;
        }
    }

    /// The healing: every paused gateway resumes.
    pub fn resume_all(&self) {
        let nodes: Vec<(u32, NodeId)> =
            self.slots.lock().unwrap().iter().filter_map(|s| s.node.map(|n| (s.pid, n))).collect();
        for (pid, node) in nodes {
            if self.world.is_paused(pid) && self.world.is_alive(pid) {
                Handle::current().resume(node);
                self.world.process_resumed(pid);
            }
        }
    }

    /// Start the liveness phase's prober: a fresh process (a slot of its own, never crashed).
    pub fn start_prober(self: &Arc<Self>) {
        let pid = self.fresh_pid();
        let starttime = self.world.profile.starttimes_known.then(|| self.fresh_starttime());
        let entry = ProcEntry {
            state: ProcState::Running,
            starttime,
            gateway: Some(true),
            probe_denied: false,
        };
        self.world.table.spawn(pid, entry);
        let name = format!("prober#{pid}");
        self.world.process_started(pid, name.clone(), starttime);
        if self.world.profile.eperm_gateways {
            self.world
                .note(pid, || "runs as another user: probes of it answer EPERM, /proc stays readable".into());
        }
        let node = Handle::current().create_node().name(name.clone()).build();
        self.slots.lock().unwrap().push(Slot {
            pid,
            node: Some(node.id()),
            incarnation: 1,
            running: false,
            progress: Arc::new(AtomicU32::new(0)),
        });
        let world = self.world.clone();
        drop(node.spawn(async move {
            let _alive = crate::workload::liveness_probe(world, pid, name).await;
            std::future::pending::<()>().await;
        }));
    }

    /// Kill every node that is still up. Tasks parked forever (a hung op, a hung stream, a
    /// process idling after its turns) hold wakers in their own state; killing wakes them so
    /// madsim drops them, or each seed would leak them.
    pub fn kill_all(&self) {
        let nodes: Vec<NodeId> = self.slots.lock().unwrap().iter().filter_map(|s| s.node).collect();
        for node in nodes {
            Handle::current().kill(node);
        }
    }

    /// Gateways still running their turns.
    pub fn running(&self) -> usize {
        self.slots.lock().unwrap().iter().filter(|s| s.running).count()
    }

    fn pick_running(&self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let slots = self.slots.lock().unwrap();
        let running: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].running).collect();
        (!running.is_empty()).then(|| running[rng.gen_range(0..running.len())])
    }

    /// Wait (bounded: 300 polls of 100 ms) for a running gateway that holds a lock other
    /// processes wait on — two of them for the first half of the wait; its slot.
    async fn await_contended_holder(&self) -> Option<usize> {
        for poll in 0..300 {
            let waiters = if poll < 150 { 2 } else { 1 };
            if let Some(pid) = self.world.contended_holder(waiters) {
                let slots = self.slots.lock().unwrap();
                if let Some(slot) = slots.iter().position(|s| s.running && s.pid == pid) {
                    return Some(slot);
                }
            }
            madsim::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Crash a running gateway: its node dies, its fds close, its lock files stay behind.
    async fn crash(self: &Arc<Self>, slot: usize, rng: &mut ChaCha8Rng) {
        let (pid, node) = {
            let mut slots = self.slots.lock().unwrap();
            let s = &mut slots[slot];
            s.running = false;
            (s.pid, s.node.expect("a launched slot has a node"))
        };
        Handle::current().kill(node);
        let zombie = rng.gen_bool(0.3);
        if zombie {
            self.world.table.zombify(pid);
        } else {
            self.world.table.kill(pid);
        }
        self.world.disk.close_all(pid);
        self.world.process_crashed(pid, if zombie { "zombie" } else { "reaped" });
        madsim::time::sleep(Duration::from_millis(rng.gen_range(100..10_000))).await;
        if zombie {
            self.world.table.kill(pid);
            self.world.process_reaped(pid);
        }
        let profile = &self.world.profile;
        let reuse = profile.pid_reuse && rng.gen_bool(0.7);
        let restart_pid = if reuse && rng.gen_bool(0.5) {
            // The gateway itself comes back under its old pid: a recycled pid.
            pid
        } else {
            if reuse {
                // Another program takes the pid: not a gateway, or one the judge cannot place.
                let starttime = self.fresh_starttime();
                let gateway = if rng.gen_bool(0.5) { Some(false) } else { None };
                let foreign = ProcEntry {
                    state: ProcState::Running,
                    starttime: Some(starttime),
                    gateway,
                    probe_denied: profile.eperm_probes && rng.gen_bool(0.5),
                };
                self.world.table.spawn(pid, foreign);
                self.world.process_started(pid, format!("foreign(gateway={gateway:?})"), Some(starttime));
            }
            self.fresh_pid()
        };
        madsim::time::sleep(Duration::from_millis(rng.gen_range(100..5_000))).await;
        self.launch(slot, restart_pid);
    }

    /// Wedge a gateway's event loop for a while.
    async fn pause(&self, slot: usize, rng: &mut ChaCha8Rng) {
        let (pid, node) = {
            let slots = self.slots.lock().unwrap();
            (slots[slot].pid, slots[slot].node.expect("a launched slot has a node"))
        };
        Handle::current().pause(node);
        self.world.process_paused(pid);
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1_000..90_000))).await;
        if self.world.is_alive(pid) {
            Handle::current().resume(node);
            self.world.process_resumed(pid);
        }
    }
}

/// Crashes and pauses at seeded times.
pub async fn chaos(fleet: Arc<Fleet>) {
    let world = fleet.world.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(derive(world.seed, Stream::Chaos, 0));
    let mut actions: Vec<(u64, bool)> = Vec::new();
    for _ in 0..world.profile.crashes {
        actions.push((rng.gen_range(200..40_000), true));
    }
    for _ in 0..world.profile.pauses {
        actions.push((rng.gen_range(200..40_000), false));
    }
    actions.sort();
    let mut elapsed = 0;
    for (at, crash) in actions {
        madsim::time::sleep(Duration::from_millis(at.saturating_sub(elapsed).max(1))).await;
        elapsed = at.max(elapsed);
        // Most crashes aim at a holder others are waiting on, when one turns up soon.
        let target = if crash && rng.gen_bool(0.7) {
            fleet.await_contended_holder().await
        } else {
            None
        };
        if let Some(slot) = target {
            let pid = fleet.slots.lock().unwrap()[slot].pid;
            world.note(pid, || "chaos: crashing a holder others wait on".into());
        }
        let Some(slot) = target.or_else(|| fleet.pick_running(&mut rng)) else {
            continue;
        };
        if crash {
            fleet.crash(slot, &mut rng).await;
        } else {
            fleet.pause(slot, &mut rng).await;
        }
        elapsed = crate::clock::now_ns() / 1_000_000;
    }
}
