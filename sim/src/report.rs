//! What one seed produced: violations, counts, coverage, and (when asked) its trace.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::coverage::Coverage;
use crate::oracle::InvariantId;
use crate::trace::format_time;

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: InvariantId,
    pub detail: String,
    pub pid: Option<u32>,
    pub lock: Option<PathBuf>,
    /// Simulated time, ns.
    pub at_ns: u64,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.invariant, format_time(self.at_ns))?;
        if let Some(pid) = self.pid {
            write!(f, " p{pid}")?;
        }
        if let Some(lock) = &self.lock {
            write!(f, " {}", lock.display())?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of one seed.
#[derive(Clone, Debug, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub scenario: String,
    pub profile: String,
    pub violations: Vec<Violation>,
    /// Per violation (when the run recorded its trace): how many trace lines came before it
    /// was found — its excerpt ends there, whatever the timestamps say.
    pub violation_lines: Vec<usize>,
    /// Lock, controller and fs events seen.
    pub events: u64,
    /// Faults fired, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    pub coverage: Coverage,
    /// Simulated time at the end, ns.
    pub sim_ns: u64,
    /// The actors of the run (`p101=gw0#1` …).
    pub actors: Vec<String>,
    /// The whole trace, when the run recorded it.
    pub trace: Vec<String>,
    /// Every fault that fired, in order: (site, occurrence, kind).
    pub fired: Vec<(crate::faults::FaultSite, u64, crate::faults::FaultKind)>,
}

impl SeedReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }
}
