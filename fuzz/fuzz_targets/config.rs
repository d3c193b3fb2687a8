//! The HCL config loader: see pki_sidecar::fuzzing::config.
//! The body lives in the crate so that `cargo test` replays fuzz/regressions/config/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pki_sidecar::fuzzing::config(data));
