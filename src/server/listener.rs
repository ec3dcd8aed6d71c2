//! The accept loop: the connection cap (`capacity`), TLS handshakes with a
//! deadline, HTTP/1.1 and HTTP/2 connections with their deadlines
//! (`deadlines`) and HTTP/2 keep-alive pings, lingering close (`linger`), and
//! graceful shutdown.
//!
//! `serve(listener, …, shutdown)` takes its listener and shutdown signal as
//! parameters, so tests bind `127.0.0.1:0` and stop the server themselves.
//! On shutdown it stops accepting, lets in-flight requests finish (up to the
//! grace period) and returns; the caller then drains the audit writer.
//!
//! Every request runs in a task of its own, to its end, also when its client
//! goes away: hyper drops the answer of a closed connection, and a handler
//! dropped between a processor call and the commit that records it would
//! leave money moved at the processor but not in the database (a capture
//! still claimed, a refund still pending).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::capacity::Capacity;
use super::deadlines::{Activity, Deadlines, TimedBody, Tracked};
use super::linger::Lingering;
use crate::api::context::PeerAddr;
use crate::api::error::ApiError;

/// How many connections, and how long each may take for what (the
/// deadlines are explained in `server::deadlines`).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Open connections at most; past it new ones are closed at once.
    pub max_connections: usize,
    /// From accept to a completed TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// From the connection (after TLS) to the first request's head.
    pub first_request_timeout: Duration,
    /// From the first byte of a later request's head to its end (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// No request in flight for this long: the connection is closed.
    pub keep_alive_timeout: Duration,
    /// From a request's head to the end of its body.
    pub body_read_timeout: Duration,
    /// HTTP/2 pings: how often, and how long the answer may take.
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
    /// How long in-flight requests may run once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        crate::server::conn_limits(&crate::server::config::LimitsConfig::default())
    }
}

/// How long a connection closed for a passed deadline may take to finish
/// (a response still being written to a client that does not read it).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` completes. `tls: None` serves
/// plain HTTP (only for deployments behind a TLS-terminating proxy). Returns
/// how many requests were still running when the grace period ended.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> usize {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut capacity = Capacity::new(limits.max_connections);
    // Connections watch it: a send (or its drop) starts their graceful close.
    let (closing, _) = watch::channel(());
    // The requests' own tasks, which outlive their connection if need be.
    let requests = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // HTTP/1.1 heads are timed by `deadlines` (hyper's own header timer
    // would also close idle keep-alive connections after that time).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    let deadlines = Deadlines {
        first_request: limits.first_request_timeout,
        keep_alive: limits.keep_alive_timeout,
        header_read: limits.header_read_timeout,
        body_read: limits.body_read_timeout,
    };
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // E.g. out of files: back off rather than spin.
                    tracing::warn!(error = %e, in_use = capacity.in_use(), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = capacity.admit(&stream) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut closing = closing.subscribe();
        let acceptor = acceptor.clone();
        let requests = requests.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let tls = tokio::select! {
                        done = handshake => match done {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(_)) => {
                                tracing::debug!(%peer, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = closing.changed() => return,
                    };
                    serve_connection(builder, closing, tls, peer, app, deadlines, requests).await;
                }
                None => serve_connection(builder, closing, stream, peer, app, deadlines, requests).await,
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    let _ = closing.send(());
    requests.close();
    let finished = async {
        capacity.all_closed().await;
        requests.wait().await;
    };
    tokio::select! {
        () = finished => {
            tracing::info!("all connections closed and all requests finished");
            0
        }
        () = tokio::time::sleep(limits.shutdown_grace) => {
            let running = requests.len();
            tracing::warn!(requests = running, "shutdown grace period elapsed with connections or requests still open");
            running
        }
    }
}

async fn serve_connection<I>(
    builder: auto::Builder<TokioExecutor>,
    mut closing: watch::Receiver<()>,
    io: I,
    peer: SocketAddr,
    app: Router,
    deadlines: Deadlines,
    handlers: TaskTracker,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = requests.request_started(req.version());
        let mut req = req.map(|body| Body::new(TimedBody::new(body, deadlines.body_read)));
        req.extensions_mut().insert(PeerAddr(peer));
        let app = app.clone();
        // The handler runs in its own task, to its end: the connection's end
        // (a client gone) does not drop it midway.
        let handled = handlers.spawn(async move {
            let response = app.oneshot(req).await;
            drop(in_flight);
            response
        });
        async move {
            Ok::<_, Infallible>(match handled.await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                // Panics are answered inside the router; this is a task
                // cancelled by the runtime shutting down.
                Err(e) => ApiError::internal(format!("request task failed: {e}")).into_response(),
            })
        }
    });
    let io = TokioIo::new(Lingering::new(Tracked::new(io, Arc::clone(&activity))));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let expired = activity.expired(deadlines);
    tokio::pin!(expired);
    // Armed once the connection is told to close for a passed deadline.
    let mut give_up: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            why = &mut expired, if give_up.is_none() && !shutting_down => {
                tracing::debug!(%peer, deadline = why.as_str(), "closing a connection: its deadline passed");
                conn.as_mut().graceful_shutdown();
                give_up = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            _ = closing.changed(), if !shutting_down => {
                // Server shutdown: in-flight requests finish (`serve` bounds it).
                shutting_down = true;
                if give_up.is_none() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = async { if let Some(t) = give_up.as_mut() { t.await } }, if give_up.is_some() => {
                tracing::debug!(%peer, "dropping a connection that did not close in time");
                return;
            }
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Binds a TCP listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
