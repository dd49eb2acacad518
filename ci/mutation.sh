#!/usr/bin/env bash
# Mutation score of the harness: cargo-mutants plants bugs in the lock's logic and the default
# campaign (scenarios/tests/mutation_gate.rs: `heldlock run`, 10 000 seeds of `swarm`) is the only test.
#   ci/mutation.sh [SHARD] [--skip-known] [extra cargo-mutants args]   e.g. ci/mutation.sh 0/8
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
# --skip-known: leave out the mutants ci/mutation-known.txt lists (unviable or equivalent on
# the last full run), which is valid only for the core/src tree it names. cargo-mutants 27.1.0
# applies no --exclude-re (nor --re) to its "delete field" mutant (`controller.rs:817:25`),
# which runs anyway.
skip_args=()
rest=()
for arg in "$@"; do
    if [ "$arg" = --skip-known ]; then
        known=ci/mutation-known.txt
        if [ ! -f "$known" ]; then
            echo "ci/mutation.sh: --skip-known: $known is missing: run without it" >&2
            exit 2
        fi
        want=$(sed -n 's/^core-tree //p' "$known")
        have=$(git rev-parse HEAD:core/src)
        if [ "$want" != "$have" ]; then
            echo "ci/mutation.sh: --skip-known: $known is for core/src tree $want, HEAD's is $have: run without it" >&2
            exit 2
        fi
        if [ -n "$(git status --porcelain -- core/src)" ]; then
            echo "ci/mutation.sh: --skip-known: core/src has local changes (a mutant left in place?): restore it first" >&2
            exit 2
        fi
        while IFS= read -r name; do
            case "$name" in ''|'#'*|core-tree*) continue ;; esac
            skip_args+=(--exclude-re "^$(printf '%s' "$name" | sed 's/[][\.*^$(){}+?|/]/\\&/g')\$")
        done < "$known"
    else
        rest+=("$arg")
    fi
done
set -- ${rest[@]+"${rest[@]}"}
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
cargo mutants "${file_args[@]}" ${shard_args[@]+"${shard_args[@]}"} ${skip_args[@]+"${skip_args[@]}"} "$@" \
    --test-workspace=true --profile mutation \
    --baseline skip --build-timeout 900 --timeout 300 \
    --cargo-arg=--test=mutation_gate -- -- --ignored
