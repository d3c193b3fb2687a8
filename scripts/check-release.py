#!/usr/bin/env python3
"""Checks a release folder made by scripts/release.sh, as a user who downloads it would rely on.

    check-release.py target/release-VERSION

- SHA256SUMS names every other file of the folder, and `sha256sum -c SHA256SUMS` passes;
- each pki-sidecar-VERSION-ARCH.tar.gz holds exactly pki-sidecar-VERSION/ with the binary
  (mode 0755), LICENSE and README.md (this checkout's), man/man1/ (pki-sidecar.1 and one page
  per command, each a roff page) and completions/ for bash, zsh and fish; both tarballs hold the
  same man pages and completions;
- the tarballs are reproducible: names in sorted order, owner and group 0, every mtime the
  commit's date (SOURCE_DATE_EPOCH, else HEAD's), no name or time in the gzip header;
- the binary in each tarball is a static ELF for its architecture, byte for byte the
  `/pki-sidecar` of that platform's image in pki-sidecar-VERSION.oci.tar, whose index lists
  linux/amd64 and linux/arm64.

Exits 1 with every failure listed. `check-release.py --self-test` builds a small release
folder of that shape, which must pass, and doctored copies of it, which must fail.
"""

import gzip
import hashlib
import io
import json
import os
import pathlib
import struct
import subprocess
import sys
import tarfile

REPO = pathlib.Path(__file__).resolve().parent.parent
ARCHES = {"x86_64": ("amd64", 62), "aarch64": ("arm64", 183)}  # name: (OCI arch, ELF e_machine)
COMPLETIONS = ["completions/_pki-sidecar", "completions/pki-sidecar.bash",
               "completions/pki-sidecar.fish"]
INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}


def image_binaries(archive_path):
    """{arch: bytes of /pki-sidecar} for each linux platform of an OCI archive's index."""
    with tarfile.open(archive_path) as archive:
        def blob(digest):
            return archive.extractfile("blobs/" + digest.replace(":", "/")).read()

        manifests = []

        def walk(descriptors):
            for descriptor in descriptors:
                document = json.loads(blob(descriptor["digest"]))
                if descriptor.get("mediaType") in INDEX_TYPES or "manifests" in document:
                    walk(document["manifests"])
                else:
                    manifests.append(document)

        walk(json.loads(archive.extractfile("index.json").read())["manifests"])
        binaries = {}
        for manifest in manifests:
            config = json.loads(blob(manifest["config"]["digest"]))
            if config.get("os") != "linux":
                continue
            found = None
            for layer in manifest["layers"]:
                with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as files:
                    for member in files:
                        if member.name.lstrip("./") == "pki-sidecar" and member.isfile():
                            found = files.extractfile(member).read()
            if found is None:
                raise SystemExit(f"{archive_path}: the {config.get('architecture')} image has no /pki-sidecar")
            binaries[config["architecture"]] = found
        return binaries


