//! Lingering close: when the server closes a connection, it first sends its
//! own close (TLS `close_notify`, TCP FIN) and then reads and discards what
//! the client is still sending, for a moment, before the socket is dropped.
//!
//! Why: an answer given before the request body was read (401 before
//! authentication lets the body through, 413, 415, 429, an unknown route)
//! leaves the body's bytes unread, and closing a socket with unread bytes
//! makes the kernel send a TCP RST, which can destroy the answer still on its
//! way to the client: the client sees a reset instead of the 4xx. Draining
//! lets the answer arrive (nginx's `lingering_close` does the same).
//!
//! Bounded: at most [`LINGER_BYTES`] are read, for at most [`LINGER_TIME`];
//! past either the socket is dropped as before.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a closing connection keeps reading what the client still sends.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much of it is read (and discarded) at most.
pub const LINGER_BYTES: usize = 1024 * 1024;

/// `I` with a lingering `poll_shutdown`; reads and writes pass through.
pub struct Lingering<I> {
    io: I,
    time: Duration,
    bytes: usize,
    state: State,
}

enum State {
    Open,
    Draining { deadline: Pin<Box<Sleep>>, left: usize },
    Closed,
}

impl<I> Lingering<I> {
    /// Lingers for [`LINGER_TIME`] or [`LINGER_BYTES`], whichever ends first.
    pub fn new(io: I) -> Self {
        Self::with_limits(io, LINGER_TIME, LINGER_BYTES)
    }

    pub fn with_limits(io: I, time: Duration, bytes: usize) -> Self {
        Self {
            io,
            time,
            bytes,
            state: State::Open,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lingering<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<I> {
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
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Open => {
                    let closed = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
                    if closed.is_err() {
                        // Nothing more can be said on this connection.
                        this.state = State::Closed;
                        return Poll::Ready(closed);
                    }
                    this.state = State::Draining {
                        deadline: Box::pin(tokio::time::sleep(this.time)),
                        left: this.bytes,
                    };
                }
                State::Draining { deadline, left } => {
                    if deadline.as_mut().poll(cx).is_ready() {
                        this.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        // The client closed too, or the connection failed: done.
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => this.state = State::Closed,
                        Poll::Ready(Err(_)) => this.state = State::Closed,
                        Poll::Ready(Ok(())) => {
                            *left = left.saturating_sub(buf.filled().len());
                            if *left == 0 {
                                this.state = State::Closed;
                            }
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::Lingering;

    /// The peer of a closing connection: it gets everything written and then
    /// EOF (our close), and may still send: what it sends is read, not
    /// refused, until it closes too.
    #[tokio::test]
    async fn closing_sends_eof_first_then_reads_what_the_client_still_sends() {
        let (server, mut client) = duplex(64);
        let mut server = Lingering::new(server);
        server.write_all(b"HTTP/1.1 405\r\n\r\n").await.unwrap();
        let closing = tokio::spawn(async move { server.shutdown().await });
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.1 405\r\n\r\n", "the answer, then EOF");
        // The late body (more than the pipe holds: it must be read to fit).
        client.write_all(&[b'x'; 10_000]).await.unwrap();
        assert!(!closing.is_finished(), "still lingering while the client sends");
        drop(client);
        closing.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn lingering_is_bounded_in_time() {
        let (server, client) = duplex(64);
        let mut server = Lingering::with_limits(server, Duration::from_millis(100), usize::MAX);
        let started = Instant::now();
        server.shutdown().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(client);
    }

    #[tokio::test]
    async fn lingering_is_bounded_in_bytes() {
        let (server, mut client) = duplex(1024);
        let mut server = Lingering::with_limits(server, Duration::from_secs(60), 4096);
        let closing = tokio::spawn(async move { server.shutdown().await });
        let mut sent = 0;
        while sent < 4096 {
            client.write_all(&[b'x'; 512]).await.unwrap();
            sent += 512;
        }
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        drop(client);
    }
}
