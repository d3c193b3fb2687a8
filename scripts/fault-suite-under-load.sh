#!/usr/bin/env bash
# Runs the fault-injection suite (tests/integration/faults.rs) N times in a row (default 5) while
# `stress-ng --cpu 2` keeps two cores busy, and stops at the first failing run. The claim it
# checks: the suite's verdicts do not depend on an idle machine (RELIABILITY.md, "Under load").
#
#   scripts/fault-suite-under-load.sh          # 5 runs
#   scripts/fault-suite-under-load.sh 10       # 10 runs
#   STRESS_CPUS=4 scripts/fault-suite-under-load.sh
#
# The test binary is built first, unloaded, so every run measures the suite and not the build.
# Each run's output goes to target/fault-suite-under-load/run-N.log; a summary line per run
# (pass/fail, seconds) is printed. stress-ng comes from scripts/install-test-deps.sh (Debian's
# stress-ng package); it is stopped on exit, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
cpus=${STRESS_CPUS:-2}
case "$runs" in
  ''|*[!0-9]*|0) echo "usage: $0 [RUNS]   (RUNS a whole number, at least 1)" >&2; exit 2 ;;
esac
command -v stress-ng >/dev/null || {
  echo "fault-suite-under-load: stress-ng is missing (scripts/install-test-deps.sh installs it)" >&2
  exit 1
}

logs=target/fault-suite-under-load
mkdir -p "$logs"
echo "fault-suite-under-load: building the test binary" >&2
cargo test -j2 --test integration --no-run

# stress-ng runs in a process group of its own (setsid), so that stopping it stops its workers
# too: the whole group gets SIGTERM, then SIGKILL if it is still there after 5 s.
stress_pid=""
stop_stress() {
  [ -n "$stress_pid" ] || return 0
  kill -TERM -- "-$stress_pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 -- "-$stress_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$stress_pid" 2>/dev/null || true
  wait "$stress_pid" 2>/dev/null || true
  stress_pid=""
}
trap stop_stress EXIT
trap 'exit 130' INT TERM

setsid stress-ng --cpu "$cpus" --quiet &
stress_pid=$!
echo "fault-suite-under-load: stress-ng --cpu $cpus running (pid $stress_pid); $runs runs" >&2

total_start=$(date +%s)
for run in $(seq 1 "$runs"); do
  log="$logs/run-$run.log"
  start=$(date +%s)
  if cargo test -j2 --test integration faults:: >"$log" 2>&1; then
    echo "run $run/$runs: pass in $(( $(date +%s) - start ))s ($(grep -h '^test result:' "$log" | tail -n 1))"
  else
    echo "run $run/$runs: FAIL after $(( $(date +%s) - start ))s; the failures, from $log:"
    sed -n '/^failures:$/,$p' "$log" | head -n 80
    exit 1
  fi
done
echo "fault-suite-under-load: $runs of $runs runs passed in $(( $(date +%s) - total_start ))s under stress-ng --cpu $cpus"
