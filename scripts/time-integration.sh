#!/usr/bin/env bash
# Times the integration suite: builds it once, then runs `cargo test --test integration` N times
# (default 3) as CI does (promtool and root required) and prints each run's wall time and the
# median. For before/after comparisons, run it on each tree in turn on an otherwise idle machine.
#
#   bash scripts/time-integration.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
export PKI_SIDECAR_REQUIRE_PROMTOOL=1 PKI_SIDECAR_REQUIRE_ROOT=1 CARGO_TERM_COLOR=never
cargo test -j2 --locked --test integration --no-run >/dev/null 2>&1
times=()
for run in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  status=0
  cargo test -j2 --locked --test integration >/dev/null 2>&1 || status=$?
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  echo "run $run: ${seconds} s (exit $status)"
  times+=("$seconds")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] " s"}'
