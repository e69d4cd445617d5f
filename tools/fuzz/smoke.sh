#!/usr/bin/env bash
# Fuzz smoke test for CI: every fuzz target (text, meta, tls_records) runs briefly.
#
#   tools/fuzz/smoke.sh [SECONDS_PER_TARGET]      (default 20)
#
# Two modes; the script says which one ran:
#   fuzz   - cargo-fuzz is installed and builds the targets on this toolchain (it does on
#            stable, with `-s none`: no sanitizer, coverage instrumentation only): each target
#            runs under libFuzzer for SECONDS_PER_TARGET, starting from the seeds in
#            tools/fuzz/corpus/<target> (new inputs go to a temporary directory and are
#            dropped; a crashing input is kept in tools/fuzz/artifacts/<target>/).
#   replay - no cargo-fuzz, or it does not build here: the seed corpora are replayed
#            through the same target functions by `cargo test` in tools/fuzz. No fuzzing:
#            tools/test.sh runs FUZZ_MODE=fuzz when strict (always under CI=true), and
#            counts a replay-only run as SKIPPED only with TESSERA_ALLOW_SKIP=1.
# Environment:
#   FUZZ_MODE=auto|fuzz|replay   auto (default) picks fuzz when it can; fuzz fails instead
#                                of falling back.
#   FUZZ_INSTALL=1               `cargo install cargo-fuzz --locked` first if it is missing
#                                (about a minute on 2 cores).
#   FUZZ_TARGETS="text meta"     a subset of the targets.
#   FUZZ_TARGET_DIR=DIR          build there instead of tools/fuzz/target (a directory kept
#                                between CI runs skips the cold build: ~3.5 min -> ~1 min).
# Exits non-zero on a crash, a hang (libFuzzer -timeout) or a failed replay. Leaves no
# processes behind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-20}
mode=${FUZZ_MODE:-auto}
read -r -a targets <<<"${FUZZ_TARGETS:-text meta tls_records}"
start=$SECONDS
target_dir=${FUZZ_TARGET_DIR:-$here/target}

case "$secs" in '' | *[!0-9]*) echo "fuzz smoke: seconds must be a number, not '$secs'" >&2; exit 2 ;; esac
case "$mode" in auto | fuzz | replay) ;; *) echo "fuzz smoke: FUZZ_MODE=$mode is not auto, fuzz or replay" >&2; exit 2 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz-smoke.XXXXXX")
child=
cleanup() {
    if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        sleep 1
        kill -KILL "$child" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

replay() {
    echo "fuzz smoke: mode=replay ($1): seed corpora through the targets with cargo test ($(rustc --version))"
    cd "$here"
    local args=()
    for t in "${targets[@]}"; do args+=("corpus_$t"); done
    if ! CARGO_TARGET_DIR="$target_dir" cargo test --no-default-features --test replay -- "${args[@]}"; then
        echo "fuzz smoke: mode=replay FAILED (cargo test --test replay in tools/fuzz)"
        exit 1
    fi
    echo "fuzz smoke: mode=replay passed in $((SECONDS - start))s"
    exit 0
}

[ "$mode" = replay ] && replay "FUZZ_MODE=replay"

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "${FUZZ_INSTALL:-0}" = 1 ]; then
        echo "fuzz smoke: installing cargo-fuzz"
        cargo install cargo-fuzz --locked || {
            [ "$mode" = fuzz ] && { echo "fuzz smoke: cargo install cargo-fuzz failed" >&2; exit 1; }
            replay "cargo install cargo-fuzz failed"
        }
    elif [ "$mode" = fuzz ]; then
        echo "fuzz smoke: FUZZ_MODE=fuzz but cargo-fuzz is not installed (FUZZ_INSTALL=1 installs it)" >&2
        exit 1
    else
        replay "cargo-fuzz is not installed; FUZZ_INSTALL=1 installs it"
    fi
fi

echo "fuzz smoke: building the targets with $(cargo fuzz --version), $(rustc --version), -s none"
if ! (cd "$root" && cargo fuzz build --fuzz-dir tools/fuzz -s none --target-dir "$target_dir") >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log"
    if [ "$mode" = fuzz ]; then
        echo "fuzz smoke: cargo fuzz build failed" >&2
        exit 1
    fi
    replay "cargo fuzz build failed on this toolchain"
fi
echo "fuzz smoke: built in $((SECONDS - start))s"

host=$(rustc -vV | sed -n 's/^host: //p')
bin="$target_dir/$host/release"
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus-$t" "$here/artifacts/$t"
    dict=()
    [ -f "$here/dicts/$t.dict" ] && dict=("-dict=$here/dicts/$t.dict")
    log="$work/$t.log"
    # libFuzzer stops itself after -max_total_time; timeout is the backstop.
    timeout --kill-after=10 $((secs + 120)) "$bin/$t" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$t/" "${dict[@]}" \
        "$work/corpus-$t" "$here/corpus/$t" >"$log" 2>&1 &
    child=$!
    rc=0
    wait "$child" || rc=$?
    child=
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    if [ "$rc" -ne 0 ]; then
        echo "fuzz smoke: $t FAILED (exit $rc):"
        grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse)' "$log" | tail -n 60
        failed+=("$t")
    else
        echo "fuzz smoke: $t ok: ${runs:-?} inputs in ${secs}s, ${cov:-cov: ?}"
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: mode=fuzz FAILED: ${failed[*]} (inputs in tools/fuzz/artifacts/; see tools/fuzz/README.md)"
    exit 1
fi
echo "fuzz smoke: mode=fuzz passed (${#targets[@]} targets x ${secs}s) in $((SECONDS - start))s"
