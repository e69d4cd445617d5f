#!/usr/bin/env bash
# Forwarding at -t 2 (docs/benchmarks.md): glommio's membarrier per park against the fences
# that replaced it, side by side. Four targets in alternating rounds, pipeline 1, plaintext,
# the matrix workload: BEFORE (a tessera built before commit 0e1ec8a, -t 2), the current
# tessera -t 2, the current tessera -t 1 pinned to CPU 1, and memcached -t 2.
#
#   BEFORE=/path/to/old/tessera bench/forwarding_t2.sh
# Build BEFORE with: git worktree add /tmp/tessera-before 0e1ec8a^ &&
#   (cd /tmp/tessera-before && cargo build --release --bin tessera)
# Environment: TIME (per round, default 5s), ROUNDS (default 5), MEMCACHED, NOBUILD.
# Keeps the table and tessera-bench's JSON in docs/results/forwarding-t2/ (RESULTS_DIR
# overrides docs/results; RESULTS_DIR= keeps nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to a tessera binary built before commit 0e1ec8a}"
TIME=${TIME:-5s}
ROUNDS=${ROUNDS:-5}
MEMCACHED=${MEMCACHED:-memcached}
if [ -z "${NOBUILD:-}" ]; then
    cargo build --release -p tessera -p tessera-bench
fi
. bench/lib.sh  # free_port, wait_port

bench_scratch  # $tmp and pids, cleaned up on exit (bench/lib.sh)
user_args=()
[ "$(id -u)" -eq 0 ] && user_args=(-u nobody)

p1=$(free_port); p2=$(free_port); p3=$(free_port); p4=$(free_port)
"$BEFORE" -t 2 -p "$p1" -l 127.0.0.1 & pids+=($!); pid1=$!
target/release/tessera -t 2 -p "$p2" -l 127.0.0.1 & pids+=($!); pid2=$!
taskset -c 1 target/release/tessera -t 1 -p "$p3" -l 127.0.0.1 & pids+=($!); pid3=$!
"$MEMCACHED" "${user_args[@]}" -U 0 -t 2 -p "$p4" -l 127.0.0.1 & pids+=($!); pid4=$!
for p in "$p1" "$p2" "$p3" "$p4"; do wait_port "$p"; done

syscalls=()
perf stat -x, -e raw_syscalls:sys_enter true >/dev/null 2>&1 && syscalls=(--syscalls)
target/release/tessera-bench -q --compare --rounds "$ROUNDS" --time "$TIME" --preload "${syscalls[@]}" \
    --target "before=tcp://127.0.0.1:$p1?pid=$pid1" --target "after=tcp://127.0.0.1:$p2?pid=$pid2" \
    --target "after-t1=tcp://127.0.0.1:$p3?pid=$pid3" --target "memcached-t2=tcp://127.0.0.1:$p4?pid=$pid4" \
    --json "$tmp/compare.json" | tee "$tmp/table.txt"
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    python3 bench/results.py save forwarding-t2 table.txt "$BEFORE" target/release/tessera \
        "$(command -v "$MEMCACHED")" < "$tmp/table.txt"
    cp "$tmp/compare.json" "$results/forwarding-t2/compare.json"
fi
