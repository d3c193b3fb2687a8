//! HTTP/1.1 connections parked between requests (`src/proxy/park.rs`): a keep-alive connection
//! quiet for 100 ms gives its hyper connection up and gets a new one when the client sends
//! again. What a client relies on must not change across that: every request answered, in
//! order, on the same connection; bytes of a request sent before the park not lost; a body
//! or a response in progress never cut; idle timeout and shutdown still close the connection.
//!
//! The pauses below (400 ms) only make parking happen; no assertion depends on how long anything
//! takes.

use super::*;

/// Longer than the proxy's park delay (100 ms), so the connection is parked during it.
const PAUSE: Duration = Duration::from_millis(400);

const PARKED: &str = "pki_sidecar_proxy_connections_parked";

/// One HTTP/1.1 response: its status, head and `Content-Length` body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads `count` responses (each with a `Content-Length`) from `tls`, keeping any bytes past
/// one response for the next.
async fn read_answers(tls: &mut Tls, count: usize) -> Vec<Answer> {
    let mut received = Vec::new();
    let mut answers = Vec::new();
    let mut buffer = vec![0u8; 16384];
    while answers.len() < count {
        let parsed = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .and_then(|head_end| {
                let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .expect("a Content-Length");
                (received.len() >= head_end + 4 + length).then_some((head, head_end, length))
            });
        if let Some((head, head_end, length)) = parsed {
            let status = head
                .split(' ')
                .nth(1)
                .expect("status")
                .parse()
                .expect("status");
            let body = received[head_end + 4..head_end + 4 + length].to_vec();
            received.drain(..head_end + 4 + length);
            answers.push(Answer { status, head, body });
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            Ok(result) => panic!(
                "the connection closed after {} of {count} answers: {result:?}",
                answers.len()
            ),
            Err(_) => panic!("no answer within 20 s ({} of {count})", answers.len()),
        }
    }
    assert!(received.is_empty(), "bytes past the last answer");
    answers
}

/// The request URI the echo upstream describes in `answer`.
fn echoed_uri(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.head);
    let description: serde_json::Value =
        serde_json::from_slice(&answer.body).expect("the echo upstream's JSON");
    description["uri"].as_str().expect("uri").to_string()
}

