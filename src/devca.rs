//! The development CA behind `pki-sidecar dev`: a root and an intermediate generated in memory
//! at start, issuing leaf certificates the way Vault's `pki/issue/ROLE` endpoint does.
//!
//! It answers an issue request with Vault's JSON shape (`certificate`, `private_key`,
//! `private_key_type`, `issuing_ca`, `ca_chain`, `serial_number`, `expiration`) so the agent's
//! template code reads it exactly as it reads Vault's answer. It honours the request's
//! `common_name`, `alt_names`, `ip_sans`, `uri_sans`, `ttl` (capped at the CA's `max_ttl`),
//! `exclude_cn_from_sans`, `key_type` and `key_bits` (a request without them gets the CA's
//! [`LeafKey`], as a Vault role's own `key_type`/`key_bits` decide); other parameters are
//! ignored, as a permissive Vault role would. It must never be used outside development: its keys live
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

/// The type and size of the keys the development CA generates for its leaves, as a Vault
/// role's `key_type` and `key_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKey {
    /// ECDSA on P-256 (`key_bits` 256) or P-384 (384).
    Ec { bits: u16 },
    /// RSA of 2048, 3072 or 4096 bits (signed with SHA-256).
    Rsa { bits: u16 },
}

impl Default for LeafKey {
    fn default() -> LeafKey {
        LeafKey::Ec { bits: 256 }
    }
}

impl LeafKey {
    /// Reads a `key_type` (`ec`, `rsa`) and `key_bits` (0: the type's default, as in Vault:
    /// 256 for EC, 2048 for RSA).
    pub fn parse(key_type: &str, key_bits: u32) -> Result<LeafKey, String> {
        match (key_type, key_bits) {
            ("ec", 0 | 256) => Ok(LeafKey::Ec { bits: 256 }),
            ("ec", 384) => Ok(LeafKey::Ec { bits: 384 }),
            ("ec", bits) => Err(format!(
                "key_bits={bits}: the development CA issues EC keys of 256 or 384 bits"
            )),
            ("rsa", 0 | 2048) => Ok(LeafKey::Rsa { bits: 2048 }),
            ("rsa", bits @ (3072 | 4096)) => Ok(LeafKey::Rsa { bits: bits as u16 }),
            ("rsa", bits) => Err(format!(
                "key_bits={bits}: the development CA issues RSA keys of 2048, 3072 or 4096 bits"
            )),
            (other, _) => Err(format!(
                "key_type={other}: the development CA issues key_type=ec or key_type=rsa"
            )),
        }
    }

    /// The `key_type` word: `ec` or `rsa` (Vault's `private_key_type`).
    pub fn key_type(self) -> &'static str {
        match self {
            LeafKey::Ec { .. } => "ec",
            LeafKey::Rsa { .. } => "rsa",
        }
    }

    /// The key size in bits.
    pub fn bits(self) -> u16 {
        match self {
            LeafKey::Ec { bits } | LeafKey::Rsa { bits } => bits,
        }
    }

    /// A new key pair of this type.
    fn generate(self) -> Result<KeyPair, rcgen::Error> {
        let size = match self {
            LeafKey::Ec { bits: 384 } => {
                return KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384);
            }
            LeafKey::Ec { .. } => return KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            LeafKey::Rsa { bits: 4096 } => rcgen::RsaKeySize::_4096,
            LeafKey::Rsa { bits: 3072 } => rcgen::RsaKeySize::_3072,
            LeafKey::Rsa { .. } => rcgen::RsaKeySize::_2048,
        };
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
    }
}

