//! Storage faults: a PostgreSQL peer that stops answering (the network in
//! between is a `FaultProxy`), a connection cut, a full SQLite database, the
//! free-space floor, readiness, and SIGTERM while the database is silent.
//!
//! What must hold in each: the gateway answers promptly (503
//! `storage_unavailable` with `Retry-After`, never a hang, never a 500),
//! `/readyz` fails while writes cannot commit, writes recover by themselves
//! once the database answers again, and no acknowledged payment is lost or
//! doubled (a retry with the same `Idempotency-Key` resolves an outcome the
//! fault left unknown).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use paywarden::services::idempotency::IdempotencyPolicy;
use paywarden::store::PoolSettings;
use serde_json::{json, Value};

use crate::both_backends;
use crate::fault_proxy::{upstream_of, FaultProxy, Mode};
use crate::process::Server;
use crate::support::{spawn_app_with_options, AppOptions, Db, TestApp, TestDatabase};

/// Short deadlines, so that a fault is noticed within seconds.
fn fault_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(2),
        write_deadline: Duration::from_secs(2),
        read_deadline: Duration::from_secs(2),
        ..PoolSettings::default()
    }
}

/// An idempotency lock that a test can outwait: a request cut off by the
/// fault may leave its key held until then.
fn short_lock() -> IdempotencyPolicy {
    IdempotencyPolicy {
        lock_timeout: Duration::from_secs(3),
        ..IdempotencyPolicy::default()
    }
}

async fn app_with(kind: Db, pool: PoolSettings, through_proxy: bool) -> Option<TestApp> {
    spawn_app_with_options(
        kind,
        AppOptions {
            pool,
            idempotency: short_lock(),
            through_proxy,
            ..AppOptions::default()
        },
    )
    .await
}

/// A client that gives up after 20 s: a request to a gateway that hangs on
/// its database fails the test instead of hanging it.
fn impatient_client(app: &TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn create_payment(client: &reqwest::Client, app: &TestApp, sk: &str, key: &str) -> Answer {
    let started = Instant::now();
    let r = client
        .post(app.url("/v1/payments"))
        .bearer_auth(sk)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": 1000, "currency": "usd"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /v1/payments ({key}) did not answer: {e}"));
    answer(r, started).await
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str, sk: &str) -> Answer {
    let started = Instant::now();
    let r = client
        .get(app.url(path))
        .bearer_auth(sk)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} did not answer: {e}"));
    answer(r, started).await
}

