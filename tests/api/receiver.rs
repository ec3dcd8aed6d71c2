//! A merchant's webhook receiver: a real HTTPS server on 127.0.0.1 with a
//! certificate from the tests' own CA (`support::test_ca`), which records
//! every request (with when it arrived) and answers with scripted statuses
//! after an optional delay, counting how many requests it holds at once.
//! Also `emit`, which creates an event the way payments do: through
//! `store::events::insert` in a transaction.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use axum::Router;
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::{EventId, MerchantId};
use paywarden::domain::time::Timestamp;
use paywarden::secret_files::DevSecrets;
use paywarden::server::listener::{self, ConnLimits};
use paywarden::server::tls;
use paywarden::store::events::EventRow;
use paywarden::store::Store;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::support::test_ca;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: Vec<u8>,
    pub signature: String,
    pub content_type: String,
    pub user_agent: String,
    /// When the request arrived (its head and body read).
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn event_id(&self) -> String {
        self.json()["id"].as_str().unwrap().to_owned()
    }
}

#[derive(Default)]
struct Script {
    received: Mutex<Vec<Received>>,
    /// Statuses for the next requests, in order; then `fallback`.
    queue: Mutex<VecDeque<u16>>,
    fallback: Mutex<Option<u16>>,
    delay: Mutex<Duration>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts a request as in flight until dropped (also when the client gives
/// up and the handler is cancelled).
struct InFlight<'a>(&'a Script);

impl<'a> InFlight<'a> {
    fn enter(script: &'a Script) -> Self {
        let now = script.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        script.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(script)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct Receiver {
    pub base: String,
    script: Arc<Script>,
    shutdown: Option<oneshot::Sender<()>>,
}

async fn hook(State(script): State<Arc<Script>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let _in_flight = InFlight::enter(&script);
    script.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        body: body.to_vec(),
        signature: header("paywarden-signature"),
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        at: Instant::now(),
    });
    let delay = *script.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let status = script
        .queue
        .lock()
        .unwrap()
        .pop_front()
        .or(*script.fallback.lock().unwrap())
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    pub async fn start() -> Receiver {
        let ca = test_ca();
        let tls = tls::server_config(&ca.cert_file, &ca.key_file, DevSecrets::Allowed).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Script::default());
        let app = Router::new()
            .route("/{*path}", post(hook))
            .with_state(Arc::clone(&script));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            listener::serve(listener, Some(tls), app, ConnLimits::default(), async {
                let _ = rx.await;
            })
            .await;
        });
        Receiver {
            base: format!("https://127.0.0.1:{port}"),
            script,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next requests get these statuses, in order.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.script.queue.lock().unwrap().extend(statuses);
    }

    /// Every request after the scripted ones gets `status`.
    pub fn always(&self, status: u16) {
        *self.script.fallback.lock().unwrap() = Some(status);
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.script.delay.lock().unwrap() = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// The most requests this receiver was ever answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.script.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn event_ids(&self) -> HashSet<String> {
        self.received().iter().map(Received::event_id).collect()
    }

    /// Waits (up to `limit`) until the requests received satisfy `pred`.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.received();
            if pred(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver never saw what was expected; it got {} requests: {:?}",
                got.len(),
                got.iter()
                    .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Inserts an event as a state change would (in a unit of work, through the
/// real outbox code), returning its id.
pub async fn emit(store: &Store, merchant: &MerchantId, mode: Mode, event_type: &str, object: Value) -> String {
    let now = Timestamp::now();
    let id = EventId::generate_time_ordered(now).unwrap().to_string();
    let row = EventRow {
        id: id.clone(),
        merchant_id: merchant.to_string(),
        mode: mode.as_str().to_owned(),
        event_type: event_type.to_owned(),
        object_id: object["id"].as_str().unwrap_or("pay_x").to_owned(),
        data: object.to_string(),
        created_at: now.as_millis(),
    };
    let mut work = paywarden::store::unit_of_work::UnitOfWork::new();
    paywarden::store::events::insert_in(&mut work, std::slice::from_ref(&row));
    store.commit(work).await.unwrap();
    id
}
