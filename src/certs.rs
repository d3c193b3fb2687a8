//! Certificates and keys as files hold them: PEM blocks, the facts the agent and the proxy need
//! from an X.509 certificate, and whether a private key belongs to a certificate.
//!
//! PEM is written the way Go's `pem.EncodeToMemory` writes it (64-column base64, a trailing
//! newline), because Vault Agent templates print these strings and their output must match
//! Vault Agent's byte for byte. Parsing is lenient about what surrounds the blocks, strict
//! about their contents.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

/// One `-----BEGIN LABEL-----` block, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// `CERTIFICATE`, `RSA PRIVATE KEY`, ...
    pub label: String,
    /// The decoded bytes.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key blocks are secrets: show only what they are.
        write!(f, "PemBlock({}, {} bytes)", self.label, self.der.len())
    }
}

impl PemBlock {
    /// Whether this block is a private key of any format.
    pub fn is_private_key(&self) -> bool {
        self.label.ends_with("PRIVATE KEY")
    }

    /// The block re-encoded as Go's `pem.EncodeToMemory` would.
    pub fn to_pem(&self) -> String {
        encode_pem(&self.label, &self.der)
    }

    /// The block as a rustls private key, if it is one of the formats Vault issues.
    pub fn private_key(&self) -> Option<PrivateKeyDer<'static>> {
        let der = self.der.clone();
        match self.label.as_str() {
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
            _ => None,
        }
    }
}

/// Every PEM block in `text`, in order; text between blocks is ignored. A block whose base64
/// does not decode is an error.
pub fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after_begin = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after_begin.find("-----") else {
            return Err("a BEGIN line without its closing dashes".to_string());
        };
        let label = &after_begin[..label_end];
        let body_start = &after_begin[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            return Err(format!("no END line for the {label} block"));
        };
        let body: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|err| format!("the {label} block is not valid base64: {err}"))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

/// PEM as Go writes it: 64-column lines and a final newline.
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + label.len() * 2 + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // base64 output is ASCII, so any chunk boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// What the agent and the proxy read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number, lower-case hex with colons, as Vault prints it.
    pub serial: String,
    /// Subject common name, or empty.
    pub subject_cn: String,
    /// Issuer common name, or empty.
    pub issuer_cn: String,
    /// SHA-256 of the DER, lower-case hex.
    pub fingerprint_sha256: String,
    /// Whether it is a CA certificate (basic constraints).
    pub is_ca: bool,
    /// DNS names and IP addresses from the subject alternative name extension.
    pub names: Vec<String>,
}

impl CertInfo {
    /// Parses one DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|err| format!("not a valid X.509 certificate: {err}"))?;
        let time = |t: x509_parser::time::ASN1Time| {
            let seconds = t.timestamp();
            if seconds >= 0 {
                UNIX_EPOCH + Duration::from_secs(seconds as u64)
            } else {
                UNIX_EPOCH
            }
        };
        let common_name = |name: &x509_parser::x509::X509Name| {
            name.iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let serial = cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => {
                        names.push(dns.to_string())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                            names.push(std::net::Ipv4Addr::from(octets).to_string());
                        } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                            names.push(std::net::Ipv6Addr::from(octets).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(CertInfo {
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            serial,
            subject_cn: common_name(cert.subject()),
            issuer_cn: common_name(cert.issuer()),
            fingerprint_sha256: fingerprint,
            is_ca: cert.is_ca(),
            names,
        })
    }

    /// The validity period's length.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }
}

/// Whether `key` is the private key of the certificate `cert` (its public key matches).
pub fn key_matches(cert: &[u8], key: PrivateKeyDer<'static>) -> Result<bool, String> {
    let provider = crate::vault::tls::crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| format!("not a usable private key: {err}"))?;
    let certified =
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert.to_vec())], signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(true),
        Err(rustls::Error::InconsistentKeys(_)) => Ok(false),
        Err(err) => Err(format!(
            "cannot compare the key with the certificate: {err}"
        )),
    }
}

/// Unix seconds, for metrics.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap(), key)
    }

    #[test]
    fn pem_round_trips_in_go_layout() {
        let (cert, _) = self_signed(&["foo.home"]);
        let pem = cert.pem();
        let blocks = pem_blocks(&format!("junk before\n{pem}\njunk after")).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, cert.der().to_vec());
        let encoded = blocks[0].to_pem();
        assert!(encoded.ends_with("-----END CERTIFICATE-----\n"));
        assert!(encoded.lines().all(|line| line.len() <= 64));
        assert_eq!(pem_blocks(&encoded).unwrap(), blocks);
    }

    #[test]
    fn broken_pem_is_an_error() {
        assert!(
            pem_blocks("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err()
        );
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
        assert_eq!(pem_blocks("no pem here").unwrap(), vec![]);
    }

    #[test]
    fn cert_facts_are_read() {
        let (cert, _) = self_signed(&["foo.home", "localhost"]);
        let info = CertInfo::parse(cert.der()).unwrap();
        assert_eq!(info.names, vec!["foo.home", "localhost"]);
        assert!(!info.is_ca);
        assert_eq!(info.fingerprint_sha256.len(), 64);
        assert!(info.not_after > info.not_before);
    }

    #[test]
    fn keys_match_only_their_certificate() {
        let (cert, key) = self_signed(&["foo.home"]);
        let (_, other) = self_signed(&["foo.home"]);
        let der =
            |k: &rcgen::KeyPair| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()));
        assert_eq!(key_matches(cert.der(), der(&key)), Ok(true));
        assert_eq!(key_matches(cert.der(), der(&other)), Ok(false));
    }
}
