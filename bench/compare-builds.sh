#!/usr/bin/env bash
# bench/compare-builds.sh BIN_A BIN_B: two builds of `pki-sidecar proxy`, side by side, in one run.
#
# For a before/after of a change that touches every handshake (issue 17: the crypto provider,
# ring -> aws-lc-rs). Not a CI step. Each build serves the same certificates, pinned to CPU 0,
# in front of the same upstream (`BIN_B app` on CPU 1); the load comes from CPU 1. The two
# builds alternate within every round (A B, then B A), so drift on a noisy machine falls on
# both. Measures, each per build:
#   - full TLS 1.3 handshakes per server CPU-second, ECDSA P-256 and RSA-2048 leaves, X25519 (the
#     group both providers have): one client after another, a new connection, a full handshake
#     and one request each, as bench/proxy.sh makes them (examples/handshakes.rs);
#   - HTTP/1.1 keep-alive requests/s and requests per server CPU-second (wrk -t1 -c32);
#   - then, for each key type, both builds at once on CPU 0 and the handshake client turning
#     from one to the other every BENCH_ALTERNATE_SLICE handshakes (200), BENCH_ALTERNATE_TURNS
#     times (40): the server CPU per handshake of each, with drift spread over both (a change of
#     a few per cent shows here before it shows across rounds of several seconds).
# Prints the medians and B / A, then the alternating figures.
# Builds from 2026-12-07 on close a connection after proxy.keepalive_requests (1000 by default),
# older ones never: a build that accepts the key gets 1000000 (as bench/proxy.sh gives nginx), so
# wrk's connections stay open with both.
#
# The certificates come from openssl (an ECDSA P-256 CA, a P-256 leaf and an RSA-2048 leaf for
# `localhost`), so neither build makes its own inputs.
# Environment: BENCH_ROUNDS (default 3), BENCH_DURATION (seconds per measure, default 5),
# PKI_SIDECAR_HANDSHAKES_BIN (skip building the handshake client), BENCH_KEEP=1 (keep the
# temporary directory).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

