#!/usr/bin/env bash
# bench/fleet.sh [--smoke]: a fleet of agents renewing short certificates against one OpenBao,
# then that OpenBao down for a while and back.
#
# One OpenBao server with raft storage (one node), configured by deploy/vault/setup.sh as for the Pod (as in
# bench/agent.sh: a python TokenReview stand-in, an unsigned ServiceAccount JWT in a file). A
# `file` audit device logs every request with its User-Agent (audited unhashed) and its token's
# accessor (hashed, but the same hash for the same token), which tells the agent kinds apart and
# each agent from the others. Every agent runs the seed's etc/agent.hcl in its own directory
# (sink, pid file, tls.crt/tls.key) with a TTL of BENCH_TTL; pki-sidecar agents get their own
# metrics listener on an ephemeral loopback port.
#
# BENCH_START says when the agents start (t0 = the first start; P = 2/3 of the TTL, the
# default renewal point):
#   staggered (default) one after the other, evenly over one renewal period P, as the Pods of a
#           fleet running for a while were started at different times: from t0 + P on, the
#           renewals are spread over the period, and an outage meets the share of them that
#           falls due during it.
#     start   t0 .. every agent has its first certificate (about t0 + P)
#     steady  [t0 + 1.1 P, t0 + 2.1 P): one renewal period with Vault up (each agent renews once)
#     outage  [t0 + 2.1 P, + outage): Vault down
#   together  all at t0, as a rollout of the whole fleet would: the renewals come in waves.
#     start   t0 .. every agent has its first certificate
#     steady  [2P - outage/2 - P, 2P - outage/2): one renewal period with Vault up (the first
#             renewals fall in it)
#     outage  [2P - outage/2, + outage): Vault down, centred on the second renewals, so every
#             agent must retry (no certificate is closer than P/2 to expiry then)
#   after   the return, BENCH_AFTER seconds
#
# The outage (BENCH_OUTAGE): `restart` (default) kills the server (SIGKILL) and starts it again
# after the outage on the same storage, then unseals it: the agents meet refused
# connections, then a sealed server (503), then an answer; that is what their retry backoff
# decides. `stop` sends SIGSTOP and SIGCONT: the listening socket stays open, the kernel queues
# every connection made meanwhile (requests the agents abandon at their client timeout
# included) and the server answers the whole queue when it resumes — the kernel's backlog more
# than the agents' backoff. (A dev server keeps its state in memory and would lose the PKI and
# the tokens on restart, hence raft storage: OpenBao 2 has no `file` storage.)
#
# Measures (bench/lib/fleet.py report):
#   - Vault requests per 5 s bucket, logins and issues apart, per agent kind, and per phase;
#   - the spread of the first renewals across the fleet (each agent's second issue, by token);
#   - Vault CPU per renewal: utime + stime of the server from /proc over the steady phase,
#     divided by the issues in it;
#   - after the return: the peak 5 s bucket (logins + issues) / the steady phase's mean bucket;
#   - then, with the agents stopped, Vault CPU per request for logins, RSA-2048 issues and
#     EC P-256 issues, one at a time from one client (the capacity table's inputs).
#
# --smoke: 10 pki-sidecar agents and 2 OpenBao Agents, 24 s certificates, a 5 s outage: checks
# that every measure can be taken (about a minute), never the figures.
# Environment: PKI_SIDECAR_BIN (skip the build), BENCH_AGENTS (200), BENCH_BAO_AGENTS (20),
# BENCH_TTL (600 s), BENCH_START (staggered|together), BENCH_OUTAGE_SECONDS (60),
# BENCH_OUTAGE (restart|stop), BENCH_AFTER (180 s), BENCH_COST_REQUESTS (200: logins and EC
# issues; RSA issues: a quarter), BENCH_KEEP=1.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
FLEET=$BENCH_DIR/lib/fleet.py

if [ "${1:-}" = --smoke ]; then
  mode=smoke agents=10 bao_agents=2 ttl=24 outage=5 after=10 cost_requests=20
  outage_kind=${BENCH_OUTAGE:-restart}
