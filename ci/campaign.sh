#!/usr/bin/env bash
# One shard of a long campaign, for a CI matrix (GitHub Actions matrix, Buildkite parallelism,
# Kubernetes indexed Jobs). Usage: ci/campaign.sh SHARD_INDEX SHARD_COUNT [SEEDS]
#   SHARD_INDEX is 1-based. Writes shard-K.json (for `heldlock merge`) and shard-K.xml (JUnit).
#   The failure store is .heldlock/failures.jsonl (or $HELDLOCK_STORE): its seeds of this shard
#   run first, and new failures are appended to it before they are printed.
# Exit 1 when a seed fails (each prints its replay command), 2 on bad usage or unwritable output.
set -euo pipefail
k="${1:?shard index (1-based)}"
n="${2:?shard count}"
seeds="${3:-200000}"
cd "$(dirname "$0")/.."
cargo build --release -p heldlock
./target/release/heldlock run --seeds "$seeds" --shard "$k/$n" \
    --json "shard-$k.json" --junit "shard-$k.xml" --quiet
