#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/Package.swift and fuzzes each one for N seconds.
#
#   Fuzz/run.sh [SECONDS] [TARGET...]     SECONDS defaults to 20; TARGETs default to all five
#
# Each target runs over a temporary copy of Fuzz/corpus/<target>/, so runs never touch the
# repository. Crashing inputs are kept in Fuzz/.build/fuzz-artifacts/<target>/ (git-ignored)
# and printed as hex. Exits non-zero if any target crashes, leaks, times out or fails to run.
#
# Environment: FUZZ_CONFIGURATION=release|debug (default release),
#              FUZZ_ARGS="..." extra libFuzzer flags (e.g. "-jobs=2 -workers=2").
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(FuzzPacketHeader FuzzFrames FuzzTransportParameters FuzzTLS FuzzSCTP)
fi
configuration="${FUZZ_CONFIGURATION:-release}"
build=(swift build -c "$configuration" --sanitize=fuzzer --package-path .)

# Swift's crash reporter hangs under the sanitizer runtime; libFuzzer prints the stack itself.
export SWIFT_BACKTRACE=enable=no

start=$(date +%s)
nice -n 10 "${build[@]}"
bin="$("${build[@]}" --show-bin-path)"
echo "fuzz build ($configuration): $(( $(date +%s) - start )) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/quiver-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }

status=0
for target in "${targets[@]}"; do
    corpus="$work/$target"
    artifacts="$PWD/.build/fuzz-artifacts/$target"
    log="$work/$target.log"
    mkdir -p "$corpus" "$artifacts"
    cp -R "corpus/$target/." "$corpus/"

    rc=0
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    progress=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9A-Za-z]*' | tail -1 || true)
    if [ "$rc" -eq 0 ]; then
        echo "$target: ok, ${execs:-?} execs in ${seconds} s (${rate:-?}/s), ${progress:-no coverage reported}"
    else
        status=1
        echo "$target: FAILED (exit $rc) after ${execs:-?} execs (${rate:-?}/s), ${progress:-no coverage reported}"
        echo "---- last lines of the $target log ----"
        tail -n 60 "$log"
        echo "----"
        for crash in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
            [ -f "$crash" ] && echo "input $crash ($(wc -c <"$crash") bytes): $(hex "$crash")"
            echo "reproduce: $bin/$target $crash"
        done
    fi
done
exit $status