else
  [ $# -eq 0 ] || fail "usage: bench/fleet.sh [--smoke]"
  mode=full agents=${BENCH_AGENTS:-200} bao_agents=${BENCH_BAO_AGENTS:-20} ttl=${BENCH_TTL:-600}
  outage=${BENCH_OUTAGE_SECONDS:-60} after=${BENCH_AFTER:-180}
  cost_requests=${BENCH_COST_REQUESTS:-200} outage_kind=${BENCH_OUTAGE:-restart}
fi
case $outage_kind in restart | stop) ;; *) fail "BENCH_OUTAGE=$outage_kind: restart or stop" ;; esac
start_kind=${BENCH_START:-staggered}
case $start_kind in staggered | together) ;; *) fail "BENCH_START=$start_kind: staggered or together" ;; esac

need curl openssl python3
BIN=$(sidecar_binary)
BAO_BIN=$(bao_binary)
# Every agent holds a few descriptors (its Vault connections, its metrics listener, log files);
# the server one per connection.
[ "$(ulimit -n)" -ge $((20 * (agents + bao_agents) + 1024)) ] || ulimit -n $((20 * (agents + bao_agents) + 1024)) ||
  fail "ulimit -n $(ulimit -n) is too low for $((agents + bao_agents)) agents"

now() { date +%s.%N; }
# sleep_until EPOCH: returns at once if EPOCH has passed.
sleep_until() {
  local left
  left=$(awk -v t="$1" -v n="$(now)" 'BEGIN {d = t - n; print (d > 0 ? d : 0)}')
  sleep "$left"
}
at() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a + b}'; }

# --- OpenBao with raft storage --------------------------------------------------------------------

read -r BAO_PORT BAO_CLUSTER_PORT <<<"$(lib free-ports 2)"
export VAULT_ADDR="http://127.0.0.1:$BAO_PORT" BAO_ADDR="http://127.0.0.1:$BAO_PORT"

# bao_up: starts the server on $WORK/bao-data; BAO_PID is the server's own pid (`start_bg` runs
# it directly, no shell in between).
bao_up() {
  start_bg "$WORK/bao.$((++BAO_STARTS)).log" "$BAO_BIN" server -config="$WORK/bao.hcl"
  BAO_PID=$BG_PID
  # Sealed or not, /sys/health answers once the listener is up (503 while sealed).
  local deadline=$((SECONDS + 30)) code
  while :; do
    kill -0 "$BAO_PID" 2>/dev/null || fail "bao server exited (see $WORK/bao.$BAO_STARTS.log)"
    code=$(curl -s -o /dev/null -w '%{http_code}' "$VAULT_ADDR/v1/sys/health" || true)
    [ "$code" = 000 ] || break
    [ "$SECONDS" -lt "$deadline" ] || fail "bao server did not listen (see $WORK/bao.$BAO_STARTS.log)"
    sleep 0.05
  done
}

unseal() {
  env -u VAULT_TOKEN -u BAO_TOKEN "$BAO_BIN" operator unseal "$(cat "$WORK/unseal.key")" >/dev/null ||
    fail "bao operator unseal failed"
  wait_until 30 "bao did not become active after unsealing" curl -sf "$VAULT_ADDR/v1/sys/health"
}

setup_vault() {
  start_bg "$WORK/tokenreview.log" python3 "$BENCHLIB" tokenreview "$WORK/tokenreview.port"
  wait_until 10 "the TokenReview stand-in did not start (see $WORK/tokenreview.log)" \
    test -s "$WORK/tokenreview.port"
  mkdir -p "$WORK/bao-data"
  cat >"$WORK/bao.hcl" <<EOF
storage "raft" {
  path                   = "$WORK/bao-data"
  node_id                = "bench"
  performance_multiplier = 1
}
listener "tcp" {
  address     = "127.0.0.1:$BAO_PORT"
  tls_disable = true
}
api_addr     = "$VAULT_ADDR"
cluster_addr = "http://127.0.0.1:$BAO_CLUSTER_PORT"
audit "file" "bench" {
  options {
    file_path = "$WORK/audit.log"
  }
}
EOF
  BAO_STARTS=0
  bao_up
  env -u VAULT_TOKEN -u BAO_TOKEN "$BAO_BIN" operator init -key-shares=1 -key-threshold=1 \
    -format=json >"$WORK/init.json" || fail "bao operator init failed"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["unseal_keys_b64"][0]); print(d["root_token"])' \
    "$WORK/init.json" "$WORK/unseal.key" >"$WORK/root.token"
  export VAULT_TOKEN BAO_TOKEN
  VAULT_TOKEN=$(cat "$WORK/root.token") BAO_TOKEN=$VAULT_TOKEN
  unseal
  say "OpenBao initialised and unsealed"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=k8s-ca \
    -keyout "$WORK/k8s-ca.key" -out "$WORK/k8s-ca.pem" 2>/dev/null
  VAULT_CLI=$BAO_BIN KUBERNETES_HOST="http://127.0.0.1:$(cat "$WORK/tokenreview.port")" \
    KUBERNETES_CA_CERT_FILE="$WORK/k8s-ca.pem" bash "$REPO_DIR/deploy/vault/setup.sh" \
    >"$WORK/setup.log" 2>&1 || fail "deploy/vault/setup.sh failed (see $WORK/setup.log)"
  "$BAO_BIN" write sys/config/auditing/request-headers/user-agent hmac=false >/dev/null
  lib jwt poc-sidecar-tls-pki app-sa >"$WORK/jwt"
  [ -s "$WORK/audit.log" ] || fail "the audit device wrote nothing to $WORK/audit.log"
}

