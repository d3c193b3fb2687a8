#!/usr/bin/env bash
# bench/proxy.sh [--smoke]: pki-sidecar proxy against nginx, side by side, on one machine.
#
# Three servers terminate TLS in front of the same upstream (`pki-sidecar app`) with the same
# certificate, issued by an OpenBao dev server's PKI (ECDSA P-256, then RSA 2048):
#
#   pki-sidecar     pki-sidecar proxy, its defaults
#   nginx-tuned     nginx configured with care: upstream keep-alive, ssl_session_cache, no
#                   keep-alive request limit, the same X-Forwarded-* headers the proxy adds,
#                   the cipher suite chosen by the server in the proxy's order (AES-128-GCM
#                   first; its default follows the client, whose list starts with AES-256)
#   nginx-default   nginx with a plain `proxy_pass` (HTTP/1.0 to the upstream, a new upstream
#                   connection per request, no session cache)
#
# Pinning: the server under test runs alone on CPU 0 (`taskset -c 0`), the load generator, the
# app and OpenBao on CPU 1, so every server gets exactly one core. nginx runs worker_processes 1;
# the proxy's tokio runtime sizes itself from the CPU affinity, which gives it 1 worker (the
# script checks and prints it).
#
# Each round starts each server fresh, in a rotating order, and takes every measure from it:
# RSS with idle TLS connections (first, so earlier load does not inflate it; HTTP/1.1, then
# HTTP/2 on a server started again; for HTTP/1.1 also the RSS some seconds after the client
# closed them all, which shows whether the server gives the memory back), HTTP/1.1 keep-alive
# (wrk), HTTP/2 (h2load), full ECDSA handshakes; then the RSA pair for RSA handshakes.
# Handshakes are measured as `openssl s_time -new -www /` makes them: one client, a new TCP
# connection and a full TLS 1.3 handshake (no resumption) for every request, one after another,
# by examples/handshakes.rs (a rustls client: OpenSSL 3.0's tools cannot offer the hybrid
# post-quantum group), offering X25519 to every server and, for pki-sidecar, X25519MLKEM768 too.
# The figure is handshakes per server CPU-second. (Batches of 256 concurrent h2load clients,
# the earlier method, mixed two regimes: the RSA server saturated and queueing, the ECDSA
# server waiting for a client busy verifying; see BENCHMARKS.md.)
# The limit: `openssl speed` sign rates on the server's CPU, per CPU-second of openssl (its
# default; `-elapsed` would divide by wall time, which on a shared machine counts other
# processes' time too); the last table prints each handshake figure against it (% of the sign rate, and the microseconds a handshake costs
# beyond its signature).
# The floor those figures are read against (the last table): the same client without TLS, a plain
# HTTP/1.1 request on a new TCP connection each time, through nginx configured as nginx-tuned but
# without TLS (`nginx-plain`, measured in every round): what a connection and its forwarded
# request cost a server before any TLS, most of it in the kernel; then the same with the round
# trip a TLS 1.3 handshake adds before the request (a `GET /flight` nginx answers itself with a
# response the size of a handshake flight). Added to the latter, the cryptography
# a full handshake cannot do without, timed with the proxy's provider (examples/crypto_cost.rs on
# the server's CPU: the signature, the server's key-exchange share), gives the least a full
# handshake could cost here; the table sets each goal against it.
# After the rounds, certificate rotation under load: a new pair every second while wrk runs,
# the proxy on its own (it watches the files), nginx with `nginx -s reload` after each rotation.
# Tables: each server's median over the rounds, and the ratio pki-sidecar / nginx-tuned.
#
# --smoke: 1 round, 1 s per measure, 100 idle connections (HTTP/1.1, then HTTP/2; RSS 1 s after they close), 3 s of rotation, 1 s openssl speed
# runs: checks that every measure can be taken (a missing tool or a server that does not start
# fails the run; the numbers never do). Environment: PKI_SIDECAR_BIN (skip the build), BENCH_ROUNDS,
# BENCH_DURATION (seconds per measure), BENCH_IDLE_CONNS, BENCH_AFTER_CLOSE (seconds between the
# idle connections' close and the last RSS reading, default 15: longer than jemalloc's 10 s
# decay), BENCH_ROTATION_SECONDS, BENCH_KEEP=1
# (keep the temporary directory with every log and raw output), PKI_SIDECAR_HANDSHAKES_BIN (skip
# building the handshake client), PKI_SIDECAR_CRYPTO_COST_BIN (skip building the crypto cost tool,
# a release build outside --smoke).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

if [ "${1:-}" = --smoke ]; then
  rounds=1 duration=1 idle_conns=100 rotation_seconds=3 speed_seconds=1 settle=0.1 after_close=1