/// A root and an intermediate CA, in memory, issuing leaf certificates.
pub struct DevCa {
    root_pem: String,
    intermediate: CertifiedIssuer<'static, KeyPair>,
    default_ttl: Duration,
    max_ttl: Duration,
    /// The leaf key of a request that names no `key_type`.
    leaf_key: LeafKey,
    /// What "now" is when a leaf is issued (tests run it on tokio's paused time).
    clock: Clock,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The issuer holds a private key: print only what is public.
        f.debug_struct("DevCa")
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("leaf_key", &self.leaf_key)
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Generates a fresh root and intermediate (ECDSA P-256). A request without `ttl` gets
    /// `default_ttl`; none gets more than `max_ttl`. Leaves get ECDSA P-256 keys unless
    /// [`DevCa::with_leaf_key`] or the request says otherwise.
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
            leaf_key: LeafKey::default(),
            clock: Clock::System,
        })
    }

    /// The same CA, generating `leaf_key` keys for requests that name no `key_type` (the role's
    /// `key_type` and `key_bits` in Vault).
    pub fn with_leaf_key(mut self, leaf_key: LeafKey) -> DevCa {
        self.leaf_key = leaf_key;
        self
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

        let leaf_key = self.leaf_key(field("key_type").as_deref(), field("key_bits").as_deref())?;
        let key = leaf_key.generate()?;
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
        // Vault's role default (`key_usage`): an RSA key can also encipher a TLS 1.2 RSA key
        // exchange's premaster secret.
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyAgreement,
        ];
        if let LeafKey::Rsa { .. } = leaf_key {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
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
                "private_key_type": leaf_key.key_type(),
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

    /// The leaf key a request asks for: its `key_type` and `key_bits`, else the CA's own
    /// (`key_type=any` and a missing type mean the CA's; `key_bits` alone applies to it).
    fn leaf_key(
        &self,
        key_type: Option<&str>,
        key_bits: Option<&str>,
    ) -> Result<LeafKey, DevCaError> {
        let bits = match key_bits {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                DevCaError::BadRequest(format!("key_bits={text}: not a number of bits"))
            })?),
        };
        let key = match (key_type.unwrap_or("any"), bits) {
            ("any", None) => return Ok(self.leaf_key),
            ("any", Some(bits)) => LeafKey::parse(self.leaf_key.key_type(), bits),
            (key_type, bits) => LeafKey::parse(key_type, bits.unwrap_or(0)),
        };
        key.map_err(DevCaError::BadRequest)
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

    /// The leaf's public key as (`rsa` or `ec`, bits), read from the certificate.
    fn leaf_public_key(answer: &serde_json::Value) -> (&'static str, usize) {
        use x509_parser::prelude::*;
        use x509_parser::public_key::PublicKey;
        let cert = der(&data(answer, "certificate"));
        let (_, parsed) = X509Certificate::from_der(cert.as_ref()).unwrap();
        match parsed.public_key().parsed().unwrap() {
            PublicKey::RSA(rsa) => ("rsa", rsa.key_size()),
            PublicKey::EC(point) => ("ec", point.key_size()),
            other => panic!("unexpected public key {other:?}"),
        }
    }

    /// The leaf's private key from an answer.
    fn private_key(answer: &serde_json::Value) -> rustls_pki_types::PrivateKeyDer<'static> {
        crate::tls::pem::first_private_key(data(answer, "private_key").as_bytes())
            .unwrap()
            .0
    }

    #[test]
    fn rsa_keys_of_each_size_match_their_certificates() {
        let ca = ca();
        let mut answers = Vec::new();
        for (bits, expected) in [(None, 2048), (Some("3072"), 3072), (Some("4096"), 4096)] {
            let mut request = json!({"common_name": "localhost", "key_type": "rsa"});
            if let Some(bits) = bits {
                request["key_bits"] = json!(bits);
            }
            let answer = ca.issue(&request).unwrap();
            let cert = der(&data(&answer, "certificate"));
            assert_eq!(
                certs::key_matches(&cert, private_key(&answer)),
                Ok(()),
                "{request}"
            );
            assert_eq!(leaf_public_key(&answer), ("rsa", expected), "{request}");
            assert_eq!(data(&answer, "private_key_type"), "rsa");
            verify(&ca, &answer, "localhost").unwrap();
            answers.push(answer);
        }
        // A key is not another RSA certificate's.
        let other = der(&data(&answers[1], "certificate"));
        assert_eq!(
            certs::key_matches(&other, private_key(&answers[0])),
            Err(certs::PairError::Mismatch)
        );
    }

    #[test]
    fn the_cas_leaf_key_applies_to_requests_that_name_no_key_type() {
        let rsa = ca().with_leaf_key(LeafKey::parse("rsa", 0).unwrap());
        let answer = rsa.issue(&json!({"common_name": "localhost"})).unwrap();
        let cert = der(&data(&answer, "certificate"));
        assert_eq!(certs::key_matches(&cert, private_key(&answer)), Ok(()));
        assert_eq!(leaf_public_key(&answer), ("rsa", 2048));
        assert_eq!(data(&answer, "private_key_type"), "rsa");
        verify(&rsa, &answer, "localhost").unwrap();
        // A request's key_type wins, as the CA's default only fills what is missing.
        let ec = rsa
            .issue(&json!({"common_name": "localhost", "key_type": "ec"}))
            .unwrap();
        assert_eq!(leaf_public_key(&ec), ("ec", 256));
        assert_eq!(data(&ec, "private_key_type"), "ec");
        // key_bits alone resizes the CA's type.
        let bigger = rsa
            .issue(&json!({"common_name": "localhost", "key_bits": 3072}))
            .unwrap();
        assert_eq!(leaf_public_key(&bigger), ("rsa", 3072));
        // The default stays EC P-256.
        let default = ca().issue(&json!({"common_name": "localhost"})).unwrap();
        assert_eq!(leaf_public_key(&default), ("ec", 256));
    }

    #[test]
    fn leaf_key_parse_follows_vaults_defaults() {
        assert_eq!(LeafKey::parse("ec", 0), Ok(LeafKey::Ec { bits: 256 }));
        assert_eq!(LeafKey::parse("ec", 384), Ok(LeafKey::Ec { bits: 384 }));
        assert_eq!(LeafKey::parse("rsa", 0), Ok(LeafKey::Rsa { bits: 2048 }));
        assert_eq!(LeafKey::parse("rsa", 4096), Ok(LeafKey::Rsa { bits: 4096 }));
        assert!(LeafKey::parse("rsa", 256).is_err());
        assert!(LeafKey::parse("ec", 2048).is_err());
        assert!(LeafKey::parse("ed25519", 0).is_err());
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let ca = ca();
        let refused = |request: serde_json::Value| ca.issue(&request).unwrap_err().to_string();
        assert!(refused(json!({})).contains("common_name"));
        assert!(refused(json!({"common_name": "a", "ttl": "soon"})).contains("ttl"));
        assert!(refused(json!({"common_name": "a", "key_type": "dsa"})).contains("key_type=dsa"));
        assert!(
            refused(json!({"common_name": "a", "key_type": "rsa", "key_bits": "1024"}))
                .contains("2048, 3072 or 4096")
        );
        assert!(refused(json!({"common_name": "a", "key_bits": "521"})).contains("256 or 384"));
        assert!(refused(json!({"common_name": "a", "key_bits": "big"})).contains("key_bits=big"));
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
