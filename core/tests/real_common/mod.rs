//! What the real-adapter tests share: a reclaim recorder and a platform with its own lock state.

use std::sync::{Arc, Mutex};

use heldlock_core::{LockEvent, Observer};

/// Records reclaims as `<reasons>`.
#[derive(Default)]
pub struct Reclaims(pub Mutex<Vec<String>>);

impl Observer for Reclaims {
    fn on_event(&self, event: &LockEvent) {
        if let LockEvent::Reclaimed { reasons, .. } = event {
            let names: Vec<_> = reasons.iter().map(|r| r.name()).collect();
            self.0.lock().unwrap().push(names.join(","));
        }
    }
}

/// The real platform with a `Processes` port of its own: a lock state apart from the other
/// tests of this binary (they share one OS process; each works in its own directory).
pub fn own_platform() -> heldlock_core::Platform {
    let mut platform = heldlock_core::real::platform();
    platform.processes = Arc::new(heldlock_core::real::RealProcesses::new());
    platform
}
