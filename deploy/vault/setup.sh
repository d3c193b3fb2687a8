#!/usr/bin/env bash
# Configures Vault (or OpenBao) for the pki-sidecar Pod, as the original design does, completely
# and idempotently: running it again changes nothing that is already right.
#
#   - a root CA at pki/ and an intermediate at pki_intermediate/ signed by it;
#   - role `home` on pki_intermediate, for home and localhost and their subdomains;
#   - policy `pki`, allowed to issue from pki_intermediate/issue/home (the design uses it but
#     never shows it);
#   - Kubernetes auth at auth/kubernetes, and role `authkube` for ServiceAccount app-sa in
#     namespace poc-sidecar-tls-pki.
#
# Environment:
#   VAULT_ADDR / BAO_ADDR, VAULT_TOKEN / BAO_TOKEN   where Vault is, and a token allowed to do this
#   KUBERNETES_HOST         the API server Vault calls for TokenReviews (required)
#   KUBERNETES_CA_CERT_FILE the API server's CA (default: read from the current kubectl context)
#   KUBERNETES_ISSUER       default https://kubernetes.default.svc.cluster.local
#   VAULT_CLI               the CLI to use (default: bao if installed, else vault)
#   ROOT_TTL, INTERMEDIATE_TTL, ROLE_MAX_TTL, TOKEN_TTL   lifetimes (87600h, 43800h, 72h, 24h)
set -euo pipefail

cli=${VAULT_CLI:-}
if [ -z "$cli" ]; then
  if command -v bao >/dev/null 2>&1; then cli=bao; else cli=vault; fi
fi
command -v "$cli" >/dev/null 2>&1 || { echo "setup.sh: neither bao nor vault is installed (set VAULT_CLI)" >&2; exit 1; }
# The bao CLI reads BAO_*; give it the VAULT_* the design's ConfigMaps use, and vice versa.
export BAO_ADDR=${BAO_ADDR:-${VAULT_ADDR:-}} VAULT_ADDR=${VAULT_ADDR:-${BAO_ADDR:-}}
export BAO_TOKEN=${BAO_TOKEN:-${VAULT_TOKEN:-}} VAULT_TOKEN=${VAULT_TOKEN:-${BAO_TOKEN:-}}
[ -n "$VAULT_ADDR" ] || { echo "setup.sh: set VAULT_ADDR (or BAO_ADDR)" >&2; exit 1; }
: "${KUBERNETES_HOST:?setup.sh: set KUBERNETES_HOST, the Kubernetes API server Vault calls}"

root_ttl=${ROOT_TTL:-87600h}
intermediate_ttl=${INTERMEDIATE_TTL:-43800h}
role_max_ttl=${ROLE_MAX_TTL:-72h}
token_ttl=${TOKEN_TTL:-24h}
issuer=${KUBERNETES_ISSUER:-https://kubernetes.default.svc.cluster.local}

say() { echo "setup.sh: $*"; }

# The CLI's output is captured before it is searched: with pipefail, `cli | grep -q` fails at
# random when grep exits first and the CLI dies of SIGPIPE.

# mounted KIND PATH: whether a secrets engine or auth method is mounted at PATH/.
mounted() {
  local kind=$1 path=$2 list
  list=$("$cli" "$kind" list -format=json)
  grep -q "\"$path/\"" <<<"$list"
}

# A CA already set on a PKI mount answers with a PEM.
has_ca() {
  local pem
  pem=$("$cli" read -field=certificate "$1/cert/ca" 2>/dev/null) || return 1
  grep -q "BEGIN CERTIFICATE" <<<"$pem"
}

if mounted secrets pki; then say "pki/ already enabled"; else "$cli" secrets enable pki; fi
"$cli" secrets tune -max-lease-ttl="$root_ttl" pki >/dev/null
# Where clients find the issuing CA and the CRL (the design's chain names pki_root/ca this way).
"$cli" write pki/config/urls issuing_certificates="$VAULT_ADDR/v1/pki/ca" \
  crl_distribution_points="$VAULT_ADDR/v1/pki/crl" >/dev/null
if has_ca pki; then
  say "pki/ already has a root CA"
else
  "$cli" write -field=certificate pki/root/generate/internal common_name="Root CA" ttl="$root_ttl" >/dev/null
  say "generated the root CA at pki/"
fi

if mounted secrets pki_intermediate; then say "pki_intermediate/ already enabled"; else "$cli" secrets enable -path=pki_intermediate pki; fi
"$cli" secrets tune -max-lease-ttl="$intermediate_ttl" pki_intermediate >/dev/null
"$cli" write pki_intermediate/config/urls issuing_certificates="$VAULT_ADDR/v1/pki_intermediate/ca" \
  crl_distribution_points="$VAULT_ADDR/v1/pki_intermediate/crl" >/dev/null
if has_ca pki_intermediate; then
  say "pki_intermediate/ already has its CA"
else
  csr=$("$cli" write -field=csr pki_intermediate/intermediate/generate/internal common_name="Intermediate CA")
  signed=$("$cli" write -field=certificate pki/root/sign-intermediate csr="$csr" format=pem_bundle ttl="$intermediate_ttl")
  "$cli" write pki_intermediate/intermediate/set-signed certificate="$signed" >/dev/null
  say "signed the intermediate CA at pki_intermediate/"
fi

"$cli" write pki_intermediate/roles/home \
  allowed_domains="home,localhost" allow_subdomains=true allow_bare_domains=true \
  max_ttl="$role_max_ttl" >/dev/null
say "role pki_intermediate/roles/home written"

"$cli" policy write pki - >/dev/null <<'POLICY'
path "pki_intermediate/issue/home" {
  capabilities = ["create", "update"]
}
POLICY
say "policy pki written"

if mounted auth kubernetes; then say "auth/kubernetes already enabled"; else "$cli" auth enable kubernetes; fi
ca_file=${KUBERNETES_CA_CERT_FILE:-}
if [ -z "$ca_file" ]; then
  command -v kubectl >/dev/null 2>&1 || { echo "setup.sh: set KUBERNETES_CA_CERT_FILE (kubectl is not installed to read it)" >&2; exit 1; }
  ca_file=$(mktemp)
  trap 'rm -f "$ca_file"' EXIT
  kubectl config view --raw --minify --flatten \
    -o jsonpath='{.clusters[].cluster.certificate-authority-data}' | base64 -d > "$ca_file"
fi
"$cli" write auth/kubernetes/config \
  disable_local_ca_jwt=true \
  kubernetes_host="$KUBERNETES_HOST" \
  kubernetes_ca_cert=@"$ca_file" \
  issuer="$issuer" >/dev/null
say "auth/kubernetes/config written"

"$cli" write auth/kubernetes/role/authkube \
  bound_service_account_names=app-sa \
  bound_service_account_namespaces=poc-sidecar-tls-pki \
  token_policies=pki \
  ttl="$token_ttl" >/dev/null
say "role auth/kubernetes/role/authkube written"
say "done: the Pod's ServiceAccount app-sa can now log in and issue certificates for *.home"
