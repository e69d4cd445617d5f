#!/usr/bin/env bash
# Client-compatibility suite against a memcached-compatible server binary.
#
# Usage: tests/clients/run_clients.sh SERVER_BIN [extra server args...]
#   e.g. tests/clients/run_clients.sh target/release/tessera
#        tests/clients/run_clients.sh /usr/bin/memcached -u root   # memcached as root
#
# Starts two instances of SERVER_BIN on free loopback ports with
#   -p PORT -l 127.0.0.1 -U 0 -t 2 [extra args]
# then runs, against the first one:
#   (a) memccapable -a (ASCII protocol tests only; all must pass)
#   (b) pytest tests/clients/test_pymemcache.py (TESSERA_ADDR / TESSERA_ADDR2 set;
#       the second instance is only used by the HashClient test)
# The servers are stopped on exit, whatever happens.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 SERVER_BIN [extra server args...]" >&2
    exit 2
fi
SERVER_BIN=$1
shift
EXTRA_ARGS=("$@")
HERE=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$SERVER_BIN" ]; then
    echo "error: server binary '$SERVER_BIN' not found or not executable" >&2
    exit 2
fi
for tool in memccapable python3; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 2; }
done

WORK=$(mktemp -d)
SERVER_PIDS=()
SERVER_LOGS=()

stop_servers() {
    local rc=$?
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 50); do  # up to 5 s for a clean exit
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "server pid $pid did not exit on SIGTERM; sending SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        for log in "${SERVER_LOGS[@]}"; do
            if [ -s "$log" ]; then
                echo "--- last lines of server output ($(basename "$log")) ---" >&2
                tail -n 40 "$log" >&2
            fi
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME: starts an instance, waits until it accepts; sets PORT.
start_server() {
    local name=$1 log="$WORK/$1.log" pid
    PORT=$(free_port)
    echo "starting $SERVER_BIN -p $PORT -l 127.0.0.1 -U 0 -t 2 ${EXTRA_ARGS[*]}"
    "$SERVER_BIN" -p "$PORT" -l 127.0.0.1 -U 0 -t 2 "${EXTRA_ARGS[@]}" >"$log" 2>&1 &
    pid=$!
    SERVER_PIDS+=("$pid")
    SERVER_LOGS+=("$log")
    for _ in $(seq 100); do  # up to 10 s
        if ! kill -0 "$pid" 2>/dev/null; then
            local rc=0
            wait "$pid" || rc=$?
            echo "error: server '$name' exited during startup (exit code $rc); its output:" >&2
            if [ -s "$log" ]; then cat "$log" >&2; else echo "  (no output)" >&2; fi
            SERVER_LOGS=()  # already shown
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            echo "server '$name' (pid $pid) accepting on 127.0.0.1:$PORT"
            return 0
        fi
        sleep 0.1
    done
    echo "error: server '$name' did not accept connections on port $PORT within 10 s" >&2
    exit 1
}

check_alive() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "error: server pid $pid died during $1" >&2
            exit 1
        fi
    done
}

start_server main
PORT1=$PORT
start_server second
PORT2=$PORT

status=0

echo
echo "=== memccapable (ASCII protocol) against 127.0.0.1:$PORT1 ==="
mcc_out="$WORK/memccapable.out"
set +e
# It prints test names on stdout and [FAIL] on stderr: unbuffer both to keep order.
timeout 180 stdbuf -o0 -e0 memccapable -a -t 5 -h 127.0.0.1 -p "$PORT1" >"$mcc_out" 2>&1
mcc_rc=$?
set -e
cat "$mcc_out"
mcc_pass=$(grep -c '\[pass\]' "$mcc_out" || true)
mcc_skip=$(grep -c '\[skip\]' "$mcc_out" || true)
mcc_fail=$(grep -c '\[FAIL\]' "$mcc_out" || true)
if grep -q '^binary ' "$mcc_out"; then
    echo "memccapable: FAILED: binary-protocol tests ran (expected ASCII only)" >&2
    status=1
elif [ "$mcc_rc" -eq 0 ] && [ "$mcc_fail" -eq 0 ] && [ "$mcc_pass" -gt 0 ] \
        && grep -q '^All tests passed' "$mcc_out"; then
    echo "memccapable: OK ($mcc_pass passed, $mcc_skip skipped)"
else
    echo "memccapable: FAILED (exit code $mcc_rc; $mcc_pass passed, $mcc_fail failed, $mcc_skip skipped)" >&2
    if [ "$mcc_fail" -gt 0 ]; then
        echo "failed memccapable tests:" >&2
        # a [FAIL] may follow the server's unexpected reply on a later line
        awk '/^(ascii|binary) / { name = substr($0, 1, 40); sub(/ +$/, "", name) }
             /\[FAIL\]/ { print "  " name }' "$mcc_out" >&2
    fi
    [ "$mcc_rc" -eq 124 ] && echo "  (memccapable timed out after 180 s)" >&2
    status=1
fi
check_alive memccapable

echo
echo "=== pytest tests/clients/test_pymemcache.py against 127.0.0.1:$PORT1 (+ :$PORT2) ==="
set +e
TESSERA_ADDR="127.0.0.1:$PORT1" TESSERA_ADDR2="127.0.0.1:$PORT2" \
    timeout 300 python3 -m pytest -q -rs -p no:cacheprovider "$HERE/test_pymemcache.py"
py_rc=$?
set -e
if [ "$py_rc" -eq 0 ]; then
    echo "pytest: OK"
else
    echo "pytest: FAILED (exit code $py_rc)" >&2
    status=1
fi
check_alive pytest

echo
if [ "$status" -eq 0 ]; then
    echo "client suite: all passed (memccapable $mcc_pass/$((mcc_pass + mcc_fail)), pytest OK)"
else
    echo "client suite: FAILED" >&2
fi
exit "$status"
