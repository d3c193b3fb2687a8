//! The Go text/template engine with the agent's functions: see pki_sidecar::fuzzing::template.
//! The body lives in the crate so that `cargo test` replays fuzz/regressions/template/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pki_sidecar::fuzzing::template(data));
