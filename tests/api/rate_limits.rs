//! Rate limits across replicas: buckets shared through Redis hold one budget
//! for every replica; without Redis each replica has its own; a Redis outage
//! falls back to each replica's own buckets (never to no limit), is audited
//! once and ends by itself; answers carry the remaining budget; `/readyz`
//! names Redis when it does not answer.

use std::time::Duration;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::rate_limit::Quota;
use paywarden::services::rate_limit::RateLimitPolicy;
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{shared_limits, unique_prefix, PrivateRedis, Replica, SHARED_REDIS_URL};

fn header(r: &reqwest::Response, name: &str) -> Option<u64> {
    r.headers().get(name).map(|v| v.to_str().unwrap().parse().unwrap())
}

/// Reads limited to `burst` per secret or restricted key (then one a
/// minute), tokenization as by default; nothing else limited.
fn private_reads(burst: u32) -> RateLimitPolicy {
    let mut policy = RateLimitPolicy::unlimited();
    policy.read.per_private_key = Some(Quota { burst, per_minute: 1 });
    policy.tokenize = RateLimitPolicy::default().tokenize;
    policy
}

async fn assert_throttled(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some_and(|s| s >= 1), "{:?}", r.headers());
    assert_eq!(header(&r, "ratelimit-remaining"), Some(0));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
}