else
  [ $# -eq 0 ] || fail "usage: bench/proxy.sh [--smoke]"
  rounds=${BENCH_ROUNDS:-5} duration=${BENCH_DURATION:-10} idle_conns=${BENCH_IDLE_CONNS:-2000}
  rotation_seconds=${BENCH_ROTATION_SECONDS:-60} speed_seconds=3 settle=0.5
  after_close=${BENCH_AFTER_CLOSE:-15}
fi
servers=(pki-sidecar nginx-tuned nginx-default)
server_cpu=0 client_cpu=1
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: one for the server under test, one for the load"
# Load generator settings, the same for every server.
h1_conns=32 h2_clients=8 h2_streams=16

need cargo curl getent h2load nginx openssl python3 taskset wrk
# The servers listen on 127.0.0.1 and the load generators connect to `localhost` (see start_server).
localhost_addresses=$(getent ahosts localhost || true)
grep -q '^127\.0\.0\.1 ' <<<"$localhost_addresses" || fail "localhost does not resolve to 127.0.0.1"
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
BIN=$(sidecar_binary)
HANDSHAKES_BIN=$(handshake_client)
if [ "${1:-}" = --smoke ]; then CRYPTO_COST_BIN=$(crypto_cost_tool debug); else CRYPTO_COST_BIN=$(crypto_cost_tool release); fi
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# record TABLE METRIC SERVER VALUE: one measured value, for the report's medians.
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# --- certificates ---------------------------------------------------------------------------------

# A minimal PKI on the dev server: an ECDSA root and one role per key type (a PKI role fixes the
# key type). Pairs: pool/ecdsa-N and pool/rsa-1; live/ecdsa and live/rsa are what servers read.
setup_pki() {
  start_bao "$client_cpu"
  # The CLI's output (and its warning about AIA URLs, irrelevant here) goes to a log.
  {
    "$BAO_BIN" secrets enable pki
    "$BAO_BIN" secrets tune -max-lease-ttl=87600h pki
    "$BAO_BIN" write pki/root/generate/internal common_name="Bench Root CA" \
      key_type=ec key_bits=256 ttl=87600h
    "$BAO_BIN" write pki/roles/ecdsa allowed_domains=home,localhost allow_subdomains=true \
      allow_bare_domains=true key_type=ec key_bits=256 max_ttl=72h
    "$BAO_BIN" write pki/roles/rsa allowed_domains=home,localhost allow_subdomains=true \
      allow_bare_domains=true key_type=rsa key_bits=2048 max_ttl=72h
  } >"$WORK/bao-cli.log" 2>&1 || fail "configuring the PKI failed (see $WORK/bao-cli.log)"
  "$BAO_BIN" read -field=certificate pki/cert/ca >"$WORK/ca.pem"
  local i
  # Enough distinct pairs that every rotation changes the certificate.
  for i in 1 2 3 4 5 6; do
    lib issue "$VAULT_ADDR" "$BAO_ROOT_TOKEN" pki/issue/ecdsa "$WORK/pool/ecdsa-$i" >/dev/null
  done
  lib issue "$VAULT_ADDR" "$BAO_ROOT_TOKEN" pki/issue/rsa "$WORK/pool/rsa-1" >/dev/null
  mkdir -p "$WORK/live/ecdsa" "$WORK/live/rsa"
  lib rotate "$WORK/pool/ecdsa-1" "$WORK/live/ecdsa"
  lib rotate "$WORK/pool/rsa-1" "$WORK/live/rsa"
}

# serial_of_pair DIR: the serial of DIR/tls.crt, as openssl prints it.
serial_of_pair() { openssl x509 -in "$1/tls.crt" -noout -serial | cut -d= -f2; }

# serves_serial PORT SERIAL: whether the server hands out the certificate with SERIAL now.
serves_serial() {
  local served
  served=$(openssl s_client -connect "127.0.0.1:$1" -servername foo.home </dev/null 2>/dev/null |
    openssl x509 -noout -serial | cut -d= -f2)
  [ "$served" = "$2" ]
}

# --- the upstream and the servers -----------------------------------------------------------------

start_app() {
  local ports
  read -r APP_PORT ports <<<"$(lib free-ports 2)"
  cat >"$WORK/app.hcl" <<EOF
app {
  listen         = "127.0.0.1:$APP_PORT"
  metrics_listen = "127.0.0.1:$ports"
}
EOF
  start_bg "$WORK/app.log" taskset -c "$client_cpu" "$BIN" app --config "$WORK/app.hcl"
  wait_until 20 "pki-sidecar app did not answer (see $WORK/app.log)" \
    curl -sf "http://127.0.0.1:$APP_PORT/"
}

# write_nginx_conf DIR PORT KEY tuned|default|plain (plain: tuned without TLS, and /flight, the
# first request of handshakes.rs's GROUP plain-rt, answered by nginx itself)
write_nginx_conf() {
  local dir=$1 port=$2 key=$3 flavour=$4 upstream location session_cache keepalive_requests ciphers
  local listen tls flight=''
  if [ "$flavour" != default ]; then
    upstream="upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; }"
    # nginx variables, not the shell's:
    # shellcheck disable=SC2016
    location='proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;'
    session_cache='ssl_session_cache shared:SSL:10m; ssl_session_timeout 1h;'
    # The cipher suites in pki-sidecar's order, chosen by the server as pki-sidecar does:
    # AES-128-GCM before AES-256-GCM (whose SHA-384 key schedule costs more).
    ciphers='ssl_prefer_server_ciphers on;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;'
    # The proxy never closes a keep-alive connection after N requests; nginx's default is 1000.
    keepalive_requests='keepalive_requests 1000000;'
  else
    upstream=''
    location="proxy_pass http://127.0.0.1:$APP_PORT;"
    session_cache='' keepalive_requests='' ciphers=''
  fi
  # Tuned and plain nginx defer accept as the proxy does (TCP_DEFER_ACCEPT: a connection is
  # accepted once its client has sent something); nginx-default does not.
  local deferred=' deferred'
  [ "$flavour" = default ] && deferred=''
  listen="listen 127.0.0.1:$port ssl http2$deferred;"
  tls="ssl_certificate $WORK/live/$key/tls.crt;
    ssl_certificate_key $WORK/live/$key/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;"
  if [ "$flavour" = plain ]; then
    listen="listen 127.0.0.1:$port$deferred;" tls='' ciphers='' session_cache=''
    # A response of about the size of a server's ECDSA handshake flight (1,210 bytes): 1,200
    # bytes with its headers. The round trip a TLS 1.3 handshake adds, without the TLS.
    flight="location = /flight { default_type text/plain; return 200 '$(printf '%*s' 1050 '' | tr ' ' x)'; }"
  fi
  mkdir -p "$dir/tmp"
  # Common to all: one worker (the proxy has one core too), enough connections for the idle
  # test, no access log (the proxy writes none), http2 on the listener (else h2load has nothing
  # to measure), temp paths under $WORK.
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 16384;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  $upstream
  server {
    $listen
    $tls
    $ciphers
    $session_cache
    $keepalive_requests
    location / {
      $location
    }
    $flight
  }
}
EOF
}

