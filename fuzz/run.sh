#!/usr/bin/env bash
# Bounded fuzzing of every target, for CI and by hand:
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default: 20 s, every target)
#
# Needs the nightly toolchain; installs cargo-fuzz (crates.io) when it is missing. Each target
# runs for the given time with one job (-jobs=1 -workers=1), starting from its committed seeds
# (fuzz/seeds/<target>/) and the working corpus it grew before (fuzz/corpus/<target>/, not
# committed). A crash fails the script at the end, after every target ran; its input is left
# in fuzz/artifacts/<target>/ (libFuzzer's crash-*, timeout-*, oom-* files) and the fuzzer's
# output in fuzz/logs/<target>.log. Keep each crash as a named fixture: see fuzz/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
# No sanitizer: navbat forbids unsafe code; panics, overflow checks and debug assertions are
# what the targets look for, and an uninstrumented build is much quicker to make.
FUZZ=(cargo +nightly fuzz)
BUILD_FLAGS=(--sanitizer none)

if ! "${FUZZ[@]}" --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (crates.io)"
    cargo +nightly install cargo-fuzz --locked
fi

if [ "$#" -gt 1 ]; then
    TARGETS=("${@:2}")
else
    mapfile -t TARGETS < <("${FUZZ[@]}" list)
fi
echo "targets: ${TARGETS[*]}; ${SECONDS_PER_TARGET} s each"

started=$(date +%s)
"${FUZZ[@]}" build "${BUILD_FLAGS[@]}"
echo "built in $(( $(date +%s) - started )) s"

mkdir -p fuzz/logs
failed=()
for target in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    log="fuzz/logs/$target.log"
    # -jobs=1 makes libFuzzer write its output to fuzz-0.log in the working directory:
    # run it from fuzz/logs and keep that file as the target's log.
    rm -f fuzz/logs/fuzz-0.log
    status=0
    (
        cd fuzz/logs
        "${FUZZ[@]}" run --fuzz-dir .. "${BUILD_FLAGS[@]}" "$target" \
            "../corpus/$target" "../seeds/$target" -- \
            -max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="../artifacts/$target/"
    ) >"$log.driver" 2>&1 || status=$?
    if [ -f fuzz/logs/fuzz-0.log ]; then
        mv fuzz/logs/fuzz-0.log "$log"
    else
        mv "$log.driver" "$log"
    fi
    rm -f "$log.driver"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$status" -eq 0 ]; then
        echo "ok     $target: ${runs:-?} runs, ${speed:-?} exec/s"
    else
        echo "FAILED $target (exit $status): input in fuzz/artifacts/$target/, output in $log"
        grep -E "panicked|^==[0-9]+==|SUMMARY|Test unit written" "$log" | head -20 || true
        failed+=("$target")
    fi
done

echo "fuzzing took $(( $(date +%s) - started )) s in all"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashes in: ${failed[*]}"
    echo "reproduce: cargo +nightly fuzz run ${BUILD_FLAGS[*]} <target> fuzz/artifacts/<target>/<file>"
    exit 1
fi
