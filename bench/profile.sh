#!/usr/bin/env bash
# bench/profile.sh: where a forwarded request's CPU and an idle connection's memory go, for
# pki-sidecar proxy and nginx (configured as bench/proxy.sh's nginx-tuned), measured in ways a
# noisy machine does not disturb:
#
#   - instructions per HTTP/1.1 keep-alive request (valgrind --tool=callgrind counts them; the
#     same binary and input give the same count whatever else runs): two runs of the same
#     server, 4 connections x ROUNDS and x 3*ROUNDS requests, the difference divided by the
#     extra requests, so startup and handshakes cancel out;
#   - system calls per request (strace -c -f attached while 4 x ROUNDS requests run);
#   - pki-sidecar's heap per idle TLS connection by allocation site (valgrind --tool=massif at
#     the peak, with IDLE and 3 x IDLE connections held after one request each: the difference
#     per extra connection);
#   - instructions per full TLS 1.3 handshake, by component (callgrind): two runs of the proxy,
#     HS and 3 x HS new connections from examples/handshakes.rs (no resumption, one request
#     each, one after another), the difference divided by the extra handshakes; for ECDSA
#     P-256 with X25519 and with X25519MLKEM768, and RSA 2048 with X25519. Each function's own
#     (exclusive) instructions are filed under a component by its name (benchlib.py
#     callgrind-components). Callgrind counts user-space instructions: the kernel's share of a
#     connection (TCP, accept, close) is not in these figures.
#
#   - where a keep-alive request's CPU time goes, kernel included (`bench/profile.sh wall`):
#     each server on CPU 0 under `wrk -t1 -c32` (CPU 1, with the app) for WALL seconds while
#     `perf record` samples its CPU clock; CPU µs per request from /proc, split by the samples
#     between the kernel, the program and its libraries, and over the costliest functions. A
#     sampled profile: it sees the time instruction counts do not (the kernel's TCP, cache
#     misses, locked instructions, large copies), and moves with the machine as any timing;
#   - where a full handshake's CPU time goes, kernel and native cryptography included
#     (`bench/profile.sh wall-handshakes`): each server on CPU 0 serving WALL_HANDSHAKES full
#     handshakes (ECDSA P-256, X25519, one request each, one client after another from CPU 1)
#     while `perf record` samples it; CPU µs per handshake from /proc, split as above.
#
# Certificates: an ECDSA P-256 pair from openssl (the same files for both servers). Upstream:
# `pki-sidecar app`. `bench/profile.sh handshakes` runs the handshake profile alone, `idle` the
# heap per idle connection alone, `requests` the keep-alive request profile alone, with the
# functions that cost pki-sidecar most per request; `wall` the sampled profile alone (it is not
# part of the default run).
# The heap profile runs a build with the C library's malloc (massif replaces malloc, and cannot
# follow jemalloc's functions); the sizes it reports are what the code asks for, whatever the
# allocator. Callgrind runs the shipped build, jemalloc included.
# Environment: PKI_SIDECAR_BIN (skip the build), PKI_SIDECAR_MASSIF_BIN (the same, for massif:
# built with --no-default-features), PKI_SIDECAR_HANDSHAKES_BIN, BENCH_ROUNDS
# (default 1000), BENCH_IDLE_CONNS (default 300), BENCH_IDLE_PROTOCOL (the idle connections'
# ALPN, http/1.1 or h2; default http/1.1), BENCH_HANDSHAKES (HS, default 50),
# BENCH_WALL (seconds sampled per server, default 10), BENCH_WALL_HANDSHAKES (default 5000),
# BENCH_KEEP=1. Takes about 6 minutes (the
# handshake profile alone about 3, the sampled one under a minute).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

only=
case "${1:-}" in
  "") ;;
  handshakes | idle | requests | wall | wall-handshakes) only=$1 ;;
  *) fail "usage: bench/profile.sh [handshakes|idle|requests|wall|wall-handshakes]" ;;
esac
rounds=${BENCH_ROUNDS:-1000} idle_conns=${BENCH_IDLE_CONNS:-300} conns=4
idle_protocol=${BENCH_IDLE_PROTOCOL:-http/1.1}
case $idle_protocol in
  http/1.1 | h2) ;;
  *) fail "BENCH_IDLE_PROTOCOL=$idle_protocol: http/1.1 or h2" ;;
