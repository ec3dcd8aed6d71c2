//! The deadlines of one connection once its TLS handshake is done, so that
//! an idle or slow client cannot hold a connection (a file, memory, a slot
//! under the connection cap) for long:
//!
//! - **first request**: from the connection's start until the head of its
//!   first request is complete (it covers a client that never sends one, and
//!   a slow first head);
//! - **keep-alive**: a connection with no request in flight is closed once it
//!   has been idle this long (HTTP/1.1 keep-alive and HTTP/2 alike; HTTP/2
//!   pings and settings do not count as activity);
//! - **header read** (HTTP/1.1): once the first byte of a request's head
//!   arrives, the head must be complete within this time (whichever of this
//!   and the deadline above comes first).
//!
//! While a request is in flight none of them runs; instead its body must
//! arrive within the **body read** time of its head ([`TimedBody`]: a slow
//! upload holds a connection as well as an idle one), handlers have bounds of
//! their own, and HTTP/2 keep-alive pings find dead peers.
//! The listener closes the connection gracefully (HTTP/2 `GOAWAY`) when
//! [`Activity::expired`] completes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::Version;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The deadlines (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub first_request: Duration,
    pub keep_alive: Duration,
    pub header_read: Duration,
    /// For [`TimedBody`]: from a request's head to the end of its body.
    pub body_read: Duration,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    FirstRequest,
    KeepAlive,
    HeaderRead,
}

impl Expired {
    pub fn as_str(self) -> &'static str {
        match self {
            Expired::FirstRequest => "first_request",
            Expired::KeepAlive => "keep_alive",
            Expired::HeaderRead => "header_read",
        }
    }
}

/// What one connection is doing, shared by its reader ([`Tracked`]), its
/// requests ([`InFlight`]) and its watchdog ([`Activity::expired`]).
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    /// Wakes the watchdog when a deadline may have moved earlier (a request
    /// ended, a head began); one waiter, so `notify_one` keeps a wake-up that
    /// comes while it is not waiting.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    began: Instant,
    in_flight: usize,
    requests: u64,
    /// The connection speaks HTTP/2: bytes between requests are frames
    /// (pings, settings), not the start of a head.
    http2: bool,
    /// Bytes have been read (the first ones tell HTTP/2 by its preface).
    read_any: bool,
    idle_since: Instant,
    /// The first byte read since the connection went idle (HTTP/1.1).
    head_began: Option<Instant>,
}

