#!/usr/bin/env python3
"""Checks what a release says is inside the binary against what Cargo.lock says is.

The expected set is computed here, independently of the tools that write the SBOM and the
embedded metadata: `cargo metadata --filter-platform TARGET` (Cargo.lock's resolution for that
target), walked from the `pki-sidecar` package along normal and build dependency edges only.
Dev-dependencies (the tests') are never followed. Build dependencies are in: their code runs
while the binary is built (build scripts, the C compiler driver of aws-lc-sys), and both
`cargo cyclonedx` and `cargo auditable` record them; the SBOM, the embedded metadata and this
check all count them.

    check-sbom.py sbom FILE --target TRIPLE
        FILE is a CycloneDX JSON SBOM (`cargo cyclonedx`). It must validate against the JSON
        schema of the spec version it declares (cyclonedx-python-lib ships the schemas), its
        root component must be pki-sidecar at Cargo.toml's version, and its components must be
        exactly the expected crates: name, version and purl (pkg:cargo/NAME@VERSION), and
        where a component gives a SHA-256 digest, Cargo.lock's checksum of that crate.
    check-sbom.py binary FILE --target TRIPLE
        FILE is an ELF binary built with `cargo auditable`. Its `.dep-v0` section (zlib-
        compressed JSON, read here with Python's own ELF parsing, for any architecture) must
        list pki-sidecar at Cargo.toml's version as its root and exactly the expected crates
        (name and version).
    check-sbom.py license
        Cargo.toml's licence is Apache-2.0 and LICENSE is the Apache License 2.0's text.
    check-sbom.py --self-test
        Proves that each check above fails on a doctored input: a component removed, one
        added, a version changed, a digest changed; an SBOM that breaks its schema; a binary
        without the section; in a synthetic SBOM and a synthetic ELF built from the
        expected set, which must themselves pass.

A difference prints the extra and the missing crates and exits 1.
"""

import argparse
import copy
import hashlib
import json
import pathlib
import struct
import subprocess
import sys
import tempfile
import tomllib
import zlib

REPO = pathlib.Path(__file__).resolve().parent.parent
ROOT_PACKAGE = "pki-sidecar"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
# The Apache License 2.0 as Debian ships it (/usr/share/common-licenses/Apache-2.0, base-files),
# which is the text of https://www.apache.org/licenses/LICENSE-2.0.txt.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


class CheckFailed(Exception):
    """A check found a difference; the message says which."""


def cargo_version():
    with open(REPO / "Cargo.toml", "rb") as manifest:
        return tomllib.load(manifest)["package"]["version"]


def expected_crates(target):
    """{(name, version): {"source", "checksum"}} for the binary on TARGET."""
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", target,
             "--manifest-path", str(REPO / "Cargo.toml")],
            check=True, capture_output=True, text=True,
        ).stdout
    )
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    roots = [pid for pid, package in packages.items()
             if package["name"] == ROOT_PACKAGE and package["source"] is None]
    if len(roots) != 1:
        raise CheckFailed(f"cargo metadata: {len(roots)} local packages named {ROOT_PACKAGE}")
    root = roots[0]

    seen, stack = {root}, [root]
    while stack:
        for dep in nodes[stack.pop()]["deps"]:
            if (any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"])
                    and dep["pkg"] not in seen):
                seen.add(dep["pkg"])
                stack.append(dep["pkg"])
    with open(REPO / "Cargo.lock", "rb") as lock:
        checksums = {(p["name"], p["version"]): p.get("checksum")
                     for p in tomllib.load(lock)["package"]}
    crates = {}
    for pid in seen - {root}:
        package = packages[pid]
        key = (package["name"], package["version"])
        crates[key] = {"source": package["source"], "checksum": checksums.get(key)}
    return crates


def expected_purl(name, version, source):
    purl = f"pkg:cargo/{name}@{version}"
    return purl if source == CRATES_IO else None  # other sources carry qualifiers


