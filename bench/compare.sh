#!/usr/bin/env bash
# TLS vs plaintext on one tessera, in one command: builds release, makes a dev certificate in a
# temp dir, starts tessera with a TLS listener and a plaintext (notls:) listener, runs
# tessera-bench --compare over both (alternating rounds), prints the table and writes the plot.
#
#   bench/compare.sh [SVG] [-- extra tessera-bench options]
#   bench/compare.sh docs/img/tls-vs-plain.svg -- --pipeline 16 --time 10s
#
# SVG defaults to docs/img/tls-vs-plain.svg. Environment: THREADS (tessera -t, default 1),
# TIME (per round, default 5s), ROUNDS (default 3), CONNS (default 50). On a machine with two
# or more CPUs and THREADS=1, tessera is pinned to CPU 1 and the client to CPU 0.
# The printed table and tessera-bench's JSON are kept in docs/results/tls-vs-plain/
# (RESULTS_DIR overrides docs/results; RESULTS_DIR= keeps nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

SVG=docs/img/tls-vs-plain.svg
if [ $# -gt 0 ] && [ "$1" != "--" ]; then SVG=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then shift; fi
THREADS=${THREADS:-1}
TIME=${TIME:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}

cargo build --release -p tessera -p tessera-bench

. bench/lib.sh  # free_port, wait_port
bench_scratch  # $tmp and pids, cleaned up on exit (bench/lib.sh)


pin_split "$THREADS"  # server_pin, client_pin (bench/lib.sh)

target/release/tessera certs --out "$tmp/certs" >/dev/null
tls_port=$(free_port)
plain_port=$(free_port)
"${server_pin[@]}" target/release/tessera -t "$THREADS" \
    -l "127.0.0.1:$tls_port,notls:127.0.0.1:$plain_port" \
    -Z -o "ssl_chain_cert=$tmp/certs/server.pem,ssl_key=$tmp/certs/server.key" &
pids+=($!)
wait_port "$tls_port"
wait_port "$plain_port"

mkdir -p "$(dirname "$SVG")"
"${client_pin[@]}" target/release/tessera-bench --compare \
    --target "plaintext=tcp://127.0.0.1:$plain_port" \
    --target "tls=tls://127.0.0.1:$tls_port" \
    --tls-cacert "$tmp/certs/ca.pem" \
    --connections "$CONNS" --preload --time "$TIME" --rounds "$ROUNDS" \
    --json "$tmp/compare.json" --svg "$SVG" "$@" | tee "$tmp/table.txt"
echo "plot: $SVG"
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    python3 bench/results.py save tls-vs-plain table.txt target/release/tessera < "$tmp/table.txt"
    cp "$tmp/compare.json" "$results/tls-vs-plain/compare.json"
fi
