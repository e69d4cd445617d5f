#!/usr/bin/env bash
# tessera vs memcached, plaintext and TLS, pipeline 1 and 16, server -t 1 and -t 2: one
# tessera-bench --compare per (threads, pipeline) cell over four targets in alternating rounds,
# then a markdown table of medians and min-max spreads.
#
#   bench/matrix.sh [OUTDIR]        (default: target/bench-results/matrix-YYYYmmdd-HHMMSS)
#
# Writes OUTDIR/tNpM.{json,svg,txt} and OUTDIR/hgrm/, the handshake comparison (full vs resumed
# TLS, tessera vs memcached, server -t 1) as OUTDIR/hs-t1.{json,svg,txt}, and OUTDIR/table.md
# (also printed). The raw tables (env.txt, table.md, *.txt, *.json; not the .hgrm files) are
# also kept for docs/benchmarks.md in docs/results/matrix/ (docs/results/handshakes/ with
# HANDSHAKE_ONLY; RESULTS_DIR overrides docs/results, RESULTS_DIR= keeps nothing); the plots
# in docs/img are copies of OUTDIR/t1p1.svg, t1p16.svg and hs-t1.svg.
# Environment: TIME (per round, default 5s), ROUNDS (default 3), CONNS (default 50),
# THREADS_LIST (default "1 2"), PIPELINES (default "1 16"), MEMCACHED (default memcached),
# HANDSHAKE (default 1: also the handshake run), HANDSHAKE_ONLY (set: only the handshake run),
# TESSERA / BENCH (default target/release/...; built when missing or NOBUILD is unset).
# With server -t 1 on a machine with 2+ CPUs the servers are pinned to CPU 1 and the client to
# CPU 0; with -t 2 nothing is pinned (servers and client share the CPUs). Every load cell also
# reports each server's CPU time per operation (/proc/PID/task/*/schedstat over each round)
# and, where perf can count raw_syscalls:sys_enter (SYSCALLS=0 skips it), system calls per op.
# Then bench/vs_memcached.sh (VS=0 skips it): memtier_benchmark and tessera-bench against
# memcached 1.6.45 (the newest) and 1.6.18, server -t 1, into OUTDIR/vs.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-target/bench-results/matrix-$(date +%Y%m%d-%H%M%S)}
TIME=${TIME:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
THREADS_LIST=${THREADS_LIST:-"1 2"}
PIPELINES=${PIPELINES:-"1 16"}
MEMCACHED=${MEMCACHED:-memcached}
TESSERA=${TESSERA:-target/release/tessera}
BENCH=${BENCH:-target/release/tessera-bench}

if [ -z "${NOBUILD:-}" ]; then
    cargo build --release -p tessera -p tessera-bench
fi
command -v "$MEMCACHED" >/dev/null || { echo "matrix.sh: $MEMCACHED not found (apt-get install memcached)" >&2; exit 1; }

mkdir -p "$OUT"

. bench/lib.sh  # free_port, wait_port, bench_scratch, stop_pids
bench_scratch  # $tmp and pids, cleaned up on exit
user_args=()
[ "$(id -u)" -eq 0 ] && user_args=(-u nobody)

"$TESSERA" certs --out "$tmp/certs" >/dev/null
tls_opts="ssl_chain_cert=$tmp/certs/server.pem,ssl_key=$tmp/certs/server.key"

{
    echo "# tessera-bench matrix, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "host: $(nproc) CPUs, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
    echo "tessera: $("$TESSERA" --version 2>/dev/null | head -1) (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty'))"
    echo "memcached: $("$MEMCACHED" -V 2>/dev/null)"
    echo "each cell: TIME=$TIME ROUNDS=$ROUNDS CONNS=$CONNS"
} > "$OUT/env.txt"
cat "$OUT/env.txt"

# Server CPU per op is read from /proc for every cell; system calls per op are counted with
# perf where it can attach (Debian's linux-perf; SYSCALLS=0 skips it).
syscalls=()
if [ "${SYSCALLS:-1}" = 1 ] && perf stat -x, -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
    syscalls=(--syscalls)
else
    echo "matrix.sh: not counting system calls (perf cannot count raw_syscalls:sys_enter here)" >&2
fi

start_servers() { # $1 = server threads; sets tp tt mp mt (ports), tpid mpid
    tp=$(free_port); tt=$(free_port); mp=$(free_port); mt=$(free_port)
    "${server_pin[@]}" "$TESSERA" -t "$1" -l "127.0.0.1:$tt,notls:127.0.0.1:$tp" -Z -o "$tls_opts" &
    tpid=$!
    pids+=($!)
    "${server_pin[@]}" "$MEMCACHED" "${user_args[@]}" -U 0 -t "$1" -p "$mt" \
        -l "127.0.0.1:$mt,notls:127.0.0.1:$mp" -Z -o "$tls_opts" &
    mpid=$!
    pids+=($!)
    for p in $tp $tt $mp $mt; do wait_port "$p"; done
}

failed=()
for t in $THREADS_LIST; do
    pin_split "$t"  # server_pin, client_pin (bench/lib.sh)
    start_servers "$t"
    [ -n "${HANDSHAKE_ONLY:-}" ] && pipelines="" || pipelines=$PIPELINES
    for pl in $pipelines; do
        cell="t${t}p${pl}"
        ok=
        for attempt in 1 2; do
            echo "== server -t $t, pipeline $pl (attempt $attempt)" >&2
            if "${client_pin[@]}" "$BENCH" --compare \
                --target "tessera=tcp://127.0.0.1:$tp?pid=$tpid" \
                --target "tessera-tls=tls://127.0.0.1:$tt?pid=$tpid" \
                --target "memcached=tcp://127.0.0.1:$mp?pid=$mpid" \
                --target "memcached-tls=tls://127.0.0.1:$mt?pid=$mpid" \
                --tls-cacert "$tmp/certs/ca.pem" "${syscalls[@]}" \
                --connections "$CONNS" --pipeline "$pl" --preload \
                --time "$TIME" --rounds "$ROUNDS" \
                --json "$OUT/$cell.json" --hgrm-dir "$OUT/hgrm/$cell" \
                --svg "$OUT/$cell.svg" \
                --title "server -t $t, pipeline $pl, $CONNS connections, get:set 9:1, 100 B" \
                > "$OUT/$cell.txt"; then
                ok=1
                cat "$OUT/$cell.txt"
                break
            fi
            echo "matrix.sh: cell $cell failed; restarting the servers" >&2
            stop_pids
            start_servers "$t"
        done
        [ -n "$ok" ] || failed+=("$cell")
    done
    if [ "${HANDSHAKE:-1}" = 1 ] && [ "$t" = 1 ]; then
        # New connections: connect, TLS handshake, one version request, close (RST).
        echo "== server -t $t, handshakes" >&2
        "${client_pin[@]}" "$BENCH" --compare --mode handshake \
            --target "tessera-full=tls://127.0.0.1:$tt?resume=off" \
            --target "tessera-resumed=tls://127.0.0.1:$tt?resume=on" \
            --target "memcached-full=tls://127.0.0.1:$mt?resume=off" \
            --target "memcached-resumed=tls://127.0.0.1:$mt?resume=on" \
            --tls-cacert "$tmp/certs/ca.pem" \
            --connections "$CONNS" --time "$TIME" --rounds "$ROUNDS" \
            --json "$OUT/hs-t$t.json" --svg "$OUT/hs-t$t.svg" \
            --title "server -t $t: connect + TLS handshake + version, $CONNS at a time" \
            > "$OUT/hs-t$t.txt" && cat "$OUT/hs-t$t.txt" || failed+=("hs-t$t")
    fi
    stop_pids
done

python3 - "$OUT" <<'EOF' | tee "$OUT/table.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])

def spread(xs):
    xs = [x for x in xs if x == x]
    return (statistics.median(xs), min(xs), max(xs)) if xs else None

def paired(a, b):
    return spread([y / x for x, y in zip(a, b) if x > 0])

def fmt_ops(s):
    return f"{s[0]:,.0f} ({s[1]:,.0f}–{s[2]:,.0f})"

def fmt_ratio(s):
    return f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})" if s else "–"

