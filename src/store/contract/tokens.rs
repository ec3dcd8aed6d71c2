//! The tokens port's contract.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{commit, contracts, new_merchant, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::TokenId;
use crate::domain::merchant::Merchant;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::TokenRow;
use crate::store::ports::{Commit, MerchantStore, TokenStore};
use crate::store::StoreError;

contracts!(
    a_token_is_found_only_live_in_its_tenant,
    an_id_collision_or_a_missing_merchant_is_refused,
    shredding_destroys_the_envelope_once,
    reveals_are_counted_per_key_and_window,
    kek_walk_pages_live_tokens_and_rewraps_only_unchanged_ones,
);

fn new_token(merchant: &Merchant, mode: Mode) -> TokenRow {
    let id = TokenId::generate_time_ordered(Timestamp::from_millis(1_700_000_000_000)).unwrap();
    TokenRow {
        id: id.to_string(),
        merchant_id: merchant.id.to_string(),
        mode: mode.as_str().to_owned(),
        brand: "visa".to_owned(),
        bin: "424242".to_owned(),
        last4: "4242".to_owned(),
        exp_month: 12,
        exp_year: 2031,
        fingerprint: "fp".to_owned(),
        kek_version: 1,
        wrapped_dek: Some("wrapped".to_owned()),
        ciphertext: Some(format!("cipher-{id}")),
        created_at: 1_700_000_000_000,
        // Ignored by the insert: a new token is live.
        shredded_at: Some(5),
    }
}

async fn stored_token<S: TokenStore + Commit>(store: &S, merchant: &Merchant, mode: Mode) -> TokenRow {
    let row = new_token(merchant, mode);
    commit(store, |work| store.insert_token(work, &row)).await.unwrap();
    row
}

fn id(row: &TokenRow) -> TokenId {
    TokenId::from_trusted(row.id.clone())
}

async fn a_token_is_found_only_live_in_its_tenant<S: TokenStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Cards").await;
    let other = stored_merchant(store, "Other").await;
    let row = stored_token(store, &merchant, Mode::Test).await;
    let mine = Tenant::new(merchant.id.clone(), Mode::Test);
    for read in [
        store.get_live_token(&mine, &id(&row)).await.unwrap(),
        store.get_live_token_for_payment(&mine, &id(&row)).await.unwrap(),
    ] {
        let read = read.unwrap();
        assert_eq!(
            (read.brand.as_str(), read.bin.as_str(), read.last4.as_str()),
            ("visa", "424242", "4242")
        );
        assert_eq!((read.exp_month, read.exp_year, read.kek_version), (12, 2031, 1));
        assert_eq!(read.ciphertext, row.ciphertext);
        assert_eq!(read.created_at, row.created_at);
        assert!(read.shredded_at.is_none());
    }
    for tenant in [
        Tenant::new(merchant.id.clone(), Mode::Live),
        Tenant::new(other.id.clone(), Mode::Test),
    ] {
        assert!(store.get_live_token(&tenant, &id(&row)).await.unwrap().is_none());
        assert!(store
            .get_live_token_for_payment(&tenant, &id(&row))
            .await
            .unwrap()
            .is_none());
    }
    let missing = TokenId::generate().unwrap();
    assert!(store.get_live_token(&mine, &missing).await.unwrap().is_none());
}

async fn an_id_collision_or_a_missing_merchant_is_refused<S: TokenStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Twice").await;
    let row = stored_token(store, &merchant, Mode::Test).await;
    let result = commit(store, |work| store.insert_token(work, &row)).await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    let orphan = new_token(&new_merchant("Ghost"), Mode::Test);
    let result = commit(store, |work| store.insert_token(work, &orphan)).await;
    assert!(matches!(result, Err(StoreError::Constraint(_))), "{result:?}");
}

async fn shredding_destroys_the_envelope_once<S: TokenStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Shredder").await;
    let row = stored_token(store, &merchant, Mode::Live).await;
    let mine = Tenant::new(merchant.id.clone(), Mode::Live);
    let at = Timestamp::from_millis(1_700_000_100_000);
    let across = commit(store, |work| {
        store.shred_token(work, &Tenant::new(merchant.id.clone(), Mode::Test), &id(&row), at)
    })
    .await;
    assert!(matches!(across, Err(StoreError::Conflict)), "{across:?}");
    assert!(store.get_live_token(&mine, &id(&row)).await.unwrap().is_some());
    commit(store, |work| store.shred_token(work, &mine, &id(&row), at))
        .await
        .unwrap();
    assert!(store.get_live_token(&mine, &id(&row)).await.unwrap().is_none());
    assert!(store
        .get_live_token_for_payment(&mine, &id(&row))
        .await
        .unwrap()
        .is_none());
    let again = commit(store, |work| store.shred_token(work, &mine, &id(&row), at)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
}

