//! A load client for the benches (not part of the product): full TLS 1.3 handshakes with a
//! rustls client offering one key-exchange group, each followed by one HTTP/1.1 request, as
//! `openssl s_time -new -www /` does them — which OpenSSL 3.0's tools cannot do for the hybrid
//! post-quantum group `X25519MLKEM768`.
//!
//! ```text
//! handshakes HOST:PORT SERVERNAME CA_FILE GROUP SECONDSs|COUNT [CONNECTIONS]
//! ```
//!
//! GROUP is `X25519MLKEM768`, `X25519`, `secp256r1` or `secp384r1`. CONNECTIONS clients (one by
//! default) each connect, complete a full handshake (no resumption), send `GET /` with `Connection:
//! close`, read the response to its end and start again, for SECONDS (`10s`) or until COUNT
//! handshakes were attempted in all (`500`: what a profile wants). The server's certificate
//! is verified against CA_FILE as SERVERNAME. Prints one line: `handshakes failed group
//! protocol suite`, where group, protocol and cipher suite are what the last handshake
//! negotiated (the client offers its provider's suites, AES-256-GCM first, as OpenSSL's do);
//! exits 1 when a handshake negotiated another group than asked for, or when none succeeded.
//!
//! GROUP `plain` drops TLS: the same request on a new TCP connection each time, to a server
//! without TLS: the floor a handshake is measured against (bench/proxy.sh). SERVERNAME is then
//! only the Host header, CA_FILE is not read, and the line says `plain none none`. GROUP
//! `plain-rt` adds the round trip a TLS 1.3 handshake makes before the request: on each new
//! connection, `GET /flight` first (keep-alive; its `200` response, a body the size of a server's
//! handshake flight, read by its Content-Length), then the request as for `plain`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "usage: handshakes HOST:PORT SERVERNAME CA_FILE \
                     X25519MLKEM768|X25519|secp256r1|secp384r1|plain|plain-rt SECONDSs|COUNT \
                     [CONNECTIONS]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("handshakes: {err}");
            ExitCode::from(2)
        }
    }
}

fn group(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    Ok(match name {
        "X25519MLKEM768" => kx_group::X25519MLKEM768,
        "X25519" => kx_group::X25519,
        "secp256r1" => kx_group::SECP256R1,
        "secp384r1" => kx_group::SECP384R1,
        other => return Err(format!("unknown group {other:?}; {USAGE}")),
    })
}

