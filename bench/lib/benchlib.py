#!/usr/bin/env python3
"""Helpers for bench/proxy.sh and bench/agent.sh: the parts that are awkward in bash.

Standard library only (the CI machine has python3 and nothing else is needed). Each subcommand
prints plain text a shell can read (`read -r a b c`) or a markdown report; errors go to stderr
with a non-zero exit so the calling script stops.

  free-ports N                      N distinct free TCP ports on 127.0.0.1
  issue ADDR TOKEN ROLE DIR         issue a certificate from OpenBao's PKI into DIR/tls.{crt,key}
  rotate SRC_DIR DST_DIR            copy a pair into DST_DIR atomically, key first (as the agent)
  tokenreview PORT_FILE             serve a Kubernetes TokenReview stand-in (port written to file)
  jwt NAMESPACE NAME                a ServiceAccount-shaped, unsigned JWT
  idle-conns PORT COUNT CAFILE REL [PROTO]  hold COUNT TLS connections (one request each, ALPN http/1.1 or h2) until REL exists
  keepalive PORT CAFILE CONNS ROUNDS  CONNS keep-alive connections, ROUNDS requests on each
  massif-diff SMALL N1 LARGE N2     heap per connection by allocation site, from two ms_print reports
  callgrind-components SMALL N1 LARGE N2  instructions per handshake by component, from two callgrind runs
  callgrind-top SMALL N1 LARGE N2 K the K functions costing most per operation, from two callgrind runs
  perf-top REPORT US COUNT          where CPU time goes, from `perf report --sort dso,sym`; US: CPU µs per operation
  perf-components REPORT US UNIT    the same samples by component (callgrind-components' and the kernel)
  established PORT                  how many connections to local PORT are established
  procstat PID                      "rss_kib threads cpu_seconds pids sched_seconds system_seconds anon_kib" of PID and descendants
  ctxt PID                          voluntary context switches so far of PID's and its descendants' threads
  wrk FILE / h2load FILE            parse a load generator's output into one line of numbers
  first-cert DIR TIMEOUT CMD...     run CMD until DIR/tls.crt and DIR/tls.key exist; print seconds
  renewals CERT N TIMEOUT PID AUDIT wait for N changes of CERT; print the agent's stats at the end
  audit-count AUDIT FROM TO CLIENT  Vault requests by path in the audit log between byte offsets
  audit-timeline AUDIT FROM TO CLIENT WALL_START  a first-cert run's time to Vault and in Vault
  report RESULTS_TSV SPEC           markdown tables of medians and ratios
  overhead RESULTS_TSV TABLE METRIC OURS BASE GOAL_MS  median difference in ms, against a goal
  alternate CLIENT CAFILE GROUP SLICE SLICES NAME=PORT:PID...  full handshakes, SLICE at a time
                                    to each server in turn, SLICES times; server CPU per handshake
"""

import base64
import calendar
import ctypes
import ctypes.util
import hashlib
import http.server
import json
import os
import re
import resource
import select
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request


def die(message):
    print(f"benchlib: {message}", file=sys.stderr)
    sys.exit(1)


# --- ports, certificates ------------------------------------------------------------------------


