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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paywarden::connectors::ConnectorError;
use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use paywarden::domain::money::Currency;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use serde_json::{json, Value};

use super::{assert_intact, Rows};
use crate::both_backends;
use crate::payments::error_of;
use crate::processor_double::{Call, ProcessorDouble, CHALLENGE_CARD};
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

both_backends! {
    async fn a_payment_created_without_confirm_leaves_the_cvc_for_its_confirm(app) {
        // The CVC held for a token is used by the token's first
        // authorization, whenever that comes: not taken (and lost) by a
        // create that only attaches the token, then gone after one use.
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 1500, "usd", None).await;
        let r = shop.gateway.post(&format!("/v1/payments/{id}/confirm"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
        assert_eq!(shop.processor.cvcs(), [Some("123".to_owned())], "the confirm's authorization carries the CVC");
        // Another payment with the same token authorizes without one.
        let token = shop.get(&id).await["payment_method"].as_str().unwrap().to_owned();
        let body = json!({"amount": 700, "currency": "usd", "payment_method": token, "confirm": true});
        let again = shop.gateway.post("/v1/payments", &shop.sk, &body).await;
        assert_eq!(again.status(), 200);
        assert_eq!(shop.processor.cvcs(), [Some("123".to_owned()), None], "a CVC is used once");
        shop.stop().await;
    }

    async fn concurrent_captures_reach_the_processor_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        let path = format!("/v1/payments/{id}/capture");
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, &path, &shop.sk, json!({}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.capture, 1, "one capture reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(shop.processor.captured(), [5000]);
        assert_eq!(race.answered_while_held, 7, "every other capture is refused while the first is at the processor");
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &[]);
        assert_eq!(winner(&race)["status"], "succeeded");
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"], &p["amount_capturable"]), (&json!("succeeded"), &json!(5000), &json!(0)), "{p}");
        assert_eq!(history(&p), ["create:succeeded", "confirm:succeeded", "authorize:approved", "capture:started", "capture:succeeded"]);
        assert_eq!(claim_of(app, &id).await, None, "the claim ends with the capture");
        assert_eq!(events_of(app, &id).await, ["payment.created", "payment.amount_capturable_updated", "payment.captured", "payment.succeeded"]);
        assert_eq!(audited(app, "payment.captured", &id).await, 1);
        assert_intact(app, before, |r| r.events += 2).await;
        shop.stop().await;
    }

    async fn concurrent_cancels_void_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        let path = format!("/v1/payments/{id}/cancel");
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, &path, &shop.sk, json!({"cancellation_reason": "duplicate"}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.void, 1, "one void reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(calls.capture, 0);
        assert_eq!(race.answered_while_held, 7, "every other cancel is refused while the first is at the processor");
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &[]);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_capturable"], &p["cancellation_reason"]), (&json!("canceled"), &json!(0), &json!("duplicate")), "{p}");
        assert_eq!(history(&p), ["create:succeeded", "confirm:succeeded", "authorize:approved", "cancel:started", "cancel:succeeded"]);
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(audited(app, "payment.canceled", &id).await, 1);
        assert_intact(app, before, |r| r.events += 1).await;
        shop.stop().await;
    }

    async fn capture_racing_cancel_makes_one_processor_call(app) {
        let shop = shop(app, Mode::Test).await;
        // Each order of arrival once: the capture first, then the cancel first.
        for first in ["capture", "cancel"] {
            let id = shop.payment("4242424242424242", 4000, "usd", Some("manual")).await;
            let before = Rows::snapshot(app).await;
            let calls_before = shop.processor.calls();
            let second = if first == "capture" { "cancel" } else { "capture" };
            let requests = [first, second, first, second, first, second, first, second]
                .iter()
                .map(|op| post(&shop.gateway, &format!("/v1/payments/{id}/{op}"), &shop.sk, json!({})))
                .collect();
            let race = race(&shop.processor, requests).await;
            let calls = shop.processor.calls();
            let (captures, voids) = (calls.capture - calls_before.capture, calls.void - calls_before.void);
            assert_eq!(captures + voids, 1, "one processor call of either kind: {calls:?}; {:?}", race.answers);
            assert_eq!(race.answered_while_held, 7);
            assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
            losers_refused(&race, &[]);
            let p = shop.get(&id).await;
            assert_eq!(winner(&race)["status"], p["status"]);
            if captures == 1 {
                assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(4000)), "{p}");
                assert_eq!(history(&p)[3..], ["capture:started", "capture:succeeded"]);
            } else {
                assert_eq!((&p["status"], &p["amount_received"]), (&json!("canceled"), &json!(0)), "{p}");
                assert_eq!(history(&p)[3..], ["cancel:started", "cancel:succeeded"]);
            }
            assert_eq!(claim_of(app, &id).await, None);
            assert_intact(app, before, |r| r.events += if captures == 1 { 2 } else { 1 }).await;
        }
        shop.stop().await;
    }

    async fn concurrent_full_refunds_refund_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("automatic")).await;
        let before = Rows::snapshot(app).await;
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, "/v1/refunds", &shop.sk, json!({"payment": id}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.refund, 1, "one refund reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(shop.processor.refunded(), [5000]);
        assert_eq!(race.answered_while_held, 7);
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &["amount_exceeds_refundable"]);
        let refund = winner(&race);
        assert_eq!((&refund["status"], &refund["amount"]), (&json!("succeeded"), &json!(5000)), "{refund}");
        let p = shop.get(&id).await;
        assert_eq!((&p["amount_received"], &p["amount_refunded"]), (&json!(5000), &json!(5000)), "{p}");
        let listed: Value = shop.gateway.get(&format!("/v1/refunds?payment={id}"), &shop.sk).await.json().await.unwrap();
        let refunds = listed["data"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{listed}");
        assert_eq!(refunds[0]["status"], "succeeded");
        assert_intact(app, before, |r| {
            r.refunds += 1;
            r.events += 1;
        })
        .await;
        shop.stop().await;
    }

    async fn a_timed_out_refund_stays_pending_with_its_amount_reserved(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("automatic")).await;
        shop.processor.fail_next(Call::Refund, ConnectorError::Timeout);
        let r = shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": id})).await;
        assert_eq!(r.status(), 503);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "processor_outcome_unknown", "{e}");
        // Not failed and given back: a retry cannot refund a second time.
        let p = shop.get(&id).await;
        assert_eq!(p["amount_refunded"], 5000, "{p}");
        let listed: Value = shop.gateway.get(&format!("/v1/refunds?payment={id}"), &shop.sk).await.json().await.unwrap();
        assert_eq!(listed["data"][0]["status"], "pending", "{listed}");
        let (status, e) = error_of(shop.gateway.post("/v1/refunds", &shop.sk, &json!({"payment": id})).await).await;
        assert_eq!((status, e["code"].as_str()), (409, Some("amount_exceeds_refundable")), "{e}");
        assert_eq!(shop.processor.calls().refund, 1);
        shop.stop().await;
    }

    async fn a_processor_error_releases_the_claim(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 2500, "usd", Some("manual")).await;
        let secret = "processor maintenance window 7";
        shop.processor.fail_next(Call::Capture, ConnectorError::Unavailable(secret.into()));
        let r = shop.gateway.post(&format!("/v1/payments/{id}/capture"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 502);
        let text = r.text().await.unwrap();
        assert!(text.contains("processor_unavailable") && !text.contains(secret), "{text}");
        assert_eq!(shop.processor.calls().capture, 1);
        assert_eq!(claim_of(app, &id).await, None, "the failed capture gives its claim back");
        assert_eq!(shop.get(&id).await["status"], "requires_capture");
        // The retry goes to the processor at once: no 409, no waiting out the claim.
        let r = shop.gateway.post(&format!("/v1/payments/{id}/capture"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.calls().capture, 2);
        assert_eq!(shop.processor.captured(), [2500]);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(2500)), "{p}");
        assert_eq!(history(&p)[3..], ["capture:started", "capture:processor_unavailable", "capture:started", "capture:succeeded"]);
        // The same for a cancel.
        let id = shop.payment("4242424242424242", 2500, "usd", Some("manual")).await;
        shop.processor.fail_next(Call::Void, ConnectorError::Timeout);
        let r = shop.gateway.post(&format!("/v1/payments/{id}/cancel"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 502);
        assert_eq!(claim_of(app, &id).await, None, "the failed cancel gives its claim back");
        let r = shop.gateway.post(&format!("/v1/payments/{id}/cancel"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.calls().void, 2);
        let p = shop.get(&id).await;
        assert_eq!(p["status"], "canceled");
        assert_eq!(history(&p)[3..], ["cancel:started", "cancel:processor_unavailable", "cancel:started", "cancel:succeeded"]);
        shop.stop().await;
    }

    async fn a_timed_out_capture_is_resolved_by_asking_the_processor_never_by_guessing(app) {
        let shop = shop(app, Mode::Test).await;
        let capture = |id: &str| format!("/v1/payments/{id}/capture");
        // The processor captured, but its answer was lost: the gateway asks,
        // records the capture, and never sends a second one.
        let id = shop.payment("4242424242424242", 1200, "usd", Some("manual")).await;
        shop.processor.lose_next_answer(Call::Capture, ConnectorError::Timeout);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!((shop.processor.calls().capture, shop.processor.captured()), (1, vec![1200]));
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(shop.get(&id).await["status"], "succeeded");

        // The call timed out and the processor cannot say either: the payment
        // stays held (503 with Retry-After); a retry meanwhile is refused
        // without a processor call, and that answer is not stored against the
        // retry's Idempotency-Key.
        let id = shop.payment("4242424242424242", 1300, "usd", Some("manual")).await;
        shop.processor.fail_next(Call::Capture, ConnectorError::Timeout);
        shop.processor.fail_sync(1);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("retry-after").is_some());
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "processor_outcome_unknown", "{e}");
        assert_eq!(claim_of(app, &id).await.as_deref(), Some("capture"), "an unknown outcome keeps the claim");
        for _ in 0..2 {
            let r = shop
                .gateway
                .client
                .post(shop.gateway.url(&capture(&id)))
                .bearer_auth(&shop.sk)
                .header("Idempotency-Key", "retry-while-held")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 409);
            assert!(r.headers().get("idempotent-replayed").is_none(), "a 'retry later' answer was stored");
            assert!(r.headers().get("retry-after").is_some());
        }
        assert_eq!(shop.processor.calls().capture, 2, "no call while the outcome is unknown");
        // A claim older than CLAIM_TIMEOUT (its gateway died mid-call) is
        // taken over; the processor is asked first, then the capture sent.
        sqlx::query("UPDATE payments SET updated_at = updated_at - 600000 WHERE id = $1")
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        let r = shop
            .gateway
            .client
            .post(shop.gateway.url(&capture(&id)))
            .bearer_auth(&shop.sk)
            .header("Idempotency-Key", "retry-while-held")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!((shop.processor.calls().capture, shop.processor.captured()), (3, vec![1200, 1300]));

        // A stale claim whose capture did happen: the takeover finds it at
        // the processor and records it without capturing again.
        let id = shop.payment("4242424242424242", 1400, "usd", Some("manual")).await;
        shop.processor.lose_next_answer(Call::Capture, ConnectorError::Timeout);
        shop.processor.fail_sync(1);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 503);
        sqlx::query("UPDATE payments SET updated_at = updated_at - 600000 WHERE id = $1")
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.captured(), [1200, 1300, 1400], "captured once");
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(1400)), "{p}");
        shop.stop().await;
    }

    async fn a_capture_whose_client_goes_away_still_ends_recorded(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        shop.processor.hold();
        // The client gives up while the capture is at the processor.
        let impatient = shop
            .gateway
            .client
            .post(shop.gateway.url(&format!("/v1/payments/{id}/capture")))
            .bearer_auth(&shop.sk)
            .json(&json!({}))
            .timeout(Duration::from_millis(1500))
            .send();
        let gone = tokio::spawn(impatient);
        assert!(shop.processor.wait_for(|c| c.capture == 1).await);
        assert!(gone.await.unwrap().is_err(), "the client timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
        shop.processor.release();
        // The processor captured: the gateway records it, claim released.
        let mut p = shop.get(&id).await;
        for _ in 0..100 {
            if p["status"] != "requires_capture" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            p = shop.get(&id).await;
        }
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(5000)), "{p}");
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(shop.processor.captured(), [5000]);
        assert_intact(app, before, |r| r.events += 2).await;
        shop.stop().await;
    }

    async fn concurrent_answers_to_one_challenge_authorize_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment(CHALLENGE_CARD, 3100, "usd", Some("automatic")).await;
        let p = shop.get(&id).await;
        let url = p["next_action"]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&shop.gateway.base), "{url}");
        let challenge = url.split("challenge=").nth(1).unwrap().to_owned();
        assert_eq!(shop.processor.calls().authorize, 1);
        let before = Rows::snapshot(app).await;
        let browser = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let answers = (0..8)
            .map(|_| {
                browser
                    .post(shop.gateway.url(&format!("/sandbox/3ds/{id}")))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("challenge={challenge}&decision=approve"))
            })
            .collect();
        let race = race(&shop.processor, answers).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.authorize, 2, "the answered challenge is authorized once: {calls:?}; {:?}", race.answers);
        assert_eq!(race.answered_while_held, 7, "every other answer is refused while the first is at the processor");
        let mut codes: Vec<u16> = race.answers.iter().map(|(s, _)| *s).collect();
        codes.sort_unstable();
        assert_eq!(codes[0], 303, "{:?}", race.answers);
        for (status, body) in race.answers.iter().filter(|(s, _)| *s != 303) {
            assert!(*status == 404 || (*status == 409 && body["error"]["code"] == "payment_conflict"), "{status} {body}");
        }
        assert_eq!(codes.iter().filter(|s| **s == 303).count(), 1);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(3100)), "{p}");
        assert_eq!(shop.processor.captured(), [3100]);
        assert_intact(app, before, |r| r.events += 1).await;
        shop.stop().await;
    }

    async fn key_limits_hold_for_every_money_movement(app) {
        for mode in [Mode::Test, Mode::Live] {
            key_limits_hold(app, mode).await;
        }
    }
}