# --- the agents -----------------------------------------------------------------------------------

# agent_config DIR: the seed's file with its paths under DIR, the JWT file and the TTL.
agent_config() {
  local dir=$1
  seed_agent_hcl "$dir" "$ttl"
}

AGENT_DIRS=()
start_sidecar_agent() {
  local dir=$WORK/agents/sidecar-$1
  agent_config "$dir"
  AGENT_DIRS+=("$dir")
  start_bg "$dir/agent.log" env -u VAULT_TOKEN -u BAO_TOKEN \
    "$BIN" agent --config "$dir/agent.hcl" --config "$WORK/metrics.hcl"
}
start_bao_agent() {
  local dir=$WORK/agents/bao-$1
  agent_config "$dir"
  AGENT_DIRS+=("$dir")
  start_bg "$dir/agent.log" env -u VAULT_TOKEN -u BAO_TOKEN "$BAO_BIN" agent -config="$dir/agent.hcl"
}

# start_agents: every agent at t0 (together), or one after the other over the period P, the
# OpenBao Agents interleaved with the others (staggered).
start_agents() {
  local i b=0 total=$((agents + bao_agents))
  printf 'telemetry { metrics_listen = "127.0.0.1:0" }\n' >"$WORK/metrics.hcl"
  if [ "$start_kind" = together ]; then
    for ((i = 0; i < agents; i++)); do start_sidecar_agent "$i"; done
    for ((i = 0; i < bao_agents; i++)); do start_bao_agent "$i"; done
    return
  fi
  for ((i = 0; i < total; i++)); do
    sleep_until "$(at "$t0" "$(awk -v i="$i" -v n="$total" -v p="$period" 'BEGIN {print i * p / n}')")"
    # The b-th OpenBao Agent takes the slot nearest (b + 1/2) / bao_agents of the period.
    if [ "$b" -lt "$bao_agents" ] && [ $(((2 * b + 1) * total)) -le $((2 * bao_agents * i + 1)) ]; then
      start_bao_agent "$b"
      b=$((b + 1))
    else
      start_sidecar_agent "$((i - b))"
    fi
  done
}

all_certified() {
  local dir
  for dir in "${AGENT_DIRS[@]}"; do
    [ -e "$dir/ssl/tls.crt" ] && [ -e "$dir/ssl/tls.key" ] || return 1
  done
}

# check_agents_alive: an agent that exited is a failed bench (it would vanish from the counts).
check_agents_alive() {
  local pid dead=0
  for pid in "${AGENT_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || dead=$((dead + 1)); done
  [ "$dead" -eq 0 ] || fail "$dead agent(s) exited (logs: $WORK/agents/*/agent.log; BENCH_KEEP=1 keeps them)"
}

# cpu_of PID: utime + stime in seconds, from /proc (10 ms ticks), without starting a process.
cpu_of() {
  local fields
  read -r -a fields <"/proc/$1/stat"
  # The name (field 2) has no space for bao; utime and stime are fields 14 and 15.
  awk -v u="${fields[13]}" -v s="${fields[14]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (u + s) / hz}'
}

# --- the run --------------------------------------------------------------------------------------

