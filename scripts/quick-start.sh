#!/usr/bin/env bash
# The README's quick start, literally, as a newcomer runs it: its first command (`cargo run
# --release -- dev`) in the background, the `curl` line it prints run as printed, the metrics
# URLs it prints scraped, then Ctrl-C, which must end it with status 0.
# CI runs this after the release build exists; the integration test
# dev::readme_quick_start_works_as_written runs the same arguments on the test build.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first line of the first ```sh block under "## Quick start", without a trailing comment.
command=$(awk '/^## /{section=$0} section=="## Quick start" && /^```sh/{getline; print; exit}' README.md)
command=${command%%#*}
case "$command" in
  "cargo run "*) ;;
  *) echo "quick-start: README's first command is not a cargo run: '$command'" >&2; exit 1 ;;
esac

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "quick-start: $command"
# Word splitting is meant: the README's line is a plain command without quoting.
# shellcheck disable=SC2086
$command >"$work/stdout" 2>"$work/stderr" &
pid=$!

# cargo compiles first when the release build is not fresh: allow for it.
curl_line=
for _ in $(seq 1 900); do
  curl_line=$(sed -n 's/^ *try: *//p' "$work/stdout")
  [ -n "$curl_line" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "quick-start: the command ended before serving; its stderr:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
  sleep 1
done
if [ -z "$curl_line" ]; then
  echo "quick-start: no curl line after 15 minutes" >&2
  exit 1
fi
echo "quick-start: $curl_line"
body=$(sh -c "$curl_line --silent --show-error --max-time 10")
if [ "$body" != "hello world" ]; then
  echo "quick-start: expected 'hello world', got '$body'" >&2
  exit 1
fi
sed -n 's/^ *metrics: *\([^ ]*\).*/\1/p' "$work/stdout" >"$work/metrics"
while read -r url; do
  curl --silent --show-error --fail --max-time 10 "$url" >/dev/null
  echo "quick-start: $url answers"
done <"$work/metrics"

# Ctrl-C. `cargo run` replaced itself with the binary (exec), so the signal reaches it.
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
if [ "$status" -ne 0 ]; then
  echo "quick-start: exit status $status after Ctrl-C; stderr:" >&2
  cat "$work/stderr" >&2
  exit 1
fi
echo "quick-start: ok"