/// How an HTTP/2 connection begins (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                began: now,
                in_flight: 0,
                requests: 0,
                http2: false,
                read_any: false,
                idle_since: now,
                head_began: None,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request's head is complete and it is being handled.
    pub fn request_started(self: &Arc<Self>, version: Version) -> InFlight {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_add(1);
        s.requests = s.requests.saturating_add(1);
        s.http2 = version == Version::HTTP_2;
        s.head_began = None;
        InFlight(Arc::clone(self))
    }

    fn request_ended(&self) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_began = None;
            drop(s);
            self.changed.notify_one();
        }
    }

    /// `data` arrived from the client.
    fn bytes_read(&self, data: &[u8]) {
        let mut s = self.state();
        if !s.read_any {
            s.read_any = true;
            let n = data.len().min(H2_PREFACE.len());
            s.http2 = H2_PREFACE.get(..n).is_some_and(|p| data.get(..n) == Some(p));
        }
        if s.in_flight == 0 && !s.http2 && s.head_began.is_none() {
            s.head_began = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// When the connection must be closed, and why; `None` while a request
    /// is in flight.
    fn deadline(&self, d: &Deadlines) -> Option<(Instant, Expired)> {
        let s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        let base = if s.requests == 0 {
            (s.began + d.first_request, Expired::FirstRequest)
        } else {
            (s.idle_since + d.keep_alive, Expired::KeepAlive)
        };
        Some(match s.head_began {
            Some(t) if t + d.header_read < base.0 => (t + d.header_read, Expired::HeaderRead),
            _ => base,
        })
    }

    /// Completes once a deadline has passed (and is still passed).
    pub async fn expired(&self, d: Deadlines) -> Expired {
        loop {
            let changed = self.changed.notified();
            match self.deadline(&d) {
                None => changed.await,
                Some((when, why)) => {
                    if Instant::now() >= when {
                        return why;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(when) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// A request being handled; the connection is idle again once every one of
/// them is dropped (also when the connection closes mid-request).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A request body that fails once `deadline` passes before its end: the
/// handler sees a body that could not be read and answers with an error.
pub struct TimedBody<B> {
    inner: B,
    deadline: Instant,
    /// Made on the first wait, so a body that is already whole costs none.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, within: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + within,
            timer: None,
        }
    }
}

/// The error of a body that took too long.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's byte stream, reporting reads to its [`Activity`].
pub struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Tracked<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Self {
        Self { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if let Some(data) = buf.filled().get(before..).filter(|d| !d.is_empty()) {
                self.activity.bytes_read(data);
            }
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::*;

    const D: Deadlines = Deadlines {
        first_request: Duration::from_millis(600),
        keep_alive: Duration::from_millis(800),
        header_read: Duration::from_millis(200),
        body_read: Duration::from_millis(200),
    };

    /// `bytes` sent by the client and read by the server through `Tracked`.
    async fn client_sends(activity: &Arc<Activity>, bytes: &[u8]) {
        let (mut client, server) = duplex(1024);
        let mut server = Tracked::new(server, Arc::clone(activity));
        client.write_all(bytes).await.unwrap();
        let mut buf = vec![0u8; bytes.len()];
        server.read_exact(&mut buf).await.unwrap();
    }

    /// How long until `expired` completes, and with which deadline.
    async fn time_to_expiry(activity: &Activity) -> (Duration, Expired) {
        let started = Instant::now();
        let why = tokio::time::timeout(Duration::from_secs(5), activity.expired(D))
            .await
            .unwrap();
        (started.elapsed(), why)
    }

    fn about(elapsed: Duration, expected: Duration) -> bool {
        elapsed >= expected - Duration::from_millis(20) && elapsed < expected + Duration::from_millis(300)
    }

    #[tokio::test]
    async fn a_connection_without_a_request_expires_at_the_first_request_deadline() {
        let activity = Activity::new();
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::FirstRequest);
        assert!(about(elapsed, D.first_request), "{elapsed:?}");
    }

    #[tokio::test]
    async fn no_deadline_runs_while_a_request_is_in_flight_and_keep_alive_after_it() {
        let activity = Arc::new(Activity::new());
        let request = activity.request_started(Version::HTTP_11);
        let waited = tokio::time::timeout(D.keep_alive * 2, activity.expired(D)).await;
        assert!(waited.is_err(), "expired with a request in flight");
        drop(request);
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::KeepAlive);
        assert!(about(elapsed, D.keep_alive), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_watchdog_already_waiting_learns_that_a_request_ended() {
        let activity = Arc::new(Activity::new());
        let request = activity.request_started(Version::HTTP_11);
        let watchdog = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { activity.expired(D).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ended = Instant::now();
        drop(request);
        let why = tokio::time::timeout(Duration::from_secs(5), watchdog)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, Expired::KeepAlive);
        assert!(about(ended.elapsed(), D.keep_alive), "{:?}", ended.elapsed());
    }

    #[tokio::test]
    async fn an_http1_head_that_began_must_end_within_the_header_read_time() {
        let activity = Arc::new(Activity::new());
        drop(activity.request_started(Version::HTTP_11));
        client_sends(&activity, b"GET / HT").await;
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::HeaderRead);
        assert!(about(elapsed, D.header_read), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_slow_first_head_is_cut_off_at_the_header_read_time_too() {
        let activity = Arc::new(Activity::new());
        client_sends(&activity, b"GET / HT").await;
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::HeaderRead);
        assert!(about(elapsed, D.header_read), "{elapsed:?}");
    }

    #[tokio::test]
    async fn a_body_fails_once_its_time_is_up_and_a_whole_one_does_not() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(4);
        let slow = axum::body::Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        tx.send(Ok(axum::body::Bytes::from_static(b"a"))).await.unwrap();
        let started = Instant::now();
        let read = axum::body::to_bytes(
            axum::body::Body::new(TimedBody::new(slow, Duration::from_millis(200))),
            1024,
        )
        .await;
        assert!(read.is_err(), "{read:?}");
        assert!(
            about(started.elapsed(), Duration::from_millis(200)),
            "{:?}",
            started.elapsed()
        );
        drop(tx);

        let whole = TimedBody::new(axum::body::Body::from("whole"), Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let read = axum::body::to_bytes(axum::body::Body::new(whole), 1024).await.unwrap();
        assert_eq!(&read[..], b"whole");
    }

    #[tokio::test]
    async fn http2_frames_do_not_count_as_a_head() {
        let activity = Arc::new(Activity::new());
        client_sends(&activity, H2_PREFACE).await;
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::FirstRequest, "the preface is not a slow head");
        assert!(about(elapsed, D.first_request), "{elapsed:?}");

        drop(activity.request_started(Version::HTTP_2));
        client_sends(&activity, b"PING....").await;
        let (elapsed, why) = time_to_expiry(&activity).await;
        assert_eq!(why, Expired::KeepAlive);
        assert!(about(elapsed, D.keep_alive), "{elapsed:?}");
    }
}
