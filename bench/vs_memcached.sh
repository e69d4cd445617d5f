#!/usr/bin/env bash
# The headline comparison: tessera against the newest memcached (1.6.45) and Debian's 1.6.18,
# plaintext and TLS, pipeline 1 and 16, every server -t 1 pinned to CPU 1 and the client on
# CPU 0, measured with both clients: memtier_benchmark (the independent one) and tessera-bench.
# memtier runs twice per cell: with its defaults as they are (client "memtier": its connections
# share one random seed, so at 1:10 they set the same ~1.4k keys and ~95% of gets miss) and
# with every key set first (client "memtier-hits": gets hit, as tessera-bench's --preload).
#
#   bench/vs_memcached.sh [OUTDIR]   (default: target/bench-results/vs-YYYYmmdd-HHMMSS)
#
# Each cell alternates the three servers over ROUNDS rounds of TIME seconds and reports
# medians (min–max) of ops/s, latency percentiles, server CPU µs per op and system calls per
# op (perf, where it can count raw_syscalls:sys_enter), and per-round ratios against tessera.
# Writes OUTDIR/{memtier,tb}-{plain,tls}-pN.{txt,json} and OUTDIR/summary.md (also printed);
# the text tables are kept in docs/results/vs-memcached/ (RESULTS_DIR overrides docs/results,
# RESULTS_DIR= keeps nothing).
# Environment: TIME (seconds, default 5), ROUNDS (default 5), CONNS (default 50),
# PIPELINES (default "1 16"), MODES (default "plain tls"), CLIENTS (default "memtier
# memtier-hits tb"),
# MEMCACHED_NEW (default: ../shared/refs/build.sh memcached's binary), MEMCACHED_OLD (default
# memcached, Debian's 1.6.18), MEMTIER (default: ../shared/refs/build.sh memtier's binary),
# TESSERA / BENCH (default target/release/...; built unless NOBUILD is set).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-target/bench-results/vs-$(date +%Y%m%d-%H%M%S)}
TIME=${TIME:-5}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
PIPELINES=${PIPELINES:-"1 16"}
MODES=${MODES:-"plain tls"}
CLIENTS=${CLIENTS:-"memtier memtier-hits tb"}
TESSERA=${TESSERA:-target/release/tessera}
BENCH=${BENCH:-target/release/tessera-bench}
REFS=../shared/refs
MEMCACHED_NEW=${MEMCACHED_NEW:-$("$REFS/build.sh" memcached 2>/dev/null | tail -1)}
MEMCACHED_OLD=${MEMCACHED_OLD:-memcached}
MEMTIER=${MEMTIER:-$("$REFS/build.sh" memtier 2>/dev/null | tail -1)}

if [ -z "${NOBUILD:-}" ]; then
    cargo build --release -p tessera -p tessera-bench
fi
for b in "$MEMCACHED_NEW" "$MEMCACHED_OLD" "$MEMTIER"; do
    command -v "$b" >/dev/null || { echo "vs_memcached.sh: $b not found (../shared/refs/build.sh memcached|memtier; apt-get install memcached)" >&2; exit 1; }
done
mkdir -p "$OUT"
. bench/lib.sh  # free_port, wait_port, bench_scratch, stop_pids, pin_split
bench_scratch
pin_split 1
"$TESSERA" certs --out "$tmp/certs" >/dev/null
tls_opts=(-Z -o "ssl_chain_cert=$tmp/certs/server.pem,ssl_key=$tmp/certs/server.key")
new_v=$("$MEMCACHED_NEW" -V | awk '{print $2}')
old_v=$("$MEMCACHED_OLD" -V | awk '{print $2}')
{
    echo "# tessera vs memcached $new_v and $old_v, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "host: $(nproc) CPUs, $(uname -sr); servers -t 1 on CPU 1, client on CPU 0"
    echo "tessera: $("$TESSERA" --version | head -1) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'))"
    echo "clients: $("$MEMTIER" --version 2>&1 | head -1); tessera-bench"
    echo "each cell: $CONNS connections, 100-byte values, 100000 keys, set:get 1:10, $ROUNDS alternating rounds of ${TIME}s"
    echo
} > "$OUT/summary.md"

user_args=()
[ "$(id -u)" -eq 0 ] && user_args=(-u nobody)
failed=()
for mode in $MODES; do
    extra=()
    [ "$mode" = tls ] && extra=("${tls_opts[@]}")
    for pl in $PIPELINES; do
        for client in $CLIENTS; do
            cell="$client-$mode-p$pl"
            echo "== $cell" >&2
            if [ "$client" != tb ]; then
                flags=()
                [ "$mode" = tls ] && flags+=(--tls)
                [ "$client" = memtier-hits ] && flags+=(--preload)
                python3 bench/memtier_compare.py --memtier "$MEMTIER" "${flags[@]}" \
                    --pipeline "$pl" --conns "$CONNS" --time "$TIME" --rounds "$ROUNDS" --syscalls \
                    --server "tessera=$TESSERA -t 1 -p {port} -U 0 ${extra[*]}" \
                    --server "memcached-$new_v=$MEMCACHED_NEW -t 1 -p {port} -U 0 ${extra[*]}" \
                    --server "memcached-$old_v=$MEMCACHED_OLD -t 1 -p {port} -U 0 ${extra[*]}" \
                    --json "$OUT/$cell.json" > "$OUT/$cell.txt" 2>"$OUT/$cell.log" || { failed+=("$cell"); continue; }
            else
                ports=()
                for name in tessera new old; do
                    port=$(free_port)
                    case $name in
                        tessera) "${server_pin[@]}" "$TESSERA" -t 1 -p "$port" -U 0 "${extra[@]}" 2>/dev/null & ;;
                        new) "${server_pin[@]}" "$MEMCACHED_NEW" "${user_args[@]}" -t 1 -p "$port" -U 0 "${extra[@]}" & ;;
                        old) "${server_pin[@]}" "$MEMCACHED_OLD" "${user_args[@]}" -t 1 -p "$port" -U 0 "${extra[@]}" & ;;
                    esac
                    pids+=($!)
                    ports+=("$port:$!")
                done
                for p in "${ports[@]}"; do wait_port "${p%%:*}"; done
                scheme=tcp
                [ "$mode" = tls ] && scheme=tls
                t() { echo "$1=$scheme://127.0.0.1:${2%%:*}?pid=${2##*:}"; }
                "${client_pin[@]}" "$BENCH" --compare \
                    --target "$(t tessera "${ports[0]}")" \
                    --target "$(t "memcached-$new_v" "${ports[1]}")" \
                    --target "$(t "memcached-$old_v" "${ports[2]}")" \
                    --tls-cacert "$tmp/certs/ca.pem" --syscalls \
                    --connections "$CONNS" --pipeline "$pl" --preload \
                    --time "${TIME}s" --rounds "$ROUNDS" --json "$OUT/$cell.json" \
                    > "$OUT/$cell.txt" 2>"$OUT/$cell.log" || failed+=("$cell")
                stop_pids
            fi
            { echo "## $cell"; echo; cat "$OUT/$cell.txt"; echo; } >> "$OUT/summary.md"
        done
    done
done
cat "$OUT/summary.md"
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    mkdir -p "$results/vs-memcached"
    cp "$OUT"/summary.md "$OUT"/*.txt "$results/vs-memcached/"
    echo "tables kept in $results/vs-memcached" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "vs_memcached.sh: failed cells: ${failed[*]} (see $OUT/*.log)" >&2
    exit 1
fi
