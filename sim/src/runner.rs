//! Run one seed: build the world, start the actors, let the simulation run to quiescence, and
//! hand back the oracle's verdict.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use heldlock_core::Mutant;

use crate::actors::{external_writer, lock_planter, lock_tamperer, recovery_tamperer, transcript_tamperer};
use crate::faults::FaultPlan;
use crate::fleet::{chaos, Fleet};
use crate::oracle::LIVENESS_BOUND_MS;
use crate::profile::Profile;
use crate::report::SeedReport;
use crate::seed::{derive, Stream};
use crate::trace::TraceMode;
use crate::wallclock::clock_stepper;
use crate::world::{World, ALIAS_DIR, SESSION_DIR};

/// The chaos window (work, faults, crashes, pauses, external edits) is checked every
/// simulated second and ends when the work is done, at the latest here.
const WORK_TICK_MS: u64 = 1_000;
const MAX_WORK_MS: u64 = 40 * 60_000;
/// The liveness phase is checked every 5 s and lasts at most the I16 bound and two ticks.
const LIVENESS_TICK_MS: u64 = 5_000;
const MAX_LIVENESS_TICKS: u64 = LIVENESS_BOUND_MS / LIVENESS_TICK_MS + 2;

/// How to run a seed.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub scenario: String,
    pub profile: Profile,
    pub mutant: Option<Mutant>,
    pub trace: TraceMode,
    /// Stop at the first violation (campaigns); replays run to the end.
    pub stop_at_violation: bool,
    /// Only these faults fire (the shrinker); `None`: the profile decides.
    pub only_faults: Option<std::collections::BTreeSet<(crate::faults::FaultSite, u64)>>,
}

impl RunConfig {
    pub fn new(scenario: impl Into<String>, profile: Profile) -> Self {
        RunConfig {
            scenario: scenario.into(),
            profile,
            mutant: None,
            trace: TraceMode::Off,
            stop_at_violation: true,
            only_faults: None,
        }
    }

    pub fn mutant(mut self, mutant: Option<Mutant>) -> Self {
        self.mutant = mutant;
        self
    }

    pub fn trace(mut self, trace: TraceMode) -> Self {
        self.trace = trace;
        self
    }

    pub fn only_faults(mut self, only: std::collections::BTreeSet<(crate::faults::FaultSite, u64)>) -> Self {
        self.only_faults = Some(only);
        self
    }

    pub fn stop_at_violation(mut self, stop: bool) -> Self {
        self.stop_at_violation = stop;
        self
    }
}

/// Run `seed` to its verdict. Deterministic: the same seed, config and binary give the same
/// report and trace.
///
/// A panic inside the simulation (an assertion of the core or the harness) is a finding too:
/// it comes back as a violation named `assert`, and the campaign goes on.
pub fn run_seed(seed: u64, config: &RunConfig) -> SeedReport {
    let run = {
        let config = config.clone();
        move || {
            let rt = madsim::runtime::Runtime::with_seed_and_config(
                derive(seed, Stream::Madsim, 0),
                madsim::Config::default(),
            );
            rt.block_on(async move { simulate(seed, config).await })
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        SeedReport {
            seed,
            scenario: config.scenario.clone(),
            profile: config.profile.summary(),
            violations: vec![crate::report::Violation {
                invariant: crate::oracle::InvariantId::Assert,
                detail: format!("the simulation panicked: {message}"),
                pid: None,
                lock: None,
                at_ns: 0,
            }],
            ..SeedReport::default()
        }
    })
}

async fn simulate(seed: u64, config: RunConfig) -> SeedReport {
    let mut faults = FaultPlan::new(seed, &config.profile);
    if let Some(only) = config.only_faults.clone() {
        faults = faults.restricted_to(only);
    }
    let world =
        World::new(seed, &config.scenario, config.profile.clone(), faults, config.mutant, config.trace);
    set_up_disk(&world);
    let fleet = Fleet::new(world.clone());
    for _ in 0..world.profile.gateways {
        fleet.start_gateway();
    }
    let external = madsim::task::spawn(external_writer(world.clone()));
    // The wider world's actors stop on their own at the healing (their acts in flight end).
    drop(madsim::task::spawn(transcript_tamperer(world.clone())));
    if world.profile.recovery_tampering > 0 {
        // Only where it acts: a task spawned changes every later scheduling draw of the seed.
        drop(madsim::task::spawn(recovery_tamperer(world.clone())));
    }
    if world.profile.racing_edits > 0 {
        drop(madsim::task::spawn(crate::racing::restorer(world.clone())));
    }
    drop(madsim::task::spawn(lock_planter(world.clone())));
    drop(madsim::task::spawn(lock_tamperer(world.clone())));
    drop(madsim::task::spawn(clock_stepper(world.clone())));
    let chaos = madsim::task::spawn(chaos(fleet.clone()));

    let mut stopped = false;
    for _ in 0..MAX_WORK_MS / WORK_TICK_MS {
        madsim::time::sleep(Duration::from_millis(WORK_TICK_MS)).await;
        world.tick();
        if config.stop_at_violation && world.violated() {
            stopped = true;
            break;
        }
        if fleet.running() == 0 && chaos.is_finished() {
            break;
        }
    }
    if !stopped {
        chaos.abort();
        external.abort();
        liveness_phase(&world, &fleet, config.stop_at_violation).await;
    }
    let report = world.finish();
    fleet.kill_all();
    madsim::time::sleep(Duration::from_millis(1)).await;
    report
}

/// TigerBeetle's liveness mode: heal the world (faults off, hung ops and streams end, paused
/// processes resume), start a fresh prober on every session, and tick until every session
/// is proven live, the gateways are done and no lock is held — or the I16 bound has passed
/// (a leaked lock keeps the run going until the watchdog frees it, as I13 requires).
async fn liveness_phase(world: &World, fleet: &Arc<Fleet>, stop_at_violation: bool) {
    world.heal();
    fleet.resume_all();
    fleet.start_prober();
    for _ in 0..MAX_LIVENESS_TICKS {
        madsim::time::sleep(Duration::from_millis(LIVENESS_TICK_MS)).await;
        world.tick();
        if stop_at_violation && world.violated() {
            break;
        }
        if fleet.running() == 0 && world.settled() {
            break;
        }
    }
}

fn set_up_disk(world: &World) {
    let disk = &world.disk;
    disk.create_dir_all(Path::new(SESSION_DIR)).expect("fresh disk");
    disk.symlink_dir(Path::new(SESSION_DIR), Path::new(ALIAS_DIR)).expect("fresh disk");
    let view = disk.view(0, usize::MAX);
    for i in 0..world.profile.sessions {
        let path = world.session_path(i, false);
        let header = format!("{{\"type\":\"session\",\"id\":\"s{i}\"}}\n").into_bytes();
        view.write_path_now(&path, &header, true).expect("fresh disk");
        world.transcript_created(&path, &header);
    }
}