def free_ports(count):
    """Binds COUNT sockets at once so the ports differ, then releases them for the caller."""
    sockets = []
    for _ in range(int(count)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for s in sockets:
        s.close()


def vault(addr, token, method, path, body=None):
    request = urllib.request.Request(
        f"{addr}/v1/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else {}


def write_atomic(path, data, mode):
    """Temporary file in the same directory, fsync, rename: what the agent does."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def issue(addr, token, role, directory):
    """One certificate for foo.home and localhost; tls.crt holds the leaf then the issuing CA,
    as the seed's template writes it, so both servers send the same chain."""
    data = vault(addr, token, "POST", role,
                 {"common_name": "foo.home", "alt_names": "localhost", "ttl": "24h"})["data"]
    os.makedirs(directory, exist_ok=True)
    write_atomic(os.path.join(directory, "tls.key"), data["private_key"].encode() + b"\n", 0o600)
    write_atomic(os.path.join(directory, "tls.crt"),
                 (data["certificate"] + "\n" + data["issuing_ca"] + "\n").encode(), 0o644)
    print(data["serial_number"])


def rotate(src, dst):
    """Key first, then certificate: a reader that sees the new certificate finds its key."""
    for name, mode in (("tls.key", 0o600), ("tls.crt", 0o644)):
        with open(os.path.join(src, name), "rb") as f:
            write_atomic(os.path.join(dst, name), f.read(), mode)


# --- the Kubernetes stand-ins ---------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(namespace, name):
    """The claims OpenBao's Kubernetes auth reads from a legacy ServiceAccount token; the
    signature is never checked (the TokenReview stand-in believes it)."""
    claims = {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": f"uid-{namespace}-{name}",
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token",
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    header = {"alg": "RS256", "kid": "bench"}
    print(".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                    b64url(b"not a real signature")]))


class TokenReview(http.server.BaseHTTPRequestHandler):
    """POST /apis/authentication.k8s.io/v1/tokenreviews: authenticated as the JWT's account."""

    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        spec = review.get("spec", {})
        try:
            payload = spec["token"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            ns = claims["kubernetes.io/serviceaccount/namespace"]
            sa = claims["kubernetes.io/serviceaccount/service-account.name"]
            status = {"authenticated": True, "user": {
                "username": f"system:serviceaccount:{ns}:{sa}",
                "uid": claims.get("kubernetes.io/serviceaccount/service-account.uid", ""),
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                           "system:authenticated"]}}
        except (KeyError, IndexError, ValueError):
            status = {"authenticated": False, "user": {}, "error": "not a ServiceAccount JWT"}
        body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "metadata": {}, "spec": spec, "status": status}).encode()
        self.send_response(201)  # what the API server answers to a create
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: the bench prints tables, not access logs
        pass


def tokenreview(port_file):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenReview)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


# --- idle TLS connections -------------------------------------------------------------------------


def idle_conns(port, count, cafile, release_file, protocol="http/1.1"):
    """Opens COUNT TLS connections (full handshake, SNI foo.home, verified against CAFILE, ALPN
    PROTOCOL: http/1.1 or h2), makes one request on each and reads its answer, so every connection
    has been through the whole path once; prints `ready N` and holds them until RELEASE_FILE exists
    (60 s at most), then makes one more request on each and prints `alive N`."""
    count = int(count)
    if protocol not in ("http/1.1", "h2"):
        die(f"idle-conns: protocol {protocol!r} is neither http/1.1 nor h2")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols([protocol])
    held, pending = [], {}
    for _ in range(count):
        conn = context.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10),
                                   server_hostname="foo.home")
        if conn.selected_alpn_protocol() != protocol:
            die(f"idle-conns: the server chose ALPN {conn.selected_alpn_protocol()!r}, not {protocol}")
        if protocol == "h2":
            conn.sendall(H2_PREFACE + h2_frame(4, 0, 0, b""))
            answer, pending[conn] = h2_get(conn, 1)
        else:
            answer = h1_get(conn)
        if b"hello world" not in answer:
            die(f"idle-conns: unexpected answer {answer[:200]!r}")
        held.append(conn)
    print(f"ready {len(held)}", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Check they were all still open: a server that dropped idle connections must not look lean.
    alive = 0
    for conn in held:
        try:
            answer = h2_get(conn, 3, pending[conn])[0] if protocol == "h2" else h1_get(conn)
            if b"hello world" in answer:
                alive += 1
        except (OSError, SystemExit):
            pass
    print(f"alive {alive}", flush=True)


def h1_get(conn):
    """GET / on an HTTP/1.1 keep-alive connection; the answer, read until the app's body."""
    conn.sendall(b"GET / HTTP/1.1\r\nHost: foo.home\r\n\r\n")
    answer = b""
    while b"hello world" not in answer:
        chunk = conn.recv(4096)
        if not chunk:
            raise OSError(f"connection closed before the answer: {answer[:200]!r}")
        answer += chunk
    return answer


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload):
    """One HTTP/2 frame (RFC 9113 section 4.1)."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_get(conn, stream, pending=b""):
    """GET https://foo.home/ as HTTP/2 stream STREAM (HPACK: static-table entries and one literal,
    no Huffman); acknowledges the server's SETTINGS and PINGs; returns the response's DATA and the
    bytes read past it (PENDING: those of the previous call)."""
    authority = b"foo.home"
    block = b"\x82\x87\x84\x01" + bytes([len(authority)]) + authority
    conn.sendall(h2_frame(1, 0x5, stream, block))  # HEADERS, END_STREAM | END_HEADERS
    data = b""
    while True:
        while len(pending) < 9 or len(pending) < 9 + int.from_bytes(pending[:3], "big"):
            chunk = conn.recv(16384)
            if not chunk:
                raise OSError("connection closed before the answer")
            pending += chunk
        length = int.from_bytes(pending[:3], "big")
        kind, flags = pending[3], pending[4]
        on = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
        payload, pending = pending[9:9 + length], pending[9 + length:]
        if kind == 4 and not flags & 0x1:  # SETTINGS: acknowledge
            conn.sendall(h2_frame(4, 0x1, 0, b""))
        elif kind == 6 and not flags & 0x1:  # PING: answer
            conn.sendall(h2_frame(6, 0x1, 0, payload))
        elif kind == 7:  # GOAWAY
            raise OSError("GOAWAY from the server")
        elif on == stream and kind == 3:  # RST_STREAM
            raise OSError("the server reset the stream")
        elif on == stream and kind == 0:
            data += payload[1 + payload[0]:-payload[0] or None] if flags & 0x8 else payload
        if on == stream and kind in (0, 1) and flags & 0x1:
            return data, pending


def keepalive(port, cafile, conns, rounds):
    """CONNS keep-alive TLS connections (SNI foo.home, verified), then ROUNDS rounds of one
    request on each, each answer read in full before the next round: a fixed, repeatable amount
    of work for instruction and syscall counts. Prints `requests N`."""
    conns, rounds = int(conns), int(rounds)
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    request = b"GET / HTTP/1.1\r\nHost: foo.home\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
    held = [context.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=30),
                                server_hostname="foo.home") for _ in range(conns)]
    for _ in range(rounds):
        for conn in held:
            conn.sendall(request)
        for conn in held:
            answer = b""
            while not (b"\r\n\r\n" in answer and answer.endswith(b"hello world\n")):
                chunk = conn.recv(65536)
                if not chunk:
                    die(f"connection closed before the answer: {answer[:200]!r}")
                answer += chunk
    for conn in held:
        conn.close()
    print(f"requests {conns * rounds}", flush=True)


# Allocation frames that say nothing about who allocates: their caller names the site.
GENERIC_FRAMES = ("finish_grow", "do_reserve_and_handle", "reserve_inner", "fallible_with_capacity",
                  "alloc::", "RawVec", "Vec<T,A>", "BytesMut::reserve")


def massif_sites(ms_print_file):
    """{site: bytes} at the peak snapshot of an ms_print report: each top-level entry, named by
    its first frame that is not a generic allocation helper."""
    lines = open(ms_print_file).read().splitlines()
    peak = None
    for line in lines:
        m = re.search(r"(\d+) \(peak\)", line)
        if m:
            peak = m.group(1)
    if peak is None:
        die(f"no peak snapshot in {ms_print_file}")
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf"^\s*{peak}\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s+[\d,]+\s*$", line))
    sites, current, depth_wanted = {}, None, None
    frame = re.compile(r"^([| ]*)->[\d.]+% \(([\d,]+)B\) (?:0x[0-9A-F]+: )?(.*?)(?: \(in .*\))?$")
    for line in lines[start + 1:]:
        if re.match(r"^\s*\d+\s+[\d,]+\s+[\d,]+", line) or line.startswith("----"):
            break
        m = frame.match(line)
        if not m:
            continue
        depth, size, name = len(m.group(1)) // 2, int(m.group(2).replace(",", "")), m.group(3)
        if depth == 0:
            current = (size, name)
            if "places, all below" in name:
                sites["(many small sites)"] = sites.get("(many small sites)", 0) + size
                current = None
            elif not any(g in name for g in GENERIC_FRAMES):
                sites[name] = sites.get(name, 0) + size
                current = None
            continue
        if current is not None and not any(g in name for g in GENERIC_FRAMES):
            size0, _ = current
            sites[name] = sites.get(name, 0) + size0
            current = None
    return sites


def massif_diff(small_file, small_n, large_file, large_n):
    """Heap per connection by site: (bytes with LARGE_N connections - with SMALL_N) / the
    difference, from two ms_print reports; prints markdown rows, largest first, and the total."""
    small, large = massif_sites(small_file), massif_sites(large_file)
    extra = int(large_n) - int(small_n)
    rows = sorted(((large.get(k, 0) - small.get(k, 0)) / extra, k) for k in set(small) | set(large))
    total = 0.0
    for per_conn, site in reversed(rows):
        total += per_conn
        if per_conn >= 64:
            name = site if len(site) <= 110 else site[:107] + "..."
            print(f"| {per_conn:,.0f} | `{name}` |")
    print(f"| **{total:,.0f}** | all sites |")


# Components of a full handshake, by the function a cost is counted in (callgrind's exclusive
# cost): the first pattern that matches a function's name wins. aws-lc's symbols carry a version
# prefix (`aws_lc_0_NN_0_...`); its assembly has names of its own (`ecp_nistz256_*`, `rsaz_*`).
HANDSHAKE_COMPONENTS = [
    ("key exchange: X25519, ML-KEM-768 (and its SHA-3)",
     r"x25519|25519|fiat_|\bfe_|\bge_|mlkem|kyber|keccak|sha3|shake"),
    ("signature: ECDSA P-256 or RSA (bignum, P-256 field arithmetic)",
     r"ecdsa|nistz256|p256|nistp|ec_gfp|ec_scalar|ec_point|ec_simple|ec_felem|ec_wnaf|ec_compute|"
     r"ec_random|bn_|bignum|rsaz|\brsa|_rsa|mont|ecp_|_ec_|ec_get|ec_key|pkey|evp_pkey|digestsign"),
    ("hashes, HKDF, HMAC, AEAD (transcript, key schedule, records, tickets)",
     r"sha256|sha384|sha512|sha1_|hmac|hkdf|aes|gcm|ghash|chacha|poly1305|gfmul|clmul|digest"),
    ("random numbers", r"rand|drbg|getrandom|rdrand|jitter|entropy"),
    # glibc's malloc, and jemalloc's (the shipped allocator: its private functions are
    # `_rjem_je_*`, its own entry points sdallocx, mallocx, rallocx).
    ("malloc, free, realloc", r"\bmalloc|\bfree\b|realloc|calloc|_int_malloc|_int_free|"
     r"malloc_consolidate|tcache|unlink_chunk|cfree|_rjem_|sdallocx|mallocx|rallocx|"
     r"\barena_|\bextent_|\bemap_|\bedata_"),
    ("memcpy, memmove, memset", r"memcpy|memmove|memset|memcmp|bcmp"),
    ("rustls: the protocol (messages, codecs, state machine)", r"rustls"),
    ("tokio, mio: accept, task, readiness, timers", r"tokio|mio::"),
    ("hyper, http: the request and its forwarding", r"hyper|http::|httparse|h2::|forward"),
    ("pki-sidecar: connection handling, metrics", r"pki_sidecar|prometheus"),
    ("tracing", r"tracing"),
]


def callgrind_functions(path):
    """{function: exclusive instructions} from a callgrind output file (callgrind_annotate)."""
    run = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                         capture_output=True, text=True, check=True)
    costs = {}
    for line in run.stdout.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if not match or "PROGRAM TOTALS" in line or "file:function" in line:
            continue
        name = match.group(2)
        costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def callgrind_components(small_file, small_n, large_file, large_n):
    """Instructions per handshake by component: (cost with LARGE_N handshakes - with SMALL_N) /
    the difference, each function's exclusive cost filed under the first HANDSHAKE_COMPONENTS
    pattern its name matches (ignoring case). Prints markdown rows and the total."""
    small, large = callgrind_functions(small_file), callgrind_functions(large_file)
    extra = int(large_n) - int(small_n)
    sums = {label: 0.0 for label, _ in HANDSHAKE_COMPONENTS}
    sums["other (libc, the kernel interface, std)"] = 0.0
    tops = {}
    for name in set(small) | set(large):
        per = (large.get(name, 0) - small.get(name, 0)) / extra
        label = next((label for label, pattern in HANDSHAKE_COMPONENTS
                      if re.search(pattern, name, re.IGNORECASE)),
                     "other (libc, the kernel interface, std)")
        sums[label] += per
        tops.setdefault(label, []).append((per, name))
    total = sum(sums.values())
    for label, per in sums.items():
        top = max(tops.get(label, [(0, "")]))
        where = top[1].split(":", 1)[-1].split(" [", 1)[0][:70] if top[0] > 0 else ""
        print(f"| {label} | {per:,.0f} | {100 * per / total:.1f} % | `{where}` |")
    print(f"| **all** | **{total:,.0f}** | 100 % | |")


def callgrind_top(small_file, small_n, large_file, large_n, count):
    """The COUNT functions with the most exclusive instructions per operation ((cost with
    LARGE_N operations - with SMALL_N) / the difference), as markdown rows, with each one's
    share of the total."""
    small, large = callgrind_functions(small_file), callgrind_functions(large_file)
    extra = int(large_n) - int(small_n)
    per = sorted(((large.get(name, 0) - small.get(name, 0)) / extra, name)
                 for name in set(small) | set(large))
    total = sum(cost for cost, _ in per)
    for cost, name in reversed(per[-int(count):]):
        where = name.split(":", 1)[-1].split(" [", 1)[0][:110]
        print(f"| {cost:,.0f} | {100 * cost / total:.1f} % | `{where}` |")
    print(f"| **{total:,.0f}** | 100 % | all functions |")


def perf_rows(report):
    """`(share %, dso, symbol, kernel?)` of each line of `perf report --stdio --no-children -g
    none --sort dso,sym`'s text."""
    rows = []
    with open(report, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[0].endswith("%") and parts[2] in ("[k]", "[.]"):
                rows.append((float(parts[0][:-1]), parts[1], parts[3].strip(), parts[2] == "[k]"))
    if not rows:
        die(f"{report}: no samples")
    return rows


def perf_components(report, us_per_op, unit):
    """The samples of a perf report (as perf_top reads it) filed as callgrind_components files
    instructions (the kernel a component of its own), as markdown rows: share and CPU µs per
    UNIT."""
    us_per_op = float(us_per_op)
    other = "other (libc, the kernel interface, std)"
    sums = {"the kernel (TCP, epoll, scheduling, wake-ups)": 0.0}
    sums.update({label: 0.0 for label, _ in HANDSHAKE_COMPONENTS})
    sums[other] = 0.0
    for share, _, name, kernel in perf_rows(report):
        if kernel:
            label = "the kernel (TCP, epoll, scheduling, wake-ups)"
        else:
            label = next((label for label, pattern in HANDSHAKE_COMPONENTS
                          if re.search(pattern, name, re.IGNORECASE)), other)
        sums[label] += share
    total = sum(sums.values())
    print(f"| component | share | CPU µs per {unit} |")
    print("| --- | ---: | ---: |")
    for label, share in sums.items():
        print(f"| {label} | {100 * share / total:.1f} % | {share / total * us_per_op:.1f} |")
    print(f"| **all** | 100 % | **{us_per_op:.1f}** |")


def perf_top(report, us_per_op, count):
    """Where a server's CPU time goes, from the text of `perf report --stdio --no-children
    -g none --sort dso,sym` (sampled on the CPU clock, so it sees what instruction counts do
    not: the kernel, cache misses, locked instructions, large copies): the share and CPU µs per
    operation of the kernel, the program and each library, then of the COUNT costliest
    functions, as markdown."""
    us_per_op = float(us_per_op)
    rows = [row[:3] for row in perf_rows(report)]
    by_dso = {}
    for share, dso, _ in rows:
        by_dso[dso] = by_dso.get(dso, 0.0) + share
    print("| where | share | CPU µs per request |")
    print("| --- | ---: | ---: |")
    for dso, share in sorted(by_dso.items(), key=lambda item: -item[1]):
        if share >= 0.1:
            print(f"| {dso} | {share:.1f} % | {share * us_per_op / 100:.2f} |")
    print(f"| **all** | 100 % | {us_per_op:.2f} |")
    print()
    print("| share | CPU µs per request | function |")
    print("| ---: | ---: | --- |")
    for share, dso, name in sorted(rows, key=lambda row: -row[0])[: int(count)]:
        where = "kernel" if dso == "[kernel.kallsyms]" else dso
        print(f"| {share:.2f} % | {share * us_per_op / 100:.3f} | `{name[:100]}` ({where}) |")


# --- /proc ----------------------------------------------------------------------------------------


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [int(pid)]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def proc_stats(pid):
    """(RSS KiB, threads, CPU seconds, processes, CPU seconds by schedstat, system CPU seconds,
    anonymous RSS KiB) summed over PID and its descendants (nginx's workers). The CPU seconds are
    utime + stime from /proc/PID/stat, in clock ticks (10 ms), and the system CPU seconds stime
    alone (time in the kernel); schedstat counts nanoseconds but only for the threads alive now.
    The anonymous RSS (`RssAnon`: heap, stacks) is the part of the RSS that is the process's
    own; the rest is mostly the executable's pages, shared with every process running the same
    file and given back to the page cache under pressure."""
    tick = os.sysconf("SC_CLK_TCK")
    rss = threads = ticks = sched_ns = system_ticks = anon = 0
    pids = descendants(pid)
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        rss += int(status.get("VmRSS", "0 kB").split()[0])
        anon += int(status.get("RssAnon", "0 kB").split()[0])
        threads += int(status["Threads"])
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        system_ticks += int(fields[12])
        for task in os.listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{task}/schedstat") as f:
                    sched_ns += int(f.read().split()[0])
            except OSError:
                pass  # a thread that just ended
    return rss, threads, ticks / tick, len(pids), sched_ns / 1e9, system_ticks / tick, anon


def established(port):
    """Prints how many TCP connections on 127.0.0.1 are established with local port PORT."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, state = line.split()[1], line.split()[3]
            if state == "01" and int(local.split(":")[1], 16) == int(port):
                count += 1
    print(count)


def ctxt(pid):
    """Prints the voluntary context switches (a thread blocking: waiting for events, parking)
    of every thread of PID and its descendants so far; involuntary ones depend on what else runs
    on the machine."""
    total = 0
    for process in descendants(pid):
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{process}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[-1])
            except OSError:
                continue
    print(total)


def procstat(pid):
    """Prints `rss_kib threads cpu_seconds processes schedstat_cpu_seconds system_cpu_seconds
    anon_kib`."""
    rss, threads, cpu, count, sched, system, anon = proc_stats(pid)
    print(f"{rss} {threads} {cpu:.2f} {count} {sched:.6f} {system:.2f} {anon}")


# --- load generators' output -----------------------------------------------------------------------

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * UNITS[unit]
    die(f"not a duration: {text}")


def parse_wrk(path):
    """Prints `requests_per_s p50_ms p99_ms failed requests`; failed = socket errors + non-2xx/3xx."""
    rps = p50 = p99 = None
    failed = total = 0
    with open(path) as f:
        for line in f:
            words = line.split()
            if line.startswith("Requests/sec:"):
                rps = float(words[1])
            elif words[:1] == ["50%"]:
                p50 = to_ms(words[1])
            elif words[:1] == ["99%"]:
                p99 = to_ms(words[1])
            elif line.strip().startswith("Socket errors:"):
                failed += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
            elif line.strip().startswith("Non-2xx or 3xx responses:"):
                failed += int(words[-1])
            elif "requests in" in line:
                total = int(words[0])
    if rps is None or total == 0:
        die(f"{path}: no wrk result (see the file)")
    print(f"{rps} {p50 if p50 is not None else 'nan'} {p99 if p99 is not None else 'nan'} "
          f"{failed} {total}")


def parse_h2load(path):
    """Prints `requests_per_s failed protocol succeeded`."""
    rps = None
    failed = succeeded = 0
    protocol = "none"
    with open(path) as f:
        for line in f:
            if line.startswith("finished in"):
                rps = float(line.split(",")[1].split()[0])
            elif line.startswith("requests:"):
                words = line.replace(",", "").split()
                failed = int(words[words.index("failed") - 1]) + int(words[words.index("errored") - 1])
                succeeded = int(words[words.index("succeeded") - 1])
            elif line.startswith("Application protocol:"):
                protocol = line.split()[-1]
    if rps is None:
        die(f"{path}: no h2load result (see the file)")
    print(f"{rps} {failed} {protocol} {succeeded}")


# --- agents ---------------------------------------------------------------------------------------


class DirectoryWatch:
    """Wakes a waiting process when entries appear in a directory, with inotify (through libc,
    standard library only): a harness that polls the files in a loop takes CPU from the agent it
    times on a 2-core machine. The directory may not exist yet (the agent creates it): its parent
    is watched until it does. Events only wake the caller, who checks the files itself."""

    IN_CREATE, IN_MOVED_TO, IN_CLOSE_WRITE = 0x100, 0x80, 0x8

    def __init__(self, directory):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0:
            die(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self.directory, self.watched = directory.rstrip("/"), False
        if not self._add(os.path.dirname(self.directory)):
            die(f"cannot watch {os.path.dirname(self.directory)}: {os.strerror(ctypes.get_errno())}")
        self._watch_directory()

    def _add(self, path):
        mask = self.IN_CREATE | self.IN_MOVED_TO | self.IN_CLOSE_WRITE
        return self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask) >= 0

    def _watch_directory(self):
        if not self.watched and os.path.isdir(self.directory):
            self.watched = self._add(self.directory)

    def wait(self, seconds):
        """Returns after an event in either directory, or after SECONDS."""
        if select.select([self.fd], [], [], seconds)[0]:
            try:
                os.read(self.fd, 65536)
            except BlockingIOError:
                pass
        self._watch_directory()

    def close(self):
        os.close(self.fd)


def first_cert(directory, timeout, *command):
    """Starts COMMAND and waits (inotify, no polling loop) for both files; prints the seconds
    from the start (fork) to both being present and the start's wall-clock time (to line it up
    with the audit log), then stops COMMAND. Both agents write through a temporary file and a
    rename, so a file that exists is complete."""
    crt, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    log = open(os.path.join(os.path.dirname(directory.rstrip("/")), "first-cert.log"), "ab")
    watch = DirectoryWatch(directory)
    start, wall_start = time.monotonic(), time.time()
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        while not (os.path.exists(crt) and os.path.exists(key)):
            if process.poll() is not None:
                die(f"{command[0]} exited ({process.returncode}) before writing {directory}")
            if time.monotonic() - start > float(timeout):
                die(f"{command[0]}: no certificate in {directory} after {timeout} s")
            # Woken by the files' renames; the timeout only bounds how late an exit is seen.
            watch.wait(0.05)
        print(f"{time.monotonic() - start:.4f} {wall_start:.6f}")
    finally:
        watch.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cert_identity(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def renewals(cert, count, timeout, pid, audit_log):
    """Waits until CERT's content has changed COUNT times, polling every 50 ms, then prints
    `rss_kib threads cpu_seconds audit_offset seconds_per_renewal schedstat_cpu_seconds anon_kib`
    for PID at that moment; the seconds run from the first certificate's write (its mtime)."""
    count, deadline = int(count), time.monotonic() + float(timeout)
    first_written, last, seen = os.stat(cert).st_mtime, cert_identity(cert), 0
    while seen < count:
        if time.monotonic() > deadline:
            die(f"{cert}: {seen} renewals of {count} within {timeout} s")
        if not os.path.exists(f"/proc/{pid}"):
            die(f"the agent (pid {pid}) exited")
        time.sleep(0.05)
        current = cert_identity(cert)
        if current is not None and current != last:
            seen, last = seen + 1, current
    rss, threads, cpu, _, sched, _, anon = proc_stats(pid)
    interval = (time.time() - first_written) / count
    print(f"{rss} {threads} {cpu:.2f} {os.path.getsize(audit_log)} {interval:.2f} {sched:.6f} {anon}")


