//! The server name (SNI) and the cipher preference of a TLS ClientHello, read from the raw bytes
//! a server receives.
//!
//! rustls's unbuffered server connection has no public accessor for the SNI, and the proxy
//! chooses its cipher suite order (see [`crate::tls::CipherPreference`]) before it creates the
//! connection, so it reads both itself from the bytes it then hands to rustls. [`HelloReader`]
//! is incremental: the bytes may arrive in any split, the ClientHello may be spread over
//! several handshake records, and a record may arrive in pieces. It buffers only the handshake
//! message (at most [`MAX_CLIENT_HELLO`] bytes of body), never whole records, and frees that
//! buffer once the outcome is known. Anything malformed makes it give up with "no name"; it
//! never panics, and whether the handshake itself is acceptable remains rustls's decision.

/// The TLS record content type of handshake messages.
const CONTENT_TYPE_HANDSHAKE: u8 = 22;

/// The size of a TLS record header: content type (1), legacy version (2), length (2).
const RECORD_HEADER_LEN: usize = 5;

/// The largest record body accepted: 2^14 bytes plus the 2048 bytes of tolerance rustls allows.
const MAX_RECORD_LEN: usize = 16384 + 2048;

/// The handshake message type of a ClientHello.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;

/// The size of a handshake message header: message type (1), body length (3).
const HANDSHAKE_HEADER_LEN: usize = 4;

/// The largest ClientHello body buffered; a longer one is given up on.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// The extension type of server_name (RFC 6066).
const EXTENSION_SERVER_NAME: u16 = 0;

/// The name type of a host name in a ServerNameList (RFC 6066).
const NAME_TYPE_HOST_NAME: u8 = 0;

/// The largest legacy session id of a ClientHello.
const MAX_SESSION_ID_LEN: usize = 32;

/// What a finished read gives: the host name, or `None` when there is none or the bytes are
/// not a well-formed ClientHello.
type Outcome = Option<Box<str>>;

/// What a whole ClientHello says (or, for bytes that are no ClientHello, nothing).
#[derive(Debug, Default)]
struct Hello {
    name: Outcome,
    chacha20_first: bool,
}

/// Reads the server name (SNI) and the cipher preference from a TLS ClientHello as the server
/// receives it.
#[derive(Debug, Default)]
pub(crate) struct HelloReader {
    /// Whether the outcome has been returned; later calls return `Some(None)` at once.
    done: bool,
    /// Whether the ClientHello listed a ChaCha20-Poly1305 suite before every AES-GCM one.
    chacha20_first: bool,
    /// The header of the current record, as much of it as has arrived.
    header: [u8; RECORD_HEADER_LEN],
    /// How many bytes of `header` have arrived.
    header_len: usize,
    /// How many bytes of the current record's body are still to come (0 between records).
    body_left: usize,
    /// The handshake message (header and body) as far as it has arrived.
    message: Vec<u8>,
}

impl HelloReader {
    /// A reader that has seen no bytes yet.
    pub(crate) fn new() -> HelloReader {
        HelloReader::default()
    }

    /// Whether the ClientHello, once [`HelloReader::feed`] returned `Some`, listed a
    /// ChaCha20-Poly1305 suite before every AES-GCM suite: what a client without AES
    /// instructions does. `false` for bytes that were no well-formed ClientHello.
    pub(crate) fn prefers_chacha20(&self) -> bool {
        self.chacha20_first
    }

