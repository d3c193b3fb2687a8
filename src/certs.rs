//! The one certificate API: the facts the agent, the proxy, the probes and `doctor` need from
//! an X.509 certificate ([`CertInfo`]), and whether a private key belongs to a certificate
//! ([`certified_key`], [`key_matches`]) — one function for all of them, so the agent's reuse
//! check, the proxy's reload, `check pair` and `doctor` cannot disagree about a pair. PEM is
//! [`crate::tls::pem`]'s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
        let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)
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

/// Why a key and a certificate chain do not make a pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// The key cannot be loaded by the crypto provider (an unsupported algorithm or size).
    #[error("not a usable private key: {0}")]
    UnusableKey(String),
    /// The chain is empty.
    #[error("no certificate")]
    NoCertificate,
    /// The key is a good key, but not the certificate's.
    #[error("the key does not match the certificate")]
    Mismatch,
    /// The certificate's public key cannot be compared with the key.
    #[error("cannot compare the key with the certificate: {0}")]
    Incomparable(String),
}

/// The chain (leaf first) and `key` as rustls serves them, once the key is known to be the
/// leaf's.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, PairError> {
    if chain.is_empty() {
        return Err(PairError::NoCertificate);
    }
    let provider = crate::tls::crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| PairError::UnusableKey(err.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(PairError::Mismatch),
        Err(err) => Err(PairError::Incomparable(err.to_string())),
    }
}

/// Whether `key` is the private key of the DER certificate `cert`: `Ok(())`, or why not.
pub fn key_matches(cert: &[u8], key: PrivateKeyDer<'static>) -> Result<(), PairError> {
    certified_key(vec![CertificateDer::from(cert.to_vec())], key).map(drop)
}

/// Unix seconds, for metrics.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::PrivatePkcs8KeyDer;

    fn self_signed(names: &[&str]) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap(), key)
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
        assert_eq!(key_matches(cert.der(), der(&key)), Ok(()));
        assert_eq!(
            key_matches(cert.der(), der(&other)),
            Err(PairError::Mismatch)
        );
    }
}