def audit_count(audit_log, start, end, client):
    """Vault requests in the audit log between two byte offsets, by path, for one client: CLIENT
    is a substring of its User-Agent (the dev server audits that header unhashed), or `none` for
    the client that sends no User-Agent. Prints `total path=count,...`."""
    by_path = {}
    with open(audit_log, "rb") as f:
        f.seek(int(start))
        chunk = f.read(int(end) - int(start))
    for line in chunk.splitlines():
        entry = json.loads(line)
        if entry.get("type") != "request":
            continue
        request = entry.get("request", {})
        agents = (request.get("headers") or {}).get("user-agent", [])
        if client == "none" and agents:
            continue
        if client != "none" and not any(client.lower() in a.lower() for a in agents):
            continue
        path = request.get("path", "?")
        by_path[path] = by_path.get(path, 0) + 1
    total = sum(by_path.values())
    detail = ",".join(f"{p}={n}" for p, n in sorted(by_path.items())) or "-"
    print(f"{total} {detail}")


def audit_timeline(audit_log, start, end, client, wall_start):
    """For one first-certificate run: prints `to_first_request_s vault_s` — the seconds from the
    process start (WALL_START, epoch) to its first request reaching Vault, and the seconds Vault
    spent answering its requests (request to response entries, summed)."""
    def epoch(stamp):  # RFC 3339 with nanoseconds, UTC
        whole, _, frac = stamp.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
    with open(audit_log, "rb") as f:
        f.seek(int(start))
        chunk = f.read(int(end) - int(start))
    opened, first, vault_s = {}, None, 0.0
    for line in chunk.splitlines():
        entry = json.loads(line)
        request = entry.get("request", {})
        agents = (request.get("headers") or {}).get("user-agent", [])
        if (client == "none") == bool(agents) or (
                client != "none" and not any(client.lower() in a.lower() for a in agents)):
            continue
        at = epoch(entry["time"])
        if entry.get("type") == "request":
            opened[request["id"]] = at
            first = at if first is None else min(first, at)
        elif request.get("id") in opened:
            vault_s += at - opened.pop(request["id"])
    if first is None:
        die(f"no request by {client} in {audit_log} [{start}, {end})")
    print(f"{first - float(wall_start):.4f} {vault_s:.4f}")


