//! The simulated attacks of issue 21, each on two replicas sharing the
//! database and Redis: a burst of bad keys from one address (alert, and the
//! address throttled on both), a key suddenly used from a new country
//! (alert, and the key frozen on the other replica at its next request when
//! the policy says so), a traffic spike on one key (alert), a revoked key
//! used again (alert).

use paywarden::domain::anomaly::{Detector, Response, Severity};
use paywarden::domain::api_key::KeyKind;
use paywarden::services::anomaly::AnomalyPolicy;
use paywarden::services::rate_limit::RateLimitPolicy;
use serde_json::Value;

use super::{behind_proxy, cli_anomalies, get_from, metrics};
use crate::payments::error_of;
use crate::support::{shared_limits, unique_prefix, AppOptions, Replica, TestApp, SHARED_REDIS_URL};

const ATTACKER: &str = "203.0.113.9";

/// Two more replicas, their rate limits shared through Redis.
async fn two_replicas(app: &TestApp) -> (Replica, Replica) {
    let prefix = unique_prefix();
    let a = app
        .spawn_replica_with_shared_limits(RateLimitPolicy::default(), shared_limits(SHARED_REDIS_URL, &prefix))
        .await;
    let b = app
        .spawn_replica_with_shared_limits(RateLimitPolicy::default(), shared_limits(SHARED_REDIS_URL, &prefix))
        .await;
    (a, b)
}