[ $# -eq 2 ] || fail "usage: bench/compare-builds.sh BIN_A BIN_B"
bins=("$1" "$2")
for bin in "${bins[@]}"; do [ -x "$bin" ] || fail "$bin is not executable"; done
rounds=${BENCH_ROUNDS:-3} duration=${BENCH_DURATION:-5}
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: one for the server under test, one for the load"
need curl openssl python3 taskset wrk
HANDSHAKES_BIN=$(handshake_client)
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# --- certificates ---------------------------------------------------------------------------------
(
  cd "$WORK"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=compare-ca -keyout ca.key -out ca.pem
  for key in ecdsa rsa; do
    mkdir -p "$key"
    if [ "$key" = ecdsa ]; then
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key/tls.key"
    else
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key/tls.key"
    fi
    openssl req -new -key "$key/tls.key" -subj /CN=localhost -out "$key/leaf.csr"
    openssl x509 -req -in "$key/leaf.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
      -extfile <(printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n') \
      -out "$key/leaf.pem"
    cat "$key/leaf.pem" ca.pem >"$key/tls.crt"
  done
) >"$WORK/openssl.log" 2>&1 || fail "openssl could not make the certificates (see $WORK/openssl.log)"

# --- the upstream and the servers -----------------------------------------------------------------
printf 'proxy {\n  keepalive_requests = 1000000\n}\n' >"$WORK/keepalive.hcl"
config_args=()
for i in 0 1; do
  config_args[i]=
  if "${bins[i]}" validate --config "$WORK/keepalive.hcl" >/dev/null 2>&1; then
    config_args[i]=$WORK/keepalive.hcl
  fi
done

read -r app_port app_metrics <<<"$(lib free-ports 2)"
printf 'app {\n  listen = "127.0.0.1:%s"\n  metrics_listen = "127.0.0.1:%s"\n}\n' \
  "$app_port" "$app_metrics" >"$WORK/app.hcl"
start_bg "$WORK/app.log" taskset -c 1 "${bins[1]}" app --config "$WORK/app.hcl"
wait_until 20 "the app did not answer (see $WORK/app.log)" curl -sf "http://127.0.0.1:$app_port/"

# start_proxy INDEX KEY: the build's proxy on CPU 0; sets SERVER_PID and URL.
start_proxy() {
  local bin=${bins[$1]} key=$2 port metrics
  read -r port metrics <<<"$(lib free-ports 2)"
  local config=()
  [ -z "${config_args[$1]}" ] || config=(--config "${config_args[$1]}")
  start_bg "$WORK/proxy-$1-$key.log" taskset -c 0 "$bin" proxy "${config[@]}" \
    --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$app_port" \
    --cert "$WORK/$key/tls.crt" --key "$WORK/$key/tls.key" \
    --metrics-listen "127.0.0.1:$metrics"
  SERVER_PID=$BG_PID URL="https://localhost:$port/" PORT=$port
  wait_until 20 "build $1 did not serve TLS (see $WORK/proxy-$1-$key.log)" \
    curl -sf --cacert "$WORK/ca.pem" "$URL"
}

stop_proxy() {
  stop_pid "$SERVER_PID"
  forget_pid "$SERVER_PID"
}

cpu_seconds() { lib procstat "$SERVER_PID" | awk '{print $5}'; }

# measure INDEX ROUND: every measure of one build.
measure() {
  local i=$1 round=$2 key before after out rps total
  for key in ecdsa rsa; do
    start_proxy "$i" "$key"
    out=$WORK/hs-$i-$key-$round.txt
    before=$(cpu_seconds)
    taskset -c 1 "$HANDSHAKES_BIN" "127.0.0.1:$PORT" localhost "$WORK/ca.pem" X25519 "${duration}s" \
      >"$out" 2>&1 || fail "handshakes against build $i failed (see $out)"
    after=$(cpu_seconds)
    read -r total _ _ _ <"$out"
    rps=$(awk -v n="$total" -v d="$duration" 'BEGIN {print n / d}')
    printf 'hs-%s\t%s\t%s\t%s\n' "$key" "$i" "$rps" \
      "$(awk -v n="$total" -v a="$before" -v b="$after" 'BEGIN {print (b > a ? n / (b - a) : 0)}')" >>"$RESULTS"
    if [ "$key" = ecdsa ]; then
      out=$WORK/wrk-$i-$round.txt
      before=$(cpu_seconds)
      taskset -c 1 wrk -t1 -c32 -d"${duration}s" "$URL" >"$out" 2>&1 || fail "wrk failed (see $out)"
      after=$(cpu_seconds)
      read -r rps _ _ _ total <<<"$(lib wrk "$out")"
      printf 'keep-alive\t%s\t%s\t%s\n' "$i" "$rps" \
        "$(awk -v n="$total" -v a="$before" -v b="$after" 'BEGIN {print (b > a ? n / (b - a) : 0)}')" >>"$RESULTS"
    fi
    stop_proxy
  done
}

say "A = ${bins[0]} ($("${bins[0]}" --version))${config_args[0]:+, keepalive_requests = 1000000}"
say "B = ${bins[1]} ($("${bins[1]}" --version))${config_args[1]:+, keepalive_requests = 1000000}"
for round in $(seq "$rounds"); do
  order=(0 1)
  [ $((round % 2)) -eq 0 ] && order=(1 0)
  for i in "${order[@]}"; do
    say "round $round, build $([ "$i" = 0 ] && echo A || echo B)"
    measure "$i" "$round"
  done
done

echo "## Build A against build B ($(machine))"
echo
echo "A: \`${bins[0]}\` ($("${bins[0]}" --version)); B: \`${bins[1]}\` ($("${bins[1]}" --version)); medians of $rounds rounds of ${duration} s."
echo
echo "| measure | A per s | B per s | B / A | A per server CPU-s | B per server CPU-s | B / A |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
# column MEASURE BUILD FIELD: the median of one column of the results.
column() {
  awk -F'\t' -v m="$1" -v b="$2" -v f="$3" '$1 == m && $2 == b {print $f}' "$RESULTS" |
    sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
for measure in hs-ecdsa hs-rsa keep-alive; do
  awk -v m="$measure" -v a="$(column "$measure" 0 3)" -v b="$(column "$measure" 1 3)" \
    -v c="$(column "$measure" 0 4)" -v d="$(column "$measure" 1 4)" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", m, a, b, (a > 0 ? b / a : 0), c, d, (c > 0 ? d / c : 0)
  }'
done

# --- alternating, both builds at once ---------------------------------------------------------
slice=${BENCH_ALTERNATE_SLICE:-200} turns=${BENCH_ALTERNATE_TURNS:-40}
for key in ecdsa rsa; do
  say "alternating: $key, $turns turns of $slice handshakes per build"
  start_proxy 0 "$key"
  pid_a=$SERVER_PID port_a=$PORT
  start_proxy 1 "$key"
  pid_b=$SERVER_PID port_b=$PORT
  echo
  echo "Alternating, $key, X25519: the client turns between the two every $slice handshakes, $turns times:"
  echo
  lib alternate "$HANDSHAKES_BIN" "$WORK/ca.pem" X25519 "$slice" "$turns" \
    "A=$port_a:$pid_a" "B=$port_b:$pid_b"
  SERVER_PID=$pid_b stop_proxy
  SERVER_PID=$pid_a stop_proxy
done
