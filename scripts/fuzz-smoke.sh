#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and fails on any crash, timeout or
# out-of-memory. CI runs it with the default 60 s per target; longer runs by hand:
#
#   scripts/fuzz-smoke.sh 1200                 # 20 min per target
#   scripts/fuzz-smoke.sh 3600 template        # one target, one hour
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh     # the same through the environment
#
# Targets (fuzz/fuzz_targets/): config (HCL loader), template (Go text/template engine with the
# agent's functions), certs (PEM, CertInfo, key_matches, the proxy's pair validation).
#
# Stable toolchain: cargo fuzz needs nightly-only rustc flags (-Z sanitizer, -C passes=sancov
# options, -Z build-std). CI has only stable, so RUSTC_BOOTSTRAP=1 lets stable rustc accept
# them. No sanitizer (FUZZ_SANITIZER=none, the default): the crate forbids unsafe code, so
# AddressSanitizer would only watch aws-lc's C and the dependencies' unsafe, at ~2x the build time
# and half the speed; panics, aborts, timeouts and memory blow-ups are caught either way.
# FUZZ_SANITIZER=address works too (see RELIABILITY.md).
#
# Inputs: each run reads its seeds (fixtures, read-only) and fuzz/regressions/TARGET (every
# crasher found so far, which must no longer crash), and grows fuzz/corpus/TARGET (gitignored;
# keep it between runs to start where the last one stopped). A crash leaves its input in
# fuzz/artifacts/TARGET/; copy it into fuzz/regressions/TARGET/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${FUZZ_SECONDS:-60}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config template certs)
sanitizer=${FUZZ_SANITIZER:-none}
# Seconds one input may take. hcl-edit parses some malformed input slowly (~1.5 ms per byte
# in the instrumented build, see RELIABILITY.md): 30 s at 8 KB leaves room for a busy machine.
timeout=${FUZZ_TIMEOUT:-30}
# Targets on which a timeout (and only a timeout) warns instead of failing: hcl-edit's parse
# time is exponential on some malformed heredocs (RELIABILITY.md), an upstream bug that a
# 60 s run may stumble on. Crashes always fail.
allow_timeouts=" ${FUZZ_ALLOW_TIMEOUTS-config} "

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

seeds_for() {
  case "$1" in
    config) echo tests/fixtures/config/valid tests/fixtures/config/invalid etc ;;
    template) echo tests/fixtures/templates ;;
    certs) echo fuzz/seeds/certs ;;
    *) echo "fuzz-smoke: unknown target $1" >&2; return 1 ;;
  esac
}

start=$(date +%s)
echo "fuzz-smoke: building ${targets[*]} (sanitizer: $sanitizer)"
mkdir -p fuzz/corpus
# All targets at once: they share the instrumented build of the crate and its dependencies.
if ! cargo fuzz build --sanitizer "$sanitizer" >fuzz/corpus/build.log 2>&1; then
  tail -n 40 fuzz/corpus/build.log >&2
  exit 1
fi
echo "fuzz-smoke: built in $(( $(date +%s) - start )) s"

failed=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  read -r -a seeds <<<"$(seeds_for "$target")"
  [ -d "fuzz/regressions/$target" ] && seeds+=("fuzz/regressions/$target")
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=("-dict=fuzz/dict/$target.dict")
  log=fuzz/corpus/$target.log
  echo "fuzz-smoke: $target for $seconds s (seeds: ${seeds[*]})"
  target_start=$(date +%s)
  mkdir -p "fuzz/artifacts/$target"
  artifacts_before=$(ls -1 "fuzz/artifacts/$target")
  if cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz-smoke: $target ok: ${execs:-?} runs in $(( $(date +%s) - target_start )) s, corpus $(find "$corpus" -type f | wc -l) inputs"
  elif new=$(comm -13 <(echo "$artifacts_before") <(ls -1 "fuzz/artifacts/$target")) &&
    [ -n "$new" ] && ! grep -qv '^timeout-' <<<"$new" && [[ $allow_timeouts == *" $target "* ]]; then
    echo "fuzz-smoke: WARNING: $target stopped on a slow input (a known upstream slow path," \
      "see RELIABILITY.md), not a crash: fuzz/artifacts/$target/$new" >&2
  else
    echo "fuzz-smoke: $target FAILED; the end of its log ($log):" >&2
    tail -n 60 "$log" >&2
    ls -1 "fuzz/artifacts/$target" 2>/dev/null | sed 's|^|fuzz-smoke: crasher fuzz/artifacts/'"$target"'/|' >&2 || true
    failed+=("$target")
  fi
done

echo "fuzz-smoke: total $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: crashed: ${failed[*]}" >&2
  exit 1
fi