async fn h1_client(fixture: &Fixture) -> Tls {
    tls_connect(
        fixture.proxy.address,
        client_config(&fixture.ca.pem, H1, None),
    )
    .await
    .expect("TLS handshake")
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_after_pauses_are_served_on_the_same_connection() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut tls = h1_client(&fixture).await;
    for i in 0..4 {
        tls.write_all(get(&format!("/after-pause-{i}")).as_bytes())
            .await
            .expect("write");
        let answers = read_answers(&mut tls, 1).await;
        assert_eq!(echoed_uri(&answers[0]), format!("/after-pause-{i}"));
        // Parked while it waits (the gauge is only waited for, never timed).
        fixture.proxy.wait_metric(PARKED, 1.0).await;
    }
    assert_eq!(
        fixture
            .proxy
            .metric("pki_sidecar_proxy_tls_handshakes_total{result=\"success\"}"),
        1.0,
        "one connection served them all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_begun_before_a_park_is_finished_after_it() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut tls = h1_client(&fixture).await;
    // A whole request and the start of the next, then the rest of it after a pause: the bytes
    // hyper read before the park are replayed to the next hyper connection.
    let (first, second) = (get("/first"), get("/second-of-two"));
    let (start, rest) = second.split_at(14);
    tls.write_all(format!("{first}{start}").as_bytes())
        .await
        .expect("write");
    let answers = read_answers(&mut tls, 1).await;
    assert_eq!(echoed_uri(&answers[0]), "/first");
    tokio::time::sleep(PAUSE).await;
    tls.write_all(rest.as_bytes()).await.expect("write");
    let answers = read_answers(&mut tls, 1).await;
    assert_eq!(echoed_uri(&answers[0]), "/second-of-two");
    // Only the start of a request line, parked, then the rest.
    tls.write_all(b"GE").await.expect("write");
    tokio::time::sleep(PAUSE).await;
    tls.write_all(get("/third").get(2..).unwrap().as_bytes())
        .await
        .expect("write");
    let answers = read_answers(&mut tls, 1).await;
    assert_eq!(echoed_uri(&answers[0]), "/third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_across_parks() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut tls = h1_client(&fixture).await;
    for round in 0..2 {
        let paths: Vec<String> = (0..5).map(|i| format!("/pipelined-{round}-{i}")).collect();
        let batch: String = paths.iter().map(|path| get(path)).collect();
        tls.write_all(batch.as_bytes()).await.expect("write");
        let answers = read_answers(&mut tls, paths.len()).await;
        let uris: Vec<String> = answers.iter().map(echoed_uri).collect();
        assert_eq!(uris, paths);
        tokio::time::sleep(PAUSE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_paused_mid_way_reach_the_upstream_whole() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut tls = h1_client(&fixture).await;
    // Larger than any buffer on the way (hyper's 8 KiB, rustls's 16 KiB records), sent in
    // parts with pauses: the connection must not be parked while the body is read.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let expected = format!(
        "{} {}",
        body.len(),
        hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref())
    );
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(PAUSE).await;
    let (first, rest) = body.split_at(30_000);
    tls.write_all(first).await.expect("write");
    tokio::time::sleep(PAUSE).await;
    assert_eq!(fixture.proxy.metric(PARKED), 0.0, "parked in a body");
    tls.write_all(rest).await.expect("write");
    let answers = read_answers(&mut tls, 1).await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].head);
    assert_eq!(String::from_utf8_lossy(&answers[0].body), expected);

    // The same body chunked, with pauses between chunks and before the last one.
    tokio::time::sleep(PAUSE).await;
    tls.write_all(
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .expect("write");
    for part in body.chunks(40_000) {
        tokio::time::sleep(PAUSE).await;
        tls.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await
            .expect("write");
        tls.write_all(part).await.expect("write");
        tls.write_all(b"\r\n").await.expect("write");
    }
    tokio::time::sleep(PAUSE).await;
    tls.write_all(b"0\r\n\r\n").await.expect("write");
    let answers = read_answers(&mut tls, 1).await;
    assert_eq!(answers[0].status, 200, "{}", answers[0].head);
    assert_eq!(String::from_utf8_lossy(&answers[0].body), expected);

    // And the connection is still good for a plain request afterwards.
    tls.write_all(get("/after-uploads").as_bytes())
        .await
        .expect("write");
    assert_eq!(
        echoed_uri(&read_answers(&mut tls, 1).await[0]),
        "/after-uploads"
    );
}

/// An upstream answering every request with `size` bytes, and the count of requests it got.
async fn large_upstream(size: usize) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().unwrap();
    let body = Bytes::from((0..size).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, requests)
}