/// What the clients speak.
#[derive(Clone)]
enum Mode {
    /// TLS 1.3 through this connector, which offers only this group.
    Tls(&'static dyn SupportedKxGroup, tokio_rustls::TlsConnector),
    /// HTTP/1.1 without TLS.
    Plain,
    /// HTTP/1.1 without TLS, with the round trip a TLS 1.3 handshake adds: first `GET /flight`
    /// on the same connection (answered by the server itself), then the request. Holds that
    /// first request.
    PlainRoundTrip(String),
}

/// What one client loop did.
#[derive(Default)]
struct Tally {
    handshakes: u64,
    failed: u64,
    wrong_group: Option<String>,
    protocol: String,
    suite: String,
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    if !(5..=6).contains(&args.len()) {
        return Err(USAGE.to_string());
    }
    let address: SocketAddr = args[0]
        .parse()
        .map_err(|err| format!("{}: {err}", args[0]))?;
    let name =
        ServerName::try_from(args[1].clone()).map_err(|err| format!("{}: {err}", args[1]))?;
    let mode = match args[3].as_str() {
        "plain" => Mode::Plain,
        "plain-rt" => {
            Mode::PlainRoundTrip(format!("GET /flight HTTP/1.1\r\nHost: {}\r\n\r\n", args[1]))
        }
        other => {
            let wanted = group(other)?;
            Mode::Tls(wanted, connector(wanted, &args[2])?)
        }
    };
    let limit = match args[4].strip_suffix('s') {
        Some(seconds) => Limit::Until(
            Instant::now()
                + Duration::from_secs_f64(
                    seconds
                        .parse()
                        .map_err(|err| format!("SECONDS {}: {err}", args[4]))?,
                ),
        ),
        None => Limit::Count(Arc::new(AtomicU64::new(
            args[4]
                .parse()
                .map_err(|err| format!("COUNT {}: {err}", args[4]))?,
        ))),
    };
    let connections: usize = match args.get(5) {
        Some(text) => text
            .parse()
            .map_err(|err| format!("CONNECTIONS {text}: {err}"))?,
        None => 1,
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        args[1]
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (mode, name, request) = (mode.clone(), name.clone(), request.clone());
                let limit = limit.clone();
                tokio::spawn(client(address, mode, name, request, limit))
            })
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.map_err(|err| err.to_string())?);
        }
        Ok::<_, String>(tallies)
    })?;
    let mut total = Tally::default();
    for tally in tallies {
        total.handshakes += tally.handshakes;
        total.failed += tally.failed;
        total.wrong_group = total.wrong_group.or(tally.wrong_group);
        if !tally.protocol.is_empty() {
            total.protocol = tally.protocol;
            total.suite = tally.suite;
        }
    }
    println!(
        "{} {} {} {} {}",
        total.handshakes,
        total.failed,
        total.wrong_group.as_deref().unwrap_or(&args[3]),
        if total.protocol.is_empty() {
            "none"
        } else {
            &total.protocol
        },
        if total.suite.is_empty() {
            "none"
        } else {
            &total.suite
        }
    );
    if let Some(other) = total.wrong_group {
        eprintln!("handshakes: the server chose {other}, not {}", args[3]);
        return Ok(ExitCode::FAILURE);
    }
    if total.handshakes == 0 {
        eprintln!(
            "handshakes: no handshake succeeded ({} failed)",
            total.failed
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A TLS connector offering only `wanted`, trusting the certificates of `ca_file`.
fn connector(
    wanted: &'static dyn SupportedKxGroup,
    ca_file: &str,
) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|err| format!("{ca_file}: {err}"))? {
        let cert = cert.map_err(|err| format!("{ca_file}: {err}"))?;
        roots.add(cert).map_err(|err| format!("{ca_file}: {err}"))?;
    }
    let mut provider = default_provider();
    provider.kx_groups = vec![wanted];
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| err.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// When the clients stop.
#[derive(Clone)]
enum Limit {
    /// At this instant.
    Until(Instant),
    /// When this many more handshakes were started, by all clients together.
    Count(Arc<AtomicU64>),
}

impl Limit {
    /// Whether a client may start another handshake (and counts it).
    fn another(&self) -> bool {
        match self {
            Limit::Until(deadline) => Instant::now() < *deadline,
            Limit::Count(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// One client: handshakes and requests, one after another, until the limit.
async fn client(
    address: SocketAddr,
    mode: Mode,
    name: ServerName<'static>,
    request: String,
    limit: Limit,
) -> Tally {
    let mut tally = Tally::default();
    let mut buffer = vec![0u8; 16 * 1024];
    while limit.another() {
        let Ok(tcp) = tokio::net::TcpStream::connect(address).await else {
            tally.failed += 1;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let received = match &mode {
            Mode::Tls(wanted, connector) => {
                let Ok(mut tls) = connector.connect(name.clone(), tcp).await else {
                    tally.failed += 1;
                    continue;
                };
                tally.note(tls.get_ref().1, *wanted);
                exchange(&mut tls, &request, &mut buffer).await
            }
            Mode::Plain => {
                let mut tcp = tcp;
                exchange(&mut tcp, &request, &mut buffer).await
            }
            Mode::PlainRoundTrip(flight) => {
                let mut tcp = tcp;
                if flight_round_trip(&mut tcp, flight, &mut buffer).await {
                    exchange(&mut tcp, &request, &mut buffer).await
                } else {
                    None
                }
            }
        };
        match received {
            Some(response) if response.starts_with(b"HTTP/1.1 200") => tally.handshakes += 1,
            _ => tally.failed += 1,
        }
    }
    tally
}

impl Tally {
    /// Notes what a handshake negotiated: its protocol and cipher suite, and a group other than
    /// the one asked for.
    fn note(&mut self, connection: &rustls::ClientConnection, wanted: &dyn SupportedKxGroup) {
        let negotiated = connection.negotiated_key_exchange_group();
        if negotiated.map(|group| group.name()) != Some(wanted.name()) {
            self.wrong_group = Some(
                negotiated
                    .map_or_else(|| "none".to_string(), |group| format!("{:?}", group.name())),
            );
        }
        self.protocol = connection
            .protocol_version()
            .map_or_else(String::new, |version| format!("{version:?}"));
        self.suite = connection
            .negotiated_cipher_suite()
            .map_or_else(String::new, |suite| format!("{:?}", suite.suite()));
    }
}

/// Sends `request` and reads one `200` response with a `Content-Length` body, leaving the
/// connection open; false when any of that fails.
async fn flight_round_trip(
    io: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin),
    request: &str,
    buffer: &mut [u8],
) -> bool {
    if io.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            return false;
        }
        match io.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
        let received = &buffer[..filled];
        let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok());
        match length {
            Some(length) if head.starts_with("http/1.1 200") => {
                let total = head_end + 4 + length;
                if filled >= total {
                    return filled == total;
                }
            }
            _ => return false,
        }
    }
}

/// Sends `request` and reads the response to the connection's end; `None` when the request
/// could not be written.
async fn exchange(
    io: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin),
    request: &str,
    buffer: &mut [u8],
) -> Option<Vec<u8>> {
    io.write_all(request.as_bytes()).await.ok()?;
    let mut received = Vec::new();
    loop {
        match io.read(buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    Some(received)
}