def report_difference(what, expected, actual):
    """Raises with the extra and missing entries when the two sets differ."""
    extra, missing = sorted(actual - expected), sorted(expected - actual)
    if not extra and not missing:
        return
    lines = [f"{what}: {len(extra)} extra, {len(missing)} missing (against Cargo.lock)"]
    lines += [f"  extra:   {name} {version}" for name, version in extra]
    lines += [f"  missing: {name} {version}" for name, version in missing]
    raise CheckFailed("\n".join(lines))


# --- the SBOM ---

def validate_schema(document):
    """Validates against the schema of the spec version the document declares."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    if document.get("bomFormat") != "CycloneDX":
        raise CheckFailed(f"bomFormat is {document.get('bomFormat')!r}, not 'CycloneDX'")
    declared = document.get("specVersion")
    try:
        version = SchemaVersion.from_version(declared)
    except (ValueError, TypeError):
        raise CheckFailed(f"specVersion {declared!r} is not a CycloneDX version") from None
    errors = JsonStrictValidator(version).validate_str(json.dumps(document), all_errors=True)
    if errors:
        messages = [str(getattr(error, "data", error)) for error in errors]
        raise CheckFailed(f"not valid CycloneDX {declared}:\n  " + "\n  ".join(messages[:20]))
    return declared


def check_sbom(document, expected, version):
    spec = validate_schema(document)
    root = document.get("metadata", {}).get("component", {})
    if (root.get("name"), root.get("version")) != (ROOT_PACKAGE, version):
        raise CheckFailed(f"metadata.component is {root.get('name')} {root.get('version')}, "
                          f"not {ROOT_PACKAGE} {version}")
    components = document.get("components", [])
    actual = {(c.get("name"), c.get("version")) for c in components}
    if len(actual) != len(components):
        raise CheckFailed("components: a crate is listed twice")
    report_difference("SBOM components", set(expected), actual)
    wrong_purl = []
    for component in components:
        key = (component["name"], component["version"])
        want = expected_purl(*key, expected[key]["source"])
        purl = component.get("purl", "")
        if want is None:
            want = f"pkg:cargo/{key[0]}@{key[1]}?"
            ok = purl.startswith(want)
        else:
            ok = purl == want
        if not ok:
            wrong_purl.append(f"  {key[0]} {key[1]}: purl {purl!r}, expected {want!r}")
        # The crate archive's digest, where the SBOM gives one, is Cargo.lock's checksum.
        digests = {h.get("content") for h in component.get("hashes", []) if h.get("alg") == "SHA-256"}
        if digests and digests != {expected[key]["checksum"]}:
            wrong_purl.append(f"  {key[0]} {key[1]}: SHA-256 {sorted(digests)}, Cargo.lock has "
                              f"{expected[key]['checksum']}")
    if wrong_purl:
        raise CheckFailed("SBOM purls and hashes:\n" + "\n".join(wrong_purl))
    return f"CycloneDX {spec}, {len(components)} components = Cargo.lock's"


# --- the metadata cargo auditable embeds ---

def elf_section(data, wanted):
    """The bytes of the section named WANTED of an ELF file, any class, endianness, machine."""
    if data[:4] != b"\x7fELF":
        raise CheckFailed("not an ELF file")
    elf_class, byte_order = data[4], data[5]
    if elf_class not in (1, 2) or byte_order not in (1, 2):
        raise CheckFailed(f"ELF class {elf_class} / data encoding {byte_order} unknown")
    endian = "<" if byte_order == 1 else ">"
    if elf_class == 2:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        header = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
        header = endian + "IIIIIIIIII"
    sections = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
    # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
    names = sections[shstrndx]
    names = data[names[4]:names[4] + names[5]]
    for section in sections:
        name = names[section[0]:names.index(b"\0", section[0])].decode()
        if name == wanted:
            return data[section[4]:section[4] + section[5]]
    raise CheckFailed(f"no {wanted} section: not built with `cargo auditable`")


def check_binary(data, expected, version):
    try:
        audit = json.loads(zlib.decompress(elf_section(data, ".dep-v0")))
    except (zlib.error, json.JSONDecodeError) as error:
        raise CheckFailed(f".dep-v0 is not zlib-compressed JSON: {error}") from None
    packages = audit.get("packages", [])
    roots = [p for p in packages if p.get("root")]
    if [(p["name"], p["version"]) for p in roots] != [(ROOT_PACKAGE, version)]:
        raise CheckFailed("embedded root is " + ", ".join(f"{p['name']} {p['version']}" for p in roots)
                          + f", not {ROOT_PACKAGE} {version}")
    crates = [p for p in packages if not p.get("root")]
    actual = {(p["name"], p["version"]) for p in crates}
    report_difference("embedded metadata (.dep-v0)", set(expected), actual)
    # The kinds are reported, not compared: cargo auditable 0.7.7 calls a proc-macro `build`
    # only when its package has no other target (so async-trait, with its tests, is `runtime`).
    runtime = sum(1 for p in crates if p.get("kind", "runtime") == "runtime")
    return f".dep-v0: {len(crates)} crates ({runtime} runtime, {len(crates) - runtime} build) = Cargo.lock's"


# --- LICENSE ---

def check_license():
    with open(REPO / "Cargo.toml", "rb") as manifest:
        declared = tomllib.load(manifest)["package"].get("license")
    if declared != "Apache-2.0":
        raise CheckFailed(f"Cargo.toml: license = {declared!r}, LICENSE holds Apache-2.0")
    text = (REPO / "LICENSE").read_bytes()
    if hashlib.sha256(text).hexdigest() != APACHE_2_0_SHA256:
        raise CheckFailed("LICENSE is not the Apache License 2.0's text "
                          "(/usr/share/common-licenses/Apache-2.0, sha256 " + APACHE_2_0_SHA256 + ")")
    return "Cargo.toml says Apache-2.0 and LICENSE is its text"


# --- self-test ---

def synthetic_sbom(expected, version):
    """A minimal valid CycloneDX 1.5 SBOM listing the expected crates."""
    def component(name, crate_version, source):
        purl = expected_purl(name, crate_version, source) or f"pkg:cargo/{name}@{crate_version}?x=y"
        entry = {"type": "library", "bom-ref": f"{name}@{crate_version}", "name": name,
                 "version": crate_version, "purl": purl}
        checksum = expected[(name, crate_version)]["checksum"]
        if checksum:
            entry["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        return entry
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {"component": {"type": "application", "bom-ref": ROOT_PACKAGE,
                                   "name": ROOT_PACKAGE, "version": version}},
        "components": [component(n, v, info["source"]) for (n, v), info in sorted(expected.items())],
    }


def synthetic_elf(audit):
    """A little-endian ELF64 file with two sections: `.dep-v0` holding AUDIT and `.shstrtab`."""
    payload = zlib.compress(json.dumps(audit).encode())
    names = b"\0.dep-v0\0.shstrtab\0"
    payload_at = 64
    names_at = payload_at + len(payload)
    shoff = names_at + len(names)
    header = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
              + struct.pack("<HHIQQQIHHHHHH", 2, 0xB7, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2))
    section = lambda name, sh_type, offset, size: struct.pack(
        "<IIQQQQIIQQ", name, sh_type, 0, 0, offset, size, 0, 0, 1, 0)
    return (header + payload + names + section(0, 0, 0, 0)
            + section(1, 1, payload_at, len(payload)) + section(9, 3, names_at, len(names)))


def synthetic_audit(expected, version):
    packages = [{"name": ROOT_PACKAGE, "version": version, "source": "local", "root": True}]
    for name, crate_version in sorted(expected):
        packages.append({"name": name, "version": crate_version, "source": "crates.io"})
    return {"packages": packages}


def doctored(items, key):
    """(label, doctored copy) for a removed item, an added one and a changed version."""
    removed = copy.deepcopy(items)
    del removed[key][len(removed[key]) // 2]
    added = copy.deepcopy(items)
    added[key].append(dict(added[key][-1], name="not-in-cargo-lock", version="1.0.0",
                           purl="pkg:cargo/not-in-cargo-lock@1.0.0",
                           **({"bom-ref": "not-in-cargo-lock@1.0.0"} if "bom-ref" in added[key][-1] else {})))
    bumped = copy.deepcopy(items)
    bumped[key][-1]["version"] += "-doctored"
    if "purl" in bumped[key][-1]:
        bumped[key][-1]["purl"] = bumped[key][-1]["purl"].replace("@", "@9.9.9-", 1)
    return [("a component removed", removed), ("an extra component", added),
            ("a wrong version", bumped)]


def self_test(target):
    expected = expected_crates(target)
    version = cargo_version()
    failures = []

    def must(label, check, should_pass):
        try:
            outcome = check()
            passed = True
        except CheckFailed as error:
            outcome, passed = str(error).splitlines()[0], False
        ok = passed == should_pass
        print(f"self-test: {label}: {'passes' if passed else 'fails'} "
              f"({'as it must' if ok else 'WRONG'}): {outcome}")
        if not ok:
            failures.append(label)

    sbom = synthetic_sbom(expected, version)
    must("SBOM as Cargo.lock says", lambda: check_sbom(sbom, expected, version), True)
    for label, bad in doctored(sbom, "components"):
        must(f"SBOM with {label}", lambda bad=bad: check_sbom(bad, expected, version), False)
    wrong_hash = copy.deepcopy(sbom)
    hashed = next(c for c in wrong_hash["components"] if "hashes" in c)
    hashed["hashes"][0]["content"] = "0" * 64
    must("SBOM with a wrong crate digest", lambda: check_sbom(wrong_hash, expected, version), False)
    invalid = copy.deepcopy(sbom)
    invalid["components"][0]["type"] = "crate"
    must("SBOM not valid against its schema", lambda: check_sbom(invalid, expected, version), False)

    audit = synthetic_audit(expected, version)
    must("embedded metadata as Cargo.lock says",
         lambda: check_binary(synthetic_elf(audit), expected, version), True)
    crates = {"packages": audit["packages"][1:]}
    for label, bad in doctored(crates, "packages"):
        bad_audit = {"packages": audit["packages"][:1] + bad["packages"]}
        must(f"embedded metadata with {label}",
             lambda bad_audit=bad_audit: check_binary(synthetic_elf(bad_audit), expected, version),
             False)
    no_section = synthetic_elf(audit).replace(b".dep-v0", b".dep-v9")
    must("binary without .dep-v0", lambda: check_binary(no_section, expected, version), False)

    must("LICENSE", check_license, True)
    with tempfile.TemporaryDirectory() as scratch:
        global REPO
        real_repo, REPO = REPO, pathlib.Path(scratch)
        try:
            (REPO / "Cargo.toml").write_bytes((real_repo / "Cargo.toml").read_bytes())
            (REPO / "LICENSE").write_bytes((real_repo / "LICENSE").read_bytes().replace(b"2004", b"2005", 1))
            must("LICENSE with one word changed", check_license, False)
        finally:
            REPO = real_repo
    if failures:
        print("self-test: FAILED: " + ", ".join(failures), file=sys.stderr)
        return 1
    print("self-test: every check fails on its doctored input")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("what", nargs="?", choices=["sbom", "binary", "license"])
    parser.add_argument("file", nargs="?", type=pathlib.Path)
    parser.add_argument("--target", default="x86_64-unknown-linux-musl",
                        help="the Rust target the binary is built for (default %(default)s)")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.target)
    subject = "LICENSE" if args.what == "license" else f"{args.file} ({args.target})"
    try:
        if args.what == "license":
            result = check_license()
        elif args.what in ("sbom", "binary") and args.file:
            expected = expected_crates(args.target)
            if args.what == "sbom":
                result = check_sbom(json.loads(args.file.read_text()), expected, cargo_version())
            else:
                result = check_binary(args.file.read_bytes(), expected, cargo_version())
        else:
            parser.error("give `sbom FILE`, `binary FILE`, `license` or --self-test")
    except CheckFailed as error:
        print(f"check-sbom: {subject}: {error}", file=sys.stderr)
        return 1
    print(f"check-sbom: {subject}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