    /// Feeds the next bytes received from the client (any split, from one byte to many records
    /// at once). Returns `Some(result)` once the outcome is known: `Some(Some(name))` when the
    /// ClientHello carried a host_name entry, `Some(None)` when the ClientHello is complete and
    /// has none, or when the bytes are not a well-formed ClientHello (anything malformed: give
    /// up, never panic). Returns `None` while more bytes are needed.
    ///
    /// Callers stop feeding once it returned `Some`; if they do not, every later call returns
    /// `Some(None)` at once without looking at the bytes. Bytes after the ClientHello in the
    /// same call are ignored.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Option<Option<Box<str>>> {
        if self.done {
            return Some(None);
        }
        while !bytes.is_empty() {
            let step = if self.body_left == 0 {
                self.read_header(&mut bytes)
            } else {
                self.read_body(&mut bytes)
            };
            if let Some(hello) = step {
                return Some(self.finish(hello));
            }
        }
        None
    }

    /// Marks the read as finished and frees the buffer.
    fn finish(&mut self, hello: Hello) -> Outcome {
        self.done = true;
        self.message = Vec::new();
        self.chacha20_first = hello.chacha20_first;
        hello.name
    }

    /// Takes bytes of a record header from the front of `bytes`. Gives up (an empty
    /// [`Hello`]) as soon as what has arrived cannot start a handshake record.
    fn read_header(&mut self, bytes: &mut &[u8]) -> Option<Hello> {
        let wanted = RECORD_HEADER_LEN - self.header_len;
        let (head, rest) = bytes.split_at(wanted.min(bytes.len()));
        *bytes = rest;
        let end = self.header_len + head.len();
        self.header[self.header_len..end].copy_from_slice(head);
        self.header_len = end;
        if !header_prefix_is_handshake(&self.header[..end]) {
            return Some(Hello::default());
        }
        if end < RECORD_HEADER_LEN {
            return None;
        }
        self.header_len = 0;
        match record_body_len(&self.header) {
            Some(length) => {
                self.body_left = length;
                None
            }
            None => Some(Hello::default()),
        }
    }

    /// Takes bytes of the current record's body from the front of `bytes`.
    fn read_body(&mut self, bytes: &mut &[u8]) -> Option<Hello> {
        let (chunk, rest) = bytes.split_at(self.body_left.min(bytes.len()));
        *bytes = rest;
        self.body_left -= chunk.len();
        self.take_fragment(chunk)
    }

    /// Adds a piece of handshake record body to the message; the outcome once the message is
    /// complete or known to be no ClientHello.
    fn take_fragment(&mut self, chunk: &[u8]) -> Option<Hello> {
        if self.message.is_empty()
            && let Some(outcome) = whole_message(chunk)
        {
            return Some(outcome);
        }
        let mut chunk = chunk;
        while !chunk.is_empty() {
            let (head, rest) = chunk.split_at(self.message_wanted().min(chunk.len()));
            chunk = rest;
            self.message.extend_from_slice(head);
            if let Some(outcome) = self.check_message() {
                return Some(outcome);
            }
        }
        None
    }

    /// How many more bytes the message needs: first to complete its header, then its body.
    fn message_wanted(&self) -> usize {
        let have = self.message.len();
        match message_total(&self.message) {
            Some(total) if have >= HANDSHAKE_HEADER_LEN => total.saturating_sub(have),
            _ => HANDSHAKE_HEADER_LEN.saturating_sub(have),
        }
    }

    /// The outcome once the buffered message decides it: its header is not a ClientHello's
    /// (or declares too long a body), or the whole message has arrived.
    fn check_message(&self) -> Option<Hello> {
        if self.message.len() < HANDSHAKE_HEADER_LEN {
            return None;
        }
        let Some(total) = message_total(&self.message) else {
            return Some(Hello::default());
        };
        let body = self.message.get(HANDSHAKE_HEADER_LEN..total)?;
        Some(read_hello(body))
    }
}

/// Whether the first bytes of a record header (any number up to 5) may start a handshake
/// record: content type 22 and a 3.x version (what rustls accepts too).
fn header_prefix_is_handshake(prefix: &[u8]) -> bool {
    let type_ok = prefix.first().is_none_or(|&t| t == CONTENT_TYPE_HANDSHAKE);
    let version_ok = prefix.get(1).is_none_or(|&major| major == 3);
    type_ok && version_ok
}

/// The body length a complete record header declares, if it is within 1..=18432.
fn record_body_len(header: &[u8]) -> Option<usize> {
    let (_, length) = header.split_last_chunk::<2>()?;
    let length = usize::from(u16::from_be_bytes(*length));
    (1..=MAX_RECORD_LEN).contains(&length).then_some(length)
}

/// The total size (header included) of the handshake message starting `message`, if its
/// header has arrived, is a ClientHello's, and declares at most [`MAX_CLIENT_HELLO`] bytes.
fn message_total(message: &[u8]) -> Option<usize> {
    let (&[kind, a, b, c], _) = message.split_first_chunk::<HANDSHAKE_HEADER_LEN>()?;
    let length = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    let acceptable = kind == HANDSHAKE_CLIENT_HELLO && length <= MAX_CLIENT_HELLO;
    acceptable.then_some(HANDSHAKE_HEADER_LEN + length)
}

