//! Reading what is left of a request body before its answer leaves, so that
//! an answer given before the body was read (401, 403, 404, 413, 415, …)
//! reaches the client as an answer and not as a stream error.
//!
//! Why: over HTTP/2, a body left unread when the answer is sent makes the
//! server end the stream with `RST_STREAM(NO_ERROR)` while the client is
//! still uploading, as RFC 9113 §8.1 allows; Debian 12's curl (7.88) then
//! fails with `(92) Stream error in the HTTP/2 framing layer` instead of
//! showing the 401. Read to its end, the body needs no reset. Over HTTP/1.1
//! the unread bytes would cost the connection its keep-alive.
//!
//! What must hold:
//! - Nothing is buffered: drained bytes are discarded as they arrive.
//! - At most the body limit is read in all (what the handler read counts),
//!   for at most [`DRAIN_TIME`]. A body that is announced or turns out to be
//!   larger, or arrives slower, is not read further (the reset above then
//!   ends its stream, after the answer). The answer itself never changes.
//! - A request with `Expect: 100-continue` is left alone: its client sends
//!   the body only when asked, and an early answer is what it hoped for.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap};
#[cfg(test)]
use axum::middleware::Next;
#[cfg(test)]
use axum::response::Response;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::oneshot;

/// How long the rest of an unread body may take to arrive.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// A request body being watched for what its handler leaves unread
/// ([`track`]), to be drained by [`finish`] once the answer is ready.
pub struct Unread(Option<oneshot::Receiver<Leftover>>);

/// Wraps the body of `req` so that whatever the handler leaves of it comes
/// back to [`finish`]. A request without a body, or one whose client waits
/// for `100-continue`, is left as it is.
pub fn track(req: Request) -> (Request, Unread) {
    if req.body().is_end_stream() || waits_for_continue(req.headers()) {
        return (req, Unread(None));
    }
    let (parts, body) = req.into_parts();
    let (tx, rx) = oneshot::channel();
    (
        Request::from_parts(parts, Body::new(Tracked::new(body, tx))),
        Unread(Some(rx)),
    )
}

/// Reads (and discards) what the handler left of the body [`track`]ed,
/// within `limit` bytes in all and [`DRAIN_TIME`].
pub async fn finish(unread: Unread, limit: usize) {
    finish_within(unread, limit, DRAIN_TIME).await;
}

async fn finish_within(unread: Unread, limit: usize, time: Duration) {
    // Sent when the handler dropped a body it had not read to its end.
    let Some(Ok(Leftover { mut body, read })) = unread.0.map(|mut rx| rx.try_recv()) else {
        return;
    };
    let budget = limit.saturating_sub(read);
    let announced_larger = body.size_hint().lower() > u64::try_from(budget).unwrap_or(u64::MAX);
    if !announced_larger {
        if let Ok(Ok(())) = tokio::time::timeout(time, discard(&mut body, budget)).await {
            return;
        }
    }
    tracing::debug!(read, "request body left unread: larger than the body limit or too slow");
    // Dropped unread: hyper resets the HTTP/2 stream with NO_ERROR once the
    // answer has been sent (it holds the stream until then).
    drop(body);
}

/// [`track`] and [`finish`] around the rest of the stack, as a middleware
/// (the router does both inside its request context instead, which saves a
/// layer on every request).
#[cfg(test)]
async fn drain_within(limit: usize, time: Duration, req: Request, next: Next) -> Response {
    let (req, unread) = track(req);
    let response = next.run(req).await;
    finish_within(unread, limit, time).await;
    response
}

#[cfg(test)]
async fn drain_with_limit(limit: usize, req: Request, next: Next) -> Response {
    drain_within(limit, DRAIN_TIME, req, next).await
}

fn waits_for_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Reads `body` to its end, discarding it. `Err` past `budget` bytes or on a
/// failed read.
async fn discard(body: &mut Body, budget: usize) -> Result<(), ()> {
    let mut left = budget;
    loop {
        match poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
            None => return Ok(()),
            Some(Err(_)) => return Err(()),
            Some(Ok(frame)) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                left = left.checked_sub(n).ok_or(())?;
            }
        }
    }
}

/// What a handler left of a body: the body and how much of it was read.
struct Leftover {
    body: Body,
    read: usize,
}

/// The request body as handlers see it: counts what is read and, when
/// dropped before its end, hands the rest back to the middleware.
struct Tracked {
    /// `None` once the body ended or failed: nothing is left to read.
    inner: Option<Body>,
    read: usize,
    back: Option<oneshot::Sender<Leftover>>,
}

