//! A measuring tool for the docs (not part of the product): the CPU a rustls server spends on
//! the TLS of one full TLS 1.3 handshake, for each cipher suite, with no network and no I/O.
//!
//! ```text
//! cargo run --release --example suite_cost [HANDSHAKES] [ROUNDS]
//! ```
//!
//! Client and server talk through memory, with the proxy's crypto provider, an ECDSA P-256
//! certificate, X25519 and no resumption; only the server's calls are timed. For each round
//! (3 by default) and each TLS 1.3 suite, HANDSHAKES (2,000 by default) handshakes are made and
//! one line printed: `round suite microseconds-per-handshake`. The suites alternate within a
//! round, so drift on a shared machine falls on all of them. What this isolates is what the
//! proxy's choice of suite changes (README, "Cipher suites"): the key schedule and transcript
//! hash run on SHA-384 for `TLS13_AES_256_GCM_SHA384` and on SHA-256 for the other two.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::aws_lc_rs::{cipher_suite, default_provider, kx_group};
use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: u32| -> Result<u32, String> {
        args.get(index).map_or(Ok(default), |text| {
            text.parse().map_err(|err| format!("{text}: {err}"))
        })
    };
    let (handshakes, rounds) = match (number(0, 2000), number(1, 3)) {
        (Ok(handshakes), Ok(rounds)) if handshakes > 0 => (handshakes, rounds),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("suite_cost: {err}; usage: suite_cost [HANDSHAKES] [ROUNDS]");
            return ExitCode::from(2);
        }
        _ => {
            eprintln!("suite_cost: HANDSHAKES must be at least 1");
            return ExitCode::from(2);
        }
    };
    match run(handshakes, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("suite_cost: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(handshakes: u32, rounds: u32) -> Result<(), Box<dyn std::error::Error>> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["server.test".to_string()])?.self_signed(&key)?;
    let cert = CertificateDer::from(cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut server_provider = default_provider();
    server_provider.kx_groups = vec![kx_group::X25519];
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(server_provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)?,
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let suites = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    for round in 1..=rounds {
        for suite in suites {
            let mut provider = default_provider();
            provider.kx_groups = vec![kx_group::X25519];
            provider.cipher_suites = vec![suite];
            let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            client.resumption = rustls::client::Resumption::disabled();
            let client = Arc::new(client);
            let mut spent = Duration::ZERO;
            for _ in 0..handshakes {
                spent += handshake(&client, &server)?;
            }
            println!(
                "{round} {:?} {:.1}",
                suite.suite(),
                spent.as_secs_f64() * 1e6 / f64::from(handshakes)
            );
        }
    }
    Ok(())
}

/// One full handshake through memory; the time spent in the server's calls.
fn handshake(
    client: &Arc<rustls::ClientConfig>,
    server: &Arc<rustls::ServerConfig>,
) -> Result<Duration, rustls::Error> {
    let name = ServerName::try_from("server.test").expect("a valid name");
    let mut client = ClientConnection::new(client.clone(), name)?;
    let mut server = ServerConnection::new(server.clone())?;
    let mut spent = Duration::ZERO;
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    loop {
        to_server.clear();
        while client.wants_write() {
            client.write_tls(&mut to_server).expect("writes to memory");
        }
        let started = Instant::now();
        let mut input = &to_server[..];
        while !input.is_empty() {
            server.read_tls(&mut input).expect("reads from memory");
            server.process_new_packets()?;
        }
        to_client.clear();
        while server.wants_write() {
            server.write_tls(&mut to_client).expect("writes to memory");
        }
        spent += started.elapsed();
        let mut input = &to_client[..];
        while !input.is_empty() {
            client.read_tls(&mut input).expect("reads from memory");
            client.process_new_packets()?;
        }
        if to_server.is_empty() && to_client.is_empty() {
            break;
        }
    }
    if client.is_handshaking() || server.is_handshaking() {
        return Err(rustls::Error::General(
            "the handshake did not complete".into(),
        ));
    }
    Ok(spent)
}
