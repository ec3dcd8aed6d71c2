//! Attacks on money movements through a processor with effects outside the
//! gateway (the [`ProcessorDouble`], which counts every call that reaches it):
//! concurrent captures, cancels, capture racing cancel, concurrent refunds and
//! concurrent answers to one 3-D Secure challenge each reach the processor
//! once; a processor error gives the payment back for a retry; and a
//! restricted key's maximum amount and currencies hold on every operation that
//! moves money (create with confirm, confirm, capture, refund), in test and in
//! live mode, with nothing changed and nothing sent to the processor when they
//! refuse.
//!
//! Races are made certain rather than likely: the processor holds the first
//! call that reaches it until every other request has been answered.
//!
//! This file holds the shop (a merchant whose payments go to the double),
//! the race and the checks; `authorizations` confirms and 3-D Secure answers;
//! `captures` captures and cancels (races, a processor error, an unknown
//! outcome, a client that goes away); `refunds` refunds; `limits` the
//! restricted keys' limits.

mod authorizations;
mod captures;
mod limits;
mod refunds;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use paywarden::domain::money::Currency;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use serde_json::{json, Value};

use crate::processor_double::{ProcessorDouble, CHALLENGE_CARD};
use crate::support::{new_key, Replica, TestApp};

/// A merchant of one mode whose payments go to the processor double, and a
/// gateway that can route to it.
struct Shop {
    processor: Arc<ProcessorDouble>,
    gateway: Replica,
    merchant: MerchantId,
    mode: Mode,
    sk: String,
}

async fn shop(app: &TestApp, mode: Mode) -> Shop {
    let merchant = app.merchant(&format!("Shop {mode:?}")).await;
    ProcessorDouble::route(app, &merchant).await;
    let mut new = new_key(&merchant, KeyKind::Secret, &[]);
    new.mode = mode;
    let sk = app.issue(new).await.secret.expose().to_owned();
    let processor = ProcessorDouble::new();
    let gateway = app.spawn_replica_with_processor(processor.clone()).await;
    Shop {
        processor,
        gateway,
        merchant,
        mode,
        sk,
    }
}

impl Shop {
    async fn token(&self, number: &str) -> String {
        let r = self
            .gateway
            .post(
                "/v1/tokens",
                &self.sk,
                &json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
            )
            .await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// A payment of `amount` made by the secret key: confirmed (and so sent
    /// to the processor) unless `capture` is `None`. Returns its id.
    async fn payment(&self, number: &str, amount: i64, currency: &str, capture: Option<&str>) -> String {
        let body = json!({"amount": amount, "currency": currency, "payment_method": self.token(number).await,
                          "confirm": capture.is_some(), "capture_method": capture.unwrap_or("automatic"),
                          "return_url": "https://shop.example/done"});
        let r = self.gateway.post("/v1/payments", &self.sk, &body).await;
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        let expected = match capture {
            None => "requires_confirmation",
            Some("manual") => "requires_capture",
            Some(_) if number == CHALLENGE_CARD => "requires_action",
            Some(_) => "succeeded",
        };
        assert_eq!(p["status"], expected, "{p}");
        p["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, id: &str) -> Value {
        let r = self.gateway.get(&format!("/v1/payments/{id}"), &self.sk).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// A restricted key of this shop that may move at most 1000 EUR at once.
    async fn limited_key(&self, app: &TestApp) -> String {
        let mut new = new_key(
            &self.merchant,
            KeyKind::Restricted,
            &[
                Permission::PaymentsWrite,
                Permission::RefundsWrite,
                Permission::PaymentsRead,
                Permission::RefundsRead,
            ],
        );
        new.mode = self.mode;
        new.restrictions = KeyRestrictions {
            max_amount: Some(1000),
            currencies: vec![Currency::parse("eur").unwrap()],
            ..KeyRestrictions::default()
        };
        app.issue(new).await.secret.expose().to_owned()
    }

    async fn stop(mut self) {
        self.processor.release();
        self.gateway.stop().await;
    }
}

/// What a race came to: every request's status and body, in the order sent,
/// and how many were answered while the processor held the first call.
struct Race {
    answers: Vec<(u16, Value)>,
    answered_while_held: usize,
}

/// Sends every request at once while the processor holds its calls. Once one
/// call has reached it, waits until every other request is answered (at most
/// 5 s: a request that reached the processor too waits there), then lets the
/// processor go and collects every answer.
async fn race(processor: &ProcessorDouble, requests: Vec<reqwest::RequestBuilder>) -> Race {
    let calls_before = processor.calls().total();
    processor.hold();
    let answered = Arc::new(AtomicUsize::new(0));
    let n = requests.len();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let answered = answered.clone();
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                answered.fetch_add(1, Ordering::SeqCst);
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            })
        })
        .collect();
    let reached = processor.wait_for(|c| c.total() > calls_before).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while reached && answered.load(Ordering::SeqCst) < n - 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answered_while_held = answered.load(Ordering::SeqCst);
    processor.release();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(reached, "no request reached the processor: {:?}", answers);
    Race {
        answers,
        answered_while_held,
    }
}

fn post(gateway: &Replica, path: &str, key: &str, body: Value) -> reqwest::RequestBuilder {
    gateway.client.post(gateway.url(path)).bearer_auth(key).json(&body)
}

/// The statuses of a race's answers, sorted.
fn statuses(race: &Race) -> Vec<u16> {
    let mut s: Vec<u16> = race.answers.iter().map(|(status, _)| *status).collect();
    s.sort_unstable();
    s
}

/// The 200 answer of a race, the one request that reached the processor.
fn winner(race: &Race) -> &Value {
    let won: Vec<&Value> = race.answers.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "exactly one request succeeds: {:?}", race.answers);
    won[0]
}

/// Every answer but the winner's is a 409 saying another request is at the
/// processor (or, for `also`, a code of the case's own).
fn losers_refused(race: &Race, also: &[&str]) {
    for (status, body) in race.answers.iter().filter(|(s, _)| *s != 200) {
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            *status == 409 && (code == "payment_operation_in_progress" || also.contains(&code)),
            "{status} {body}"
        );
    }
}

/// `action:outcome` of every history entry.
fn history(payment: &Value) -> Vec<String> {
    payment["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}:{}", h["action"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect()
}

async fn claim_of(app: &TestApp, id: &str) -> Option<String> {
    let (claim,): (Option<String>,) = sqlx::query_as("SELECT claim FROM payments WHERE id = $1")
        .bind(id)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    claim
}

async fn events_of(app: &TestApp, object: &str) -> Vec<String> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT type FROM events WHERE object_id = $1 ORDER BY id")
        .bind(object)
        .fetch_all(app.store.reader())
        .await
        .unwrap();
    rows.into_iter().map(|(t,)| t).collect()
}

/// How many audit entries of `action` name `resource`.
async fn audited(app: &TestApp, action: &str, resource: &str) -> usize {
    app.audit()
        .await
        .iter()
        .filter(|r| r.event.action == action && r.event.resource.as_deref() == Some(resource))
        .count()
}

/// `(status, code, param)` of an error answer.
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let field = |f: &str| body["error"][f].as_str().unwrap_or_default().to_owned();
    (status, field("code"), field("param"))
}
