//! A plugin embedded in a gateway process (a usage-accounting plugin that appends `usage`
//! lines under the file lock alone, SPEC §1). It calls `ProcessLocks::new` itself, over a
//! platform that shares the process's `Processes` port: the core hands it the gateway's live
//! lock state (ownership is process-wide, issue 6 defect 11), so its acquires and releases are
//! the process's own. Should it ever build a table of its own (no gateway table yet), that
//! table's events reach the oracle with handle and acquire ids moved apart.

use std::sync::Arc;
use std::time::Duration;

use heldlock_core::event::{HandleId, LockEvent};
use heldlock_core::{LockOptions, ProcessLocks};
use rand::Rng;

use crate::seed::{world_rng, WorldDraw};
use crate::world::World;

/// Ids of the plugin's table start here: far above anything the gateway's table hands out.
const ID_OFFSET: u64 = 1 << 40;
/// Writes per plugin incarnation.
const MAX_WRITES: u32 = 8;

/// The plugin table's event with its ids moved apart (only lock-table events come from it).
pub fn remap<'a>(ev: &LockEvent<'a>) -> LockEvent<'a> {
    let h = |id: HandleId| HandleId(id.0 + ID_OFFSET);
    match ev.clone() {
        LockEvent::AcquireStart {
            acquire,
            lock,
            timeout_ms,
        } => LockEvent::AcquireStart {
            acquire: acquire + ID_OFFSET,
            lock,
            timeout_ms,
        },
        LockEvent::Acquired {
            acquire,
            handle,
            lock,
            ino,
            max_hold_ms,
        } => LockEvent::Acquired {
            acquire: acquire + ID_OFFSET,
            handle: h(handle),
            lock,
            ino,
            max_hold_ms,
        },
        LockEvent::AcquireFailed {
            acquire,
            lock,
            refusal,
            error,
        } => LockEvent::AcquireFailed {
            acquire: acquire + ID_OFFSET,
            lock,
            refusal,
            error,
        },
        LockEvent::ReleaseBegin { handle, lock, by } => LockEvent::ReleaseBegin {
            handle: h(handle),
            lock,
            by,
        },
        LockEvent::ReleaseEnd {
            handle,
            lock,
            unlinked,
            errno,
        } => LockEvent::ReleaseEnd {
            handle: h(handle),
            lock,
            unlinked,
            errno,
        },
        LockEvent::HandleLost {
            handle,
            lock,
            held_ms,
            cause,
        } => LockEvent::HandleLost {
            handle: h(handle),
            lock,
            held_ms,
            cause,
        },
        other => other,
    }
}

/// The plugin of process `pid`: now and then, a `usage` line under a short file lock.
pub async fn plugin(world: Arc<World>, pid: u32, incarnation: u32) {
    let platform = world.platform_for_plugin(pid);
    let mut rng = world_rng(world.seed, WorldDraw::Plugin, u64::from(pid) << 16 | u64::from(incarnation));
    let opts = LockOptions {
        timeout_ms: 10_000,
        ..LockOptions::default()
    };
    let mut locks: Option<Arc<ProcessLocks>> = None;
    for _ in 0..rng.gen_range(2..=MAX_WRITES) {
        madsim::time::sleep(Duration::from_millis(rng.gen_range(1_000..30_000))).await;
        // After the first sleep the gateway has made the process's lock state: the plugin's
        // `ProcessLocks::new` returns it (ownership is process-wide, issue 6 defect 11). Only
        // a table it made itself gets a watchdog of its own.
        let locks = locks.get_or_insert_with(|| {
            let made = ProcessLocks::with_mutant(platform.clone(), world.mutant);
            if Arc::ptr_eq(&made.platform().observer, &platform.observer) {
                made.start_watchdog();
            }
            made
        });
        let session = world.session_path(rng.gen_range(0..world.profile.sessions), false);
        match locks.acquire(&session, opts).await {
            Ok(handle) => {
                let line = b"{\"type\":\"usage\",\"from\":\"plugin\"}\n";
                let _ = platform.fs.append(&session, line).await;
                let _ = locks.release(&handle).await;
            }
            Err(e) => world.note(pid, || format!("plugin: no lock on {}: {e}", session.display())),
        }
    }
    // The plugin lives as long as its process: its hold on the table stays.
    let _alive = locks;
    std::future::pending::<()>().await;
}
