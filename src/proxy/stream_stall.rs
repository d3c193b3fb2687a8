//! HTTP/2 streams whose response waits for the client's flow-control window, bounded by
//! `send_timeout`.
//!
//! A client can stop reading one stream of an HTTP/2 connection (no WINDOW_UPDATE for it, or
//! none for the connection) and keep reading the others, or answer pings: the socket stays
//! writable, so the TLS stream's send timeout ([`crate::tls::stream`]) never fires. hyper then
//! holds the response's next chunk until the window opens and stops polling the body: the
//! stream, its upstream connection and its place in `max_concurrent_streams` and
//! `concurrency_limits` would be held for ever (256 streams a connection). nginx bounds that
//! wait with `send_timeout` too, and resets the stream; so does this.
//!
//! hyper runs each stream as a task of the connection's executor, [`StreamExecutor`], which
//! polls it with a [`Watch`] in a thread-local: while the stream is polled, its service says
//! the timeout ([`watch_stream`]) and its response body says what each poll gave
//! ([`note_frame`]). A stream *waits for the client* while the body's last frame was data and
//! hyper has not asked for another since; only then is a timer taken (one per stream, allocated
//! at its first wait), and it is moved on lazily: bytes taken by the client only note the time,
//! and the timer, when it fires early, is set again from that.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use prometheus::IntCounter;
use tokio::time::{Instant, Sleep};

/// What a stream's poll learns about it.
#[derive(Debug, Default)]
struct Watch {
    /// What the service says (`None` until it does, and for ever for a stream that is not the
    /// proxy's).
    timeout: Option<Timeout>,
    /// The body's last frame was data that hyper has not sent yet (or has, and not asked for
    /// more since): the stream waits for the client's window.
    holding: bool,
    /// The body gave a data frame during this poll: the one before went out.
    progressed: bool,
}

/// A stream's `send_timeout`.
#[derive(Debug)]
struct Timeout {
    timeout: Duration,
    /// The client, for the log line.
    peer: SocketAddr,
    /// Set while the connection's own send waits for the socket
    /// ([`crate::tls::stream::ServerTls::send_waits`]): that wait is the connection's to time.
    connection_waits: Arc<AtomicBool>,
}

thread_local! {
    /// The watch of the stream being polled on this thread, if a [`StreamExecutor`] polls one.
    static WATCH: Cell<Option<Watch>> = const { Cell::new(None) };
}

/// The stream being polled (if any) gets `timeout` as its `send_timeout`; `peer` names the
/// client in the line logged when it runs out; `connection_waits` is its connection's
/// [`crate::tls::stream::ServerTls::send_waits`].
pub(crate) fn watch_stream(timeout: Duration, peer: SocketAddr, connection_waits: Arc<AtomicBool>) {
    if let Some(mut current) = WATCH.take() {
        current.timeout = Some(Timeout {
            timeout,
            peer,
            connection_waits,
        });
        WATCH.set(Some(current));
    }
}

/// The most data a stream's body gives hyper at once. hyper hands a chunk to h2 whole once the
/// window has room for a byte of it, and asks for the next only when h2 has sent it all: a
/// stream's progress is seen chunk by chunk, so chunks are cut to an HTTP/2 frame's default
/// size (a client must take 16 KiB per `send_timeout`; nginx's bound is a byte).
pub(crate) const SLICE: usize = 16 * 1024;

/// What the response body of the stream being polled gave, `polled`, noted (if a stream is):
/// returned as it is, or, a data frame longer than [`SLICE`], its first slice, the rest left in
/// `rest` for the body's next poll to give first.
pub(crate) fn note_frame<E>(
    polled: Poll<Option<Result<Frame<Bytes>, E>>>,
    rest: &mut Option<Bytes>,
) -> Poll<Option<Result<Frame<Bytes>, E>>> {
    let Some(mut current) = WATCH.take() else {
        return polled;
    };
    let data = matches!(&polled, Poll::Ready(Some(Ok(frame))) if frame.is_data());
    current.holding = data;
    current.progressed |= data;
    WATCH.set(Some(current));
    match polled {
        Poll::Ready(Some(Ok(frame))) if frame.data_ref().is_some_and(|data| data.len() > SLICE) => {
            let mut data = frame.into_data().unwrap_or_default();
            let first = data.split_to(SLICE);
            *rest = Some(data);
            Poll::Ready(Some(Ok(Frame::data(first))))
        }
        polled => polled,
    }
}

/// hyper's executor for the proxy's HTTP/2 streams: each runs as a task in the caller's span,
/// reset once it has waited `send_timeout` for the client's window with none of its response
/// taken.
#[derive(Clone, Debug)]
pub(crate) struct StreamExecutor {
    /// `client_errors_total{kind="send_timeout"}`.
    timed_out: IntCounter,
}

impl StreamExecutor {
    pub(crate) fn new(timed_out: IntCounter) -> StreamExecutor {
        StreamExecutor { timed_out }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        crate::telemetry::spawn_in_span(watched(stream, self.timed_out.clone()));
    }
}

