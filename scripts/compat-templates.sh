#!/usr/bin/env bash
# The template compatibility check: every case under tests/compat/templates/<area>/ rendered by
# the real `pki-sidecar agent` (target/debug/pki-sidecar, or $PKI_SIDECAR) against a real
# `bao server -dev`, compared byte for byte with what OpenBao Agent produced.
#
#   scripts/compat-templates.sh [--live N] [AREA...]   # AREA: a directory name, default all
#
# For each case X.tpl (layout and inputs: scripts/template-goldens.sh):
# - X.golden: pki-sidecar must write exactly these bytes;
# - X.error: bao agent failed on the case; pki-sidecar must fail too (at load or render);
# - X.ours beside either: pki-sidecar intentionally differs and must write X.ours instead (also
#   where bao agent fails); then
#   COMPATIBILITY.md's "Intentional differences" section must name X (as `area/X`);
# - X.ours-error beside X.golden: pki-sidecar intentionally refuses what bao agent renders (same
#   rule for COMPATIBILITY.md).
# Any other difference fails the check, with a diff.
#
# The cases of an area that render run in one pki-sidecar agent run (each case alone if that
# run fails, to say which); each failing case runs alone, since a failing template stops the
# agent.
#
# --live N: also re-renders at least N cases with bao agent (every k-th case over all areas,
# plus every .error case) and compares with the committed .golden/.error, so that the goldens
# cannot drift from OpenBao Agent. For an .error case only the failure is compared, not its
# text.
#
# Exit status: 0 when everything matches, 1 otherwise. The bao server it starts is the only
# process it stops.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/compat-lib.sh
. "$root/scripts/compat-lib.sh"

live=0
areas=()
while [ $# -gt 0 ]; do
  case $1 in
    --live) live=${2:?--live needs a number}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) areas+=("$1"); shift ;;
  esac
