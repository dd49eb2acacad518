#!/usr/bin/env bash
# Mutation score of the harness: cargo-mutants plants bugs in the lock's logic and the default
# campaign (scenarios/tests/mutation_gate.rs: `heldlock run`, 10 000 seeds of `swarm`) is the only test.
#   ci/mutation.sh [SHARD] [extra cargo-mutants args]   e.g. ci/mutation.sh 0/8
# SHARD is round-robin (k/n, k from 0), so shard 0/8 is every 8th mutant. A full run is ~360
# mutants; on 2 cores budget about a minute each. Results land in mutants.out/: caught.txt
# (the campaign went red), missed.txt (it stayed green — list each in BENCHMARKS.md as
# equivalent, saying why, or close it by a world or oracle change), unviable.txt, timeout.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
version=27.1.0
if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $version" ]; then
    cargo install cargo-mutants --locked --version "$version"
fi
shard_args=()
# Only a K/N first argument is a shard: `ci/mutation.sh --in-place` runs them all, in place.
if [[ "${1:-}" =~ ^[0-9]+/[0-9]+$ ]]; then
    shard_args=(--shard "$1" --sharding round-robin)
    shift
fi
# --cargo-arg (not --cargo-test-arg) so the build phase too (`cargo test --no-run`) builds the
# gate alone: without it every mutant rebuilt every test binary of the workspace (~6 min).
# cargo-mutants 27.1.0 runs its baseline on the mutated package's tests only (it ignores
# --test-workspace there), so the gate's own baseline runs here, and cargo-mutants skips its.
echo "== baseline: the gate passes on the unmutated tree"
cargo test --profile mutation -p heldlock --test mutation_gate -- --ignored
files=(file_lock controller fence judge payload owner)
file_args=()
for f in "${files[@]}"; do file_args+=(-f "core/src/$f.rs"); done
cargo mutants "${file_args[@]}" "${shard_args[@]}" "$@" \
    --test-workspace=true --profile mutation \
    --baseline skip --build-timeout 900 --timeout 300 \
    --cargo-arg=--test=mutation_gate -- -- --ignored
