//! A raw HTTP/1.1 upstream that keeps the exact bytes of every request it receives and answers
//! each with one fixed response. It parses just enough to find where a request ends
//! (`Content-Length`, or a chunked body up to its `0\r\n\r\n`), so what a proxy sent is seen
//! byte for byte, not as a server library would normalise it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request line and header lines, `\r\n` ends removed.
    pub head: Vec<String>,
    /// The body bytes as sent (chunk framing included).
    pub body: Vec<u8>,
    /// Whether the request ended where its framing says; false when the connection closed
    /// first (the proxy abandoned it).
    pub complete: bool,
}

impl Received {
    /// The request line.
    pub fn request_line(&self) -> &str {
        self.head.first().map_or("", String::as_str)
    }

    /// Every `name: value` line with this name (case-insensitive), values only, in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.head
            .iter()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }
}

/// When the recorder answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Once the whole request is in.
    AfterBody,
    /// As soon as the request's head is in, before its body is read (an upstream that answers
    /// an upload at once).
    AtHead,
    /// At the head, with a response head announcing 100 bytes and only `partial` of them
    /// sent: the response stays unfinished.
    Unfinished,
    /// Once the whole request is in, with the status its path ends in (`/x/503`; 200 for
    /// any other path), `WWW-Authenticate: Basic realm="app"` and the body `app STATUS METHOD
    /// PATH\n`.
    StatusOfPath,
    /// Once the whole request is in: a path starting `/accel` is answered with `X-Accel-Redirect:`
    /// the rest of the target (`/accel/files/a.txt?x=1` names `/files/a.txt?x=1`, `/accel@app`
    /// names `@app`), headers nginx keeps for the path's response and others it drops, and a
    /// body that must not reach the client; any other, `200` with `Content-Type: text/x-inner`
    /// and the body `inner METHOD TARGET CONTENT-LENGTH\n`.
    Accel,
}

/// The recording upstream; it serves until dropped.
pub struct Recorder {
    /// Where it listens.
    pub address: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Listens on 127.0.0.1:0 and answers every request `200` with `extra` header lines (each
    /// ending in `\r\n`) and the body `ok\n`.
    pub async fn start(extra: &'static str) -> Recorder {
        Recorder::start_with(extra, Answer::AfterBody).await
    }

    /// Like [`Recorder::start`], answering as `answer` says.
    pub async fn start_with(extra: &'static str, answer: Answer) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let address = listener.local_addr().expect("recorder address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone(), extra, answer));
            }
        });
        Recorder {
            address,
            requests,
            task,
        }
    }

    /// The requests received so far, which are forgotten.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// Waits (15 s at most) until `count` requests, complete or not, have arrived, and takes
    /// them. An abandoned request is recorded when the proxy closes the connection, which may
    /// be just after the client got its answer.
    pub async fn wait_take(&self, count: usize) -> Vec<Received> {
        let start = Instant::now();
        while self.requests.lock().unwrap().len() < count {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the upstream got {} requests, not {count}",
                self.requests.lock().unwrap().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.take()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    requests: Arc<Mutex<Vec<Received>>>,
    extra: &str,
    answer: Answer,
) {
    let response =
        format!("HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-upstream: recorder\r\n{extra}\r\nok\n");
    let mut buffer = Vec::new();
    loop {
        let early_response = match answer {
            Answer::AfterBody | Answer::StatusOfPath | Answer::Accel => None,
            Answer::AtHead => Some(response.as_bytes()),
            Answer::Unfinished => {
                Some(&b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial"[..])
            }
        };
        let early = early_response.is_some();
        let (received, rest) = read_request(&mut stream, buffer, early_response).await;
        let Some(received) = received else { return };
        let complete = received.complete;
        let response = match answer {
            Answer::StatusOfPath => {
                let line: Vec<&str> = received.request_line().split(' ').collect();
                let (method, path) = (line[0], line.get(1).copied().unwrap_or("/"));
                let status = path
                    .rsplit('/')
                    .next()
                    .and_then(|last| last.parse::<u16>().ok())
                    .filter(|code| (200..=599).contains(code))
                    .unwrap_or(200);
                let body = format!("app {status} {method} {path}\n");
                format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nx-upstream: \
                     recorder\r\nwww-authenticate: Basic realm=\"app\"\r\n{extra}\r\n{body}",
                    body.len()
                )
            }
            Answer::Accel => {
                let line: Vec<&str> = received.request_line().split(' ').collect();
                let (method, target) = (line[0], line.get(1).copied().unwrap_or("/"));
                match target.strip_prefix("/accel") {
                    Some(to) => {
                        let body = "the app's own body\n";
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nX-Accel-Redirect: {to}\r\n\
                             Content-Type: text/x-app\r\nContent-Disposition: attachment; \
                             filename=\"report.txt\"\r\nSet-Cookie: seen=1\r\nSet-Cookie: \
                             more=2\r\nCache-Control: private\r\nExpires: Thu, 01 Jan 2037 \
                             00:00:00 GMT\r\nAccept-Ranges: none\r\nETag: \"app\"\r\nX-Custom: \
                             dropped\r\nVary: Cookie\r\nX-Accel-Buffering: no\r\n{extra}\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        let length = received.header("content-length").join(",");
                        let body = format!("inner {method} {target} {length}\n");
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: \
                             text/x-inner\r\n{extra}\r\n{body}",
                            body.len()
                        )
                    }
                }
            }
            _ => response.clone(),
        };
        requests.lock().unwrap().push(received);
        if !complete || (!early && stream.write_all(response.as_bytes()).await.is_err()) {
            return;
        }
        buffer = rest;
    }
}

/// Reads one request from `stream` (`buffer` holds bytes already read); None when the
/// connection closed before any byte of it. Also returns the bytes read past its end.
/// `early_response`, when given, is written once the head is in.
async fn read_request(
    stream: &mut TcpStream,
    mut buffer: Vec<u8>,
    early_response: Option<&[u8]>,
) -> (Option<Received>, Vec<u8>) {
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        if !fill(stream, &mut buffer).await {
            let received = (!buffer.is_empty()).then(|| Received {
                head: lines(&buffer),
                body: Vec::new(),
                complete: false,
            });
            return (received, Vec::new());
        }
    };
    let head = lines(&buffer[..head_end]);
    if let Some(response) = early_response {
        let _ = stream.write_all(response).await;
    }
    let mut body = buffer.split_off(head_end + 4);
    let header = |name: &str| {
        head.iter().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut complete = true;
    let end = loop {
        let end = if chunked {
            find(&body, b"0\r\n\r\n")
                .filter(|at| *at == 0 || body[..*at].ends_with(b"\r\n"))
                .map(|at| at + 5)
        } else {
            (body.len() >= length).then_some(length)
        };
        if let Some(end) = end {
            break end;
        }
        if !fill(stream, &mut body).await {
            complete = false;
            break body.len();
        }
    };
    let rest = body.split_off(end);
    (
        Some(Received {
            head,
            body,
            complete,
        }),
        rest,
    )
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lines(head: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}
