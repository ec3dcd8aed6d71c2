//! Connection exhaustion: thousands of idle TCP and TLS connections, idle
//! HTTP/1.1 keep-alive and HTTP/2 connections, slow request heads, HTTP/2
//! peers that do not answer pings, and the connection cap. The gateway runs
//! with short deadlines; a new client must still be served, and every idle
//! connection must be closed by the server when its deadline passes.
//!
//! These never touch the database: they run on SQLite only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use paywarden::server::listener::ConnLimits;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::{client_trusting, spawn_app_with_limits, Db, TestApp};

/// Deadlines short enough for a test, each distinct from the others.
fn short() -> ConnLimits {
    ConnLimits {
        tls_handshake_timeout: Duration::from_secs(2),
        first_request_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(3),
        ..ConnLimits::default()
    }
}

fn port(app: &TestApp) -> u16 {
    app.main.base.rsplit(':').next().unwrap().parse().unwrap()
}

async fn tcp(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port(app))).await.unwrap()
}

/// A TLS connection (handshake done, nothing sent) offering `alpn`.
async fn tls(app: &TestApp, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(&app.cert_pem).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp(app).await)
        .await
        .unwrap()
}

/// Reads until the server closes the connection (EOF or reset), for at most
/// `within`; returns how long that took, or `None` if it stayed open.
async fn closed_by_server<S: AsyncRead + Unpin>(stream: &mut S, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    outcome.ok().map(|()| started.elapsed())
}

/// Raises this process's open-files limit and says how many idle TCP
/// connections the test can afford next to `tls` TLS ones (each costs two
/// files here: the client's end and, in the same process, the server's).
fn affordable_tcp(wanted: usize, tls: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    // Room for the other tests of this binary, which run at the same time.
    let spare = usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(3000) / 2;
    let n = wanted.min(spare.saturating_sub(tls));
    assert!(
        n >= 500,
        "the open-files limit ({limit}) leaves room for only {n} idle connections; raise `ulimit -Hn`"
    );
    n
}

