//! heldlock-sim: the simulated world of one seed on madsim — filesystem with faults, processes
//! that crash, wedge and get their pids reused, gateways running turns, and the oracle.
//!
//! One seed: `runner::run_seed` → `World` (disk, process table, `FaultPlan`) → `Fleet` of
//! gateway nodes running `workload::gateway` turns on `heldlock-core` over `SimFs` and
//! `SimProcs` → every event to the `Oracle` and the `Trace` → quiescence → `SeedReport`.

pub mod actors;
pub mod clock;
pub mod coverage;
pub mod faults;
pub mod fleet;
pub mod litter;
pub mod lock_races;
pub mod lookup_cache;
pub mod oracle;
pub mod plugin;
pub mod profile;
pub mod racing;
pub mod report;
pub mod runner;
pub mod seed;
pub mod simfs;
pub mod simprocs;
pub mod trace;
pub mod wallclock;
pub mod witness;
pub mod workload;
pub mod world;

pub use faults::{FaultKind, FaultPlan, FaultSite};
pub use oracle::InvariantId;
pub use profile::Profile;
pub use report::{SeedReport, Violation};
pub use runner::{run_seed, RunConfig};
pub use seed::Seed;
pub use trace::TraceMode;
