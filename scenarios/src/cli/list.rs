//! `heldlock list`: scenarios, mutants, invariants, fault kinds and sites, stale reasons.

use heldlock::scenario::SCENARIOS;
use heldlock_core::judge::StaleReason;
use heldlock_core::Mutant;
use heldlock_sim::coverage::CORE_FAULT_SITES;
use heldlock_sim::faults::FaultKind;

use super::{Exit, Verdict};
use crate::say;

pub fn cmd() -> Verdict {
    say!("scenarios:");
    for s in SCENARIOS {
        say!("  {:<16} {}", s.name, s.description);
    }
    say!("\nmutants (historical bugs, SPEC §5):");
    for m in Mutant::ALL {
        let reach = if m.simulated() {
            ""
        } else {
            " (FUSE mount only, too rare for `heldlock mutants`' bounds: run it by name)"
        };
        say!("  {:<30} {}{reach}", m.name(), m.description());
    }
    say!("\ninvariants (SPEC §4):");
    for id in heldlock_sim::InvariantId::CHECKED {
        let text = id.description();
        say!("  {:<4} {text}", id.name());
    }
    say!("\nfault kinds:");
    let kinds: Vec<_> = FaultKind::ALL.iter().map(|k| k.name()).collect();
    say!("  {}", kinds.join(", "));
    say!("\nfault sites (operation:path the core uses):");
    let sites: Vec<String> = CORE_FAULT_SITES.iter().map(|s| s.to_string()).collect();
    say!("  {}", sites.join(", "));
    let reasons = [
        StaleReason::MissingPid,
        StaleReason::DeadPid,
        StaleReason::RecycledPid,
        StaleReason::InvalidCreatedAt,
        StaleReason::TooOld,
        StaleReason::HoldExceeded,
        StaleReason::OrphanSelfPid,
        StaleReason::NonOwnerProcess,
    ];
    let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
    say!("\nstale reasons: {}", names.join(", "));
    Ok(Exit::Pass)
}
