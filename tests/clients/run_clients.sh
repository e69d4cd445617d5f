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
# Last, the servers and proxies are stopped (SIGTERM): the run fails when one of them was
# killed by a crash signal (tests/clients/crashes.py: SIGABRT, SIGSEGV, SIGBUS, SIGILL,
# SIGFPE, the rule of the pytest fixtures), has a crash mark in its log (a panic, a sanitizer
# report, glibc's heap checks), needed SIGKILL (not gone 5 s after SIGTERM), or exited with
# a non-zero code (tessera, memcached and tls_proxy.py exit 0 on SIGTERM). They are stopped
# on any exit, whatever happens.
# Environment: TESSERA_NO_SKIP=1 (tools/test.sh sets it when strict) makes a skipped stage
# (TLS, cluster), a skipped memccapable test, or a skipped pytest test (conftest.py; CI=true
# does that too) a failure.
# Exit: 0 passed (the last line says whether stages were SKIPPED); 1 failed; 2 usage or a
# missing tool.
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
NO_SKIP=${TESSERA_NO_SKIP:-0}
# The real interpreter for the processes started here: where `python3` is a shim that does
# not exec python in place (pyenv here), $! of a background `python3 ...` is the shim's pid:
# SIGTERM would reach only the shim, the proxy would keep running, and the exit status
# checked below would be the shim's.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
# The crash rule (crashes.py, shared with the pytest fixtures): killed by one of these
# signals, or a crash mark in the log.
CRASH_SIGNALS=" $("$PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1])
from crashes import CRASH_SIGNALS; print(" ".join(str(int(s)) for s in sorted(CRASH_SIGNALS)))' \
    "$HERE") "
# Every process started here (servers and proxies), by index: pid, name, log.
SERVER_PIDS=()
SERVER_NAMES=()
SERVER_LOGS=()

# track NAME PID LOG: stop_servers stops it and checks how it exited.
track() {
    SERVER_NAMES+=("$1")
    SERVER_PIDS+=("$2")
    SERVER_LOGS+=("$3")
}

# stop_servers [show]: SIGTERM to every process started so far, SIGKILL to any still running
# 5 s later, then each one's exit is checked: it fails (returns 1, saying which process and
# why) when one was killed by a crash signal, needed the SIGKILL, exited with a non-zero
# code (tessera, memcached and tls_proxy.py exit 0 on SIGTERM), or has a crash mark in its
# log. A crash at any point, shutdown included, fails the run. The end of every log is
# shown on a failure, or with "show". The processes are forgotten afterwards.
# shellcheck disable=SC2317  # also run by the EXIT trap
stop_servers() {
    local show=${1:-} bad=0 i pid code why log
    local -a killed=()
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for i in "${!SERVER_PIDS[@]}"; do
        pid=${SERVER_PIDS[$i]}
        for _ in $(seq 50); do  # up to 5 s for a clean exit
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        killed[i]=0
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            killed[i]=1
        fi
    done
    for i in "${!SERVER_PIDS[@]}"; do
        pid=${SERVER_PIDS[$i]} code=0 why=
        wait "$pid" 2>/dev/null || code=$?
        if [ "${killed[i]}" -eq 1 ]; then
            why="did not exit within 5 s of SIGTERM (SIGKILL sent)"
        elif [ "$code" -gt 128 ] && [[ "$CRASH_SIGNALS" == *" $((code - 128)) "* ]]; then
            why="crashed: killed by SIG$(kill -l "$((code - 128))")"
        elif [ "$code" -gt 128 ]; then
            why="killed by SIG$(kill -l "$((code - 128))") (exit status $code), not a graceful stop"
        elif [ "$code" -ne 0 ]; then
            why="exited with code $code"
        fi
        if [ -n "$why" ]; then
            echo "error: ${SERVER_NAMES[$i]} (pid $pid) $why" >&2
            bad=1
        fi
    done
    # The crash marks of crashes.py in each log (a Rust panic, an AddressSanitizer report,
    # glibc's heap checks).
    if [ "${#SERVER_LOGS[@]}" -gt 0 ] && ! "$PYTHON" "$HERE/crashes.py" "${SERVER_LOGS[@]}"; then
        bad=1
    fi
    if [ "$bad" -eq 1 ] || [ -n "$show" ]; then
        for i in "${!SERVER_LOGS[@]}"; do
            log=${SERVER_LOGS[$i]}
            if [ -s "$log" ]; then
                echo "--- last lines of the output of ${SERVER_NAMES[$i]} ($(basename "$log")) ---" >&2
                tail -n 40 "$log" >&2
            fi
        done
    fi
    SERVER_PIDS=() SERVER_NAMES=() SERVER_LOGS=()
    return "$bad"
}

