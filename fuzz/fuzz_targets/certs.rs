//! Certificates and keys as the proxy and the agent read them: PEM blocks, `CertInfo`,
//! `key_matches`, and the proxy's whole pair validation (`proxy::store::pair_from_pem`, the
//! part of `load_pair` after the reads). Must never panic.
//!
//! Input: the certificate file's text, then optionally a NUL byte and the key file's text;
//! without a NUL the same text is both files (a combined PEM).
#![no_main]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use pki_sidecar::certs::{self, CertInfo};
use pki_sidecar::proxy::store::pair_from_pem;

fuzz_target!(|data: &[u8]| {
    let (cert_bytes, key_bytes) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, data),
    };
    // The files are read with read_to_string: text that is not UTF-8 stops there.
    let (Ok(cert_text), Ok(key_text)) = (
        std::str::from_utf8(cert_bytes),
        std::str::from_utf8(key_bytes),
    ) else {
        return;
    };

    let mut certificates = Vec::new();
    let mut keys = Vec::new();
    for text in [cert_text, key_text] {
        let Ok(blocks) = certs::pem_blocks(text) else {
            continue;
        };
        for block in blocks {
            // Whatever parses re-encodes (Go's layout) to the same block.
            let again = certs::pem_blocks(&block.to_pem()).expect("re-encoded PEM parses");
            assert_eq!(again, vec![block.clone()], "PEM round trip");
            if block.label == "CERTIFICATE" {
                if let Ok(info) = CertInfo::parse(&block.der) {
                    let _ = info.lifetime();
                    let _ = certs::unix_seconds(info.not_after);
                }
                certificates.push(block.der);
            } else if let Some(key) = block.private_key() {
                keys.push(key);
            }
        }
    }
    for certificate in certificates.iter().take(2) {
        for key in keys.iter().take(2) {
            let _ = certs::key_matches(certificate, key.clone_key());
        }
    }

    // 2027-01-15: inside the seed certificates' validity.
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    for now in [now, SystemTime::UNIX_EPOCH] {
        match pair_from_pem(
            cert_text,
            key_text,
            Path::new("tls.crt"),
            Path::new("tls.key"),
            now,
        ) {
            Ok(pair) => assert!(pair.info.not_before <= now && now < pair.info.not_after),
            Err(error) => {
                let _ = (error.reason(), error.to_string());
            }
        }
    }
});