async fn answer(r: reqwest::Response, started: Instant) -> Answer {
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// The refusal every request gets while storage is down.
fn assert_storage_unavailable(a: &Answer, what: &str) {
    assert_eq!(a.status, 503, "{what}: {} {}", a.status, a.body);
    assert_eq!(a.code(), "storage_unavailable", "{what}: {}", a.body);
    assert!(a.retry_after.is_some(), "{what}: no Retry-After");
}

/// Polls `/readyz` until it answers `status` (within `within`).
async fn wait_readiness(client: &reqwest::Client, app: &TestApp, status: u16, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let a = get(client, app, "/readyz", "").await;
        if a.status == status {
            return a.body;
        }
        assert!(
            started.elapsed() < within,
            "/readyz still answers {} after {within:?}: {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Retries a payment with its key until it is answered 200 (a key held by
/// a request the fault cut off answers 409 until its lock expires; 503
/// while the database is still coming back). Returns the payment id.
async fn settle(client: &reqwest::Client, app: &TestApp, sk: &str, key: &str) -> String {
    let started = Instant::now();
    loop {
        let a = create_payment(client, app, sk, key).await;
        match a.status {
            200 => return a.body["id"].as_str().unwrap().to_owned(),
            409 | 503 if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => panic!("retrying {key}: {} {} after {:?}", a.status, a.body, started.elapsed()),
        }
    }
}

/// Every acknowledged payment is stored, and nothing else: one payment per
/// `Idempotency-Key`, never two.
async fn assert_no_payment_lost_or_doubled(app: &TestApp, acknowledged: &HashMap<String, String>) {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT id, idempotency_key FROM payments")
        .fetch_all(app.store.reader())
        .await
        .unwrap();
    let stored: HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for (key, id) in acknowledged {
        assert!(
            stored.contains(id.as_str()),
            "acknowledged payment {id} ({key}) was lost"
        );
    }
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for (_, key) in &rows {
        *per_key.entry(key.as_deref().unwrap_or("-")).or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "a payment was doubled: {per_key:?}");
    assert_eq!(
        rows.len(),
        acknowledged.len(),
        "payments nobody was told about: {rows:?}"
    );
    let out = app.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// The scenario: a proxy between gateway and PostgreSQL stops
/// answering without closing anything; what was sent meanwhile is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_postgres_peer_is_answered_503_and_writes_recover_when_it_returns() {
    let Some(app) = app_with(Db::Postgres, fault_settings(), true).await else {
        return;
    };
    let proxy = app.proxy.as_ref().unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Shop").await;
    let mut acknowledged = HashMap::new();
    for i in 0..3 {
        let key = format!("before-{i}");
        let a = create_payment(&client, &app, &sk, &key).await;
        assert_eq!(a.status, 200, "{}", a.body);
        acknowledged.insert(key, a.body["id"].as_str().unwrap().to_owned());
    }
    wait_readiness(&client, &app, 200, Duration::from_secs(5)).await;

    proxy.set(Mode::Blackhole);
    let during: Vec<String> = (0..4).map(|i| format!("during-{i}")).collect();
    let answers =
        futures_util::future::join_all(during.iter().map(|key| create_payment(&client, &app, &sk, key))).await;
    for (key, a) in during.iter().zip(&answers) {
        assert_storage_unavailable(a, key);
        assert!(a.took < Duration::from_secs(12), "{key} took {:?}", a.took);
    }
    let read = get(&client, &app, "/v1/payments", &sk).await;
    assert_storage_unavailable(&read, "a read");
    let body = wait_readiness(&client, &app, 503, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "unavailable", "{body}");

    proxy.set(Mode::Pass);
    let back = Instant::now();
    loop {
        let a = create_payment(&client, &app, &sk, "after").await;
        if a.status == 200 {
            acknowledged.insert("after".to_owned(), a.body["id"].as_str().unwrap().to_owned());
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "writes did not recover within 15 s of the database's return: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_readiness(&client, &app, 200, Duration::from_secs(10)).await;
    // The outcomes the fault left unknown are resolved by their keys.
    for key in &during {
        let id = settle(&client, &app, &sk, key).await;
        acknowledged.insert(key.clone(), id);
    }
    assert_no_payment_lost_or_doubled(&app, &acknowledged).await;
    app.stop().await;
}

async fn post(client: &reqwest::Client, app: &TestApp, path: &str, sk: &str, body: Value) -> Answer {
    let started = Instant::now();
    let r = client
        .post(app.url(path))
        .bearer_auth(sk)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path} did not answer: {e}"));
    answer(r, started).await
}

/// Changes other than payments (a merchant's settings, a webhook endpoint)
/// go through the same write committers as payments, so a silent peer
/// cannot hold them either: each is answered 503 within the deadlines, and
/// works again once the database answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_change_is_answered_promptly_during_a_silent_postgres_peer() {
    let Some(app) = app_with(Db::Postgres, fault_settings(), true).await else {
        return;
    };
    let proxy = app.proxy.as_ref().unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Settings").await;
    // Authenticated once while the database answers (the key is then cached).
    assert_eq!(get(&client, &app, "/v1/merchant", &sk).await.status, 200);
    let endpoint = || json!({"url": "https://hooks.example.com/paywarden", "events": ["*"]});

    proxy.set(Mode::Blackhole);
    let changes = futures_util::future::join(
        post(
            &client,
            &app,
            "/v1/merchant",
            &sk,
            json!({"name": "Renamed during the fault"}),
        ),
        post(&client, &app, "/v1/webhook_endpoints", &sk, endpoint()),
    )
    .await;
    for (what, a) in [("merchant update", &changes.0), ("webhook endpoint", &changes.1)] {
        assert_storage_unavailable(a, what);
        assert!(a.took < Duration::from_secs(12), "{what} took {:?}", a.took);
    }

    proxy.set(Mode::Pass);
    let back = Instant::now();
    loop {
        let a = post(&client, &app, "/v1/merchant", &sk, json!({"name": "Renamed after"})).await;
        if a.status == 200 {
            assert_eq!(a.body["name"], "Renamed after");
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no recovery: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let created = post(&client, &app, "/v1/webhook_endpoints", &sk, endpoint()).await;
    assert_eq!(created.status, 200, "{}", created.body);
    app.stop().await;
}

/// The reads on every payment (the token before an authorization, the
/// payment before a refund) go through their own shared PostgreSQL clients
/// (`store::pg_fast`): during a silent peer they are answered 503 within the
/// read deadline, and once the peer returns, or after their connections
/// are cut, new connections serve them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hot_reads_are_answered_promptly_during_a_silent_postgres_peer_and_recover() {
    let Some(app) = app_with(Db::Postgres, fault_settings(), true).await else {
        return;
    };
    let proxy = app.proxy.as_ref().unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Hot reads").await;
    let card = || json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}});
    let token = post(&client, &app, "/v1/tokens", &sk, card()).await;
    assert_eq!(token.status, 200, "{}", token.body);
    let paid = post(
        &client,
        &app,
        "/v1/payments",
        &sk,
        json!({"amount": 1000, "currency": "usd", "payment_method": token.body["id"], "confirm": true}),
    )
    .await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
    let spare = post(&client, &app, "/v1/tokens", &sk, card()).await;
    assert_eq!(spare.status, 200, "{}", spare.body);
    let payment = json!({"amount": 500, "currency": "usd", "payment_method": spare.body["id"], "confirm": true});
    let refund = json!({"payment": paid.body["id"], "amount": 1});

    proxy.set(Mode::Blackhole);
    let during = futures_util::future::join(
        post(&client, &app, "/v1/payments", &sk, payment.clone()),
        post(&client, &app, "/v1/refunds", &sk, refund.clone()),
    )
    .await;
    for (what, a) in [("payment with a card", &during.0), ("refund", &during.1)] {
        assert_storage_unavailable(a, what);
        assert!(a.took < Duration::from_secs(12), "{what} took {:?}", a.took);
    }

    proxy.set(Mode::Pass);
    let back = Instant::now();
    loop {
        let a = post(&client, &app, "/v1/refunds", &sk, refund.clone()).await;
        if a.status == 200 {
            assert_eq!(a.body["status"], "succeeded", "{}", a.body);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no recovery: {} {}",
            a.status,
            a.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let a = post(&client, &app, "/v1/payments", &sk, payment).await;
    assert_eq!(a.body["status"], "succeeded", "{}", a.body);

    // Cut under the gateway: the next reads open new connections.
    proxy.set(Mode::Cut);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set(Mode::Pass);
    let again = Instant::now();
    loop {
        let a = post(&client, &app, "/v1/refunds", &sk, refund.clone()).await;
        if a.status == 200 {
            break;
        }
        assert_storage_unavailable(&a, "a refund right after the cut");
        assert!(again.elapsed() < Duration::from_secs(5), "no recovery after the cut");
    }
    app.stop().await;
}

/// Connections closed under the gateway (a database restart, a proxy
/// failing over) are replaced: the next writes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_postgres_connections_are_replaced_without_a_restart() {
    let Some(app) = app_with(Db::Postgres, fault_settings(), true).await else {
        return;
    };
    let proxy = app.proxy.as_ref().unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Shop").await;
    let mut acknowledged = HashMap::new();
    for round in 0..3 {
        let key = format!("round-{round}");
        acknowledged.insert(key.clone(), settle(&client, &app, &sk, &key).await);
        proxy.set(Mode::Cut);
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.set(Mode::Pass);
    }
    let started = Instant::now();
    acknowledged.insert("last".into(), settle(&client, &app, &sk, "last").await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    wait_readiness(&client, &app, 200, Duration::from_secs(5)).await;
    assert_no_payment_lost_or_doubled(&app, &acknowledged).await;
    app.stop().await;
}

/// SQLite's "database or disk is full" (here from a cap on the database's
/// size, `PRAGMA max_page_count`, on the gateway's connections): 503
/// `storage_unavailable`, never a 500; reads go on; readiness fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_answers_503_storage_unavailable() {
    let settings = PoolSettings {
        // At most the database's size when the gateway opens it.
        sqlite_max_pages: Some(1),
        ..PoolSettings::default()
    };
    let app = app_with(Db::Sqlite, settings, false).await.unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Shop").await;
    let mut refused = None;
    for i in 0..400 {
        let a = create_payment(&client, &app, &sk, &format!("fill-{i}")).await;
        match a.status {
            200 => {}
            _ => {
                refused = Some(a);
                break;
            }
        }
    }
    let refused = refused.expect("the capped database never filled up");
    assert_storage_unavailable(&refused, "a write to a full database");
    let read = get(&client, &app, "/v1/merchant", &sk).await;
    assert_eq!(read.status, 200, "reads go on: {}", read.body);
    let body = wait_readiness(&client, &app, 503, Duration::from_secs(5)).await;
    assert!(body.to_string().contains("full"), "{body}");
    app.stop().await;
}

/// Below the free-space floor the gateway refuses writes before SQLite
/// would fail in the middle of a commit, and says so in `/readyz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_writes_are_refused_and_readiness_fails() {
    let settings = PoolSettings {
        // Far above what any test machine has free.
        min_free_bytes: 1 << 60,
        ..PoolSettings::default()
    };
    let app = app_with(Db::Sqlite, settings, false).await.unwrap();
    let client = impatient_client(&app);
    let (_, sk) = app.merchant_with_secret("Shop").await;
    let body = wait_readiness(&client, &app, 503, Duration::from_secs(5)).await;
    assert_eq!(body["checks"]["disk"]["ok"], false, "{body}");
    let a = create_payment(&client, &app, &sk, "refused").await;
    assert_storage_unavailable(&a, "a write below the floor");
    let read = get(&client, &app, "/v1/merchant", &sk).await;
    assert_eq!(read.status, 200, "reads go on: {}", read.body);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM payments")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(n, 0);
    app.stop().await;
}

both_backends! {
    async fn readiness_answers_200_while_writes_commit_and_is_not_audited(app) {
        let client = impatient_client(app);
        let body = wait_readiness(&client, app, 200, Duration::from_secs(5)).await;
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(body["checks"]["database"]["ok"], true, "{body}");
        assert_eq!(body["checks"]["writes"]["ok"], true, "{body}");
        let (_, sk) = app.merchant_with_secret("Shop").await;
        assert_eq!(get(&client, app, "/v1/merchant", &sk).await.status, 200);
        let audit = app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "api.request")).await;
        assert!(
            !audit.iter().any(|e| e.event.resource.as_deref().is_some_and(|r| r.contains("readyz"))),
            "readiness probes are not audited"
        );
    }
}

