//! PEM, the one way this crate reads and writes it: certificate chains, keys and CA bundles in
//! the agent's templates and files, the proxy's pair, the probes' inputs, Vault's CA settings.
//!
//! Parsing is the `pem` crate's (any label, text around blocks ignored), plus one check it does
//! not make: a `BEGIN` line without its `END` is an error, not a silently shorter file. Writing
//! follows Go's `pem.EncodeToMemory` (64-column base64, `\n` line ends, a final newline),
//! because Vault Agent templates print these strings and their output must match Vault
//! Agent's byte for byte. This module knows nothing of X.509: see [`crate::certs`].

use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use zeroize::Zeroize as _;

/// The label of a certificate block.
pub(crate) const CERTIFICATE: &str = "CERTIFICATE";

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

impl Drop for PemBlock {
    fn drop(&mut self) {
        if self.is_private_key() {
            self.der.zeroize();
        }
    }
}

impl PemBlock {
    /// Whether this block is a certificate.
    pub(crate) fn is_certificate(&self) -> bool {
        self.label == CERTIFICATE
    }

    /// Whether this block is a private key of any format.
    pub fn is_private_key(&self) -> bool {
        self.label.ends_with("PRIVATE KEY")
    }

    /// The block re-encoded as Go's `pem.EncodeToMemory` would.
    pub fn to_pem(&self) -> String {
        encode(&self.label, &self.der)
    }

    /// The block as a rustls certificate, if it is one.
    pub(crate) fn certificate(&self) -> Option<CertificateDer<'static>> {
        self.is_certificate()
            .then(|| CertificateDer::from(self.der.clone()))
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

    /// The usual name of the key format this block's label says, for messages.
    pub(crate) fn key_format(&self) -> &'static str {
        match self.label.as_str() {
            "RSA PRIVATE KEY" => "PKCS#1",
            "EC PRIVATE KEY" => "SEC1",
            "PRIVATE KEY" => "PKCS#8",
            _ => "unknown format",
        }
    }
}

/// Every PEM block in `text`, in order; text between blocks is ignored. A block whose base64
/// does not decode, whose END label differs from its BEGIN, or that has no END is an error.
pub fn blocks(text: impl AsRef<[u8]>) -> Result<Vec<PemBlock>, String> {
    let text = text.as_ref();
    let parsed = ::pem::parse_many(text).map_err(|err| err.to_string())?;
    let begins = text
        .windows(b"-----BEGIN ".len())
        .filter(|window| *window == b"-----BEGIN ")
        .count();
    if begins > parsed.len() {
        return Err("a BEGIN line has no matching END line".to_string());
    }
    Ok(parsed
        .into_iter()
        .map(|block| PemBlock {
            label: block.tag().to_string(),
            der: block.into_contents(),
        })
        .collect())
}

/// Every certificate in `text`, in order (other blocks are skipped).
pub fn certificates(text: impl AsRef<[u8]>) -> Result<Vec<CertificateDer<'static>>, String> {
    Ok(blocks(text)?
        .iter()
        .filter_map(PemBlock::certificate)
        .collect())
}

/// The first private key in `text` in a format Vault issues, with its format's name. Errors
/// say whether there was no key at all or one in a format that cannot be used.
pub fn first_private_key(
    text: impl AsRef<[u8]>,
) -> Result<(PrivateKeyDer<'static>, &'static str), String> {
    let blocks = blocks(text).map_err(|why| format!("not valid PEM: {why}"))?;
    if let Some(found) = blocks
        .iter()
        .find_map(|block| block.private_key().map(|key| (key, block.key_format())))
    {
        return Ok(found);
    }
    match blocks.iter().find(|block| block.is_private_key()) {
        Some(block) => Err(format!(
            "its {} block is not a supported key format (PKCS#1, PKCS#8 or SEC1, unencrypted)",
            block.label
        )),
        None => Err("no PEM private key in the file".to_string()),
    }
}

/// PEM as Go writes it: 64-column lines, `\n` line ends, a final newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let config = ::pem::EncodeConfig::new()
        .set_line_ending(::pem::LineEnding::LF)
        .set_line_wrap(64);
    ::pem::encode_config(&::pem::Pem::new(label, der), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["foo.home".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
    }

    #[test]
    fn pem_round_trips_in_go_layout() {
        let cert = self_signed();
        let text = format!("junk before\n{}\njunk after", cert.pem());
        let found = blocks(text.as_bytes()).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].is_certificate());
        assert_eq!(found[0].der, cert.der().to_vec());
        let encoded = found[0].to_pem();
        assert!(encoded.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(encoded.ends_with("-----END CERTIFICATE-----\n"));
        assert!(!encoded.contains('\r'));
        assert!(encoded.lines().all(|line| line.len() <= 64));
        assert_eq!(blocks(encoded.as_bytes()).unwrap(), found);
        // Windows line ends read the same.
        let crlf = encoded.replace('\n', "\r\n");
        assert_eq!(blocks(crlf.as_bytes()).unwrap(), found);
    }

    #[test]
    fn broken_pem_is_an_error() {
        for broken in [
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(blocks(broken.as_bytes()).is_err(), "{broken:?}");
        }
        assert_eq!(blocks(b"no pem here").unwrap(), vec![]);
    }

    #[test]
    fn keys_are_found_or_explained() {
        let key = rcgen::KeyPair::generate().unwrap();
        let (_, format) = first_private_key(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(format, "PKCS#8");
        let encrypted = encode("ENCRYPTED PRIVATE KEY", b"x");
        let err = first_private_key(encrypted.as_bytes()).unwrap_err();
        assert!(err.contains("not a supported key format"), "{err}");
        let err = first_private_key(self_signed().pem().as_bytes()).unwrap_err();
        assert_eq!(err, "no PEM private key in the file");
    }
}
