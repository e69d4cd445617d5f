#!/usr/bin/env bash
# What tools/test.sh and .ci/run need from the machine, checked before anything runs.
#
#   source tools/preflight.sh; preflight     (what tools/test.sh and .ci/run do: sourced, so
#                                            that a raised `ulimit -l` holds for the caller)
#   bash tools/preflight.sh                  (the checks alone; a raised limit is then lost)
#
# One line each; what is missing is installed where it can be (rustup, or apt-get as root or
# through passwordless sudo), and what is still missing after that is listed all at once,
# then preflight returns 1:
#   - cargo and rustup, with the rustfmt and clippy components (.ci/run runs cargo fmt and
#     clippy): `rustup component add` when missing
#   - root or passwordless sudo: the dependencies stage and the kTLS VM check install Debian
#     packages with apt-get
#   - cc (ring builds C) and c++ (libfuzzer-sys builds libFuzzer for the fuzz stage): gcc, g++
#   - python3 and pip (the test tools come from PyPI): python3, python3-pip
#   - `ulimit -l` >= 512 KiB (glommio's io_uring floor; tessera refuses to start below it):
#     raised to 8192 KiB when the hard limit (or root) allows
#   - free disk space: PREFLIGHT_MIN_FREE_MB (default 6000) on the filesystems of the work
#     tree and of $HOME. Measured after a full run on a fresh machine: target/ 1.9 GB
#     (release 1.1, the VM's static build 0.4, debug/clippy 0.4), tools/fuzz/target/ 1.6 GB,
#     ~/.cargo 0.2 GB (registry, cargo-fuzz), ~/.cache/tessera-ktls-vm 0.4 GB: ~4.1 GB
# Also defines as_root and apt_install for the scripts that source it.

# as_root CMD...: run as root, or through sudo when that works without a password prompt.
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

# apt_install PKG...: apt-get install, with one apt-get update first; waits (up to 5 min)
# for another apt-get to finish instead of failing on its lock.
APT_UPDATED=${APT_UPDATED:-0}
apt_install() {
    local lock=(-o DPkg::Lock::Timeout=300)
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" update -q || return 1
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -q "$@"
}

