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
