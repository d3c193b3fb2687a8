//! The `check tls` and `check pair` probes, run as the real binary against certificates made
//! here with rcgen (keys converted to PKCS#1 / SEC1 with `openssl`) and a TLS server on
//! 127.0.0.1:0 inside the test process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;

use crate::util;

const DAY: i64 = 86_400;

/// What the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Run {
    let output = util::command()
        .arg("check")
        .args(args)
        .output()
        .expect("run pki-sidecar check");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Run {
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout
        );
        self
    }

    fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA that signs leaves.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(common_name: &str) -> Ca {
    let key = KeyPair::generate().expect("generate CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for `names`, signed by `ca`, valid from `now + from` to `now + to` seconds.
fn leaf(ca: &Ca, key: &KeyPair, names: &[&str], from: i64, to: i64) -> String {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc, 0xde, 0xf1]));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs((now + from) as u64);
    params.not_after = epoch + Duration::from_secs((now + to) as u64);
    params.signed_by(key, &ca.issuer).expect("sign leaf").pem()
}

/// A valid `foo.home` leaf with an ECDSA P-256 key: (cert PEM, PKCS#8 key PEM).
fn valid_leaf(ca: &Ca) -> (String, String) {
    let key = KeyPair::generate().expect("generate key");
    let cert = leaf(
        ca,
        &key,
        &["foo.home", "localhost", "127.0.0.1"],
        -DAY,
        30 * DAY,
    );
    (cert, key.serialize_pem())
}

/// Runs `openssl ARGS` with `input` on stdin and returns stdout.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to openssl");
    let output = child.wait_with_output().expect("openssl output");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("openssl prints PEM")
}

/// A new RSA-2048 key as PKCS#8 PEM, made by openssl rather than the code under test.
fn rsa_pkcs8() -> String {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        "",
    )
}

// ---------------------------------------------------------------------------------------------
// A TLS server in the test process

/// Serves one certificate (or none) on 127.0.0.1; every connection gets a handshake and a
/// close. Records the SNI each client sent.
struct TlsServer {
    address: SocketAddr,
    sni: Arc<Mutex<Vec<Option<String>>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct Resolver {
    certified: Option<Arc<CertifiedKey>>,
    sni: Arc<Mutex<Vec<Option<String>>>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.sni
            .lock()
            .expect("sni lock")
            .push(client_hello.server_name().map(str::to_string));
        // None makes rustls refuse the handshake, as the proxy does before its first cert.
        self.certified.clone()
    }
}