# --- the report -----------------------------------------------------------------------------------


def fmt(value):
    if value is None:
        return "—"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def report(results_tsv, spec_json):
    """RESULTS_TSV lines: `table<TAB>metric<TAB>server<TAB>value`. SPEC: {"servers": [...],
    "ours": name, "reference": name, "tables": [{"id", "title", "metrics": [[id, label], ...],
    "minus": optional server}]}. Prints one markdown table per benchmark: each server's median,
    n, ours / reference, and with "minus" ours − that server's median, in milliseconds."""
    spec = json.loads(spec_json)
    values = {}
    with open(results_tsv) as f:
        for line in f:
            table, metric, server, value = line.rstrip("\n").split("\t")
            values.setdefault((table, metric, server), []).append(float(value))
    for table in spec["tables"]:
        servers = [s for s in spec["servers"]
                   if any((table["id"], m, s) in values for m, _ in table["metrics"])]
        if not servers:
            continue
        print(f"\n### {table['title']}\n")
        ratio = f"{spec['ours']} / {spec['reference']}"
        minus = table.get("minus")
        extra = f" | {spec['ours']} − {minus}, ms" if minus else ""
        print("| metric | " + " | ".join(servers) + f" | {ratio}{extra} |")
        print("| --- |" + " ---: |" * (len(servers) + 1 + bool(minus)))
        for metric, label in table["metrics"]:
            medians = {s: statistics.median(values[(table["id"], metric, s)])
                       for s in servers if (table["id"], metric, s) in values}
            runs = max((len(values.get((table["id"], metric, s), [])) for s in servers), default=0)
            ours, ref = medians.get(spec["ours"]), medians.get(spec["reference"])
            quotient = "—" if ours is None or not ref else f"{ours / ref:.2f}"
            cells = " | ".join(fmt(medians.get(s)) for s in servers)
            if minus:
                base = medians.get(minus)
                quotient += " | " + ("—" if ours is None or base is None
                                     else f"{(ours - base) * 1000:+.1f}")
            print(f"| {label} (n={runs}) | {cells} | {quotient} |")


