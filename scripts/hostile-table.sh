#!/usr/bin/env bash
# Runs the hostile-request probes (tests/integration/proxy/hostile.rs) against pki-sidecar's
# proxy and against nginx (the Debian package, started unprivileged by the test as a TLS
# reverse proxy in front of the same recording upstream) and turns the `HOSTILE ...` lines the
# test prints into RELIABILITY.md's "Hostile requests" table.
#
#   scripts/hostile-table.sh            # run the probes, print the table
#   scripts/hostile-table.sh --update   # run the probes, rewrite the table in RELIABILITY.md
#   scripts/hostile-table.sh --from LOG # format the lines already in LOG (no run)
#
# Without nginx installed (scripts/install-test-deps.sh installs nginx-light) the nginx column
# says "not measured". Takes a few seconds once the tests are built.
set -euo pipefail
cd "$(dirname "$0")/.."

update=false
from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=true ;;
    --from) from="$2"; shift ;;
    *) echo "usage: $0 [--update] [--from LOG]" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$from" ]; then
  from=$(mktemp)
  trap 'rm -f "$from"' EXIT
  cargo test -j2 --test integration proxy::hostile::hostile_requests_beside_nginx -- --nocapture --test-threads=1 2>&1 | tee "$from" >&2
fi

nginx=$(sed -n 's/^.*HOSTILE-NGINX \(.*\)$/\1/p' "$from" | head -n 1)
table=$(
  printf '| probe | pki-sidecar: client gets · upstream receives | %s: client gets · upstream receives |\n' "${nginx:-nginx}"
  printf '| --- | --- | --- |\n'
  # probe=ID<TAB>ours=TEXT<TAB>nginx=TEXT
  sed -n 's/^.*HOSTILE probe=\([^\t]*\)\tours=\([^\t]*\)\tnginx=\(.*\)$/\1\t\2\t\3/p' "$from" |
    awk -F '\t' '{ for (i = 1; i <= 3; i++) gsub(/\|/, "\\|", $i); printf "| %s | %s | %s |\n", $1, $2, $3 }'
)
rows=$(printf '%s\n' "$table" | grep -c '^| [^-p]' || true)
if [ "$rows" -eq 0 ]; then
  echo "hostile-table: no HOSTILE lines found" >&2
  exit 1
fi

if $update; then
  python3 scripts/replace-generated.py RELIABILITY.md hostile-table "$table"
  echo "hostile-table: RELIABILITY.md updated ($rows rows)" >&2
else
  printf '%s\n' "$table"
fi