esac
handshakes=${BENCH_HANDSHAKES:-50} wall=${BENCH_WALL:-10} wall_handshakes=${BENCH_WALL_HANDSHAKES:-5000}
if [ "$only" = wall ] || [ "$only" = wall-handshakes ]; then
  need perf wrk taskset nginx openssl python3 curl
else
  need valgrind callgrind_annotate ms_print strace nginx openssl python3 curl
fi
BIN=$(sidecar_binary)
# The massif build (without jemalloc) and the handshake client (cargo builds) only for the
# profiles that use them.
case $only in
  "" | idle) MASSIF_BIN=$(sidecar_binary_system_malloc) ;;
esac
case $only in
  "" | handshakes | wall-handshakes) HANDSHAKES_BIN=$(handshake_client) ;;
esac
read -r APP_PORT SERVER_PORT METRICS_PORT APP_METRICS_PORT <<<"$(lib free-ports 4)"

# --- certificates, upstream, configs -------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
  -out "$WORK/ca.pem" -days 2 -subj /CN=profile-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls.key" \
  -out "$WORK/leaf.csr" -subj /CN=foo.home 2>/dev/null
printf 'subjectAltName=DNS:foo.home,DNS:localhost\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 1 -extfile "$WORK/ext" -out "$WORK/tls.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$WORK/rsa.key" -out "$WORK/rsa.csr" \
  -subj /CN=foo.home 2>/dev/null
openssl x509 -req -in "$WORK/rsa.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 1 -extfile "$WORK/ext" -out "$WORK/rsa.crt" 2>/dev/null

cat >"$WORK/sidecar.hcl" <<HCL
proxy {
  listen         = "127.0.0.1:$SERVER_PORT"
  upstream       = "http://127.0.0.1:$APP_PORT"
  cert_file      = "$WORK/tls.crt"
  key_file       = "$WORK/tls.key"
  metrics_listen = "127.0.0.1:$METRICS_PORT"
  # As nginx-tuned's keepalive_requests 1000000.
  keepalive_requests = 1000000
}
app {
  listen         = "127.0.0.1:$APP_PORT"
  metrics_listen = "127.0.0.1:$APP_METRICS_PORT"
}
HCL
# The same proxy with the RSA pair (the app above is the upstream of both).
sed -e "s|$WORK/tls.crt|$WORK/rsa.crt|" -e "s|$WORK/tls.key|$WORK/rsa.key|" -e '/^app {/,$d' \
  "$WORK/sidecar.hcl" >"$WORK/sidecar-rsa.hcl"
mkdir -p "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$SERVER_PORT ssl http2;
    ssl_certificate $WORK/tls.crt;
    ssl_certificate_key $WORK/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
CONF

start_bg "$WORK/app.log" taskset -c 1 "$BIN" app --config "$WORK/sidecar.hcl"
wait_until 30 "the app did not start" curl -sf -o /dev/null "http://127.0.0.1:$APP_PORT/"

# server_command NAME [TOOL...]: the server's command line, under TOOL when given, on CPU 0 as
# in bench/proxy.sh (one tokio worker for the proxy, as nginx's one worker process).
server_command() {
  local name=$1
  shift
  case $name in
    pki-sidecar) SERVER_CMD=(taskset -c 0 "$@" "$BIN" proxy --config "$WORK/sidecar.hcl") ;;
    pki-sidecar-massif) SERVER_CMD=(taskset -c 0 "$@" "$MASSIF_BIN" proxy --config "$WORK/sidecar.hcl") ;;
    pki-sidecar-rsa) SERVER_CMD=(taskset -c 0 "$@" "$BIN" proxy --config "$WORK/sidecar-rsa.hcl") ;;
    nginx-tuned) SERVER_CMD=(taskset -c 0 "$@" nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log") ;;
  esac
}

served() {
  curl -sf -o /dev/null --cacert "$WORK/ca.pem" --resolve "foo.home:$SERVER_PORT:127.0.0.1" \
    "https://foo.home:$SERVER_PORT/"
}

# instructions NAME ROUNDS: total instructions of one server run serving 4 x ROUNDS requests.
instructions() {
  local name=$1 n=$2 out=$WORK/callgrind.$1.$2
  server_command "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
  start_bg "$WORK/$name-callgrind-$n.log" "${SERVER_CMD[@]}"
  local pid=$BG_PID
  wait_until 120 "$name under callgrind did not serve" served
  taskset -c 1 python3 "$BENCHLIB" keepalive "$SERVER_PORT" "$WORK/ca.pem" "$conns" "$n" >/dev/null
  stop_pid "$pid"
  forget_pid "$pid"
  callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,
}