preflight() {
    local problems=() notes=() pkgs=() have hard free dir min_mb=${PREFLIGHT_MIN_FREE_MB:-6000}
    local root=0
    echo "==================== preflight (tools/preflight.sh) ===================="
    pf_ok() { echo "preflight: ok: $*"; }
    pf_missing() { echo "preflight: MISSING: $*"; problems+=("$*"); }

    # root first: the other checks install through it
    if [ "$(id -u)" -eq 0 ]; then
        root=1; pf_ok "running as root"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        root=1; pf_ok "passwordless sudo"
    else
        pf_missing "root or passwordless sudo (apt-get installs test tools and the kTLS VM's qemu): run as root, or allow sudo without a password"
    fi

    # Debian packages for missing commands, installed in one apt-get run
    command -v cc >/dev/null || pkgs+=(gcc)
    command -v c++ >/dev/null || pkgs+=(g++)
    command -v python3 >/dev/null || pkgs+=(python3)
    { command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; } \
        || pkgs+=(python3-pip)
    if [ ${#pkgs[@]} -gt 0 ] && [ "$root" -eq 1 ] && command -v apt-get >/dev/null; then
        echo "preflight: installing ${pkgs[*]} from Debian"
        apt_install "${pkgs[@]}" >/dev/null || echo "preflight: apt-get install ${pkgs[*]} failed"
    fi
    if command -v cc >/dev/null; then pf_ok "cc: $(command -v cc)"
    else pf_missing "cc, a C compiler (ring builds C code): apt-get install gcc"; fi
    if command -v c++ >/dev/null; then pf_ok "c++: $(command -v c++)"
    else pf_missing "c++, a C++ compiler (the fuzz stage builds libFuzzer): apt-get install g++"; fi
    if ! command -v python3 >/dev/null; then
        pf_missing "python3 (the client suite): apt-get install python3"
    elif python3 -m pip --version >/dev/null 2>&1; then
        pf_ok "python3 $(python3 -c 'import sys; print(sys.version.split()[0])') with pip"
    else
        pf_missing "pip for $(command -v python3) (the test tools come from PyPI): apt-get install python3-pip"
    fi

    # the Rust toolchain and the components CI uses
    if ! command -v cargo >/dev/null; then
        pf_missing "cargo: install rustup (https://rustup.rs), then open a new shell"
    elif ! command -v rustup >/dev/null; then
        if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
            pf_ok "cargo $(cargo --version | cut -d' ' -f2) with rustfmt and clippy (no rustup)"
        else
            pf_missing "rustfmt or clippy, and no rustup to add them"
        fi
    else
        local comp want=() installed
        installed=$(rustup component list --installed 2>/dev/null || true)
        for comp in rustfmt clippy; do
            grep -q "^$comp" <<<"$installed" || want+=("$comp")
        done
        if [ ${#want[@]} -gt 0 ]; then
            echo "preflight: rustup component add ${want[*]}"
            rustup component add "${want[@]}" || true
        fi
        if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
            pf_ok "cargo $(cargo --version | cut -d' ' -f2) with rustfmt and clippy"
        else
            pf_missing "the rustfmt and clippy components (cargo fmt / cargo clippy): rustup component add rustfmt clippy failed"
        fi
    fi

    # locked memory for io_uring: raise the soft limit (and the hard one as root) for this
    # shell and everything it starts
    have=$(ulimit -S -l)
    if [ "$have" != unlimited ] && [ "$have" -lt 512 ]; then
        hard=$(ulimit -H -l)
        if ulimit -l 8192 2>/dev/null; then
            pf_ok "ulimit -l was $have KiB, raised to 8192 KiB"
        elif { [ "$hard" = unlimited ] || [ "$hard" -ge 512 ]; } && ulimit -S -l "$hard" 2>/dev/null; then
            pf_ok "ulimit -l was $have KiB, raised to the hard limit ($hard KiB)"
        else
            local how="run as root"
            [ "$(id -u)" -ne 0 ] || how="root cannot raise it here (no CAP_SYS_RESOURCE: a container?)"
            pf_missing "ulimit -l is $have KiB (hard limit $hard KiB), io_uring needs >= 512 KiB: $how; raise memlock where this shell starts (/etc/security/limits.conf, systemd LimitMEMLOCK=, docker run --ulimit memlock=8388608)"
        fi
    else
        pf_ok "ulimit -l $have KiB (>= 512)"
    fi

    # disk: the builds (target/, tools/fuzz/target/), cargo-fuzz and the VM kernel
    local seen=" " fs
    for dir in "$(pwd)" "$HOME"; do
        read -r fs free < <(df -Pm "$dir" 2>/dev/null | awk 'NR == 2 {print $1, $4}') || true
        [[ "$seen" == *" $fs "* ]] && continue  # one filesystem for both: counted once
        seen+="$fs "
        if [ -z "$free" ]; then
            notes+=("cannot tell the free space in $dir")
        elif [ "$free" -lt "$min_mb" ]; then
            pf_missing "disk: $free MB free in $dir, need $min_mb MB (builds and caches; PREFLIGHT_MIN_FREE_MB)"
        else
            pf_ok "disk: $free MB free in $dir (>= $min_mb MB)"
        fi
    done
    local n
    for n in "${notes[@]}"; do echo "preflight: note: $n"; done

    if [ ${#problems[@]} -gt 0 ]; then
        echo "preflight: FAILED, ${#problems[@]} missing:" >&2
        for n in "${problems[@]}"; do echo "  - $n" >&2; done
        return 1
    fi
    echo "preflight: ok"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    cd "$(dirname "$0")/.." || exit 1
    preflight
    exit $?
fi
