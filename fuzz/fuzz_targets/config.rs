//! The HCL config loader: file text to a checked `Config` or its errors, through
//! `config::load_str`, which is `config::load`'s path minus the read and the environment.
//! Must never panic; every error must print.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pki_sidecar::config::{self, Role};

fuzz_target!(|data: &[u8]| {
    // `load` reads with read_to_string: text that is not UTF-8 never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::load_str("fuzz.hcl", text) {
        Ok(config) => {
            for role in [Role::Agent, Role::Proxy, Role::App] {
                if let Err(errors) = config.check_role(role) {
                    let _ = errors.to_string();
                }
            }
            let _ = pki_sidecar::validate::summary(&config, &[Role::Agent, Role::Proxy, Role::App]);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err without any error");
            let _ = errors.to_string();
        }
    }
});
