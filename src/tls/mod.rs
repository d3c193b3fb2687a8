//! The crate's TLS toolbox: the one crypto provider, PEM ([`pem`]), trusted roots, and rustls
//! client configs — used by the Vault client, the proxy, the probes, the certificate API and
//! `dev`. It knows nothing of the config file or of any role: callers pass plain paths.
//!
//! [`client_config`] is TLS as Vault's clients do it: which CAs are trusted, which name is
//! verified, which client certificate is shown (Vault's `VAULT_CACERT`, `VAULT_CAPATH`,
//! `VAULT_TLS_SERVER_NAME`, `VAULT_SKIP_VERIFY`, `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`). As in
//! Vault, a CA file or directory replaces the system's CAs rather than adding to them. Files
//! are read once, when the config is built; a missing or empty CA file is an error then, not
//! at the first request. The one exception is the system's store for a client whose server
//! speaks plain HTTP ([`ClientSettings::system_roots_on_first_use`]): its TLS config serves only
//! a redirect to `https://`, so the store (hundreds of files under /etc/ssl/certs) is read at
//! the first certificate to verify, if one ever comes, instead of delaying the agent's start.

pub(crate) mod client_hello;
pub mod pem;
pub(crate) mod stream;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The process's crypto provider (installed by `main`), or aws-lc-rs for unit tests.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The key-exchange groups every TLS server of the crate offers, in order: the hybrid
/// post-quantum group first (X25519 with ML-KEM-768, what current browsers send first), then the
/// classical X25519, P-256 and P-384. rustls's server takes the first group of the *client's*
/// list that is in this set (asking for another key share with a HelloRetryRequest when the
/// client sent none for it), so a client offering only X25519 or only P-256 still connects, and
/// a client offering the hybrid group gets it.
pub const SERVER_KX_GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] = &[
    rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768,
    rustls::crypto::aws_lc_rs::kx_group::X25519,
    rustls::crypto::aws_lc_rs::kx_group::SECP256R1,
    rustls::crypto::aws_lc_rs::kx_group::SECP384R1,
];

/// The process's provider with [`SERVER_KX_GROUPS`] as its key-exchange groups and its cipher
/// suites in [`CipherPreference::Aes`]'s order: what the proxy's and the webhook's TLS servers
/// are built with. Stated here rather than taken from the provider's defaults, so a change of
/// rustls feature or version cannot silently drop the hybrid group or change the order.
pub fn server_provider() -> Arc<CryptoProvider> {
    server_provider_preferring(CipherPreference::Aes)
}

/// Which bulk cipher a TLS server puts first when it chooses the cipher suite itself (rustls's
/// `ignore_client_order`), as Go's TLS server does.
///
/// AES-128-GCM comes before AES-256-GCM: both are beyond reach, and the 256-bit suites hash
/// the whole TLS 1.3 key schedule and transcript with SHA-384, which CPUs accelerate less than
/// SHA-256 (aws-lc has no SHA-512 code using AVX on AMD processors; measured there by
/// `examples/suite_cost.rs`, a server's share of a full handshake is about 20 µs less with
/// `TLS_AES_128_GCM_SHA256` than with `TLS_AES_256_GCM_SHA384`). OpenSSL's and rustls's
/// clients list the 256-bit suites first, browsers the 128-bit ones. ChaCha20-Poly1305 comes
/// first only for a client that lists it before every AES-GCM suite, the sign of a device
/// without AES instructions
/// ([`client_hello::HelloReader::prefers_chacha20`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CipherPreference {
    /// AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.
    Aes,
    /// ChaCha20-Poly1305, AES-128-GCM, AES-256-GCM.
    ChaCha20,
}

impl CipherPreference {
    /// Where a suite of `bulk` comes in this order (lower first).
    fn rank(self, bulk: Bulk) -> u8 {
        match (self, bulk) {
            (CipherPreference::Aes, Bulk::Aes128)
            | (CipherPreference::ChaCha20, Bulk::ChaCha20) => 0,
            (CipherPreference::Aes, Bulk::Aes256) | (CipherPreference::ChaCha20, Bulk::Aes128) => 1,
            (CipherPreference::Aes, Bulk::ChaCha20)
            | (CipherPreference::ChaCha20, Bulk::Aes256) => 2,
            (_, Bulk::Other) => 3,
        }
    }
}

/// The bulk cipher of a cipher suite, as far as [`CipherPreference`] orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bulk {
    Aes128,
    Aes256,
    ChaCha20,
    Other,
}

