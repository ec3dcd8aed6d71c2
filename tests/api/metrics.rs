//! The operator listener and its Prometheus metrics: `/metrics` is served
//! there and nowhere else, the merchant API is not; series move with
//! requests, and no label carries a key, an id or a client address.

use paywarden::domain::api_key::KeyKind;

use crate::both_backends;
use crate::payments::{pay, token};
use crate::support::TestApp;

async fn scrape(app: &TestApp) -> String {
    let r = app
        .client()
        .get(format!("{}/metrics", app.main.operator))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    r.text().await.unwrap()
}

/// The value of one series (0 when it is not there yet).
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

const BAD_KEY: &str = "sk_test_0000000000000000000000000000000000000000";

both_backends! {
    async fn operator_listener_serves_metrics_and_readyz_but_not_the_api(app) {
        let (_, key) = app.merchant_with_secret("Operator Shop").await;
        let operator = &app.main.operator;
        for path in ["/v1/merchant", "/v1/payments", "/healthz", "/openapi.json"] {
            let r = app.client().get(format!("{operator}{path}")).bearer_auth(&key).send().await.unwrap();
            assert_eq!(r.status(), 404, "{path} on the operator listener");
        }
        let r = app.client().get(format!("{operator}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // And the public listener has no metrics.
        let r = app.get("/metrics", &key).await;
        assert_eq!(r.status(), 404);
        let r = app.client().get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(!r.text().await.unwrap().contains("paywarden_http_requests"));
    }

    async fn metrics_move_with_requests_and_never_carry_keys_ids_or_addresses(app) {
        let merchant = app.merchant("Metrics Shop").await;
        let issued = app.key(&merchant, KeyKind::Secret, &[]).await;
        let key = issued.secret.expose().to_owned();
        let before = scrape(app).await;
        let failures = r#"paywarden_auth_failures_total{reason="missing_or_invalid_key"}"#;

        // Three bad keys, one missing key: four refusals.
        for _ in 0..3 {
            assert_eq!(app.get("/v1/merchant", BAD_KEY).await.status(), 401);
        }
        let r = app.client().get(app.url("/v1/merchant")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let tok = token(app, &key, "4242424242424242").await;
        let paid = pay(app, &key, "4242424242424242", 1000, "automatic").await;
        let declined = pay(app, &key, "4000000000000002", 1000, "automatic").await;
        assert_eq!(declined["decline_code"], "generic_decline");
        // The sandbox's timing-out card: a connector error, not a decline by the issuer.
        let timed_out = pay(app, &key, "4000000000000101", 1000, "automatic").await;
        assert_eq!(timed_out["decline_code"], "processor_timeout");
        let payment_id = paid["id"].as_str().unwrap().to_owned();
        assert_eq!(app.get(&format!("/v1/payments/{payment_id}"), &key).await.status(), 200);

        let after = scrape(app).await;
        assert_eq!(value(&after, failures) - value(&before, failures), 4.0, "{after}");
        let shown = r#"paywarden_http_requests_total{method="GET",route="/v1/payments/{id}",status="200"}"#;
        assert_eq!(value(&after, shown), 1.0, "{after}");
        let created = r#"paywarden_http_requests_total{method="POST",route="/v1/payments",status="200"}"#;
        assert_eq!(value(&after, created), 3.0, "{after}");
        let refused = r#"paywarden_http_requests_total{method="GET",route="/v1/merchant",status="401"}"#;
        assert_eq!(value(&after, refused), 4.0, "{after}");
        let declines = r#"paywarden_payment_declines_total{code="generic_decline"}"#;
        assert_eq!(value(&after, declines), 1.0, "{after}");
        assert!(after.contains("paywarden_http_request_duration_seconds_bucket"));
        // Process-wide series (other tests' gateways share them): moved at least this much.
        let timeouts = r#"paywarden_connector_errors_total{connector="sandbox",operation="authorize",kind="timeout"}"#;
        assert!(value(&after, timeouts) - value(&before, timeouts) >= 1.0, "{after}");
        assert!(value(&after, "paywarden_commit_batch_size_count") >= 1.0, "{after}");

        for secret in [
            key.as_str(),
            BAD_KEY,
            &issued.key.id.to_string(),
            &merchant.to_string(),
            &tok,
            &payment_id,
            declined["id"].as_str().unwrap(),
            timed_out["id"].as_str().unwrap(),
            "127.0.0.1",
        ] {
            assert!(!after.contains(secret), "the metrics carry {secret}");
        }
    }
}

both_backends! {
    async fn lockouts_and_their_429s_are_counted(app) {
        let (_, key) = app.merchant_with_secret("Lockout Shop").await;
        let before = scrape(app).await;
        let invalid = r#"paywarden_auth_failures_total{reason="missing_or_invalid_key"}"#;
        let locked = r#"paywarden_auth_failures_total{reason="locked_out"}"#;
        let refused = r#"paywarden_rate_limited_total{route="/v1/merchant"}"#;
        let lockouts = "paywarden_auth_lockouts_total";
        // The default threshold: the tenth failure locks the address out.
        for i in 0..10 {
            let status = app.get("/v1/merchant", &format!("sk_test_guess{i}")).await.status();
            assert!(status == 401 || (i == 9 && status == 429), "attempt {i}: {status}");
        }
        // Locked out now, even with a valid key.
        assert_eq!(app.get("/v1/merchant", &key).await.status(), 429);
        let after = scrape(app).await;
        let moved = |series: &str| value(&after, series) - value(&before, series);
        assert_eq!(moved(invalid) + moved(locked), 11.0, "{after}");
        assert!(moved(locked) >= 1.0, "{after}");
        assert_eq!(moved(refused), moved(locked), "{after}");
        // Process-wide (other tests' gateways share it): at least this one.
        assert!(moved(lockouts) >= 1.0, "{after}");
        assert!(!after.contains("127.0.0.1"));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary: `serve --operator-listen` serves metrics there, a JSON
/// log line per request names its request id, route, merchant and key id,
/// and the public address is refused as the operator address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_opens_the_operator_listener_and_logs_each_request() {
    use crate::process::{Server, BIN};

    let dir = tempfile::tempdir().unwrap();
    let op = free_port();
    let operator = format!("127.0.0.1:{op}");
    let server = Server::start(dir.path(), &["--dev", "--operator-listen", &operator], &[]);
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let sk = server.banner_value("Test secret key:");
    let r = client
        .get(server.url("/v1/merchant"))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["request-id"].to_str().unwrap().to_owned();

    let r = client.get(format!("https://{operator}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"paywarden_http_requests_total{method="GET",route="/v1/merchant",status="200"} 1"#),
        "{body}"
    );
    assert!(!body.contains(&sk));
    let r = client
        .get(format!("https://{operator}/v1/merchant"))
        .bearer_auth(&sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(client.get(server.url("/metrics")).send().await.unwrap().status(), 404);

    let mut line = None;
    for _ in 0..100 {
        let log = server.stderr.lock().unwrap().clone();
        line = log.lines().find(|l| l.contains(&request_id)).map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let line = line.expect("a log line of the request");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["route"], "/v1/merchant", "{line}");
    assert_eq!(entry["status"], 200, "{line}");
    assert!(entry["merchant"].as_str().unwrap().starts_with("mer_"), "{line}");
    assert!(entry["key_id"].as_str().unwrap().starts_with("key_"), "{line}");
    assert!(!line.contains(&sk) && !line.contains("127.0.0.1"), "{line}");
    drop(server);

    // The public address is never the operator address.
    let other = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--operator-listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(other.path())
        .current_dir(other.path())
        .env("PAYWARDEN_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("must not be the public listen address"), "{said}");
}
