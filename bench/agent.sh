#!/usr/bin/env bash
# bench/agent.sh [--smoke]: pki-sidecar agent against OpenBao Agent, with the same HCL file.
#
# One OpenBao dev server, configured by deploy/vault/setup.sh exactly as for the Pod (PKI root +
# intermediate + role `home`, policy `pki`, Kubernetes auth role `authkube`). Kubernetes auth
# calls a TokenReview endpoint: a python stand-in (bench/lib/benchlib.py tokenreview) believes any
# ServiceAccount-shaped JWT, and the agents read an unsigned one from a file.
#
# The config is the seed's etc/agent.hcl with three edits: its paths moved under a temporary
# directory, `token_path` pointing at the JWT file, and a short certificate TTL (`ttl=30s`, smoke
# `ttl=10s`) so renewals come quickly. `bao agent -config` and `pki-sidecar agent --config` read
# it; pki-sidecar gets a second file moving its metrics listener to a free loopback port (the
# default 0.0.0.0:9101 may be taken), which OpenBao Agent would not accept in its file.
#
# Measures:
#   - time from process start to both tls.crt and tls.key on disk (fresh directory on tmpfs, each
#     agent in turn, several runs, median), split with the audit log's timestamps into start-up,
#     time in Vault and the rest (Vault's RSA key generation alone can dominate);
#   - in the same runs, interleaved, Vault's own time for the same work: `curl` logging in to
#     auth/kubernetes/login with the JWT, then writing pki_intermediate/issue/home with the
#     template's parameters (the sum of both requests' time_total: no process start, no files);
#     the agent's overhead is its median minus curl's, printed again with each run's time in
#     Vault (from the audit log) taken out of both, which Vault's RSA key generation cannot move;
#   - RSS (and its anonymous part, RssAnon) and threads 2 s after the first certificate, and after
#     N certificate renewals (both agents run side by side for this: they share nothing but the
#     server);
#   - CPU time per renewal between those two points: utime + stime from /proc (10 ms ticks), and
#     the threads' schedstat (nanoseconds);
#   - Vault requests per renewal: a `file` audit device on the dev server logs every request with
#     its User-Agent (audited unhashed), which tells the two agents apart (OpenBao Agent names
#     itself, pki-sidecar sends pki-sidecar/VERSION; the script talks to Vault only before).
#
# --smoke: 1 first-cert run each, 1 renewal, ttl=10s: checks that every measure can be taken.
# Environment: PKI_SIDECAR_BIN (skip the build), BENCH_RUNS, BENCH_RENEWALS, BENCH_TTL (seconds),
# BENCH_KEY_TYPE (e.g. `ec`: rewrite role `home` after setup.sh to issue that key type),
# BENCH_BEFORE_BIN (another pki-sidecar build, e.g. an earlier commit's: its first-certificate
# runs are interleaved with the others as `pki-sidecar-before`), BENCH_KEEP=1 (keep the
# temporary directory), TMPDIR (default /dev/shm when it is a tmpfs, so
# the agents' writes and fsyncs cost what they cost on a Pod's emptyDir in memory).
set -euo pipefail
if [ -z "${TMPDIR:-}" ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

if [ "${1:-}" = --smoke ]; then
  mode=smoke runs=1 renewals=1 ttl=10
else
  [ $# -eq 0 ] || fail "usage: bench/agent.sh [--smoke]"
  mode=full runs=${BENCH_RUNS:-11} renewals=${BENCH_RENEWALS:-10} ttl=${BENCH_TTL:-30}
fi
agents=(pki-sidecar openbao-agent)
# The first-certificate runs add Vault's own time, measured with curl.
first_cert_clients=(pki-sidecar openbao-agent curl)
if [ -n "${BENCH_BEFORE_BIN:-}" ]; then
  [ -x "$BENCH_BEFORE_BIN" ] || fail "BENCH_BEFORE_BIN=$BENCH_BEFORE_BIN is not executable"
  first_cert_clients+=(pki-sidecar-before)
fi

need curl openssl python3
BIN=$(sidecar_binary)
RESULTS=$WORK/results.tsv
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# --- OpenBao, configured as for the Pod ------------------------------------------------------------

setup_vault() {
  start_bg "$WORK/tokenreview.log" python3 "$BENCHLIB" tokenreview "$WORK/tokenreview.port"
  wait_until 10 "the TokenReview stand-in did not start (see $WORK/tokenreview.log)" \
    test -s "$WORK/tokenreview.port"
  # OpenBao 2 refuses to enable audit devices through the API: declare it in a config file.
  cat >"$WORK/audit.hcl" <<EOF
audit "file" "bench" {
  options {
    file_path = "$WORK/audit.log"
  }
}
EOF
  start_bao "" -config="$WORK/audit.hcl"
  # Kubernetes auth wants the API server's CA even over plain http; any certificate will do.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=k8s-ca \
    -keyout "$WORK/k8s-ca.key" -out "$WORK/k8s-ca.pem" 2>/dev/null
  VAULT_CLI=$BAO_BIN KUBERNETES_HOST="http://127.0.0.1:$(cat "$WORK/tokenreview.port")" \
    KUBERNETES_CA_CERT_FILE="$WORK/k8s-ca.pem" bash "$REPO_DIR/deploy/vault/setup.sh" \
    >"$WORK/setup.log" 2>&1 || fail "deploy/vault/setup.sh failed (see $WORK/setup.log)"
  if [ -n "${BENCH_KEY_TYPE:-}" ]; then
    # An experiment, not the Pod's setup: the role's key type decides how long Vault takes to
    # issue (RSA 2048 key generation: tens to hundreds of ms; EC P-256: about a millisecond).
    "$BAO_BIN" patch pki_intermediate/roles/home key_type="$BENCH_KEY_TYPE" key_bits=0 >/dev/null
    say "role home: key_type=$BENCH_KEY_TYPE (BENCH_KEY_TYPE)"
  fi
  # Log each request's User-Agent in clear, to count requests per agent.
  "$BAO_BIN" write sys/config/auditing/request-headers/user-agent hmac=false >/dev/null
  lib jwt poc-sidecar-tls-pki app-sa >"$WORK/jwt"
  # curl's requests: the login the agents make, and the issue the template asks for.
  python3 -c 'import json, sys; print(json.dumps({"role": "authkube", "jwt": open(sys.argv[1]).read().strip()}))' \
    "$WORK/jwt" >"$WORK/login.json"
  printf '{"common_name": "foo.home", "alt_names": "localhost,bar.home", "ttl": "%ss"}\n' "$ttl" \
    >"$WORK/issue.json"
}

# agent_config DIR: the seed's file with its paths under DIR, the JWT file, and the short TTL.
agent_config() {
  local dir=$1
  seed_agent_hcl "$dir" "$ttl"
  cat >"$dir/metrics.hcl" <<EOF
telemetry { metrics_listen = "127.0.0.1:$(lib free-ports 1)" }
EOF
}

# agent_command NAME DIR: the command line running agent NAME on DIR's config. The agents log in
# with the JWT, not the root token the script uses: run it under NO_TOKEN (`env` execs, so a
# background agent's pid is its own).
agent_command() {
  local name=$1 dir=$2
  case $name in
    pki-sidecar) AGENT_CMD=("$BIN" agent --config "$dir/agent.hcl" --config "$dir/metrics.hcl") ;;
    pki-sidecar-before)
      AGENT_CMD=("$BENCH_BEFORE_BIN" agent --config "$dir/agent.hcl" --config "$dir/metrics.hcl")
      ;;
    openbao-agent) AGENT_CMD=("$BAO_BIN" agent -config="$dir/agent.hcl") ;;
  esac
}
NO_TOKEN=(env -u VAULT_TOKEN -u BAO_TOKEN)

