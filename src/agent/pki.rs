//! The `pkiCert` decisions: what a template sees of an issued certificate, when to renew it,
//! and whether the certificate already on disk can be reused at start.
//!
//! As in Vault Agent, the destination file is the cache: a certificate there that is not yet
//! due is reused, provided every key file the template writes holds the matching key — so a
//! restart neither re-issues nor leaves a mismatched pair. Renewal falls at
//! `lease_renewal_threshold` of the lifetime, with jitter ([`crate::schedule`]). Pure functions
//! of their inputs and `now`, apart from reading the files being judged.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::functions::{Dependency, RenderFunctions};
use super::render::KeyMarker;
use crate::certs::{self, CertInfo};
use crate::fsutil;
use crate::schedule;
use crate::template::{GoStruct, Hidden, RenderOptions, Template, Value};
use crate::tls::pem;

/// The value `pkiCert` gives a template: consul-template's `dependency.PemEncoded` as OpenBao
/// Agent has it — `Cert`, `Key`, `CA`, and the method `Data` giving the value back, so the
/// documented `.Data.Cert` works — plus `CAChain` (the issuer chain, one PEM per item), which
/// Vault Agent's newer consul-template added; it is not printed, as OpenBao's struct lacks it.
pub fn pki_value(cert: &str, key: &str, ca: &str, chain: &[String]) -> Value {
    let text = |s: &str| Value::String(s.to_string());
    Value::Struct(Arc::new(GoStruct {
        type_name: "dependency.PemEncoded",
        fields: vec![("Cert", text(cert)), ("Key", text(key)), ("CA", text(ca))],
        hidden: vec![
            ("Data", Hidden::Itself),
            (
                "CAChain",
                Hidden::Value(Value::List(chain.iter().map(|c| text(c)).collect())),
            ),
        ],
    }))
}

/// Vault's answer to `pki/issue`, as the template sees it.
pub(crate) fn issued_value(response: &serde_json::Value) -> Result<(Value, CertInfo), String> {
    let data = response.get("data").ok_or("no data in the answer")?;
    let text = |key: &str| {
        data.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .as_bytes()
    };
    let blocks = pem::blocks(text("certificate"))?;
    let certificate = blocks
        .iter()
        .find(|b| b.is_certificate())
        .ok_or("no certificate in the answer")?;
    let info = CertInfo::parse(&certificate.der)?;
    let reencode = |pem_text: &[u8]| -> Result<String, String> {
        Ok(pem::blocks(pem_text)?
            .iter()
            .map(pem::PemBlock::to_pem)
            .collect())
    };
    let key = reencode(text("private_key"))?;
    let ca = reencode(text("issuing_ca"))?;
    let chain: Vec<String> = match data.get("ca_chain").and_then(serde_json::Value::as_array) {
        Some(items) => items
            .iter()
            .filter_map(serde_json::Value::as_str)
            .map(|item| reencode(item.as_bytes()))
            .collect::<Result<_, _>>()?,
        None => vec![ca.clone()],
    };
    if key.is_empty() {
        return Err("no private key in the answer".to_string());
    }
    Ok((pki_value(&certificate.to_pem(), &key, &ca, &chain), info))
}

/// When to renew `info` at `threshold` of its life, `random` in 0..1 choosing the jitter.
/// Vault backdates NotBefore (30 s by default), so for a certificate just issued the lifetime
/// is counted from `issued_at`: otherwise a short-lived one would be due the moment it
/// arrives.
pub(crate) fn renewal_point(
    info: &CertInfo,
    issued_at: Option<SystemTime>,
    threshold: f64,
    random: f64,
) -> SystemTime {
    let start = issued_at.map_or(info.not_before, |at| at.max(info.not_before));
    schedule::certificate_renewal_at(start, info.not_after, threshold, random)
}

/// What a PEM file holds: the leaf (non-CA) certificate, the CA, any chain, any key.
struct Found {
    leaf: Option<(String, Vec<u8>, CertInfo)>,
    ca: String,
    chain: Vec<String>,
    key: Option<String>,
}

fn certificates_in(text: &[u8]) -> Result<Found, String> {
    let mut found = Found {
        leaf: None,
        ca: String::new(),
        chain: Vec::new(),
        key: None,
    };
    for block in pem::blocks(text)? {
        if block.is_private_key() {
            found.key.get_or_insert_with(|| block.to_pem());
            continue;
        }
        if !block.is_certificate() {
            continue;
        }
        let info = CertInfo::parse(&block.der)?;
        if info.is_ca {
            // As consul-template: the last CA certificate seen is `.CA`.
            found.ca = block.to_pem();
            found.chain.push(block.to_pem());
        } else if found.leaf.is_none() {
            found.leaf = Some((block.to_pem(), block.der.clone(), info));
        }
    }
    Ok(found)
}

