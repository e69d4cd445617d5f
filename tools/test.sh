#!/usr/bin/env bash
# The project's test command:  bash tools/test.sh
#
# Needs rustup/cargo, python3 and pip (Debian bookworm); installs what else it
# needs only when missing: memccapable, memcached, openssl, nutcracker (twemproxy) from
# Debian; pymemcache, pytest, pylibmc, django-elastipymemcache, prometheus_client from
# PyPI (pylibmc's manylinux wheel carries its own libmemcached; only if pip has to build
# it are libmemcached-dev and zlib1g-dev installed).
# Then:
#   1. cargo build --release
#   2. cargo test --release
#   3. tests/clients/run_clients.sh target/release/tessera  (memccapable, pymemcache, TLS,
#      unix socket, memcached-tool / exporter checks, and a cluster of three instances
#      behind nutcracker and behind pylibmc, both with ketama; auto discovery with an
#      ElastiCache client; the admin listener's metrics and health endpoints)
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

# apt-get install, with one apt-get update first
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# pip install; Debian's system python refuses plain pip installs (PEP 668): fall back
# to --user.
pip_install() {
    python3 -m pip install -q "$@" \
        || python3 -m pip install -q --user --break-system-packages "$@"
}

stage "dependencies"
command -v cargo >/dev/null || { echo "error: cargo not found (install rustup)" >&2; exit 1; }
# memccapable (text-protocol suite), memcached (memcached-tool comes with it), openssl
# (s_client and RSA test certificates in the TLS suite)
if ! command -v memccapable >/dev/null || ! command -v openssl >/dev/null \
        || [ ! -x /usr/share/memcached/scripts/memcached-tool ]; then
    echo "installing libmemcached-tools (memccapable), memcached and openssl from Debian"
    apt_install libmemcached-tools memcached openssl
fi
# nutcracker (twemproxy): tests/clients/test_cluster.py shards keys through it
if ! command -v nutcracker >/dev/null && [ ! -x /usr/sbin/nutcracker ]; then
    echo "installing nutcracker (twemproxy) from Debian"
    apt_install nutcracker
fi
if ! python3 -c 'import pymemcache, pytest' 2>/dev/null; then
    echo "installing pymemcache and pytest from PyPI"
    pip_install pymemcache pytest
fi
# pylibmc (libmemcached's ketama in test_cluster.py): a wheel if there is one, else
# built from source against Debian's libmemcached-dev
if ! python3 -c 'import pylibmc' 2>/dev/null; then
    echo "installing pylibmc from PyPI"
    if ! pip_install --only-binary=:all: pylibmc; then
        build_deps=(libmemcached-dev zlib1g-dev)
        # Debian's own python3 has no headers without python3-dev
        python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
            || build_deps+=(python3-dev)
        echo "no pylibmc wheel for this python: building it (${build_deps[*]})"
        apt_install "${build_deps[@]}"
        pip_install pylibmc
    fi
fi
# django-elastipymemcache: an ElastiCache auto-discovery client (config get cluster) for
# tests/clients/test_discovery.py
if ! python3 -c 'import django_elastipymemcache.client' 2>/dev/null; then
    echo "installing django-elastipymemcache from PyPI"
    pip_install django-elastipymemcache
fi
# prometheus_client: its text-format parser reads the admin listener's /metrics
# (tests/clients/test_admin.py)
if ! python3 -c 'import prometheus_client.parser' 2>/dev/null; then
    echo "installing prometheus_client from PyPI"
    pip_install prometheus_client
fi
echo "memccapable: $(command -v memccapable)"
nutcracker_bin=$(command -v nutcracker || echo /usr/sbin/nutcracker)
echo "nutcracker: $nutcracker_bin ($("$nutcracker_bin" -V 2>&1 | head -n 1))"
python3 -c 'import pymemcache, pytest; print("pymemcache", pymemcache.__version__, "/ pytest", pytest.__version__)'
python3 -c 'import pylibmc; print("pylibmc", pylibmc.__version__, "(libmemcached", pylibmc.libmemcached_version + ")")'

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