# The client each agent is in the audit log, by User-Agent: OpenBao Agent names itself ("Vault
# Agent Auto-Auth/...", "Vault Agent Templating/..."), pki-sidecar sends "pki-sidecar/VERSION".
client_of() {
  case $1 in
    pki-sidecar | pki-sidecar-before) echo pki-sidecar/ ;;
    openbao-agent) echo "Vault Agent" ;;
    curl) echo curl/ ;;
  esac
}

# --- measures -------------------------------------------------------------------------------------

# measure_first_cert NAME RUN: process start to both files, from an empty directory; the audit
# log splits it into the time until the agent's first request reaches Vault, the time Vault
# spends answering (login, PKI issue with its key generation...), and the agent's own time.
measure_first_cert() {
  local name=$1 run=$2 dir=$WORK/first/$1-$2 seconds wall_start audit_start to_vault in_vault
  agent_config "$dir"
  agent_command "$name" "$dir"
  audit_start=$(stat -c %s "$WORK/audit.log")
  # The harness runs under NO_TOKEN, so the agent is its direct child (no `env` exec to time).
  read -r seconds wall_start <<<"$("${NO_TOKEN[@]}" python3 "$BENCHLIB" first-cert "$dir/ssl" 60 \
    "${AGENT_CMD[@]}")" ||
    fail "$name wrote no certificate (see $dir/first-cert.log)"
  read -r to_vault in_vault <<<"$(lib audit-timeline "$WORK/audit.log" "$audit_start" \
    "$(stat -c %s "$WORK/audit.log")" "$(client_of "$name")" "$wall_start")"
  record first seconds "$name" "$seconds"
  record first to_vault "$name" "$to_vault"
  record first in_vault "$name" "$in_vault"
  record first own "$name" "$(awk -v t="$seconds" -v v="$in_vault" 'BEGIN {print t - v}')"
}

