//! The development CA behind `pki-sidecar dev`: a root and an intermediate generated in memory
//! at start, issuing leaf certificates the way Vault's `pki/issue/ROLE` endpoint does.
//!
//! It answers an issue request with Vault's JSON shape (`certificate`, `private_key`,
//! `private_key_type`, `issuing_ca`, `ca_chain`, `serial_number`, `expiration`) so the agent's
//! template code reads it exactly as it reads Vault's answer. It honours the request's
//! `common_name`, `alt_names`, `ip_sans`, `uri_sans`, `ttl` (capped at the CA's `max_ttl`),
//! `exclude_cn_from_sans`, `key_type` and `key_bits`; other parameters are ignored, as a
//! permissive Vault role would. It must never be used outside development: its keys live
//! only in this process and die with it (only the root *certificate* is written out).

use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::json;

use crate::agent::backend::{Backend, BoxFuture};
use crate::certs;
use crate::schedule::Clock;
use crate::units::{self, Scalar};

/// How far back a leaf's NotBefore is set, as Vault's default `not_before_duration` (clock
/// skew between the issuer and the client).
const BACKDATE: Duration = Duration::from_secs(30);
/// The root and the intermediate live this long; they are regenerated at every start anyway.
const CA_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// id-ce-basicConstraints (RFC 5280, 4.2.1.9).
const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];

/// Why an issue request was refused (Vault would answer 400).
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    /// A parameter the request got wrong.
    #[error("{0}")]
    BadRequest(String),
    /// rcgen could not build or sign the certificate.
    #[error("cannot sign the certificate: {0}")]
    Signing(#[from] rcgen::Error),
}

