#!/usr/bin/env bash
# The micro-benchmarks of docs/benchmarks.md (parser and store, no sockets): runs
# `cargo bench --bench micro` and keeps its output in docs/results/micro/ (RESULTS_DIR
# overrides docs/results; RESULTS_DIR= keeps nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo bench --bench micro | tee "$out"
if [ -n "${RESULTS_DIR-docs/results}" ]; then
    RESULTS_CMD="bench/micro.sh" python3 bench/results.py save micro output.txt < "$out"
fi
