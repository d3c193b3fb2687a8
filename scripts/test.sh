#!/usr/bin/env bash
# The README's test command: installs what the tests need (scripts/install-test-deps.sh, which
# skips whatever is already installed, so a second run goes straight to the tests), then runs
# `cargo test -j2 --locked` with this script's arguments appended, e.g.
#
#   bash scripts/test.sh                          # everything
#   bash scripts/test.sh --test integration pod   # one test binary, filtered
#
# .ci/run runs this same command for its test step. Run as root: the Pod tests create network
# namespaces, and the fault suite's disk-full case needs a mount namespace (without root it
# is skipped, or fails where PKI_SIDECAR_REQUIRE_ROOT=1).
set -euo pipefail
cd "$(dirname "$0")/.."

# The cargo tools (cargo-deny, cargo-fuzz) serve .ci/run's supply-chain and fuzzing steps, not
# the tests: --for-tests leaves them out.
bash scripts/install-test-deps.sh --for-tests
exec cargo test -j2 --locked "$@"
