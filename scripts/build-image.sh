#!/usr/bin/env bash
# Builds the container image from `Containerfile` with buildah (no daemon, no registry) for
# linux/amd64 and linux/arm64, as one manifest list, and prints the measured sizes. Needs root,
# buildah, skopeo and debootstrap (Debian packages; scripts/install-test-deps.sh installs them).
#
# The Containerfile's build stage runs on this machine's platform (amd64) and cross-compiles both
# static binaries with Zig (cargo-zigbuild), in one cargo run; each platform's image then only
# copies its binary onto its runtime base. Nothing runs under emulation, so no qemu/binfmt_misc
# is needed to build; scripts/run-foreign-arch.sh runs the arm64 binary under qemu afterwards.
#
# The Containerfile's two base images come from registries (docker.io, gcr.io). Where those are
# reachable, this is just `podman build --platform ... --manifest`. Where they are not, this
# script first builds local stand-ins from Debian packages, the way the originals are made, and
# passes them as the Containerfile's build args; every instruction of the Containerfile then
# runs as is:
#
#   localhost/stand-in/rust:1.95-slim-bookworm      for docker.io/library/rust:1.95-slim-bookworm
#       debootstrap --variant=minbase bookworm, then gcc, libc6-dev, ca-certificates and
#       rustup-init --profile minimal --default-toolchain 1.95.0, as the official image does.
#       amd64 only: it is the build platform's image.
#   localhost/stand-in/distroless-static-debian12:nonroot-<arch>   (amd64, arm64)
#       for gcr.io/distroless/static-debian12:nonroot, one per platform. FROM scratch with what
#       distroless/static carries, from the same Debian packages distroless unpacks (base-files'
#       os-release, ca-certificates, tzdata, netbase: architecture-independent data), its
#       /etc/passwd and /etc/group (root, nobody, nonroot 65532), /tmp (1777), /home/nonroot, and
#       its config (User 65532, WorkingDir /home/nonroot, SSL_CERT_FILE, Architecture).
#
# Usage: scripts/build-image.sh [--registry]
#   --registry   use the Containerfile's default (registry) base images instead of stand-ins.
# Environment: PKI_SIDECAR_IMAGE (the manifest list's tag; default localhost/pki-sidecar:dev),
# PKI_SIDECAR_PLATFORMS (default "linux/amd64 linux/arm64"), PKI_SIDECAR_IMAGE_CACHE (the
# downloaded .debs and rustup-init; default /var/cache/pki-sidecar-image), DEBIAN_MIRROR.
# Output:
#   the manifest list $PKI_SIDECAR_IMAGE in containers-storage (one image per platform);
#   target/image/pki-sidecar.oci.tar   an OCI archive (gzip layers: what a registry would store)
#       whose index.json names one image index (the manifest list, ref name = the tag), which
#       lists one image manifest per platform (`platform` field: os, architecture);
#   target/image/linux-<arch>/pki-sidecar   each platform's binary, copied out of its image;
#   the size lines on stdout, per platform, and the build time.
#
# Idempotent: stand-ins already in storage are reused, and `--layers` lets buildah reuse the
# Containerfile's steps whose inputs did not change: a second run with nothing changed takes
# seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${PKI_SIDECAR_IMAGE:-localhost/pki-sidecar:dev}
script_start=$(date +%s)
CACHE=${PKI_SIDECAR_IMAGE_CACHE:-/var/cache/pki-sidecar-image}
RUST_VERSION=1.95.0
BUILD_STAND_IN=localhost/stand-in/rust:1.95-slim-bookworm
# One runtime stand-in per platform: RUNTIME_STAND_IN-<arch>.
RUNTIME_STAND_IN=localhost/stand-in/distroless-static-debian12:nonroot
PLATFORMS=${PKI_SIDECAR_PLATFORMS:-linux/amd64 linux/arm64}
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

# $1: the architecture (amd64, arm64). The files are data, the same for every architecture; the
# config's Architecture is what a builder matches against --platform.
build_runtime_stand_in() {
  local arch=$1 name="$RUNTIME_STAND_IN-$1"
  have_image "$name" && return 0
  local start; start=$(now)
  echo "build-image: building $name (scratch + Debian's base-files, ca-certificates, tzdata, netbase)"
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
    # The newest download; Debian's .deb names are plain (name_version_arch.deb).
    # shellcheck disable=SC2012
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
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --os linux --arch "$arch" "$ctr"
  buildah commit -q --rm "$ctr" "$name" >/dev/null
  echo "build-image: $name built in $(( $(now) - start ))s"
}

arches=()
for platform in $PLATFORMS; do
  case "$platform" in
    linux/amd64 | linux/arm64) arches+=("${platform#linux/}") ;;
    *) echo "build-image: unsupported platform '$platform' (PKI_SIDECAR_PLATFORMS: linux/amd64, linux/arm64)" >&2; exit 2 ;;
  esac
