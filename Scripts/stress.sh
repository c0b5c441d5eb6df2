#!/usr/bin/env bash
# Runs the 100-connection tests (ConcurrencyTests: sockets with one and two event loops,
# addressed and unaddressed datagram pairs, stream pairs, the application-driven loop) RUNS
# times in a row (default 50) while two busy processes load the CPU, the conditions under which
# a dropped connection timer once idled a client out in 1 of 5–20 runs. FILTER picks other
# tests. Prints each failing run's log and ends with "N passed, M failed".
#
# Usage: Scripts/stress.sh [RUNS] [FILTER]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
filter=${2:-ConcurrencyTests}
swift build --build-tests >/dev/null || exit 1
busy() { while :; do :; done; }
busy & first=$!
busy & second=$!
trap 'kill $first $second 2>/dev/null' EXIT
logs=$(mktemp -d)
passed=0
failed=0
for run in $(seq 1 "$runs"); do
    if timeout 600 swift test --skip-build --filter "$filter" >"$logs/$run.log" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "run $run failed (log: $logs/$run.log):"
        grep -E "✘|Expectation failed|error" "$logs/$run.log" | head -20
    fi
done
echo "stress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
