#!/usr/bin/env bash
# Builds the container image from `Containerfile` with buildah (no daemon, no registry) and
# prints its measured size. Needs root, buildah, skopeo and debootstrap (Debian packages;
# scripts/install-test-deps.sh installs them).
#
# The Containerfile's two base images come from registries (docker.io, gcr.io). Where those are
# reachable, this is just `podman build`/`buildah bud`. Where they are not, this script first
# builds two local stand-ins from Debian packages, the way the originals are made, and passes
# them as the Containerfile's build args; every instruction of the Containerfile then runs as is:
#
#   localhost/stand-in/rust:1.95-slim-bookworm      for docker.io/library/rust:1.95-slim-bookworm
#       debootstrap --variant=minbase bookworm, then gcc, libc6-dev, ca-certificates and
#       rustup-init --profile minimal --default-toolchain 1.95.0, as the official image does.
#   localhost/stand-in/distroless-static-debian12:nonroot   for gcr.io/distroless/static-debian12:nonroot
#       FROM scratch with what distroless/static carries, from the same Debian packages
#       distroless unpacks (base-files' os-release, ca-certificates, tzdata, netbase), its
#       /etc/passwd and /etc/group (root, nobody, nonroot 65532), /tmp (1777), /home/nonroot,
#       and its config (User 65532, WorkingDir /home/nonroot, SSL_CERT_FILE).
#
# Usage: scripts/build-image.sh [--registry]
#   --registry   use the Containerfile's default (registry) base images instead of stand-ins.
# Environment: PKI_SIDECAR_IMAGE (the tag; default localhost/pki-sidecar:dev),
# PKI_SIDECAR_IMAGE_CACHE (the downloaded .debs and rustup-init; default
# /var/cache/pki-sidecar-image), DEBIAN_MIRROR.
# Output: the image in containers-storage, target/image/pki-sidecar.oci.tar (an OCI archive,
# gzip layers: what a registry would store), and the size lines on stdout.
#
# Idempotent: stand-ins already in storage are reused, and `--layers` lets buildah reuse the
# Containerfile's steps whose inputs did not change.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${PKI_SIDECAR_IMAGE:-localhost/pki-sidecar:dev}
script_start=$(date +%s)
CACHE=${PKI_SIDECAR_IMAGE_CACHE:-/var/cache/pki-sidecar-image}
RUST_VERSION=1.95.0
BUILD_STAND_IN=localhost/stand-in/rust:1.95-slim-bookworm
RUNTIME_STAND_IN=localhost/stand-in/distroless-static-debian12:nonroot
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
OUT=target/image
export BUILDAH_ISOLATION=chroot

use_registry=0
case "${1:-}" in
  --registry) use_registry=1 ;;
  "") ;;
  *) echo "usage: $0 [--registry]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "build-image: run as root (buildah without a daemon, debootstrap, chroot)" >&2
  exit 1
fi
for tool in buildah skopeo debootstrap; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
mkdir -p "$CACHE" "$OUT"

# A machine whose HTTPS goes through a TLS-inspecting proxy trusts that proxy's CA (added under
# /usr/local/share/ca-certificates); the build steps that download (rustup, cargo) must too.
# The host's bundle is bind-mounted over the build containers' own for those steps only: a
# `--volume` is not part of any layer, so nothing of it reaches an image.
ca_volume=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null \
  && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ca_volume=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  echo "build-image: the host trusts local CAs ($(cd /usr/local/share/ca-certificates && echo *.crt)); build steps use its CA bundle"
fi

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }
now() { date +%s; }

build_builder_stand_in() {
  have_image "$BUILD_STAND_IN" && return 0
  local start; start=$(now)
  echo "build-image: building $BUILD_STAND_IN (debootstrap bookworm + rustup $RUST_VERSION)"
  local rustup_init="$CACHE/rustup-init"
  if [ ! -x "$rustup_init" ]; then
    curl -fsSL --retry 3 -o "$rustup_init.part" \
      https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init
    chmod +x "$rustup_init.part" && mv "$rustup_init.part" "$rustup_init"
  fi
  local ctr mnt
  ctr=$(buildah from scratch)
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; trap - RETURN' RETURN
  mnt=$(buildah mount "$ctr")
  # debian:bookworm-slim's packages, plus what rust:*-slim-bookworm adds (gcc, libc6-dev,
  # ca-certificates); the .debs are cached so a rebuild does not download them again.
  mkdir -p "$CACHE/debs"
  debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev \
    --cache-dir="$CACHE/debs" bookworm "$mnt" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$mnt"/var/cache/apt/archives/*.deb "$mnt"/var/lib/apt/lists/*
  install -m 0755 "$rustup_init" "$mnt/tmp/rustup-init"
  buildah umount "$ctr" >/dev/null
  buildah config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env RUST_VERSION=$RUST_VERSION --cmd /bin/bash "$ctr"
  buildah run "${ca_volume[@]}" "$ctr" -- sh -c "/tmp/rustup-init -y -q --no-modify-path --profile minimal \
      --default-toolchain $RUST_VERSION --default-host x86_64-unknown-linux-gnu \
    && rm /tmp/rustup-init && chmod -R a+w /usr/local/rustup /usr/local/cargo \
    && rustc --version" >"$CACHE/rustup.log" 2>&1 || { tail -20 "$CACHE/rustup.log" >&2; exit 1; }
  buildah commit -q "$ctr" "$BUILD_STAND_IN" >/dev/null
  echo "build-image: $BUILD_STAND_IN built in $(( $(now) - start ))s"
}

