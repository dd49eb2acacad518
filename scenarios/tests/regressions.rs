//! The committed regressions (`regressions/seeds.txt`): every recorded seed must keep its
//! verdict — a mutant seed still breaks its invariant, a `none` seed passes on the fixed core.
//! Add one with `heldlock regressions add --from-store`.

use std::path::Path;

use heldlock::regressions;

#[test]
fn every_committed_regression_keeps_its_verdict() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../").join(regressions::DEFAULT_FILE);
    let entries = regressions::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(!entries.is_empty(), "{} lists no seeds", file.display());
    let changed: Vec<String> = entries.iter().filter_map(|r| regressions::check(r).err()).collect();
    assert!(changed.is_empty(), "regressions changed their verdict:\n{}", changed.join("\n"));
}