impl TlsServer {
    fn serving(cert_pem: &str, key_pem: &str) -> TlsServer {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("cert PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let certified = CertifiedKey::from_der(chain, key, &provider).expect("certified key");
        TlsServer::start(Some(Arc::new(certified)))
    }

    fn without_certificate() -> TlsServer {
        TlsServer::start(None)
    }

    fn start(certified: Option<Arc<CertifiedKey>>) -> TlsServer {
        TlsServer::start_with(certified, rustls::crypto::aws_lc_rs::default_provider())
    }

    /// A server whose provider offers only `groups` for key exchange.
    fn serving_groups(
        cert_pem: &str,
        key_pem: &str,
        groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
    ) -> TlsServer {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider.kx_groups = groups.to_vec();
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("cert PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let certified = CertifiedKey::from_der(chain, key, &provider).expect("certified key");
        TlsServer::start_with(Some(Arc::new(certified)), provider)
    }

    fn start_with(
        certified: Option<Arc<CertifiedKey>>,
        provider: rustls::crypto::CryptoProvider,
    ) -> TlsServer {
        let sni = Arc::new(Mutex::new(Vec::new()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver {
                certified,
                sni: sni.clone(),
            }));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("local addr");
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("test server runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                if let Ok(mut tls) = acceptor.accept(tcp).await {
                                    let _ = tls.shutdown().await;
                                }
                            });
                        }
                    }
                }
            });
        });
        TlsServer {
            address,
            sni,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn connect(&self) -> String {
        self.address.to_string()
    }

    fn sni_seen(&self) -> Vec<Option<String>> {
        self.sni.lock().expect("sni lock").clone()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    util::write_file(dir, name, text)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

// ---------------------------------------------------------------------------------------------
// check tls

#[test]
fn tls_valid_certificate_is_healthy_and_described() {
    let ca = ca("pki-sidecar test CA");
    let (cert, key) = valid_leaf(&ca);
    let server = TlsServer::serving(&cert, &key);
    let run = check(&[
        "tls",
        "--connect",
        &server.connect(),
        "--servername",
        "foo.home",
    ]);
    run.expect(0)
        .stdout_has("subject:    foo.home")
        .stdout_has("issuer:     pki-sidecar test CA")
        .stdout_has("names:      foo.home, localhost, 127.0.0.1")
        .stdout_has("serial:     0a:bc:de:f1")
        .stdout_has("not after:  ")
        .stdout_has("expires in: 29d23h5")
        .stdout_has("verified:   no (no --cacert given)")
        .stdout_has("protocol:   TLSv1_3")
        .stdout_has("kx group:   X25519MLKEM768")
        // A rustls server following the client's order (this probe's: AES-256 first).
        .stdout_has("cipher:     TLS13_AES_256_GCM_SHA384");
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_eq!(server.sni_seen(), vec![Some("foo.home".to_string())]);
}

#[test]
fn tls_reports_the_key_exchange_group_the_server_chose() {
    let ca = ca("pki-sidecar test CA");
    let (cert, key) = valid_leaf(&ca);
    use rustls::crypto::aws_lc_rs::kx_group;
    for (groups, expected) in [
        (vec![kx_group::X25519], "kx group:   X25519\n"),
        (vec![kx_group::SECP256R1], "kx group:   secp256r1\n"),
        (
            vec![kx_group::X25519MLKEM768, kx_group::X25519],
            "kx group:   X25519MLKEM768\n",
        ),
    ] {
        let server = TlsServer::serving_groups(&cert, &key, &groups);
        check(&[
            "tls",
            "--connect",
            &server.connect(),
            "--servername",
            "foo.home",
        ])
        .expect(0)
        .stdout_has(expected);
    }
}

#[test]
fn tls_sends_no_sni_for_an_ip_and_the_host_name_otherwise() {
    let ca = ca("pki-sidecar test CA");
    let (cert, key) = valid_leaf(&ca);
    let server = TlsServer::serving(&cert, &key);
    check(&["tls", "--connect", &server.connect()])
        .expect(0)
        .stdout_has("servername: none sent (verifying as 127.0.0.1)");
    let by_name = format!("localhost:{}", server.address.port());
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    // `localhost` may resolve to ::1 first, where nothing listens; the probe tries each address.
    check(&["tls", "--connect", &by_name, "--cacert", path(&ca_file)])
        .expect(0)
        .stdout_has("verified:   yes, against ");
    assert_eq!(server.sni_seen(), vec![None, Some("localhost".to_string())]);
}

#[test]
fn tls_checkend_fails_a_certificate_expiring_soon() {
    let ca = ca("pki-sidecar test CA");
    let key = KeyPair::generate().expect("key");
    let cert = leaf(&ca, &key, &["foo.home"], -DAY, 30);
    let server = TlsServer::serving(&cert, &key.serialize_pem());
    check(&["tls", "--connect", &server.connect()]).expect(0);
    check(&["tls", "--connect", &server.connect(), "--checkend", "3600"])
        .expect(1)
        .stderr_has("the certificate expires within --checkend 1h: at ")
        .stdout_has("subject:    foo.home");
}

#[test]
fn tls_checkend_takes_durations_as_the_config_spells_them() {
    let ca = ca("pki-sidecar test CA");
    let key = KeyPair::generate().expect("key");
    // Two days left.
    let cert = leaf(&ca, &key, &["foo.home"], -DAY, 2 * DAY);
    let server = TlsServer::serving(&cert, &key.serialize_pem());
    let connect = server.connect();
    for (checkend, code) in [
        ("0", 0),
        ("0s", 0),
        ("30s", 0),
        ("90m", 0),
        ("1d", 0),
        ("47h", 0),
        ("86400", 0),
        ("49h", 1),
        ("3d", 1),
        ("200000", 1),
        ("1h30m", 0),
    ] {
        let run = check(&["tls", "--connect", &connect, "--checkend", checkend]);
        assert_eq!(
            run.code,
            Some(code),
            "--checkend {checkend}: {}",
            run.stderr
        );
    }
    check(&["tls", "--connect", &connect, "--checkend", "3d"])
        .expect(1)
        .stderr_has("the certificate expires within --checkend 3d: at ");
    check(&["tls", "--connect", &connect, "--checkend", "2 days"])
        .expect(2)
        .stderr_has("invalid value '2 days' for '--checkend <DURATION>'");
}

#[test]
fn tls_expired_certificate_is_unhealthy() {
    let ca = ca("pki-sidecar test CA");
    let key = KeyPair::generate().expect("key");
    let cert = leaf(&ca, &key, &["foo.home"], -2 * DAY, -DAY);
    let server = TlsServer::serving(&cert, &key.serialize_pem());
    check(&["tls", "--connect", &server.connect()])
        .expect(1)
        .stdout_has("expires in: expired 1d")
        .stderr_has("pki-sidecar check tls: ")
        .stderr_has("the certificate expired at ")
        // One day ago when the certificate was made; a busy machine may take a second or more
        // to get to the check, which then says "(1d1s ago)".
        .stderr_has("(1d")
        .stderr_has(" ago)");
}

#[test]
fn tls_not_yet_valid_certificate_is_unhealthy() {
    let ca = ca("pki-sidecar test CA");
    let key = KeyPair::generate().expect("key");
    let cert = leaf(&ca, &key, &["foo.home"], DAY, 2 * DAY);
    let server = TlsServer::serving(&cert, &key.serialize_pem());
    check(&["tls", "--connect", &server.connect()])
        .expect(1)
        .stderr_has("the certificate is not valid yet: its notBefore is ");
}

#[test]
fn tls_cacert_verifies_the_chain_and_the_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let right = ca("pki-sidecar test CA");
    let wrong = ca("some other CA");
    let right_file = write(dir.path(), "right.pem", &right.pem);
    let wrong_file = write(dir.path(), "wrong.pem", &wrong.pem);
    let (cert, key) = valid_leaf(&right);
    let server = TlsServer::serving(&cert, &key);
    let connect = server.connect();

    check(&[
        "tls",
        "--connect",
        &connect,
        "--servername",
        "foo.home",
        "--cacert",
        path(&right_file),
    ])
    .expect(0)
    .stdout_has("verified:   yes, against ")
    .stdout_has(" as foo.home");

    let run = check(&[
        "tls",
        "--connect",
        &connect,
        "--servername",
        "foo.home",
        "--cacert",
        path(&wrong_file),
    ]);
    run.expect(1)
        .stderr_has(&format!(
            "the served certificate does not verify against CA {}: ",
            wrong_file.display()
        ))
        .stderr_has("UnknownIssuer")
        // The certificate that failed is still shown, as openssl s_client shows it.
        .stdout_has("subject:    foo.home")
        .stdout_has("verified:   FAILED against ");

    check(&[
        "tls",
        "--connect",
        &connect,
        "--servername",
        "bar.home",
        "--cacert",
        path(&right_file),
    ])
    .expect(1)
    .stderr_has("the served certificate does not verify against CA ")
    .stderr_has("bar.home");
}

#[test]
fn tls_nothing_listening_could_not_run() {
    let connect = format!("127.0.0.1:{}", util::free_port());
    check(&["tls", "--connect", &connect])
        .expect(2)
        .stderr_has(&format!("cannot connect to {connect}: "));
}

#[test]
fn tls_server_that_closes_without_tls_could_not_run() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let connect = listener.local_addr().expect("addr").to_string();
    // Accept one connection and close it at once. If the binary never connects, the thread
    // stays blocked in accept until the test process exits, which is harmless.
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            drop(stream);
        }
    });
    check(&["tls", "--connect", &connect])
        .expect(2)
        .stderr_has(&format!("the TLS handshake with {connect} "))
        .stderr_has("failed: ");
}

