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
#       the second instance is only used by the HashClient test) and
#       tests/clients/test_tools.py (memcached_exporter's parsing of stats, memcached-tool,
#       the format of every stats reply), in one pytest run, in that order
# then, when SERVER_BIN is tessera (skipped with a message otherwise, e.g. memcached),
# a TLS stage:
#   (c) certificates from `SERVER_BIN certs`, a third instance with -Z (TLS only),
#       tools/tls_proxy.py (plaintext -> TLS) in front of it, memccapable -a through it
#   (d) pytest tests/clients/test_tls.py and test_hostile.py (TESSERA_BIN set; they start
#       their own servers)
#   then a unix socket stage (memccapable through a TCP -> unix relay)
# and, also only when SERVER_BIN is tessera, a cluster stage:
#   (e) pytest tests/clients/test_cluster.py (TESSERA_BIN set; it starts three instances
#       of its own, nutcracker (twemproxy) with ketama in front of them, and pylibmc with
#       ketama against them), test_discovery.py (config get/set cluster with
#       django-elastipymemcache's ElastiCache client) and test_admin.py (the admin
#       listener: Prometheus metrics scraped with prometheus_client's parser, /health).
#       Needs nutcracker, pylibmc, django-elastipymemcache (tools/test.sh installs them):
#       TESSERA_CLUSTER_REQUIRED=1 makes a missing one a failure, not a skip.
# The servers and the proxy are stopped on exit, whatever happens.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 SERVER_BIN [extra server args...]" >&2
    exit 2
fi
SERVER_BIN=$1
shift
EXTRA_ARGS=("$@")
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

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
    # A crash at any point, shutdown included, fails the run (crashes.py: a Rust panic,
    # an AddressSanitizer report, glibc's heap checks; the marks the pytest fixtures use).
    if [ "${#SERVER_LOGS[@]}" -gt 0 ] && ! python3 "$HERE/crashes.py" "${SERVER_LOGS[@]}"; then
        [ "$rc" -ne 0 ] || rc=1
    fi
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