/// The outcome when `chunk`, the start of a message, decides it without buffering: a whole
/// ClientHello, or a header that is not a ClientHello's. `None` when more bytes are needed.
fn whole_message(chunk: &[u8]) -> Option<Hello> {
    if chunk.len() < HANDSHAKE_HEADER_LEN {
        return None;
    }
    let Some(total) = message_total(chunk) else {
        return Some(Hello::default());
    };
    let body = chunk.get(HANDSHAKE_HEADER_LEN..total)?;
    Some(read_hello(body))
}

/// The host name and cipher preference of a ClientHello body; nothing if it is malformed.
fn read_hello(body: &[u8]) -> Hello {
    let mut hello = Reader::new(body);
    let fixed = hello.take(2 + 32).and_then(|_| {
        // legacy_version and random, then legacy_session_id, cipher_suites and
        // legacy_compression_methods.
        Some((hello.vec8()?, hello.vec16()?, hello.vec8()?))
    });
    let Some((session_id, suites, compression)) = fixed else {
        return Hello::default();
    };
    let fixed_ok = session_id.len() <= MAX_SESSION_ID_LEN
        && !suites.is_empty()
        && suites.len() % 2 == 0
        && !compression.is_empty();
    if !fixed_ok {
        return Hello::default();
    }
    // No extensions block (an empty rest) or anything after it: no name.
    let name = hello
        .vec16()
        .filter(|_| hello.is_empty())
        .and_then(find_server_name_extension)
        .and_then(host_name);
    Hello {
        name,
        chacha20_first: chacha20_first(suites),
    }
}

/// Whether the first ChaCha20-Poly1305 or AES-GCM suite in a ClientHello's `cipher_suites`
/// (TLS 1.3 or 1.2; GREASE values and other suites skipped) is a ChaCha20-Poly1305 one.
fn chacha20_first(suites: &[u8]) -> bool {
    use super::Bulk;
    suites
        .chunks_exact(2)
        .map(|pair| super::bulk_cipher(u16::from_be_bytes([pair[0], pair[1]]).into()))
        .find(|bulk| *bulk != Bulk::Other)
        == Some(Bulk::ChaCha20)
}

/// The data of the one server_name extension in an extensions block, if the block is
/// well-formed and has exactly one.
fn find_server_name_extension(extensions: &[u8]) -> Option<&[u8]> {
    let mut reader = Reader::new(extensions);
    let mut found = None;
    while !reader.is_empty() {
        let kind = reader.u16()?;
        let data = reader.vec16()?;
        if kind == EXTENSION_SERVER_NAME {
            if found.is_some() {
                return None;
            }
            found = Some(data);
        }
    }
    found
}

/// The first host name of a server_name extension's data, if it is non-empty UTF-8.
fn host_name(data: &[u8]) -> Outcome {
    let mut extension = Reader::new(data);
    let mut list = Reader::new(extension.vec16()?);
    if !extension.is_empty() {
        return None;
    }
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == NAME_TYPE_HOST_NAME {
            let name = std::str::from_utf8(name).ok()?;
            return (!name.is_empty()).then(|| name.into());
        }
    }
    None
}

