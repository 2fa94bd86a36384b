#!/usr/bin/env bash
# Runs every benchmark (tests/bench/bench-*.sh), each printing the comparison it measures.
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob
benches=(tests/bench/bench-*.sh)
if [ ${#benches[@]} -eq 0 ]; then
  echo "bench: no benchmarks yet"
  exit 0
fi
for b in "${benches[@]}"; do
  echo "== $b"
  bash "$b"
done
