//! A measuring tool for the benches (not part of the product): what the cryptography a TLS 1.3
//! server must do for one full handshake costs with the proxy's crypto provider (aws-lc-rs),
//! and nothing else: the CertificateVerify signature and the server's side of the key exchange.
//!
//! ```text
//! crypto_cost SECONDS KEY_FILE...
//! ```
//!
//! For each private key (PEM: PKCS#8, SEC1 or PKCS#1) the signature scheme a TLS 1.3 server
//! would choose for it (ECDSA with SHA-256 for P-256, RSA-PSS with SHA-256 for RSA), and for each
//! of the groups X25519 and X25519MLKEM768 the server's share (a key pair, then the shared
//! secret; for the hybrid group the ML-KEM-768 encapsulation too) against a client's share made
//! beforehand. Each is repeated for SECONDS (split over 3 rounds, the measures alternating
//! within a round so drift on a shared machine falls on all of them) and printed as one line,
//! `sign SCHEME microseconds` or `kx GROUP microseconds`: the median round's wall time per
//! operation. Run it pinned to one otherwise idle core (`taskset -c 0`), where wall time is the
//! core's time. bench/proxy.sh adds these to the floor of a plain TCP connection to get the
//! least a full handshake could cost.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::SignatureScheme;
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
use rustls::sign::SigningKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

const ROUNDS: u32 = 3;

/// The schemes a TLS 1.3 server picks from, in its order.
const SCHEMES: [SignatureScheme; 3] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
];

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crypto_cost: {err}; usage: crypto_cost SECONDS KEY_FILE...");
            ExitCode::from(2)
        }
    }
}

/// One operation to time.
enum Measure {
    Sign(SignatureScheme, Arc<dyn SigningKey>),
    Kx(&'static dyn SupportedKxGroup, Vec<u8>),
}

impl Measure {
    fn label(&self) -> String {
        match self {
            Measure::Sign(scheme, _) => format!("sign {scheme:?}"),
            Measure::Kx(group, _) => format!("kx {:?}", group.name()),
        }
    }

    /// Runs the operation for about `budget`; the time per operation.
    fn time(&self, budget: Duration) -> Result<Duration, String> {
        // What a TLS 1.3 CertificateVerify signs: 64 spaces, the context string, a zero byte
        // and the transcript hash.
        let message = [0x20u8; 130];
        let started = Instant::now();
        let mut operations = 0u32;
        while operations == 0 || started.elapsed() < budget {
            match self {
                Measure::Sign(scheme, key) => {
                    let signer = key
                        .choose_scheme(&[*scheme])
                        .ok_or_else(|| format!("the key cannot sign with {scheme:?}"))?;
                    signer.sign(&message).map_err(|err| err.to_string())?;
                }
                Measure::Kx(group, client_share) => {
                    group
                        .start_and_complete(client_share)
                        .map_err(|err| err.to_string())?;
                }
            }
            operations += 1;
        }
        Ok(started.elapsed() / operations)
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (seconds, key_files) = match args.split_first() {
        Some((seconds, key_files)) if !key_files.is_empty() => (seconds, key_files),
        _ => return Err("no key file".to_string()),
    };
    let seconds: f64 = seconds
        .parse()
        .map_err(|err| format!("SECONDS {seconds}: {err}"))?;
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("SECONDS {seconds} is not a positive number"));
    }
    let provider = default_provider();
    let mut measures = Vec::new();
    for file in key_files {
        let der = PrivateKeyDer::from_pem_file(file).map_err(|err| format!("{file}: {err}"))?;
        let key = provider
            .key_provider
            .load_private_key(der)
            .map_err(|err| format!("{file}: {err}"))?;
        let scheme = SCHEMES
            .into_iter()
            .find(|scheme| key.choose_scheme(&[*scheme]).is_some())
            .ok_or_else(|| format!("{file}: no TLS 1.3 signature scheme for this key"))?;
        measures.push(Measure::Sign(scheme, key));
    }
    for group in [kx_group::X25519, kx_group::X25519MLKEM768] {
        let client = group.start().map_err(|err| err.to_string())?;
        measures.push(Measure::Kx(group, client.pub_key().to_vec()));
    }
    let budget = Duration::from_secs_f64(seconds / f64::from(ROUNDS) / measures.len() as f64);
    let mut rounds: Vec<Vec<Duration>> = vec![Vec::new(); measures.len()];
    for _ in 0..ROUNDS {
        for (measure, times) in measures.iter().zip(&mut rounds) {
            times.push(measure.time(budget)?);
        }
    }
    for (measure, mut times) in measures.iter().zip(rounds) {
        times.sort();
        let median = times[times.len() / 2];
        println!("{} {:.1}", measure.label(), median.as_secs_f64() * 1e6);
    }
    Ok(())
}