/// A bounds-checked reader over a byte slice: every read is `None` past the end.
struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Whether every byte has been read.
    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    /// The next byte.
    fn u8(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// The next big-endian 16-bit number.
    fn u16(&mut self) -> Option<u16> {
        let (&bytes, rest) = self.rest.split_first_chunk::<2>()?;
        self.rest = rest;
        Some(u16::from_be_bytes(bytes))
    }

    /// The next vector with a 1-byte length prefix.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let length = self.u8()?;
        self.take(usize::from(length))
    }

    /// The next vector with a 2-byte length prefix.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let length = self.u16()?;
        self.take(usize::from(length))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use rustls_pki_types::ServerName;

    use super::*;

    /// The first flight of a rustls client connecting to `name`: one record with its
    /// ClientHello.
    fn rustls_client_hello(name: ServerName<'static>) -> Vec<u8> {
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        while connection.wants_write() {
            connection.write_tls(&mut out).unwrap();
        }
        out
    }

    /// A rustls ClientHello for `example.test`.
    fn example_hello() -> Vec<u8> {
        rustls_client_hello(ServerName::try_from("example.test").unwrap())
    }

    /// The handshake bytes of a sequence of records (headers dropped).
    fn handshake_bytes(mut records: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !records.is_empty() {
            assert_eq!(records[0], CONTENT_TYPE_HANDSHAKE);
            let length = usize::from(u16::from_be_bytes([records[3], records[4]]));
            out.extend_from_slice(&records[5..5 + length]);
            records = &records[5 + length..];
        }
        out
    }

    /// Handshake bytes framed into handshake records of at most `fragment` bytes each.
    fn frame(handshake: &[u8], fragment: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in handshake.chunks(fragment) {
            out.extend_from_slice(&[CONTENT_TYPE_HANDSHAKE, 3, 1]);
            out.extend_from_slice(&u16::try_from(piece.len()).unwrap().to_be_bytes());
            out.extend_from_slice(piece);
        }
        out
    }

    /// A handshake message of type ClientHello around `body`.
    fn handshake_message(body: &[u8]) -> Vec<u8> {
        let mut out = vec![HANDSHAKE_CLIENT_HELLO];
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        out.extend_from_slice(body);
        out
    }

    /// A minimal ClientHello body carrying the given extensions block (without its length).
    fn hello_body(extensions: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
        body.extend_from_slice(extensions);
        body
    }

    /// A server_name extension (header included) with the given (name type, name) entries.
    fn sni_extension(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in entries {
            list.push(*kind);
            list.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut data = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        let mut out = EXTENSION_SERVER_NAME.to_be_bytes().to_vec();
        out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&data);
        out
    }

    /// The outcome of feeding `bytes` in one call.
    fn feed_all(bytes: &[u8]) -> Option<Outcome> {
        HelloReader::new().feed(bytes)
    }

    /// The outcome of feeding `bytes` one byte per call.
    fn feed_bytewise(bytes: &[u8]) -> Option<Outcome> {
        let mut reader = HelloReader::new();
        for &byte in bytes {
            if let Some(outcome) = reader.feed(&[byte]) {
                return Some(outcome);
            }
        }
        None
    }

    /// `Some(Some(name))`, for comparisons.
    fn named(name: &str) -> Option<Outcome> {
        Some(Some(name.into()))
    }

    #[test]
    fn rustls_hello_gives_its_name_at_once_and_bytewise() {
        let hello = example_hello();
        assert_eq!(feed_all(&hello), named("example.test"));
        assert_eq!(feed_bytewise(&hello), named("example.test"));
    }

    #[test]
    fn rustls_hello_is_undecided_until_its_last_byte() {
        let hello = example_hello();
        for cut in 0..hello.len() {
            assert_eq!(feed_all(&hello[..cut]), None, "prefix of {cut} bytes");
            let mut reader = HelloReader::new();
            assert_eq!(reader.feed(&hello[..cut]), None);
            assert_eq!(reader.feed(&hello[cut..]), named("example.test"));
        }
    }

    #[test]
    fn rustls_hello_to_an_ip_address_has_no_name() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let hello = rustls_client_hello(ServerName::IpAddress(ip.into()));
        assert_eq!(feed_all(&hello), Some(None));
        assert_eq!(feed_bytewise(&hello), Some(None));
    }

    #[test]
    fn hello_split_over_small_records_gives_its_name() {
        let handshake = handshake_bytes(&example_hello());
        for fragment in [1, 3, 4, 5, 100] {
            let records = frame(&handshake, fragment);
            assert_eq!(feed_all(&records), named("example.test"), "{fragment}");
            assert_eq!(feed_bytewise(&records), named("example.test"), "{fragment}");
        }
    }

    #[test]
    fn bytes_after_the_hello_are_ignored_and_later_calls_give_none() {
        let mut bytes = example_hello();
        bytes.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        let mut reader = HelloReader::new();
        assert_eq!(reader.feed(&bytes), named("example.test"));
        assert!(reader.message.capacity() == 0);
        assert_eq!(reader.feed(&example_hello()), Some(None));
    }

    #[test]
    fn plain_text_gives_none_at_once() {
        let mut reader = HelloReader::new();
        assert_eq!(reader.feed(b"G"), Some(None));
        assert_eq!(feed_all(b"GET / HTTP/1.1\r\n"), Some(None));
        assert_eq!(feed_all(&[21, 3, 3, 0, 2, 2, 40]), Some(None)); // an alert
        assert_eq!(feed_all(&[22, 4]), Some(None)); // not a 3.x version
    }

    #[test]
    fn bad_record_lengths_give_none() {
        assert_eq!(feed_all(&[22, 3, 1, 0, 0]), Some(None));
        let too_long = u16::try_from(MAX_RECORD_LEN + 1).unwrap().to_be_bytes();
        assert_eq!(feed_all(&[22, 3, 1, too_long[0], too_long[1]]), Some(None));
        let longest = u16::try_from(MAX_RECORD_LEN).unwrap().to_be_bytes();
        assert_eq!(feed_all(&[22, 3, 1, longest[0], longest[1]]), None);
    }

    #[test]
    fn other_record_before_the_hello_is_complete_gives_none() {
        let handshake = handshake_bytes(&example_hello());
        let mut bytes = frame(&handshake[..50], 50);
        bytes.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        bytes.extend_from_slice(&frame(&handshake[50..], 100));
        assert_eq!(feed_all(&bytes), Some(None));
    }

    #[test]
    fn other_handshake_message_gives_none() {
        let mut message = handshake_message(&hello_body(&sni_extension(&[(0, b"a.test")])));
        message[0] = 2; // ServerHello
        assert_eq!(feed_all(&frame(&message, 100)), Some(None));
        assert_eq!(feed_bytewise(&frame(&message, 1)), Some(None));
    }

    #[test]
    fn hello_longer_than_the_cap_gives_none() {
        let length = u32::try_from(MAX_CLIENT_HELLO + 1).unwrap().to_be_bytes();
        let header = [HANDSHAKE_CLIENT_HELLO, length[1], length[2], length[3]];
        assert_eq!(feed_all(&frame(&header, 4)), Some(None));
        let mut long = hello_body(&[]);
        long.resize(MAX_CLIENT_HELLO + 1, 0);
        let records = frame(&handshake_message(&long), 16384);
        assert_eq!(feed_all(&records), Some(None));
    }

    #[test]
    fn hello_at_the_cap_is_read() {
        let mut extensions = sni_extension(&[(0, b"big.test")]);
        let fixed = hello_body(&extensions).len();
        let padding = MAX_CLIENT_HELLO - fixed - 4;
        extensions.extend_from_slice(&21u16.to_be_bytes()); // padding extension
        extensions.extend_from_slice(&u16::try_from(padding).unwrap().to_be_bytes());
        extensions.resize(extensions.len() + padding, 0);
        let body = hello_body(&extensions);
        assert_eq!(body.len(), MAX_CLIENT_HELLO);
        let records = frame(&handshake_message(&body), 16384);
        assert_eq!(feed_all(&records), named("big.test"));
    }

    #[test]
    fn host_name_entries_are_read_as_specified() {
        let read = |entries: &[(u8, &[u8])]| {
            let message = handshake_message(&hello_body(&sni_extension(entries)));
            feed_all(&frame(&message, 100))
        };
        assert_eq!(read(&[(0, b"a.test")]), named("a.test"));
        assert_eq!(read(&[(7, b"other"), (0, b"b.test")]), named("b.test"));
        assert_eq!(
            read(&[(0, b"first.test"), (0, b"second.test")]),
            named("first.test")
        );
        assert_eq!(read(&[(0, b"")]), Some(None));
        assert_eq!(read(&[(0, b"\xff\xfe")]), Some(None));
        assert_eq!(read(&[(7, b"other")]), Some(None));
        assert_eq!(read(&[]), Some(None));
    }

    #[test]
    fn hello_without_extensions_has_no_name() {
        let mut body = hello_body(&[]);
        body.truncate(body.len() - 2);
        assert_eq!(feed_all(&frame(&handshake_message(&body), 100)), Some(None));
        assert_eq!(feed_all(&frame(&handshake_message(&[]), 4)), Some(None));
    }

    #[test]
    fn overrunning_lengths_give_none() {
        let extension = sni_extension(&[(0, b"a.test")]);
        let good = hello_body(&extension);
        let extensions_at = good.len() - extension.len() - 2;
        let cases: [(usize, [u8; 2]); 4] = [
            (extensions_at, [0xff, 0xff]),     // extensions block
            (extensions_at + 4, [0xff, 0xff]), // server_name extension
            (extensions_at + 6, [0xff, 0xff]), // server name list
            (extensions_at + 9, [0xff, 0xff]), // host name
        ];
        for (at, value) in cases {
            let mut body = good.clone();
            body[at..at + 2].copy_from_slice(&value);
            let records = frame(&handshake_message(&body), 100);
            assert_eq!(feed_all(&records), Some(None), "length at {at}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            feed_all(&frame(&handshake_message(&trailing), 100)),
            Some(None)
        );
        let doubled = [extension.clone(), extension].concat();
        let message = handshake_message(&hello_body(&doubled));
        assert_eq!(feed_all(&frame(&message, 100)), Some(None));
    }

    #[test]
    fn corrupted_hellos_never_panic() {
        let hello = example_hello();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1_000_003).unwrap()
        };
        for _ in 0..3000 {
            let mut bytes = hello.clone();
            for _ in 0..1 + next() % 4 {
                let at = next() % bytes.len();
                bytes[at] ^= u8::try_from(1 + next() % 255).unwrap();
            }
            let cut = bytes.len() - next() % 8;
            let whole = feed_all(&bytes[..cut]);
            assert_eq!(feed_bytewise(&bytes[..cut]), whole);
        }
    }

    /// Whether a reader fed `bytes` (whole, then byte by byte) says the client prefers
    /// ChaCha20; both ways must agree.
    fn chacha20_first_of(bytes: &[u8]) -> bool {
        let mut whole = HelloReader::new();
        assert!(whole.feed(bytes).is_some(), "the outcome is known");
        let mut bytewise = HelloReader::new();
        for &byte in bytes {
            if bytewise.feed(&[byte]).is_some() {
                break;
            }
        }
        assert_eq!(whole.prefers_chacha20(), bytewise.prefers_chacha20());
        whole.prefers_chacha20()
    }

    /// A ClientHello record whose cipher_suites are `suites`, with an SNI for `example.test`.
    fn hello_with_suites(suites: &[u16]) -> Vec<u8> {
        let mut body = hello_body(&sni_extension(&[(0, b"example.test")]));
        let list: Vec<u8> = suites
            .iter()
            .flat_map(|suite| suite.to_be_bytes())
            .collect();
        // hello_body has one suite (4 bytes with its length) after the version, random and
        // empty session id.
        let at = 2 + 32 + 1;
        let mut suites_field = u16::try_from(list.len()).unwrap().to_be_bytes().to_vec();
        suites_field.extend_from_slice(&list);
        body.splice(at..at + 4, suites_field);
        frame(&handshake_message(&body), 1 << 14)
    }

    #[test]
    fn the_first_aead_suite_the_client_lists_tells_its_cipher_preference() {
        let (aes128, aes256, chacha) = (0x1301, 0x1302, 0x1303);
        let (grease, scsv, tls12_chacha, tls12_aes) = (0x0a0a, 0x00ff, 0xcca9, 0xc02b);
        assert!(!chacha20_first_of(&hello_with_suites(&[
            aes128, aes256, chacha
        ])));
        assert!(!chacha20_first_of(&hello_with_suites(&[aes256, chacha])));
        assert!(chacha20_first_of(&hello_with_suites(&[chacha, aes128])));
        assert!(chacha20_first_of(&hello_with_suites(&[
            grease, chacha, aes128
        ])));
        assert!(chacha20_first_of(&hello_with_suites(&[
            scsv,
            tls12_chacha,
            tls12_aes
        ])));
        assert!(!chacha20_first_of(&hello_with_suites(&[
            grease, tls12_aes, chacha
        ])));
        // The SNI is read as before.
        assert_eq!(
            HelloReader::new().feed(&hello_with_suites(&[chacha, aes128])),
            named("example.test")
        );
        // Nothing to choose by: no preference.
        assert!(!chacha20_first_of(&hello_with_suites(&[grease, scsv])));
        assert!(!chacha20_first_of(b"GET / HTTP/1.1\r\n"));

        // rustls's own client, by its provider's order: AES-256 first by default.
        assert!(!chacha20_first_of(&example_hello()));
        let mut provider = (*crate::tls::crypto_provider()).clone();
        provider.cipher_suites.sort_by_key(|suite| {
            crate::tls::bulk_cipher(suite.suite()) != crate::tls::Bulk::ChaCha20
        });
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = ServerName::try_from("example.test").unwrap();
        let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut hello = Vec::new();
        while connection.wants_write() {
            connection.write_tls(&mut hello).unwrap();
        }
        assert!(chacha20_first_of(&hello));
    }
}