/// The bulk cipher of `suite` (TLS 1.3 or 1.2).
pub(crate) fn bulk_cipher(suite: rustls::CipherSuite) -> Bulk {
    use rustls::CipherSuite as S;
    match suite {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Bulk::Aes128,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Bulk::Aes256,
        S::TLS13_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Bulk::ChaCha20,
        _ => Bulk::Other,
    }
}

/// [`server_provider`] with its cipher suites in `preference`'s order (the provider's own order
/// kept among suites of the same bulk cipher).
pub(crate) fn server_provider_preferring(preference: CipherPreference) -> Arc<CryptoProvider> {
    let mut provider = (*crypto_provider()).clone();
    provider.kx_groups = SERVER_KX_GROUPS.to_vec();
    provider
        .cipher_suites
        .sort_by_key(|suite| preference.rank(bulk_cipher(suite.suite())));
    Arc::new(provider)
}

/// A key-exchange group's name as the TLS registry spells it (`X25519MLKEM768`, `X25519`,
/// `secp256r1`): what `check tls` prints.
pub fn kx_group_name(group: rustls::NamedGroup) -> String {
    format!("{group:?}")
}

/// What the client trusts, in words for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// `ca_cert` / `VAULT_CACERT`.
    CaFile(String),
    /// `ca_path` / `VAULT_CAPATH`.
    CaDirectory(String),
    /// The operating system's store.
    System,
    /// `tls_skip_verify`.
    Nothing,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::CaFile(path) => write!(f, "the CA file {path}"),
            Trust::CaDirectory(path) => write!(f, "the CA directory {path}"),
            Trust::System => f.write_str("the system's CA certificates"),
            Trust::Nothing => f.write_str("nothing (tls_skip_verify)"),
        }
    }
}

/// What a client trusts and shows, as Vault's client settings say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientSettings {
    /// PEM bundle of CAs that sign the server's certificate (`ca_cert`).
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM CA files (`ca_path`).
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Accept any server certificate (handshake signatures are still checked).
    pub tls_skip_verify: bool,
    /// The name to verify instead of the address's host.
    pub tls_server_name: Option<String>,
    /// Read the system's CA store at the first certificate to verify rather than now (a
    /// client of an `http://` server, which needs TLS only if redirected). Without `ca_cert`
    /// and `ca_path` only; a store with no certificate then fails that handshake, not the
    /// config.
    pub system_roots_on_first_use: bool,
}

/// A rustls client config for `settings` (messages name Vault's keys, `vault.ca_cert` and so
/// on), and a description of what it trusts.
pub(crate) fn client_config(
    settings: &ClientSettings,
) -> anyhow::Result<(rustls::ClientConfig, Trust)> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the crypto provider supports neither TLS 1.2 nor 1.3")?;

    let (verifier, trust): (Arc<dyn ServerCertVerifier>, Trust) = if settings.tls_skip_verify {
        (
            Arc::new(AcceptAnyCertificate(provider.clone())),
            Trust::Nothing,
        )
    } else {
        let name = match &settings.tls_server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).with_context(|| {
                format!("vault.tls_server_name {name:?} is not a DNS name or IP")
            })?),
            None => None,
        };
        if settings.system_roots_on_first_use
            && settings.ca_cert.is_none()
            && settings.ca_path.is_none()
        {
            let lazy = LazySystemRoots {
                provider: provider.clone(),
                name,
                verifier: OnceLock::new(),
            };
            (Arc::new(lazy), Trust::System)
        } else {
            let (roots, trust) = root_store(settings)?;
            (verifier_for(roots, &provider, name)?, trust)
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match &settings.client_cert {
        Some((cert, key)) => {
            with_client_cert(builder, cert, key, "vault.client_cert", "vault.client_key")?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((tls, trust))
}

/// A rustls client config for the proxy's `https://` upstream (`proxy.upstream_tls`): its
/// certificate verified against `ca_file` (else the system's CAs) when `verify`, else any
/// accepted (handshake signatures still checked); a `client` certificate and key; the name
/// sent (SNI) only with `sni`. No ALPN: HTTP/1.1, as nginx speaks to its upstreams.
pub(crate) fn upstream_client_config(
    verify: bool,
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
    sni: bool,
) -> anyhow::Result<rustls::ClientConfig> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("the crypto provider supports neither TLS 1.2 nor 1.3")?;
    let verifier: Arc<dyn ServerCertVerifier> = if !verify {
        Arc::new(AcceptAnyCertificate(provider.clone()))
    } else {
        let roots = match ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certificates(path)
                    .with_context(|| format!("upstream_tls.ca_file {}", path.display()))?
                {
                    roots.add(cert).with_context(|| {
                        format!(
                            "upstream_tls.ca_file {}: a certificate rustls refuses",
                            path.display()
                        )
                    })?;
                }
                roots
            }
            None => {
                let mut roots = RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    bail!(
                        "upstream_tls: no system CA certificates to verify the upstream with: \
                         give upstream_tls.ca_file"
                    );
                }
                roots
            }
        };
        verifier_for(roots, &provider, None)?
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match client {
        Some((cert, key)) => with_client_cert(
            builder,
            cert,
            key,
            "upstream_tls.cert_file",
            "upstream_tls.key_file",
        )?,
        None => builder.with_no_client_auth(),
    };
    tls.enable_sni = sni;
    Ok(tls)
}

