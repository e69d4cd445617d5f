#!/usr/bin/env bash
# Where a request's time goes (docs/benchmarks.md): a pinned `tessera -t 1` on CPU 1 under
# tessera-bench's plaintext load (50 connections, get:set 9:1, 100 B, pipeline PIPELINE, CPU 0),
# `perf record -g` of the server for 3 s in the middle of the load, then perf's report with
# callers included. Keeps the load's table and the head of the report in
# docs/results/perf-t1-pN/ (RESULTS_DIR overrides docs/results; RESULTS_DIR= keeps nothing).
#
#   bench/perf_breakdown.sh            Environment: TIME (load, default 8s), PIPELINE
#                                      (default 1), TESSERA (default target/release/tessera,
#                                      e.g. an older build to profile), NOBUILD
# Needs perf (Debian's linux-perf) allowed to profile the server, and 2+ CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
TIME=${TIME:-8s}
PIPELINE=${PIPELINE:-1}
TESSERA=${TESSERA:-target/release/tessera}
if [ -z "${NOBUILD:-}" ]; then
    cargo build --release -p tessera -p tessera-bench
fi
command -v perf >/dev/null || { echo "perf_breakdown.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
. bench/lib.sh  # free_port, wait_port

bench_scratch  # $tmp and pids, cleaned up on exit (bench/lib.sh)

port=$(free_port)
taskset -c 1 "$TESSERA" -t 1 -p "$port" -l 127.0.0.1 &
server=$!
pids+=("$server")
wait_port "$port"
taskset -c 0 target/release/tessera-bench --target "tcp://127.0.0.1:$port?pid=$server" \
    --pipeline "$PIPELINE" --preload --time "$TIME" > "$tmp/load.txt" &
pids+=($!)
sleep 2 # the preload and the first second of load: profile the steady state
perf record -F 2000 -g -p "$server" -o "$tmp/perf.data" -- sleep 3 2> "$tmp/record.txt"
wait "${pids[-1]}"
# awk reads to the end (head would close the pipe early: SIGPIPE, and pipefail fails the run)
perf report -i "$tmp/perf.data" --children --sort sym -g none --stdio 2>/dev/null \
    | awk 'NF && n++ < 80' > "$tmp/report.txt"
cat "$tmp/load.txt" "$tmp/report.txt"
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    python3 bench/results.py save "perf-t1-p$PIPELINE" load.txt "$TESSERA" < "$tmp/load.txt"
    python3 bench/results.py save "perf-t1-p$PIPELINE" report.txt "$TESSERA" < "$tmp/report.txt"
fi