# measure_curl RUN: Vault's own time for the agent's work, as a client with nothing else to do
# sees it: curl logs in with the JWT, then issues with the token (each request's time_total,
# connect included; curl's own start and the JSON parsing between the two are not counted).
measure_curl() {
  local run=$1 dir=$WORK/first/curl-$1 audit_start wall_start login issue token to_vault in_vault
  mkdir -p "$dir"
  audit_start=$(stat -c %s "$WORK/audit.log")
  wall_start=$(date +%s.%N)
  login=$(curl -sS --fail-with-body -o "$dir/login.out" -w '%{time_total}' -X POST \
    --data-binary @"$WORK/login.json" "$VAULT_ADDR/v1/auth/kubernetes/login") ||
    fail "curl: login refused (see $dir/login.out)"
  token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["auth"]["client_token"])' \
    "$dir/login.out") || fail "curl: no token in $dir/login.out"
  issue=$(curl -sS --fail-with-body -o "$dir/issue.out" -w '%{time_total}' -X POST \
    -H "X-Vault-Token: $token" --data-binary @"$WORK/issue.json" \
    "$VAULT_ADDR/v1/pki_intermediate/issue/home") || fail "curl: issue refused (see $dir/issue.out)"
  grep -q '"private_key"' "$dir/issue.out" || fail "curl: no private key in $dir/issue.out"
  read -r to_vault in_vault <<<"$(lib audit-timeline "$WORK/audit.log" "$audit_start" \
    "$(stat -c %s "$WORK/audit.log")" "$(client_of curl)" "$wall_start")"
  local seconds
  seconds=$(awk -v a="$login" -v b="$issue" 'BEGIN {print a + b}')
  record first seconds curl "$seconds"
  record first to_vault curl "$to_vault"
  record first in_vault curl "$in_vault"
  record first own curl "$(awk -v t="$seconds" -v v="$in_vault" 'BEGIN {print t - v}')"
}

# check_clients: each agent's login must be found in the audit log by client_of (the first-cert
# runs made one each), else the request counts would be silently zero.
check_clients() {
  local name count
  for name in "${agents[@]}"; do
    read -r count _ <<<"$(lib audit-count "$WORK/audit.log" 0 "$(stat -c %s "$WORK/audit.log")" \
      "$(client_of "$name")")"
    [ "$count" -gt 0 ] || fail "no request by $name ($(client_of "$name")) in $WORK/audit.log"
  done
}

# per_renewal BEFORE AFTER SCALE: SCALE * (AFTER - BEFORE) / renewals.
per_renewal() { awk -v a="$1" -v b="$2" -v k="$3" -v n="$renewals" 'BEGIN {print k * (b - a) / n}'; }

# measure_renewals: both agents side by side from a fresh directory until each has renewed its
# certificate $renewals times.
measure_renewals() {
  local name dir pid
  declare -A pids
  for name in "${agents[@]}"; do
    dir=$WORK/renew/$name
    agent_config "$dir"
    agent_command "$name" "$dir"
    start_bg "$dir/agent.log" "${NO_TOKEN[@]}" "${AGENT_CMD[@]}"
    pids[$name]=$BG_PID
  done
  for name in "${agents[@]}"; do
    wait_until 60 "$name wrote no certificate (see $WORK/renew/$name/agent.log)" \
      test -e "$WORK/renew/$name/ssl/tls.crt" -a -e "$WORK/renew/$name/ssl/tls.key"
  done
  sleep 2
  local rss threads cpu sched anon
  declare -A cpu_start sched_start audit_start
  for name in "${agents[@]}"; do
    pid=${pids[$name]}
    # `env` execs the agent, so the pid is the agent's own.
    read -r rss threads cpu _ sched _ anon <<<"$(lib procstat "$pid")"
    record start rss "$name" "$rss"
    record start anon "$name" "$anon"
    record start threads "$name" "$threads"
    cpu_start[$name]=$cpu
    sched_start[$name]=$sched
    audit_start[$name]=$(stat -c %s "$WORK/audit.log")
    start_bg "$WORK/renew/$name.renewals" python3 "$BENCHLIB" renewals \
      "$WORK/renew/$name/ssl/tls.crt" "$renewals" "$((renewals * ttl * 2 + 30))" "$pid" \
      "$WORK/audit.log"
    pids[$name-watch]=$BG_PID
  done
  say "waiting for $renewals renewal(s) of a ${ttl}s certificate by each agent"
  local audit_end interval requests detail
  for name in "${agents[@]}"; do
    wait "${pids[$name-watch]}" || fail "$name: $(tail -1 "$WORK/renew/$name.renewals")"
    forget_pid "${pids[$name-watch]}"
    read -r rss threads cpu audit_end interval sched anon <"$WORK/renew/$name.renewals"
    record renewed rss "$name" "$rss"
    record renewed anon "$name" "$anon"
    record renewed threads "$name" "$threads"
    record renewed cpu_ms "$name" "$(per_renewal "${cpu_start[$name]}" "$cpu" 1000)"
    record renewed sched_ms "$name" "$(per_renewal "${sched_start[$name]}" "$sched" 1000)"
    record renewed interval "$name" "$interval"
    read -r requests detail <<<"$(lib audit-count "$WORK/audit.log" "${audit_start[$name]}" \
      "$audit_end" "$(client_of "$name")")"
    record renewed requests "$name" "$(per_renewal 0 "$requests" 1)"
    REQUEST_PATHS[$name]=$detail
  done
}

