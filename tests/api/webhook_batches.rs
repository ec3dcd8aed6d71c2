//! The webhook outbox in batches (issue 18, "the webhook outbox keeps up"):
//! a round's deliveries claimed under one lease token in multi-row
//! statements (only those still free are taken), attempts recorded many per
//! job (a lease lost in the middle of a batch writes nothing for that
//! delivery; a job that fails writes nothing at all), and a burst to a quick
//! receiver delivered exactly once each, signed, recorded, within the
//! per-endpoint cap of requests at once. Both backends.

use std::collections::HashSet;
use std::time::Duration;

use paywarden::domain::api_key::Mode;
use paywarden::domain::time::Timestamp;
use paywarden::store::group_commit::WriteJob;
use paywarden::store::webhook_attempts::AttemptRow;
use paywarden::store::webhook_deliveries::{self, AttemptOutcome, DeliveryKey, DeliveryRow, Finish};
use paywarden::store::{webhook_attempts, webhook_endpoints, StoreError};
use paywarden::webhooks::attempt::Sent;
use paywarden::webhooks::record::{record_batch, Finished};
use paywarden::webhooks::verify;
use serde_json::{json, Value};

use crate::both_backends;
use crate::receiver::{emit, Receiver};
use crate::support::{webhook_settings, TestApp};

