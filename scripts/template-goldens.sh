#!/usr/bin/env bash
# Renders templates with OpenBao Agent (Go's text/template, through consul-template) and writes
# what it produced beside each one: the bytes pki-sidecar must reproduce. The outputs are
# committed; rerun this after editing or adding a .tpl.
#
#   scripts/template-goldens.sh [DIR...]   # DIR defaults to tests/fixtures/templates
#
# Two kinds of DIR:
# - tests/fixtures/templates (the engine's unit-test goldens): every X.tpl must render; X.golden
#   is written. Any failure stops the script and writes nothing.
# - a compatibility area, tests/compat/templates/<area> (it has a SOURCES file): every X.tpl is
#   a case. X.golden is written when bao agent renders it, X.error (bao's error line) when bao
#   agent fails on it, and the other of the two is removed. The cases that rendered before
#   (no X.error) are rendered together in one bao agent run; if that run fails, and for every
#   X.error candidate, each case gets a run of its own (a failing template stops bao agent).
#   A case with X.ours (pki-sidecar's intentional output, see COMPATIBILITY.md) keeps it.
#
# Case inputs, identical for bao agent here and for pki-sidecar in scripts/compat-templates.sh
# (both source scripts/compat-lib.sh):
# - DIR/golden-secret.json is written as the KV v2 secret `secret/golden` (empty without it);
# - X.delims ("LEFT RIGHT" on one line) sets the template's delimiters;
# - DIR/ENV (optional, KEY=VALUE lines) is exported into the agent's environment;
# - the agent runs with the repository root as its working directory, so a relative `file`
#   path in a case is relative to the repository root.
#
# Idempotent: outputs are rendered into a scratch directory and copied only when every case has
# an outcome; the server it started is killed on every exit path, and no other bao process is
# touched. HOME points at the scratch directory so the dev server's token helper does not write
# into the real home.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/compat-lib.sh
. "$root/scripts/compat-lib.sh"

[ $# -gt 0 ] || set -- "$root/tests/fixtures/templates"
compat_find_bao
compat_start_server

for arg in "$@"; do
  dir=$(cd "$arg" && pwd)
  shopt -s nullglob
  templates=("$dir"/*.tpl)
  shopt -u nullglob
  [ ${#templates[@]} -gt 0 ] || { echo "template-goldens: no .tpl in $dir" >&2; exit 1; }
  compat_seed "$dir"
  out="$COMPAT_WORK/out/$(basename "$dir")"
  rm -rf "$out"
  mkdir -p "$out"

  if [ ! -f "$dir/SOURCES" ]; then
    # The fixtures: one run, all must render.
    if ! compat_run_bao "$dir" "$out" "${templates[@]}"; then
      echo "template-goldens: bao agent failed:" >&2
      cat "$COMPAT_WORK/agent.log" >&2
      exit 1
    fi
    for tpl in "${templates[@]}"; do
      name=$(basename "$tpl" .tpl)
      [ -f "$out/$name.out" ] || { echo "template-goldens: bao agent rendered no $name" >&2; exit 1; }
    done
    for tpl in "${templates[@]}"; do
      name=$(basename "$tpl" .tpl)
      cp "$out/$name.out" "$dir/$name.golden"
    done
    echo "template-goldens: rendered ${#templates[@]} templates into $dir"
    continue
  fi

  # A compatibility area.
  passing=() candidates=()
  for tpl in "${templates[@]}"; do
    name=$(basename "$tpl" .tpl)
    if [ -f "$dir/$name.error" ]; then candidates+=("$tpl"); else passing+=("$tpl"); fi
  done
  if [ ${#passing[@]} -gt 0 ] && ! compat_run_bao "$dir" "$out" "${passing[@]}"; then
    echo "template-goldens: $(basename "$dir"): the batch run failed; rendering each case alone" >&2
    candidates+=("${passing[@]}")
    rm -f "$out"/*.out
  fi
  for tpl in ${candidates[@]+"${candidates[@]}"}; do
    name=$(basename "$tpl" .tpl)
    if ! compat_run_bao "$dir" "$out" "$tpl"; then
      # bao agent's own error line: the last line naming the failure.
      compat_error_line "$COMPAT_WORK/agent.log" >"$out/$name.err"
      rm -f "$out/$name.out"
    fi
  done
  errors=0 goldens=0
  for tpl in "${templates[@]}"; do
    name=$(basename "$tpl" .tpl)
    if [ -f "$out/$name.err" ]; then
      errors=$((errors + 1))
    elif [ -f "$out/$name.out" ]; then
      goldens=$((goldens + 1))
    else
      echo "template-goldens: no outcome for $name" >&2
      exit 1
    fi
  done
  for tpl in "${templates[@]}"; do
    name=$(basename "$tpl" .tpl)
    if [ -f "$out/$name.err" ]; then
      cp "$out/$name.err" "$dir/$name.error"
      rm -f "$dir/$name.golden"
    else
      cp "$out/$name.out" "$dir/$name.golden"
      rm -f "$dir/$name.error"
    fi
  done
  echo "template-goldens: $dir: $goldens rendered (.golden), $errors failed in bao agent (.error)"
done
