//! Payment and webhook load while the KEK rotates: a client that behaves as a
//! careful merchant integration does behind a load balancer (every `POST`
//! with an `Idempotency-Key`; a request that got no answer, e.g. because its
//! replica was restarting, is sent again with the same key to the next
//! replica), and a ledger of every answer it was given.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// An answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub replayed: bool,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// A request the gateway acknowledged (2xx), with its answer.
#[derive(Debug, Clone)]
pub struct Acked {
    pub path: String,
    pub key: String,
    pub body: Value,
    pub answer: Answer,
}

impl Acked {
    pub fn id(&self) -> String {
        self.answer.json()["id"].as_str().unwrap_or_default().to_owned()
    }
}

/// A webhook endpoint with the secret its creation (or rotation) returned.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    /// The receiver path its deliveries arrive at.
    pub path: String,
    pub secret: String,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub tokens: Vec<Acked>,
    pub payments: Vec<Acked>,
    pub endpoints: Vec<Acked>,
    /// Answers that no correct gateway gives this client (5xx, refusals).
    pub failures: Vec<String>,
}

/// The gateways behind a load balancer, as one secret key sees them.
#[derive(Clone)]
pub struct Gateways {
    pub client: reqwest::Client,
    pub urls: Vec<String>,
    pub key: String,
}

impl Gateways {
    /// POSTs to one replica after another until one answers: a connection
    /// error or `409 idempotency_key_in_use` is tried again (same key), for
    /// up to a minute.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let base = &self.urls[attempt % self.urls.len()];
            let sent = self
                .client
                .post(format!("{base}{path}"))
                .bearer_auth(&self.key)
                .header("Idempotency-Key", key)
                .json(body)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let retry = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
                    let text = r.text().await.unwrap_or_default();
                    let answer = Answer { status, text, replayed };
                    if status == 409 && answer.json()["error"]["code"] == "idempotency_key_in_use" {
                        format!("409 {}", answer.text)
                    } else {
                        return answer;
                    }
                }
                Err(e) => format!("{e:?}"),
            };
            assert!(Instant::now() < deadline, "POST {path} ({key}) never answered: {retry}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        for base in self.urls.iter().cycle().take(600) {
            if let Ok(r) = self
                .client
                .get(format!("{base}{path}"))
                .bearer_auth(&self.key)
                .send()
                .await
            {
                return r.json().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET {path} never answered");
    }
}

pub fn card() -> Value {
    json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
}

pub fn payment(token: &str) -> Value {
    json!({"amount": 1500, "currency": "usd", "payment_method": token, "confirm": true})
}

/// The load: tokens, payments with them, and now and then a new webhook
/// endpoint (to `receiver_url` + `/epN`), until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
    pub ledger: Arc<Mutex<Ledger>>,
}

impl Load {
    pub fn start(gateways: Gateways, receiver_url: String, max_endpoints: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let (flag, book) = (Arc::clone(&stop), Arc::clone(&ledger));
        let task = tokio::spawn(async move {
            let mut i = 0usize;
            while !flag.load(Ordering::SeqCst) {
                i += 1;
                if i % 4 == 1 {
                    acked(&gateways, &book, "/v1/tokens", &format!("load-tok-{i}"), card(), |l| {
                        &mut l.tokens
                    })
                    .await;
                }
                let token = {
                    let l = book.lock().unwrap();
                    l.tokens.get(i % l.tokens.len().max(1)).map(Acked::id)
                };
                if let Some(token) = token {
                    let paid = acked(
                        &gateways,
                        &book,
                        "/v1/payments",
                        &format!("load-pay-{i}"),
                        payment(&token),
                        |l| &mut l.payments,
                    )
                    .await;
                    if let Some(p) = paid.filter(|p| p.answer.json()["status"] != "succeeded") {
                        book.lock()
                            .unwrap()
                            .failures
                            .push(format!("payment not succeeded: {}", p.answer.text));
                    }
                }
                let endpoints = book.lock().unwrap().endpoints.len();
                if i % 10 == 0 && endpoints < max_endpoints {
                    let url = format!("{receiver_url}/ep{endpoints}");
                    let body = json!({"url": url, "events": ["*"]});
                    acked(
                        &gateways,
                        &book,
                        "/v1/webhook_endpoints",
                        &format!("load-ep-{i}"),
                        body,
                        |l| &mut l.endpoints,
                    )
                    .await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Load { stop, task, ledger }
    }

    pub fn payments(&self) -> usize {
        self.ledger.lock().unwrap().payments.len()
    }

    /// Waits until `more` payments beyond the current count are acknowledged.
    pub async fn progress(&self, more: usize) {
        let target = self.payments() + more;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.payments() < target {
            assert!(
                Instant::now() < deadline,
                "the load stalled: {:?}",
                self.ledger.lock().unwrap().failures
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        Arc::try_unwrap(self.ledger).unwrap().into_inner().unwrap()
    }
}

/// Sends one keyed request; a 200 goes into the ledger list `into`, anything
/// else into its failures.
async fn acked(
    gateways: &Gateways,
    ledger: &Mutex<Ledger>,
    path: &str,
    key: &str,
    body: Value,
    into: impl FnOnce(&mut Ledger) -> &mut Vec<Acked>,
) -> Option<Acked> {
    let answer = gateways.post(path, key, &body).await;
    let mut l = ledger.lock().unwrap();
    if answer.status != 200 {
        l.failures
            .push(format!("POST {path} ({key}): {} {}", answer.status, answer.text));
        return None;
    }
    let entry = Acked {
        path: path.to_owned(),
        key: key.to_owned(),
        body,
        answer,
    };
    into(&mut l).push(entry.clone());
    Some(entry)
}