#[test]
fn tls_server_without_a_certificate_could_not_run() {
    let server = TlsServer::without_certificate();
    let connect = server.connect();
    check(&["tls", "--connect", &connect, "--servername", "foo.home"])
        .expect(2)
        .stderr_has(&format!("the TLS handshake with {connect} "))
        .stderr_has("failed: ");
}

#[test]
fn tls_bad_arguments_could_not_run() {
    check(&["tls", "--connect", "::1:443"])
        .expect(2)
        .stderr_has("an IPv6 address goes in brackets");
    check(&[
        "tls",
        "--connect",
        "127.0.0.1:443",
        "--cacert",
        "/nonexistent/ca.pem",
    ])
    .expect(2)
    .stderr_has("--cacert /nonexistent/ca.pem: cannot read the file");
}

// ---------------------------------------------------------------------------------------------
// check pair

#[test]
fn pair_matches_in_every_key_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("pki-sidecar test CA");
    let ec = KeyPair::generate().expect("EC key");
    let ec_pkcs8 = ec.serialize_pem();
    let rsa_pkcs8 = rsa_pkcs8();
    let rsa = KeyPair::from_pem(&rsa_pkcs8).expect("RSA key");
    let cases = [
        ("ec-pkcs8", &ec, ec_pkcs8.clone(), "PKCS#8"),
        ("ec-sec1", &ec, openssl(&["ec"], &ec_pkcs8), "SEC1"),
        ("rsa-pkcs8", &rsa, rsa_pkcs8.clone(), "PKCS#8"),
        (
            "rsa-pkcs1",
            &rsa,
            openssl(&["rsa", "-traditional"], &rsa_pkcs8),
            "PKCS#1",
        ),
    ];
    for (name, key, key_pem, format) in cases {
        let chain = format!("{}{}", leaf(&ca, key, &["foo.home"], -DAY, DAY), ca.pem);
        let cert_file = write(dir.path(), &format!("{name}.crt"), &chain);
        let key_file = write(dir.path(), &format!("{name}.key"), &key_pem);
        let run = check(&["pair", "--cert", path(&cert_file), "--key", path(&key_file)]);
        run.expect(0)
            .stdout_has("subject:     foo.home")
            .stdout_has("serial:      0a:bc:de:f1")
            .stdout_has("not after:   ")
            .stdout_has(&format!("({format})"))
            .stdout_has("pair:        key matches certificate");
        assert!(run.stderr.is_empty(), "{name}: {}", run.stderr);
    }
}