build_runtime_stand_in() {
  have_image "$RUNTIME_STAND_IN" && return 0
  local start; start=$(now)
  echo "build-image: building $RUNTIME_STAND_IN (scratch + Debian's base-files, ca-certificates, tzdata, netbase)"
  local debs="$CACHE/runtime-debs" root
  mkdir -p "$debs"
  root=$(mktemp -d)
  trap 'rm -rf "$root"; trap - RETURN' RETURN
  ( cd "$debs"
    if ! apt-get download base-files ca-certificates tzdata netbase >/dev/null 2>&1; then
      apt-get update -qq && apt-get download base-files ca-certificates tzdata netbase >/dev/null
    fi )
  local unpacked="$root/unpacked" rootfs="$root/rootfs"
  mkdir -p "$unpacked" "$rootfs"
  for pkg in base-files ca-certificates tzdata netbase; do
    dpkg -x "$(ls -t "$debs"/"${pkg}"_*.deb | sed -n 1p)" "$unpacked/$pkg"
  done
  # As distroless's rules do: only the data files, not the packages' scripts or binaries.
  install -d -m 0755 "$rootfs"/etc/ssl/certs "$rootfs"/usr/lib "$rootfs"/usr/share \
    "$rootfs"/var
  install -d -m 0700 "$rootfs"/root
  install -d -m 1777 "$rootfs"/tmp
  install -d -m 0700 -o 65532 -g 65532 "$rootfs"/home/nonroot
  cp -a "$unpacked"/base-files/usr/lib/os-release "$rootfs"/usr/lib/os-release
  ln -s ../usr/lib/os-release "$rootfs"/etc/os-release
  cp -a "$unpacked"/netbase/etc/. "$rootfs"/etc/
  cp -a "$unpacked"/tzdata/usr/share/zoneinfo "$rootfs"/usr/share/zoneinfo
  # ca-certificates' postinst builds this bundle from the Mozilla certificates; the same here.
  find "$unpacked"/ca-certificates/usr/share/ca-certificates/mozilla -name '*.crt' | LC_ALL=C sort \
    | xargs cat >"$rootfs"/etc/ssl/certs/ca-certificates.crt
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rootfs"/etc/passwd
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' \
    >"$rootfs"/etc/group
  printf 'hosts: files dns\n' >"$rootfs"/etc/nsswitch.conf
  chmod 0644 "$rootfs"/etc/passwd "$rootfs"/etc/group "$rootfs"/etc/nsswitch.conf
  local ctr
  ctr=$(buildah from scratch)
  # cp -a, not `buildah copy`, which would give every file to root (/home/nonroot is 65532's).
  cp -a "$rootfs"/. "$(buildah mount "$ctr")"/
  buildah umount "$ctr" >/dev/null
  buildah config --created-by "stand-in for distroless/static: scripts/build-image.sh" \
    --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$ctr"
  buildah commit -q --rm "$ctr" "$RUNTIME_STAND_IN" >/dev/null
  echo "build-image: $RUNTIME_STAND_IN built in $(( $(now) - start ))s"
}

# The commit for `--version` and pki_sidecar_build_info (build.rs); `.git` stays out of the
# build context.
build_args=(--build-arg "PKI_SIDECAR_GIT_COMMIT=$(git rev-parse --verify HEAD 2>/dev/null || echo unknown)")
if [ "$use_registry" -eq 0 ]; then
  build_runtime_stand_in
  build_builder_stand_in
  build_args+=(--build-arg "BUILD_IMAGE=$BUILD_STAND_IN" --build-arg "RUNTIME_IMAGE=$RUNTIME_STAND_IN")
fi

start=$(now)
echo "build-image: buildah bud ${build_args[*]} -f Containerfile -t $IMAGE ."
buildah bud --layers --isolation chroot "${ca_volume[@]}" "${build_args[@]}" -f Containerfile -t "$IMAGE" . \
  >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; exit 1; }
echo "build-image: Containerfile built in $(( $(now) - start ))s (log: $OUT/build.log)"

rm -f "$OUT/pki-sidecar.oci.tar"
skopeo copy -q "containers-storage:$IMAGE" "oci-archive:$OUT/pki-sidecar.oci.tar:$IMAGE"

# Sizes. Uncompressed: the layers' tar streams, what `podman images` and `buildah images` report.
# Compressed: the gzip layers of the OCI archive, what a registry stores and a node pulls.
read -r layers compressed uncompressed < <(python3 - "$OUT/pki-sidecar.oci.tar" <<'PY'
import json, sys, tarfile, zlib
with tarfile.open(sys.argv[1]) as archive:
    def blob(digest):
        return archive.extractfile("blobs/" + digest.replace(":", "/")).read()
    index = json.loads(archive.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    sizes = [(layer["size"], len(zlib.decompress(blob(layer["digest"]), 47)))
             for layer in manifest["layers"]]
print(len(sizes), sum(s[0] for s in sizes), sum(s[1] for s in sizes))
PY
)
human() { awk -v b="$1" 'BEGIN { printf "%.2f MB (%d bytes)", b / 1000000, b }'; }
ctr=$(buildah from -q "$IMAGE" 2>/dev/null)
binary=$(stat -c %s "$(buildah mount "$ctr" 2>/dev/null)/pki-sidecar")
buildah umount "$ctr" >/dev/null
buildah rm "$ctr" >/dev/null
echo "image $IMAGE: $(human "$uncompressed") uncompressed ($(buildah images --noheading --format '{{.Size}}' "$IMAGE" 2>/dev/null) in buildah images)"
echo "image $IMAGE: $(human "$compressed") compressed ($layers gzip layers, $OUT/pki-sidecar.oci.tar)"
echo "binary /pki-sidecar: $(human "$binary")"
echo "build-image: done in $(( $(now) - script_start ))s"
