//! The production incident's shape, read off a replay: a controller leaks its lock, the next
//! turn of that process fails with SessionWriteLockTimeoutError, and only the watchdog frees
//! the lock, maxHoldMs (1 020 000 ms) to maxHoldMs + one 60 s tick after the leak.

use heldlock_sim::trace::format_time;

use crate::campaign::line_time_ns;
use heldlock_sim::SeedReport;
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeakConsequence {
    /// When the leak was detected (the first violation), ns.
    pub leak_ns: u64,
    /// The next turn's timeout line.
    pub timeout_line: String,
    /// The watchdog's release line.
    pub watchdog_line: String,
    /// Milliseconds from the leak to the watchdog's release.
    pub freed_after_ms: u64,
}

impl std::fmt::Display for LeakConsequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "leak at {}; next turn: {}; freed by the watchdog {} ms after the leak",
            format_time(self.leak_ns).trim(),
            self.timeout_line.trim(),
            self.freed_after_ms
        )
    }
}

/// The leak's consequence, when the replay shows it: in the leaking process, a lock timeout
/// after the leak and a watchdog release after that.
pub fn leak_consequence(report: &SeedReport) -> Option<LeakConsequence> {
    let leak = report.first_violation()?;
    let pid = format!("p{}", leak.pid?);
    let after = |line: &&String| line_time_ns(line).is_some_and(|t| t >= leak.at_ns);
    let ours = |line: &&String| line.split_whitespace().nth(1) == Some(pid.as_str());
    let timeout = report
        .trace
        .iter()
        .filter(after)
        .filter(ours)
        .find(|l| l.contains("SessionWriteLockTimeoutError"))?;
    let watchdog = report
        .trace
        .iter()
        .filter(after)
        .filter(ours)
        .find(|l| l.contains("watchdog force-released"))?;
    let freed = line_time_ns(watchdog)?;
    Some(LeakConsequence {
        leak_ns: leak.at_ns,
        timeout_line: timeout.clone(),
        watchdog_line: watchdog.clone(),
        freed_after_ms: (freed - leak.at_ns) / 1_000_000,
    })
}
