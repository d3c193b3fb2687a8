//! The `check tls` and `check pair` probes: one-shot commands for Kubernetes exec probes and for
//! people troubleshooting, replacing `openssl s_client ... | openssl x509 -checkend` and the
//! `openssl pkey -pubout` / `openssl x509 -pubkey` comparison in an image that has no shell.
//!
//! This module owns the probes' output (facts on stdout, one `label: value` per line; problems
//! on stderr) and their exit codes: 0 healthy, 1 unhealthy (the check ran and the answer is no),
//! 2 the check could not run (no connection, no handshake, an unreadable file). It must not
//! write files, send anything over the connection after the handshake, or print key material.
//!
//! The decisions (is this certificate fit now, which name to send and verify) are pure functions
//! of their inputs and `now`; only [`run_tls`] and [`run_pair`] read the clock,
//! files and the network.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use zeroize::Zeroizing;

use crate::certs::{self, CertInfo, PairError};
use crate::timefmt::{format_duration, rfc3339};
use crate::tls::pem;
use crate::tls::{AcceptAnyCertificate, crypto_provider, kx_group_name, read_certificates};

/// Exit code of a check that ran and found the certificate or pair unhealthy.
pub(crate) const EXIT_UNHEALTHY: u8 = 1;
/// Exit code of a check that could not run: no connection, no handshake, an unreadable file.
pub(crate) const EXIT_COULD_NOT_RUN: u8 = 2;

/// How long `check tls` waits for the TCP connection; a probe must answer before its own
/// Kubernetes timeout rather than hang on a black-holed address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `check tls` waits for the TLS handshake once connected.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `check tls` connects to and asks of the served certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProbe {
    /// Where to connect, `HOST:PORT`.
    pub connect: String,
    /// SNI name to send and verify, instead of the host.
    pub servername: Option<String>,
    /// CA bundle to verify the chain against.
    pub cacert: Option<PathBuf>,
    /// Unhealthy if the certificate expires within this.
    pub checkend: Duration,
}

/// `check tls`: prints what it found and returns its exit code.
pub fn run_tls(probe: &TlsProbe) -> ExitCode {
    report("check tls", tls(probe, SystemTime::now()))
}

/// `check pair`: prints what it found and returns its exit code.
pub fn run_pair(cert: &Path, key: &Path) -> ExitCode {
    report("check pair", pair(cert, key, SystemTime::now()))
}

/// Prints a probe's finding (or why it could not run) and chooses the exit code.
fn report(name: &str, result: Result<Finding, CouldNotRun>) -> ExitCode {
    match result {
        Ok(finding) => {
            print!("{}", render(&finding.fields));
            for problem in &finding.problems {
                eprintln!("pki-sidecar {name}: {problem}");
            }
            if finding.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_UNHEALTHY)
            }
        }
        Err(why) => {
            eprintln!("pki-sidecar {name}: {why}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
    }
}

/// What a probe that ran found: facts to print, and the problems that make it unhealthy.
#[derive(Debug, Default)]
pub(crate) struct Finding {
    pub(crate) fields: Vec<(&'static str, String)>,
    pub(crate) problems: Vec<Problem>,
}

impl Finding {
    fn field(&mut self, label: &'static str, value: impl fmt::Display) {
        self.fields.push((label, value.to_string()));
    }

    fn problem(&mut self, problem: impl fmt::Display) {
        self.problems.push(Problem::Other(problem.to_string()));
    }
}

/// What makes a probe's answer "unhealthy"; the variants callers branch on are their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The key is a good key, but not the certificate's.
    KeyMismatch(String),
    /// Anything else, in words.
    Other(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Problem::KeyMismatch(text) | Problem::Other(text)) = self;
        f.write_str(text)
    }
}

/// Why a probe could not run (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CouldNotRun {
    /// No TCP connection to the target.
    Connect(String),
    /// Anything else: a file that cannot be read, a handshake that failed.
    Other(String),
}

impl fmt::Display for CouldNotRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (CouldNotRun::Connect(text) | CouldNotRun::Other(text)) = self;
        f.write_str(text)
    }
}

