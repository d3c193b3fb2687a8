//! A client certificate as nginx's `$ssl_client_*` variables show it, for `request_headers`
//! that pass the client's identity to the app (mutual TLS).
//!
//! Formed once per connection, and only when a header asks for one of them:
//! - `$ssl_client_s_dn`, `$ssl_client_i_dn`: the subject and issuer as RFC 2253 writes them, as
//!   OpenSSL's `XN_FLAG_RFC2253` prints them for nginx: the last RDN first, `,` between RDNs and
//!   `+` inside one, short attribute names (else the dotted OID and `#` with the value's DER in
//!   hex), `,+"\<>;` escaped with a backslash as a leading `#` or space and a trailing space
//!   are, control characters and every byte of a non-ASCII character as `\XX`;
//! - `$ssl_client_verify`: `SUCCESS` (the handshake verified the certificate), `NONE` without
//!   one;
//! - `$ssl_client_serial`: the serial number in upper-case hex;
//! - `$ssl_client_fingerprint`: the SHA-1 of the certificate's DER in lower-case hex;
//! - `$ssl_client_escaped_cert`: its PEM, escaped as nginx escapes a URI component.

use std::fmt::Write as _;

use base64::Engine as _;
use sha1::Digest as _;
use x509_parser::der_parser::asn1_rs::{Tag, ToDer as _};
use x509_parser::x509::X509Name;

/// The variables of one client certificate.
#[derive(Clone)]
pub(crate) struct ClientCert {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fingerprint: String,
    pub escaped: String,
}

impl ClientCert {
    /// The certificate `der`, which the handshake verified; `None` if it cannot be parsed.
    pub(crate) fn from_der(der: &[u8]) -> Option<ClientCert> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut serial = cert.raw_serial();
        if serial.len() > 1 && serial[0] == 0 {
            serial = &serial[1..];
        }
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        Some(ClientCert {
            subject: rfc2253(cert.subject()),
            issuer: rfc2253(cert.issuer()),
            serial: serial.iter().fold(String::new(), |mut out, b| {
                let _ = write!(out, "{b:02X}");
                out
            }),
            fingerprint: sha1::Sha1::digest(der)
                .iter()
                .fold(String::new(), |mut out, b| {
                    let _ = write!(out, "{b:02x}");
                    out
                }),
            escaped: escape_uri_component(&pem),
        })
    }
}

/// OpenSSL's short names for the attributes a certificate's name usually has.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

/// `name` as RFC 2253 (see the module's text).
fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    let value = attribute.attr_value();
                    match (short_name(&oid), text_of(value.tag(), value.data)) {
                        (Some(short), Some(text)) => format!("{short}={}", escape_2253(&text)),
                        (short, _) => {
                            let label = short.map_or(oid.clone(), str::to_string);
                            let der = value.to_der_vec().unwrap_or_default();
                            let hex = der.iter().fold(String::new(), |mut out, b| {
                                let _ = write!(out, "{b:02X}");
                                out
                            });
                            format!("{label}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The text of a string value, as OpenSSL converts it to UTF-8; `None` for other types.
fn text_of(tag: Tag, data: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => String::from_utf8(data.to_vec()).ok(),
        // T61: read as Latin-1, as OpenSSL does.
        Tag::TeletexString => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|four| char::from_u32(u32::from_be_bytes([four[0], four[1], four[2], four[3]])))
            .collect(),
        _ => None,
    }
}

/// A value escaped as OpenSSL's `ASN1_STRFLGS_RFC2253` escapes it.
fn escape_2253(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (index, &byte) in bytes.iter().enumerate() {
        let first = index == 0;
        let last = index + 1 == bytes.len();
        match byte {
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                out.push('\\');
                out.push(char::from(byte));
            }
            b'#' if first => out.push_str("\\#"),
            b' ' if first || last => out.push_str("\\ "),
            0x00..=0x1f | 0x7f..=0xff => {
                let _ = write!(out, "\\{byte:02X}");
            }
            _ => out.push(char::from(byte)),
        }
    }
    out
}

/// `text` escaped as nginx's `ngx_escape_uri` escapes a URI component: control characters,
/// bytes above `~`, space and ``!"#$%&'()*+,/:;<=>?@[\]^`{|}`` as `%XX`.
fn escape_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10);
    for &byte in text.as_bytes() {
        let kept = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if kept {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_openssl_and_nginx_escape_them() {
        assert_eq!(
            escape_2253(" client #1;x<y>\"q\""),
            "\\ client #1\\;x\\<y\\>\\\"q\\\""
        );
        assert_eq!(escape_2253("Acme, Inc."), "Acme\\, Inc.");
        assert_eq!(escape_2253("#a b "), "\\#a b\\ ");
        assert_eq!(escape_2253("Île"), "\\C3\\8Ele");
        assert_eq!(
            escape_uri_component("-----BEGIN CERTIFICATE-----\nab+/cd==\n"),
            "-----BEGIN%20CERTIFICATE-----%0Aab%2B%2Fcd%3D%3D%0A"
        );
    }
}
