//! `Idempotency-Key` on `/v1` POSTs: replay of the first answer, 422 for a
//! reused key, 409 while running, per-merchant and per-API-key scope, key
//! validation, stored refusals, one resource under concurrent retries, stale
//! locks, expiry, release on 5xx, KEK rotation of stored answers, no card
//! data at rest, and a card reveal, which refuses the header.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use paywarden::services::idempotency::{Idempotency, IdempotencyPolicy, RequestMacKey};
use paywarden::vault::{KekVersion, StaticKeyring};
use reqwest::header::HeaderValue;
use secrecy::SecretBox;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{kek, test_pepper, TestApp};

fn card(number: &str) -> Value {
    json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123", "name": "Ada Lovelace"}})
}

/// A finished request: status, the `Idempotent-Replayed` and `Request-Id`
/// headers, the raw body and the body as JSON.
struct Answer {
    status: u16,
    replayed: Option<String>,
    request_id: String,
    content_type: Option<String>,
    text: String,
    json: Value,
}

async fn answer(r: reqwest::Response) -> Answer {
    let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (status, replayed, request_id, content_type) = (
        r.status().as_u16(),
        header("idempotent-replayed"),
        header("request-id").unwrap(),
        header("content-type"),
    );
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        replayed,
        request_id,
        content_type,
        text,
        json,
    }
}

async fn post_with_key(app: &TestApp, path: &str, api_key: &str, idempotency_key: &str, body: &Value) -> Answer {
    let r = app
        .client()
        .post(app.url(path))
        .bearer_auth(api_key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(app.store.reader()).await.unwrap();
    n
}

async fn records_of(app: &TestApp, key: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys WHERE key = $1")
        .bind(key)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    n
}

/// How many card reveals the audit trail records (written in the reveal's own
/// transaction, so counted as soon as its answer is back).
async fn reveals_audited(app: &TestApp) -> usize {
    app.audit()
        .await
        .iter()
        .filter(|r| r.event.action == "token.revealed")
        .count()
}

fn now_millis() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn assert_refused(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["error"]["code"], code, "{}", a.text);
    assert_eq!(a.json["error"]["param"], "Idempotency-Key", "{}", a.text);
    assert!(a.replayed.is_none(), "a refusal is not a replay");
}