done
[ ${#arches[@]} -gt 0 ] || { echo "build-image: PKI_SIDECAR_PLATFORMS is empty" >&2; exit 2; }

# The commit for `--version` and pki_sidecar_build_info (build.rs); `.git` stays out of the
# build context.
build_args=(--build-arg "PKI_SIDECAR_GIT_COMMIT=$(git rev-parse --verify HEAD 2>/dev/null || echo unknown)")
if [ "$use_registry" -eq 0 ]; then
  for arch in "${arches[@]}"; do build_runtime_stand_in "$arch"; done
  build_builder_stand_in
  # By image ID, not name: buildah (1.28) looks a local name up for the platform being built,
  # not the stage's $BUILDPLATFORM, so for linux/arm64 it would miss the amd64 stand-in and try
  # a registry. By ID the stage gets this very image, and its cached layers, on every platform.
  build_args+=(--build-arg "BUILD_IMAGE=$(buildah inspect --type image --format '{{.FromImageID}}' "$BUILD_STAND_IN")")
fi

# The manifest list is made anew each run (an old one would keep the previous images beside the
# new); the images' layers stay in buildah's cache, so this costs nothing when nothing changed.
if buildah manifest inspect "$IMAGE" >/dev/null 2>&1; then
  buildah manifest rm "$IMAGE" >/dev/null
elif have_image "$IMAGE"; then
  buildah rmi "$IMAGE" >/dev/null   # a single-platform image of an earlier version of this script
fi
buildah manifest create "$IMAGE" >/dev/null
rm -f "$OUT/build.log"
for arch in "${arches[@]}"; do
  start=$(now)
  runtime=()
  [ "$use_registry" -eq 1 ] || runtime=(--build-arg "RUNTIME_IMAGE=$RUNTIME_STAND_IN-$arch")
  echo "build-image: buildah bud --platform linux/$arch ${build_args[*]} ${runtime[*]} --manifest $IMAGE -f Containerfile ."
  # The build stage is the same for every platform (FROM --platform=$BUILDPLATFORM, no
  # TARGETARCH in it): the first platform compiles both binaries, the next reuses that layer.
  # --ulimit: buildah starts RUN steps with 1024 open files, too few for Zig's first link (it
  # compiles musl with many compilers at once); this script's own hard limit is passed instead.
  buildah bud --layers --isolation chroot --platform "linux/$arch" "${ca_volume[@]}" \
    --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" \
    "${build_args[@]}" "${runtime[@]}" --iidfile "$OUT/linux-$arch.iid" --manifest "$IMAGE" \
    -f Containerfile . >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log" >&2; exit 1; }
  echo "build-image: linux/$arch built in $(( $(now) - start ))s (log: $OUT/build.log)"
done

rm -f "$OUT/pki-sidecar.oci.tar"
buildah manifest push -q --all --format oci "$IMAGE" "oci-archive:$OUT/pki-sidecar.oci.tar:$IMAGE" >/dev/null

# Each platform's binary, copied out of its image (the file the image runs, not a new build).
for arch in "${arches[@]}"; do
  mkdir -p "$OUT/linux-$arch"
  ctr=$(buildah from -q --pull=never "$(cat "$OUT/linux-$arch.iid")")
  install -m 0755 "$(buildah mount "$ctr")/pki-sidecar" "$OUT/linux-$arch/pki-sidecar"
  buildah umount "$ctr" >/dev/null
  buildah rm "$ctr" >/dev/null
done

# Sizes, per platform. Uncompressed: the layers' tar streams, what `podman images` and
# `buildah images` report. Compressed: the gzip layers of the OCI archive, what a registry stores
# and a node of that architecture pulls.
human() { awk -v b="$1" 'BEGIN { printf "%.2f MB (%d bytes)", b / 1000000, b }'; }
while read -r platform layers compressed uncompressed; do
  arch=${platform#linux/}
  echo "image $IMAGE $platform: $(human "$uncompressed") uncompressed, $(human "$compressed") compressed ($layers gzip layers, $OUT/pki-sidecar.oci.tar)"
  echo "binary $platform /pki-sidecar: $(human "$(stat -c %s "$OUT/linux-$arch/pki-sidecar")") ($OUT/linux-$arch/pki-sidecar)"
done < <(python3 - "$OUT/pki-sidecar.oci.tar" <<'PY'
import json, sys, tarfile, zlib
INDEX = "application/vnd.oci.image.index.v1+json"
with tarfile.open(sys.argv[1]) as archive:
    def blob(digest):
        return archive.extractfile("blobs/" + digest.replace(":", "/")).read()
    def manifests(descriptors):
        for d in descriptors:
            if d["mediaType"] == INDEX:
                yield from manifests(json.loads(blob(d["digest"]))["manifests"])
            else:
                yield d
    for d in manifests(json.loads(archive.extractfile("index.json").read())["manifests"]):
        layers = json.loads(blob(d["digest"]))["layers"]
        sizes = [(l["size"], len(zlib.decompress(blob(l["digest"]), 47))) for l in layers]
        platform = d["platform"]["os"] + "/" + d["platform"]["architecture"]
        print(platform, len(sizes), sum(s[0] for s in sizes), sum(s[1] for s in sizes))
PY
)
echo "build-image: done in $(( $(now) - script_start ))s"
