//! The accept loop: TLS handshakes, HTTP/1.1 and HTTP/2 connections, the
//! connection limit, header read timeout, lingering close (`linger`), and
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
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::linger::Lingering;
use crate::api::context::PeerAddr;
use crate::api::error::ApiError;

#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub shutdown_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes. `tls: None` serves
/// plain HTTP (only for deployments behind a TLS-terminating proxy).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    // The requests' own tasks, which outlive their connection if need be.
    let requests = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(128);
    tokio::pin!(shutdown);

    loop {
        // Wait for a free connection slot first: at the limit, new connections
        // queue in the kernel's backlog instead of being accepted and starved.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let requests = requests.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            match acceptor {
                Some(acceptor) => {
                    let Ok(Ok(tls)) = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    serve_connection(builder, watcher, tls, peer, app, requests).await;
                }
                None => serve_connection(builder, watcher, stream, peer, app, requests).await,
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    requests.close();
    let finished = async {
        graceful.shutdown().await;
        requests.wait().await;
    };
    tokio::select! {
        () = finished => tracing::info!("all connections closed and all requests finished"),
        () = tokio::time::sleep(limits.shutdown_grace) => tracing::warn!("shutdown grace period elapsed with connections or requests still open"),
    }
}

async fn serve_connection<I>(
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    peer: SocketAddr,
    app: Router,
    requests: TaskTracker,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(PeerAddr(peer));
        let handled = requests.spawn(app.clone().oneshot(req));
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
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(Lingering::new(io)), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
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
