#!/bin/bash
# Tests tessera's kernel TLS inside a VM whose kernel has kTLS (this host's may not).
#
#   tools/ktls-vm/run.sh            build static binaries, boot Debian's 6.1 kernel (tls.ko)
#                                   under qemu with them in an initramfs, run ktls-check
#   tools/ktls-vm/run.sh bench [S]  the same, but run tessera-bench --compare kTLS vs
#                                   userspace TLS inside the VM (S seconds a round, default 5s);
#                                   keeps the comparisons in docs/results/ktls-vm-bench/
#                                   (RESULTS_DIR as in bench/results.py)
#
# Needs: x86_64 host, qemu-system-x86, busybox-static, cpio, kmod (installed with apt-get
# when missing, as root or through passwordless sudo), and Debian package registries for the
# kernel package. Software emulation (TCG): a few minutes a run on 2 busy cores. KVM is not
# used (ACCEL=kvm to try it).
# Exit: 0 passed ("ktls-vm: passed (N/N checks)"); 1 failed; 3 skipped: the check could not
# run here, and the line "ktls-vm: SKIPPED: REASON" says why. The reasons: the host is not
# x86_64; the VM packages are missing and cannot be installed (not root and no passwordless
# sudo, no apt-get, apt-get update or install failed); no apt-get to fetch the kernel; no
# linux-image-amd64 package in the registries; its download failed; qemu did not boot the
# VM. tools/test.sh fails on exit 3 unless skips are allowed (TESSERA_ALLOW_SKIP=1, not
# under CI).
# Cache: $KTLS_VM_CACHE (default ~/.cache/tessera-ktls-vm) keeps the extracted kernel
# (~400 MB).
# Kernel: KTLS_VM_SUITE=SUITE (e.g. bullseye: Linux 5.10, the oldest kernel tessera promises)
# takes linux-image-amd64 from that Debian suite instead of the host's registries, through a
# private apt configuration under the cache (nothing installed or changed on the host); the
# VM then also prints the io_uring features the server's rings fell back from.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=${1:-check}
SECS=${2:-5s}
CACHE=${KTLS_VM_CACHE:-$HOME/.cache/tessera-ktls-vm}
TRIPLE=x86_64-unknown-linux-gnu
say() { echo "ktls-vm: $*"; }
skip() { say "SKIPPED: $*"; exit 3; }
# Anything else that goes wrong before the VM's verdict is a failure (exit code not 3): say
# where, since the command itself may have printed nothing.
# shellcheck disable=SC2317  # run by the ERR trap
on_err() {
  local rc=$?
  [[ $- != *e* ]] || say "FAILED: line $1 exited with code $rc"
}
trap 'on_err $LINENO' ERR
# as_root CMD...: as root, or through passwordless sudo
# shellcheck source=tools/preflight.sh
source "$ROOT/tools/preflight.sh"

[ "$(uname -m)" = x86_64 ] || skip "the VM recipe is x86_64 only (host is $(uname -m))"

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || skip "missing ${need[*]} and no apt-get to install them"
  as_root true 2>/dev/null || skip "missing ${need[*]}: not root and no passwordless sudo to install them"
  say "installing ${need[*]}"
  APTLOG=$(mktemp "${TMPDIR:-/tmp}/ktlsvm-apt.XXXX.log")
  as_root apt-get update -qq >"$APTLOG" 2>&1 \
    || { tail -n 5 "$APTLOG"; skip "apt-get update failed (log: $APTLOG)"; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >"$APTLOG" 2>&1 \
    || { tail -n 5 "$APTLOG"; skip "apt-get install ${need[*]} failed (log: $APTLOG)"; }
  rm -f "$APTLOG"
fi

# Debian's kernel with net/tls as a module, extracted once.
mkdir -p "$CACHE"
SUITE=${KTLS_VM_SUITE:-}
KDIR="$CACHE/kernel${SUITE:+-$SUITE}"
APTO=()
if [ -n "$SUITE" ]; then
  # A private apt configuration that sees only $SUITE: its own sources, lists and cache,
  # no status file (nothing is installed), so any user can update it.
  A="$CACHE/apt-$SUITE"
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
    "http://deb.debian.org/debian $SUITE main" >"$A/sources.list"
  APTO=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=$A/parts"
    -o "Dir::Etc::PreferencesParts=$A/parts" -o Dir::Etc::Preferences=/dev/null
    -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o Dir::State::status=/dev/null
    -o APT::Architecture=amd64 -o Debug::NoLocking=1 -o Acquire::Languages=none)
fi
if ! ls "$KDIR"/boot/vmlinuz-* >/dev/null 2>&1; then
  command -v apt-get >/dev/null || skip "no apt-get to fetch a kernel with kTLS"
  # the kernel package linux-image-amd64 points at ("" when apt-cache knows none)
  kernel_pkg() {
    { apt-cache "${APTO[@]}" depends linux-image-amd64 2>/dev/null || true; } \
      | awk '/Depends: linux-image-/{print $2; exit}'
  }
  KPKG=$(kernel_pkg)
  # package lists may be missing on a fresh machine (always, for a private one): update
  # once, if we can
  if [ -z "$KPKG" ] && [ -n "$SUITE" ]; then
    apt-get "${APTO[@]}" update -qq >"$CACHE/download.log" 2>&1 || true
    KPKG=$(kernel_pkg)
  elif [ -z "$KPKG" ]; then
    as_root apt-get update -qq >/dev/null 2>&1 || true
    KPKG=$(kernel_pkg)
  fi
  [ -n "$KPKG" ] || skip "no linux-image-amd64 package in the registries${SUITE:+ for $SUITE} (apt-cache depends linux-image-amd64)"
  say "fetching $KPKG"
  rm -rf "$CACHE/kdeb" "$KDIR" && mkdir -p "$CACHE/kdeb"
  (cd "$CACHE/kdeb" && apt-get "${APTO[@]}" download "$KPKG" >"$CACHE/download.log" 2>&1) \
    || { tail -n 5 "$CACHE/download.log"; skip "cannot download the kernel package $KPKG (apt-get download)"; }
  dpkg -x "$CACHE"/kdeb/"$KPKG"_*.deb "$KDIR"
  rm -rf "$CACHE/kdeb"
  depmod -b "$KDIR" "$(ls "$KDIR/lib/modules")"
