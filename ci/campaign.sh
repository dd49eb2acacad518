#!/usr/bin/env bash
# One shard of a long campaign, for a CI matrix (GitHub Actions matrix, Buildkite parallelism,
# Kubernetes indexed Jobs). Usage: ci/campaign.sh SHARD_INDEX SHARD_COUNT [SEEDS]
#   SHARD_INDEX is 1-based. Writes shard-K.json; merge them with `heldlock merge shard-*.json`.
# Exit 1 when a seed fails; its replay command is printed and it is saved to .heldlock/.
set -euo pipefail
k="${1:?shard index (1-based)}"
n="${2:?shard count}"
seeds="${3:-200000}"
cd "$(dirname "$0")/.."
cargo build --release -p heldlock
./target/release/heldlock run --seeds "$seeds" --shard "$k/$n" --json "shard-$k.json" --quiet
