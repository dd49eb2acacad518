//! heldlock: named scenarios, campaigns over many seeds, the failure store, the mutant
//! self-test and the determinism check — everything the `heldlock` CLI drives.

pub mod bench;
pub mod campaign;
pub mod ci_report;
pub mod determinism;
pub mod incident;
pub mod mutants;
pub mod parity;
pub mod pool;
pub mod real_chaos;
pub mod regressions;
pub mod scenario;
pub mod shards;
pub mod shrink;
pub mod store;