/// SIGTERM while PostgreSQL is silent: the process exits within its drain
/// (not after minutes), non-zero, and says what it abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_silent_peer_exits_within_the_drain_saying_what_it_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDatabase::create(Db::Postgres, &dir).await else {
        return;
    };
    let proxy = FaultProxy::start(upstream_of(&db.url).await).await;
    let url = proxy.url_through(&db.url);
    let server = Server::start(
        dir.path(),
        &["--dev", "--database-url", &url],
        &[
            ("PAYWARDEN_LIMITS__SHUTDOWN_GRACE_SECS", "2"),
            ("PAYWARDEN_LIMITS__SHUTDOWN_DRAIN_SECS", "3"),
            ("PAYWARDEN_DATABASE__WRITE_DEADLINE", "2s"),
            ("PAYWARDEN_DATABASE__READ_DEADLINE", "2s"),
        ],
    );
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let sk = server.banner_value("Test secret key:");
    for _ in 0..3 {
        let r = client
            .get(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    proxy.set(Mode::Blackhole);
    for i in 0..4 {
        let request = client
            .post(server.url("/v1/merchant"))
            .bearer_auth(&sk)
            .json(&json!({"name": format!("Shop {i}")}));
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut server = server;
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM (grace 2 s, drain 3 s); stderr:\n{}",
            server.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(
        !exit.success(),
        "exited {exit} although it abandoned work; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("abandoned"),
        "the log does not say what was abandoned:\n{stderr}"
    );
    drop(proxy);
    db.drop_schema().await;
}