/// The one place output is laid out: `label:` padded to a column, then the value.
fn render(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(label, _)| label.len() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in fields {
        let label = format!("{label}:");
        out.push_str(&format!("{label:<width$} {value}\n"));
    }
    out
}

/// Why a certificate is not fit for use at a given moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// `now` is before notBefore.
    NotYetValid {
        /// notBefore.
        not_before: SystemTime,
        /// How long until it becomes valid.
        starts_in: Duration,
    },
    /// `now` is after notAfter.
    Expired {
        /// notAfter.
        not_after: SystemTime,
        /// How long ago it expired.
        ago: Duration,
    },
    /// Valid now, but notAfter comes before `now + checkend`.
    ExpiresWithin {
        /// notAfter.
        not_after: SystemTime,
        /// How long it stays valid.
        remaining: Duration,
        /// The margin asked for.
        checkend: Duration,
    },
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfit::NotYetValid {
                not_before,
                starts_in,
            } => write!(
                f,
                "the certificate is not valid yet: its notBefore is {} (in {})",
                date(*not_before),
                seconds(*starts_in)
            ),
            Unfit::Expired { not_after, ago } => write!(
                f,
                "the certificate expired at {} ({} ago)",
                date(*not_after),
                seconds(*ago)
            ),
            Unfit::ExpiresWithin {
                not_after,
                remaining,
                checkend,
            } => write!(
                f,
                "the certificate expires within --checkend {}: at {} (in {})",
                seconds(*checkend),
                date(*not_after),
                seconds(*remaining)
            ),
        }
    }
}

/// Whether a certificate valid from `not_before` to `not_after` (both inclusive, as in X.509)
/// is valid at `now` and still at `now + checkend`, as `openssl x509 -checkend` decides; `Ok`
/// holds how long it remains valid.
pub(crate) fn fitness(
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
    checkend: Duration,
) -> Result<Duration, Unfit> {
    if let Ok(starts_in) = not_before.duration_since(now)
        && !starts_in.is_zero()
    {
        return Err(Unfit::NotYetValid {
            not_before,
            starts_in,
        });
    }
    let remaining = match not_after.duration_since(now) {
        Ok(remaining) => remaining,
        Err(past) => {
            return Err(Unfit::Expired {
                not_after,
                ago: past.duration(),
            });
        }
    };
    if remaining < checkend {
        return Err(Unfit::ExpiresWithin {
            not_after,
            remaining,
            checkend,
        });
    }
    Ok(remaining)
}

/// The facts printed for any certificate, in the order people read them.
fn certificate_fields(info: &CertInfo, now: SystemTime) -> Vec<(&'static str, String)> {
    let or_none = |text: &str, none: &str| {
        if text.is_empty() {
            none.to_string()
        } else {
            text.to_string()
        }
    };
    let expiry = match info.not_after.duration_since(now) {
        Ok(remaining) => seconds(remaining),
        Err(past) => format!("expired {} ago", seconds(past.duration())),
    };
    vec![
        ("subject", or_none(&info.subject_cn, "(no common name)")),
        ("issuer", or_none(&info.issuer_cn, "(no common name)")),
        ("names", or_none(&info.names.join(", "), "(none)")),
        ("serial", info.serial.clone()),
        ("not before", date(info.not_before)),
        ("not after", date(info.not_after)),
        ("expires in", expiry),
    ]
}

/// RFC 3339, UTC, whole seconds.
fn date(time: SystemTime) -> String {
    rfc3339(time)
}

/// `1d2h3m4s`, rounded down to whole seconds: certificate times have no finer grain.
fn seconds(duration: Duration) -> String {
    format_duration(Duration::from_secs(duration.as_secs()))
}

// ---------------------------------------------------------------------------------------------
// check pair