# syscalls NAME: strace's table while 4 x ROUNDS requests run, and calls per request.
syscalls() {
  local name=$1 table=$WORK/strace.$1
  server_command "$name"
  start_bg "$WORK/$name-strace.log" "${SERVER_CMD[@]}"
  local pid=$BG_PID tracer
  wait_until 30 "$name did not serve" served
  start_bg "$WORK/$name-strace-run.log" strace -c -f -p "$pid" -o "$table"
  tracer=$BG_PID
  sleep 0.5
  taskset -c 1 python3 "$BENCHLIB" keepalive "$SERVER_PORT" "$WORK/ca.pem" "$conns" "$rounds" >/dev/null
  kill -INT "$tracer"
  wait "$tracer" 2>/dev/null || true
  forget_pid "$tracer"
  stop_pid "$pid"
  forget_pid "$pid"
  awk -v n=$((conns * rounds)) '$NF == "total" {printf "%.2f", $4 / n}' "$table"
}

# handshake_profile NAME GROUP N: the proxy NAME (pki-sidecar: ECDSA, pki-sidecar-rsa: RSA) under
# callgrind serving N full handshakes offering GROUP, one request each, into
# $WORK/callgrind.hs.NAME.GROUP.N. Not run in $(...): a failure there would leave the server
# running, out of the EXIT trap's sight.
handshake_profile() {
  local name=$1 group=$2 n=$3 out=$WORK/callgrind.hs.$1.$2.$3
  server_command "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
  start_bg "$WORK/$name-hs-$group-$n.log" "${SERVER_CMD[@]}"
  local pid=$BG_PID
  wait_until 120 "$name under callgrind did not serve" served
  taskset -c 1 "$HANDSHAKES_BIN" "127.0.0.1:$SERVER_PORT" foo.home "$WORK/ca.pem" "$group" "$n" \
    >"$out.client" || fail "$name: the handshake client failed (see $out.client)"
  stop_pid "$pid"
  forget_pid "$pid"
}

# handshake_table NAME GROUP LABEL: instructions per full handshake by component.
handshake_table() {
  local name=$1 group=$2 label=$3 prefix=$WORK/callgrind.hs.$1.$2
  say "$name: callgrind, $handshakes and $((3 * handshakes)) full handshakes ($group)"
  handshake_profile "$name" "$group" "$handshakes"
  handshake_profile "$name" "$group" $((3 * handshakes))
  echo
  echo "#### Instructions per full TLS 1.3 handshake, $label, $group (one request each; callgrind, $handshakes and $((3 * handshakes)) handshakes)"
  echo
  echo "| component | instructions per handshake | share | largest function |"
  echo "| --- | ---: | ---: | --- |"
  lib callgrind-components "$prefix.$handshakes" "$handshakes" "$prefix.$((3 * handshakes))" $((3 * handshakes))
}

handshake_tables() {
  handshake_table pki-sidecar X25519 "ECDSA P-256"
  handshake_table pki-sidecar X25519MLKEM768 "ECDSA P-256"
  handshake_table pki-sidecar-rsa X25519 "RSA 2048"
}

