#!/usr/bin/env bash
# bench/access-log.sh [--smoke]: what proxy.access_log costs on HTTP/1.1 keep-alive requests/s.
#
# Runs `pki-sidecar dev` (app, proxy and agent in one process, on the development CA) twice per
# round, without and with `--access-log`, pinned to CPU 0, and wrk against its TLS listener from
# CPU 1 (32 keep-alive connections, one thread, GET /). The log (stderr) goes to a file, as a
# container runtime would take it. Prints each run's requests/s and requests per CPU second of
# the dev process (its scheduler time during the wrk run: steadier than requests/s when other
# work shares the machine), the medians, and the ratios on / off. The process also runs the app
# that answers, whose work per request does not change, so the ratios understate the proxy's own
# relative cost. The rounds alternate which run goes first.
#
# --smoke: 1 round of 1 s each (checks the script; the figure means nothing).
# Environment: PKI_SIDECAR_BIN (skip the build), BENCH_ROUNDS (default 1), BENCH_DURATION
# (seconds per run, default 10), BENCH_KEEP=1 (keep the logs).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

if [ "${1:-}" = --smoke ]; then
  rounds=1 duration=1
else
  [ $# -eq 0 ] || fail "usage: bench/access-log.sh [--smoke]"
  rounds=${BENCH_ROUNDS:-1} duration=${BENCH_DURATION:-10}
fi
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: one for the proxy, one for wrk"
need curl python3 taskset wrk
BIN=$(sidecar_binary)

# run_once MODE ROUND: one dev run (MODE off or on) under wrk; prints `requests/s
# requests-per-cpu-second`.
run_once() {
  local mode=$1 round=$2 ports flags=() dir=$WORK/$1-$2 out
  read -r -a ports <<<"$(lib free-ports 5)"
  [ "$mode" = on ] && flags=(--access-log)
  mkdir -p "$dir"
  start_bg "$dir/dev.log" taskset -c 0 "$BIN" dev --dir "$dir/files" \
    --listen "127.0.0.1:${ports[0]}" --app-listen "127.0.0.1:${ports[1]}" \
    --agent-metrics-listen "127.0.0.1:${ports[2]}" \
    --proxy-metrics-listen "127.0.0.1:${ports[3]}" \
    --app-metrics-listen "127.0.0.1:${ports[4]}" "${flags[@]}"
  local pid=$BG_PID
  wait_until 30 "dev's proxy ready ($mode)" \
    curl -sf "http://127.0.0.1:${ports[3]}/readyz"
  out=$dir/wrk.txt
  local cpu_before cpu_after
  cpu_before=$(lib procstat "$pid" | awk '{print $5}')
  taskset -c 1 wrk -t1 -c32 -d"${duration}s" "https://localhost:${ports[0]}/" >"$out" 2>&1
  cpu_after=$(lib procstat "$pid" | awk '{print $5}')
  stop_pid "$pid"
  forget_pid "$pid"
  local lines
  lines=$(grep -c 'pki_sidecar::access' "$dir/dev.log" || true)
  if [ "$mode" = on ]; then
    [ "$lines" -gt 0 ] || fail "no access lines with --access-log (see $dir/dev.log)"
  else
    [ "$lines" -eq 0 ] || fail "$lines access lines without --access-log"
  fi
  read -r rps _ _ failed total <<<"$(lib wrk "$out")"
  [ "$failed" -eq 0 ] || fail "$mode: $failed failed requests of $total (see $out)"
  local per_cpu
  per_cpu=$(awk -v n="$total" -v a="$cpu_before" -v b="$cpu_after" 'BEGIN {print (b > a ? n / (b - a) : 0)}')
  say "round $round, access log $mode: $rps requests/s, $per_cpu per CPU second ($total requests, $lines access lines)"
  echo "$rps $per_cpu"
}

off=() on=() off_cpu=() on_cpu=()
for round in $(seq "$rounds"); do
  for mode in $([ $((round % 2)) -eq 1 ] && echo off on || echo on off); do
    read -r rps per_cpu <<<"$(run_once "$mode" "$round")"
    if [ "$mode" = off ]; then off+=("$rps") off_cpu+=("$per_cpu"); else on+=("$rps") on_cpu+=("$per_cpu"); fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
m_off=$(median "${off[@]}") m_on=$(median "${on[@]}")
c_off=$(median "${off_cpu[@]}") c_on=$(median "${on_cpu[@]}")
printf 'access log off: %.0f requests/s, %.0f per CPU second (medians of %d)\n' "$m_off" "$c_off" "$rounds"
printf 'access log on:  %.0f requests/s, %.0f per CPU second (medians of %d)\n' "$m_on" "$c_on" "$rounds"
awk -v a="$m_on" -v b="$m_off" -v c="$c_on" -v d="$c_off" \
  'BEGIN {printf "on / off: %.3f requests/s, %.3f per CPU second\n", a / b, c / d}'
