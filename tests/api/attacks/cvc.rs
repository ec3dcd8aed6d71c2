//! Flooding the in-memory CVC holder (issue 17, item 5): a merchant's
//! publishable key tokenizing with a CVC far past its share is never refused
//! and evicts only its own oldest CVCs; another merchant still tokenizes with a
//! CVC and its payments get it, and the flooded merchant's own server-side
//! tokenizations keep theirs.

use std::sync::Arc;
use std::time::Duration;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::{MerchantId, TokenId};
use paywarden::domain::tenant::Tenant;
use paywarden::services::tokens;
use paywarden::vault::Vault;
use paywarden::vault::{CvcLimits, CvcStore};
use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{Replica, TestApp};

/// A holder of 8 CVCs in all, 4 per merchant, 2 per publishable key.
fn small_holder() -> CvcStore {
    CvcStore::with_limits(Duration::from_secs(600), CvcLimits::new(8, Some(4), Some(2)).unwrap()).unwrap()
}

/// Tokenizes a Visa card with `cvc` through `replica`: the status and body.
async fn tokenize(replica: &Replica, key: &str, cvc: &str) -> (u16, Value) {
    let r = replica
        .client
        .post(format!("{}/v1/tokens", replica.base))
        .bearer_auth(key)
        .json(&json!({"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": cvc}}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Tokenizes and returns the token id, demanding a 200.
async fn token(replica: &Replica, key: &str, cvc: &str, case: &str) -> String {
    let (status, body) = tokenize(replica, key, cvc).await;
    assert_eq!(status, 200, "{case}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The CVC the first authorization of `token` gets: the token opened exactly
/// as a payment opens it (which takes the CVC out of the holder).
async fn cvc_for_payment(app: &TestApp, vault: &Vault, merchant: &MerchantId, token: &str) -> Option<String> {
    let tenant = Tenant::new(merchant.clone(), Mode::Test);
    let id = TokenId::parse(token).unwrap();
    let (_, card) = tokens::open_for_payment(&app.store, vault, &tenant, &id, true)
        .await
        .unwrap()
        .expect("the token exists");
    card.cvc.map(|c| c.expose().to_owned())
}

both_backends! {
    async fn a_publishable_key_flooding_cvcs_evicts_only_its_own_oldest(app) {
        let vault = Arc::new(app.vault_with_cvcs(small_holder()));
        let mut replica = app.spawn_replica_sharing(Arc::clone(&vault)).await;
        let a = app.merchant("Flooded").await;
        let a_pk = app.key(&a, KeyKind::Publishable, &[]).await.secret.expose().to_owned();
        let a_sk = app.key(&a, KeyKind::Secret, &[]).await.secret.expose().to_owned();
        let b = app.merchant("Bystander").await;
        let b_pk = app.key(&b, KeyKind::Publishable, &[]).await.secret.expose().to_owned();
        let b_sk = app.key(&b, KeyKind::Secret, &[]).await.secret.expose().to_owned();

        // Held before the flood: one CVC of A's server, one of B's page.
        let a_server = token(&replica, &a_sk, "111", "A's server before the flood").await;
        let b_early = token(&replica, &b_pk, "222", "B's page before the flood").await;

        // The flood: A's publishable key, five times its share and more than
        // the whole holder. Never refused: its own oldest make room.
        let mut flood = Vec::new();
        for i in 0..10 {
            let cvc = format!("{}", 500 + i);
            flood.push((token(&replica, &a_pk, &cvc, &format!("flood {i}")).await, cvc));
        }

        // B, after the flood, from its page and from its server.
        let b_late = token(&replica, &b_pk, "333", "B's page after the flood").await;
        let b_server = token(&replica, &b_sk, "444", "B's server after the flood").await;

        // Every CVC of B reaches its payment.
        for (token, cvc) in [(&b_early, "222"), (&b_late, "333"), (&b_server, "444")] {
            assert_eq!(cvc_for_payment(app, &vault, &b, token).await.as_deref(), Some(cvc), "B's {token}");
        }
        // A's server-side CVC was not the flood's to evict.
        assert_eq!(cvc_for_payment(app, &vault, &a, &a_server).await.as_deref(), Some("111"));
        // The flood kept its newest (the publishable key's share: 2), the
        // older ones were evicted oldest first and pay without a CVC.
        let (old, new) = flood.split_at(flood.len() - 2);
        for (token, cvc) in new {
            assert_eq!(cvc_for_payment(app, &vault, &a, token).await.as_deref(), Some(cvc.as_str()), "{token}");
        }
        for (token, _) in old {
            assert_eq!(cvc_for_payment(app, &vault, &a, token).await, None, "{token} should have been evicted");
        }
        replica.stop().await;
    }
}