def elf_facts(data):
    """(e_machine, has a PT_INTERP program header) of a little-endian ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None, None
    machine, = struct.unpack_from("<H", data, 0x12)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interp = any(struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3 for i in range(phnum))
    return machine, interp


def check_folder(folder, epoch):
    """Every way FOLDER differs from what a release must be, as sentences; [] when none."""
    version = folder.name.removeprefix("release-")
    failures = []
    fail = failures.append

    # SHA256SUMS
    files = sorted(p.name for p in folder.iterdir() if p.name != "SHA256SUMS")
    wanted = sorted([f"pki-sidecar-{version}-{arch}.tar.gz" for arch in ARCHES]
                    + [f"pki-sidecar-{version}-{arch}.cdx.json" for arch in ARCHES]
                    + [f"pki-sidecar-{version}.oci.tar"])
    if files != wanted:
        fail(f"the folder holds {files}, expected {wanted} and SHA256SUMS")
    sums = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    if sorted(sums) != files:
        fail(f"SHA256SUMS lists {sorted(sums)}, the folder holds {files}")
    verify = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=folder,
                            capture_output=True, text=True)
    if verify.returncode != 0:
        fail("sha256sum -c SHA256SUMS: " + "; ".join(
            line for line in (verify.stdout + verify.stderr).splitlines() if not line.endswith(": OK")))

    binaries = image_binaries(folder / f"pki-sidecar-{version}.oci.tar")
    if sorted(binaries) != sorted(oci for oci, _ in ARCHES.values()):
        fail(f"the OCI archive's index has linux/{sorted(binaries)}, expected amd64 and arm64")

    shared = {}
    for arch, (oci_arch, machine) in ARCHES.items():
        path = folder / f"pki-sidecar-{version}-{arch}.tar.gz"
        raw = path.read_bytes()
        if raw[4:8] != b"\0\0\0\0" or raw[3] & 0x08:
            fail(f"{path.name}: the gzip header carries a time or a file name")
        top = f"pki-sidecar-{version}"
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tarball:
            members = tarball.getmembers()
            names = [m.name for m in members]
            if names != sorted(names):
                fail(f"{path.name}: members not in sorted order")
            for member in members:
                if (member.uid, member.gid, member.mtime) != (0, 0, epoch):
                    fail(f"{path.name}: {member.name}: uid {member.uid}, gid {member.gid}, "
                         f"mtime {member.mtime} (expected 0, 0, {epoch})")
            contents = {m.name.removeprefix(top + "/"): tarball.extractfile(m).read()
                        for m in members if m.isfile()}
            dirs = {m.name for m in members if m.isdir()}
            modes = {m.name.removeprefix(top + "/"): m.mode for m in members if m.isfile()}
        pages = sorted(n for n in contents if n.startswith("man/man1/"))
        expected_files = sorted(["pki-sidecar", "LICENSE", "README.md"] + COMPLETIONS + pages)
        if sorted(contents) != expected_files or "man/man1/pki-sidecar.1" not in pages or len(pages) < 2:
            fail(f"{path.name}: holds {sorted(contents)}")
        if dirs != {top, f"{top}/man", f"{top}/man/man1", f"{top}/completions"}:
            fail(f"{path.name}: directories {sorted(dirs)}")
        for page in pages:
            if b"\n.TH " not in b"\n" + contents[page]:
                fail(f"{path.name}: {page} is not a roff man page")
        for name in ("LICENSE", "README.md"):
            if contents.get(name) != (REPO / name).read_bytes():
                fail(f"{path.name}: {name} differs from this checkout's")
        for script in COMPLETIONS:
            if b"pki-sidecar" not in contents.get(script, b""):
                fail(f"{path.name}: {script} does not complete pki-sidecar")
        binary = contents.get("pki-sidecar", b"")
        if modes.get("pki-sidecar") != 0o755:
            fail(f"{path.name}: pki-sidecar has mode {oct(modes.get('pki-sidecar', 0))}, not 0755")
        elf_machine, dynamic = elf_facts(binary)
        if elf_machine != machine:
            fail(f"{path.name}: pki-sidecar is not an ELF64 for {arch} (e_machine {elf_machine})")
        if dynamic:
            fail(f"{path.name}: pki-sidecar asks for a dynamic loader (PT_INTERP): not static")
        if binaries.get(oci_arch) != binary:
            fail(f"{path.name}: pki-sidecar is not the linux/{oci_arch} image's /pki-sidecar "
                 f"(sha256 {hashlib.sha256(binary).hexdigest()[:16]}…)")
        shared[arch] = {n: c for n, c in contents.items() if n != "pki-sidecar"}
    if len({json.dumps(sorted((n, hashlib.sha256(c).hexdigest()) for n, c in s.items()))
            for s in shared.values()}) != 1:
        fail("the two tarballs' man pages, completions, LICENSE or README differ")

    return failures


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        raise SystemExit("usage: check-release.py target/release-VERSION | --self-test")
    folder = pathlib.Path(sys.argv[1])
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH")
                or subprocess.run(["git", "log", "-1", "--format=%ct", "HEAD"], cwd=REPO,
                                  check=True, capture_output=True, text=True).stdout)
    failures = check_folder(folder, epoch)
    if failures:
        print(f"check-release: {folder}: FAILED", file=sys.stderr)
        for failure in failures:
            print("  " + failure, file=sys.stderr)
        return 1
    print(f"check-release: {folder}: SHA256SUMS verified; both tarballs hold the image's binaries, "
          "their man pages, 3 completions, LICENSE, README.md; reproducible headers")
    return 0


# --- self-test: a synthetic release folder, then doctored copies of it ---

def synthetic_elf(machine):
    """A static little-endian ELF64 executable header for MACHINE (no PT_INTERP)."""
    header = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
              + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0))
    return header + struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, 0, 0, 0x1000)


def write_release(folder, epoch, binaries, tweak=None):
    """A release folder like release.sh's; TWEAK(arch, files, infos) may doctor a tarball."""
    version = folder.name.removeprefix("release-")
    folder.mkdir(parents=True)
    blobs, manifests = {}, []

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": "sha256:" + digest, "size": len(data)}

    for arch, (oci_arch, _) in ARCHES.items():
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as files:
            info = tarfile.TarInfo("pki-sidecar")
            info.size, info.mode = len(binaries[arch]), 0o755
            files.addfile(info, io.BytesIO(binaries[arch]))
        config = blob(json.dumps({"os": "linux", "architecture": oci_arch}).encode())
        manifest = blob(json.dumps({"schemaVersion": 2, "config": config,
                                    "layers": [blob(gzip.compress(layer.getvalue()))]}).encode())
        manifests.append(dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json"))
    image_index = blob(json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
    image_index["mediaType"] = "application/vnd.oci.image.index.v1+json"
    with tarfile.open(folder / f"pki-sidecar-{version}.oci.tar", "w") as archive:
        def put(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        put("index.json", json.dumps({"schemaVersion": 2, "manifests": [image_index]}).encode())
        for digest, data in blobs.items():
            put(f"blobs/sha256/{digest}", data)

    top = f"pki-sidecar-{version}"
    for arch in ARCHES:
        files = {"LICENSE": (REPO / "LICENSE").read_bytes(),
                 "README.md": (REPO / "README.md").read_bytes(),
                 "man/man1/pki-sidecar.1": b".TH PKI-SIDECAR 1\n",
                 "man/man1/pki-sidecar-agent.1": b".TH PKI-SIDECAR-AGENT 1\n",
                 "pki-sidecar": binaries[arch]}
        files.update({name: b"# completes pki-sidecar\n" for name in COMPLETIONS})
        infos = {name: {"uid": 0, "gid": 0, "mtime": epoch,
                        "mode": 0o755 if name == "pki-sidecar" else 0o644} for name in files}
        if tweak:
            tweak(arch, files, infos)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tarball:
            entries = [(f"{top}/{d}", None) for d in ("", "completions", "man", "man/man1")]
            entries += [(f"{top}/{name}", name) for name in files]
            for path, name in sorted(entries, key=lambda e: e[0].rstrip("/")):
                info = tarfile.TarInfo(path.rstrip("/"))
                if name is None:
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
                    tarball.addfile(info)
                    continue
                info.size = len(files[name])
                for key, value in infos[name].items():
                    setattr(info, key, value)
                tarball.addfile(info, io.BytesIO(files[name]))
        (folder / f"{top}-{arch}.tar.gz").write_bytes(gzip.compress(raw.getvalue(), mtime=0))
        (folder / f"{top}-{arch}.cdx.json").write_text("{}")
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                   for p in sorted(folder.iterdir()))
    (folder / "SHA256SUMS").write_text(sums)


def self_test():
    import tempfile
    epoch = 1_700_000_000
    binaries = {arch: synthetic_elf(machine) for arch, (_, machine) in ARCHES.items()}

    def other_binary(arch, files, infos):
        if arch == "aarch64":
            files["pki-sidecar"] = synthetic_elf(183) + b"not the image's"

    def no_completion(arch, files, infos):
        del files[COMPLETIONS[0]]
        del infos[COMPLETIONS[0]]

    def owned_by_a_user(arch, files, infos):
        infos["README.md"]["uid"] = 1000

    # The image's binaries themselves dynamic: the tarballs hold them as they are.
    dynamic = {arch: elf[:64] + struct.pack("<I", 3) + elf[68:] for arch, elf in binaries.items()}

    cases = [("as release.sh makes it", binaries, None, None, True),
             ("a tarball whose binary is not the image's", binaries, other_binary, None, False),
             ("a tarball without a completion script", binaries, no_completion, None, False),
             ("a file owned by uid 1000", binaries, owned_by_a_user, None, False),
             ("a binary with an ELF interpreter", dynamic, None, None, False),
             ("a file changed after SHA256SUMS", binaries, None, "corrupt", False),
             ("a file SHA256SUMS does not list", binaries, None, "unlisted", False)]
    wrong = []
    with tempfile.TemporaryDirectory() as scratch:
        for number, (label, image, tweak, after, should_pass) in enumerate(cases):
            folder = pathlib.Path(scratch) / str(number) / "release-9.9.9"
            write_release(folder, epoch, image, tweak)
            if after == "corrupt":
                with open(folder / "pki-sidecar-9.9.9-x86_64.cdx.json", "a") as sbom:
                    sbom.write(" ")
            elif after == "unlisted":
                (folder / "notes.txt").write_text("extra\n")
            failures = check_folder(folder, epoch)
            ok = (not failures) == should_pass
            print(f"self-test: {label}: {'passes' if not failures else 'fails'} "
                  f"({'as it must' if ok else 'WRONG'})" + (f": {failures[0]}" if failures else ""))
            if not ok:
                wrong.append(label)
    if wrong:
        print("self-test: FAILED: " + ", ".join(wrong), file=sys.stderr)
        return 1
    print("self-test: every check fails on its doctored release")
    return 0


if __name__ == "__main__":
    sys.exit(main())