# start_server NAME [more server args...]: starts an instance, waits until it
# accepts; sets PORT.
start_server() {
    local name=$1 log="$WORK/$1.log" pid
    shift
    PORT=$(free_port)
    echo "starting $SERVER_BIN -p $PORT -l 127.0.0.1 -U 0 -t 2 ${EXTRA_ARGS[*]} $*"
    "$SERVER_BIN" -p "$PORT" -l 127.0.0.1 -U 0 -t 2 "${EXTRA_ARGS[@]}" "$@" >"$log" 2>&1 &
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

# run_memccapable LABEL PORT: memccapable -a against 127.0.0.1:PORT; prints its
# output and a verdict; sets MCC_PASS, MCC_FAIL; returns non-zero on failure.
run_memccapable() {
    local label=$1 port=$2 out="$WORK/memccapable-$1.out" rc skip
    set +e
    # It prints test names on stdout and [FAIL] on stderr: unbuffer both to keep order.
    timeout 180 stdbuf -o0 -e0 memccapable -a -t 5 -h 127.0.0.1 -p "$port" >"$out" 2>&1
    rc=$?
    set -e
    cat "$out"
    MCC_PASS=$(grep -c '\[pass\]' "$out" || true)
    skip=$(grep -c '\[skip\]' "$out" || true)
    MCC_FAIL=$(grep -c '\[FAIL\]' "$out" || true)
    if grep -q '^binary ' "$out"; then
        echo "$label: FAILED: binary-protocol tests ran (expected ASCII only)" >&2
        return 1
    elif [ "$rc" -eq 0 ] && [ "$MCC_FAIL" -eq 0 ] && [ "$MCC_PASS" -gt 0 ] \
            && grep -q '^All tests passed' "$out"; then
        echo "$label: OK ($MCC_PASS passed, $skip skipped)"
        return 0
    fi
    echo "$label: FAILED (exit code $rc; $MCC_PASS passed, $MCC_FAIL failed, $skip skipped)" >&2
    if [ "$MCC_FAIL" -gt 0 ]; then
        echo "failed memccapable tests:" >&2
        # a [FAIL] may follow the server's unexpected reply on a later line
        awk '/^(ascii|binary) / { name = substr($0, 1, 40); sub(/ +$/, "", name) }
             /\[FAIL\]/ { print "  " name }' "$out" >&2
    fi
    [ "$rc" -eq 124 ] && echo "  (memccapable timed out after 180 s)" >&2
    return 1
}

start_server main
PORT1=$PORT
start_server second
PORT2=$PORT

status=0

echo
echo "=== memccapable (ASCII protocol) against 127.0.0.1:$PORT1 ==="
run_memccapable memccapable "$PORT1" || status=1
mcc_pass=$MCC_PASS
mcc_fail=$MCC_FAIL
check_alive memccapable

echo
echo "=== pytest tests/clients/test_pymemcache.py test_tools.py against 127.0.0.1:$PORT1 (+ :$PORT2) ==="
set +e
TESSERA_ADDR="127.0.0.1:$PORT1" TESSERA_ADDR2="127.0.0.1:$PORT2" \
    timeout 400 python3 -m pytest -q -rs -p no:cacheprovider \
    "$HERE/test_pymemcache.py" "$HERE/test_tools.py"
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
echo "=== TLS stage ==="
server_version=$(timeout 10 "$SERVER_BIN" -V 2>/dev/null | head -n 1 || true)
if [[ "$server_version" != tessera* ]]; then
    echo "TLS stage: SKIPPED: '$SERVER_BIN' is not tessera (-V: '${server_version:-?}');" \
        "the TLS stage needs 'tessera certs' and tessera's TLS options"
    tls_summary="TLS skipped (not tessera)"
else
    tls_summary="TLS FAILED"
    tls_ok=1
    CERTS="$WORK/certs"
    if ! timeout 30 "$SERVER_BIN" certs --out "$CERTS" >"$WORK/certs.log" 2>&1; then
        echo "error: '$SERVER_BIN certs --out $CERTS' failed:" >&2
        cat "$WORK/certs.log" >&2
        exit 1
    fi
    start_server tls -Z -o "ssl_chain_cert=$CERTS/server.pem,ssl_key=$CERTS/server.key"
    TLS_PORT=$PORT

    # the plaintext -> TLS proxy, for memccapable (which has no TLS)
    proxy_log="$WORK/tls_proxy.log"
    echo "starting tools/tls_proxy.py --listen 127.0.0.1:0 --connect 127.0.0.1:$TLS_PORT"
    python3 "$REPO/tools/tls_proxy.py" --listen 127.0.0.1:0 \
        --connect "127.0.0.1:$TLS_PORT" --cafile "$CERTS/ca.pem" >"$proxy_log" 2>&1 &
    proxy_pid=$!
    SERVER_PIDS+=("$proxy_pid")
    SERVER_LOGS+=("$proxy_log")
    PROXY_PORT=
    for _ in $(seq 100); do  # up to 10 s
        if ! kill -0 "$proxy_pid" 2>/dev/null; then
            echo "error: tls_proxy.py exited during startup" >&2
            exit 1
        fi
        PROXY_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$proxy_log" | head -n 1)
        [ -n "$PROXY_PORT" ] && break
        sleep 0.1
    done
    if [ -z "$PROXY_PORT" ]; then
        echo "error: tls_proxy.py did not start listening within 10 s" >&2
        exit 1
    fi
    echo "tls_proxy.py (pid $proxy_pid) on 127.0.0.1:$PROXY_PORT -> TLS 127.0.0.1:$TLS_PORT"

    echo
    echo "=== memccapable (ASCII protocol) through tls_proxy.py to TLS 127.0.0.1:$TLS_PORT ==="
    run_memccapable "memccapable over TLS" "$PROXY_PORT" || tls_ok=0
    tls_mcc="$MCC_PASS/$((MCC_PASS + MCC_FAIL))"
    check_alive "memccapable over TLS"

    echo
    echo "=== pytest tests/clients/test_tls.py test_hostile.py (start their own TLS servers) ==="
    case "$SERVER_BIN" in
        /*) tessera_bin=$SERVER_BIN ;;
        *) tessera_bin="$PWD/$SERVER_BIN" ;;
    esac
    set +e
    TESSERA_BIN="$tessera_bin" \
        timeout 400 python3 -m pytest -q -rs -p no:cacheprovider "$HERE/test_tls.py" \
        "$HERE/test_hostile.py"
    tls_py_rc=$?
    set -e
    if [ "$tls_py_rc" -eq 0 ]; then
        echo "pytest test_tls.py test_hostile.py: OK"
        tls_py="OK"
    else
        echo "pytest test_tls.py test_hostile.py: FAILED (exit code $tls_py_rc)" >&2
        tls_py="FAILED"
        tls_ok=0
    fi
    check_alive "pytest test_tls.py test_hostile.py"
    if [ "$tls_ok" -eq 1 ]; then
        tls_summary="TLS: memccapable via tls_proxy $tls_mcc, pytest test_tls + test_hostile OK"
    else
        tls_summary="TLS FAILED: memccapable via tls_proxy $tls_mcc, pytest test_tls + test_hostile $tls_py"
        status=1
    fi

    echo
    echo "=== unix socket stage: memccapable through a TCP -> unix relay ==="
    SOCK="$WORK/tessera.sock"
    unix_log="$WORK/server-unix.log"
    "$SERVER_BIN" -s "$SOCK" -a 700 -t 2 >"$unix_log" 2>&1 &
    SERVER_PIDS+=("$!")
    SERVER_LOGS+=("$unix_log")
    for _ in $(seq 100); do  # up to 10 s
        [ -S "$SOCK" ] && break
        sleep 0.1
    done
    [ -S "$SOCK" ] || { echo "error: no unix socket at $SOCK within 10 s" >&2; exit 1; }
    relay_log="$WORK/unix_relay.log"
    python3 "$REPO/tools/tls_proxy.py" --listen 127.0.0.1:0 --connect-unix "$SOCK" \
        >"$relay_log" 2>&1 &
    SERVER_PIDS+=("$!")
    SERVER_LOGS+=("$relay_log")
    RELAY_PORT=
    for _ in $(seq 100); do
        RELAY_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$relay_log" | head -n 1)
        [ -n "$RELAY_PORT" ] && break
        sleep 0.1
    done
    [ -n "$RELAY_PORT" ] || { echo "error: unix relay did not start" >&2; exit 1; }
    if run_memccapable "memccapable over a unix socket" "$RELAY_PORT"; then
        unix_summary="unix socket: memccapable $MCC_PASS/$((MCC_PASS + MCC_FAIL))"
    else
        unix_summary="unix socket FAILED: memccapable $MCC_PASS/$((MCC_PASS + MCC_FAIL))"
        status=1
    fi
    tls_summary="$tls_summary; $unix_summary"
fi

echo
echo "=== cluster stage: pytest test_cluster.py (nutcracker, pylibmc), test_discovery.py, test_admin.py ==="
if [[ "$server_version" != tessera* ]]; then
    echo "cluster stage: SKIPPED: '$SERVER_BIN' is not tessera;" \
        "test_cluster.py starts tessera instances of its own"
    cluster_summary="cluster skipped (not tessera)"
else
    case "$SERVER_BIN" in
        /*) cluster_bin=$SERVER_BIN ;;
        *) cluster_bin="$PWD/$SERVER_BIN" ;;
    esac
    set +e
    TESSERA_BIN="$cluster_bin" TESSERA_CLUSTER_REQUIRED=1 \
        timeout 300 python3 -m pytest -q -rs -p no:cacheprovider "$HERE/test_cluster.py" \
        "$HERE/test_discovery.py" "$HERE/test_admin.py"
    cluster_rc=$?
    set -e
    if [ "$cluster_rc" -eq 0 ]; then
        echo "pytest test_cluster.py test_discovery.py test_admin.py: OK"
        cluster_summary="cluster (nutcracker, pylibmc, auto discovery, admin): OK"
    else
        echo "pytest test_cluster.py test_discovery.py test_admin.py: FAILED (exit code $cluster_rc)" >&2
        cluster_summary="cluster (nutcracker, pylibmc, auto discovery, admin) FAILED"
        status=1
    fi
    check_alive "pytest test_cluster.py test_discovery.py test_admin.py"
fi

echo
if [ "$status" -eq 0 ]; then
    echo "client suite: all passed (memccapable $mcc_pass/$((mcc_pass + mcc_fail)), pytest OK;" \
        "$tls_summary; $cluster_summary)"
else
    echo "client suite: FAILED (memccapable $mcc_pass/$((mcc_pass + mcc_fail)), pytest" \
        "$([ "$py_rc" -eq 0 ] && echo OK || echo FAILED); $tls_summary; $cluster_summary)" >&2
fi
exit "$status"