# nginx_cmd DIR ARGS...: nginx with its prefix, config and error log under DIR.
nginx_cmd() {
  local dir=$1
  shift
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" "$@"
}

# start_server NAME KEY: starts NAME on CPU 0 with the KEY pair; sets SERVER_PID, SERVER_PORT
# (and METRICS_PORT for pki-sidecar), and waits until it answers through TLS.
start_server() {
  local name=$1 key=$2 dir=$WORK/$1
  mkdir -p "$dir"
  read -r SERVER_PORT METRICS_PORT <<<"$(lib free-ports 2)"
  case $name in
    pki-sidecar)
      cat >"$dir/proxy.hcl" <<EOF
proxy {
  listen         = "127.0.0.1:$SERVER_PORT"
  upstream       = "http://127.0.0.1:$APP_PORT"
  cert_file      = "$WORK/live/$key/tls.crt"
  key_file       = "$WORK/live/$key/tls.key"
  metrics_listen = "127.0.0.1:$METRICS_PORT"
  # As nginx-tuned's keepalive_requests 1000000.
  keepalive_requests = 1000000
}
EOF
      start_bg "$dir/server.log" taskset -c "$server_cpu" "$BIN" proxy --config "$dir/proxy.hcl"
      ;;
    nginx-tuned | nginx-default | nginx-plain)
      write_nginx_conf "$dir" "$SERVER_PORT" "$key" "${name#nginx-}"
      start_bg "$dir/server.log" taskset -c "$server_cpu" \
        nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;'
      ;;
  esac
  SERVER_PID=$BG_PID
  if [ "$name" = nginx-plain ]; then
    wait_until 20 "$name did not serve HTTP on port $SERVER_PORT (see $dir/server.log)" \
      curl -sf "http://127.0.0.1:$SERVER_PORT/"
    return
  fi
  # Load generators connect by name: with an IP address in the URL they send it as SNI, which is
  # illegal (RFC 6066) and makes rustls log a warning per handshake.
  URL="https://localhost:$SERVER_PORT/"
  wait_until 20 "$name did not serve TLS on port $SERVER_PORT (see $dir/server.log)" \
    curl -sf --cacert "$WORK/ca.pem" --resolve "foo.home:$SERVER_PORT:127.0.0.1" \
    "https://foo.home:$SERVER_PORT/"
}

stop_server() {
  stop_pid "$SERVER_PID"
  forget_pid "$SERVER_PID"
}

