#!/usr/bin/env python3
"""bench/fleet.sh's measures: Vault CPU per request, and the report read from the audit log.

Standard library only. Errors go to stderr with a non-zero exit: a measure that cannot be taken
fails the bench (never a figure).

  costs ADDR JWT_FILE N M BAO_PID BAO_BIN
      N logins, M RSA issues (role home as setup.sh writes it), then role home switched to
      EC P-256 and N EC issues, one at a time on one keep-alive connection; prints JSON with
      the server's CPU per request (ms, its threads' schedstat) and the client's wall time.
  memory PID...
      the agents' RSS and threads by executable, one line of markdown.
  report AUDIT FROM TTL T0 READY STEADY DOWN UP END CPU0 CPU1 COSTS_JSON BUCKETS_TSV
      the markdown report of a fleet run: the audit log from byte FROM, the phase boundaries
      (epoch seconds), the server's CPU seconds at the steady phase's start and end.
"""

import calendar
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

BUCKET = 5.0
# The longer bucket the return is also read in: six 5 s buckets, so that the counting noise of a
# few requests per 5 s does not pass for a stampede.
LONG_BUCKET = 30.0
LOGIN = "auth/kubernetes/login"
ISSUE = "pki_intermediate/issue/home"
# Agent kinds by User-Agent: pki-sidecar sends pki-sidecar/VERSION; OpenBao Agent names itself
# "Vault Agent Auto-Auth/..." and "Vault Agent Templating/...".
KINDS = [("pki-sidecar", "pki-sidecar/"), ("openbao-agent", "vault agent")]


def die(message):
    print(f"fleet.py: {message}", file=sys.stderr)
    sys.exit(1)