# --- the run --------------------------------------------------------------------------------------

started=$SECONDS
declare -A REQUEST_PATHS
setup_vault
clients=${#first_cert_clients[@]}
for ((run = 1; run <= runs; run++)); do
  # Rotate which client goes first.
  shift_by=$(((run - 1) % clients))
  order=("${first_cert_clients[@]:shift_by}" "${first_cert_clients[@]:0:shift_by}")
  for name in "${order[@]}"; do
    say "first certificate, run $run/$runs: $name"
    if [ "$name" = curl ]; then measure_curl "$run"; else measure_first_cert "$name" "$run"; fi
  done
done
check_clients
measure_renewals

echo "## pki-sidecar agent vs OpenBao Agent ($mode: $runs start(s) each, $renewals renewal(s) of a ${ttl}s certificate)"
echo
echo "Machine: $(machine). $("$BAO_BIN" version | cut -d' ' -f1-2) agent; the same HCL file for both."
echo "Files on $(stat -f -c %T "$WORK") ($WORK); role home: key_type=${BENCH_KEY_TYPE:-rsa (setup.sh)}; pki-sidecar $("$BIN" --version 2>/dev/null | head -1)."
lib report "$RESULTS" '{
  "servers": ["pki-sidecar", "pki-sidecar-before", "openbao-agent", "curl"], "ours": "pki-sidecar", "reference": "openbao-agent",
  "tables": [
    {"id": "first", "title": "Start to first certificate (an empty directory: login, then issue)",
     "minus": "curl", "metrics": [
      ["seconds", "seconds from process start to tls.crt + tls.key"],
      ["to_vault", "of which: start to the first request reaching Vault"],
      ["in_vault", "of which: Vault answering (audit log, request to response)"],
      ["own", "total minus the time in Vault"]]},
    {"id": "start", "title": "After start (2 s after the first certificate)", "metrics": [
      ["rss", "RSS, KiB"], ["anon", "of which anonymous (RssAnon: heap, stacks), KiB"],
      ["threads", "threads"]]},
    {"id": "renewed", "title": "After '"$renewals"' renewal(s)", "metrics": [
      ["rss", "RSS, KiB"], ["anon", "of which anonymous (RssAnon: heap, stacks), KiB"],
      ["threads", "threads"], ["cpu_ms", "CPU per renewal, ms (utime+stime, 10 ms ticks)"],
      ["sched_ms", "CPU per renewal, ms (schedstat, live threads)"],
      ["requests", "Vault requests per renewal"], ["interval", "seconds between renewals"]]}
  ]}'
echo
echo "curl: Vault's own time for the same login and issue (the sum of both requests' time_total)."
# Twice: on the totals (the issue's measure), then on each run's total minus its own time in
# Vault (the audit log's), which takes out how long Vault took to answer that run. With an RSA
# role Vault generates a new key for every issue, in 16 to 250 ms, and that spread reaches the
# medians of the totals; the second line does not depend on it.
own_what="total minus each run's time in Vault, which takes out Vault's key generation"
lib overhead "$RESULTS" first seconds pki-sidecar curl 5
lib overhead "$RESULTS" first own pki-sidecar curl 5 "$own_what"
if [ -n "${BENCH_BEFORE_BIN:-}" ]; then
  echo "pki-sidecar-before: $BENCH_BEFORE_BIN ($("$BENCH_BEFORE_BIN" --version 2>/dev/null | head -1))."
  lib overhead "$RESULTS" first seconds pki-sidecar-before curl 5
  lib overhead "$RESULTS" first own pki-sidecar-before curl 5 "$own_what"
fi
echo
echo "Vault requests between the first certificate and the last renewal, by path:"
echo
for name in "${agents[@]}"; do echo "- $name: ${REQUEST_PATHS[$name]//,/, }"; done
echo
say "done in $((SECONDS - started))s"