# shellcheck disable=SC2317  # run by the EXIT trap
on_exit() {
    local rc=$?
    # after a failure, every process's log helps
    if [ "$rc" -ne 0 ]; then
        stop_servers show || true
    else
        stop_servers || rc=1
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
    track "server '$name'" "$pid" "$log"
    for _ in $(seq 100); do  # up to 10 s
        if ! kill -0 "$pid" 2>/dev/null; then
            # stop_servers says how it exited and shows its output
            echo "error: server '$name' exited during startup" >&2
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
    local i
    for i in "${!SERVER_PIDS[@]}"; do
        if ! kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null; then
            echo "error: ${SERVER_NAMES[$i]} (pid ${SERVER_PIDS[$i]}) died during $1" >&2
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
    elif [ "$NO_SKIP" = 1 ] && [ "$skip" -gt 0 ]; then
        echo "$label: FAILED: $skip tests skipped, and TESSERA_NO_SKIP=1:" >&2
        grep '\[skip\]' "$out" >&2
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

# run_pytest TIMEOUT FILE...: one pytest run (the caller sets its environment); returns its
# exit code. Under TESSERA_NO_SKIP=1 (or CI=true) conftest.py turns a skipped test into a
# failure that names it and the reason.
run_pytest() {
    local secs=$1 rc=0
    shift
    timeout "$secs" "$PYTHON" -m pytest -q -rs -p no:cacheprovider "$@" || rc=$?
    [ "$rc" -ne 124 ] || echo "  (pytest timed out after $secs s)" >&2
    return "$rc"
}

# skip_stage WHAT REASON: a stage that cannot run against this server; a failure with
# TESSERA_NO_SKIP=1 (tools/test.sh's strict runs).
skip_stage() {
    if [ "$NO_SKIP" = 1 ]; then
        echo "error: $1: cannot run ($2), and TESSERA_NO_SKIP=1" >&2
        status=1
    else
        echo "$1: SKIPPED: $2"
        skipped=1
    fi
}

start_server main
PORT1=$PORT
start_server second
PORT2=$PORT

status=0
skipped=0

echo
echo "=== memccapable (ASCII protocol) against 127.0.0.1:$PORT1 ==="
run_memccapable memccapable "$PORT1" || status=1
mcc_pass=$MCC_PASS
mcc_fail=$MCC_FAIL
check_alive memccapable

echo
echo "=== pytest tests/clients/test_pymemcache.py test_tools.py against 127.0.0.1:$PORT1 (+ :$PORT2) ==="
py_rc=0
TESSERA_ADDR="127.0.0.1:$PORT1" TESSERA_ADDR2="127.0.0.1:$PORT2" \
    run_pytest 400 "$HERE/test_pymemcache.py" "$HERE/test_tools.py" || py_rc=$?
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
    skip_stage "TLS stage" "'$SERVER_BIN' is not tessera (-V: '${server_version:-?}'): the TLS stage needs 'tessera certs' and its TLS options"
    tls_summary="TLS SKIPPED (not tessera)"
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
    "$PYTHON" "$REPO/tools/tls_proxy.py" --listen 127.0.0.1:0 \
        --connect "127.0.0.1:$TLS_PORT" --cafile "$CERTS/ca.pem" >"$proxy_log" 2>&1 &
    proxy_pid=$!
    track "tls_proxy.py" "$proxy_pid" "$proxy_log"
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
    tls_py_rc=0
    TESSERA_BIN="$tessera_bin" \
        run_pytest 400 "$HERE/test_tls.py" "$HERE/test_hostile.py" || tls_py_rc=$?
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
    track "server 'unix'" "$!" "$unix_log"
    for _ in $(seq 100); do  # up to 10 s
        [ -S "$SOCK" ] && break
        sleep 0.1
    done
    [ -S "$SOCK" ] || { echo "error: no unix socket at $SOCK within 10 s" >&2; exit 1; }
    relay_log="$WORK/unix_relay.log"
    "$PYTHON" "$REPO/tools/tls_proxy.py" --listen 127.0.0.1:0 --connect-unix "$SOCK" \
        >"$relay_log" 2>&1 &
    track "unix relay (tls_proxy.py)" "$!" "$relay_log"
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
    skip_stage "cluster stage" "'$SERVER_BIN' is not tessera: test_cluster.py starts tessera instances of its own"
    cluster_summary="cluster SKIPPED (not tessera)"
else
    case "$SERVER_BIN" in
        /*) cluster_bin=$SERVER_BIN ;;
        *) cluster_bin="$PWD/$SERVER_BIN" ;;
    esac
    cluster_rc=0
    TESSERA_BIN="$cluster_bin" TESSERA_CLUSTER_REQUIRED=1 \
        run_pytest 300 "$HERE/test_cluster.py" "$HERE/test_discovery.py" "$HERE/test_admin.py" \
        || cluster_rc=$?
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
echo "=== stopping the servers and proxies: each must exit 0 on SIGTERM, without a crash ==="
if stop_servers; then
    stop_summary="servers stopped cleanly"
else
    stop_summary="servers FAILED at stop (above)"
    status=1
fi

echo
summary="memccapable $mcc_pass/$((mcc_pass + mcc_fail)), pytest $([ "$py_rc" -eq 0 ] && echo OK || echo FAILED); $tls_summary; $cluster_summary; $stop_summary"
if [ "$status" -ne 0 ]; then
    echo "client suite: FAILED ($summary)" >&2
elif [ "$skipped" -eq 1 ]; then
    echo "client suite: stages SKIPPED, the rest passed ($summary)"
else
    echo "client suite: all passed ($summary)"
fi
exit "$status"