/// `check pair`'s examination, also `doctor`'s certificate step.
pub(crate) fn pair(cert: &Path, key: &Path, now: SystemTime) -> Result<Finding, CouldNotRun> {
    // Both files are read before anything is judged, so a missing key is exit 2 even when the
    // certificate is also bad.
    let cert_text = read_text(cert)?;
    let key_text = read_text(key)?;
    let cert_path = cert.display();
    let key_path = key.display();

    let mut finding = Finding::default();
    finding.field("certificate", &cert_path);
    let parsed =
        first_certificate(&cert_text).and_then(|der| CertInfo::parse(&der).map(|info| (der, info)));
    let (cert_der, info) = match parsed {
        Ok(parsed) => parsed,
        Err(why) => {
            finding.problem(format!("{cert_path}: {why}"));
            return Ok(finding);
        }
    };
    finding.fields.extend(certificate_fields(&info, now));

    match pem::first_private_key(key_text.as_bytes()) {
        Ok((key, format)) => {
            finding.field("key", format!("{key_path} ({format})"));
            match certs::key_matches(&cert_der, key) {
                Ok(()) => finding.field("pair", "key matches certificate"),
                Err(PairError::Mismatch) => {
                    finding.field("pair", "key does NOT match certificate");
                    finding.problems.push(Problem::KeyMismatch(format!(
                        "the key in {key_path} does not match the certificate in {cert_path}"
                    )));
                }
                Err(why) => {
                    finding.field("pair", "key could not be compared");
                    finding.problem(format!("{key_path}: {why}"));
                }
            }
        }
        Err(why) => {
            finding.field("key", &key_path);
            finding.problem(format!("{key_path}: {why}"));
        }
    }

    if let Err(unfit) = fitness(info.not_before, info.not_after, now, Duration::ZERO) {
        finding.problem(format!("{cert_path}: {unfit}"));
    }
    Ok(finding)
}

/// A file's text; failing to read it at all means the check cannot run.
/// A file's text, wiped from memory when dropped (it may be a private key).
fn read_text(path: &Path) -> Result<Zeroizing<String>, CouldNotRun> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|err| CouldNotRun::Other(format!("cannot read {}: {err}", path.display())))?,
    );
    // Lossy: a binary (DER) file then simply has no PEM block, which is reported as such.
    Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The first certificate: the leaf, in a chain file written leaf first.
pub(crate) fn first_certificate(text: &str) -> Result<Vec<u8>, String> {
    let certificates =
        pem::certificates(text.as_bytes()).map_err(|why| format!("not valid PEM: {why}"))?;
    certificates
        .into_iter()
        .next()
        .map(|cert| cert.to_vec())
        .ok_or_else(|| "no PEM certificate in the file".to_string())
}

// ---------------------------------------------------------------------------------------------
// check tls

/// Where `check tls` connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// A DNS name or an IP address (IPv6 without its brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST:PORT`, `IPv4:PORT` or `[IPv6]:PORT`.
pub(crate) fn parse_connect(text: &str) -> Result<Target, String> {
    let invalid = |why: &str| format!("--connect {text:?}: {why}");
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected HOST:PORT"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| invalid("no closing ] after the IPv6 address"))?;
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| invalid("not an IPv6 address between [ and ]"))?;
        inner
    } else if host.contains(':') {
        return Err(invalid("an IPv6 address goes in brackets: [ADDRESS]:PORT"));
    } else {
        host
    };
    if host.is_empty() {
        return Err(invalid("no host before the port"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| invalid("the port is not a number from 1 to 65535"))?;
    Ok(Target {
        host: host.to_string(),
        port,
    })
}

/// The name sent as SNI and verified: `--servername`, else the host. An IP address gives no
/// SNI (rustls sends none for addresses, as RFC 6066 requires) and is verified as an IP SAN.
pub(crate) fn server_name(
    target: &Target,
    servername: Option<&str>,
) -> Result<ServerName<'static>, String> {
    let name = servername.unwrap_or(&target.host);
    ServerName::try_from(name.to_string()).map_err(|_| {
        if servername.is_some() {
            format!("--servername {name:?} is not a DNS name or IP address")
        } else {
            format!("the host {name:?} is not a DNS name or IP address; give --servername")
        }
    })
}