# wall_profile NAME: NAME on CPU 0 under wrk for $wall seconds, sampled by perf; the tables.
wall_profile() {
  local name=$1 pid before after total sampler us
  server_command "$name"
  start_bg "$WORK/$name-wall.log" "${SERVER_CMD[@]}"
  pid=$BG_PID
  wait_until 30 "$name did not serve" served
  # Warm: connections, the allocator's caches, the upstream pool.
  taskset -c 1 wrk -t1 -c32 -d2s "https://localhost:$SERVER_PORT/" >/dev/null 2>&1 ||
    fail "wrk against $name failed"
  before=$(lib procstat "$pid" | awk '{print $3}')
  start_bg "$WORK/$name-perf.log" perf record -F 1999 -o "$WORK/perf.$name.data" -p "$pid" \
    -- sleep "$wall"
  sampler=$BG_PID
  taskset -c 1 wrk -t1 -c32 -d"${wall}s" "https://localhost:$SERVER_PORT/" >"$WORK/wrk.$name" 2>&1 ||
    fail "wrk against $name failed (see $WORK/wrk.$name)"
  after=$(lib procstat "$pid" | awk '{print $3}')
  wait "$sampler" 2>/dev/null || true
  forget_pid "$sampler"
  stop_pid "$pid"
  forget_pid "$pid"
  read -r _ _ _ _ total <<<"$(lib wrk "$WORK/wrk.$name")"
  us=$(awk -v a="$before" -v b="$after" -v n="$total" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}')
  perf report -i "$WORK/perf.$name.data" --stdio --no-children -g none --sort dso,sym \
    >"$WORK/perf.$name.txt" 2>"$WORK/perf.$name.err" ||
    fail "perf could not read $name's samples (see $WORK/$name-perf.log and $WORK/perf.$name.err; perf_event_paranoid may forbid sampling: run as root or lower it)"
  echo
  echo "#### $name: CPU time per HTTP/1.1 keep-alive request, sampled (perf, $wall s of wrk -t1 -c32; $total requests, $us µs of server CPU each)"
  echo
  lib perf-top "$WORK/perf.$name.txt" "$us" 25
}

# wall_handshakes_profile NAME: NAME on CPU 0 serving $wall_handshakes full handshakes (ECDSA,
# X25519, one request each, one client after another from CPU 1), sampled by perf; the tables.
wall_handshakes_profile() {
  local name=$1 pid before after sampler us
  server_command "$name"
  start_bg "$WORK/$name-wallhs.log" "${SERVER_CMD[@]}"
  pid=$BG_PID
  wait_until 30 "$name did not serve" served
  taskset -c 1 "$HANDSHAKES_BIN" "127.0.0.1:$SERVER_PORT" foo.home "$WORK/ca.pem" X25519 200 \
    >/dev/null || fail "$name: the handshake client failed"
  before=$(lib procstat "$pid" | awk '{print $3}')
  start_bg "$WORK/$name-perfhs.log" perf record -F 1999 -o "$WORK/perfhs.$name.data" -p "$pid"
  sampler=$BG_PID
  taskset -c 1 "$HANDSHAKES_BIN" "127.0.0.1:$SERVER_PORT" foo.home "$WORK/ca.pem" X25519 \
    "$wall_handshakes" >"$WORK/hs.$name" || fail "$name: the handshake client failed (see $WORK/hs.$name)"
  after=$(lib procstat "$pid" | awk '{print $3}')
  kill -INT "$sampler"
  wait "$sampler" 2>/dev/null || true
  forget_pid "$sampler"
  stop_pid "$pid"
  forget_pid "$pid"
  us=$(awk -v a="$before" -v b="$after" -v n="$wall_handshakes" 'BEGIN {printf "%.1f", (b - a) * 1e6 / n}')
  perf report -i "$WORK/perfhs.$name.data" --stdio --no-children -g none --sort dso,sym \
    >"$WORK/perfhs.$name.txt" 2>"$WORK/perfhs.$name.err" ||
    fail "perf could not read $name's samples (see $WORK/$name-perfhs.log and $WORK/perfhs.$name.err)"
  echo
  echo "#### $name: CPU time per full handshake, sampled (perf; $wall_handshakes handshakes, ECDSA P-256, X25519, one request each; $us µs of server CPU each)"
  echo
  # By component for pki-sidecar only: Debian's libcrypto has no symbols to file its samples by.
  if [ "$name" = pki-sidecar ]; then
    lib perf-components "$WORK/perfhs.$name.txt" "$us" handshake
    echo
  fi
  lib perf-top "$WORK/perfhs.$name.txt" "$us" 30
}

if [ "$only" = wall-handshakes ]; then
  for name in pki-sidecar nginx-tuned; do
    say "$name: perf, $wall_handshakes full handshakes"
    wall_handshakes_profile "$name"
  done
  say "done"
  exit 0
fi

if [ "$only" = wall ]; then
  for name in pki-sidecar nginx-tuned; do
    say "$name: perf, $wall s of keep-alive requests"
    wall_profile "$name"
  done
  say "done"
  exit 0
fi

if [ "$only" = handshakes ]; then
  handshake_tables
  say "done"
  exit 0
fi