# tokio_workers PID: threads named by tokio's multi-thread runtime.
tokio_workers() { cat /proc/"$1"/task/*/comm 2>/dev/null | grep -c '^tokio-r' || true; }

# server_cpu_seconds: "user+system system" CPU seconds of the server under test (nginx: master +
# workers).
server_cpu_seconds() { lib procstat "$SERVER_PID" | awk '{print $3, $6}'; }

# --- measures -------------------------------------------------------------------------------------

# run_load NAME TABLE OUTFILE CMD...: runs a load generator on the client CPU and records how busy
# the server was (CPU seconds per wall second) and how many requests it served per CPU second,
# which stays comparable even when the load generator, not the server, is the bottleneck.
run_load() {
  local name=$1 table=$2 out=$3 cpu_before cpu_after system_before system_after
  shift 3
  read -r cpu_before system_before <<<"$(server_cpu_seconds)"
  taskset -c "$client_cpu" "$@" >"$out" 2>&1 || fail "$* failed (see $out)"
  read -r cpu_after system_after <<<"$(server_cpu_seconds)"
  LOAD_CPU=$(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN {print b - a}')
  LOAD_SYSTEM=$(awk -v a="$system_before" -v b="$system_after" 'BEGIN {print b - a}')
  record "$table" busy "$name" "$(awk -v c="$LOAD_CPU" -v d="$duration" 'BEGIN {print 100 * c / d}')"
}

# per_cpu_second TOTAL: requests per CPU second of the server during the last run_load.
per_cpu_second() { awk -v n="$1" -v c="$LOAD_CPU" 'BEGIN {print (c > 0 ? n / c : 0)}'; }

measure_h1() {
  local name=$1 out=$WORK/$1/wrk-h1-$round.txt rps p50 p99 failed total
  run_load "$name" h1 "$out" wrk -t1 -c"$h1_conns" -d"${duration}s" --latency \
    "$URL"
  read -r rps p50 p99 failed total <<<"$(lib wrk "$out")"
  record h1 rps "$name" "$rps"
  record h1 p50 "$name" "$p50"
  record h1 p99 "$name" "$p99"
  record h1 failed "$name" "$failed"
  record h1 per_cpu "$name" "$(per_cpu_second "$total")"
}

measure_h2() {
  local name=$1 out=$WORK/$1/h2load-$round.txt rps failed protocol succeeded
  run_load "$name" h2 "$out" h2load -t1 -c"$h2_clients" -m"$h2_streams" -D"$duration" \
    "$URL"
  read -r rps failed protocol succeeded <<<"$(lib h2load "$out")"
  [ "$protocol" = h2 ] || fail "$name: h2load negotiated '$protocol', not h2 (see $out)"
  record h2 rps "$name" "$rps"
  record h2 failed "$name" "$failed"
  record h2 per_cpu "$name" "$(per_cpu_second "$succeeded")"
}

# measure_handshakes NAME KEY GROUP: for $duration s, one client after another: a new
# connection, a full TLS 1.3 handshake offering only GROUP, one request (examples/handshakes.rs,
# as `openssl s_time -new -www /`; wrk would resume sessions). Table hs-KEY-GROUP.
measure_handshakes() {
  local name=$1 key=$2 group=$3 table=hs-$2-$3 out=$WORK/$1/hs-$2-$3-$round.txt
  local succeeded failed negotiated protocol switches
  switches=$(lib ctxt "$SERVER_PID")
  run_load "$name" "$table" "$out" "$HANDSHAKES_BIN" "127.0.0.1:$SERVER_PORT" foo.home \
    "$WORK/ca.pem" "$group" "${duration}s"
  switches=$(($(lib ctxt "$SERVER_PID") - switches))
  read -r succeeded failed negotiated protocol suite <"$out"
  [ "$protocol" = TLSv1_3 ] || fail "$name: handshakes negotiated '$protocol' (see $out)"
  SUITE[$name]=$suite
  [ "$negotiated" = "$group" ] || fail "$name: handshakes negotiated '$negotiated', not $group"
  record "$table" rps "$name" "$(awk -v n="$succeeded" -v d="$duration" 'BEGIN {print n / d}')"
  record "$table" failed "$name" "$failed"
  record "$table" per_cpu "$name" "$(per_cpu_second "$succeeded")"
  # Voluntary context switches of the server's threads per handshake: a count the machine's
  # noise barely moves, where a thread handing each connection to another shows.
  record "$table" switches "$name" "$(awk -v s="$switches" -v n="$succeeded" 'BEGIN {print (n > 0 ? s / n : 0)}')"
  # The server's CPU in the kernel per handshake (stime): the TCP connection's set-up and
  # teardown on loopback, the system calls. No server's code can go below it.
  record "$table" kernel_us "$name" "$(awk -v c="$LOAD_SYSTEM" -v n="$succeeded" 'BEGIN {print (n > 0 ? 1e6 * c / n : 0)}')"
}

# measure_floor: for $duration s each on nginx-plain, as measure_handshakes but without TLS: a new
# connection and one forwarded request, one after another (table floor); then the same with
# the round trip a TLS 1.3 handshake adds before the request (GROUP plain-rt: GET /flight,
# answered by nginx, first; table floor-rt).
measure_floor() {
  local name=nginx-plain mode table out succeeded
  for mode in plain plain-rt; do
    table=floor${mode#plain}
    out=$WORK/nginx-plain/$table-$round.txt
    run_load "$name" "$table" "$out" "$HANDSHAKES_BIN" "127.0.0.1:$SERVER_PORT" foo.home none \
      "$mode" "${duration}s"
    read -r succeeded _ <"$out"
    record "$table" per_cpu "$name" "$(per_cpu_second "$succeeded")"
    record "$table" kernel_us "$name" "$(awk -v c="$LOAD_SYSTEM" -v n="$succeeded" 'BEGIN {print (n > 0 ? 1e6 * c / n : 0)}')"
  done
}

# crypto_costs: the microseconds of one signature per key and one server key-exchange share per
# group with the proxy's provider, on the server's CPU (examples/crypto_cost.rs): SIGN_US[ecdsa],
# SIGN_US[rsa], KX_US[X25519], KX_US[X25519MLKEM768].
crypto_costs() {
  local out=$WORK/crypto-cost.txt kind label us
  taskset -c "$server_cpu" "$CRYPTO_COST_BIN" "$speed_seconds" "$WORK/live/ecdsa/tls.key" \
    "$WORK/live/rsa/tls.key" >"$out" 2>&1 || fail "crypto_cost failed (see $out)"
  while read -r kind label us; do
    case $kind:$label in
      sign:ECDSA_NISTP256_SHA256) SIGN_US[ecdsa]=$us ;;
      sign:RSA_PSS_SHA256) SIGN_US[rsa]=$us ;;
      kx:X25519 | kx:X25519MLKEM768) KX_US[$label]=$us ;;
      *) fail "unexpected line in crypto_cost's output: $kind $label $us (see $out)" ;;
    esac
  done <"$out"
  [ -n "${SIGN_US[ecdsa]:-}" ] && [ -n "${SIGN_US[rsa]:-}" ] && [ -n "${KX_US[X25519]:-}" ] &&
    [ -n "${KX_US[X25519MLKEM768]:-}" ] || fail "crypto_cost printed too little (see $out)"
}

# sign_rate ALGORITHM: `openssl speed`'s signatures per CPU-second for ecdsap256 or rsa2048 on
# the server's CPU: the most full handshakes per CPU-second a server could make with that key.
# CPU time, not `-elapsed`: the handshake figures are per server CPU-second, and on a machine
# shared with other work a wall-clock rate is lower than the core's (once measured at a fifth).
sign_rate() {
  local out=$WORK/speed-$1.txt
  taskset -c "$server_cpu" openssl speed -seconds "$speed_seconds" "$1" >"$out" 2>&1 ||
    fail "openssl speed $1 failed (see $out)"
  # The result line: `rsa 2048 bits 0.000934s 0.000028s 1071.0 35000.0` or
  # ` 256 bits ecdsa (nistp256) 0.0000s 0.0001s 34700.0 11000.0`: sign/s is the one before last.
  awk '/^rsa 2048 bits|ecdsa \(nistp256\)/ {rate = $(NF - 1)} END {if (rate == "") exit 1; print rate}' \
    "$out" || fail "no sign rate in openssl speed $1's output (see $out)"
}

# limits_table: each handshake figure against the core's sign rate, and ECDSA against nginx.
limits_table() {
  local key group label sign ours nginx kernel nginx_kernel
  echo
  echo "### Full handshakes against the limit (server CPU $server_cpu; medians of $rounds round(s))"
  echo
  echo "Sign rates on CPU $server_cpu, per CPU-second: \`openssl speed -seconds $speed_seconds\`: ECDSA P-256 ${SIGN_RATE[ecdsa]}/s, RSA 2048 ${SIGN_RATE[rsa]}/s."
  echo "Goals: beyond the signature ≤ 250 µs; RSA ≥ 75 % of the sign rate; ECDSA ≥ 3× nginx-tuned."
  echo
  echo "| key, group | handshakes per server CPU-second | % of the sign rate | µs per handshake beyond the signature | of which in the kernel, µs | nginx-tuned | pki-sidecar / nginx-tuned | nginx-tuned in the kernel, µs |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for key in ecdsa rsa; do
    for group in X25519 X25519MLKEM768; do
      label=${KEY_LABEL[$key]}
      sign=${SIGN_RATE[$key]}
      ours=$(result_median "hs-$key-$group" per_cpu pki-sidecar)
      nginx=$(result_median "hs-$key-$group" per_cpu nginx-tuned)
      kernel=$(result_median "hs-$key-$group" kernel_us pki-sidecar)
      nginx_kernel=$(result_median "hs-$key-$group" kernel_us nginx-tuned)
      [ -n "$ours" ] || continue
      awk -v label="$label, $group" -v sign="$sign" -v ours="$ours" -v nginx="$nginx" \
        -v kernel="$kernel" -v nginx_kernel="$nginx_kernel" 'BEGIN {
        beyond = 1e6 / ours - 1e6 / sign
        printf "| %s | %.0f | %.1f %% | %.0f | %.0f | %s | %s | %s |\n", label, ours, 100 * ours / sign,
          beyond, kernel,
          (nginx == "" ? "— (OpenSSL 3.0 has no ML-KEM)" : sprintf("%.0f", nginx)),
          (nginx == "" ? "—" : sprintf("%.2f", ours / nginx)),
          (nginx == "" ? "—" : sprintf("%.0f", nginx_kernel))
      }'
    done
  done
}

# floor_table: each handshake against the least it could cost here: the floor (a plain connection
# and forwarded request through nginx-plain), with the round trip a TLS 1.3 handshake adds
# (floor-rt), plus the signature and the key-exchange share; and each goal's budget against
# that least.
floor_table() {
  local floor floor_kernel floor_rt floor_rt_kernel key group label ours nginx least
  floor=$(result_median floor per_cpu nginx-plain)
  floor_kernel=$(result_median floor kernel_us nginx-plain)
  floor_rt=$(result_median floor-rt per_cpu nginx-plain)
  floor_rt_kernel=$(result_median floor-rt kernel_us nginx-plain)
  [ -n "$floor" ] && [ -n "$floor_rt" ] || return 0
  floor=$(awk -v r="$floor" 'BEGIN {printf "%.1f", 1e6 / r}')
  floor_rt=$(awk -v r="$floor_rt" 'BEGIN {printf "%.1f", 1e6 / r}')
  echo
  echo "### Full handshakes against the floor (server CPU $server_cpu; medians of $rounds round(s))"
  echo
  echo "Floor: a plain HTTP/1.1 request on a new TCP connection, forwarded to the same upstream by nginx configured as nginx-tuned without TLS (nginx-plain), one client after another as for the handshakes: $floor µs of server CPU per connection, $(printf '%.0f' "$floor_kernel") µs of it in the kernel."
  echo "With the round trip a TLS 1.3 handshake adds (the client's GET /flight first, answered by nginx with a response of the size of a handshake flight): $floor_rt µs per connection, $(printf '%.0f' "$floor_rt_kernel") µs of it in the kernel; the round trip costs $(awk -v a="$floor" -v b="$floor_rt" 'BEGIN {printf "%.0f", b - a}') µs."
  echo "Cryptography per full handshake with the proxy's provider (examples/crypto_cost.rs on CPU $server_cpu): signature ECDSA P-256 ${SIGN_US[ecdsa]} µs, RSA 2048 (PSS) ${SIGN_US[rsa]} µs; server key-exchange share X25519 ${KX_US[X25519]} µs, X25519MLKEM768 ${KX_US[X25519MLKEM768]} µs."
  echo "Least = floor with the round trip + signature + key exchange: a lower bound (the key schedule, the transcript hash and the records are left out)."
  echo
  echo "| key, group | pki-sidecar µs per handshake | least without the round trip, µs | least, µs | pki-sidecar above the least, µs | pki-sidecar % of the least's rate |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for key in ecdsa rsa; do
    for group in X25519 X25519MLKEM768; do
      label=${KEY_LABEL[$key]}
      ours=$(result_median "hs-$key-$group" per_cpu pki-sidecar)
      [ -n "$ours" ] || continue
      awk -v label="$label, $group" -v ours="$ours" -v floor="$floor" -v floor_rt="$floor_rt" \
        -v sign="${SIGN_US[$key]}" -v kx="${KX_US[$group]}" 'BEGIN {
        us = 1e6 / ours; least = floor_rt + sign + kx
        printf "| %s | %.0f | %.0f | %.0f | %.0f | %.1f %% |\n", label, us, floor + sign + kx, least, us - least, 100 * least / us
      }'
    done
  done
  echo
  nginx=$(result_median hs-ecdsa-X25519 per_cpu nginx-tuned)
  ours=$(result_median hs-ecdsa-X25519 per_cpu pki-sidecar)
  least=$(awk -v f="$floor_rt" -v s="${SIGN_US[ecdsa]}" -v k="${KX_US[X25519]}" 'BEGIN {print f + s + k}')
  [ -n "$nginx" ] && [ -n "$ours" ] && awk -v nginx="$nginx" -v ours="$ours" -v least="$least" 'BEGIN {
    budget = 1e6 / (3 * nginx)
    printf "- ECDSA ≥ 3× nginx-tuned: at most %.0f µs per handshake (pki-sidecar: %.0f); the least is %.0f µs, so the goal is %s.\n",
      budget, 1e6 / ours, least,
      (budget >= least ? sprintf("above the least by %.0f µs: reachable in principle", budget - least) : sprintf("%.0f µs below the least: out of reach of any server here", least - budget))
  }'
  ours=$(result_median hs-rsa-X25519 per_cpu pki-sidecar)
  least=$(awk -v f="$floor_rt" -v s="${SIGN_US[rsa]}" -v k="${KX_US[X25519]}" 'BEGIN {print f + s + k}')
  [ -n "$ours" ] && awk -v rate="${SIGN_RATE[rsa]}" -v ours="$ours" -v least="$least" -v sign="${SIGN_US[rsa]}" 'BEGIN {
    budget = 1e6 / (0.75 * rate)
    # The budget is set by openssl speed'"'"'s sign rate, the least by aws-lc'"'"'s signature: both
    # are printed, so a gap between the two libraries shows.
    printf "- RSA 2048 ≥ 75 %% of openssl speed'"'"'s sign rate (%.0f/s): at most %.0f µs per handshake (pki-sidecar: %.0f); the least is %.0f µs (aws-lc'"'"'s signature %.0f µs), so the goal is %s.\n",
      rate, budget, 1e6 / ours, least, sign,
      (budget >= least ? sprintf("above the least by %.0f µs: reachable in principle", budget - least) : sprintf("%.0f µs below the least: out of reach of any server here", least - budget))
  }'
  return 0
}

# result_median TABLE METRIC SERVER: the median of the recorded values, empty when none.
result_median() {
  local values
  mapfile -t values < <(awk -F'\t' -v t="$1" -v m="$2" -v s="$3" '$1 == t && $2 == m && $3 == s {print $4}' "$RESULTS")
  [ "${#values[@]}" -gt 0 ] && median "${values[@]}"
  return 0
}

# measure_idle NAME [PROTO]: RSS before and while a client holds $idle_conns TLS connections (ALPN
# PROTO: http/1.1, the default, or h2), each having made one request; after the second reading
# the client makes one more request on each, to check they were all still open, and closes them.
# For HTTP/1.1, a third reading $after_close seconds later, with no traffic meanwhile.
measure_idle() {
  local name=$1 proto=${2:-http/1.1} dir=$WORK/$1 before with after count held alive established
  local table=idle curl_proto=--http1.1 out
  if [ "$proto" = h2 ]; then table=idle-h2 curl_proto=--http2; fi
  out=$dir/$table-$round.txt
  # One request through, so lazily built state (upstream pool, TLS contexts) is in the baseline.
  curl -sf "$curl_proto" --cacert "$WORK/ca.pem" --resolve "foo.home:$SERVER_PORT:127.0.0.1" \
    "https://foo.home:$SERVER_PORT/" >/dev/null
  sleep "$settle"
  read -r before _ _ count _ <<<"$(lib procstat "$SERVER_PID")"
  rm -f "$dir/idle.release"
  start_bg "$out" taskset -c "$client_cpu" \
    python3 "$BENCHLIB" idle-conns "$SERVER_PORT" "$idle_conns" "$WORK/ca.pem" "$dir/idle.release" "$proto"
  local client=$BG_PID
  wait_until 180 "$name: the idle client did not open $idle_conns $proto connections (see $out)" \
    grep -q '^ready' "$out"
  sleep "$settle"
  read -r with _ _ _ <<<"$(lib procstat "$SERVER_PID")"
  established=$(lib established "$SERVER_PORT")
  touch "$dir/idle.release"
  wait_until 60 "$name: the idle client did not finish" grep -q '^alive' "$out"
  wait "$client" 2>/dev/null || true
  forget_pid "$client"
  read -r _ held <<<"$(grep '^ready' "$out")"
  read -r _ alive <<<"$(grep '^alive' "$out")"
  [ "$established" -ge "$idle_conns" ] ||
    say "warning: $name had $established established connections of $idle_conns"
  record "$table" rss_before "$name" "$before"
  record "$table" rss_with "$name" "$with"
  record "$table" per_conn "$name" "$(awk -v a="$before" -v b="$with" -v n="$held" 'BEGIN {print (b - a) / n}')"
  record "$table" alive "$name" "$alive"
  record "$table" processes "$name" "$count"
  if [ "$proto" = http/1.1 ]; then
    sleep "$after_close"
    read -r after _ _ _ <<<"$(lib procstat "$SERVER_PID")"
    record "$table" rss_after "$name" "$after"
  fi
}

# measure_rotation NAME: a new ECDSA pair every second for $rotation_seconds while two wrk run
# (keep-alive connections, and a new connection per request so handshakes, resumed or full,
# straddle the swaps).
# nginx gets `nginx -s reload` after each rotation; the proxy gets nothing.
measure_rotation() {
  local name=$1 dir=$WORK/$1 length=$((rotation_seconds + 1)) i last_dir keepalive fresh
  local ka_out=$dir/rotation-keepalive.txt close_out=$dir/rotation-close.txt
  start_server "$name" ecdsa
  taskset -c "$client_cpu" wrk -t1 -c16 -d"${length}s" "$URL" >"$ka_out" 2>&1 &
  keepalive=$!
  PIDS+=("$keepalive")
  taskset -c "$client_cpu" wrk -t1 -c4 -d"${length}s" -H 'Connection: close' \
    "$URL" >"$close_out" 2>&1 &
  fresh=$!
  PIDS+=("$fresh")
  # Rotation i happens at 0.5 + (i - 1) seconds on the clock, whatever the previous one cost (a
  # rotation writes two files with fsync; nginx's reload takes time too), so all of them fall
  # inside wrk's run.
  local start=$EPOCHREALTIME wait_s late=0
  for ((i = 1; i <= rotation_seconds; i++)); do
    wait_s=$(awk -v s="$start" -v i="$i" -v now="$EPOCHREALTIME" 'BEGIN {print s + i - 0.5 - now}')
    if awk -v w="$wait_s" 'BEGIN {exit !(w > 0)}'; then sleep "$wait_s"; else late=$wait_s; fi
    last_dir=$WORK/pool/ecdsa-$((i % 6 + 1))
    lib rotate "$last_dir" "$WORK/live/ecdsa"
    if [ "$name" != pki-sidecar ]; then nginx_cmd "$dir" -s reload 2>>"$dir/reload.log"; fi
  done
  # A rotation that started late (a negative wait) means the machine could not keep up.
  [ "$late" = 0 ] || say "warning: $name: a rotation started ${late#-}s late"
  wait "$keepalive" || fail "wrk (keep-alive) failed during rotation (see $ka_out)"
  wait "$fresh" || fail "wrk (Connection: close) failed during rotation (see $close_out)"
  forget_pid "$keepalive"
  forget_pid "$fresh"
  local ka_failed ka_total close_failed close_total want
  read -r _ _ _ ka_failed ka_total <<<"$(lib wrk "$ka_out")"
  read -r _ _ _ close_failed close_total <<<"$(lib wrk "$close_out")"
  # The rotations must have taken effect: the last pair is the one served.
  want=$(serial_of_pair "$last_dir")
  wait_until 10 "$name still serves an old certificate after the rotations" \
    serves_serial "$SERVER_PORT" "$want"
  record rotation rotations "$name" "$rotation_seconds"
  record rotation requests "$name" "$((ka_total + close_total))"
  record rotation failed "$name" "$((ka_failed + close_failed))"
  if [ "$name" = pki-sidecar ]; then
    record rotation reloads "$name" "$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" |
      awk '/^pki_sidecar_proxy_certificate_reloads_total\{.*result="success"/ {n += $2} END {print n + 0}')"
  fi
  stop_server
  lib rotate "$WORK/pool/ecdsa-1" "$WORK/live/ecdsa"
}

# --- the run --------------------------------------------------------------------------------------

started=$SECONDS
say "machine: $(machine)"
declare -A SIGN_RATE SUITE SIGN_US KX_US
declare -A KEY_LABEL=([ecdsa]="ECDSA P-256" [rsa]="RSA 2048")
say "openssl speed on CPU $server_cpu (${speed_seconds}s each): ecdsap256, rsa2048"
SIGN_RATE[ecdsa]=$(sign_rate ecdsap256)
SIGN_RATE[rsa]=$(sign_rate rsa2048)
setup_pki
say "crypto_cost on CPU $server_cpu (${speed_seconds}s): signatures and key-exchange shares"
crypto_costs
start_app

for ((round = 1; round <= rounds; round++)); do
  for ((s = 0; s < ${#servers[@]}; s++)); do
    # Rotate the order each round, so no server always runs first (or last) in a warm machine.
    name=${servers[(s + round - 1) % ${#servers[@]}]}
    say "round $round/$rounds: $name"
    start_server "$name" ecdsa
    if [ "$name" = pki-sidecar ] && [ "$round" = 1 ]; then
      say "pki-sidecar proxy under taskset -c $server_cpu: $(tokio_workers "$SERVER_PID") tokio worker(s)"
    fi
    measure_idle "$name"
    # HTTP/2 on a fresh server too: memory freed by the HTTP/1.1 connections would be reused.
    stop_server
    start_server "$name" ecdsa
    measure_idle "$name" h2
    measure_h1 "$name"
    measure_h2 "$name"
    measure_handshakes "$name" ecdsa X25519
    # OpenSSL 3.0 (nginx's) has no ML-KEM: the hybrid group is measured on pki-sidecar alone.
    [ "$name" = pki-sidecar ] && measure_handshakes "$name" ecdsa X25519MLKEM768
    stop_server
    start_server "$name" rsa
    measure_handshakes "$name" rsa X25519
    [ "$name" = pki-sidecar ] && measure_handshakes "$name" rsa X25519MLKEM768
    stop_server
    if [ "$name" = nginx-tuned ]; then
      say "round $round/$rounds: nginx-plain (the floor, no TLS)"
      start_server nginx-plain ecdsa
      measure_floor
      stop_server
    fi
  done
done
for name in pki-sidecar nginx-tuned; do
  say "rotation: $name, ${rotation_seconds}s"
  measure_rotation "$name"
done

mode=full
[ "${1:-}" = --smoke ] && mode=smoke
echo "## pki-sidecar proxy vs nginx ($mode: $rounds round(s), ${duration}s per measure)"
echo
echo "Machine: $(machine). Server on CPU $server_cpu, load generator and app on CPU $client_cpu."
echo "$(nginx -v 2>&1 | sed 's/.*version: //'), $(wrk -v 2>&1 | sed -n 1p | awk '{print "wrk", $2}'), $(h2load --version)."
lib report "$RESULTS" '{
  "servers": ["pki-sidecar", "nginx-tuned", "nginx-default"],
  "ours": "pki-sidecar", "reference": "nginx-tuned",
  "tables": [
    {"id": "h1", "title": "HTTP/1.1 keep-alive (wrk -t1 -c'"$h1_conns"', ECDSA P-256)", "metrics": [
      ["rps", "requests/s"], ["p50", "p50 latency, ms"], ["p99", "p99 latency, ms"],
      ["failed", "failed requests"], ["per_cpu", "requests per server CPU-second"],
      ["busy", "server CPU busy, %"]]},
    {"id": "h2", "title": "HTTP/2 (h2load -t1 -c'"$h2_clients"' -m'"$h2_streams"', ECDSA P-256)", "metrics": [
      ["rps", "requests/s"], ["failed", "failed requests"],
      ["per_cpu", "requests per server CPU-second"], ["busy", "server CPU busy, %"]]},
    {"id": "hs-ecdsa-X25519", "title": "Full TLS 1.3 handshakes, ECDSA P-256, X25519 (one client, a new connection per request, as s_time -new)", "metrics": [
      ["rps", "handshakes/s"], ["failed", "failed requests"],
      ["per_cpu", "handshakes per server CPU-second"], ["busy", "server CPU busy, %"],
      ["switches", "server voluntary context switches per handshake"],
      ["kernel_us", "server CPU in the kernel per handshake, µs"]]},
    {"id": "hs-ecdsa-X25519MLKEM768", "title": "Full TLS 1.3 handshakes, ECDSA P-256, X25519MLKEM768 (the same)", "metrics": [
      ["rps", "handshakes/s"], ["failed", "failed requests"],
      ["per_cpu", "handshakes per server CPU-second"], ["busy", "server CPU busy, %"],
      ["switches", "server voluntary context switches per handshake"],
      ["kernel_us", "server CPU in the kernel per handshake, µs"]]},
    {"id": "hs-rsa-X25519", "title": "Full TLS 1.3 handshakes, RSA 2048, X25519 (the same)", "metrics": [
      ["rps", "handshakes/s"], ["failed", "failed requests"],
      ["per_cpu", "handshakes per server CPU-second"], ["busy", "server CPU busy, %"],
      ["switches", "server voluntary context switches per handshake"],
      ["kernel_us", "server CPU in the kernel per handshake, µs"]]},
    {"id": "hs-rsa-X25519MLKEM768", "title": "Full TLS 1.3 handshakes, RSA 2048, X25519MLKEM768 (the same)", "metrics": [
      ["rps", "handshakes/s"], ["failed", "failed requests"],
      ["per_cpu", "handshakes per server CPU-second"], ["busy", "server CPU busy, %"],
      ["switches", "server voluntary context switches per handshake"],
      ["kernel_us", "server CPU in the kernel per handshake, µs"]]},
    {"id": "idle", "title": "Memory with '"$idle_conns"' idle HTTP/1.1 keep-alive TLS connections, one request each (RSS summed over the server'"'"'s processes)", "metrics": [
      ["rss_before", "RSS before, KiB"], ["rss_with", "RSS with the connections, KiB"],
      ["per_conn", "KiB per connection"], ["alive", "connections still open at the end"],
      ["rss_after", "RSS '"$after_close"' s after the client closed them, KiB"],
      ["processes", "processes"]]},
    {"id": "idle-h2", "title": "Memory with '"$idle_conns"' idle HTTP/2 TLS connections, one request each (RSS summed over the server'"'"'s processes)", "metrics": [
      ["rss_before", "RSS before, KiB"], ["rss_with", "RSS with the connections, KiB"],
      ["per_conn", "KiB per connection"], ["alive", "connections still open at the end"],
      ["processes", "processes"]]},
    {"id": "rotation", "title": "Certificate rotation under load (a new pair every second; nginx: nginx -s reload each time)", "metrics": [
      ["rotations", "rotations"], ["requests", "requests"], ["failed", "failed requests"],
      ["reloads", "reloads seen by the proxy"]]}
  ]}'
limits_table
floor_table
echo
echo "Cipher suites the handshake client (rustls, listing AES-256-GCM first as OpenSSL's clients do) got: $(for name in "${servers[@]}"; do printf '%s %s; ' "$name" "${SUITE[$name]:-none}"; done | sed 's/; $//')."
echo
say "done in $((SECONDS - started))s"