def cpu_seconds(pid):
    """The server's CPU seconds from its threads' schedstat (nanoseconds: a few requests are
    measurable, where utime+stime counts 10 ms ticks). A thread that ends takes its time with
    it; Go's runtime keeps its threads, and the batches are short."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total / 1e9


# --- Vault CPU per request ------------------------------------------------------------------------


def costs(addr, jwt_file, n, m, pid, bao_bin):
    n, m = int(n), int(m)
    url = urllib.parse.urlparse(addr)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    with open(jwt_file) as f:
        jwt = f.read().strip()

    def call(path, body, token=None):
        headers = {"Content-Type": "application/json", "User-Agent": "bench-fleet-costs"}
        if token:
            headers["X-Vault-Token"] = token
        conn.request("POST", f"/v1/{path}", json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            die(f"{path}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data)

    def batch(count, path, body, token=None):
        if count <= 0:
            die(f"no {path} request to measure")
        cpu, wall = cpu_seconds(pid), time.monotonic()
        answer = None
        for _ in range(count):
            answer = call(path, body, token)
        cpu, wall = cpu_seconds(pid) - cpu, time.monotonic() - wall
        return answer, {"n": count, "cpu_ms": 1000 * cpu / count, "wall_ms": 1000 * wall / count}

    login_body = {"role": "authkube", "jwt": jwt}
    answer, login = batch(n, LOGIN, login_body)
    token = answer["auth"]["client_token"]
    issue_body = {"common_name": "foo.home", "alt_names": "localhost,bar.home", "ttl": "600s"}
    answer, rsa = batch(m, ISSUE, issue_body, token)
    if answer["data"].get("private_key_type") != "rsa":
        die(f"role home issued a {answer['data'].get('private_key_type')} key, not rsa")
    patched = subprocess.run([bao_bin, "patch", "pki_intermediate/roles/home", "key_type=ec",
                              "key_bits=0"], capture_output=True, text=True)
    if patched.returncode != 0:
        die(f"could not switch role home to EC: {patched.stderr.strip()}")
    answer, ec = batch(n, ISSUE, issue_body, token)
    if answer["data"].get("private_key_type") != "ec":
        die(f"role home issued a {answer['data'].get('private_key_type')} key, not ec")
    print(json.dumps({"login": login, "issue_rsa": rsa, "issue_ec": ec}))


# --- the report -----------------------------------------------------------------------------------


def epoch(stamp):  # RFC 3339 with nanoseconds, UTC
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def read_requests(audit_log, start):
    """[(time, kind, class, token_accessor_hash)] for every request entry by an agent."""
    found = []
    with open(audit_log, "rb") as f:
        f.seek(int(start))
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by the server's SIGKILL
            if entry.get("type") != "request":
                continue
            request = entry.get("request") or {}
            agents = " ".join((request.get("headers") or {}).get("user-agent", [])).lower()
            kind = next((k for k, marker in KINDS if marker in agents), None)
            if kind is None:
                continue
            path = request.get("path", "")
            cls = "login" if path == LOGIN else "issue" if path == ISSUE else "other"
            accessor = (entry.get("auth") or {}).get("accessor", "")
            found.append((epoch(entry["time"]), kind, cls, accessor))
    return found


def buckets(times, start, end, width=BUCKET):
    """Counts per full bucket of `width` seconds (5) of [start, end), aligned on start."""
    count = int((end - start) // width)
    counts = [0] * count
    for t in times:
        i = int((t - start) // width)
        if 0 <= i < count:
            counts[i] += 1
    return counts


def fmt(value, digits=3):
    if value is None:
        return "—"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}"


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def report(audit_log, start, ttl, t0, ready, steady, down, up, end, cpu0, cpu1, costs_json,
           buckets_tsv):
    ttl, t0, ready, steady, down, up, end = map(float, (ttl, t0, ready, steady, down, up, end))
    cpu0, cpu1 = float(cpu0), float(cpu1)
    requests = read_requests(audit_log, start)
    kinds = [k for k, _ in KINDS if any(r[1] == k for r in requests)]
    if "pki-sidecar" not in kinds:
        die(f"no pki-sidecar request in {audit_log}")
    phases = [("start", t0, ready), ("steady", steady, down), ("outage", down, up),
              ("after", up, end)]

    def times(kind, classes, lo=None, hi=None):
        return [t for t, k, c, _ in requests if k == kind and c in classes
                and (lo is None or lo <= t < hi)]

    print(f"\nPhases (seconds from the agents' start): start 0–{ready - t0:.1f} (every agent "
          f"has its first certificate), steady {steady - t0:.1f}–{down - t0:.1f} (one renewal "
          f"period), outage {down - t0:.1f}–{up - t0:.1f} ({up - down:.1f} s), after "
          f"{up - t0:.1f}–{end - t0:.1f}.")

    # Requests per phase.
    print("\n### Vault requests per phase (5 s buckets aligned on each phase's start)\n")
    print("| agent | phase | seconds | logins | issues | other | logins+issues per s | "
          "mean / 5 s | peak / 5 s |")
    print("| --- | --- |" + " ---: |" * 7)
    steady_mean, after_peak, steady_peak, after_peak_30 = {}, {}, {}, {}
    for kind in kinds:
        for name, lo, hi in phases:
            li = times(kind, ("login", "issue"), lo, hi)
            counts = buckets(li, lo, hi) or [len(li)]
            n_login = len(times(kind, ("login",), lo, hi))
            n_issue = len(times(kind, ("issue",), lo, hi))
            n_other = len(times(kind, ("other",), lo, hi))
            mean = len(li) / ((hi - lo) / BUCKET)
            if name == "steady":
                steady_mean[kind], steady_peak[kind] = mean, max(counts)
            if name == "after":
                after_peak[kind] = max(counts)
                after_peak_30[kind] = max(buckets(li, lo, hi, LONG_BUCKET) or [len(li)])
            print(f"| {kind} | {name} | {hi - lo:.0f} | {n_login} | {n_issue} | {n_other} | "
                  f"{fmt(len(li) / (hi - lo))} | {fmt(mean)} | {max(counts)} |")

    # The return.
    print("\n### After the outage: peak 5 s bucket / the steady phase's mean bucket (logins + "
          "issues; goal ≤ 2)\n")
    print("| agent | steady mean / 5 s | steady peak / 5 s | steady peak / mean | "
          "peak after return / 5 s | peak after return / steady mean | "
          "peak after return / steady peak | busiest 30 s after return / steady mean per 30 s |")
    print("| --- |" + " ---: |" * 7)
    for kind in kinds:
        mean = steady_mean[kind]
        if mean == 0:
            die(f"{kind}: no login or issue in the steady phase: the ratio cannot be taken")
        print(f"| {kind} | {fmt(mean)} | {steady_peak[kind]} | {fmt(steady_peak[kind] / mean)} | "
              f"{after_peak[kind]} | **{fmt(after_peak[kind] / mean)}** | "
              f"{fmt(after_peak[kind] / steady_peak[kind])} | "
              f"{fmt(after_peak_30[kind] / (mean * LONG_BUCKET / BUCKET))} |")
    first_after = min((t for t, k, c, _ in requests if k == "pki-sidecar" and t >= up), default=None)
    if first_after is None:
        die("no pki-sidecar request after Vault returned: the return cannot be measured")
    print(f"\nFirst pki-sidecar request after the return: {first_after - up:.2f} s after it.")

    # Buckets around the outage, every kind, for the doc and the TSV.
    series_start = steady
    with open(buckets_tsv, "w") as out:
        out.write("seconds_from_t0\t" + "\t".join(f"{k}_{c}" for k in kinds
                                                  for c in ("login", "issue", "other")) + "\n")
        columns = {(k, c): buckets(times(k, (c,)), series_start, end)
                   for k in kinds for c in ("login", "issue", "other")}
        for i in range(len(columns[(kinds[0], "login")])):
            out.write(f"{series_start - t0 + i * BUCKET:.0f}\t" + "\t".join(
                str(columns[(k, c)][i]) for k in kinds for c in ("login", "issue", "other")) + "\n")
    print("\n5 s buckets from 30 s before the outage to 60 s after the return (logins+issues "
          "per agent kind; `|` marks the outage's edges):\n")
    lo = max(steady, down - 30)
    row = []
    for kind in kinds:
        before = buckets(times(kind, ("login", "issue")), lo, down)
        during = buckets(times(kind, ("login", "issue")), down, up) or [0]
        following = buckets(times(kind, ("login", "issue")), up, min(end, up + 60))
        row.append(f"- {kind}: {' '.join(map(str, before))} | {' '.join(map(str, during))} | "
                   f"{' '.join(map(str, following))}")
    print("\n".join(row))

    # The spread of renewals: each agent (token) by its issues.
    print("\n### Spread of the first renewals across the fleet (each agent's first issue a "
          "quarter of the TTL or more after its first certificate)\n")
    print("| agent | agents | renewed | first renewal, s from start: min / p10 / median / p90 / "
          "max | p10–p90 window | interval since its first certificate, × TTL: min / median / "
          "max |")
    print("| --- | ---: | ---: | --- | ---: | --- |")
    for kind in kinds:
        by_agent = {}
        for t, k, c, accessor in requests:
            if k == kind and c == "issue" and accessor:
                by_agent.setdefault(accessor, []).append(t)
        # An issue less than a quarter of the TTL after the first is a retry of the first (a
        # request that timed out in the start-up storm and was sent again), not a renewal.
        firsts = {}
        for accessor, ts in by_agent.items():
            ts = sorted(ts)
            later = [t for t in ts if t - ts[0] >= ttl / 4]
            if later:
                firsts[accessor] = (ts[0], later[0])
        renewals = sorted(second - t0 for _, second in firsts.values())
        intervals = [(second - first) / ttl for first, second in firsts.values()]
        if not renewals:
            die(f"{kind}: no agent renewed its certificate: the spread cannot be measured")
        window = quantile(renewals, 0.9) - quantile(renewals, 0.1)
        print(f"| {kind} | {len(by_agent)} | {len(renewals)} | "
              + " / ".join(f"{quantile(renewals, q):.0f}" for q in (0, 0.1, 0.5, 0.9, 1))
              + f" | {window:.0f} s ({100 * window / ttl:.1f} % of the TTL) | "
              + " / ".join(f"{x:.3f}" for x in (min(intervals), statistics.median(intervals),
                                                  max(intervals))) + " |")

    # Vault's CPU.
    steady_issues = sum(1 for t, _, c, _ in requests if c == "issue" and steady <= t < down)
    steady_logins = sum(1 for t, _, c, _ in requests if c == "login" and steady <= t < down)
    steady_all = sum(1 for t, _, _, _ in requests if steady <= t < down)
    if steady_issues == 0:
        die("no issue in the steady phase: Vault CPU per renewal cannot be taken")
    with open(costs_json) as f:
        cost = json.load(f)
    per_renewal = 1000 * (cpu1 - cpu0) / steady_issues
    print("\n### Vault CPU\n")
    print(f"Steady phase, the whole fleet: {cpu1 - cpu0:.2f} s of server CPU (utime+stime, 10 ms "
          f"ticks) for {steady_issues} issues, {steady_logins} logins and "
          f"{steady_all - steady_issues - steady_logins} other agent requests: "
          f"**{per_renewal:.1f} ms per renewal**.\n")
    print("Alone on the server, one request at a time on one keep-alive connection (agents "
          "stopped; server CPU from its threads' schedstat):\n")
    print("| request | n | server CPU ms / request | client wall ms / request |")
    print("| --- | ---: | ---: | ---: |")
    labels = {"login": "Kubernetes login (TokenReview stand-in answering)",
              "issue_rsa": "issue, RSA-2048 key generated by Vault",
              "issue_ec": "issue, EC P-256 key generated by Vault"}
    for key, label in labels.items():
        c = cost[key]
        print(f"| {label} | {c['n']} | {fmt(c['cpu_ms'])} | {fmt(c['wall_ms'])} |")

    # Capacity.
    print("\n### Capacity (from the per-request costs above)\n")
    print("One certificate per Pod, renewed at 2/3 of its TTL; one Kubernetes login per Pod per "
          "16 h (a 24 h token renewed at 2/3, costed as a login: an upper bound); Pod starts "
          "(a login and an issue each) not counted; cores = CPU-seconds per second.\n")
    print("| Pods | certificate TTL | renewals/s | logins/s | Vault cores, RSA-2048 | "
          "Vault cores, EC P-256 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for ttl_h in (24, 1):
        for pods in (1_000, 10_000, 100_000):
            renew = pods / (ttl_h * 3600 * 2 / 3)
            logins = pods / (16 * 3600)
            rsa = (renew * cost["issue_rsa"]["cpu_ms"] + logins * cost["login"]["cpu_ms"]) / 1000
            ec = (renew * cost["issue_ec"]["cpu_ms"] + logins * cost["login"]["cpu_ms"]) / 1000
            print(f"| {pods:,} | {ttl_h} h | {fmt(renew)} | {fmt(logins)} | {fmt(rsa)} | "
                  f"{fmt(ec)} |")


def memory(*pids):
    """One line: each agent kind's count, total and mean RSS and threads, by executable."""
    kinds = {}
    for pid in pids:
        try:
            exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            die(f"agent {pid} is gone")
        kind = {"pki-sidecar": "pki-sidecar", "bao": "OpenBao Agent"}.get(exe, exe)
        n, rss, threads = kinds.get(kind, (0, 0, 0))
        kinds[kind] = (n + 1, rss + int(status["VmRSS"].split()[0]),
                       threads + int(status["Threads"]))
    print("Agents' memory at the steady phase's start: " + "; ".join(
        f"{kind} {n} agents, {rss / 1024:.0f} MiB RSS in all ({rss / n / 1024:.1f} MiB each), "
        f"{threads / n:.0f} threads each" for kind, (n, rss, threads) in kinds.items()) + ".")


COMMANDS = {"costs": costs, "report": report, "memory": memory}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(f"usage: fleet.py {{{'|'.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