rows = []
for f in sorted(out.glob("t*p*.json")):
    d = json.loads(f.read_text())
    t, p = f.stem[1:].split("p")
    tg = {x["name"]: x for x in d["targets"]}
    ops = {n: [r["ops_per_sec"] for r in x["rounds"]] for n, x in tg.items()}
    rows.append((int(t), int(p), tg, ops))

def per_op(target, key):
    """Per-round server cost per op (None when not measured)."""
    xs = []
    for r in target["rounds"]:
        v = r.get(key)
        if v is None or not r["ops"]:
            return None
        xs.append((v * 1e6 if key == "server_cpu_seconds" else v) / r["ops"])
    return xs

def fmt_cost(a, b, digits):
    sa, sb = [spread(x) if x else None for x in (a, b)]
    if not sa or not sb:
        return "–"
    return f"{sa[0]:.{digits}f} / {sb[0]:.{digits}f}"

def print_load_tables(rows):
    print("| server -t | pipeline | server | plaintext ops/s | TLS ops/s | TLS/plain | p50 µs plain / TLS | p99 µs plain / TLS | p99.9 µs plain / TLS | server CPU µs/op plain / TLS | syscalls/op plain / TLS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for t, p, tg, ops in sorted(rows):
        for srv in ("tessera", "memcached"):
            a, b = tg[srv], tg[srv + "-tls"]
            la, lb = a["latency_us"]["all"], b["latency_us"]["all"]
            print(f"| {t} | {p} | {srv} | {fmt_ops(spread(ops[srv]))} | {fmt_ops(spread(ops[srv + '-tls']))} "
                  f"| {fmt_ratio(paired(ops[srv], ops[srv + '-tls']))} "
                  f"| {la['p50']:.0f} / {lb['p50']:.0f} | {la['p99']:.0f} / {lb['p99']:.0f} "
                  f"| {la['p99.9']:.0f} / {lb['p99.9']:.0f} "
                  f"| {fmt_cost(per_op(a, 'server_cpu_seconds'), per_op(b, 'server_cpu_seconds'), 2)} "
                  f"| {fmt_cost(per_op(a, 'server_syscalls'), per_op(b, 'server_syscalls'), 2)} |")
    print()
    print("| server -t | pipeline | tessera/memcached ops/s, plaintext | tessera/memcached ops/s, TLS | tessera/memcached CPU µs/op, plaintext | tessera/memcached CPU µs/op, TLS |")
    print("|---|---|---|---|---|---|")
    for t, p, tg, ops in sorted(rows):
        cpu = {n: per_op(x, "server_cpu_seconds") for n, x in tg.items()}
        def cpu_ratio(m, s):
            return fmt_ratio(paired(cpu[m], cpu[s])) if cpu[m] and cpu[s] else "–"
        print(f"| {t} | {p} | {fmt_ratio(paired(ops['memcached'], ops['tessera']))} "
              f"| {fmt_ratio(paired(ops['memcached-tls'], ops['tessera-tls']))} "
              f"| {cpu_ratio('memcached', 'tessera')} | {cpu_ratio('memcached-tls', 'tessera-tls')} |")
    by = {(t, p): tg for t, p, tg, _ in rows}
    pairs = [(p, by[(1, p)], by[(2, p)]) for t, p, _, _ in sorted(rows) if t == 1 and (2, p) in by]
    if pairs:
        print()
        print("Server CPU µs/op at -t 2 over -t 1 (what cross-executor forwarding and a second executor cost; medians):")
        print()
        print("| pipeline | server | plaintext | TLS |")
        print("|---|---|---|---|")
        for p, one, two in pairs:
            for srv in ("tessera", "memcached"):
                cells = []
                for n in (srv, srv + "-tls"):
                    a, b = per_op(one[n], "server_cpu_seconds"), per_op(two[n], "server_cpu_seconds")
                    cells.append(f"{spread(b)[0] / spread(a)[0]:.2f}" if a and b else "–")
                print(f"| {p} | {srv} | {cells[0]} | {cells[1]} |")

if rows:
    print_load_tables(rows)
for f in sorted(out.glob("hs-t*.json")):
    d = json.loads(f.read_text())
    tg = {x["name"]: x for x in d["targets"]}
    ops = {n: [r["ops_per_sec"] for r in x["rounds"]] for n, x in tg.items()}
    print()
    print(f"Handshakes, server -t {f.stem[4:]} ({d['config']['connections']} concurrent):")
    print()
    print("| server | full conn/s | resumed conn/s | resumed/full | p50 µs full / resumed | p99 µs full / resumed |")
    print("|---|---|---|---|---|---|")
    for srv in ("tessera", "memcached"):
        a, b = tg[srv + "-full"], tg[srv + "-resumed"]
        la, lb = a["latency_us"]["all"], b["latency_us"]["all"]
        print(f"| {srv} | {fmt_ops(spread(ops[srv + '-full']))} | {fmt_ops(spread(ops[srv + '-resumed']))} "
              f"| {fmt_ratio(paired(ops[srv + '-full'], ops[srv + '-resumed']))} "
              f"| {la['p50']:.0f} / {lb['p50']:.0f} | {la['p99']:.0f} / {lb['p99']:.0f} |")
EOF
echo "results in $OUT" >&2
results=${RESULTS_DIR-docs/results}
if [ -n "$results" ]; then
    [ -n "${HANDSHAKE_ONLY:-}" ] && keep="$results/handshakes" || keep="$results/matrix"
    mkdir -p "$keep"
    for f in "$OUT"/env.txt "$OUT"/table.md "$OUT"/*.txt "$OUT"/*.json; do
        [ -e "$f" ] && cp "$f" "$keep/"
    done
    echo "raw tables kept in $keep" >&2
fi
# The headline comparison: both clients (memtier_benchmark and tessera-bench) against both
# memcached versions, server -t 1 (VS=0 skips it).
if [ "${VS:-1}" = 1 ] && [ -z "${HANDSHAKE_ONLY:-}" ]; then
    NOBUILD=1 TESSERA="$TESSERA" BENCH="$BENCH" bash bench/vs_memcached.sh "$OUT/vs" || failed+=("vs_memcached")
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "matrix.sh: failed cells: ${failed[*]}" >&2
    exit 1
fi
