#!/usr/bin/env bash
# The project's test command:  bash tools/test.sh
#
# Needs rustup/cargo, python3 and pip (Debian bookworm); installs what else it
# needs (memccapable, pymemcache, pytest) only when missing, then:
#   1. cargo build --release
#   2. cargo test --release
#   3. tests/clients/run_clients.sh target/release/tessera  (memccapable, pymemcache, TLS,
#      unix socket, memcached-tool / exporter checks)
#   4. tools/fuzz/smoke.sh: the fuzz targets (text, meta, TLS records) under libFuzzer
#      for FUZZ_SECONDS (default 5) each, cargo-fuzz installed if missing; where it cannot
#      be installed or built, the seed corpora are replayed through the targets instead
#   5. tools/ktls-vm/run.sh: kernel TLS inside a qemu VM (Debian's kernel with tls.ko);
#      skipped, with a message saying why, only where qemu cannot run
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE="setup"
on_exit() {
    local rc=$?
    echo
    if [ "$rc" -eq 0 ]; then
        echo "tools/test.sh: all stages passed (deps, build, cargo test, client suite, fuzz smoke, kTLS VM)"
    else
        echo "tools/test.sh: FAILED in stage '$STAGE' (exit code $rc)" >&2
    fi
}
trap on_exit EXIT

stage() {
    STAGE=$1
    echo
    echo "==================== $1 ===================="
}

# Run as root, or through sudo when that works without a password prompt.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        echo "error: need root (or passwordless sudo) to run: $*" >&2
        return 1
    fi
}

stage "dependencies"
command -v cargo >/dev/null || { echo "error: cargo not found (install rustup)" >&2; exit 1; }
# memccapable (text-protocol suite), memcached (memcached-tool comes with it), openssl
# (s_client and RSA test certificates in the TLS suite)
if ! command -v memccapable >/dev/null || ! command -v openssl >/dev/null \
        || [ ! -x /usr/share/memcached/scripts/memcached-tool ]; then
    echo "installing libmemcached-tools (memccapable), memcached and openssl from Debian"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        libmemcached-tools memcached openssl
fi
if ! python3 -c 'import pymemcache, pytest' 2>/dev/null; then
    echo "installing pymemcache and pytest from PyPI"
    # Debian's system python refuses plain pip installs (PEP 668): fall back to --user.
    python3 -m pip install -q pymemcache pytest \
        || python3 -m pip install -q --user --break-system-packages pymemcache pytest
fi
echo "memccapable: $(command -v memccapable)"
python3 -c 'import pymemcache, pytest; print("pymemcache", pymemcache.__version__, "/ pytest", pytest.__version__)'

stage "cargo build --release"
cargo build --release

stage "cargo test --release"
cargo test --release

stage "client suite (memccapable + pymemcache)"
tests/clients/run_clients.sh target/release/tessera

stage "fuzz smoke (tools/fuzz/smoke.sh)"
FUZZ_INSTALL=1 tools/fuzz/smoke.sh "${FUZZ_SECONDS:-5}"

stage "kernel TLS in a VM (tools/ktls-vm/run.sh)"
set +e
tools/ktls-vm/run.sh
rc=$?
set -e
if [ "$rc" -eq 3 ]; then
    echo "*** kTLS VM test SKIPPED: qemu cannot run here (reason above) ***"
elif [ "$rc" -ne 0 ]; then
    exit "$rc"
fi