impl Tracked {
    fn new(body: Body, back: oneshot::Sender<Leftover>) -> Self {
        Self {
            inner: Some(body),
            read: 0,
            back: Some(back),
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.read = this.read.saturating_add(frame.data_ref().map_or(0, Bytes::len));
            }
            Poll::Ready(None | Some(Err(_))) => this.inner = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(body), Some(back)) = (self.inner.take(), self.back.take()) {
            if !body.is_end_stream() {
                // The receiver is gone only if the middleware is: nothing to do.
                let _ = back.send(Leftover { body, read: self.read });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::middleware::from_fn;
    use axum::routing::post;
    use axum::Router;
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    use super::*;

    /// A body fed through a channel, which counts what was taken from it.
    fn streamed() -> (mpsc::Sender<Bytes>, Body, Arc<AtomicUsize>) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        let taken = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&taken);
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|chunk| {
                chunk.map(|c| {
                    counter.fetch_add(c.len(), Ordering::SeqCst);
                    Ok::<_, std::io::Error>(c)
                })
            })
        });
        (tx, Body::from_stream(stream), taken)
    }

    /// A route that refuses without reading the body, behind the drain.
    fn refusing(limit: usize) -> Router {
        Router::new()
            .route("/", post(|| async { StatusCode::UNAUTHORIZED }))
            .layer(from_fn(move |req, next| drain_with_limit(limit, req, next)))
    }

    #[tokio::test]
    async fn an_unread_body_is_read_to_its_end_before_the_answer() {
        let (tx, body, taken) = streamed();
        for _ in 0..4 {
            tx.send(Bytes::from(vec![b'x'; 1000])).await.unwrap();
        }
        drop(tx);
        let answer = refusing(64 * 1024)
            .oneshot(Request::post("/").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(taken.load(Ordering::SeqCst), 4000, "the whole body was read");
    }

    #[tokio::test]
    async fn no_more_than_the_limit_is_read() {
        let (tx, body, taken) = streamed();
        let sender = tokio::spawn(async move {
            for _ in 0..100 {
                if tx.send(Bytes::from(vec![b'x'; 1000])).await.is_err() {
                    break;
                }
            }
        });
        let answer = refusing(10_000)
            .oneshot(Request::post("/").body(body).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        sender.await.unwrap();
        let read = taken.load(Ordering::SeqCst);
        assert!(read <= 11_000, "read {read} bytes past a 10,000-byte limit");
    }

    #[tokio::test]
    async fn a_body_announced_larger_than_the_limit_is_not_read() {
        let (tx, body, taken) = streamed();
        tx.send(Bytes::from(vec![b'x'; 1000])).await.unwrap();
        let request = Request::post("/")
            .header("content-length", "1000000")
            .body(body)
            .unwrap();
        // Body::from_stream has no length of its own; a hint stands in for
        // hyper's, which carries the Content-Length.
        let request = request.map(|b| Body::new(Hinted(b, 1_000_000)));
        let answer = refusing(64 * 1024).oneshot(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(taken.load(Ordering::SeqCst), 0);
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_given_up_after_the_drain_time() {
        let (tx, body, _) = streamed();
        let time = Duration::from_millis(300);
        let app = Router::new()
            .route("/", post(|| async { StatusCode::UNAUTHORIZED }))
            .layer(from_fn(move |req, next| drain_within(64 * 1024, time, req, next)));
        let started = std::time::Instant::now();
        let answer = app.oneshot(Request::post("/").body(body).unwrap()).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert!(started.elapsed() >= time);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(tx);
    }

    #[tokio::test]
    async fn a_client_waiting_for_100_continue_is_answered_without_reading() {
        let (tx, body, taken) = streamed();
        tx.send(Bytes::from_static(b"{}")).await.unwrap();
        let request = Request::post("/").header("expect", "100-continue").body(body).unwrap();
        let answer = refusing(64 * 1024).oneshot(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(taken.load(Ordering::SeqCst), 0);
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_the_handler_read_is_not_read_again() {
        let app = Router::new()
            .route("/", post(|body: Bytes| async move { body.len().to_string() }))
            .layer(from_fn(|req, next| drain_with_limit(64 * 1024, req, next)));
        let answer = app
            .oneshot(Request::post("/").body(Body::from("hello")).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let text = axum::body::to_bytes(answer.into_body(), 100).await.unwrap();
        assert_eq!(&text[..], b"5", "the handler got the whole body");
    }

    struct Hinted(Body, u64);

    impl HttpBody for Hinted {
        type Data = Bytes;
        type Error = axum::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            Pin::new(&mut self.0).poll_frame(cx)
        }
        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.1)
        }
    }
}
