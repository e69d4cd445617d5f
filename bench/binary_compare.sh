#!/usr/bin/env bash
# One tessera binary against another (a refactor's "no regression" check): both run -t 1 pinned
# to CPU 1, each with a TLS listener and a plaintext (notls:) one; tessera-bench, pinned to
# CPU 0, alternates BEFORE and AFTER over ROUNDS rounds for each of pipeline 1 and 16,
# plaintext and TLS (four comparisons), with each server's CPU time per operation.
#
#   BEFORE=/path/to/old/tessera bench/binary_compare.sh [NAME]
# Build BEFORE with: git worktree add /tmp/tessera-before REV &&
#   (cd /tmp/tessera-before && cargo build --release --bin tessera)
# AFTER defaults to target/release/tessera (built here unless NOBUILD is set).
# Environment: TIME (per round, default 5s), ROUNDS (default 5), CONNS (default 50).
# Keeps the tables and tessera-bench's JSON in docs/results/NAME/ (default binary-compare;
# RESULTS_DIR overrides docs/results; RESULTS_DIR= keeps nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to the tessera binary to compare against}"
NAME=${1:-binary-compare}
AFTER=${AFTER:-target/release/tessera}
TIME=${TIME:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
if [ -z "${NOBUILD:-}" ]; then
    cargo build --release -p tessera -p tessera-bench
fi
. bench/lib.sh  # free_port, wait_port
bench_scratch   # $tmp and pids, cleaned up on exit (bench/lib.sh)

pin_split  # server_pin, client_pin (bench/lib.sh)

"$AFTER" certs --out "$tmp/certs" >/dev/null
start() {  # start BINARY: sets port_plain, port_tls, pid
    port_tls=$(free_port)
    port_plain=$(free_port)
    "${server_pin[@]}" "$1" -t 1 -l "127.0.0.1:$port_tls,notls:127.0.0.1:$port_plain" \
        -Z -o "ssl_chain_cert=$tmp/certs/server.pem,ssl_key=$tmp/certs/server.key" &
    pid=$!
    pids+=("$pid")
    wait_port "$port_tls"
    wait_port "$port_plain"
}
start "$BEFORE"; b_plain=$port_plain; b_tls=$port_tls; b_pid=$pid
start "$AFTER"; a_plain=$port_plain; a_tls=$port_tls; a_pid=$pid

syscalls=()
perf stat -x, -e raw_syscalls:sys_enter true >/dev/null 2>&1 && syscalls=(--syscalls)
: > "$tmp/table.txt"
for depth in 1 16; do
    for wire in plain tls; do
        if [ "$wire" = plain ]; then
            b="tcp://127.0.0.1:$b_plain"; a="tcp://127.0.0.1:$a_plain"
        else
            b="tls://127.0.0.1:$b_tls"; a="tls://127.0.0.1:$a_tls"
        fi
        echo "== pipeline $depth, $wire" | tee -a "$tmp/table.txt"
        "${client_pin[@]}" target/release/tessera-bench -q --compare --rounds "$ROUNDS" \
            --time "$TIME" --preload --connections "$CONNS" --pipeline "$depth" \
            --tls-cacert "$tmp/certs/ca.pem" "${syscalls[@]}" \
            --target "before=$b?pid=$b_pid" --target "after=$a?pid=$a_pid" \
            --json "$tmp/p$depth-$wire.json" | tee -a "$tmp/table.txt"
    done
done
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    python3 bench/results.py save "$NAME" table.txt "$BEFORE" "$AFTER" < "$tmp/table.txt"
    cp "$tmp"/p*.json "$results/$NAME/"
fi