async fn readiness(replica: &Replica) -> (u16, Value) {
    let r = replica.client.get(replica.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits (up to 10 s) for `/readyz` to answer `status`.
async fn wait_for_readiness(replica: &Replica, status: u16) -> Value {
    for _ in 0..100 {
        let (s, body) = readiness(replica).await;
        if s == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {status}: {:?}", readiness(replica).await);
}

both_backends! {
    async fn two_replicas_sharing_redis_hold_one_limit_and_without_redis_each_has_its_own(app) {
        let (_, sk) = app.merchant_with_secret("Shared budget").await;
        let (_, other) = app.merchant_with_secret("Another merchant").await;
        let prefix = unique_prefix();
        let mut a = app.spawn_replica_with_shared_limits(private_reads(6), shared_limits(SHARED_REDIS_URL, &prefix)).await;
        let mut b = app.spawn_replica_with_shared_limits(private_reads(6), shared_limits(SHARED_REDIS_URL, &prefix)).await;
        // Six requests split between the two replicas spend one budget of six.
        let mut remaining = Vec::new();
        for i in 0..6 {
            let r = if i % 2 == 0 { a.get("/v1/merchant", &sk).await } else { b.get("/v1/merchant", &sk).await };
            assert_eq!(r.status(), 200, "request {i}");
            assert_eq!(header(&r, "ratelimit-limit"), Some(6));
            assert!(header(&r, "ratelimit-reset").is_some_and(|s| s >= 1));
            remaining.push(header(&r, "ratelimit-remaining").unwrap());
        }
        assert_eq!(remaining, [5, 4, 3, 2, 1, 0], "one bucket, counted down by both replicas");
        for replica in [&a, &b] {
            assert_throttled(replica.get("/v1/merchant", &sk).await).await;
            // Another merchant's key has a bucket of its own.
            assert_eq!(replica.get("/v1/merchant", &other).await.status(), 200);
        }
        // What Redis holds: ids and hashed addresses, never a key's secret
        // or a client address in clear.
        let m = app.merchant("Key names").await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}});
        assert_eq!(a.post("/v1/tokens", pk.secret.expose(), &card).await.status(), 200);
        let mut con = redis::Client::open(SHARED_REDIS_URL).unwrap().get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut con).await.unwrap();
        assert!(keys.iter().any(|k| k.starts_with(&format!("{prefix}:read:private_key:key_"))), "{keys:?}");
        let ip_keys: Vec<_> = keys.iter().filter(|k| k.contains(":tokenize:client_ip:")).collect();
        assert_eq!(ip_keys.len(), 1, "{keys:?}");
        assert!(keys.iter().any(|k| k.ends_with(&format!(":tokenize:publishable_key:{}", pk.key.id))), "{keys:?}");
        for k in &keys {
            assert!(!k.contains("127.0.0.1") && !k.contains(&sk) && !k.contains(pk.secret.expose()) && !k.contains("_test_"), "{k}");
        }
        // No Redis: each replica has its own budget of six for the same key.
        let mut c = app.spawn_replica_with_rate_limits(private_reads(6)).await;
        let mut d = app.spawn_replica_with_rate_limits(private_reads(6)).await;
        for replica in [&c, &d] {
            for i in 0..6 {
                assert_eq!(replica.get("/v1/merchant", &sk).await.status(), 200, "request {i}");
            }
            assert_throttled(replica.get("/v1/merchant", &sk).await).await;
        }
        for r in [&mut a, &mut b, &mut c, &mut d] {
            r.stop().await;
        }
    }

    async fn a_redis_outage_falls_back_to_local_limits_is_audited_once_and_ends_by_itself(app) {
        let mut redis = PrivateRedis::start().await;
        let (_, sk) = app.merchant_with_secret("Outage").await;
        let prefix = unique_prefix();
        let mut a = app.spawn_replica_with_shared_limits(private_reads(3), shared_limits(&redis.url(), &prefix)).await;
        let ready = wait_for_readiness(&a, 200).await;
        assert_eq!(ready["checks"]["redis"]["ok"], true, "{ready}");
        for _ in 0..3 {
            assert_eq!(a.get("/v1/merchant", &sk).await.status(), 200);
        }
        assert_throttled(a.get("/v1/merchant", &sk).await).await;

        redis.kill();
        // Still limited, on this replica's own bucket (which the shared
        // bucket spared until now): three, then refused. Never unlimited.
        for i in 0..3 {
            assert_eq!(a.get("/v1/merchant", &sk).await.status(), 200, "request {i} during the outage");
        }
        for _ in 0..5 {
            assert_throttled(a.get("/v1/merchant", &sk).await).await;
        }
        // Readiness names the failing check, and nothing of the URL.
        let down = wait_for_readiness(&a, 503).await;
        assert_eq!(down["status"], "unavailable");
        assert_eq!(down["checks"]["redis"]["ok"], false, "{down}");
        assert_eq!(down["checks"]["database"]["ok"], true, "{down}");
        assert!(!down.to_string().contains(&redis.port.to_string()), "{down}");
        // One audit entry for the outage, however many requests met it.
        let records = app
            .wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.shared_unavailable"))
            .await;
        let outages = records.iter().filter(|e| e.event.action == "rate_limit.shared_unavailable").count();
        assert_eq!(outages, 1);

        // Redis is back: readiness recovers, the end is audited, and the
        // limit is shared again (a fresh Redis holds a full bucket, which a
        // second replica now spends with the first).
        redis.resume().await;
        let ready = wait_for_readiness(&a, 200).await;
        assert_eq!(ready["checks"]["redis"]["ok"], true, "{ready}");
        app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.shared_restored")).await;
        let mut b = app.spawn_replica_with_shared_limits(private_reads(3), shared_limits(&redis.url(), &prefix)).await;
        let mut statuses = Vec::new();
        for i in 0..3 {
            let r = if i % 2 == 0 { a.get("/v1/merchant", &sk).await } else { b.get("/v1/merchant", &sk).await };
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 200]);
        assert_throttled(a.get("/v1/merchant", &sk).await).await;
        assert_throttled(b.get("/v1/merchant", &sk).await).await;
        let outages = app.audit().await.iter().filter(|e| e.event.action == "rate_limit.shared_unavailable").count();
        assert_eq!(outages, 1, "still one entry for the one outage");
        a.stop().await;
        b.stop().await;
    }

    async fn a_redis_that_does_not_answer_in_time_is_an_outage_too(app) {
        let redis = PrivateRedis::start().await;
        let (_, sk) = app.merchant_with_secret("Slow redis").await;
        let mut a = app.spawn_replica_with_shared_limits(private_reads(3), shared_limits(&redis.url(), &unique_prefix())).await;
        wait_for_readiness(&a, 200).await;
        assert_eq!(a.get("/v1/merchant", &sk).await.status(), 200);
        redis.pause(true);
        // Each answer comes within the timeout's reach, not Redis's: the
        // first waits 50 ms, the rest not at all; still limited (a fresh
        // local bucket of three).
        let started = std::time::Instant::now();
        for i in 0..3 {
            assert_eq!(a.get("/v1/merchant", &sk).await.status(), 200, "request {i}");
        }
        assert_throttled(a.get("/v1/merchant", &sk).await).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        let down = wait_for_readiness(&a, 503).await;
        assert_eq!(down["checks"]["redis"]["ok"], false, "{down}");
        redis.pause(false);
        wait_for_readiness(&a, 200).await;
        let records = app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.shared_restored")).await;
        let outages = records.iter().filter(|e| e.event.action == "rate_limit.shared_unavailable").count();
        assert_eq!(outages, 1);
        a.stop().await;
    }

    async fn the_defaults_limit_publishable_keys_and_anonymous_clients_and_headers_count_down(app) {
        let m = app.merchant("Defaults").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        // The merchant's own servers: no bucket, no headers.
        for _ in 0..50 {
            let r = app.get("/v1/merchant", sk.secret.expose()).await;
            assert_eq!(r.status(), 200);
            assert!(r.headers().get("ratelimit-limit").is_none(), "{:?}", r.headers());
        }
        // Health probes are never limited.
        let r = app.client().get(app.url("/healthz")).send().await.unwrap();
        assert!(r.headers().get("ratelimit-limit").is_none());
        // Anonymous pages: the address's bucket, counting down.
        let first = app.client().get(app.url("/elements/card.css")).send().await.unwrap();
        let second = app.client().get(app.url("/elements/card.css")).send().await.unwrap();
        assert_eq!(header(&first, "ratelimit-limit"), Some(600));
        assert_eq!(
            header(&second, "ratelimit-remaining").unwrap() + 1,
            header(&first, "ratelimit-remaining").unwrap()
        );
        // A publishable key: the tightest of its buckets (its address's).
        let t = app
            .post("/v1/tokens", pk.secret.expose(), &json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}}))
            .await;
        assert_eq!(t.status(), 200);
        assert_eq!((header(&t, "ratelimit-limit"), header(&t, "ratelimit-remaining")), (Some(30), Some(29)));
        // Routes it may not use are still limited (and refused).
        let r = app.get("/v1/merchant", pk.secret.expose()).await;
        assert_eq!(r.status(), 403);
        assert_eq!((header(&r, "ratelimit-limit"), header(&r, "ratelimit-remaining")), (Some(120), Some(119)));
    }

    async fn an_anonymous_flood_is_refused_with_retry_after_and_audited_once(app) {
        let mut policy = RateLimitPolicy::default();
        policy.unauthenticated.per_client_ip = Some(Quota { burst: 2, per_minute: 1 });
        let mut replica = app.spawn_replica_with_rate_limits(policy).await;
        let page = "/sandbox/3ds/pay_doesnotexist";
        for _ in 0..2 {
            let r = replica.client.get(replica.url(page)).send().await.unwrap();
            assert_ne!(r.status(), 429);
        }
        for _ in 0..10 {
            assert_throttled(replica.client.get(replica.url(page)).send().await.unwrap()).await;
        }
        // Probes and the API's keys are unaffected.
        assert_eq!(replica.client.get(replica.url("/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(readiness(&replica).await.0, 200);
        let (_, sk) = app.merchant_with_secret("Unaffected").await;
        assert_eq!(replica.get("/v1/merchant", &sk).await.status(), 200);
        // One entry for the flood, none per refused request.
        let records = app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.throttled")).await;
        let throttled: Vec<_> = records.iter().filter(|e| e.event.action == "rate_limit.throttled").collect();
        assert_eq!(throttled.len(), 1, "{throttled:?}");
        assert_eq!(throttled[0].event.key_id, None);
        assert_eq!(throttled[0].event.client_ip.as_deref(), Some("127.0.0.1"));
        let per_request = records
            .iter()
            .filter(|e| e.event.resource.as_deref().is_some_and(|r| r.contains("-> 429")))
            .count();
        assert_eq!(per_request, 0);
        replica.stop().await;
    }
}

/// The Lua GCRA in Redis decides as the Rust one does (the same quota, the
/// same sequence of takes), and its keys expire once the bucket is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bucket_decides_as_the_local_one() {
    use paywarden::store::ports::RateBuckets;
    use paywarden::store::redis_buckets::RedisBuckets;
    use secrecy::SecretString;

    let redis = RedisBuckets::new(
        &SecretString::from(SHARED_REDIS_URL.to_owned()),
        Duration::from_millis(500),
    )
    .unwrap();
    let key = format!("{}:probe", unique_prefix());
    let gcra = Quota {
        burst: 3,
        per_minute: 60,
    }
    .gcra()
    .unwrap();
    let mut tat = None;
    for i in 0..5 {
        let shared = redis.take(&key, gcra).await.unwrap();
        let (local, next) = gcra.decide(tat, 0);
        tat = next.or(tat);
        assert_eq!(
            (shared.allowed, shared.remaining, shared.limit),
            (local.allowed, local.remaining, local.limit),
            "take {i}"
        );
        if !shared.allowed {
            // Within the few milliseconds the takes lasted.
            assert!(
                shared.retry_after <= local.retry_after
                    && shared.retry_after + Duration::from_millis(200) > local.retry_after
            );
        }
    }
    redis.ping().await.unwrap();
    // The key lives no longer than the bucket takes to refill (3 s here).
    let mut con = redis::Client::open(SHARED_REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut con).await.unwrap();
    assert!((1..=3000).contains(&ttl), "{ttl}");
}

/// `serve` with `redis.url`: the buckets are in Redis under the configured
/// prefix, and `/readyz` checks Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_redis_url_shares_its_buckets_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix();
    let server = crate::process::Server::start(
        dir.path(),
        &["--dev"],
        &[
            ("PAYWARDEN_REDIS__URL", SHARED_REDIS_URL),
            ("PAYWARDEN_REDIS__KEY_PREFIX", &prefix),
        ],
    );
    let client = server.dev_client();
    server.wait_ready(&client, "https").await;
    let pk = server.banner_value("Test publishable key:");
    let ready: Value = client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["redis"]["ok"], true, "{ready}");
    let card = json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034}});
    let r = client
        .post(server.url("/v1/tokens"))
        .bearer_auth(&pk)
        .json(&card)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "ratelimit-limit"), Some(30));
    let mut con = redis::Client::open(SHARED_REDIS_URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        keys.len(),
        2,
        "the address's and the key's tokenization buckets: {keys:?}"
    );
}
