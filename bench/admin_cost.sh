#!/usr/bin/env bash
# What the admin listener's command histograms cost (docs/deploy.md, "Metrics"): two tessera
# -t 1 on CPU 1, one with `-o admin_listen` (the service-time clock is read only while the
# listener is on), one without; tessera-bench --compare of pipelined gets and sets over both
# in alternating rounds from CPU 0. Keeps the table in docs/results/admin-cost/
# (RESULTS_DIR overrides docs/results; RESULTS_DIR= keeps nothing).
#
#   bench/admin_cost.sh [-- extra tessera-bench options]
# Environment: TIME (per round, default 5s), ROUNDS (default 5), CONNS (default 50),
# PIPELINE (default 16), NOBUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--" ] && shift
TIME=${TIME:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
PIPELINE=${PIPELINE:-16}
if [ -z "${NOBUILD:-}" ]; then
    cargo build --release --bin tessera --bin tessera-bench
fi
. bench/lib.sh  # free_port, wait_port

bench_scratch  # $tmp and pids, cleaned up on exit (bench/lib.sh)

pin_split  # server_pin, client_pin (bench/lib.sh)
off_port=$(free_port)
on_port=$(free_port)
admin_port=$(free_port)
"${server_pin[@]}" target/release/tessera -t 1 -p "$off_port" -l 127.0.0.1 &
pids+=($!)
"${server_pin[@]}" target/release/tessera -t 1 -p "$on_port" -l 127.0.0.1 \
    -o "admin_listen=127.0.0.1:$admin_port" &
pids+=($!)
wait_port "$off_port"
wait_port "$on_port"
wait_port "$admin_port"

"${client_pin[@]}" target/release/tessera-bench --compare \
    --target "admin-off=tcp://127.0.0.1:$off_port" \
    --target "admin-on=tcp://127.0.0.1:$on_port" \
    --connections "$CONNS" --pipeline "$PIPELINE" --preload --time "$TIME" \
    --rounds "$ROUNDS" "$@" | tee "$tmp/table.txt"
# the histograms did count: the admin-on server's /metrics has the get histogram's total
python3 - "$admin_port" <<'PY' | tee -a "$tmp/table.txt"
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
count = [l for l in body.splitlines() if l.startswith('tessera_command_duration_seconds_count{cmd="get"}')]
print("admin-on /metrics:", count[0] if count else "no get histogram")
PY
if [ -n "${RESULTS_DIR-docs/results}" ]; then
    python3 bench/results.py save admin-cost table.txt target/release/tessera < "$tmp/table.txt"
fi