/// Runs `stream`, ending it (hyper's stream dropped: h2 resets it with CANCEL) once it has
/// waited its `send_timeout` for the client.
async fn watched<F: Future<Output = ()>>(stream: F, timed_out: IntCounter) {
    let mut stream = pin!(stream);
    let mut watch = Watch::default();
    let mut stall: Option<Pin<Box<Sleep>>> = None;
    // When the client last took some of the response.
    let mut taken = Instant::now();
    poll_fn(|cx: &mut Context<'_>| {
        let outer = WATCH.replace(Some(std::mem::take(&mut watch)));
        let polled = stream.as_mut().poll(cx);
        watch = WATCH.replace(outer).unwrap_or_default();
        if polled.is_ready() {
            return Poll::Ready(());
        }
        let Some(limit) = watch.timeout.as_ref().filter(|_| watch.holding) else {
            return Poll::Pending;
        };
        if std::mem::take(&mut watch.progressed) {
            taken = Instant::now();
        }
        let stall =
            stall.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(taken + limit.timeout)));
        while stall.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if limit.connection_waits.load(Ordering::Relaxed) {
                // The socket is full: the connection's send timeout runs, and the stream's wait
                // starts again once the connection's is over.
                taken = now;
            }
            let deadline = taken + limit.timeout;
            if deadline <= now {
                timed_out.inc();
                tracing::info!(peer = %limit.peer, "stream reset: the client gave its response no room for send_timeout");
                return Poll::Ready(());
            }
            stall.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's window, in chunks, and the stream's waker.
    #[derive(Default)]
    struct Window(std::sync::Mutex<(u32, Option<std::task::Waker>)>);

    impl Window {
        fn open(&self, chunks: u32) {
            let mut window = self.0.lock().unwrap();
            window.0 = chunks;
            if let Some(waker) = window.1.take() {
                waker.wake();
            }
        }
    }

    /// A stream as hyper polls it: its body gives data while the window has room, and is not
    /// polled while it has none.
    struct Held {
        window: Arc<Window>,
        sent: u32,
        connection_waits: Arc<AtomicBool>,
    }

    impl Future for Held {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            watch_stream(
                Duration::from_secs(5),
                "192.0.2.1:1".parse().unwrap(),
                self.connection_waits.clone(),
            );
            let window = self.window.clone();
            let mut window = window.0.lock().unwrap();
            while self.sent < window.0 {
                self.sent += 1;
                let _ = note_frame::<()>(
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x"))))),
                    &mut None,
                );
            }
            window.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_for_its_window_ends_after_send_timeout_unless_the_client_takes_some()
    {
        let timed_out = IntCounter::new("t", "t").unwrap();
        let window = Arc::new(Window::default());
        let connection_waits = Arc::new(AtomicBool::new(false));
        window.open(1);
        let mut task = tokio::spawn(watched(
            Held {
                window: window.clone(),
                sent: 0,
                connection_waits: connection_waits.clone(),
            },
            timed_out.clone(),
        ));
        // Some of the response taken every 4 s: never more than 5 s without.
        for open in 2..6 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            assert!(!task.is_finished(), "ended while the client was reading");
            window.open(open);
        }
        // The connection's socket is full: its wait, not the stream's.
        connection_waits.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20_500)).await;
        assert!(!task.is_finished(), "ended while the connection waited");
        connection_waits.store(false, Ordering::Relaxed);
        let waited = Instant::now();
        (&mut task).await.unwrap();
        assert!(waited.elapsed() <= Duration::from_secs(5));
        assert_eq!(timed_out.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_for_its_upstream_is_not_timed_out() {
        let timed_out = IntCounter::new("t", "t").unwrap();
        let upstream = watched(
            async {
                watch_stream(
                    Duration::from_secs(1),
                    "192.0.2.1:1".parse().unwrap(),
                    Arc::default(),
                );
                // The body asked and pending: the upstream is slow, not the client.
                poll_fn(|_| {
                    let _ = note_frame::<()>(Poll::Pending, &mut None);
                    Poll::<()>::Pending
                })
                .await;
            },
            timed_out.clone(),
        );
        assert!(
            tokio::time::timeout(Duration::from_secs(60), upstream)
                .await
                .is_err()
        );
        assert_eq!(timed_out.get(), 0);
    }

    #[test]
    fn outside_a_watched_stream_nothing_is_noted() {
        watch_stream(
            Duration::from_secs(1),
            "192.0.2.1:1".parse().unwrap(),
            Arc::default(),
        );
        let long = Bytes::from(vec![7; 3 * SLICE]);
        let mut rest = None;
        let polled = note_frame::<()>(Poll::Ready(Some(Ok(Frame::data(long.clone())))), &mut rest);
        assert!(WATCH.take().is_none());
        // HTTP/1: given whole.
        assert!(matches!(polled, Poll::Ready(Some(Ok(frame))) if frame.data_ref() == Some(&long)));
        assert_eq!(rest, None);
    }

    #[test]
    fn a_watched_streams_long_data_is_given_a_slice_at_a_time() {
        let long = Bytes::from((0..=255).cycle().take(2 * SLICE + 5).collect::<Vec<u8>>());
        WATCH.set(Some(Watch::default()));
        let mut rest = None;
        let mut given = Vec::new();
        let mut next = Some(long.clone());
        while let Some(data) = next.take() {
            let Poll::Ready(Some(Ok(frame))) =
                note_frame::<()>(Poll::Ready(Some(Ok(Frame::data(data)))), &mut rest)
            else {
                panic!("not data");
            };
            given.push(frame.into_data().unwrap());
            next = rest.take();
        }
        let watch = WATCH.replace(None).unwrap();
        assert_eq!(
            given.iter().map(Bytes::len).collect::<Vec<_>>(),
            [SLICE, SLICE, 5]
        );
        assert_eq!(given.concat(), long);
        assert!(watch.holding && watch.progressed);
    }
}