def overhead(results_tsv, table, metric, ours, base, goal_ms, what=None):
    """Prints ours' median minus base's median for TABLE/METRIC (seconds) in milliseconds, with
    the goal; WHAT names the metric in the line (default: its name)."""
    values = {}
    with open(results_tsv) as f:
        for line in f:
            t, m, server, value = line.rstrip("\n").split("\t")
            if (t, m) == (table, metric):
                values.setdefault(server, []).append(float(value))
    if ours not in values or base not in values:
        die(f"overhead: no {table}/{metric} figures for {ours} and {base}")
    difference = (statistics.median(values[ours]) - statistics.median(values[base])) * 1000
    verdict = "met" if difference <= float(goal_ms) else "missed"
    print(f"Overhead of {ours} over {base} ({what or metric}, median − median, "
          f"n={len(values[ours])}/{len(values[base])}): {difference:.1f} ms; goal ≤ {goal_ms} ms: "
          f"{verdict}.")


def alternate(client, cafile, group, slice_count, slices, *servers):
    """Full handshakes from CLIENT (examples/handshakes.rs, pinned to CPU 1), SLICE to one
    server, then SLICE to the next, SLICES times over (the order reversed every other time),
    so that the machine's drift falls on every server alike. Each server is NAME=PORT:PID,
    PID the process whose threads do the work (nginx: its worker). Prints a markdown table:
    handshakes and µs of server CPU per handshake (its threads' schedstat) for each."""
    parsed = []
    for server in servers:
        name, _, where = server.partition("=")
        port, _, pid = where.partition(":")
        if not (name and port.isdigit() and pid.isdigit()):
            die(f"alternate: {server!r} is not NAME=PORT:PID")
        parsed.append((name, port, int(pid)))
    if not parsed:
        die("alternate: no server given")
    totals = {name: [0.0, 0] for name, _, _ in parsed}
    for turn in range(int(slices)):
        for name, port, pid in parsed if turn % 2 == 0 else parsed[::-1]:
            before = proc_stats(pid)[4]
            done = subprocess.run(
                ["taskset", "-c", "1", client, f"127.0.0.1:{port}", "localhost", cafile, group,
                 str(slice_count)],
                capture_output=True, text=True, check=False)
            after = proc_stats(pid)[4]
            fields = done.stdout.split()
            if done.returncode != 0 or len(fields) < 2:
                die(f"alternate: the handshake client failed against {name}: "
                    f"{done.stdout}{done.stderr}")
            totals[name][0] += after - before
            totals[name][1] += int(fields[0]) - int(fields[1])
    print("| server | handshakes | µs of server CPU per handshake |")
    print("| --- | ---: | ---: |")
    per = {}
    for name, (cpu, count) in totals.items():
        per[name] = cpu / max(count, 1) * 1e6
        print(f"| {name} | {count} | {per[name]:.1f} |")
    if len(parsed) == 2:
        (first, _, _), (second, _, _) = parsed
        print(f"\n{second} − {first}: {per[second] - per[first]:+.1f} µs per handshake "
              f"({per[second] / per[first]:.3f}×).")


COMMANDS = {
    "free-ports": free_ports, "ctxt": ctxt, "callgrind-components": callgrind_components,
    "callgrind-top": callgrind_top, "perf-top": perf_top, "perf-components": perf_components, "issue": issue, "rotate": rotate, "tokenreview": tokenreview,
    "jwt": jwt, "idle-conns": idle_conns, "keepalive": keepalive, "massif-diff": massif_diff, "established": established, "procstat": procstat, "wrk": parse_wrk,
    "h2load": parse_h2load, "first-cert": first_cert, "renewals": renewals,
    "audit-count": audit_count, "audit-timeline": audit_timeline, "report": report,
    "overhead": overhead, "alternate": alternate,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(f"usage: benchlib.py {{{'|'.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