/// `builder` with the client certificate chain in `cert` and the key in `key`; messages name
/// them by their settings, `cert_key` and `key_key`.
fn with_client_cert(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    cert: &Path,
    key: &Path,
    cert_key: &str,
    key_key: &str,
) -> anyhow::Result<rustls::ClientConfig> {
    let chain =
        read_certificates(cert).with_context(|| format!("{cert_key} {}", cert.display()))?;
    let key_text = std::fs::read(key)
        .with_context(|| format!("{key_key} {}: cannot read the file", key.display()))?;
    let (key_der, _) = pem::first_private_key(&key_text)
        .map_err(|err| anyhow::anyhow!("{key_key} {}: {err}", key.display()))?;
    builder
        .with_client_auth_cert(chain, key_der)
        .with_context(|| format!("{cert_key} {} and its key do not match", cert.display()))
}

/// A verifier of certificates chaining to `roots`, for `name` instead of the address's host
/// when given (`tls_server_name`).
fn verifier_for(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
    name: Option<ServerName<'static>>,
) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("cannot build a certificate verifier from the trusted CAs")?;
    Ok(match name {
        Some(name) => Arc::new(VerifyAs {
            name,
            inner: webpki,
        }),
        None => webpki,
    })
}

/// The operating system's CA certificates; an error when there are none.
fn system_roots() -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate is skipped, as Go does.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        bail!(
            "no system CA certificates found (and no vault.ca_cert / VAULT_CACERT given); \
             set VAULT_CACERT to the CA that signs Vault's certificate"
        );
    }
    Ok(roots)
}

fn root_store(settings: &ClientSettings) -> anyhow::Result<(RootCertStore, Trust)> {
    if settings.ca_cert.is_none() && settings.ca_path.is_none() {
        return Ok((system_roots()?, Trust::System));
    }
    let mut roots = RootCertStore::empty();
    let mut trust = Trust::System;
    if let Some(path) = &settings.ca_path {
        let entries = std::fs::read_dir(path).with_context(|| {
            format!(
                "vault.ca_path {}: cannot read the directory",
                path.display()
            )
        })?;
        for entry in entries {
            let file = entry?.path();
            if file.is_file() {
                for cert in read_certificates(&file).unwrap_or_default() {
                    let _ = roots.add(cert);
                }
            }
        }
        if roots.is_empty() {
            bail!(
                "vault.ca_path {}: no PEM certificate in any file",
                path.display()
            );
        }
        trust = Trust::CaDirectory(path.display().to_string());
    }
    if let Some(path) = &settings.ca_cert {
        let certs =
            read_certificates(path).with_context(|| format!("vault.ca_cert {}", path.display()))?;
        for cert in certs {
            roots.add(cert).with_context(|| {
                format!(
                    "vault.ca_cert {}: a certificate is not a usable CA",
                    path.display()
                )
            })?;
        }
        trust = Trust::CaFile(path.display().to_string());
    }
    Ok((roots, trust))
}

/// Whether a failed server handshake was a client speaking plain HTTP (or anything but TLS)
/// to a TLS port: rustls read a first byte that is no TLS record type (`G` of `GET`).
pub(crate) fn is_plain_text_client(err: &std::io::Error) -> bool {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        })
}

/// What to log for a failed server handshake: plain HTTP on the TLS port is said in words
/// (rustls's own is `received corrupt message of type InvalidContentType`).
pub(crate) const PLAIN_HTTP_ON_TLS_PORT: &str =
    "plain HTTP request on the TLS port; this port speaks TLS: use https://";