both_backends! {
    async fn a_repeated_request_replays_the_first_answer_without_running_again(app) {
        let (_, sk) = app.merchant_with_secret("Retry").await;
        let first = post_with_key(app, "/v1/tokens", &sk, "order-1001", &card("4242424242424242")).await;
        assert_eq!(first.status, 200, "{}", first.text);
        assert!(first.replayed.is_none(), "the first answer is not a replay");
        let again = post_with_key(app, "/v1/tokens", &sk, "order-1001", &card("4242424242424242")).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.replayed.as_deref(), Some("true"));
        assert_eq!(again.text, first.text, "the same body, byte for byte");
        assert_eq!(again.content_type.as_deref(), Some("application/json"));
        assert_ne!(again.request_id, first.request_id, "the replay has its own request id");
        assert!(again.request_id.starts_with("req_"));
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 1, "no second token");
        // Without the header, the same body does create a second token.
        assert_eq!(app.post("/v1/tokens", &sk, &card("4242424242424242")).await.status(), 200);
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 2);
        // Another endpoint: the second revoke is answered like the first, not with 409.
        let m = app.merchant("Revoker").await;
        let sk2 = app.key(&m, KeyKind::Secret, &[]).await;
        let victim = app.key(&m, KeyKind::Restricted, &[Permission::TokensRead]).await;
        let path = format!("/v1/api_keys/{}/revoke", victim.key.id.as_str());
        let revoked = post_with_key(app, &path, sk2.secret.expose(), "revoke-1", &json!({})).await;
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        let replayed = post_with_key(app, &path, sk2.secret.expose(), "revoke-1", &json!({})).await;
        assert_eq!((replayed.status, replayed.replayed.as_deref()), (200, Some("true")));
        assert_eq!(replayed.text, revoked.text);
        let fresh = answer(app.post(&path, sk2.secret.expose(), &json!({})).await).await;
        assert_eq!((fresh.status, fresh.json["error"]["code"].as_str()), (409, Some("api_key_already_revoked")));
    }

    async fn a_key_reused_for_another_request_is_refused(app) {
        let (_, sk) = app.merchant_with_secret("Careful").await;
        let first = post_with_key(app, "/v1/tokens", &sk, "k-1", &card("4242424242424242")).await;
        assert_eq!(first.status, 200);
        let other_body = post_with_key(app, "/v1/tokens", &sk, "k-1", &card("5555555555554444")).await;
        assert_refused(&other_body, 422, "idempotency_key_reused");
        assert_eq!(other_body.json["error"]["type"], "idempotency_error");
        assert!(!other_body.text.contains("5555555555554444"));
        let other_path = post_with_key(app, "/v1/merchant", &sk, "k-1", &json!({"name": "Renamed"})).await;
        assert_refused(&other_path, 422, "idempotency_key_reused");
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 1);
        let merchant: Value = app.get("/v1/merchant", &sk).await.json().await.unwrap();
        assert_eq!(merchant["name"], "Careful", "the refused request did not run");

        let renamed = post_with_key(app, "/v1/merchant", &sk, "rename-1", &json!({"name": "First"})).await;
        assert_eq!(renamed.status, 200);
        let changed = post_with_key(app, "/v1/merchant", &sk, "rename-1", &json!({"name": "Second"})).await;
        assert_refused(&changed, 422, "idempotency_key_reused");
        let merchant: Value = app.get("/v1/merchant", &sk).await.json().await.unwrap();
        assert_eq!(merchant["name"], "First");
    }

    async fn an_answer_is_replayed_only_to_the_api_key_that_caused_it(app) {
        // Records belong to the key that made them: another key of the
        // merchant using the same Idempotency-Key runs its own request (it is
        // neither blocked nor told that the key was used), and never gets
        // the first key's answer.
        let m = app.merchant("Keys").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let other_sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let writer = app.key(&m, KeyKind::Restricted, &[Permission::TokensWrite]).await;
        let t = post_with_key(app, "/v1/tokens", sk.secret.expose(), "shared", &card("4242424242424242")).await;
        assert_eq!(t.status, 200);
        for key in [&other_sk, &pk, &writer] {
            let a = post_with_key(app, "/v1/tokens", key.secret.expose(), "shared", &card("4242424242424242")).await;
            assert_eq!(a.status, 200, "{}", a.text);
            assert!(a.replayed.is_none(), "another key's answer was replayed");
            assert_ne!(a.json["id"], t.json["id"], "another key's answer leaked");
            // Its own retry replays its own answer.
            let again = post_with_key(app, "/v1/tokens", key.secret.expose(), "shared", &card("4242424242424242")).await;
            assert_eq!((again.replayed.as_deref(), &again.text), (Some("true"), &a.text));
        }
        // Nor does a publishable key get what a restricted key was answered.
        let w = post_with_key(app, "/v1/tokens", writer.secret.expose(), "restricted", &card("5555555555554444")).await;
        assert_eq!(w.status, 200, "{}", w.text);
        let own = post_with_key(app, "/v1/tokens", pk.secret.expose(), "restricted", &card("5555555555554444")).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert!(own.replayed.is_none());
        assert_ne!(own.json["id"], w.json["id"]);
        // The first key still gets its own first answer.
        let replay = post_with_key(app, "/v1/tokens", sk.secret.expose(), "shared", &card("4242424242424242")).await;
        assert_eq!((replay.replayed.as_deref(), &replay.text), (Some("true"), &t.text));
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 6);
    }

    async fn keys_are_scoped_per_merchant(app) {
        let (a, sk_a) = app.merchant_with_secret("A").await;
        let (b, sk_b) = app.merchant_with_secret("B").await;
        let ta = post_with_key(app, "/v1/tokens", &sk_a, "same-key", &card("4242424242424242")).await;
        let tb = post_with_key(app, "/v1/tokens", &sk_b, "same-key", &card("4242424242424242")).await;
        assert_eq!((ta.status, tb.status), (200, 200));
        assert!(tb.replayed.is_none(), "B's request ran");
        assert_ne!(ta.json["id"], tb.json["id"]);
        let shown: Value = app.get(&format!("/v1/tokens/{}", tb.json["id"].as_str().unwrap()), &sk_b).await.json().await.unwrap();
        assert_eq!(shown["id"], tb.json["id"], "B's answer is B's own token");
        // B may even use A's key for another request.
        let other = post_with_key(app, "/v1/tokens", &sk_b, "ta-key", &card("5555555555554444")).await;
        assert_eq!(other.status, 200);
        let replay_a = post_with_key(app, "/v1/tokens", &sk_a, "same-key", &card("4242424242424242")).await;
        assert_eq!((replay_a.replayed.as_deref(), &replay_a.text), (Some("true"), &ta.text));
        for (m, n) in [(&a, 1), (&b, 2)] {
            let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM card_tokens WHERE merchant_id = $1")
                .bind(m.as_str()).fetch_one(app.store.reader()).await.unwrap();
            assert_eq!(rows, n);
        }
    }

    async fn malformed_keys_are_refused_naming_the_header(app) {
        let (_, sk) = app.merchant_with_secret("Strict keys").await;
        let long = "k".repeat(256);
        let a = post_with_key(app, "/v1/tokens", &sk, &long, &card("4242424242424242")).await;
        assert_eq!((a.status, a.json["error"]["param"].as_str()), (400, Some("Idempotency-Key")), "{}", a.text);
        assert_eq!(a.json["error"]["code"], "idempotency_key_invalid");
        let ok = post_with_key(app, "/v1/tokens", &sk, &"k".repeat(255), &card("4242424242424242")).await;
        assert_eq!(ok.status, 200, "255 characters are fine");
        // A control character (the only one an HTTP header can carry) and a non-ASCII byte.
        let raw_values: [&[u8]; 2] = [b"tab\there", b"caf\xe9"];
        for raw in raw_values {
            let r = app.client().post(app.url("/v1/tokens")).bearer_auth(&sk)
                .header("Idempotency-Key", HeaderValue::from_bytes(raw).unwrap())
                .json(&card("4242424242424242")).send().await.unwrap();
            let a = answer(r).await;
            assert_eq!((a.status, a.json["error"]["param"].as_str()), (400, Some("Idempotency-Key")), "{raw:?}");
        }
        let r = app.client().post(app.url("/v1/tokens")).bearer_auth(&sk)
            .header("Idempotency-Key", "one").header("Idempotency-Key", "two")
            .json(&card("4242424242424242")).send().await.unwrap();
        assert_eq!(answer(r).await.json["error"]["param"], "Idempotency-Key", "two keys are refused");
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 1, "only the valid key's request ran");
        assert_eq!(count(app, "SELECT COUNT(*) FROM idempotency_keys").await, 1);
        // Only POST is affected; requests refused by authentication are never stored.
        let r = app.client().get(app.url("/v1/merchant")).bearer_auth(&sk).header("Idempotency-Key", long.as_str()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let refused = post_with_key(app, "/v1/tokens", "sk_test_nope", "unauthenticated", &card("4242424242424242")).await;
        assert_eq!(refused.status, 401);
        assert_eq!(records_of(app, "unauthenticated").await, 0);
    }

    async fn validation_errors_are_stored_and_replayed(app) {
        let (_, sk) = app.merchant_with_secret("Typos").await;
        let bad = card("4242424242424241");
        let first = post_with_key(app, "/v1/tokens", &sk, "typo-1", &bad).await;
        assert_eq!((first.status, first.json["error"]["code"].as_str()), (400, Some("incorrect_number")));
        assert!(first.replayed.is_none());
        let again = post_with_key(app, "/v1/tokens", &sk, "typo-1", &bad).await;
        assert_eq!((again.status, again.replayed.as_deref()), (400, Some("true")));
        assert_eq!(again.text, first.text, "the stored refusal, including its request id");
        // The key is spent on the refused request: a corrected body needs a new key.
        let fixed = post_with_key(app, "/v1/tokens", &sk, "typo-1", &card("4242424242424242")).await;
        assert_refused(&fixed, 422, "idempotency_key_reused");
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 0);
        let fresh = post_with_key(app, "/v1/tokens", &sk, "typo-2", &card("4242424242424242")).await;
        assert_eq!(fresh.status, 200);
        // The replayed refusal is audited as a refusal.
        let audit = app.wait_for_audit(|records| records.iter().filter(|r| r.event.reason.as_deref() == Some("incorrect_number")).count() >= 2).await;
        assert!(audit.iter().any(|r| r.event.resource.as_deref() == Some("POST /v1/tokens -> 400")));
    }

    async fn concurrent_identical_requests_create_exactly_one_token(app) {
        let (_, sk) = app.merchant_with_secret("Impatient").await;
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let (client, url, key) = (app.client().clone(), app.url("/v1/tokens"), sk.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.post(url).bearer_auth(key).header("Idempotency-Key", "burst")
                    .json(&card("4242424242424242")).send().await.unwrap();
                answer(r).await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let originals: Vec<&Answer> = answers.iter().filter(|a| a.status == 200 && a.replayed.is_none()).collect();
        assert_eq!(originals.len(), 1, "exactly one request ran");
        let id = originals[0].json["id"].as_str().unwrap().to_owned();
        for a in &answers {
            match a.status {
                200 => assert_eq!(a.json["id"], id.as_str(), "every success is the original token"),
                409 => {
                    assert_eq!(a.json["error"]["code"], "idempotency_key_in_use");
                    assert_eq!(a.json["error"]["type"], "idempotency_error");
                }
                other => panic!("unexpected {other}: {}", a.text),
            }
        }
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 1, "exactly one token");
        let later = post_with_key(app, "/v1/tokens", &sk, "burst", &card("4242424242424242")).await;
        assert_eq!((later.status, later.replayed.as_deref()), (200, Some("true")));
        assert_eq!(later.json["id"], id.as_str());
    }

    async fn a_stale_lock_is_taken_over_by_the_same_request(app) {
        let (_, sk) = app.merchant_with_secret("Crashed").await;
        let first = post_with_key(app, "/v1/tokens", &sk, "stale", &card("4242424242424242")).await;
        assert_eq!(first.status, 200);
        // As if the gateway had died while the first request was running.
        let running = format!(
            "UPDATE idempotency_keys SET state = 'in_progress', status_code = NULL, response = NULL, \
             wrapped_dek = NULL, kek_version = NULL, locked_until = {} WHERE key = 'stale'",
            now_millis() + 60_000
        );
        app.sql(&running).await;
        let busy = post_with_key(app, "/v1/tokens", &sk, "stale", &card("4242424242424242")).await;
        assert_refused(&busy, 409, "idempotency_key_in_use");
        let other = post_with_key(app, "/v1/tokens", &sk, "stale", &card("5555555555554444")).await;
        assert_refused(&other, 422, "idempotency_key_reused");
        app.sql("UPDATE idempotency_keys SET locked_until = 1 WHERE key = 'stale'").await;
        let other = post_with_key(app, "/v1/tokens", &sk, "stale", &card("5555555555554444")).await;
        assert_refused(&other, 422, "idempotency_key_reused");
        let retried = post_with_key(app, "/v1/tokens", &sk, "stale", &card("4242424242424242")).await;
        assert_eq!(retried.status, 200, "{}", retried.text);
        assert!(retried.replayed.is_none(), "the request ran again");
        assert_ne!(retried.json["id"], first.json["id"]);
        let replay = post_with_key(app, "/v1/tokens", &sk, "stale", &card("4242424242424242")).await;
        assert_eq!((replay.replayed.as_deref(), &replay.json["id"]), (Some("true"), &retried.json["id"]));
        let (state, request_id): (String, String) = sqlx::query_as("SELECT state, request_id FROM idempotency_keys WHERE key = 'stale'")
            .fetch_one(app.store.reader()).await.unwrap();
        assert_eq!((state.as_str(), request_id.as_str()), ("done", retried.request_id.as_str()));
    }

    async fn an_expired_key_is_new_again_and_the_sweeper_deletes_expired_records(app) {
        let (_, sk) = app.merchant_with_secret("Tomorrow").await;
        let first = post_with_key(app, "/v1/tokens", &sk, "daily", &card("4242424242424242")).await;
        assert_eq!(first.status, 200);
        let (created, expires): (i64, i64) = sqlx::query_as("SELECT created_at, expires_at FROM idempotency_keys WHERE key = 'daily'")
            .fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(expires - created, 24 * 3600 * 1000, "records live 24 hours");
        app.sql("UPDATE idempotency_keys SET created_at = created_at - 86400001, expires_at = expires_at - 86400001 WHERE key = 'daily'").await;
        let next = post_with_key(app, "/v1/tokens", &sk, "daily", &card("5555555555554444")).await;
        assert_eq!(next.status, 200, "an expired key is not 'reused': {}", next.text);
        assert!(next.replayed.is_none());
        let replay = post_with_key(app, "/v1/tokens", &sk, "daily", &card("5555555555554444")).await;
        assert_eq!((replay.replayed.as_deref(), &replay.text), (Some("true"), &next.text));

        let old = post_with_key(app, "/v1/tokens", &sk, "old", &card("4242424242424242")).await;
        assert_eq!(old.status, 200);
        app.sql("UPDATE idempotency_keys SET expires_at = 1 WHERE key = 'old'").await;
        let pepper: [u8; 32] = base64::engine::general_purpose::STANDARD.decode(&app.pepper_b64).unwrap().try_into().unwrap();
        let service = Idempotency::new(
            app.store.clone(),
            Arc::new(app.vault()),
            RequestMacKey::derive(&SecretBox::new(Box::new(pepper))),
            IdempotencyPolicy::default(),
        );
        assert_eq!(service.sweep().await.unwrap(), 1);
        assert_eq!((records_of(app, "old").await, records_of(app, "daily").await), (0, 1));
    }

    async fn server_errors_release_the_key(app) {
        let (_, sk) = app.merchant_with_secret("Flaky").await;
        // Without its table, tokenizing fails with 500.
        app.sql("ALTER TABLE card_tokens RENAME TO card_tokens_away").await;
        let failed = post_with_key(app, "/v1/tokens", &sk, "flaky-1", &card("4242424242424242")).await;
        assert_eq!(failed.status, 500, "{}", failed.text);
        assert_eq!(records_of(app, "flaky-1").await, 0, "a 5xx releases the key");
        app.sql("ALTER TABLE card_tokens_away RENAME TO card_tokens").await;
        let retried = post_with_key(app, "/v1/tokens", &sk, "flaky-1", &card("4242424242424242")).await;
        assert_eq!(retried.status, 200, "{}", retried.text);
        assert!(retried.replayed.is_none(), "the retry ran");
        let replayed = post_with_key(app, "/v1/tokens", &sk, "flaky-1", &card("4242424242424242")).await;
        assert_eq!((replayed.replayed.as_deref(), &replayed.text), (Some("true"), &retried.text));
        assert_eq!(count(app, "SELECT COUNT(*) FROM card_tokens").await, 1);
        // A 429 releases the key too (`api::idempotency`'s unit tests): no route
        // behind the middleware answers 429 since the card reveal opted out.
    }

    async fn a_card_reveal_refuses_an_idempotency_key_and_stores_nothing(app) {
        let m = app.merchant("Reveal once").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let t = answer(app.post("/v1/tokens", sk.secret.expose(), &card("4242424242424242")).await).await;
        assert_eq!(t.status, 200, "{}", t.text);
        let reveal = format!("/v1/tokens/{}/reveal", t.json["id"].as_str().unwrap());
        // Any value, even one that is not a valid key, and twice the same one.
        for key in ["reveal-1", "reveal-1", &"k".repeat(256)] {
            let refused = post_with_key(app, &reveal, revealer.secret.expose(), key, &json!({})).await;
            assert_refused(&refused, 400, "idempotency_not_supported");
            assert_eq!(refused.json["error"]["type"], "invalid_request_error");
            let message = refused.json["error"]["message"].as_str().unwrap();
            assert!(message.contains("not idempotent") && message.contains("without an Idempotency-Key"), "{message}");
            assert!(!refused.text.contains("4242424242424242"), "{}", refused.text);
        }
        assert_eq!(count(app, "SELECT COUNT(*) FROM idempotency_keys").await, 0, "nothing stored");
        assert_eq!(reveals_audited(app).await, 0, "the handler did not run");
        app.wait_for_audit(|records| {
            records.iter().filter(|r| r.event.reason.as_deref() == Some("idempotency_not_supported")).count() == 3
        }).await;

        // Without the header the same reveal runs, once per request, and is audited.
        let ok = answer(app.post(&reveal, revealer.secret.expose(), &json!({})).await).await;
        assert_eq!((ok.status, ok.json["card"]["number"].as_str()), (200, Some("4242424242424242")), "{}", ok.text);
        assert!(ok.replayed.is_none());
        assert_eq!(reveals_audited(app).await, 1);
        // The refusals did not count against the limit of 10 per key per minute.
        for _ in 0..9 {
            assert_eq!(app.post(&reveal, revealer.secret.expose(), &json!({})).await.status(), 200);
        }
        assert_eq!(app.post(&reveal, revealer.secret.expose(), &json!({})).await.status(), 429);
        assert_eq!(reveals_audited(app).await, 10);
        assert_eq!(count(app, "SELECT COUNT(*) FROM idempotency_keys").await, 0);
    }

    async fn stored_answers_are_sealed_and_hold_no_card_data(app) {
        let (_, sk) = app.merchant_with_secret("Sealed").await;
        let numbers = ["4242424242424242", "378282246310005"];
        let mut ids = Vec::new();
        let mut bodies = Vec::new();
        for (i, n) in numbers.iter().enumerate() {
            let mut body = card(n);
            body["card"]["cvc"] = json!(if n.starts_with('3') { "7391" } else { "739" });
            let t = post_with_key(app, "/v1/tokens", &sk, &format!("tok-{i}"), &body).await;
            assert_eq!(t.status, 200);
            assert_eq!(t.json["card"]["last4"], &n[n.len() - 4..], "the answer holds the last four");
            let again = post_with_key(app, "/v1/tokens", &sk, &format!("tok-{i}"), &body).await;
            assert_eq!((again.replayed.as_deref(), &again.text), (Some("true"), &t.text));
            ids.push(t.json["id"].as_str().unwrap().to_owned());
            bodies.push(body);
        }
        let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
            "SELECT key, request_mac, state, request_id, response, wrapped_dek FROM idempotency_keys")
            .fetch_all(app.store.reader()).await.unwrap();
        assert_eq!(rows.len(), 2);
        let b64 = base64::engine::general_purpose::STANDARD;
        for (key, mac, state, request_id, response, wrapped) in &rows {
            for v in [key, mac, state, request_id, response, wrapped] {
                for n in numbers {
                    assert!(!v.contains(n), "card number in idempotency_keys");
                }
                for id in &ids {
                    assert!(!v.contains(id.as_str()), "a token id in clear: the answer is not sealed");
                }
                assert!(!v.contains('{') && !v.contains("\"card\""), "plain JSON at rest");
            }
            // Random hex and base64 may hold any short digit run (and so may the
            // random request id, whose shape is checked instead); free text may not.
            for free_text in [key, state] {
                for n in numbers {
                    assert!(!free_text.contains(&n[n.len() - 4..]), "last four in free text");
                }
                assert!(!free_text.contains("739") && !free_text.contains("Ada"), "CVC or name at rest");
            }
            assert!(paywarden::domain::ids::RequestId::parse(request_id).is_ok(), "{request_id}");
            assert_eq!(mac.len(), 64);
            assert!(mac.chars().all(|c| c.is_ascii_hexdigit()));
            let sealed = b64.decode(response).unwrap();
            assert!(serde_json::from_slice::<Value>(&sealed).is_err());
            assert_eq!(b64.decode(wrapped).unwrap().len(), 60);
        }
        // No column could hold a request body.
        let cols: Vec<(String,)> = if app.db.url.starts_with("sqlite:") {
            sqlx::query_as("SELECT name FROM pragma_table_info('idempotency_keys') ORDER BY name").fetch_all(app.store.reader()).await.unwrap()
        } else {
            sqlx::query_as("SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_name = 'idempotency_keys' AND table_schema = current_schema() ORDER BY column_name").fetch_all(app.store.reader()).await.unwrap()
        };
        let cols: Vec<&str> = cols.iter().map(|(c,)| c.as_str()).collect();
        assert_eq!(cols, ["created_at", "expires_at", "kek_version", "key", "lineage_id", "locked_until", "merchant_id",
                          "mode", "request_id", "request_mac", "response", "state", "status_code", "wrapped_dek"]);
        if app.db.url.starts_with("sqlite:") {
            let path = app.db.url.trim_start_matches("sqlite://");
            for file in [path.to_owned(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    let hay = String::from_utf8_lossy(&bytes);
                    for n in numbers {
                        assert!(!hay.contains(n), "{file} holds a card number in clear");
                    }
                }
            }
        }
        // A sealed answer is bound to its record: moved to another key, it does not open.
        let (response, wrapped): (String, String) = sqlx::query_as("SELECT response, wrapped_dek FROM idempotency_keys WHERE key = 'tok-0'")
            .fetch_one(app.store.reader()).await.unwrap();
        sqlx::query("UPDATE idempotency_keys SET response = $1, wrapped_dek = $2 WHERE key = 'tok-1'")
            .bind(&response).bind(&wrapped).execute(app.store.reader()).await.unwrap();
        let moved = post_with_key(app, "/v1/tokens", &sk, "tok-1", &bodies[1]).await;
        assert_eq!(moved.status, 500);
        assert!(!moved.text.contains(ids[0].as_str()) && !moved.text.contains(ids[1].as_str()), "{}", moved.text);
    }

    async fn kek_rotation_rewraps_stored_answers(app) {
        let m = app.merchant("Rotating").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let t = post_with_key(app, "/v1/tokens", sk.secret.expose(), "rot-token", &card("4242424242424242")).await;
        assert_eq!(t.status, 200);
        let rename = json!({"name": "Rotated"});
        let r = post_with_key(app, "/v1/merchant", sk.secret.expose(), "rot-merchant", &rename).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (new_b64, _) = test_pepper();
        let new_file = app.data_path().join("kek-v2");
        crate::support::write_secret_file(&new_file, &new_b64);
        let new_file = new_file.to_str().unwrap().to_owned();
        let readable = [("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {new_file:?}}}]"))];
        let before = app.cli_json(&["vault", "status"]);
        assert_eq!(before["kek_versions"][0]["idempotent_responses"], 2, "{before}");
        let limited = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &new_file, "--new-version", "2", "--limit", "2"], &readable);
        let report = &limited["report"];
        assert_eq!((report["tokens"]["rewrapped"].as_u64(), report["idempotent_responses"]["rewrapped"].as_u64()), (Some(1), Some(1)));
        assert_eq!(report["idempotent_responses"]["remaining"], 1);
        let done = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &new_file, "--new-version", "2"], &readable);
        assert_eq!(done["report"]["idempotent_responses"]["rewrapped"], 1);
        assert_eq!(done["report"]["idempotent_responses"]["remaining"], 0);
        let after = app.cli_json(&["vault", "status"]);
        assert_eq!(after["kek_versions"], json!([{"version": 2, "tokens": 1, "idempotent_responses": 2, "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 0}]));
        // A gateway holding only the new KEK replays both answers.
        let only_new = StaticKeyring::single(KekVersion::new(2), kek(&new_b64));
        let mut replica = app.spawn_replica_with(app.vault_with(only_new)).await;
        for (path, key, body, expected) in [
            ("/v1/tokens", "rot-token", card("4242424242424242"), &t),
            ("/v1/merchant", "rot-merchant", rename, &r),
        ] {
            let resp = replica.client.post(format!("{}{path}", replica.base)).bearer_auth(sk.secret.expose())
                .header("Idempotency-Key", key).json(&body).send().await.unwrap();
            let a = answer(resp).await;
            assert_eq!((a.status, a.replayed.as_deref()), (200, Some("true")), "{}", a.text);
            assert_eq!(a.text, expected.text);
        }
        replica.stop().await;
    }
}