#[test]
fn pair_mismatched_key_is_unhealthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("pki-sidecar test CA");
    let (cert, _) = valid_leaf(&ca);
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let other = KeyPair::generate().expect("key");
    let key_file = write(dir.path(), "tls.key", &other.serialize_pem());
    let rsa_file = write(dir.path(), "rsa.key", &rsa_pkcs8());
    for key in [&key_file, &rsa_file] {
        check(&["pair", "--cert", path(&cert_file), "--key", path(key)])
            .expect(1)
            .stdout_has("key does NOT match certificate")
            .stderr_has(&format!(
                "the key in {} does not match the certificate in {}",
                key.display(),
                cert_file.display()
            ));
    }
}

#[test]
fn pair_corrupt_or_missing_pem_is_unhealthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("pki-sidecar test CA");
    let (cert, key) = valid_leaf(&ca);
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let key_file = write(dir.path(), "tls.key", &key);

    // Base64 that does not decode.
    let broken = key.replacen("\n", "\n!!!!", 2);
    let broken_file = write(dir.path(), "broken.key", &broken);
    check(&[
        "pair",
        "--cert",
        path(&cert_file),
        "--key",
        path(&broken_file),
    ])
    .expect(1)
    .stderr_has(&format!("{}: not valid PEM: ", broken_file.display()));

    // Base64 that decodes to something that is not a key.
    let garbage = "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n";
    let garbage_file = write(dir.path(), "garbage.key", garbage);
    check(&[
        "pair",
        "--cert",
        path(&cert_file),
        "--key",
        path(&garbage_file),
    ])
    .expect(1)
    .stderr_has(&format!(
        "{}: not a usable private key",
        garbage_file.display()
    ));

    // Files swapped: no key in the key file, no certificate in the certificate file.
    check(&[
        "pair",
        "--cert",
        path(&cert_file),
        "--key",
        path(&cert_file),
    ])
    .expect(1)
    .stderr_has(&format!(
        "{}: no PEM private key in the file",
        cert_file.display()
    ));
    check(&["pair", "--cert", path(&key_file), "--key", path(&key_file)])
        .expect(1)
        .stderr_has(&format!(
            "{}: no PEM certificate in the file",
            key_file.display()
        ));
}

#[test]
fn pair_expired_or_future_certificate_is_unhealthy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("pki-sidecar test CA");
    let key = KeyPair::generate().expect("key");
    let key_file = write(dir.path(), "tls.key", &key.serialize_pem());
    let expired = write(
        dir.path(),
        "expired.crt",
        &leaf(&ca, &key, &["foo.home"], -2 * DAY, -DAY),
    );
    check(&["pair", "--cert", path(&expired), "--key", path(&key_file)])
        .expect(1)
        .stdout_has("pair:        key matches certificate")
        .stderr_has(&format!(
            "{}: the certificate expired at ",
            expired.display()
        ));
    let future = write(
        dir.path(),
        "future.crt",
        &leaf(&ca, &key, &["foo.home"], DAY, 2 * DAY),
    );
    check(&["pair", "--cert", path(&future), "--key", path(&key_file)])
        .expect(1)
        .stderr_has("the certificate is not valid yet");
}

#[test]
fn pair_unreadable_file_could_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ca("pki-sidecar test CA");
    let (cert, key) = valid_leaf(&ca);
    let cert_file = write(dir.path(), "tls.crt", &cert);
    let key_file = write(dir.path(), "tls.key", &key);
    let missing = dir.path().join("missing.key");
    check(&["pair", "--cert", path(&cert_file), "--key", path(&missing)])
        .expect(2)
        .stderr_has(&format!("cannot read {}: ", missing.display()))
        .stderr_has("No such file");
    let missing = dir.path().join("missing.crt");
    check(&["pair", "--cert", path(&missing), "--key", path(&key_file)])
        .expect(2)
        .stderr_has(&format!("cannot read {}: ", missing.display()));
}