/// A restricted key limited to 1000 EUR, against payments the secret key
/// made: every refusal is a 403 that changes nothing and sends nothing to the
/// processor; within the limit the same key moves money.
async fn key_limits_hold(app: &TestApp, mode: Mode) {
    let shop = shop(app, mode).await;
    let rk = shop.limited_key(app).await;
    let card = "4242424242424242";
    let open_big = shop.payment(card, 500_000, "eur", None).await;
    let held_big = shop.payment(card, 900_000, "eur", Some("manual")).await;
    let paid_big = shop.payment(card, 500_000, "eur", Some("automatic")).await;
    let open_usd = shop.payment(card, 500, "usd", None).await;
    let held_usd = shop.payment(card, 500, "usd", Some("manual")).await;
    let paid_usd = shop.payment(card, 500, "usd", Some("automatic")).await;
    let ids = [&open_big, &held_big, &paid_big, &open_usd, &held_usd, &paid_usd];
    let mut views = Vec::new();
    for id in ids {
        views.push(shop.get(id).await);
    }
    let calls = shop.processor.calls();
    let token = shop.token(card).await;
    let before = Rows::snapshot(app).await;
    let over = ("amount_above_key_limit", "amount");
    let cases: Vec<(&str, String, Value, (&str, &str))> = vec![
        (
            "create and confirm 1001 EUR",
            "/v1/payments".into(),
            json!({"amount": 1001, "currency": "eur", "payment_method": token, "confirm": true}),
            over,
        ),
        (
            "create 1001 EUR",
            "/v1/payments".into(),
            json!({"amount": 1001, "currency": "eur"}),
            over,
        ),
        (
            "confirm 500,000 EUR",
            format!("/v1/payments/{open_big}/confirm"),
            json!({}),
            over,
        ),
        (
            "capture all of 900,000 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "capture 900,000 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({"amount_to_capture": 900_000}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "capture 1001 EUR",
            format!("/v1/payments/{held_big}/capture"),
            json!({"amount_to_capture": 1001}),
            ("amount_above_key_limit", "amount_to_capture"),
        ),
        (
            "refund 400,000 EUR",
            "/v1/refunds".into(),
            json!({"payment": paid_big, "amount": 400_000}),
            over,
        ),
        (
            "refund all of 500,000 EUR",
            "/v1/refunds".into(),
            json!({"payment": paid_big}),
            over,
        ),
        (
            "create 500 USD",
            "/v1/payments".into(),
            json!({"amount": 500, "currency": "usd"}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "confirm 500 USD",
            format!("/v1/payments/{open_usd}/confirm"),
            json!({}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "capture 100 USD",
            format!("/v1/payments/{held_usd}/capture"),
            json!({"amount_to_capture": 100}),
            ("currency_not_allowed", "currency"),
        ),
        (
            "refund 100 USD",
            "/v1/refunds".into(),
            json!({"payment": paid_usd, "amount": 100}),
            ("currency_not_allowed", "currency"),
        ),
    ];
    for (case, path, body, (code, param)) in &cases {
        let got = refusal(shop.gateway.post(path, &rk, body).await).await;
        assert_eq!(got, (403, (*code).to_owned(), (*param).to_owned()), "{mode:?}: {case}");
    }
    assert_eq!(
        shop.processor.calls(),
        calls,
        "{mode:?}: no refused operation reached the processor"
    );
    for (id, view) in ids.iter().zip(&views) {
        assert_eq!(&shop.get(id).await, view, "{mode:?}: a refusal changed the payment");
        assert_eq!(claim_of(app, id).await, None);
    }
    assert_intact(app, before, |_| {}).await;

    // Within the limit, the same key moves money.
    let r = shop
        .gateway
        .post(
            &format!("/v1/payments/{held_big}/capture"),
            &rk,
            &json!({"amount_to_capture": 1000}),
        )
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    let p = shop.get(&held_big).await;
    assert_eq!(
        (&p["status"], &p["amount_received"]),
        (&json!("succeeded"), &json!(1000)),
        "{p}"
    );
    let r = shop
        .gateway
        .post("/v1/refunds", &rk, &json!({"payment": paid_big, "amount": 1000}))
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    let r = shop
        .gateway
        .post(
            "/v1/payments",
            &rk,
            &json!({"amount": 1000, "currency": "eur", "payment_method": token, "confirm": true}),
        )
        .await;
    assert_eq!(r.status(), 200, "{mode:?}: {}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(shop.processor.captured()[calls.capture..], [1000, 1000], "{mode:?}");
    assert_eq!(shop.processor.refunded(), [1000], "{mode:?}");
    let modes = shop.processor.modes();
    assert!(
        modes.len() == calls.authorize + 1 && modes.iter().all(|m| *m == mode),
        "{mode:?}: {modes:?}"
    );
    shop.stop().await;
}
