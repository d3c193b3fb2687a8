#!/usr/bin/env bash
# Writes the certs target's seed inputs into fuzz/seeds/certs/ (committed; re-run to refresh).
# Throwaway keys made for fuzzing only. Format: certificate text, optionally NUL + key text.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/certs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p "$out"
days=3650
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null   # SEC1 "EC PRIVATE KEY"
openssl req -x509 -new -key ca.key -subj /CN=fuzz-ca -days $days -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE 2>/dev/null
leaf() { # name keyfile
  openssl req -new -key "$2" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1\n' "$1" >ext
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days \
    -extfile ext -out "$1.crt" 2>/dev/null
}
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null  # PKCS#8
openssl genpkey -algorithm ED25519 -out ed.key 2>/dev/null
openssl genrsa -traditional -out rsa.key 2048 2>/dev/null                               # PKCS#1
openssl ecparam -name secp384r1 -genkey -noout -out sec1.key 2>/dev/null
for name in ec ed rsa sec1; do leaf "$name.fuzz.home" "$name.key"; done
for name in ec ed rsa sec1; do
  # separate files: cert (+ chain), NUL, key
  { cat "$name.fuzz.home.crt" ca.crt; printf '\0'; cat "$name.key"; } >"$out/$name-pair"
  # one combined file used as both
  cat "$name.key" "$name.fuzz.home.crt" >"$out/$name-combined"
done
{ cat ec.fuzz.home.crt; printf '\0'; cat rsa.key; } >"$out/mismatch"
cp ca.crt "$out/ca-only"
# Expired and not-yet-valid pairs are left to the fuzzer (it mutates DER dates) and to
# pair_from_pem's second run at the Unix epoch: openssl 3.0's req has no -not_before.
ls "$out"
