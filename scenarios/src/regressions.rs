//! Regressions that live in the repository, as proptest keeps `proptest-regressions/`: a
//! reviewable text file of seeds that once broke an invariant. `cargo test` replays each
//! (`scenarios/tests/regressions.rs`); `heldlock regressions add --from-store` appends the
//! failures of a failure store.

use std::path::Path;

use heldlock_core::Mutant;
use heldlock_sim::run_seed;
use heldlock_sim::{InvariantId, RunConfig};

use crate::scenario;
use crate::store::StoredFailure;

/// The file, relative to the repository root.
pub const DEFAULT_FILE: &str = "regressions/seeds.txt";

/// What a new file starts with.
const HEADER: &str = "\
# heldlock regressions: seeds that once broke an invariant. `cargo test` replays each one
# (scenarios/tests/regressions.rs). With a mutant, the seed must still break the invariant
# with that historical bug switched on; with `none`, it must pass on the fixed core.
# Add a store's failures: heldlock regressions add --from-store [STORE ...]
#
# scenario  seed  mutant-or-none  invariant
";

/// One recorded seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regression {
    pub scenario: String,
    pub seed: u64,
    pub mutant: Option<String>,
    /// The invariant it broke when it was recorded.
    pub invariant: InvariantId,
}

impl Regression {
    pub fn line(&self) -> String {
        let mutant = self.mutant.as_deref().unwrap_or("none");
        format!("{} {} {mutant} {}", self.scenario, self.seed, self.invariant)
    }

    fn same_seed(&self, other: &Regression) -> bool {
        (&self.scenario, self.seed, &self.mutant) == (&other.scenario, other.seed, &other.mutant)
    }

    pub fn from_stored(f: &StoredFailure) -> Self {
        Regression {
            scenario: f.scenario.clone(),
            seed: f.seed,
            mutant: f.mutant.clone(),
            invariant: f.invariant,
        }
    }
}

/// Parse the file's text; errors name the line.
pub fn parse(text: &str) -> Result<Vec<Regression>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| format!("line {}: {why}: '{line}'", i + 1);
        let [scenario, seed, mutant, invariant] = fields[..] else {
            return Err(bad("expected: scenario seed mutant-or-none invariant"));
        };
        out.push(Regression {
            scenario: scenario.to_owned(),
            seed: seed.parse().map_err(|_| bad("malformed seed"))?,
            mutant: (mutant != "none").then(|| mutant.to_owned()),
            invariant: invariant.parse().map_err(|e: String| bad(&e))?,
        });
    }
    Ok(out)
}

/// Read and parse a regressions file.
pub fn load(path: &Path) -> Result<Vec<Regression>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Append the regressions the file lacks (created with its header if absent); returns those
/// added. One write of the new lines: a reviewer sees them as one diff hunk.
pub fn add(path: &Path, new: &[Regression]) -> Result<Vec<Regression>, String> {
    let existing = if path.exists() { load(path)? } else { Vec::new() };
    let mut added: Vec<Regression> = Vec::new();
    for r in new {
        if !existing.iter().chain(&added).any(|e| e.same_seed(r)) {
            added.push(r.clone());
        }
    }
    let mut text = if path.exists() {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    } else {
        HEADER.to_owned()
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for r in &added {
        text.push_str(&r.line());
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(added)
}

/// Replay one regression; `Err` says how its verdict changed.
pub fn check(r: &Regression) -> Result<(), String> {
    let scenario = scenario::find(&r.scenario)?;
    let mutant = r.mutant.as_deref().map(str::parse::<Mutant>).transpose()?;
    let config = RunConfig::new(scenario.name, scenario.profile(r.seed)).mutant(mutant);
    let report = run_seed(r.seed, &config);
    let replay = crate::campaign::reproduce_command(scenario.name, r.seed, mutant);
    match (mutant, report.first_violation()) {
        (Some(_), Some(v)) if v.invariant == r.invariant => Ok(()),
        (Some(m), Some(v)) => Err(format!(
            "{}: {m} now breaks {} instead of {}: {v}; {replay}",
            r.line(),
            v.invariant,
            r.invariant
        )),
        (Some(m), None) => Err(format!("{}: {m} is no longer caught by this seed; {replay}", r.line())),
        (None, None) => Ok(()),
        (None, Some(v)) => Err(format!("{}: the fixed core fails again: {v}; {replay}", r.line())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_bad_lines_are_named() {
        let text = "# c\n\nswarm 7 none I3\nquiet 9 m3-fence-read-leak I3\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed[0].mutant, None);
        assert_eq!(parsed[1].line(), "quiet 9 m3-fence-read-leak I3");
        assert!(parse("swarm x none I3").unwrap_err().contains("line 1: malformed seed"));
        assert!(parse("swarm 1 none").unwrap_err().contains("line 1"));
    }

    #[test]
    fn add_appends_only_what_is_new_and_check_judges_both_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regressions/seeds.txt");
        let r = |seed, mutant: Option<&str>, inv: &str| Regression {
            scenario: "quiet".into(),
            seed,
            mutant: mutant.map(str::to_owned),
            invariant: inv.parse().unwrap(),
        };
        assert_eq!(add(&path, &[r(1, None, "I3"), r(1, None, "I3")]).unwrap().len(), 1);
        assert_eq!(add(&path, &[r(1, None, "I3"), r(2, None, "I1")]).unwrap().len(), 1);
        assert_eq!(load(&path).unwrap().len(), 2);
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("# heldlock regressions"));
        // The quiet scenario passes on the fixed core: a `none` entry holds.
        assert_eq!(check(&r(1, None, "I3")), Ok(()));
        // And a mutant entry that no longer breaks is a failure that says so.
        let err = check(&r(1, Some("m5-deferred-release-lost"), "I3")).unwrap_err();
        assert!(err.contains("no longer caught") || err.contains("instead of"), "{err}");
    }
}
