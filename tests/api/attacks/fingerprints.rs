//! The fingerprint oracle: a card's fingerprint, BIN and last four narrow
//! its number to about 100,000 Luhn-valid candidates, and tokenizing them
//! with the public publishable key used to find the one whose fingerprint
//! matched. Now a publishable key never sees a fingerprint, and the candidate
//! search is throttled long before it finishes; its refusals are audited as
//! one entry per window, not one per request.

use std::collections::HashSet;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use paywarden::services::rate_limit::RateLimitPolicy;
use serde_json::{json, Value};

use crate::both_backends;

/// The Luhn-valid 16-digit numbers with this BIN and last four, in order.
fn candidates<'a>(bin: &'a str, last4: &'a str) -> impl Iterator<Item = String> + 'a {
    (0..1_000_000u32).filter_map(move |middle| {
        let number = format!("{bin}{middle:06}{last4}");
        luhn_valid(&number).then_some(number)
    })
}

fn luhn_valid(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 {
                    d - 9
                } else {
                    d
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

both_backends! {
    async fn a_publishable_key_sees_no_fingerprint_and_the_candidate_search_is_throttled(app) {
        let m = app.merchant("Oracle").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let writer = app.key(&m, KeyKind::Restricted, &[Permission::TokensWrite]).await;
        let reader = app.key(&m, KeyKind::Restricted, &[Permission::TokensWrite, Permission::TokensRead]).await;
        let card = |number: &str| json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034}});
        // The victim's card, tokenized by the merchant's server.
        let victim: Value = app.post("/v1/tokens", sk.secret.expose(), &card("4000056655665556")).await.json().await.unwrap();
        let target = victim["card"]["fingerprint"].as_str().unwrap().to_owned();
        let (bin, last4) = (victim["card"]["bin"].as_str().unwrap(), victim["card"]["last4"].as_str().unwrap());
        // Who sees a fingerprint: secret keys and keys that may read tokens
        // (`tokens:write` implies `tokens:read`); never a publishable key.
        for (key, shown) in [(&writer, true), (&reader, true), (&pk, false)] {
            let t: Value = app.post("/v1/tokens", key.secret.expose(), &card("5555555555554444")).await.json().await.unwrap();
            assert_eq!(t["card"].get("fingerprint").is_some(), shown, "{t}");
        }
        let shown: Value = app.get(&format!("/v1/tokens/{}", victim["id"].as_str().unwrap()), reader.secret.expose()).await.json().await.unwrap();
        assert_eq!(shown["card"]["fingerprint"], target.as_str());

        // The attack, on a replica of its own (its buckets and its audit
        // windows are its own): tokenize every candidate with the pk, and
        // compare fingerprints.
        let mut replica = app.spawn_replica_with_rate_limits(RateLimitPolicy::default()).await;
        let (mut answered, mut throttled_at, mut retry_after) = (0usize, None, None);
        for (i, number) in candidates(bin, last4).take(300).enumerate() {
            let r = replica.post("/v1/tokens", pk.secret.expose(), &card(&number)).await;
            let status = r.status().as_u16();
            if status == 429 {
                retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                let e: Value = r.json().await.unwrap();
                assert_eq!(e["error"]["code"], "rate_limited", "{e}");
                throttled_at.get_or_insert(i);
                continue;
            }
            assert_eq!(status, 200);
            let t: Value = r.json().await.unwrap();
            assert!(t["card"].get("fingerprint").is_none(), "a publishable key was shown a fingerprint: {t}");
            assert!(!t.to_string().contains(&target));
            answered += 1;
        }
        let throttled_at = throttled_at.expect("the candidate search was never throttled");
        assert!(throttled_at <= 31, "throttled only after {throttled_at} candidates");
        assert!(answered <= 32, "{answered} of 300 candidates were tokenized");
        assert!(retry_after.is_some_and(|s| s >= 1), "429 without Retry-After");
        // About 100,000 candidates: at the sustained rate that is months.
        assert!(candidates(bin, last4).count() > 90_000);

        // The merchant's own servers are not throttled by default.
        let mut seen = HashSet::new();
        for number in candidates("555555", "4444").take(60) {
            let r = replica.post("/v1/tokens", sk.secret.expose(), &card(&number)).await;
            assert_eq!(r.status(), 200);
            seen.insert(number);
        }
        assert_eq!(seen.len(), 60);

        // ~270 refusals: one audit entry for the first, none per request;
        // the rest of the window is one summary, written when it closes.
        let records = app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.throttled")).await;
        let first: Vec<_> = records.iter().filter(|e| e.event.action == "rate_limit.throttled").collect();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].event.key_id.as_deref(), Some(pk.key.id.as_str()));
        let per_request = records
            .iter()
            .filter(|e| e.event.resource.as_deref().is_some_and(|r| r.contains("/v1/tokens -> 429")))
            .count();
        assert_eq!(per_request, 0, "throttled requests were audited one by one");
        // Stopping the replica closes its window.
        replica.stop().await;
        let records = app.wait_for_audit(|r| r.iter().any(|e| e.event.action == "rate_limit.throttled_summary")).await;
        let summary = records.iter().find(|e| e.event.action == "rate_limit.throttled_summary").unwrap();
        let refused = 300 - answered - 1;
        assert!(summary.event.reason.as_deref().unwrap().starts_with(&format!("{refused} more requests")), "{summary:?}");
    }
}
