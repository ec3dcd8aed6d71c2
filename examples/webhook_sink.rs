//! A webhook receiver for `scripts/bench.sh`: answers every POST with 200,
//! verifies each delivery's `Paywarden-Signature` with the crate's exported
//! verifier when given the endpoints' secrets, and counts deliveries.
//!
//! ```text
//! webhook_sink --listen 127.0.0.1:PORT [--secrets-file FILE]
//! ```
//! `GET /count` answers `deliveries=N bad_signatures=M first_ms=… last_ms=…`
//! (milliseconds since the sink started; 0 before the first delivery). The
//! secrets file holds one `whsec_…` per line and is read again on every
//! delivery that finds it changed, so endpoints can be registered after start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;

struct Sink {
    started: Instant,
    deliveries: AtomicU64,
    bad_signatures: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
    secrets_file: Option<String>,
    secrets: Mutex<Vec<String>>,
}

impl Sink {
    fn secrets(&self) -> Vec<String> {
        if let Some(path) = &self.secrets_file {
            if let Ok(text) = std::fs::read_to_string(path) {
                let fresh: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect();
                let mut held = self.secrets.lock().unwrap();
                if *held != fresh {
                    *held = fresh;
                }
                return held.clone();
            }
        }
        self.secrets.lock().unwrap().clone()
    }
}

async fn receive(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if sink.secrets_file.is_some() {
        let header = headers
            .get("paywarden-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let valid = sink
            .secrets()
            .iter()
            .any(|s| paywarden::webhooks::verify(&body, header, s).is_ok());
        if !valid {
            sink.bad_signatures.fetch_add(1, Ordering::Relaxed);
            return StatusCode::BAD_REQUEST;
        }
    }
    let at = u64::try_from(sink.started.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let _ = sink
        .first_ms
        .compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
    sink.last_ms.fetch_max(at, Ordering::Relaxed);
    sink.deliveries.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

async fn count(State(sink): State<Arc<Sink>>) -> String {
    format!(
        "deliveries={} bad_signatures={} first_ms={} last_ms={}\n",
        sink.deliveries.load(Ordering::Relaxed),
        sink.bad_signatures.load(Ordering::Relaxed),
        sink.first_ms.load(Ordering::Relaxed),
        sink.last_ms.load(Ordering::Relaxed)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = String::from("127.0.0.1:0");
    let mut secrets_file = None;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => listen = value,
            "--secrets-file" => secrets_file = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    let sink = Arc::new(Sink {
        started: Instant::now(),
        deliveries: AtomicU64::new(0),
        bad_signatures: AtomicU64::new(0),
        first_ms: AtomicU64::new(0),
        last_ms: AtomicU64::new(0),
        secrets_file,
        secrets: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/count", get(count))
        .route("/hook/{n}", post(receive))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    println!("listening {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.expect("serve");
}
