#!/usr/bin/env bash
# Runs the arm64 binary that scripts/build-image.sh copied out of the linux/arm64 image, on this
# amd64 machine, under qemu's user-mode emulator (`qemu-aarch64-static`, Debian's
# qemu-user-static, called directly: no binfmt_misc registration is needed or assumed):
#   1. it is an aarch64 ELF file with no dynamic loader (static);
#   2. `--version` names the crate's version and the commit the image was built from (the same
#      line as the amd64 binary's, and a commit of this checkout);
#   3. `validate` accepts the seed's agent file (etc/agent.hcl) and reports its auth method;
#   4. the `app` role serves `hello world` on a loopback port (curl), and exits 0 on SIGTERM.
# Any miss fails the script with what was expected and what came.
#
# Usage: scripts/run-foreign-arch.sh [BINARY]   (default target/image/linux-arm64/pki-sidecar)
# CI (.ci/run) runs it after scripts/build-image.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/image/linux-arm64/pki-sidecar}
amd64=target/image/linux-amd64/pki-sidecar
qemu="qemu-aarch64-static"

fail() { echo "run-foreign-arch: FAIL: $*" >&2; exit 1; }

command -v "$qemu" >/dev/null || fail "$qemu missing (Debian qemu-user-static; scripts/install-test-deps.sh)"
[ -f "$binary" ] || fail "no binary at $binary: run scripts/build-image.sh"

# 1. The ELF header: class 64-bit, little-endian, e_machine 183 (EM_AARCH64), e_type 3 (ET_DYN:
#    static-pie, placed at a random address); no PT_INTERP.
read -r magic machine < <(python3 - "$binary" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
elf_type, machine = struct.unpack_from("<HH", data, 16)
phoff = struct.unpack_from("<Q", data, 0x20)[0]
phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
print(data[:6].hex(), f"{machine}{'+interp' if interp else ''}{'' if elf_type == 3 else f'+type{elf_type}'}")
PY
)
[ "$magic" = 7f454c460201 ] || fail "$binary is not a 64-bit little-endian ELF file (header $magic)"
[ "$machine" = 183 ] || fail "$binary: ELF machine '$machine', expected 183 (EM_AARCH64, static-pie: type 3 and no interpreter)"
echo "run-foreign-arch: $binary is a static-pie aarch64 ELF executable"

# 2. --version: "pki-sidecar <version> (commit <40 hex digits>)".
version=$("$qemu" "$binary" --version) || fail "--version exited $?"
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | sed -n 1p)
commit=$(printf '%s\n' "$version" | sed -n "s/^pki-sidecar $crate_version (commit \([0-9a-f]\{40\}\))\$/\1/p")
[ -n "$commit" ] || fail "--version printed '$version', expected 'pki-sidecar $crate_version (commit <40 hex digits>)'"
if [ -x "$amd64" ]; then
  native=$("$amd64" --version)
  [ "$native" = "$version" ] || fail "arm64 --version '$version' differs from amd64's '$native' (one build, one commit)"
fi
git merge-base --is-ancestor "$commit" HEAD 2>/dev/null \
  || fail "--version names commit $commit, which is not HEAD ($(git rev-parse HEAD)) or before it"
echo "run-foreign-arch: --version: $version"

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 3. validate the seed's agent file, with the seed's environment for the agent container.
if ! VAULT_ADDR=https://vault.home VAULT_CACERT=/etc/ssl/certs/vault.pem \
  "$qemu" "$binary" validate --config etc/agent.hcl --role agent >"$work/validate" 2>&1; then
  cat "$work/validate" >&2
  fail "validate --config etc/agent.hcl --role agent failed"
fi
grep -q 'kubernetes at auth/kubernetes: role authkube' "$work/validate" || {
  cat "$work/validate" >&2
  fail "validate did not report the seed's auth method (kubernetes at auth/kubernetes: role authkube)"
}
echo "run-foreign-arch: validate etc/agent.hcl: ok"

# 4. The app role on two free loopback ports.
read -r port metrics < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
printf 'app {\n  listen = "127.0.0.1:%s"\n  metrics_listen = "127.0.0.1:%s"\n}\n' "$port" "$metrics" \
  >"$work/app.hcl"
"$qemu" "$binary" app --config "$work/app.hcl" >"$work/app.out" 2>"$work/app.err" &
pid=$!
body=
# Emulated, the start takes longer than native: up to 30 s.
for _ in $(seq 1 150); do
  if body=$(curl -sf --max-time 5 "http://127.0.0.1:$port/"); then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/app.err" >&2; fail "app exited before serving"; }
  sleep 0.2
done
[ "$body" = "hello world" ] || { cat "$work/app.err" >&2; fail "app answered '$body' on 127.0.0.1:$port, expected 'hello world'"; }
echo "run-foreign-arch: app on 127.0.0.1:$port: $body"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || { cat "$work/app.err" >&2; fail "app exited $status on SIGTERM, expected 0"; }
echo "run-foreign-arch: app stopped on SIGTERM with status 0"
echo "run-foreign-arch: ok (aarch64 under $($qemu --version | sed -n 1p))"