/// GET /healthz on a new connection, answered within 5 s.
async fn healthz(app: &TestApp) -> Result<u16, String> {
    let client = client_trusting(&app.cert_pem);
    match tokio::time::timeout(Duration::from_secs(5), client.get(app.url("/healthz")).send()).await {
        Ok(Ok(r)) => Ok(r.status().as_u16()),
        Ok(Err(e)) => Err(format!("failed: {e:?}")),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// Holds `stream` open, reading, until the server closes it or `within`
/// passes; returns how long after `opened` it was closed, if it was.
fn watch_idle<S>(mut stream: S, opened: Instant, within: Duration) -> tokio::task::JoinHandle<Option<Duration>>
where
    S: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        closed_by_server(&mut stream, within).await?;
        Some(opened.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_neither_keep_new_clients_out_nor_stay_open() {
    const TLS: usize = 300;
    let idle_tcp = affordable_tcp(2500, TLS);
    // Long enough to open them all on a busy machine before the first ones
    // reach their deadline.
    let limits = ConnLimits {
        tls_handshake_timeout: Duration::from_secs(5),
        first_request_timeout: Duration::from_secs(5),
        ..short()
    };
    let app = spawn_app_with_limits(Db::Sqlite, limits.clone()).await.unwrap();
    let within = Duration::from_secs(20);

    // TCP connections that never send a ClientHello, opened 100 at a time.
    let started = Instant::now();
    let mut tcps = Vec::new();
    while tcps.len() < idle_tcp {
        let batch = (idle_tcp - tcps.len()).min(100);
        // Watched from before connecting: the server's clock starts at its
        // accept, which comes later (much later on a loaded machine).
        let connecting = Instant::now();
        for stream in futures_util::future::join_all((0..batch).map(|_| tcp(&app))).await {
            tcps.push(watch_idle(stream, connecting, within));
        }
    }
    // TLS connections that complete the handshake and never send a request
    // (half offer HTTP/2, half HTTP/1.1).
    let mut tlss = Vec::new();
    while tlss.len() < TLS {
        let alpn: &[&[u8]] = if tlss.len() % 2 == 0 { &[b"h2"] } else { &[b"http/1.1"] };
        let connecting = Instant::now();
        for stream in futures_util::future::join_all((0..50).map(|_| tls(&app, alpn))).await {
            tlss.push(watch_idle(stream, connecting, within));
        }
    }
    let opening = started.elapsed();
    assert!(
        opening < limits.tls_handshake_timeout,
        "opening the idle connections took {opening:?}: the test cannot tell deadlines apart"
    );

    // A new client is served while all of them are open.
    assert_eq!(
        healthz(&app).await,
        Ok(200),
        "with {idle_tcp} idle TCP and {TLS} idle TLS connections"
    );

    // Every idle connection is closed by the server, by its deadline: not
    // refused at once (that would be the cap), and not left open.
    let joined = |handles: Vec<tokio::task::JoinHandle<Option<Duration>>>| async move {
        futures_util::future::join_all(handles)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    let tcp_closed = joined(tcps).await;
    let tls_closed = joined(tlss).await;
    let open_tcp = tcp_closed.iter().filter(|c| c.is_none()).count();
    let open_tls = tls_closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        (open_tcp, open_tls),
        (0, 0),
        "idle connections still open after {within:?} (TCP: {open_tcp} of {idle_tcp}, TLS: {open_tls} of {TLS})"
    );
    let earliest = |closed: &[Option<Duration>]| closed.iter().flatten().min().copied().unwrap_or_default();
    let margin = Duration::from_millis(200);
    assert!(
        earliest(&tcp_closed) >= limits.tls_handshake_timeout - margin,
        "a TCP connection was closed after {:?}, before the handshake deadline",
        earliest(&tcp_closed)
    );
    assert!(
        earliest(&tls_closed) >= limits.first_request_timeout - margin,
        "a TLS connection was closed after {:?}, before the first-request deadline",
        earliest(&tls_closed)
    );
    app.stop().await;
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body).
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "closed before the response was complete");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http1_connection_is_closed_after_the_keep_alive_time_and_a_slow_head_sooner() {
    let limits = short();
    let app = spawn_app_with_limits(Db::Sqlite, limits.clone()).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    // Idle after a response: open for the keep-alive time, then closed.
    let mut idle = tls(&app, &[b"http/1.1"]).await;
    idle.write_all(request).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let closed = closed_by_server(&mut idle, Duration::from_secs(10)).await;
    let closed = closed.expect("an idle keep-alive connection must be closed");
    assert!(
        closed >= limits.keep_alive_timeout - Duration::from_millis(500),
        "closed after {closed:?}, before the keep-alive time ({:?})",
        limits.keep_alive_timeout
    );

    // The next request's head started but never finished: closed once the
    // header read time has passed, well before the keep-alive time.
    let mut slow = tls(&app, &[b"http/1.1"]).await;
    slow.write_all(request).await.unwrap();
    assert!(read_response(&mut slow).await.starts_with("HTTP/1.1 200"));
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127").await.unwrap();
    let closed = closed_by_server(&mut slow, Duration::from_secs(10)).await;
    let closed = closed.expect("a connection with an unfinished head must be closed");
    assert!(
        closed >= limits.header_read_timeout - Duration::from_millis(300)
            && closed < limits.keep_alive_timeout - Duration::from_millis(500),
        "closed after {closed:?}; the header read time is {:?}",
        limits.header_read_timeout
    );

    // A request that keeps coming back within the keep-alive time keeps
    // its connection.
    let mut busy = tls(&app, &[b"http/1.1"]).await;
    for _ in 0..3 {
        busy.write_all(request).await.unwrap();
        assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(limits.keep_alive_timeout / 2).await;
    }
    busy.write_all(request).await.unwrap();
    assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"));
    app.stop().await;
}

/// An HTTP/2 connection with the h2 crate's client, which answers pings.
async fn h2_client(
    app: &TestApp,
) -> (
    h2::client::SendRequest<axum::body::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let (client, connection) = h2::client::handshake(tls(app, &[b"h2"]).await).await.unwrap();
    (client, tokio::spawn(connection))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_the_keep_alive_time() {
    let limits = ConnLimits {
        // Pinged often: a peer that answers is not closed for that.
        http2_keep_alive_interval: Duration::from_millis(500),
        http2_keep_alive_timeout: Duration::from_secs(1),
        ..short()
    };
    let app = spawn_app_with_limits(Db::Sqlite, limits.clone()).await.unwrap();
    let (client, connection) = h2_client(&app).await;
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(app.url("/healthz")).body(()).unwrap();
    let (answer, _) = client.send_request(request, true).unwrap();
    let answer = answer.await.unwrap();
    assert_eq!(answer.status(), 200);
    let mut body = answer.into_body();
    while let Some(chunk) = body.data().await {
        chunk.unwrap();
    }
    let idle_since = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
    let closed = idle_since.elapsed();
    assert!(
        ended.is_ok(),
        "an idle HTTP/2 connection must be closed (open for {closed:?})"
    );
    assert!(
        closed >= limits.keep_alive_timeout - Duration::from_millis(500),
        "closed after {closed:?}, before the keep-alive time ({:?})",
        limits.keep_alive_timeout
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_peer_that_does_not_answer_pings_is_closed() {
    let limits = ConnLimits {
        first_request_timeout: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(30),
        http2_keep_alive_interval: Duration::from_secs(1),
        http2_keep_alive_timeout: Duration::from_secs(1),
        ..short()
    };
    let app = spawn_app_with_limits(Db::Sqlite, limits).await.unwrap();
    let mut peer = tls(&app, &[b"h2"]).await;
    // The connection preface and an empty SETTINGS frame; then it reads
    // (and discards) whatever comes, answering nothing.
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    peer.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let closed = closed_by_server(&mut peer, Duration::from_secs(10)).await;
    let closed = closed.expect("a peer that does not answer pings must be closed");
    assert!(closed < Duration::from_secs(10), "{closed:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_connections_are_closed_at_once_and_served_once_one_frees() {
    let limits = ConnLimits {
        max_connections: 20,
        tls_handshake_timeout: Duration::from_secs(30),
        first_request_timeout: Duration::from_secs(30),
        ..ConnLimits::default()
    };
    let app = spawn_app_with_limits(Db::Sqlite, limits).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tcp(&app).await);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Over the cap: closed at once (not left to wait in the backlog); the
    // reset may come so soon that connecting already reports it.
    let closed = match TcpStream::connect(("127.0.0.1", port(&app))).await {
        Ok(mut over) => closed_by_server(&mut over, Duration::from_secs(2)).await,
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            Some(Duration::ZERO)
        }
    };
    assert!(
        closed.is_some(),
        "a connection over the cap was neither served nor closed within 2 s"
    );
    let refused = healthz(&app).await;
    assert!(
        refused.is_err() && refused != Err("no answer within 5 s".into()),
        "{refused:?}"
    );

    // One connection ends: the next client is served.
    drop(held.pop());
    let mut answered = Err(String::new());
    for _ in 0..20 {
        answered = healthz(&app).await;
        if answered == Ok(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Ok(200), "once a connection ended, a new one must be served");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_trickles_in_is_cut_off_at_the_body_read_time() {
    let limits = ConnLimits {
        body_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(30),
        ..short()
    };
    let app = spawn_app_with_limits(Db::Sqlite, limits.clone()).await.unwrap();
    // The 3-D Secure answer is the one route that reads a body before
    // anything proves who is asking: a slow POST there needs no key.
    let mut slow = tls(&app, &[b"http/1.1"]).await;
    slow.write_all(
        b"POST /sandbox/3ds/pay_x HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ndecision=app",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (mut answers, mut sends) = tokio::io::split(slow);
    let trickle = async {
        // A byte every 300 ms: never idle for long, never done.
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if sends.write_all(b"r").await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let mut answer = [0u8; 64];
    // The first thing the server says (an answer or its close) ends it.
    let said = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            () = trickle => unreachable!(),
            read = answers.read(&mut answer) => read,
        }
    })
    .await;
    let cut_off = started.elapsed();
    assert!(
        said.is_ok() && cut_off < Duration::from_secs(5),
        "a body still arriving after {cut_off:?} was not cut off (body read time {:?})",
        limits.body_read_timeout
    );
    if let Ok(Ok(n)) = said {
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 4"), "{text}");
    }
    assert!(cut_off >= limits.body_read_timeout, "cut off after {cut_off:?}");
    app.stop().await;
}