started=$SECONDS
setup_vault
period=$(awk -v t="$ttl" 'BEGIN {printf "%.3f", t * 2 / 3}')
say "$agents pki-sidecar agent(s) and $bao_agents OpenBao Agent(s) started $start_kind, ${ttl}s certificates; outage: $outage_kind for ${outage}s"
t0=$(now)
audit_t0=$(stat -c %s "$WORK/audit.log")
start_agents
AGENT_PIDS=("${PIDS[@]:2}") # after the TokenReview stand-in and the server
wait_until $((60 + agents / 2)) "not every agent wrote a certificate (logs: $WORK/agents/*/agent.log)" all_certified
t_ready=$(now)
if [ "$start_kind" = together ]; then
  outage_start=$(at "$t0" "$(awk -v p="$period" -v o="$outage" 'BEGIN {print 2 * p - o / 2}')")
else
  outage_start=$(at "$t0" "$(awk -v p="$period" 'BEGIN {print 2.1 * p}')")
fi
steady_start=$(at "$outage_start" "-$period")
awk -v r="$t_ready" -v s="$steady_start" 'BEGIN {exit !(r <= s)}' ||
  fail "the fleet took $(awk -v r="$t_ready" -v t="$t0" 'BEGIN {print r - t}')s to start, past the steady phase's start; a longer BENCH_TTL is needed"
say "every agent has its certificate after $(awk -v r="$t_ready" -v t="$t0" 'BEGIN {printf "%.1f", r - t}')s"

sleep_until "$steady_start"
cpu_steady_start=$(cpu_of "$BAO_PID")
say "steady phase: one renewal period (${period}s)"
check_agents_alive
python3 "$FLEET" memory "${AGENT_PIDS[@]}" >"$WORK/memory.md"
sleep_until "$outage_start"
cpu_steady_end=$(cpu_of "$BAO_PID")
t_down=$(now)
case $outage_kind in
  restart)
    kill -KILL "$BAO_PID"
    wait "$BAO_PID" 2>/dev/null || true
    forget_pid "$BAO_PID"
    say "OpenBao killed; back in ${outage}s"
    sleep_until "$(at "$t_down" "$outage")"
    bao_up
    unseal
    ;;
  stop)
    kill -STOP "$BAO_PID"
    say "OpenBao stopped (SIGSTOP); back in ${outage}s"
    sleep_until "$(at "$t_down" "$outage")"
    kill -CONT "$BAO_PID"
    ;;
esac
t_up=$(now)
say "OpenBao back after $(awk -v a="$t_up" -v b="$t_down" 'BEGIN {printf "%.1f", a - b}')s; watching ${after}s"
sleep_until "$(at "$t_up" "$after")"
check_agents_alive
t_end=$(now)

# The agents off, then Vault's cost per request, alone on the server.
for pid in "${AGENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${AGENT_PIDS[@]}"; do stop_pid "$pid"; forget_pid "$pid"; done
say "Vault CPU per request: $cost_requests logins, $cost_requests EC issues, $((cost_requests / 4)) RSA issues"
python3 "$FLEET" costs "$VAULT_ADDR" "$WORK/jwt" "$cost_requests" "$((cost_requests / 4))" "$BAO_PID" \
  "$BAO_BIN" >"$WORK/costs.json" || fail "the per-request cost measure failed"

echo "## Fleet: $agents pki-sidecar agents and $bao_agents OpenBao Agents against one OpenBao ($mode)"
echo
echo "Machine: $(machine). $("$BAO_BIN" version | cut -d' ' -f1-2), raft storage (one node), server and agents on the same 2 cores."
echo "Certificates: ttl=${ttl}s, role home (RSA-2048 keys generated by Vault). Agents started $start_kind$([ "$start_kind" = together ] || echo " over ${period}s"). Outage: $outage_kind for ${outage}s."
cat "$WORK/memory.md"
# The report's arguments, so that a kept directory can be read again:
#   python3 bench/lib/fleet.py report $(cat DIR/report.args)
report_args=("$WORK/audit.log" "$audit_t0" "$ttl" "$t0" "$t_ready" "$steady_start" "$t_down"
  "$t_up" "$t_end" "$cpu_steady_start" "$cpu_steady_end" "$WORK/costs.json" "$WORK/buckets.tsv")
echo "${report_args[*]}" >"$WORK/report.args"
python3 "$FLEET" report "${report_args[@]}" || fail "a measure could not be taken from $WORK/audit.log"
say "done in $((SECONDS - started))s (BENCH_KEEP=1 keeps $WORK: audit log, 5 s buckets, logs)"
