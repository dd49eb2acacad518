//! SimProcs: one process's `Processes` port over the world's process table. The real adapter
//! probes another process by reading its `/proc` files off the async workers, which takes time
//! and can block; here each probe and each gateway check passes the fault plan's `probe:proc`
//! site first — the seed's latency (slower on a slow process), a slow-op stall and, at an
//! active site inside a storm, a hang until the healing — and then reads the table as it is
//! when the wait ends. Meanwhile the lock that names the probed pid may be released or
//! replaced: the window a stale verdict must be re-verified across (SPEC §1 step 3).

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use heldlock_core::memprocs::ProcessView;
use heldlock_core::platform::{BoxFuture, Liveness, Processes};

use crate::faults::{FaultKind, FaultSite};
use crate::world::World;

/// Stalls from this long on are told to the oracle, as `SimFs` does.
const STALL_NOTED_MS: u64 = 100;

pub struct SimProcs {
    /// Weak: the world keeps each process's port (`World::platform_for`).
    world: Weak<World>,
    table: ProcessView,
    pid: u32,
}

impl SimProcs {
    pub fn new(world: &Arc<World>, pid: u32) -> Self {
        SimProcs {
            world: Arc::downgrade(world),
            table: world.table.view(pid),
            pid,
        }
    }

    /// The probe's read of `/proc/<target>/<file>` waits as the fault plan decides.
    async fn gate(&self, target: u32, file: &str) {
        let Some(world) = self.world.upgrade() else {
            return; // the run is over
        };
        let decision = world.faults.decide(FaultSite::PROBE, crate::clock::now_ns() / 1_000_000);
        let factor = if self.pid % 4 == 1 {
            world.profile.slow_process_factor
        } else {
            1
        };
        let stall = decision.latency_ms * factor + decision.slow_ms;
        if stall > 0 {
            if stall >= STALL_NOTED_MS {
                world.fs_stalled(self.pid, stall);
            }
            madsim::time::sleep(Duration::from_millis(stall)).await;
        }
        let path = || PathBuf::from(format!("/proc/{target}/{file}"));
        if decision.fault == Some(FaultKind::Hang) {
            world.fs_fault(self.pid, &decision, FaultKind::Hang, &path());
            world.until_healed().await;
            world.hang_ended(self.pid);
        }
        world.note(self.pid, || format!("proc read {}", path().display()));
    }
}

impl Processes for SimProcs {
    fn own_pid(&self) -> u32 {
        self.pid
    }
    fn own_starttime(&self) -> Option<u64> {
        self.table.own_starttime()
    }
    fn probe(&self, pid: u32) -> BoxFuture<'_, Liveness> {
        Box::pin(async move {
            self.gate(pid, "stat").await;
            self.table.probe_now(pid)
        })
    }
    fn is_gateway(&self, pid: u32) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async move {
            self.gate(pid, "cmdline").await;
            self.table.is_gateway_now(pid)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultPlan;
    use crate::profile::Profile;
    use crate::trace::TraceMode;
    use heldlock_core::memprocs::{ProcEntry, ProcState};

    const HOLDER: u32 = 20;

    /// Runs `test` in a madsim runtime on a world of `profile` with a live gateway `HOLDER`.
    fn in_world(profile: Profile, test: impl FnOnce(Arc<World>) -> BoxFuture<'static, ()> + Send + 'static) {
        let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        rt.block_on(async move {
            let faults = FaultPlan::new(1, &profile);
            let world = World::new(1, "test", profile, faults, None, TraceMode::Off);
            let entry = ProcEntry {
                state: ProcState::Running,
                starttime: Some(7),
                gateway: Some(true),
                probe_denied: false,
            };
            world.table.spawn(HOLDER, entry);
            test(world).await;
        });
    }

    fn now_ms() -> u64 {
        crate::clock::now_ns() / 1_000_000
    }

    #[test]
    fn a_slow_probe_takes_time_and_reads_the_table_when_it_ends() {
        let slow = Profile {
            slow_op_rate: 1.0,
            ..Profile::quiet()
        };
        in_world(slow, |world| {
            Box::pin(async move {
                let procs = Arc::new(SimProcs::new(&world, 10));
                let t0 = now_ms();
                let probe = madsim::task::spawn({
                    let procs = procs.clone();
                    async move { procs.probe(HOLDER).await }
                });
                madsim::time::sleep(Duration::from_millis(100)).await;
                world.table.kill(HOLDER); // the holder exits while it is probed
                assert_eq!(probe.await.unwrap(), Liveness::Dead, "the table as the probe ends");
                assert!(now_ms() - t0 >= 200, "a slow probe stalls 200 ms at least");
            })
        });
    }

    #[test]
    fn a_hung_probe_answers_once_the_world_heals() {
        let hanging = Profile {
            fault_kinds: vec![FaultKind::Hang],
            hang_rate: 1.0,
            storm_share: 1.0,
            site_activation: 1.0,
            ..Profile::quiet()
        };
        in_world(hanging, |world| {
            Box::pin(async move {
                let procs = Arc::new(SimProcs::new(&world, 10));
                let probe = madsim::task::spawn({
                    let procs = procs.clone();
                    async move { procs.is_gateway(HOLDER).await }
                });
                madsim::time::sleep(Duration::from_secs(600)).await;
                assert!(!probe.is_finished(), "a hung probe waits for the healing");
                world.heal();
                assert_eq!(probe.await.unwrap(), Some(true));
                let t0 = now_ms();
                assert!(matches!(procs.probe(HOLDER).await, Liveness::Alive { .. }));
                assert_eq!(now_ms(), t0, "healed: no latency, no hang");
            })
        });
    }
}