/// Whether the first private key in `key_text` is the certificate's; `Err` says why not.
fn check_key(leaf_der: &[u8], key_text: &[u8]) -> Result<(), String> {
    let (key, _) = pem::first_private_key(key_text)?;
    certs::key_matches(leaf_der, key).map_err(|err| err.to_string())
}

/// The certificate in `destination`, if it can be reused for `dependency` of `template` at
/// `now`: not yet due for renewal at `threshold` (counting the middle of the jitter), and
/// every key file the template writes — found with a [`KeyMarker`] render over `fetched` —
/// holds its key. `Ok(None)`: there is no file; `Err` says why it cannot be reused.
pub(crate) fn reusable(
    destination: &Path,
    template: &Template,
    fetched: &BTreeMap<Dependency, Value>,
    dependency: &Dependency,
    threshold: f64,
    now: SystemTime,
) -> Result<Option<(Value, CertInfo)>, String> {
    // Only a regular file is read (a link or a FIFO there is replaced by the render).
    let text = match fsutil::read_regular(destination, fsutil::READ_LIMIT) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(err) => return Err(format!("cannot read {}: {err}", destination.display())),
    };
    let found =
        certificates_in(&text).map_err(|err| format!("{}: {err}", destination.display()))?;
    let Some((leaf, leaf_der, info)) = found.leaf else {
        return Err(format!("no certificate in {}", destination.display()));
    };
    let renew_at = renewal_point(&info, None, threshold, 0.5);
    if now >= renew_at {
        return Err(format!(
            "the certificate in {} is due for renewal",
            destination.display()
        ));
    }
    // Which files would receive the key? Render once with a marker in its place.
    let marker = KeyMarker::new();
    let mut trial = fetched.clone();
    trial.insert(
        dependency.clone(),
        marker.pki_value(&leaf, &found.ca, &found.chain),
    );
    // Data still missing (a `secret` not fetched yet) renders as nil, as in the real pass;
    // the writes reached are what counts.
    let mut functions = RenderFunctions::new(&trial, destination);
    template
        .render(&Value::Nil, &mut functions, RenderOptions::default())
        .map_err(|err| format!("trial render: {err}"))?;
    let key_files = marker.key_files(&functions.writes);
    for path in &key_files {
        let key_text = fsutil::read_regular(path, fsutil::READ_LIMIT)
            .map_err(|err| format!("the key file {} cannot be read: {err}", path.display()))?
            .ok_or_else(|| format!("the key file {} is not a regular file", path.display()))?;
        let key_text = zeroize::Zeroizing::new(key_text);
        check_key(&leaf_der, &key_text).map_err(|err| format!("{}: {err}", path.display()))?;
    }
    if let Some(key) = &found.key {
        check_key(&leaf_der, key.as_bytes())
            .map_err(|err| format!("{}: {err}", destination.display()))?;
    }
    let key = found.key.clone().unwrap_or_default();
    Ok(Some((
        pki_value(&leaf, &key, &found.ca, &found.chain),
        info,
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::functions::KnownFunctions;

    /// `text` rendered with `dot` and no Vault: the error as its text.
    pub(crate) fn render(text: &str, dot: &Value) -> Result<String, String> {
        let template =
            Template::parse(text, "{{", "}}", &KnownFunctions).map_err(|e| e.to_string())?;
        template
            .render(dot, &mut KnownFunctions, RenderOptions::default())
            .map_err(|e| e.to_string())
    }

    /// OpenBao Agent's `PemEncoded`: three printed fields, `.Data` the value itself, any
    /// other name an error; `.CAChain` reachable (Vault Agent's newer field) but not printed.
    #[test]
    fn the_pki_cert_value_is_openbaos_pem_encoded_struct() {
        let chain = ["I\n".to_owned(), "R\n".to_owned()];
        let value = pki_value("C\n", "K\n", "I\n", &chain);
        assert_eq!(render("{{ . }}", &value).unwrap(), "{C\n K\n I\n}");
        assert_eq!(
            render("{{ .Data.Data.Cert }}{{ .Key }}{{ .Data.CA }}", &value).unwrap(),
            "C\nK\nI\n"
        );
        assert_eq!(
            render(r#"{{ printf "%+v|%T" .Data . }}"#, &value).unwrap(),
            "{Cert:C\n Key:K\n CA:I\n}|dependency.PemEncoded"
        );
        assert_eq!(
            render(
                "{{ range .CAChain }}[{{ . }}]{{ end }}{{ len .Data.CAChain }}",
                &value
            )
            .unwrap(),
            "[I\n][R\n]2"
        );
        for unknown in [".Serial", ".Data.ca_chain", ".Expiration"] {
            let error = render(&format!("{{{{ {unknown} }}}}"), &value).unwrap_err();
            assert!(
                error.contains("can't evaluate field") && error.contains("dependency.PemEncoded"),
                "{unknown}: {error}"
            );
        }
        assert!(render("{{ if . }}y{{ end }}", &value).unwrap() == "y");
    }
}