/// How the chain check went, when `--cacert` asked for one.
#[derive(Debug)]
enum ChainCheck {
    NotAsked,
    Passed,
    Failed(rustls::Error),
}

/// What the handshake left behind.
pub(crate) struct Served {
    peer: std::net::SocketAddr,
    protocol: String,
    /// The key-exchange group the handshake used (`X25519MLKEM768`, `X25519`, ...).
    key_exchange: String,
    /// The cipher suite the handshake settled on (`TLS13_AES_128_GCM_SHA256`, ...).
    cipher: String,
    /// The certificates the server sent, leaf first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    chain_check: ChainCheck,
}

fn tls(args: &TlsProbe, now: SystemTime) -> Result<Finding, CouldNotRun> {
    let target = parse_connect(&args.connect).map_err(CouldNotRun::Other)?;
    let name = server_name(&target, args.servername.as_deref()).map_err(CouldNotRun::Other)?;
    let roots = match &args.cacert {
        Some(path) => Some(ca_bundle(path)?),
        None => None,
    };
    let served = served(&target, name.clone(), roots)?;
    let checkend = args.checkend;
    Ok(assess_served(
        &target,
        &name,
        args.cacert.as_deref(),
        served,
        now,
        checkend,
    ))
}

/// One handshake with `target` on a runtime of its own; what the server showed.
pub(crate) fn served(
    target: &Target,
    name: ServerName<'static>,
    roots: Option<RootCertStore>,
) -> Result<Served, CouldNotRun> {
    // One connection, so one thread: the probe stays small and starts fast.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CouldNotRun::Other(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(handshake(target, name, roots))
}

/// The trusted CAs from `--cacert`; a file that cannot be used means the check cannot run.
fn ca_bundle(path: &Path) -> Result<RootCertStore, CouldNotRun> {
    let could_not_run =
        |why: String| CouldNotRun::Other(format!("--cacert {}: {why}", path.display()));
    let certs = read_certificates(path).map_err(|err| could_not_run(format!("{err:#}")))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|err| could_not_run(format!("a certificate is not a usable CA: {err}")))?;
    }
    Ok(roots)
}

