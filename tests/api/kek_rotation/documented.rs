//! The documented KEK rotation (docs/operations.md), followed literally: each numbered step's blocks
//! run as written (`sh` on the operator host, `toml` as every replica's
//! `[vault]` table and a rolling restart) against real `paywarden serve`
//! replicas (one on SQLite, two sharing PostgreSQL) while payments, new
//! tokens, new webhook endpoints and webhook deliveries keep flowing. At the
//! end the old KEK is destroyed and configured nowhere, and still: no request
//! failed, no acknowledged payment is lost or doubled, every stored
//! idempotent answer replays, every token pays, and every webhook endpoint's
//! deliveries (also those signed after the old KEK is gone) verify.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use paywarden::store::{PoolSettings, Store};
use serde_json::{json, Value};

use super::fleet::Fleet;
use super::load::{card, payment, Endpoint, Gateways, Load};
use super::steps::{self, Kind};
use crate::receiver::{Received, Receiver};
use crate::support::{Db, TestDatabase};

/// The `[vault]` table before the rotation: only version 1.
const BEFORE: &str = "[vault]\n\
    kek_file = \"/etc/paywarden/secrets/kek-v1\"\n\
    kek_version = 1\n\
    fingerprint_key_file = \"/etc/paywarden/secrets/fingerprint_key\"\n";

/// New webhook endpoints the load creates, at most.
const LOAD_ENDPOINTS: usize = 4;