/// Every certificate in a PEM file; an error if it has none.
pub(crate) fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let text = std::fs::read(path).context("cannot read the file")?;
    let certs = pem::certificates(&text).map_err(|err| anyhow::anyhow!("not valid PEM: {err}"))?;
    if certs.is_empty() {
        bail!("no PEM certificate in the file");
    }
    Ok(certs)
}

/// Verifies the server's certificate for a fixed name (`tls_server_name`) instead of the host
/// in the address.
#[derive(Debug)]
struct VerifyAs {
    name: ServerName<'static>,
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The system's CA store, read when the first certificate is to be verified
/// ([`ClientSettings::system_roots_on_first_use`]). The handshake signatures need no roots and
/// are checked with the provider's algorithms, as [`WebPkiServerVerifier`] does.
#[derive(Debug)]
struct LazySystemRoots {
    provider: Arc<CryptoProvider>,
    name: Option<ServerName<'static>>,
    /// The verifier over the store, or why there is none (kept: the store is read once).
    verifier: OnceLock<Result<Arc<dyn ServerCertVerifier>, String>>,
}

impl ServerCertVerifier for LazySystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = self.verifier.get_or_init(|| {
            system_roots()
                .and_then(|roots| verifier_for(roots, &self.provider, self.name.clone()))
                .map_err(|err| format!("{err:#}"))
        });
        match verifier {
            Ok(verifier) => verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Err(why) => Err(rustls::Error::General(why.clone())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `tls_skip_verify` (and the `check tls` probe's signature checks): any certificate is
/// accepted, but handshake signatures are still checked so the session is at least bound to
/// the key the server showed.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server with no certificate: enough to read a first record.
    #[derive(Debug)]
    struct NoCertificate;

    impl rustls::server::ResolvesServerCert for NoCertificate {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }

    /// The error rustls's server gives for `bytes` as a client's first flight, as
    /// tokio-rustls hands it over (an `io::Error` of kind `InvalidData`).
    fn server_error_for(bytes: &[u8]) -> std::io::Error {
        let config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate));
        let mut server = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut input = bytes;
        server.read_tls(&mut input).unwrap();
        let err = server.process_new_packets().unwrap_err();
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }

    #[test]
    fn servers_offer_the_hybrid_group_first_then_the_classical_ones() {
        let names: Vec<String> = server_provider()
            .kx_groups
            .iter()
            .map(|group| kx_group_name(group.name()))
            .collect();
        assert_eq!(
            names,
            ["X25519MLKEM768", "X25519", "secp256r1", "secp384r1"]
        );
    }

    #[test]
    fn system_roots_read_on_first_use_still_verify() {
        let settings = ClientSettings {
            system_roots_on_first_use: true,
            ..ClientSettings::default()
        };
        let (_, trust) = client_config(&settings).unwrap();
        assert_eq!(trust, Trust::System);
        let lazy = LazySystemRoots {
            provider: crypto_provider(),
            name: None,
            verifier: OnceLock::new(),
        };
        assert!(!lazy.supported_verify_schemes().is_empty());
        assert!(
            lazy.verifier.get().is_none(),
            "read before a certificate came"
        );
        // A certificate the system does not trust is refused, as with the store read up
        // front.
        let leaf = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .unwrap()
            .cert
            .der()
            .clone();
        let name = ServerName::try_from("localhost").unwrap();
        let err = lazy
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(lazy.verifier.get().is_some());
        if lazy.verifier.get().unwrap().is_ok() {
            assert_eq!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            );
        } else {
            // No system store on this machine: the handshake fails with the reason.
            assert!(
                err.to_string().contains("no system CA certificates"),
                "{err}"
            );
        }
    }

    #[test]
    fn plain_http_on_a_tls_port_is_recognised() {
        let err = server_error_for(b"GET / HTTP/1.1\r\nHost: foo.home\r\n\r\n");
        assert!(err.to_string().contains("InvalidContentType"), "{err}");
        assert!(is_plain_text_client(&err));
        assert!(PLAIN_HTTP_ON_TLS_PORT.contains("this port speaks TLS"));
        // A well-formed TLS record that ends the handshake (a fatal alert) is another failure.
        let alert = server_error_for(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]);
        assert!(!is_plain_text_client(&alert), "{alert}");
        assert!(!is_plain_text_client(&std::io::Error::other("reset")));
    }
}
