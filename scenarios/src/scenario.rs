//! The named scenarios. `swarm` is the default random campaign: every seed draws its own
//! profile. The others pin a profile around one historical hazard, for focused runs and
//! regression snapshots; the mutant self-test never uses them.

use heldlock_sim::faults::FaultKind;
use heldlock_sim::Profile;

pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    profile: fn(u64) -> Profile,
}

impl Scenario {
    pub fn profile(&self, seed: u64) -> Profile {
        (self.profile)(seed)
    }
}

/// The default random campaign.
pub const DEFAULT_SCENARIO: &str = "swarm";

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "swarm",
        description: "every seed draws its own mix of actors, faults, aborts, crashes and edits",
        profile: Profile::swarm,
    },
    Scenario {
        name: "quiet",
        description: "one gateway, no faults, no aborts: the lock's happy path",
        profile: |_| Profile::quiet(),
    },
    Scenario {
        name: "fence-faults",
        description: "the incident: EIO/EMFILE on transcript stat and read during prompt releases",
        profile: |_| Profile {
            fault_kinds: vec![FaultKind::Eio, FaultKind::Emfile],
            fault_rate: 0.1,
            turns_per_gateway: 5,
            ..Profile::quiet()
        },
    },
    Scenario {
        name: "hung-streams",
        description: "provider streams that hang and ignore the abort, inside and outside write scopes",
        profile: |_| Profile {
            abort_rate: 0.8,
            manual_abort_share: 0.5,
            stream_hang_rate: 0.5,
            retained_stream_rate: 0.7,
            turns_per_gateway: 4,
            ..Profile::quiet()
        },
    },
    Scenario {
        name: "crash-reclaim",
        description: "three gateways on one session, crashes, zombies and pid reuse",
        profile: |_| Profile {
            gateways: 3,
            crashes: 2,
            pid_reuse: true,
            eperm_probes: true,
            turns_per_gateway: 4,
            ..Profile::quiet()
        },
    },
    Scenario {
        name: "reclaim-race",
        description: "four gateways on one session, slow disk, crashes of contended holders",
        profile: |_| Profile {
            gateways: 4,
            crashes: 3,
            max_latency_ms: 40,
            slow_op_rate: 0.1,
            slow_process_factor: 10,
            turns_per_gateway: 5,
            ..Profile::quiet()
        },
    },
    Scenario {
        name: "external-edits",
        description: "external edits of the transcript while its lock is released",
        profile: |_| Profile {
            external_edits: 6,
            external_nonbenign_share: 0.5,
            short_write_rate: 0.5,
            turns_per_gateway: 5,
            ..Profile::quiet()
        },
    },
];

fn names() -> String {
    SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// Look one scenario up by name (`all` is not one).
pub fn find(name: &str) -> Result<&'static Scenario, String> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("unknown scenario '{name}' (known: {})", names()))
}

/// `all` or one name.
pub fn select(name: &str) -> Result<Vec<&'static Scenario>, String> {
    if name == "all" {
        return Ok(SCENARIOS.iter().collect());
    }
    find(name)
        .map(|s| vec![s])
        .map_err(|_| format!("unknown scenario '{name}' (known: {}, or all)", names()))
}
