#!/usr/bin/env bash
# Runs the fault-injection suite (tests/integration/faults.rs) one test at a time and turns the
# `RELIABILITY fault=... did=...` line each case prints into RELIABILITY.md's table.
#
#   scripts/reliability-table.sh            # run the suite, print the table
#   scripts/reliability-table.sh --update   # run the suite, rewrite the table in RELIABILITY.md
#   scripts/reliability-table.sh --from LOG # format the lines already in LOG (no run)
#
# Runs as root for the disk-full case (a tmpfs in a mount namespace); without root that case
# is skipped and missing from the table. Takes about 5 minutes on 2 cores.
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
  start=$(date +%s)
  cargo test -j2 --test integration faults:: -- --nocapture --test-threads=1 2>&1 | tee "$from" >&2
  echo "reliability-table: suite took $(( $(date +%s) - start ))s" >&2
fi

table=$(
  printf '| fault | what the test did | runs | requests lost | certs lost | time to recover (s) |\n'
  printf '| --- | --- | ---: | ---: | ---: | ---: |\n'
  # fault=ID runs=N requests_lost=N certs_lost=N recover_s=X did=TEXT (TEXT runs to the end).
  sed -n 's/^.*RELIABILITY fault=\([^ ]*\) runs=\([^ ]*\) requests_lost=\([^ ]*\) certs_lost=\([^ ]*\) recover_s=\([^ ]*\) did=\(.*\)$/\1\t\2\t\3\t\4\t\5\t\6/p' "$from" |
    awk -F '\t' '{ gsub(/\|/, "\\|", $6); printf "| `%s` | %s | %s | %s | %s | %s |\n", $1, $6, $2, $3, $4, $5 }'
)
rows=$(printf '%s\n' "$table" | grep -c '^| `' || true)
if [ "$rows" -eq 0 ]; then
  echo "reliability-table: no RELIABILITY lines found" >&2
  exit 1
fi

if $update; then
  python3 scripts/replace-generated.py RELIABILITY.md reliability-table "$table"
  echo "reliability-table: RELIABILITY.md updated ($rows rows)" >&2
else
  printf '%s\n' "$table"
fi
