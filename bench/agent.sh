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
#   - time from process start to both tls.crt and tls.key on disk (fresh directory, each agent in
#     turn, several runs, median), split with the audit log's timestamps into start-up, time in
#     Vault and the rest (Vault's RSA key generation alone can dominate);
#   - RSS and threads 2 s after the first certificate, and after N certificate renewals (both
#     agents run side by side for this: they share nothing but the server);
#   - CPU time per renewal between those two points: utime + stime from /proc (10 ms ticks), and
#     the threads' schedstat (nanoseconds);
#   - Vault requests per renewal: a `file` audit device on the dev server logs every request with
#     its User-Agent (audited unhashed), which tells the two agents apart (OpenBao Agent names
#     itself, pki-sidecar sends pki-sidecar/VERSION; the script talks to Vault only before).
#
# --smoke: 1 first-cert run each, 1 renewal, ttl=10s: checks that every measure can be taken.
# Environment: PKI_SIDECAR_BIN (skip the build), BENCH_RUNS, BENCH_RENEWALS, BENCH_TTL (seconds),
# BENCH_KEY_TYPE (e.g. `ec`: rewrite role `home` after setup.sh to issue that key type),
# BENCH_KEEP=1 (keep the temporary directory).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

if [ "${1:-}" = --smoke ]; then
  mode=smoke runs=1 renewals=1 ttl=10
else
  [ $# -eq 0 ] || fail "usage: bench/agent.sh [--smoke]"
  mode=full runs=${BENCH_RUNS:-11} renewals=${BENCH_RENEWALS:-10} ttl=${BENCH_TTL:-30}
fi
agents=(pki-sidecar openbao-agent)

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
}

# agent_config DIR: the seed's file with its paths under DIR, the JWT file, and the short TTL.
agent_config() {
  local dir=$1
  mkdir -p "$dir"
  sed -e "s|/home/vault/|$dir/|g" \
    -e "s|/etc/nginx/ssl/|$dir/ssl/|g" \
    -e "s|\"ttl=24h\"|\"ttl=${ttl}s\"|" \
    -e "s|role = \"authkube\"|role = \"authkube\"\n            token_path = \"$WORK/jwt\"|" \
    "$REPO_DIR/etc/agent.hcl" >"$dir/agent.hcl"
  if ! grep -q "token_path" "$dir/agent.hcl" || ! grep -q "ttl=${ttl}s" "$dir/agent.hcl"; then
    fail "etc/agent.hcl changed shape: could not adapt it (see $dir/agent.hcl)"
  fi
  cat >"$dir/metrics.hcl" <<EOF
telemetry { metrics_listen = "127.0.0.1:$(lib free-ports 1)" }
EOF
}

# agent_command NAME DIR: the command line running agent NAME on DIR's config. The agents log in
# with the JWT, not the root token the script uses.
agent_command() {
  local name=$1 dir=$2
  AGENT_CMD=(env -u VAULT_TOKEN -u BAO_TOKEN)
  case $name in
    pki-sidecar) AGENT_CMD+=("$BIN" agent --config "$dir/agent.hcl" --config "$dir/metrics.hcl") ;;
    openbao-agent) AGENT_CMD+=("$BAO_BIN" agent -config="$dir/agent.hcl") ;;
  esac
}

# The client each agent is in the audit log, by User-Agent: OpenBao Agent names itself ("Vault
# Agent Auto-Auth/...", "Vault Agent Templating/..."), pki-sidecar sends "pki-sidecar/VERSION".
client_of() {
  case $1 in
    pki-sidecar) echo pki-sidecar/ ;;
    openbao-agent) echo "Vault Agent" ;;
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
  read -r seconds wall_start <<<"$(lib first-cert "$dir/ssl" 60 "${AGENT_CMD[@]}")" ||
    fail "$name wrote no certificate (see $dir/first-cert.log)"
  read -r to_vault in_vault <<<"$(lib audit-timeline "$WORK/audit.log" "$audit_start" \
    "$(stat -c %s "$WORK/audit.log")" "$(client_of "$name")" "$wall_start")"
  record first seconds "$name" "$seconds"
  record first to_vault "$name" "$to_vault"
  record first in_vault "$name" "$in_vault"
  record first own "$name" "$(awk -v t="$seconds" -v v="$in_vault" 'BEGIN {print t - v}')"
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
    start_bg "$dir/agent.log" "${AGENT_CMD[@]}"
    pids[$name]=$BG_PID
  done
  for name in "${agents[@]}"; do
    wait_until 60 "$name wrote no certificate (see $WORK/renew/$name/agent.log)" \
      test -e "$WORK/renew/$name/ssl/tls.crt" -a -e "$WORK/renew/$name/ssl/tls.key"
  done
  sleep 2
  local rss threads cpu sched
  declare -A cpu_start sched_start audit_start
  for name in "${agents[@]}"; do
    pid=${pids[$name]}
    # `env` execs the agent, so the pid is the agent's own.
    read -r rss threads cpu _ sched <<<"$(lib procstat "$pid")"
    record start rss "$name" "$rss"
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
    read -r rss threads cpu audit_end interval sched <"$WORK/renew/$name.renewals"
    record renewed rss "$name" "$rss"
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
for ((run = 1; run <= runs; run++)); do
  # Alternate which agent goes first.
  if ((run % 2)); then order=("${agents[@]}"); else order=(openbao-agent pki-sidecar); fi
  for name in "${order[@]}"; do
    say "first certificate, run $run/$runs: $name"
    measure_first_cert "$name" "$run"
  done
done
check_clients
measure_renewals

echo "## pki-sidecar agent vs OpenBao Agent ($mode: $runs start(s) each, $renewals renewal(s) of a ${ttl}s certificate)"
echo
echo "Machine: $(machine). $("$BAO_BIN" version | cut -d' ' -f1-2) agent; the same HCL file for both."
lib report "$RESULTS" '{
  "servers": ["pki-sidecar", "openbao-agent"], "ours": "pki-sidecar", "reference": "openbao-agent",
  "tables": [
    {"id": "first", "title": "Start to first certificate (an empty directory: login, then issue)", "metrics": [
      ["seconds", "seconds from process start to tls.crt + tls.key"],
      ["to_vault", "of which: start to the first request reaching Vault"],
      ["in_vault", "of which: Vault answering (audit log, request to response)"],
      ["own", "total minus the time in Vault"]]},
    {"id": "start", "title": "After start (2 s after the first certificate)", "metrics": [
      ["rss", "RSS, KiB"], ["threads", "threads"]]},
    {"id": "renewed", "title": "After '"$renewals"' renewal(s)", "metrics": [
      ["rss", "RSS, KiB"], ["threads", "threads"], ["cpu_ms", "CPU per renewal, ms (utime+stime, 10 ms ticks)"],
      ["sched_ms", "CPU per renewal, ms (schedstat, live threads)"],
      ["requests", "Vault requests per renewal"], ["interval", "seconds between renewals"]]}
  ]}'
echo
echo "Vault requests between the first certificate and the last renewal, by path:"
echo
for name in "${agents[@]}"; do echo "- $name: ${REQUEST_PATHS[$name]//,/, }"; done
echo
say "done in $((SECONDS - started))s"
