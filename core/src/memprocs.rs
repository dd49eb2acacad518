//! An in-memory process table: the machine's pids with their start times, liveness, and
//! whether each is a gateway. Tests and the simulator give each process a `ProcessView`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::platform::{BoxFuture, Liveness, Processes};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Running,
    Zombie,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    pub state: ProcState,
    pub starttime: Option<u64>,
    /// `None`: the judge cannot tell what it is.
    pub gateway: Option<bool>,
    /// Probes of this pid are refused with EPERM.
    pub probe_denied: bool,
}

/// The pids of one machine. A pid absent from the table is dead.
#[derive(Default)]
pub struct ProcessTable {
    procs: Mutex<BTreeMap<u32, ProcEntry>>,
}

impl ProcessTable {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Start (or reuse) `pid`.
    pub fn spawn(&self, pid: u32, entry: ProcEntry) {
        self.procs.lock().unwrap().insert(pid, entry);
    }

    /// The process died and was reaped.
    pub fn kill(&self, pid: u32) {
        self.procs.lock().unwrap().remove(&pid);
    }

    /// The process died but was not reaped.
    pub fn zombify(&self, pid: u32) {
        if let Some(p) = self.procs.lock().unwrap().get_mut(&pid) {
            p.state = ProcState::Zombie;
        }
    }

    pub fn get(&self, pid: u32) -> Option<ProcEntry> {
        self.procs.lock().unwrap().get(&pid).copied()
    }

    /// The view of the process `pid`.
    pub fn view(self: &Arc<Self>, pid: u32) -> ProcessView {
        ProcessView {
            table: self.clone(),
            pid,
        }
    }
}

/// One process's `Processes`.
#[derive(Clone)]
pub struct ProcessView {
    table: Arc<ProcessTable>,
    pid: u32,
}

impl ProcessView {
    /// What a probe of `pid` finds in the table now.
    pub fn probe_now(&self, pid: u32) -> Liveness {
        match self.table.get(pid) {
            None => Liveness::Dead,
            Some(p) if p.probe_denied && pid != self.pid => Liveness::PermissionDenied {
                starttime: p.starttime,
            },
            Some(ProcEntry {
                state: ProcState::Zombie,
                ..
            }) => Liveness::Zombie,
            Some(p) => Liveness::Alive {
                starttime: p.starttime,
            },
        }
    }

    /// Whether the table says `pid` is a gateway, now.
    pub fn is_gateway_now(&self, pid: u32) -> Option<bool> {
        self.table.get(pid).and_then(|p| p.gateway)
    }
}

/// An in-memory table answers at once.
impl Processes for ProcessView {
    fn own_pid(&self) -> u32 {
        self.pid
    }
    fn own_starttime(&self) -> Option<u64> {
        self.table.get(self.pid).and_then(|p| p.starttime)
    }
    fn probe(&self, pid: u32) -> BoxFuture<'_, Liveness> {
        Box::pin(std::future::ready(self.probe_now(pid)))
    }
    fn is_gateway(&self, pid: u32) -> BoxFuture<'_, Option<bool>> {
        Box::pin(std::future::ready(self.is_gateway_now(pid)))
    }
}
