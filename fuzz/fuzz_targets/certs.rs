//! PEM, CertInfo, key_matches and the proxy's pair validation: see pki_sidecar::fuzzing::certs.
//! The body lives in the crate so that `cargo test` replays fuzz/regressions/certs/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pki_sidecar::fuzzing::certs(data));
