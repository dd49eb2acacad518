//! `Processes` on Linux `/proc` and `kill(pid, 0)`.

use std::fs;

use crate::platform::{Liveness, Processes};

/// [`Processes`] of this Linux machine: liveness by `kill(pid, 0)`, state and start time from
/// `/proc/<pid>/stat`, gateways recognised by a marker in `/proc/<pid>/cmdline`.
pub struct RealProcesses {
    pid: u32,
    /// A process whose command line contains this is a gateway; `None`: unknown for all.
    gateway_marker: Option<String>,
}

impl Default for RealProcesses {
    fn default() -> Self {
        Self::new()
    }
}

impl RealProcesses {
    /// This process; every other process's gateway status unknown.
    pub fn new() -> Self {
        RealProcesses {
            pid: std::process::id(),
            gateway_marker: None,
        }
    }

    /// Judge processes whose command line contains `marker` as gateways, all others as not.
    pub fn with_gateway_marker(marker: impl Into<String>) -> Self {
        RealProcesses {
            gateway_marker: Some(marker.into()),
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

impl Processes for RealProcesses {
    fn own_pid(&self) -> u32 {
        self.pid
    }
    fn own_starttime(&self) -> Option<u64> {
        stat_of(self.pid).map(|(_, st)| st)
    }
    fn probe(&self, pid: u32) -> Liveness {
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
    fn is_gateway(&self, pid: u32) -> Option<bool> {
        let marker = self.gateway_marker.as_ref()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(String::from_utf8_lossy(&cmdline).contains(marker.as_str()))
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
        assert_eq!(procs.probe(procs.own_pid()), Liveness::Alive { starttime: own });
    }
}