/// The counter of `detector`'s alerts in a `/metrics` text.
fn anomalies_counted(metrics: &str, detector: &str) -> u64 {
    let series = format!("paywarden_anomalies_total{{detector=\"{detector}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// `GET /v1/anomalies` with `key`.
async fn listed(replica: &Replica, key: &str) -> Vec<Value> {
    let r = replica.get("/v1/anomalies?limit=100", key).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

mod bad_keys {
    use super::*;

    fn options() -> AppOptions {
        let mut policy = AnomalyPolicy::default();
        // Below the lockout's 10 (by default the burst threshold is the lockout's).
        policy.auth_failures.min = 5;
        policy.auth_failures_follow_lockout = false;
        behind_proxy(policy)
    }

    with_options! {
        async fn a_burst_of_bad_keys_from_one_address_is_alerted_and_throttled_on_both_replicas(app) {
            let (_, sk) = app.merchant_with_secret("Targeted Shop").await;
            let (mut a, mut b) = two_replicas(app).await;
            // Guessed keys from one address, against replica a, until the
            // default policy (5 failures in a minute: throttle) answers 429;
            // before the lockout's 10.
            let mut sent = 0;
            loop {
                sent += 1;
                let guess = format!("sk_test_{:0>40}", sent);
                let (status, error) = error_of(get_from(&a, ATTACKER, "/v1/merchant", &guess).await).await;
                if status == 429 {
                    assert_eq!(error["code"], "rate_limited");
                    break;
                }
                assert_eq!(status, 401, "guess {sent}");
                assert!(sent < 10, "never throttled");
            }
            // Replica b refuses the address from its next request, bad key or good.
            let (status, error) = error_of(get_from(&b, ATTACKER, "/v1/merchant", "sk_test_nope").await).await;
            assert_eq!((status, error["code"].as_str()), (429, Some("rate_limited")));
            for replica in [&b, &a] {
                let r = get_from(replica, ATTACKER, "/v1/merchant", &sk).await;
                assert_eq!(r.status(), 429);
                let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(retry > 0 && retry <= 15 * 60 + 1, "{retry}");
                // Everyone else is served.
                assert_eq!(get_from(replica, "198.51.100.4", "/v1/merchant", &sk).await.status(), 200);
            }

            // One alert, whichever replica raised it, seen by operators only
            // (the guessed keys belong to no merchant).
            let alerts = cli_anomalies(app);
            assert_eq!(alerts.len(), 1, "{alerts:?}");
            let alert = &alerts[0];
            assert_eq!(alert["detector"], Detector::AuthFailureBurst.as_str());
            assert_eq!(alert["severity"], Severity::Warning.as_str());
            assert_eq!(alert["response"], Response::Throttle.as_str());
            assert_eq!(alert["subject"]["kind"], "client_ip");
            assert!(alert["subject"]["id"].as_str().unwrap().starts_with("ip:"));
            assert_eq!(alert["evidence"]["client_network"], "203.0.113.0/24");
            assert!(alert["observed"].as_i64().unwrap() >= 5);
            assert_eq!(alert["baseline"], 0);
            assert_eq!(alert["merchant"], Value::Null);
            assert!(alert["throttled_until"].as_i64().unwrap() > alert["created"].as_i64().unwrap());
            let text = serde_json::to_string(&alerts).unwrap();
            assert!(!text.contains(ATTACKER), "no address in clear: {text}");
            assert!(listed(&a, &sk).await.is_empty(), "not the merchant's");
            let counted = anomalies_counted(&metrics(&a).await, "auth_failure_burst")
                + anomalies_counted(&metrics(&b).await, "auth_failure_burst");
            assert_eq!(counted, 1, "counted once, by the replica that raised it");
            let audit = app.wait_for_audit(|a| a.iter().any(|r| r.event.action == "anomaly.detected")).await;
            let detected: Vec<_> = audit.iter().filter(|r| r.event.action == "anomaly.detected").collect();
            assert_eq!(detected.len(), 1);
            let reason = detected[0].event.reason.as_deref().unwrap();
            assert!(reason.contains("auth_failure_burst") && reason.contains("throttle"), "{reason}");
            assert!(!reason.contains(ATTACKER));
            a.stop().await;
            b.stop().await;
        }
    }
}

mod new_country {
    use super::*;

    fn options() -> AppOptions {
        let mut policy = AnomalyPolicy::default();
        policy
            .responses
            .insert((Detector::NewCountry, Severity::Warning), Response::FreezeKey);
        behind_proxy(policy)
    }

    with_options! {
        async fn a_key_used_from_a_new_country_is_alerted_and_frozen_on_the_other_replica(app) {
            let m = app.merchant("Travelling Key").await;
            let key = app.key(&m, KeyKind::Secret, &[]).await;
            let watcher = app.key(&m, KeyKind::Secret, &[]).await;
            let (sk, watcher) = (key.secret.expose().to_owned(), watcher.secret.expose().to_owned());
            let (mut a, mut b) = two_replicas(app).await;
            // The key's usual country (8.8.8.8: United States), on both.
            for replica in [&a, &b] {
                assert_eq!(get_from(replica, "8.8.8.8", "/v1/merchant", &sk).await.status(), 200);
            }
            // Suddenly from Germany (2003::/19): frozen with this very request…
            let (status, error) = error_of(get_from(&a, "2003::1", "/v1/merchant", &sk).await).await;
            assert_eq!((status, error["code"].as_str()), (403, Some("key_frozen")));
            // …and refused by the other replica at its next request, from anywhere.
            let (status, error) = error_of(get_from(&b, "8.8.8.8", "/v1/merchant", &sk).await).await;
            assert_eq!((status, error["code"].as_str()), (403, Some("key_frozen")));
            // The merchant's other key, first used from Germany: its baseline, no alert.
            assert_eq!(get_from(&b, "2003::1", "/v1/merchant", &watcher).await.status(), 200);

            let alerts = listed(&b, &watcher).await;
            assert_eq!(alerts.len(), 1, "{alerts:?}");
            let alert = &alerts[0];
            assert_eq!(alert["detector"], "new_country");
            assert_eq!(alert["subject"], serde_json::json!({"kind": "key", "id": key.key.id.as_str()}));
            assert_eq!(alert["response"], "freeze_key");
            assert_eq!(alert["evidence"]["country"], "DE");
            assert_eq!(alert["evidence"]["known_countries"], serde_json::json!(["US"]));
            assert_eq!(alert["evidence"]["client_network"], "2003::/48");
            assert_eq!((alert["observed"].as_i64(), alert["baseline"].as_i64()), (Some(2), Some(1)));
            assert_eq!(alert["livemode"], false);
            // The event, with the alert as its object (what webhooks deliver).
            let events: Value = b.get("/v1/events?type=anomaly.detected", &watcher).await.json().await.unwrap();
            let events = events["data"].as_array().unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["data"]["object"]["id"], alert["id"]);
            assert_eq!(events[0]["data"]["object"]["detector"], "new_country");

            // Only an operator unfreezes; then the key works from both countries.
            let thawed = app.cli_json(&["keys", "unfreeze", key.key.id.as_str(), "--reason", "customer travels"]);
            assert_eq!(thawed["frozen"], Value::Null);
            for (replica, ip) in [(&a, "2003::1"), (&b, "8.8.8.8")] {
                assert_eq!(get_from(replica, ip, "/v1/merchant", &sk).await.status(), 200);
            }
            assert_eq!(listed(&a, &watcher).await.len(), 1, "a known country raises nothing");
            let audit = app.wait_for_audit(|a| a.iter().any(|r| r.event.action == "api_key.unfrozen")).await;
            let froze: Vec<_> = audit.iter().filter(|r| r.event.action == "api_key.frozen").collect();
            assert_eq!(froze.len(), 1);
            assert!(froze[0].event.reason.as_deref().unwrap().contains("new_country"));
            a.stop().await;
            b.stop().await;
        }
    }
}

mod spike {
    use super::*;

    /// The request-rate alerts about the key `id`.
    async fn spikes(replica: &Replica, watcher: &str, id: &str) -> Vec<Value> {
        listed(replica, watcher)
            .await
            .into_iter()
            .filter(|x| x["detector"] == "request_rate_spike" && x["subject"]["id"] == id)
            .collect()
    }

    fn options() -> AppOptions {
        let mut policy = AnomalyPolicy::default();
        policy.request_rate.min = 30;
        policy.request_rate.history = 0;
        behind_proxy(policy)
    }

    with_options! {
        async fn a_traffic_spike_on_one_key_and_a_revoked_key_used_again_are_alerted(app) {
            let m = app.merchant("Spiky Shop").await;
            let busy = app.key(&m, KeyKind::Secret, &[]).await;
            let watcher = app.key(&m, KeyKind::Secret, &[]).await;
            let (sk, watcher) = (busy.secret.expose().to_owned(), watcher.secret.expose().to_owned());
            let (mut a, mut b) = two_replicas(app).await;
            // Rounds of 35 requests on one replica (a round may straddle a
            // window boundary; the next cannot as well).
            for _ in 0..3 {
                for i in 0..35 {
                    assert_eq!(a.get("/v1/merchant", &sk).await.status(), 200, "alert only: request {i} served");
                }
                if !spikes(&b, &watcher, busy.key.id.as_str()).await.is_empty() {
                    break;
                }
            }
            let found = spikes(&b, &watcher, busy.key.id.as_str()).await;
            assert_eq!(found.len(), 1, "one alert per window: {found:?}");
            assert_eq!(found[0]["response"], "alert");
            assert!(found[0]["observed"].as_i64().unwrap() >= 30);
            assert_eq!(found[0]["window"]["seconds"], 60);

            // A revoked key presented again.
            let revoked = app.key(&m, KeyKind::Secret, &[]).await;
            app.cli_json(&["keys", "revoke", revoked.key.id.as_str()]);
            assert_eq!(b.get("/v1/merchant", revoked.secret.expose()).await.status(), 401);
            let retired: Vec<_> = listed(&a, &watcher)
                .await
                .into_iter()
                .filter(|x| x["detector"] == "retired_key_use")
                .collect();
            assert_eq!(retired.len(), 1, "{retired:?}");
            assert_eq!(retired[0]["subject"]["id"], revoked.key.id.as_str());
            assert_eq!(retired[0]["evidence"]["retired"], "revoked");
            assert_eq!(retired[0]["response"], "alert");
            a.stop().await;
            b.stop().await;
        }
    }
}

mod card_testing {
    use super::*;
    use crate::payments::pay;

    fn options() -> AppOptions {
        let mut policy = AnomalyPolicy::default();
        policy.tokenization.min = 5;
        policy.declines.min = 3;
        behind_proxy(policy)
    }

    with_options! {
        async fn card_testing_raises_tokenization_burst_and_decline_rate_alerts(app) {
            let m = app.merchant("Card Tested Shop").await;
            let pk = app.key(&m, KeyKind::Publishable, &[]).await;
            let sk = app.key(&m, KeyKind::Secret, &[]).await;
            let sk = sk.secret.expose().to_owned();
            let mut b = app.spawn_replica().await;
            // A script tokenizing cards with the public key from one address.
            for n in 0..6 {
                let card = serde_json::json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}});
                let r = app
                    .main
                    .client
                    .post(app.main.url("/v1/tokens"))
                    .bearer_auth(pk.secret.expose())
                    .header("x-forwarded-for", "198.51.100.23")
                    .json(&card)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "card {n}: alert only");
            }
            // Then paying with them: one approval, then declines.
            assert_eq!(pay(app, &sk, "4242424242424242", 1000, "automatic").await["status"], "succeeded");
            for _ in 0..3 {
                assert_eq!(pay(app, &sk, "4000000000000002", 1000, "automatic").await["status"], "failed");
            }
            let alerts = listed(&b, &sk).await;
            let of = |detector: &str, kind: &str| {
                alerts
                    .iter()
                    .filter(|a| a["detector"] == detector && a["subject"]["kind"] == kind)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let by_ip = of("tokenization_burst", "client_ip");
            assert_eq!(by_ip.len(), 1, "{alerts:?}");
            assert_eq!(by_ip[0]["evidence"]["client_network"], "198.51.100.0/24");
            assert_eq!(by_ip[0]["observed"], 5);
            let by_key = of("tokenization_burst", "key");
            assert_eq!(by_key.len(), 1, "{alerts:?}");
            assert_eq!(by_key[0]["subject"]["id"], pk.key.id.as_str());
            let declines = of("decline_rate_spike", "merchant");
            assert_eq!(declines.len(), 1, "{alerts:?}");
            assert_eq!(declines[0]["subject"]["id"], m.as_str());
            assert_eq!((declines[0]["observed"].as_i64(), declines[0]["baseline"].as_i64()), (Some(75), Some(0)));
            assert!(!serde_json::to_string(&alerts).unwrap().contains("198.51.100.23"));
            // Counted by detector only: no ids or addresses in the labels.
            let scraped = metrics(&app.main).await;
            assert_eq!(anomalies_counted(&scraped, "tokenization_burst"), 2);
            assert_eq!(anomalies_counted(&scraped, "decline_rate_spike"), 1);
            assert!(!scraped.contains(m.as_str()) && !scraped.contains("198.51.100"));
            b.stop().await;
        }
    }
}