/// A root and an intermediate CA, in memory, issuing leaf certificates.
pub struct DevCa {
    root_pem: String,
    intermediate: CertifiedIssuer<'static, KeyPair>,
    default_ttl: Duration,
    max_ttl: Duration,
    /// What "now" is when a leaf is issued (tests run it on tokio's paused time).
    clock: Clock,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The issuer holds a private key: print only what is public.
        f.debug_struct("DevCa")
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Generates a fresh root and intermediate (ECDSA P-256). A request without `ttl` gets
    /// `default_ttl`; none gets more than `max_ttl`.
    pub fn generate(default_ttl: Duration, max_ttl: Duration) -> Result<DevCa, DevCaError> {
        let now = SystemTime::now();
        let ca_params = |common_name: &str, constraint: BasicConstraints| {
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::OrganizationName, "pki-sidecar dev");
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.is_ca = IsCa::Ca(constraint);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = (now - Duration::from_secs(3600)).into();
            params.not_after = (now + CA_LIFETIME).into();
            params.serial_number = Some(random_serial());
            params
        };
        let root = CertifiedIssuer::self_signed(
            ca_params("pki-sidecar dev root CA", BasicConstraints::Constrained(1)),
            KeyPair::generate()?,
        )?;
        let mut intermediate_params = ca_params(
            "pki-sidecar dev intermediate CA",
            BasicConstraints::Constrained(0),
        );
        intermediate_params.use_authority_key_identifier_extension = true;
        let intermediate =
            CertifiedIssuer::signed_by(intermediate_params, KeyPair::generate()?, &root)?;
        Ok(DevCa {
            root_pem: root.pem(),
            intermediate,
            default_ttl,
            max_ttl,
            clock: Clock::System,
        })
    }

    /// The same CA, issuing leaves valid from `clock`'s now (tests: a clock that follows
    /// tokio's paused time, so renewals over hours run in milliseconds).
    pub fn with_clock(mut self, clock: Clock) -> DevCa {
        self.clock = clock;
        self
    }

    /// The root certificate (PEM): what a client trusts.
    pub(crate) fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Issues a leaf certificate for `request` (the JSON body of a `pki/issue/ROLE` write) and
    /// answers as Vault does: `{"data": {...}}`.
    pub(crate) fn issue(
        &self,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, DevCaError> {
        let field = |name: &str| -> Option<String> {
            match request.get(name)? {
                serde_json::Value::String(text) => Some(text.trim().to_string()),
                serde_json::Value::Number(number) => Some(number.to_string()),
                serde_json::Value::Bool(flag) => Some(flag.to_string()),
                _ => None,
            }
            .filter(|text| !text.is_empty())
        };
        let list = |name: &str| -> Vec<String> {
            field(name)
                .map(|text| {
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let common_name = field("common_name")
            .ok_or_else(|| DevCaError::BadRequest("the common_name field is required".into()))?;
        let ttl = match field("ttl") {
            Some(text) => units::duration(&Scalar::Text(text.clone()))
                .map_err(|err| DevCaError::BadRequest(format!("ttl: {err}")))?,
            None => self.default_ttl,
        }
        .min(self.max_ttl);
        if ttl.is_zero() {
            return Err(DevCaError::BadRequest("ttl must be above zero".into()));
        }
        let exclude_cn = field("exclude_cn_from_sans").is_some_and(|v| v == "true");

        let mut sans = Vec::new();
        let mut dns_names: Vec<String> = Vec::new();
        if !exclude_cn && !common_name.contains('@') {
            dns_names.push(common_name.clone());
        }
        for name in list("alt_names") {
            if !dns_names.contains(&name) {
                dns_names.push(name);
            }
        }
        for name in dns_names {
            // Vault also accepts an IP address among alt_names when the role allows IP SANs.
            match IpAddr::from_str(&name) {
                Ok(ip) => sans.push(SanType::IpAddress(ip)),
                Err(_) => sans.push(SanType::DnsName(name.try_into().map_err(|err| {
                    DevCaError::BadRequest(format!("alt_names: not a DNS name: {err}"))
                })?)),
            }
        }
        for ip in list("ip_sans") {
            let ip = IpAddr::from_str(&ip).map_err(|_| {
                DevCaError::BadRequest(format!("ip_sans: {ip:?} is not an IP address"))
            })?;
            sans.push(SanType::IpAddress(ip));
        }
        for uri in list("uri_sans") {
            sans.push(SanType::URI(uri.try_into().map_err(|err| {
                DevCaError::BadRequest(format!("uri_sans: {err}"))
            })?));
        }

        let key = self.leaf_key(field("key_type").as_deref(), field("key_bits").as_deref())?;
        let now = self.clock.now();
        let not_after = now + ttl;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name.as_str());
        params.subject_alt_names = sans;
        // "Not a CA" as Vault writes it: a critical basicConstraints holding an empty
        // SEQUENCE. rcgen's `ExplicitNoCa` encodes `cA FALSE`, a DEFAULT value, which DER
        // forbids (pyca/cryptography and other strict parsers reject the certificate).
        params.is_ca = IsCa::NoCa;
        let mut not_a_ca = CustomExtension::from_oid_content(BASIC_CONSTRAINTS, vec![0x30, 0x00]);
        not_a_ca.set_criticality(true);
        params.custom_extensions.push(not_a_ca);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = (now - BACKDATE).into();
        params.not_after = not_after.into();
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let leaf = params.signed_by(&key, &self.intermediate)?;
        let info = certs::CertInfo::parse(leaf.der())
            .map_err(|err| DevCaError::BadRequest(format!("issued an unreadable cert: {err}")))?;
        let intermediate = self.intermediate.pem();
        Ok(json!({
            "data": {
                "certificate": leaf.pem(),
                "private_key": key.serialize_pem(),
                "private_key_type": "ec",
                "issuing_ca": intermediate,
                "ca_chain": [intermediate, self.root_pem],
                "serial_number": info.serial,
                "expiration": certs::unix_seconds(info.not_after) as u64,
            },
            "lease_id": "",
            "lease_duration": 0,
            "renewable": false,
            "warnings": null,
        }))
    }

    /// A new leaf key of the requested type. ring cannot generate RSA keys, so the development
    /// CA issues ECDSA only (the role's `key_type` in Vault decides the same thing).
    fn leaf_key(
        &self,
        key_type: Option<&str>,
        key_bits: Option<&str>,
    ) -> Result<KeyPair, DevCaError> {
        let algorithm = match (key_type.unwrap_or("ec"), key_bits.unwrap_or("0")) {
            ("ec" | "any", "0" | "256") => &rcgen::PKCS_ECDSA_P256_SHA256,
            ("ec", "384") => &rcgen::PKCS_ECDSA_P384_SHA384,
            ("ec", bits) => {
                return Err(DevCaError::BadRequest(format!(
                    "key_bits={bits}: the development CA issues EC keys of 256 or 384 bits"
                )));
            }
            (other, _) => {
                return Err(DevCaError::BadRequest(format!(
                    "key_type={other}: the development CA issues EC keys only (key_type=ec)"
                )));
            }
        };
        Ok(KeyPair::generate_for(algorithm)?)
    }
}

/// 16 random bytes with the top bit clear: a positive serial, as RFC 5280 wants.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    bytes.iter_mut().for_each(|b| *b = fastrand::u8(..));
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

/// The development CA as the agent's issuer: issue requests only (a write to
/// `MOUNT/issue/ROLE`), no login.
impl Backend for DevCa {
    fn request<'a>(
        &'a self,
        _operation: &'static str,
        method: http::Method,
        path: &'a str,
        body: Option<serde_json::Value>,
    ) -> BoxFuture<'a, anyhow::Result<serde_json::Value>> {
        Box::pin(async move {
            let is_write = method == http::Method::POST || method == http::Method::PUT;
            let is_issue = path
                .trim_matches('/')
                .rsplit('/')
                .nth(1)
                .is_some_and(|segment| segment == "issue");
            if !(is_write && is_issue) {
                anyhow::bail!(
                    "the development CA answers PKI issue requests (a write to \
                     MOUNT/issue/ROLE) only, not {method} {path}"
                );
            }
            let body = body.unwrap_or_else(|| json!({}));
            Ok(self.issue(&body)?)
        })
    }

    fn describe(&self) -> String {
        "the development CA".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn the_development_ca_answers_issue_writes_only() {
        let ca = DevCa::generate(Duration::from_secs(60), Duration::from_secs(60)).unwrap();
        let body = serde_json::json!({"common_name": "localhost"});
        let answer = ca
            .request(
                "issue",
                http::Method::POST,
                "pki_intermediate/issue/home",
                Some(body.clone()),
            )
            .await
            .unwrap();
        assert!(answer["data"]["certificate"].is_string());
        for (method, path) in [
            (http::Method::GET, "pki_intermediate/issue/home"),
            (http::Method::POST, "pki_intermediate/sign/home"),
            (http::Method::GET, "secret/data/app"),
        ] {
            let err = ca
                .request("secret", method.clone(), path, Some(body.clone()))
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("issue requests"),
                "{method} {path}: {err}"
            );
        }
        let mut ca = ca;
        assert!(ca.ready(&CancellationToken::new()).await);
    }
    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    fn ca() -> DevCa {
        DevCa::generate(Duration::from_secs(120), Duration::from_secs(3600)).unwrap()
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        crate::tls::pem::certificates(pem.as_bytes())
            .unwrap()
            .remove(0)
    }

    fn data(answer: &serde_json::Value, key: &str) -> String {
        answer["data"][key].as_str().unwrap().to_string()
    }

    /// Verifies `answer`'s leaf against the root only, with the chain as intermediates.
    fn verify(ca: &DevCa, answer: &serde_json::Value, name: &str) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(der(ca.root_pem())).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::aws_lc_rs::default_provider().into(),
        )
        .build()
        .unwrap();
        let intermediates = vec![der(&data(answer, "issuing_ca"))];
        verifier
            .verify_server_cert(
                &der(&data(answer, "certificate")),
                &intermediates,
                &ServerName::try_from(name.to_string()).unwrap(),
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
    }

    #[test]
    fn issued_certificate_chains_to_the_root_for_each_name() {
        let ca = ca();
        let answer = ca
            .issue(
                &json!({"common_name": "localhost", "alt_names": "localhost,foo.home",
                           "ip_sans": "127.0.0.1", "ttl": "2m"}),
            )
            .unwrap();
        for name in ["localhost", "foo.home", "127.0.0.1"] {
            verify(&ca, &answer, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(verify(&ca, &answer, "other.home").is_err());
        let info = certs::CertInfo::parse(&der(&data(&answer, "certificate"))).unwrap();
        assert_eq!(info.subject_cn, "localhost");
        assert_eq!(info.issuer_cn, "pki-sidecar dev intermediate CA");
        assert_eq!(info.names, ["localhost", "foo.home", "127.0.0.1"]);
        assert!(!info.is_ca);
        // Vault's shape: the chain is intermediate then root; the serial as Vault prints it.
        let chain = answer["data"]["ca_chain"].as_array().unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].as_str().unwrap(), ca.root_pem());
        assert_eq!(data(&answer, "serial_number"), info.serial);
        assert_eq!(data(&answer, "private_key_type"), "ec");
    }

    #[test]
    fn ttl_is_honoured_and_capped() {
        let ca = ca();
        let lifetime_left = |answer: &serde_json::Value| {
            let info = certs::CertInfo::parse(&der(&data(answer, "certificate"))).unwrap();
            assert_eq!(
                answer["data"]["expiration"].as_u64().unwrap(),
                certs::unix_seconds(info.not_after) as u64
            );
            info.not_after
                .duration_since(SystemTime::now())
                .unwrap()
                .as_secs_f64()
        };
        let asked = ca
            .issue(&json!({"common_name": "localhost", "ttl": "90s"}))
            .unwrap();
        assert!((85.0..=90.0).contains(&lifetime_left(&asked)));
        let default = ca.issue(&json!({"common_name": "localhost"})).unwrap();
        assert!((115.0..=120.0).contains(&lifetime_left(&default)));
        let capped = ca
            .issue(&json!({"common_name": "localhost", "ttl": "48h"}))
            .unwrap();
        assert!((3595.0..=3600.0).contains(&lifetime_left(&capped)));
    }

    #[test]
    fn private_key_matches_the_certificate() {
        let ca = ca();
        for request in [
            json!({"common_name": "localhost"}),
            json!({"common_name": "localhost", "key_type": "ec", "key_bits": "384"}),
        ] {
            let answer = ca.issue(&request).unwrap();
            let (key, _) =
                crate::tls::pem::first_private_key(data(&answer, "private_key").as_bytes())
                    .unwrap();
            let cert = der(&data(&answer, "certificate"));
            assert_eq!(certs::key_matches(&cert, key.clone_key()), Ok(()));
            // And not another certificate's.
            let other = der(&data(&ca.issue(&request).unwrap(), "certificate"));
            assert_eq!(
                certs::key_matches(&other, key),
                Err(certs::PairError::Mismatch)
            );
        }
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let ca = ca();
        let refused = |request: serde_json::Value| ca.issue(&request).unwrap_err().to_string();
        assert!(refused(json!({})).contains("common_name"));
        assert!(refused(json!({"common_name": "a", "ttl": "soon"})).contains("ttl"));
        assert!(refused(json!({"common_name": "a", "key_type": "rsa"})).contains("EC keys only"));
        assert!(refused(json!({"common_name": "a", "ip_sans": "nope"})).contains("ip_sans"));
    }

    #[test]
    fn serials_differ() {
        let ca = ca();
        let serial = || {
            data(
                &ca.issue(&json!({"common_name": "a"})).unwrap(),
                "serial_number",
            )
        };
        assert_ne!(serial(), serial());
    }
    /// Every BOOLEAN in `der`, walking constructed values and the DER inside OCTET STRINGs
    /// (an extension's value), as their value bytes; `false` when `der` is not well formed.
    fn booleans(der: &[u8], out: &mut Vec<u8>) -> bool {
        let mut rest = der;
        while !rest.is_empty() {
            if rest.len() < 2 {
                return false;
            }
            let tag = rest[0];
            let (length, header) = match rest[1] {
                short @ 0..=0x7f => (usize::from(short), 2),
                0x81 if rest.len() > 2 => (usize::from(rest[2]), 3),
                0x82 if rest.len() > 3 => (usize::from(rest[2]) << 8 | usize::from(rest[3]), 4),
                _ => return false,
            };
            let Some(content) = rest.get(header..header + length) else {
                return false;
            };
            if tag == 0x01 {
                if length != 1 {
                    return false;
                }
                out.push(content[0]);
            } else if tag & 0x20 != 0 {
                if !booleans(content, out) {
                    return false;
                }
            } else if tag == 0x04 {
                // An extension's value is DER too; anything that is not parses as nothing.
                let mut inner = Vec::new();
                if booleans(content, &mut inner) {
                    out.extend(inner);
                }
            }
            rest = &rest[header + length..];
        }
        true
    }

    #[test]
    fn certificates_encode_no_default_false() {
        let ca = ca();
        let answer = ca.issue(&json!({"common_name": "localhost"})).unwrap();
        for (what, pem) in [
            ("leaf", data(&answer, "certificate")),
            ("intermediate", data(&answer, "issuing_ca")),
            ("root", ca.root_pem().to_string()),
        ] {
            let mut found = Vec::new();
            assert!(booleans(der(&pem).as_ref(), &mut found), "{what}: not DER");
            // DER leaves out a DEFAULT value: a BOOLEAN DEFAULT FALSE (cA, critical) is
            // either TRUE or absent.
            assert!(
                !found.is_empty(),
                "{what}: the walk found no critical extension"
            );
            assert!(found.iter().all(|b| *b == 0xff), "{what}: {found:?}");
        }
        let leaf = certs::CertInfo::parse(&der(&data(&answer, "certificate"))).unwrap();
        assert!(!leaf.is_ca);
    }
}
