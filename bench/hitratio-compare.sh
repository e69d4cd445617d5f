#!/usr/bin/env bash
# Hit ratio of tessera vs memcached under the same Zipf(0.99) cache-aside workload, at memory
# limits that hold ~10% and ~20% of the key set. Usage: bench/hitratio-compare.sh [MB...]
# Needs: target/release/tessera (cargo build --release), Debian's memcached, python3.
# Prints a markdown table and keeps it in docs/results/hitratio/ (bench/results.py).
set -euo pipefail
cd "$(dirname "$0")/.."
TESSERA=${TESSERA:-target/release/tessera}
MEMCACHED=${MEMCACHED:-memcached}
KEYS=${KEYS:-200000}
REQUESTS=${REQUESTS:-1000000}
. bench/lib.sh  # free_port, wait_port, bench_scratch
bench_scratch  # pids, stopped on exit
user_args=(); [ "$(id -u)" -eq 0 ] && user_args=(-u nobody)
table="$KEYS keys, $REQUESTS requests, Zipf(0.99), 100-byte values, -t 1
"
row() { echo "$1"; table+="$1
"; }
row ""
row "| -m (MB) | server | items held | hit ratio |"
row "|---|---|---|---|"
ms=("$@"); [ ${#ms[@]} -eq 0 ] && ms=(4 8)
for m in "${ms[@]}"; do
  for server in tessera memcached; do
    port=$(free_port)
    if [ $server = tessera ]; then
      "$TESSERA" -p "$port" -l 127.0.0.1 -t 1 -m "$m" & pids+=($!)
    else
      "$MEMCACHED" "${user_args[@]}" -p "$port" -l 127.0.0.1 -U 0 -t 1 -m "$m" & pids+=($!)
    fi
    wait_port "$port"
    ratio=$(python3 bench/hitratio.py "127.0.0.1:$port" --keys "$KEYS" --requests "$REQUESTS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hit_ratio"])')
    items=$(python3 -c "
import socket,time
s=socket.create_connection(('127.0.0.1',$port),5); s.sendall(b'stats\r\n'); b=b''
while not b.endswith(b'END\r\n'): b+=s.recv(65536)
print([l.split()[2] for l in b.decode().split('\r\n') if l.startswith('STAT curr_items ')][0])")
    row "| $m | $server | $items | $ratio |"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  done
done
RESULTS_CMD="bench/hitratio-compare.sh ${ms[*]}" \
  python3 bench/results.py save hitratio table.md "$TESSERA" "$(command -v "$MEMCACHED")" <<<"$table"