declare -A INSTR CALLS
[ "$only" = idle ] || for name in pki-sidecar nginx-tuned; do
  say "$name: callgrind, $conns x $rounds and $conns x $((3 * rounds)) requests"
  small=$(instructions "$name" "$rounds")
  large=$(instructions "$name" $((3 * rounds)))
  INSTR[$name]=$(((large - small) / (conns * 2 * rounds)))
  say "$name: strace, $conns x $rounds requests"
  CALLS[$name]=$(syscalls "$name")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
request_table() {
  echo
  echo "#### CPU per HTTP/1.1 keep-alive request ($conns connections; callgrind, strace)"
  echo
  echo "| metric | pki-sidecar | nginx-tuned | pki-sidecar / nginx-tuned |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| instructions per request | ${INSTR[pki-sidecar]} | ${INSTR[nginx-tuned]} | $(ratio "${INSTR[pki-sidecar]}" "${INSTR[nginx-tuned]}") |"
  echo "| system calls per request | ${CALLS[pki-sidecar]} | ${CALLS[nginx-tuned]} | $(ratio "${CALLS[pki-sidecar]}" "${CALLS[nginx-tuned]}") |"
  echo
  for name in pki-sidecar nginx-tuned; do
    # strace -c's columns: % time, seconds, usecs/call, calls, [errors], syscall.
    echo "System calls of $name for $((conns * rounds)) requests: $(awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ {printf "%s%s %s", sep, $NF, $4; sep=", "}' "$WORK/strace.$name")."
  done
}
if [ "$only" = requests ]; then
  request_table
  echo
  echo "#### pki-sidecar: instructions per keep-alive request by component (exclusive; callgrind)"
  echo
  echo "| component | instructions per request | share | largest function |"
  echo "| --- | ---: | ---: | --- |"
  lib callgrind-components "$WORK/callgrind.pki-sidecar.$rounds" $((conns * rounds)) \
    "$WORK/callgrind.pki-sidecar.$((3 * rounds))" $((conns * 3 * rounds))
  for name in pki-sidecar nginx-tuned; do
    echo
    echo "#### $name: the functions with the most instructions per keep-alive request (exclusive; callgrind)"
    echo
    echo "| instructions per request | share | function |"
    echo "| ---: | ---: | --- |"
    lib callgrind-top "$WORK/callgrind.$name.$rounds" $((conns * rounds)) \
      "$WORK/callgrind.$name.$((3 * rounds))" $((conns * 3 * rounds)) 30
  done
  say "done"
  exit 0
fi

# Heap per idle connection: massif's peak snapshot with $idle_conns connections held, then with
# 3 x $idle_conns; the difference per extra connection, by allocation site, leaves out what the
# process allocates once (session cache, runtime, buffers of the earlier request).
massif_run() {
  local n=$1 out=$WORK/massif.$1
  say "pki-sidecar: massif, $n idle connections"
  server_command pki-sidecar-massif valgrind --tool=massif --massif-out-file="$out.out" \
    --detailed-freq=1 --max-snapshots=200
  start_bg "$WORK/massif-$n.log" "${SERVER_CMD[@]}"
  local pid=$BG_PID client
  wait_until 120 "pki-sidecar under massif did not serve" served
  rm -f "$WORK/idle.release"
  start_bg "$out.idle" taskset -c 1 python3 "$BENCHLIB" idle-conns "$SERVER_PORT" "$n" "$WORK/ca.pem" \
    "$WORK/idle.release" "$idle_protocol"
  client=$BG_PID
  wait_until 300 "the idle client did not open $n connections" grep -q '^ready' "$out.idle"
  sleep 1
  touch "$WORK/idle.release"
  wait "$client" 2>/dev/null || true
  forget_pid "$client"
  stop_pid "$pid"
  forget_pid "$pid"
  ms_print "$out.out" >"$out.txt"
}
massif_run "$idle_conns"
massif_run $((3 * idle_conns))
massif_table() {
  echo
  echo "#### pki-sidecar's heap per idle $idle_protocol TLS connection, by allocation site (massif, $idle_conns and $((3 * idle_conns)) connections)"
  echo
  echo "| bytes per connection | allocated in |"
  echo "| ---: | --- |"
  lib massif-diff "$WORK/massif.$idle_conns.txt" "$idle_conns" "$WORK/massif.$((3 * idle_conns)).txt" $((3 * idle_conns))
}
if [ "$only" = idle ]; then
  massif_table
  say "done"
  exit 0
fi

request_table
massif_table
handshake_tables
say "done"