async fn reveals_are_counted_per_key_and_window<S: TokenStore + Commit>(store: &S) {
    let (window, limit) = (60_000, 3);
    let t0 = 1_700_000_000_000;
    for n in 0..3 {
        commit(store, |work| store.count_reveal(work, "key_a", t0 + n, window, limit))
            .await
            .unwrap();
    }
    let over = commit(store, |work| store.count_reveal(work, "key_a", t0 + 10, window, limit)).await;
    assert!(matches!(over, Err(StoreError::Conflict)), "{over:?}");
    // Another key has its own allowance.
    commit(store, |work| store.count_reveal(work, "key_b", t0 + 10, window, limit))
        .await
        .unwrap();
    // Still refused at the window's last millisecond, counted again after.
    let last = commit(store, |work| {
        store.count_reveal(work, "key_a", t0 + window - 1, window, limit)
    })
    .await;
    assert!(matches!(last, Err(StoreError::Conflict)), "{last:?}");
    commit(store, |work| {
        store.count_reveal(work, "key_a", t0 + window, window, limit)
    })
    .await
    .unwrap();
    for n in 1..3 {
        commit(store, |work| {
            store.count_reveal(work, "key_a", t0 + window + n, window, limit)
        })
        .await
        .unwrap();
    }
    let over = commit(store, |work| {
        store.count_reveal(work, "key_a", t0 + window + 5, window, limit)
    })
    .await;
    assert!(matches!(over, Err(StoreError::Conflict)), "{over:?}");
}

/// The KEK rotation's walk: every live token not under the target version
/// once, page by page in id order; a re-wrap applies only to a token still
/// under the version read, and the counts follow.
async fn kek_walk_pages_live_tokens_and_rewraps_only_unchanged_ones<S: TokenStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Rotating").await;
    let other = stored_merchant(store, "Other").await;
    let mut rows = Vec::new();
    for (m, mode) in [(&merchant, Mode::Test), (&merchant, Mode::Live), (&other, Mode::Test)] {
        for _ in 0..2 {
            rows.push(stored_token(store, m, mode).await);
        }
    }
    // One already at the target, one shredded: neither is walked.
    let at_target = TokenRow {
        kek_version: 2,
        ..new_token(&merchant, Mode::Test)
    };
    commit(store, |work| store.insert_token(work, &at_target))
        .await
        .unwrap();
    let shredded = stored_token(store, &other, Mode::Live).await;
    let other_live = Tenant::new(other.id.clone(), Mode::Live);
    commit(store, |work| {
        store.shred_token(
            work,
            &other_live,
            &id(&shredded),
            Timestamp::from_millis(1_700_000_000_001),
        )
    })
    .await
    .unwrap();
    assert_eq!(store.tokens_by_kek_version().await.unwrap(), [(1, 6), (2, 1)]);

    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.tokens_not_at_kek_version(2, &after, 4).await.unwrap();
        assert!(page.len() <= 4);
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        seen.extend(page);
    }
    // Each once (in the backend's id order, which the cursor follows).
    let mut expected: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    expected.sort_unstable();
    let mut walked: Vec<&str> = seen.iter().map(|r| r.id.as_str()).collect();
    walked.sort_unstable();
    assert_eq!(walked, expected);
    let first = seen.first().unwrap();
    let stored = rows.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(
        (
            first.merchant_id.as_str(),
            first.kek_version,
            Some(&first.wrapped_dek),
            Some(&first.ciphertext)
        ),
        (
            stored.merchant_id.as_str(),
            1,
            stored.wrapped_dek.as_ref(),
            stored.ciphertext.as_ref()
        )
    );

    // A re-wrap from a version the token is not under, and one of a
    // shredded token, are skipped; the right one applies once.
    let changed = |flag: &Arc<AtomicBool>| flag.load(Ordering::Relaxed);
    let (stale, gone, fresh) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    commit(store, |work| {
        store.rewrap_token(work, &first.id, 3, 2, "rewrapped", Arc::clone(&stale));
        store.rewrap_token(work, &shredded.id, 1, 2, "rewrapped", Arc::clone(&gone));
        store.rewrap_token(work, &first.id, 1, 2, "rewrapped", Arc::clone(&fresh));
    })
    .await
    .unwrap();
    assert!(!changed(&stale) && !changed(&gone) && changed(&fresh));
    let tenant = Tenant::new(
        crate::domain::ids::MerchantId::from_trusted(stored.merchant_id.clone()),
        Mode::parse(&stored.mode).unwrap(),
    );
    let read = store.get_live_token(&tenant, &id(stored)).await.unwrap().unwrap();
    assert_eq!((read.kek_version, read.wrapped_dek.as_deref()), (2, Some("rewrapped")));
    assert_eq!(read.ciphertext, stored.ciphertext, "the ciphertext is not touched");
    let again = Arc::new(AtomicBool::new(true));
    commit(store, |work| {
        store.rewrap_token(work, &first.id, 1, 2, "twice", Arc::clone(&again))
    })
    .await
    .unwrap();
    assert!(!changed(&again), "already re-wrapped");
    assert_eq!(store.tokens_by_kek_version().await.unwrap(), [(1, 5), (2, 2)]);
    assert_eq!(store.tokens_not_at_kek_version(2, "", 100).await.unwrap().len(), 5);
}
