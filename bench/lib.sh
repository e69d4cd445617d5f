# shellcheck shell=bash
# Helpers the bench scripts share; they source it after cd to the repository root:
#   . bench/lib.sh

# A free loopback port (bound, then released).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: waits up to 10 s until something accepts on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# The scratch directory and background processes of a script: after `bench_scratch`, $tmp is a
# fresh directory and every process appended to the array `pids` is stopped (SIGTERM, then
# waited for) and $tmp removed on exit or interrupt, whatever happens. `stop_pids` stops them
# earlier (matrix.sh between cells).
bench_scratch() {
    tmp=$(mktemp -d)
    pids=()
    trap 'stop_pids; rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
}

stop_pids() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

# pin_split [THREADS]: sets the arrays server_pin and client_pin to put the server on CPU 1 and
# the client on CPU 0, when the machine has two CPUs or more, taskset is there and THREADS
# (the server's -t, default 1) is 1; else both stay empty (no pinning).
pin_split() {
    server_pin=()
    client_pin=()
    if [ "${1:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        server_pin=(taskset -c 1)
        client_pin=(taskset -c 0)
    fi
}