/// A client whose socket's receive buffer stays at 64 KiB. The kernel grows the receive buffer
/// of a socket that is read quickly, up to `net.ipv4.tcp_rmem`'s maximum (32 MiB on some
/// machines): after one response read in full, the next one could fit in it whole, leave the
/// proxy between messages, and be parked as it should. A buffer set by the application is not
/// grown, so what a client leaves unread stays in flight in the proxy (its send buffer is at
/// most `net.ipv4.tcp_wmem`'s maximum, 4 MiB by default).
async fn h1_client_keeping_a_response_in_flight(fixture: &Fixture) -> Tls {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    let kept = socket.recv_buffer_size().expect("SO_RCVBUF");
    assert!(kept <= 1 << 20, "a receive buffer of {kept} bytes");
    let tcp = socket
        .connect(fixture.proxy.address)
        .await
        .expect("connect");
    tls_on(tcp, client_config(&fixture.ca.pem, H1, None))
        .await
        .expect("TLS handshake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_read_slowly_is_never_cut_by_a_park() {
    // Twice what the proxy's socket can hold unsent, so the response cannot leave it whole
    // while the client reads nothing.
    let send_buffer_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .expect("tcp_wmem")
        .split_whitespace()
        .nth(2)
        .and_then(|max| max.parse().ok())
        .expect("tcp_wmem's maximum");
    let size = (16 << 20).max(2 * send_buffer_max);
    let (upstream, requests) = large_upstream(size).await;
    let fixture = fixture(upstream, "").await;
    let mut tls = h1_client_keeping_a_response_in_flight(&fixture).await;
    for round in 1..=2 {
        tls.write_all(get("/large").as_bytes())
            .await
            .expect("write");
        // Once the proxy has passed the request on (the second one after waking from a park),
        // the client reads nothing for a while: the proxy's writes wait on a full socket, the
        // response is in flight and the connection must stay with hyper.
        let waiting = Instant::now();
        while requests.load(Ordering::SeqCst) < round {
            assert!(
                waiting.elapsed() < Duration::from_secs(20),
                "request {round} never reached the upstream"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(PAUSE).await;
        assert_eq!(fixture.proxy.metric(PARKED), 0.0, "parked in a response");
        let answers = read_answers(&mut tls, 1).await;
        assert_eq!(answers[0].status, 200, "{}", answers[0].head);
        assert_eq!(answers[0].body.len(), size);
        assert!(
            answers[0]
                .body
                .iter()
                .enumerate()
                .all(|(i, &b)| b == (i % 253) as u8),
            "the body arrived intact"
        );
        tokio::time::sleep(PAUSE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_connection_is_closed_at_idle_timeout_with_close_notify() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "  idle_timeout = \"1s\"\n").await;
    let mut tls = h1_client(&fixture).await;
    tls.write_all(get("/once").as_bytes()).await.expect("write");
    assert_eq!(echoed_uri(&read_answers(&mut tls, 1).await[0]), "/once");
    let started = Instant::now();
    // A TLS close_notify reads as a clean end (Ok(0)); a bare TCP close would be an error.
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buffer))
        .await
        .expect("the parked connection was never closed");
    assert_eq!(read.expect("a clean TLS close"), 0);
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "closed after {:?}, before idle_timeout",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_parked_connections_and_returns() {
    let (upstream, _state) = echo_upstream().await;
    let fixture = fixture(upstream, "").await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut tls = h1_client(&fixture).await;
        tls.write_all(get(&format!("/before-shutdown-{i}")).as_bytes())
            .await
            .expect("write");
        read_answers(&mut tls, 1).await;
        clients.push(tls);
    }
    fixture.proxy.wait_metric(PARKED, 3.0).await;
    let Fixture { proxy, .. } = fixture;
    proxy.stop().await;
    for mut tls in clients {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buffer))
            .await
            .expect("the parked connection was closed at shutdown");
        assert_eq!(read.expect("a clean TLS close"), 0);
    }
}

/// A request with an `Upgrade` header that asks to close (`Connection: close`, no `upgrade`
/// token): hyper hands the stream over at the end rather than shutting it down, and the
/// response, which the upstream produced, still reaches the client whole — a GET, a POST with a
/// body, and a response larger than the TLS buffers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_header_with_connection_close_gets_its_whole_response() {
    let size = 100_000;
    let (upstream, requests) = large_upstream(size).await;
    let fixture = fixture(upstream, "").await;
    for request in [
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: localhost\r\nUpgrade: foo\r\nConnection: close\r\n\
         Content-Length: 5\r\n\r\nhello",
        "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\
         Connection: close, HTTP2-Settings\r\n\r\n",
    ] {
        let mut tls = h1_client(&fixture).await;
        tls.write_all(request.as_bytes()).await.expect("write");
        let answers = read_answers(&mut tls, 1).await;
        assert_eq!(answers[0].status, 200, "{}", answers[0].head);
        assert_eq!(answers[0].body.len(), size, "{request:?}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}