done
compat="$root/tests/compat/templates"
if [ ${#areas[@]} -eq 0 ]; then
  for d in "$compat"/*/; do areas+=("$(basename "$d")"); done
fi
binary=${PKI_SIDECAR:-$root/target/debug/pki-sidecar}
[ -x "$binary" ] || { echo "compat-templates: no binary at $binary (cargo build first)" >&2; exit 1; }

compat_find_bao
compat_start_server

# The "Intentional differences" section of COMPATIBILITY.md (up to the next heading).
intentional=$(awk '/^## Intentional differences/ {on = 1; next} /^## / {on = 0} on' "$root/COMPATIBILITY.md")

failures=0
fail() {
  echo "FAIL $1" >&2
  failures=$((failures + 1))
}

total=0 identical=0 errors_ok=0 ours_ok=0
for area in "${areas[@]}"; do
  dir="$compat/$area"
  [ -f "$dir/SOURCES" ] || { fail "$area: no SOURCES file"; continue; }
  shopt -s nullglob
  templates=("$dir"/*.tpl)
  shopt -u nullglob
  [ ${#templates[@]} -gt 0 ] || { fail "$area: no cases"; continue; }
  compat_seed "$dir"
  out="$COMPAT_WORK/ours/$area"
  mkdir -p "$out"

  passing=() failing=()
  for tpl in "${templates[@]}"; do
    name=$(basename "$tpl" .tpl)
    total=$((total + 1))
    if ! grep -q "^$name	." "$dir/SOURCES"; then fail "$area/$name: no source line in SOURCES"; fi
    if [ -f "$dir/$name.golden" ] && [ -f "$dir/$name.error" ]; then
      fail "$area/$name: both .golden and .error"
    elif [ ! -f "$dir/$name.golden" ] && [ ! -f "$dir/$name.error" ]; then
      fail "$area/$name: neither .golden nor .error (run scripts/template-goldens.sh $dir)"
      continue
    fi
    if [ -f "$dir/$name.ours" ] || [ -f "$dir/$name.ours-error" ]; then
      if ! grep -qF "$area/$name" <<<"$intentional"; then
        fail "$area/$name: differs on purpose, but COMPATIBILITY.md's Intentional differences does not name it"
      fi
    fi
    if [ -f "$dir/$name.ours" ]; then
      passing+=("$tpl")
    elif [ -f "$dir/$name.error" ] || [ -f "$dir/$name.ours-error" ]; then
      failing+=("$tpl")
    else
      passing+=("$tpl")
    fi
  done

  alone=()
  if [ ${#passing[@]} -gt 0 ] && ! compat_run_ours "$binary" "$dir" "$out" "${passing[@]}"; then
    echo "compat-templates: $area: the batch run failed; running each case alone" >&2
    alone=("${passing[@]}")
  fi
  for tpl in ${alone[@]+"${alone[@]}"}; do
    name=$(basename "$tpl" .tpl)
    rm -f "$out/$name.out"
    if ! compat_run_ours "$binary" "$dir" "$out" "$tpl"; then
      fail "$area/$name: pki-sidecar failed where bao agent rendered:"
      sed 's/^/    /' "$COMPAT_WORK/agent.log" | tail -n 5 >&2
    fi
  done
  for tpl in ${passing[@]+"${passing[@]}"}; do
    name=$(basename "$tpl" .tpl)
    [ -f "$out/$name.out" ] || continue
    want="$dir/$name.golden"
    if [ -f "$dir/$name.ours" ]; then want="$dir/$name.ours"; fi
    if cmp -s "$want" "$out/$name.out"; then
      if [ "$want" = "$dir/$name.golden" ]; then identical=$((identical + 1)); else ours_ok=$((ours_ok + 1)); fi
    else
      fail "$area/$name: output differs from $(basename "$want")"
      diff -u --label "$(basename "$want")" --label pki-sidecar "$want" "$out/$name.out" | head -n 40 >&2 || true
    fi
  done
  for tpl in ${failing[@]+"${failing[@]}"}; do
    name=$(basename "$tpl" .tpl)
    if compat_run_ours "$binary" "$dir" "$out" "$tpl"; then
      fail "$area/$name: pki-sidecar rendered a case that must fail; it wrote:"
      sed 's/^/    /' "$out/$name.out" | head -n 10 >&2 || true
    elif [ -f "$dir/$name.ours-error" ]; then
      ours_ok=$((ours_ok + 1))
    else
      errors_ok=$((errors_ok + 1))
    fi
  done
done
echo "compat-templates: $total cases: $identical byte-identical, $errors_ok failing as they must, $ours_ok intentional differences as recorded, $failures failures"

if [ "$live" -gt 0 ]; then
  # Every k-th case in sorted order over all areas, plus all .error cases.
  all=()
  for area in "${areas[@]}"; do
    for tpl in "$compat/$area"/*.tpl; do all+=("$tpl"); done
  done
  step=$(( ${#all[@]} / live ))
  [ "$step" -ge 1 ] || step=1
  sample=() i=0
  for tpl in "${all[@]}"; do
    if [ $((i % step)) -eq 0 ] || [ -f "${tpl%.tpl}.error" ]; then sample+=("$tpl"); fi
    i=$((i + 1))
  done
  live_failures=0 checked=0
  for area in "${areas[@]}"; do
    dir="$compat/$area"
    compat_seed "$dir"
    out="$COMPAT_WORK/live/$area"
    mkdir -p "$out"
    batch=() errs=()
    for tpl in "${sample[@]}"; do
      [ "$(dirname "$tpl")" = "$dir" ] || continue
      if [ -f "${tpl%.tpl}.error" ]; then errs+=("$tpl"); else batch+=("$tpl"); fi
    done
    if [ ${#batch[@]} -gt 0 ] && ! compat_run_bao "$dir" "$out" "${batch[@]}"; then
      fail "live: $area: bao agent failed on cases with a .golden:"
      compat_error_line "$COMPAT_WORK/agent.log" >&2
    fi
    for tpl in ${batch[@]+"${batch[@]}"}; do
      name=$(basename "$tpl" .tpl)
      checked=$((checked + 1))
      if ! cmp -s "$dir/$name.golden" "$out/$name.out" 2>/dev/null; then
        live_failures=$((live_failures + 1))
        fail "live: $area/$name: bao agent no longer writes $name.golden"
        [ -f "$out/$name.out" ] && diff -u "$dir/$name.golden" "$out/$name.out" | head -n 40 >&2 || true
      fi
    done
    for tpl in ${errs[@]+"${errs[@]}"}; do
      name=$(basename "$tpl" .tpl)
      checked=$((checked + 1))
      if compat_run_bao "$dir" "$out" "$tpl"; then
        live_failures=$((live_failures + 1))
        fail "live: $area/$name: bao agent now renders a case recorded as .error"
      fi
    done
  done
  echo "compat-templates: live: $checked cases re-rendered with bao agent, $live_failures differ"
fi

[ "$failures" -eq 0 ]