fi
KVER=$(ls "$KDIR/lib/modules")

say "building static binaries (target $TRIPLE, crt-static)"
(cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
  --target "$TRIPLE" -p tessera -p tessera-bench --bin tessera --bin tessera-bench --example ktls-check)
BIN="$ROOT/target/$TRIPLE/release"

IR=$(mktemp -d "${TMPDIR:-/tmp}/ktlsvm-root.XXXX")
OUT=$(mktemp "${TMPDIR:-/tmp}/ktlsvm.XXXX.cpio.gz")
LOG=$(mktemp "${TMPDIR:-/tmp}/ktlsvm.XXXX.log")
trap 'rm -rf "$IR" "$OUT"' EXIT
mkdir -p "$IR"/{bin,sbin,proc,sys,dev,tmp,lib/modules/"$KVER"/kernel}
cp /bin/busybox "$IR/bin/busybox"
ln -s /bin/busybox "$IR/sbin/modprobe"
M="$KDIR/lib/modules/$KVER"
for d in net/tls crypto arch/x86/crypto lib/crypto; do
  [ -d "$M/kernel/$d" ] || continue
  mkdir -p "$IR/lib/modules/$KVER/kernel/$d"
  cp -r "$M/kernel/$d/." "$IR/lib/modules/$KVER/kernel/$d/"
done
cp "$M"/modules.* "$IR/lib/modules/$KVER/"
cp "$BIN/tessera" "$BIN/tessera-bench" "$BIN/examples/ktls-check" "$IR/bin/"
if [ "$MODE" = bench ]; then
  TEST="/bin/ktls-check /bin/tessera --bench /bin/tessera-bench $SECS"; LIMIT=900
elif ! grep -qE '^CONFIG_TLS=(y|m)' "$KDIR"/boot/config-*; then
  # Debian bullseye's 5.10 is built without kTLS: check the userspace fallback instead.
  say "Linux $KVER is built without CONFIG_TLS: checking that TLS falls back to userspace"
  TEST="/bin/ktls-check /bin/tessera --no-ktls"; LIMIT=300
else
  TEST="/bin/ktls-check /bin/tessera"; LIMIT=300
fi
cat > "$IR/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
ip link set lo up
echo "[init] kernel \$(uname -r), cpus \$(nproc), modprobe tls: \$(modprobe tls && echo ok || echo FAILED)"
# What udev would load on a real machine: the CPU's accelerated crypto, then the generic parts.
for m in aesni_intel ghash_clmulni_intel chacha_x86_64 poly1305_x86_64 \\
         aes_generic gcm chacha20poly1305 chacha_generic poly1305_generic; do modprobe \$m 2>/dev/null; done
echo "[init] crypto drivers: \$(awk '/^driver/{print \$3}' /proc/crypto | grep -E 'gcm|chacha|aes' | sort -u | tr '\\n' ' ')"

ulimit -l 8192
cd /tmp && timeout $LIMIT $TEST; rc=\$?
echo "[init] ktls-check exit=\$rc"
poweroff -f
INIT
chmod +x "$IR/init"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT"

if [ "${ACCEL:-tcg}" = kvm ]; then ACC=(-enable-kvm -cpu host); else ACC=(-accel tcg -cpu max); fi
say "booting Linux $KVER under qemu (${ACCEL:-tcg}); log: $LOG"
set +e
timeout $((LIMIT + 120)) qemu-system-x86_64 "${ACC[@]}" -smp 2 -m 1024 -nographic -no-reboot \
  -nic none -kernel "$KDIR"/boot/vmlinuz-* -initrd "$OUT" \
  -append "console=ttyS0 quiet panic=-1" </dev/null 2>&1 | tr -d '\r' | tee "$LOG"
set -e
if ! grep -q "\[init\] kernel" "$LOG"; then
  # qemu itself could not run (no TCG, no memory, ...): not a tessera failure.
  first=$(grep -m 1 -v '^[[:space:]]*$' "$LOG" | cut -c 1-120 || true)
  skip "qemu did not boot the VM (${first:-no output}; see $LOG)"
fi
# ktls-check's own count, for the summary of tools/test.sh
result=$(sed -n 's/^RESULT: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$LOG" | tail -n 1)
if grep -q "\[init\] ktls-check exit=0" "$LOG" && [ -n "$result" ]; then
  read -r npass nfail <<<"$result"
  say "passed ($npass/$((npass + nfail)) checks)"
  if [ "$MODE" = bench ] && [ -n "${RESULTS_DIR-docs/results}" ]; then
    # docs/tls.md's kTLS vs rustls table: keep the run's comparisons (bench/results.py)
    sed -n '/^== tessera-bench --compare/,/^PASS: tessera-bench/p' "$LOG" \
      | RESULTS_CMD="tools/ktls-vm/run.sh bench $SECS (Linux $KVER under qemu ${ACCEL:-tcg})" \
        python3 "$ROOT/bench/results.py" save ktls-vm-bench output.txt "$BIN/tessera"
  fi
  exit 0
fi
say "FAILED (see $LOG)"
exit 1