/// Connects, completes one handshake, and keeps what the server showed; sends nothing else.
async fn handshake(
    target: &Target,
    name: ServerName<'static>,
    roots: Option<RootCertStore>,
) -> Result<Served, CouldNotRun> {
    let provider = crypto_provider();
    let chain_verifier = match roots {
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|err| {
                    CouldNotRun::Other(format!("cannot build a verifier from --cacert: {err}"))
                })?,
        ),
        None => None,
    };
    let verifier = Arc::new(ProbeVerifier {
        signatures: AcceptAnyCertificate(provider.clone()),
        chain_verifier,
        chain_result: OnceLock::new(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| {
            CouldNotRun::Other(format!("the crypto provider cannot do TLS 1.2/1.3: {err}"))
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| {
        CouldNotRun::Connect(format!(
            "cannot connect to {target}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|err| CouldNotRun::Connect(format!("cannot connect to {target}: {err}")))?;
    let peer = tcp
        .peer_addr()
        .map_err(|err| CouldNotRun::Connect(format!("cannot connect to {target}: {err}")))?;

    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| {
            CouldNotRun::Other(format!(
                "the TLS handshake with {target} ({peer}) did not finish within {}s",
                HANDSHAKE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|err| {
            let hint = if err.kind() == std::io::ErrorKind::UnexpectedEof {
                " (the server closed the connection: is it serving TLS, and does it have a \
                 certificate yet?)"
            } else {
                ""
            };
            CouldNotRun::Other(format!(
                "the TLS handshake with {target} ({peer}) failed: {err}{hint}"
            ))
        })?;
    let (_, connection) = stream.get_ref();
    let chain = connection
        .peer_certificates()
        .map(|chain| chain.iter().map(|cert| cert.clone().into_owned()).collect())
        .unwrap_or_default();
    let protocol = connection
        .protocol_version()
        .map_or_else(|| "unknown".to_string(), |version| format!("{version:?}"));
    // A full handshake always has one; only a resumed TLS 1.2 session (which this one-shot
    // client never makes) would not.
    let key_exchange = connection
        .negotiated_key_exchange_group()
        .map_or_else(|| "none".to_string(), |group| kx_group_name(group.name()));
    let cipher = connection.negotiated_cipher_suite().map_or_else(
        || "none".to_string(),
        |suite| format!("{:?}", suite.suite()),
    );
    let chain_check = match verifier.chain_result.get() {
        None if verifier.chain_verifier.is_none() => ChainCheck::NotAsked,
        // A handshake that completed has called verify_server_cert; a missing result would
        // mean it did not, and is treated as a failure rather than a pass.
        None => ChainCheck::Failed(rustls::Error::General(
            "the server certificate was never verified".to_string(),
        )),
        Some(Ok(())) => ChainCheck::Passed,
        Some(Err(err)) => ChainCheck::Failed(err.clone()),
    };
    // Dropping the stream closes the connection; nothing was sent after the handshake.
    drop(stream);
    Ok(Served {
        peer,
        protocol,
        key_exchange,
        cipher,
        chain,
        chain_check,
    })
}

/// Turns what the server showed into facts and problems.
fn assess_served(
    target: &Target,
    name: &ServerName<'_>,
    cacert: Option<&Path>,
    served: Served,
    now: SystemTime,
    checkend: Duration,
) -> Finding {
    let mut finding = Finding::default();
    let connected = if target.to_string() == served.peer.to_string() {
        target.to_string()
    } else {
        format!("{target} ({})", served.peer)
    };
    finding.field("connected", connected);
    finding.field(
        "servername",
        match name {
            ServerName::DnsName(dns) => dns.as_ref().to_string(),
            other => format!("none sent (verifying as {})", other.to_str()),
        },
    );
    finding.field("protocol", &served.protocol);
    finding.field("kx group", &served.key_exchange);
    finding.field("cipher", &served.cipher);
    let Some(leaf) = served.chain.first() else {
        finding.problem(format!(
            "{target} completed a handshake without a certificate"
        ));
        return finding;
    };
    let info = match CertInfo::parse(leaf) {
        Ok(info) => info,
        Err(why) => {
            finding.problem(format!("the served certificate: {why}"));
            return finding;
        }
    };
    finding.fields.extend(certificate_fields(&info, now));
    finding.field(
        "chain",
        format!("{} certificate(s) sent", served.chain.len()),
    );
    match (&served.chain_check, cacert) {
        (ChainCheck::Passed, Some(ca)) => finding.field(
            "verified",
            format!("yes, against {} as {}", ca.display(), name.to_str()),
        ),
        (ChainCheck::Failed(err), Some(ca)) => {
            finding.field("verified", format!("FAILED against {}", ca.display()));
            finding.problem(format!(
                "the served certificate does not verify against CA {}: {err}",
                ca.display()
            ));
        }
        _ => finding.field("verified", "no (no --cacert given)"),
    }
    if let Err(unfit) = fitness(info.not_before, info.not_after, now, checkend) {
        finding.problem(format!("{target}: {unfit}"));
    }
    finding
}

/// Verifies handshake signatures always and the chain only when `--cacert` was given — and even
/// then lets the handshake finish, recording the chain's verdict, so the probe can show the
/// certificate that failed (as `openssl s_client` does). Accepting an unverified peer is safe
/// here because the probe sends nothing over the connection.
#[derive(Debug)]
struct ProbeVerifier {
    /// Checks the handshake signatures (and nothing about the chain).
    signatures: AcceptAnyCertificate,
    chain_verifier: Option<Arc<WebPkiServerVerifier>>,
    /// Set once, by the one handshake this verifier serves.
    chain_result: OnceLock<Result<(), rustls::Error>>,
}

impl ServerCertVerifier for ProbeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain_verifier) = &self.chain_verifier {
            let result = chain_verifier
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ());
            // A second call cannot happen on one connection; if it did, the first verdict
            // stands.
            let _ = self.chain_result.set(result);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn fitness_follows_openssl_checkend() {
        let (start, end) = (at(1_000), at(2_000));
        let fit = |now, checkend| fitness(start, end, at(now), Duration::from_secs(checkend));
        assert_eq!(fit(1_500, 0), Ok(Duration::from_secs(500)));
        // Both ends are inclusive, as in X.509.
        assert_eq!(fit(1_000, 0), Ok(Duration::from_secs(1_000)));
        assert_eq!(fit(2_000, 0), Ok(Duration::ZERO));
        assert_eq!(fit(1_500, 500), Ok(Duration::from_secs(500)));
        assert_eq!(
            fit(1_500, 501),
            Err(Unfit::ExpiresWithin {
                not_after: end,
                remaining: Duration::from_secs(500),
                checkend: Duration::from_secs(501),
            })
        );
        assert_eq!(
            fit(2_001, 0),
            Err(Unfit::Expired {
                not_after: end,
                ago: Duration::from_secs(1),
            })
        );
        assert_eq!(
            fit(999, 0),
            Err(Unfit::NotYetValid {
                not_before: start,
                starts_in: Duration::from_secs(1),
            })
        );
        // Expired wins over the margin: it is the more urgent news.
        assert!(matches!(fit(3_000, 3_600), Err(Unfit::Expired { .. })));
    }

    #[test]
    fn unfit_messages_say_which_and_when() {
        let expired = Unfit::Expired {
            not_after: at(86_400),
            ago: Duration::from_secs(3_661),
        };
        assert_eq!(
            expired.to_string(),
            "the certificate expired at 1970-01-02T00:00:00Z (1h1m1s ago)"
        );
        let soon = Unfit::ExpiresWithin {
            not_after: at(30),
            remaining: Duration::from_millis(29_900),
            checkend: Duration::from_secs(3_600),
        };
        assert_eq!(
            soon.to_string(),
            "the certificate expires within --checkend 1h: at 1970-01-01T00:00:30Z (in 29s)"
        );
        let early = Unfit::NotYetValid {
            not_before: at(86_400),
            starts_in: Duration::from_secs(86_400),
        };
        assert!(early.to_string().contains("not valid yet"));
        assert!(early.to_string().contains("(in 1d)"));
    }

    #[test]
    fn connect_addresses_parse() {
        let target = |host: &str, port| Target {
            host: host.to_string(),
            port,
        };
        assert_eq!(parse_connect("localhost:443"), Ok(target("localhost", 443)));
        assert_eq!(parse_connect("10.0.0.1:8443"), Ok(target("10.0.0.1", 8443)));
        assert_eq!(parse_connect("[::1]:443"), Ok(target("::1", 443)));
        assert_eq!(target("::1", 443).to_string(), "[::1]:443");
        for bad in [
            "localhost",
            "::1:443",
            "[::1:443",
            "[foo]:443",
            ":443",
            "host:0",
            "host:x",
        ] {
            assert!(parse_connect(bad).is_err(), "{bad}");
        }
        assert!(
            parse_connect("::1:443")
                .unwrap_err()
                .contains("an IPv6 address goes in brackets")
        );
    }

    #[test]
    fn server_name_defaults_to_the_host() {
        let dns = parse_connect("localhost:443").unwrap_or_else(|e| panic!("{e}"));
        let ip = parse_connect("[::1]:443").unwrap_or_else(|e| panic!("{e}"));
        let name =
            |target, servername| server_name(target, servername).map(|n| n.to_str().into_owned());
        assert_eq!(name(&dns, None), Ok("localhost".to_string()));
        assert_eq!(name(&dns, Some("foo.home")), Ok("foo.home".to_string()));
        assert!(matches!(
            server_name(&ip, None),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name(&ip, Some("foo.home")),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name(&dns, Some("not a name")).is_err());
    }

    #[test]
    fn fields_line_up() {
        let text = render(&[
            ("subject", "foo".to_string()),
            ("not before", "x".to_string()),
        ]);
        assert_eq!(text, "subject:    foo\nnot before: x\n");
    }
}