/// An endpoint the worker leaves alone (disabled: its deliveries are never
/// due), with `n` pending deliveries inserted by hand; returns the
/// endpoint's id and the deliveries' event ids.
async fn idle_endpoint_with_deliveries(app: &TestApp, name: &str, n: usize) -> (String, Vec<String>) {
    let (merchant, sk) = app.merchant_with_secret(name).await;
    let r = app
        .post(
            "/v1/webhook_endpoints",
            &sk,
            &json!({"url": "https://127.0.0.1:9/hooks", "events": ["payment.succeeded"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let endpoint = body["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = $1")
        .bind(&endpoint)
        .execute(app.store.reader())
        .await
        .unwrap();
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let event = emit(
            &app.store,
            &merchant,
            Mode::Test,
            "payment.succeeded",
            json!({"id": format!("pay_{name}_{i}")}),
        )
        .await;
        let now = Timestamp::now().as_millis();
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, merchant_id, mode, status, attempts, \
             next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, 'test', 'pending', 0, $4, $4, $4)",
        )
        .bind(&endpoint)
        .bind(&event)
        .bind(merchant.to_string())
        .bind(now)
        .execute(app.store.reader())
        .await
        .unwrap();
        events.push(event);
    }
    (endpoint, events)
}

fn keys<'a>(endpoint: &'a str, events: &'a [String]) -> Vec<DeliveryKey<'a>> {
    events
        .iter()
        .map(|e| DeliveryKey {
            endpoint_id: endpoint,
            event_id: e,
        })
        .collect()
}

/// Claims `keys` under `token`; how many were taken.
async fn claim(app: &TestApp, keys: &[DeliveryKey<'_>], token: &str) -> u64 {
    let now = Timestamp::now().as_millis();
    let (ops, taken) = webhook_deliveries::claim_many_ops(keys, token, now, now + 60_000);
    app.store
        .group_commit()
        .run(WriteJob::new(ops, Vec::new()))
        .await
        .unwrap();
    taken.total()
}

async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<DeliveryRow> {
    webhook_deliveries::of_endpoint(app.store.reader(), endpoint)
        .await
        .unwrap()
}

async fn attempt_count(app: &TestApp, endpoint: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhook_attempts WHERE endpoint_id = $1")
        .bind(endpoint)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    n
}

both_backends! {
    async fn a_round_is_claimed_at_once_and_only_free_deliveries_are_taken(app) {
        // 150: more than one chunk of the largest statement.
        let (endpoint, events) = idle_endpoint_with_deliveries(app, "Claims", 150).await;
        let keys = keys(&endpoint, &events);
        // Another worker holds five of them.
        let theirs: Vec<DeliveryKey<'_>> = keys.iter().step_by(30).copied().collect();
        assert_eq!(claim(app, &theirs, "their-token-000000000000").await, 5);
        assert_eq!(claim(app, &keys, "our-token-00000000000000").await, 145);
        let ours: HashSet<(String, String)> = webhook_deliveries::claimed(app.store.reader(), &keys, "our-token-00000000000000")
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(ours.len(), 145);
        for k in &theirs {
            assert!(!ours.contains(&(k.endpoint_id.to_owned(), k.event_id.to_owned())), "a held lease is not taken");
        }
        // Nothing is free any more.
        assert_eq!(claim(app, &keys, "late-token-0000000000000").await, 0);
    }

    async fn attempts_are_recorded_many_per_job_and_a_lost_lease_writes_nothing_for_its_delivery(app) {
        let (endpoint, events) = idle_endpoint_with_deliveries(app, "Records", 40).await;
        let keys = keys(&endpoint, &events);
        let token = "round-token-000000000000";
        assert_eq!(claim(app, &keys, token).await, 40);
        // The lease of one delivery ran out and another worker took it.
        let stolen = &events[17];
        sqlx::query("UPDATE webhook_deliveries SET lease_token = 'next-owner' WHERE endpoint_id = $1 AND event_id = $2")
            .bind(&endpoint)
            .bind(stolen)
            .execute(app.store.reader())
            .await
            .unwrap();
        let row = webhook_endpoints::get_any(app.store.reader(), &endpoint).await.unwrap().unwrap();
        let row = std::sync::Arc::new(row);
        let token: std::sync::Arc<str> = token.into();
        let mut answers = Vec::new();
        let mut finished = Vec::new();
        for d in deliveries(app, &endpoint).await {
            let (done, answer) = tokio::sync::oneshot::channel();
            answers.push((d.event_id.clone(), answer));
            finished.push(Finished {
                delivery: d,
                endpoint: std::sync::Arc::clone(&row),
                token: std::sync::Arc::clone(&token),
                sent: Some(Sent { status_code: Some(200), error: None, duration_ms: 3 }),
                done,
            });
        }
        record_batch(&app.store, &webhook_settings(), finished).await;
        for (event, answer) in answers {
            assert_eq!(answer.await.unwrap(), event != *stolen, "{event}");
        }
        for d in deliveries(app, &endpoint).await {
            if d.event_id == *stolen {
                assert_eq!((d.status.as_str(), d.attempts), ("pending", 0), "{d:?}");
            } else {
                assert_eq!((d.status.as_str(), d.attempts, d.last_status_code), ("succeeded", 1, Some(200)), "{d:?}");
            }
        }
        let (stolen_attempts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhook_attempts WHERE event_id = $1")
            .bind(stolen)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
        assert_eq!(stolen_attempts, 0, "no attempt row without the lease");
        assert_eq!(attempt_count(app, &endpoint).await, 39);
        let (leased,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND lease_token IS NOT NULL",
        )
        .bind(&endpoint)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
        assert_eq!(leased, 1, "every recorded lease was released; the next owner's stays");
    }

    async fn a_record_job_that_fails_writes_nothing(app) {
        let (endpoint, events) = idle_endpoint_with_deliveries(app, "AllOrNothing", 20).await;
        let keys = keys(&endpoint, &events);
        let token = "round-token-111111111111";
        assert_eq!(claim(app, &keys, token).await, 20);
        let now = Timestamp::now().as_millis();
        let rows: Vec<AttemptRow> = events
            .iter()
            .enumerate()
            .map(|(i, e)| AttemptRow {
                // The last one repeats the first one's id: the job fails.
                id: format!("wa_batch{:016}", if i == events.len() - 1 { 0 } else { i }),
                endpoint_id: endpoint.clone(),
                event_id: e.clone(),
                merchant_id: String::new(),
                attempt: 1,
                attempted_at: now,
                status_code: Some(200),
                error: None,
                duration_ms: 1,
                outcome: "succeeded".into(),
            })
            .collect();
        let merchant = deliveries(app, &endpoint).await[0].merchant_id.clone();
        let rows: Vec<AttemptRow> = rows.into_iter().map(|r| AttemptRow { merchant_id: merchant.clone(), ..r }).collect();
        let pairs: Vec<(&AttemptRow, &str)> = rows.iter().map(|r| (r, token)).collect();
        let mut ops = webhook_attempts::insert_many_if_leased_ops(&pairs);
        let finishes: Vec<Finish<'_>> = keys
            .iter()
            .map(|k| Finish {
                key: *k,
                token,
                outcome: AttemptOutcome { status: "succeeded", next_attempt_at: now, status_code: Some(200), error: None, now },
            })
            .collect();
        let (finish_ops, written) = webhook_deliveries::finish_many_ops(&finishes);
        ops.extend(finish_ops);
        let result = app.store.group_commit().run(WriteJob::new(ops, Vec::new())).await;
        assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
        assert_eq!(written.total(), 0);
        assert_eq!(attempt_count(app, &endpoint).await, 0, "no attempt of the batch is written");
        for d in deliveries(app, &endpoint).await {
            assert_eq!((d.status.as_str(), d.attempts), ("pending", 0), "{d:?}");
        }
        // Still leased under the round's token: sent again after the lease.
        assert_eq!(webhook_deliveries::claimed(app.store.reader(), &keys, token).await.unwrap().len(), 20);
    }

    async fn a_burst_to_a_quick_receiver_is_delivered_once_each_within_the_cap(app) {
        let (merchant, sk) = app.merchant_with_secret("Burst").await;
        let receiver = Receiver::start().await;
        let r = app
            .post("/v1/webhook_endpoints", &sk, &json!({"url": receiver.url("/hooks"), "events": ["payment.succeeded"]}))
            .await;
        let body: Value = r.json().await.unwrap();
        let (endpoint, secret) = (body["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned());
        let mut expected = HashSet::new();
        for i in 0..300 {
            expected.insert(emit(&app.store, &merchant, Mode::Test, "payment.succeeded", json!({"id": format!("pay_q{i}")})).await);
        }
        let got = receiver.wait_for(Duration::from_secs(60), |r| r.len() >= 300).await;
        for r in &got {
            assert!(expected.contains(&verify(&r.body, &r.signature, &secret).unwrap().id));
        }
        assert_eq!(receiver.event_ids(), expected);
        let cap = webhook_settings().max_in_flight_per_endpoint;
        assert!(receiver.max_in_flight() <= cap, "{} requests at once; the cap is {cap}", receiver.max_in_flight());
        // Every delivery recorded once, as succeeded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let rows = deliveries(app, &endpoint).await;
            if rows.len() == 300 && rows.iter().all(|d| d.status == "succeeded") {
                assert!(rows.iter().all(|d| d.attempts == 1), "each sent once");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not all recorded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(attempt_count(app, &endpoint).await, 300);
        assert_eq!(receiver.received().len(), 300, "exactly once each");
    }
}
