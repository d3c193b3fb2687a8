#!/usr/bin/env bash
# bench/webhook.sh [--smoke]: the admission webhook under 50 concurrent AdmissionReviews.
#
# `pki-sidecar webhook` (release build) serves a certificate made here (ECDSA P-256, openssl)
# and runs alone on CPU 0 (`taskset -c 0`, so its runtime has one worker); wrk runs on CPU 1
# with 50 connections over 2 threads, each request a POST /mutate of one AdmissionReview v1:
# a Pod CREATE of tests/inject/webhook-pod.yaml, an annotated Pod, as the API server sends it.
# wrk keeps its connections open (the API server reuses its connections to a webhook too), so
# this measures reviews, not handshakes. Before the load, one review is sent with curl and its
# answer checked (a v1 AdmissionReview, same uid, allowed, a patch adding the sidecars), so the
# figures are of real injections.
#
# Printed: requests/s, p50 and p99 latency, failures (socket errors and non-2xx), the p99
# against the API server's default webhook timeout (10 s) and the manifest's timeoutSeconds,
# and the webhook's own count of results by kind (injected, not_requested, ...).
#
# --smoke: 2 s of load; fails only when a measure cannot be taken (a missing tool, a webhook
# that does not start or answers wrongly), never on the numbers. Environment: PKI_SIDECAR_BIN
# (skip the build), BENCH_DURATION (seconds, default 10), BENCH_KEEP=1 (keep the temporary
# directory with the logs and wrk's raw output).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

if [ "${1:-}" = --smoke ]; then
  duration=2
else
  [ $# -eq 0 ] || fail "usage: bench/webhook.sh [--smoke]"
  duration=${BENCH_DURATION:-10}
fi
connections=50 threads=2 server_cpu=0 client_cpu=1
api_server_timeout_ms=10000
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: one for the webhook, one for the load"
need curl openssl python3 taskset wrk
ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
BIN=$(sidecar_binary)

# --- the serving certificate and the review ------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=pki-sidecar-injector.pki-sidecar-injector.svc" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.crt" >"$WORK/openssl.log" 2>&1 ||
  fail "openssl could not make the certificate (see $WORK/openssl.log)"

python3 - "$REPO_DIR/tests/inject/webhook-pod.yaml" >"$WORK/review.json" <<'PY' || fail "cannot build the review"
import json, sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({
    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
    "request": {
        "uid": "b3c5e0a4-7d1e-4d3a-9a0e-000000000001",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE", "namespace": pod["metadata"]["namespace"],
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": pod, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    },
}))
PY

cat >"$WORK/review.lua" <<'LUA'
-- Every request: POST /mutate with the same AdmissionReview.
local file = assert(io.open(os.getenv("REVIEW_FILE"), "rb"))
wrk.method = "POST"
wrk.path = "/mutate"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
LUA

# --- the webhook ----------------------------------------------------------------------------------
read -r port metrics_port <<<"$(lib free-ports 2)"
start_bg "$WORK/webhook.log" taskset -c "$server_cpu" "$BIN" webhook \
  --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
  --tls-cert-file "$WORK/tls.crt" --tls-key-file "$WORK/tls.key" --image pki-sidecar:bench \
  --vault-address https://vault.vault.svc:8200
webhook_pid=$BG_PID
wait_until 30 "the webhook did not become ready (see $WORK/webhook.log)" \
  curl -sf "http://127.0.0.1:$metrics_port/readyz"
workers=$(awk '/^Threads:/ {print $2}' "/proc/$webhook_pid/status")

curl -sS --cacert "$WORK/tls.crt" -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" \
  "https://localhost:$port/mutate" >"$WORK/answer.json" || fail "the review was not answered (see $WORK/webhook.log)"
python3 - "$WORK/review.json" "$WORK/answer.json" <<'PY' || fail "the webhook's answer is wrong (see $WORK/answer.json)"
import base64, json, sys
review, answer = (json.load(open(path)) for path in sys.argv[1:3])
response = answer["response"]
assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview", answer
assert response["uid"] == review["request"]["uid"], response
assert response["allowed"] is True, response
assert response.get("patchType") == "JSONPatch", response
patch = json.loads(base64.b64decode(response["patch"]))
added = [op["path"] for op in patch if op["op"] == "add"]
assert any(path.startswith("/spec/initContainers") for path in added), patch
print(f"the answer: allowed, {len(patch)} patch operations (the sidecars added)", file=sys.stderr)
PY

# --- the load -------------------------------------------------------------------------------------
say "wrk -c$connections -t$threads -d${duration}s --latency (webhook on CPU $server_cpu with $workers OS threads; wrk on CPU $client_cpu)"
REVIEW_FILE=$WORK/review.json taskset -c "$client_cpu" wrk -c"$connections" -t"$threads" \
  -d"${duration}s" --latency -s "$WORK/review.lua" "https://localhost:$port/mutate" >"$WORK/wrk.txt" 2>&1 ||
  fail "wrk failed (see $WORK/wrk.txt)"
read -r rps p50 p99 failed total <<<"$(lib wrk "$WORK/wrk.txt")"
results=$(curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk '/^pki_sidecar_webhook_requests_total\{/ && $2 > 0 {sub(/pki_sidecar_webhook_requests_total/, ""); printf "%s ", $0}')
timeout_seconds=$(awk '/timeoutSeconds:/ {print $2; exit}' "$REPO_DIR/deploy/injector/base/mutatingwebhookconfiguration.yaml")
stop_pid "$webhook_pid"
forget_pid "$webhook_pid"
wait "$webhook_pid" 2>/dev/null || true

echo "webhook: $(machine)"
echo "AdmissionReview of tests/inject/webhook-pod.yaml, wrk -c$connections -t$threads -d${duration}s, keep-alive over TLS 1.3"
printf '| requests/s | p50 | p99 | failed / requests | p99 vs the 10 s default timeout | vs timeoutSeconds (%ss) |\n' "$timeout_seconds"
printf '| --- | --- | --- | --- | --- | --- |\n'
python3 - "$rps" "$p50" "$p99" "$failed" "$total" "$api_server_timeout_ms" "$timeout_seconds" <<'PY'
import sys
rps, p50, p99 = (float(v) for v in sys.argv[1:4])
failed, total, timeout_ms, manifest_s = (int(v) for v in sys.argv[4:8])
print(f"| {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {failed} / {total:,} | "
      f"{p99 / timeout_ms * 100:.3f} % ({timeout_ms / p99:,.0f}x under) | "
      f"{p99 / (manifest_s * 1000) * 100:.3f} % |")
PY
echo "results counted by the webhook: ${results:-none}"
[ "$failed" -eq 0 ] || say "warning: $failed requests failed (see $WORK/wrk.txt)"
