use heldlock_sim::{run_seed, Profile, RunConfig, TraceMode};

#[test]
fn smoke() {
    let mut failed = 0;
    let start = std::time::Instant::now();
    for seed in 0..200u64 {
        let cfg = RunConfig::new("swarm", Profile::swarm(seed));
        let r = run_seed(seed, &cfg);
        if !r.passed() {
            failed += 1;
            if failed < 6 {
                println!("seed {seed}: {}", r.violations[0]);
                println!("  {}", r.profile);
            }
        }
    }
    println!("failed {failed} in {:?}", start.elapsed());
    let tseed: u64 = std::env::var("TSEED").map(|s| s.parse().unwrap()).unwrap_or(3);
    let r = run_seed(tseed, &RunConfig::new("swarm", Profile::swarm(tseed)).trace(TraceMode::Full).stop_at_violation(false));
    for l in r.trace.iter() { println!("{l}"); }
    for v in &r.violations { println!("VIOLATION {v}"); }
    println!("... {} lines, events {}", r.trace.len(), r.events);
}
