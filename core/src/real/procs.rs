//! `Processes` on Linux `/proc` and `kill(pid, 0)`. Probing another process reads its
//! `/proc` files, which can block (a `cmdline` read waits for the target's memory-map lock), so
//! each probe runs off the async workers under a bound of its own (`blocking`).

use std::fs;
use std::sync::Arc;

use super::blocking::Bound;
use crate::platform::{BoxFuture, Liveness, Processes};

/// Probes in flight at once: the lock makes at most two per acquire pass.
pub const MAX_PROBES_IN_FLIGHT: usize = 16;

/// [`Processes`] of this Linux machine: liveness by `kill(pid, 0)`, state and start time from
/// `/proc/<pid>/stat`, gateways recognised by a marker in `/proc/<pid>/cmdline`.
pub struct RealProcesses {
    pid: u32,
    /// Read once: a process's start time never changes.
    starttime: Option<u64>,
    /// A process whose command line contains this is a gateway; `None`: unknown for all.
    gateway_marker: Option<Arc<str>>,
    probes: Arc<Bound>,
}

impl Default for RealProcesses {
    fn default() -> Self {
        Self::new()
    }
}

impl RealProcesses {
    /// This process; every other process's gateway status unknown.
    pub fn new() -> Self {
        let pid = std::process::id();
        RealProcesses {
            pid,
            starttime: stat_of(pid).map(|(_, st)| st),
            gateway_marker: None,
            probes: Bound::new(MAX_PROBES_IN_FLIGHT),
        }
    }

    /// Judge processes whose command line contains `marker` as gateways, all others as not.
    pub fn with_gateway_marker(marker: impl Into<String>) -> Self {
        RealProcesses {
            gateway_marker: Some(marker.into().into()),
            ..Self::new()
        }
    }
}

/// `(state, starttime)` from the bytes of `/proc/<pid>/stat`: fields 3 and 22, counted after
/// the parenthesised command name. The name is whatever bytes the process chose (not UTF-8,
/// spaces, parentheses), so the fields start after the LAST `)`; they are ASCII.
pub fn parse_proc_stat(stat: &[u8]) -> Option<(char, u64)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3; field 22 is 19 further on.
    let state = fields.next()?.chars().next()?;
    let starttime = fields.nth(18)?.parse().ok()?;
    Some((state, starttime))
}

fn stat_of(pid: u32) -> Option<(char, u64)> {
    parse_proc_stat(&fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// `kill(pid, 0)`, then `/proc/<pid>/stat` (blocking).
fn probe_now(pid: u32) -> Liveness {
    let Ok(raw) = i32::try_from(pid) else {
        return Liveness::Dead;
    };
    // SAFETY: kill with signal 0 only checks that the pid exists and may be signalled.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc != 0 {
        return match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM) => Liveness::PermissionDenied {
                starttime: stat_of(pid).map(|(_, starttime)| starttime),
            },
            _ => Liveness::Dead,
        };
    }
    match stat_of(pid) {
        Some(('Z', _)) | Some(('X', _)) => Liveness::Zombie,
        Some((_, starttime)) => Liveness::Alive {
            starttime: Some(starttime),
        },
        None => Liveness::Alive { starttime: None },
    }
}

/// Whether `/proc/<pid>/cmdline` contains `marker` (blocking); `None` when unreadable.
fn cmdline_has(pid: u32, marker: &str) -> Option<bool> {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&cmdline).contains(marker))
}

impl Processes for RealProcesses {
    fn own_pid(&self) -> u32 {
        self.pid
    }
    fn own_starttime(&self) -> Option<u64> {
        self.starttime
    }
    /// Past the bound on probes in flight (every slot held by a hung `/proc` read), the pid
    /// counts as alive with nothing more known: its lock is not removed, and the acquire asks
    /// again at its next poll.
    fn probe(&self, pid: u32) -> BoxFuture<'_, Liveness> {
        let probe = self.probes.run("heldlock-proc", move || Ok(probe_now(pid)));
        Box::pin(async move { probe.await.unwrap_or(Liveness::Alive { starttime: None }) })
    }
    fn is_gateway(&self, pid: u32) -> BoxFuture<'_, Option<bool>> {
        let Some(marker) = self.gateway_marker.clone() else {
            return Box::pin(std::future::ready(None));
        };
        let read = self.probes.run("heldlock-proc", move || Ok(cmdline_has(pid, &marker)));
        Box::pin(async move { read.await.ok().flatten() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[u8] = b" S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";

    #[test]
    fn parses_state_and_starttime_past_a_tricky_name() {
        let text = [b"4242 (a) b (c))".as_slice(), FIELDS].concat();
        assert_eq!(parse_proc_stat(&text), Some(('S', 987654)));
    }

    #[test]
    fn parses_past_a_name_that_is_not_utf8() {
        let text = [b"4242 (\xff\xfe) (\x80".as_slice(), b")", FIELDS].concat();
        assert_eq!(parse_proc_stat(&text), Some(('S', 987654)));
        assert_eq!(parse_proc_stat(b"4242 (x) S 1"), None, "too few fields");
        assert_eq!(parse_proc_stat(b"4242 no parens"), None);
    }

    #[test]
    fn own_process_is_alive_with_its_starttime() {
        let procs = RealProcesses::new();
        let own = procs.own_starttime();
        assert!(own.is_some());
        let probed = futures::executor::block_on(procs.probe(procs.own_pid()));
        assert_eq!(probed, Liveness::Alive { starttime: own });
        assert_eq!(own, stat_of(procs.own_pid()).map(|(_, st)| st), "cached as /proc says");
    }
}
