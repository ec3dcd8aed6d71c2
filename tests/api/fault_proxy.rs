//! A TCP proxy that injects network faults between the gateway and its
//! database: test infrastructure standing for the network, not a mock of
//! our code (the gateway talks the real protocol to the real server through
//! it).
//!
//! Modes: [`Mode::Pass`] forwards both ways. [`Mode::Blackhole`] is a silent
//! peer: sockets stay open, nothing is answered, and every byte sent in
//! either direction meanwhile is lost, so a connection that carried traffic
//! during the fault stays desynchronised for ever (as behind a firewall or
//! NAT that dropped its state; only idle connections survive); connections
//! opened meanwhile are accepted and never answered. [`Mode::Cut`] closes
//! every connection at once, and new ones right after accepting them.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Cut,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Pass);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, watching.clone()));
            }
        });
        FaultProxy { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).unwrap();
        parsed.set_host(Some("127.0.0.1")).unwrap();
        parsed.set_port(Some(self.addr.port())).unwrap();
        parsed.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Cut);
        self.task.abort();
    }
}

/// The address of a PostgreSQL URL's server.
pub async fn upstream_of(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap().to_owned();
    let port = parsed.port().unwrap_or(5432);
    let mut found = tokio::net::lookup_host((host.as_str(), port)).await.unwrap();
    found.next().unwrap()
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let at_start = *mode.borrow_and_update();
    if at_start == Mode::Cut {
        return;
    }
    // Opened during a blackhole: accepted, never answered.
    let mut lost = at_start != Mode::Pass;
    let upstream = if lost {
        None
    } else {
        TcpStream::connect(upstream).await.ok()
    };
    let Some(upstream) = upstream else {
        // Hold the client's socket open, reading and dropping what it sends.
        let (mut reader, _writer) = client.into_split();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                n = reader.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) { return },
                changed = mode.changed() => if changed.is_err() || *mode.borrow() == Mode::Cut { return },
            }
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_upstream = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = client_read.read(&mut from_client) => {
                let Ok(n) = n else { return };
                if n == 0 {
                    let _ = upstream_write.shutdown().await;
                    return;
                }
                lost |= *mode.borrow() != Mode::Pass;
                if !lost && upstream_write.write_all(&from_client[..n]).await.is_err() {
                    return;
                }
            }
            n = upstream_read.read(&mut from_upstream) => {
                let Ok(n) = n else { return };
                if n == 0 {
                    let _ = client_write.shutdown().await;
                    return;
                }
                lost |= *mode.borrow() != Mode::Pass;
                if !lost && client_write.write_all(&from_upstream[..n]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Cut {
                    return;
                }
            }
        }
    }
}