async fn rotation_as_documented(kind: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDatabase::create(kind, &dir).await else {
        return;
    };
    let root = dir.path();
    let replicas = match kind {
        Db::Sqlite => 1,
        Db::Postgres => 2,
    };
    let steps = steps::from_docs();
    let mut fleet = Fleet::new(root, &db.url, replicas);
    fleet.set_vault(BEFORE);
    fleet.start_all().await;
    let merchant = fleet.cli_json("merchant create --name Rotation")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sk = fleet.cli_json(&format!("key create --merchant {merchant} --kind secret"))["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let gateways = Gateways {
        client: fleet.client.clone(),
        urls: fleet.urls(),
        key: sk,
    };
    let receiver = Receiver::start().await;

    // An endpoint from before the rotation whose secret was rotated: two
    // sealed secrets, both under version 1 until re-wrapped.
    let created = gateways
        .post(
            "/v1/webhook_endpoints",
            "first-endpoint",
            &json!({"url": receiver.url("/first"), "events": ["*"]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let first = created.json()["id"].as_str().unwrap().to_owned();
    let rotated = gateways
        .post(
            &format!("/v1/webhook_endpoints/{first}/rotate_secret"),
            "first-rotation",
            &json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let mut endpoints = vec![Endpoint {
        id: first,
        path: "/first".into(),
        secret: rotated.json()["secret"].as_str().unwrap().to_owned(),
    }];

    let load = Load::start(gateways.clone(), receiver.base.clone(), LOAD_ENDPOINTS);
    load.progress(8).await;
    for step in &steps {
        for block in &step.blocks {
            match block.kind {
                Kind::Vault => {
                    fleet.set_vault(&block.text);
                    fleet.roll().await;
                }
                Kind::Shell => {
                    let out = fleet.sh(&fleet.localize(&block.text));
                    assert!(
                        out.status.success(),
                        "Documented KEK rotation step {} failed ({}):\n{}\nstdout: {}\nstderr: {}\nload failures so far: {:?}",
                        step.number,
                        out.status,
                        block.text,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                        load.ledger.lock().unwrap().failures
                    );
                }
            }
            // Traffic in every phase, so every configuration wraps new records.
            load.progress(6).await;
        }
    }
    let ledger = load.stop().await;
    eprintln!(
        "rotation under load ({kind:?}): {} tokens, {} payments, {} new webhook endpoints acknowledged",
        ledger.tokens.len(),
        ledger.payments.len(),
        ledger.endpoints.len()
    );
    let logs = (0..replicas).map(|n| fleet.log_of(n)).collect::<Vec<_>>().join("\n");
    assert!(
        ledger.failures.is_empty(),
        "requests failed during the rotation: {:#?}\n{logs}",
        ledger.failures
    );

    // The old KEK is destroyed and configured nowhere; nothing is wrapped under it.
    let old = fleet.secret_path("kek-v1");
    assert!(!Path::new(&old).exists(), "the documented last step destroys {old}");
    let config = std::fs::read_to_string(fleet.config_path()).unwrap();
    assert!(!config.contains("kek-v1"), "{config}");
    let status = fleet.cli_json("vault status");
    let responses = ledger.tokens.len() + ledger.payments.len() + ledger.endpoints.len() + 2;
    assert_eq!(
        status["kek_versions"],
        json!([{"version": 2, "tokens": ledger.tokens.len(), "idempotent_responses": responses,
                "webhook_secrets": ledger.endpoints.len() + 2, "connection_credentials": 0, "operator_secrets": 0}]),
        "{status}"
    );

    // No acknowledged payment was lost or doubled.
    let store = Store::open(&db.url, &PoolSettings::default()).await.unwrap();
    let stored: Vec<(String,)> = sqlx::query_as("SELECT id FROM payments WHERE merchant_id = $1")
        .bind(&merchant)
        .fetch_all(store.reader())
        .await
        .unwrap();
    let stored: Vec<String> = stored.into_iter().map(|(id,)| id).collect();
    let acked: HashSet<String> = ledger.payments.iter().map(|p| p.id()).collect();
    assert_eq!(acked.len(), ledger.payments.len(), "one payment per Idempotency-Key");
    assert_eq!(stored.len(), acked.len(), "payments stored beyond those acknowledged");
    assert_eq!(stored.into_iter().collect::<HashSet<_>>(), acked);

    // Every stored idempotent answer replays, read with the new KEK alone.
    for a in ledger.tokens.iter().chain(&ledger.payments).chain(&ledger.endpoints) {
        let again = gateways.post(&a.path, &a.key, &a.body).await;
        assert_eq!(
            (again.status, again.replayed),
            (200, true),
            "{} {}: {}",
            a.path,
            a.key,
            again.text
        );
        assert_eq!(again.text, a.answer.text, "{} {}", a.path, a.key);
    }
    for p in &ledger.payments {
        assert_eq!(
            gateways.get(&format!("/v1/payments/{}", p.id())).await["status"],
            "succeeded"
        );
    }

    // Every token pays (its data key opens under the new KEK alone).
    let mut after = HashSet::new();
    for t in &ledger.tokens {
        let paid = gateways
            .post("/v1/payments", &format!("after-{}", t.key), &payment(&t.id()))
            .await;
        assert_eq!(paid.status, 200, "token {}: {}", t.id(), paid.text);
        assert_eq!(paid.json()["status"], "succeeded", "{}", paid.text);
        after.insert(paid.json()["id"].as_str().unwrap().to_owned());
    }
    let fresh = gateways.post("/v1/tokens", "after-token", &card()).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);

    // Every endpoint's deliveries verify, also those signed after the old KEK was destroyed.
    for e in &ledger.endpoints {
        let body = e.answer.json();
        endpoints.push(Endpoint {
            id: body["id"].as_str().unwrap().to_owned(),
            path: body["url"]
                .as_str()
                .unwrap()
                .trim_start_matches(&receiver.base)
                .to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
        });
    }
    assert!(endpoints.len() > 1, "the load created webhook endpoints");
    let everything_delivered = || async {
        let states: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status")
                .fetch_all(store.reader())
                .await
                .unwrap();
        states
    };
    let mut states = Vec::new();
    for _ in 0..600 {
        states = everything_delivered().await;
        if states.iter().all(|(s, _)| s == "succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        states.iter().all(|(s, _)| s == "succeeded"),
        "deliveries not done: {states:?}\n{logs}"
    );
    let unavailable: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM webhook_attempts WHERE error = 'secret_unavailable'")
            .fetch_one(store.reader())
            .await
            .unwrap();
    assert_eq!(unavailable.0, 0, "a webhook secret could not be opened");
    let received = receiver.received();
    for e in &endpoints {
        let got: Vec<&Received> = received.iter().filter(|r| r.path == e.path).collect();
        let signed_after: HashSet<String> = got
            .iter()
            .map(|r| verified(r, &e.secret))
            .filter_map(|event| event["data"]["object"]["id"].as_str().map(str::to_owned))
            .filter(|id| after.contains(id))
            .collect();
        assert_eq!(
            signed_after, after,
            "endpoint {} got every payment made after the rotation",
            e.id
        );
    }
    store.close().await;
    drop(fleet);
    db.drop_schema().await;
}

/// The event of a delivery, which must verify with `secret` (at the time it
/// was signed: the check here is the signature, not the clock).
fn verified(r: &Received, secret: &str) -> Value {
    let t: i64 = r
        .signature
        .split(',')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no timestamp in {}", r.signature));
    paywarden::webhooks::verify_at(&r.body, &r.signature, secret, t)
        .unwrap_or_else(|e| panic!("a delivery to {} does not verify: {e:?}", r.path));
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_rotation_under_load_sqlite() {
    rotation_as_documented(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_rotation_under_load_postgres() {
    rotation_as_documented(Db::Postgres).await;
}
