//! The API keys port's contract.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::{ApiKey, KeyKind, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::merchant::Merchant;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, Commit, MerchantStore};
use crate::store::StoreError;

contracts!(
    keys_are_found_only_in_their_tenant,
    an_id_or_hash_collision_is_a_duplicate,
    a_key_of_no_merchant_is_refused,
    revoke_and_rotate_are_compare_and_set,
    last_use_only_moves_forward,
    freeze_and_unfreeze_are_compare_and_set,
);

/// A key of `merchant` in `mode`, not stored yet.
fn new_key(merchant: &Merchant, mode: Mode) -> ApiKey {
    ApiKey {
        last4: "wxyz".to_owned(),
        restrictions: KeyRestrictions {
            max_amount: Some(5_000),
            ..KeyRestrictions::default()
        },
        description: Some("contract".to_owned()),
        created_at: Timestamp::from_millis(1_700_000_000_000),
        expires_at: Some(Timestamp::from_millis(1_800_000_000_000)),
        ..ApiKey::for_test(merchant.id.clone(), KeyKind::Secret, mode)
    }
}

/// A key, stored with a hash unique to it.
async fn stored_key<S: ApiKeyStore + Commit>(store: &S, merchant: &Merchant, mode: Mode) -> ApiKey {
    let key = new_key(merchant, mode);
    let hash = format!("hash-{}", key.id);
    commit(store, |work| store.insert_key(work, &key, &hash)).await.unwrap();
    key
}

fn ids(keys: &[ApiKey]) -> Vec<String> {
    let mut ids: Vec<String> = keys.iter().map(|k| k.id.to_string()).collect();
    ids.sort();
    ids
}

async fn keys_are_found_only_in_their_tenant<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Keyed").await;
    let other = stored_merchant(store, "Other").await;
    assert!(!store.merchant_has_live_keys(&merchant.id).await.unwrap());
    let test_key = stored_key(store, &merchant, Mode::Test).await;
    assert!(!store.merchant_has_live_keys(&merchant.id).await.unwrap());
    let live_key = stored_key(store, &merchant, Mode::Live).await;
    let others = stored_key(store, &other, Mode::Test).await;
    assert!(store.merchant_has_live_keys(&merchant.id).await.unwrap());
    assert!(!store.merchant_has_live_keys(&other.id).await.unwrap());

    let read = store.get_key(&test_key.id).await.unwrap().unwrap();
    assert_eq!(read.merchant_id, merchant.id);
    assert_eq!((read.kind, read.mode), (KeyKind::Secret, Mode::Test));
    assert_eq!(read.lineage, test_key.id);
    assert_eq!(read.restrictions, test_key.restrictions);
    assert_eq!(read.expires_at, test_key.expires_at);
    assert_eq!(read.description.as_deref(), Some("contract"));
    assert!(read.revoked_at.is_none() && read.rotated_to.is_none() && read.last_used_at.is_none());

    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    let elsewhere = Tenant::new(other.id.clone(), Mode::Test);
    assert!(store.get_key_for_tenant(&test, &test_key.id).await.unwrap().is_some());
    assert!(
        store.get_key_for_tenant(&live, &test_key.id).await.unwrap().is_none(),
        "other mode"
    );
    assert!(
        store
            .get_key_for_tenant(&elsewhere, &test_key.id)
            .await
            .unwrap()
            .is_none(),
        "other merchant"
    );
    assert!(store.get_key(&ApiKeyId::generate().unwrap()).await.unwrap().is_none());

    let listed = store.list_keys_for_tenant(&test, None, 10).await.unwrap();
    assert_eq!(ids(&listed), ids(std::slice::from_ref(&test_key)));
    let listed = store.list_keys_for_tenant(&live, None, 10).await.unwrap();
    assert_eq!(ids(&listed), ids(std::slice::from_ref(&live_key)));
    let both = store.list_keys_for_merchant(&merchant.id, None, 10).await.unwrap();
    assert_eq!(ids(&both), ids(&[test_key.clone(), live_key.clone()]));
    let first = store.list_keys_for_merchant(&merchant.id, None, 1).await.unwrap();
    let rest = store
        .list_keys_for_merchant(&merchant.id, Some(&first[0].id), 10)
        .await
        .unwrap();
    assert_eq!(ids(&[first, rest].concat()), ids(&both), "pages after the last id");
    let theirs = store.list_keys_for_merchant(&other.id, None, 10).await.unwrap();
    assert_eq!(ids(&theirs), ids(&[others]));
    assert!(store
        .list_keys_for_merchant(&MerchantId::generate().unwrap(), None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn an_id_or_hash_collision_is_a_duplicate<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Twice").await;
    let key = stored_key(store, &merchant, Mode::Test).await;
    let same_hash = new_key(&merchant, Mode::Test);
    let result = commit(store, |work| {
        store.insert_key(work, &same_hash, &format!("hash-{}", key.id))
    })
    .await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    assert!(store.get_key(&same_hash.id).await.unwrap().is_none());
    let fresh = new_key(&merchant, Mode::Test);
    let result = commit(store, |work| {
        store.insert_key(work, &fresh, "hash-fresh");
        store.insert_key(work, &key, "hash-other");
    })
    .await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    assert!(store.get_key(&fresh.id).await.unwrap().is_none(), "all or nothing");
}

async fn a_key_of_no_merchant_is_refused<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    let ghost = super::new_merchant("Ghost");
    let key = new_key(&ghost, Mode::Test);
    let result = commit(store, |work| store.insert_key(work, &key, "hash-ghost")).await;
    assert!(matches!(result, Err(StoreError::Constraint(_))), "{result:?}");
    assert!(store.get_key(&key.id).await.unwrap().is_none());
}

async fn revoke_and_rotate_are_compare_and_set<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Rotating").await;
    let old = stored_key(store, &merchant, Mode::Live).await;
    let successor = stored_key(store, &merchant, Mode::Live).await;
    let ends = Timestamp::from_millis(1_750_000_000_000);
    commit(store, |work| store.mark_key_rotated(work, &old.id, &successor.id, ends))
        .await
        .unwrap();
    let read = store.get_key(&old.id).await.unwrap().unwrap();
    assert_eq!(read.rotated_to.as_ref(), Some(&successor.id));
    assert_eq!(read.expires_at, Some(ends));
    let again = commit(store, |work| store.mark_key_rotated(work, &old.id, &successor.id, ends)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    let at = Timestamp::from_millis(1_700_000_500_000);
    commit(store, |work| store.revoke_key(work, &successor.id, at))
        .await
        .unwrap();
    assert_eq!(
        store.get_key(&successor.id).await.unwrap().unwrap().revoked_at,
        Some(at)
    );
    let again = commit(store, |work| store.revoke_key(work, &successor.id, at)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let rotated = commit(store, |work| store.mark_key_rotated(work, &successor.id, &old.id, ends)).await;
    assert!(
        matches!(rotated, Err(StoreError::Conflict)),
        "a revoked key is not rotated: {rotated:?}"
    );

    let missing = ApiKeyId::generate().unwrap();
    let revoked = commit(store, |work| store.revoke_key(work, &missing, at)).await;
    assert!(matches!(revoked, Err(StoreError::Conflict)), "{revoked:?}");
}

/// The audit writer's touch of a key's last use: forward only, and a key
/// that does not exist is no error.
async fn last_use_only_moves_forward<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Used").await;
    let key = stored_key(store, &merchant, Mode::Test).await;
    let used = |key: Option<ApiKey>| key.and_then(|k| k.last_used_at).map(Timestamp::as_millis);
    assert_eq!(used(store.get_key(&key.id).await.unwrap()), None);
    let t0 = 1_700_000_500_000;
    commit(store, |work| {
        store.touch_key_last_used(work, key.id.as_str(), t0);
        store.touch_key_last_used(work, "key_unknown", t0);
    })
    .await
    .unwrap();
    assert_eq!(used(store.get_key(&key.id).await.unwrap()), Some(t0));
    commit(store, |work| store.touch_key_last_used(work, key.id.as_str(), t0 - 1))
        .await
        .unwrap();
    assert_eq!(used(store.get_key(&key.id).await.unwrap()), Some(t0), "never back");
    commit(store, |work| store.touch_key_last_used(work, key.id.as_str(), t0 + 1))
        .await
        .unwrap();
    assert_eq!(used(store.get_key(&key.id).await.unwrap()), Some(t0 + 1));
}

async fn freeze_and_unfreeze_are_compare_and_set<S: ApiKeyStore + MerchantStore + Commit>(store: &S) {
    use crate::domain::merchant::{Freeze, FreezeReason};
    let merchant = stored_merchant(store, "Frozen key").await;
    let key = stored_key(store, &merchant, Mode::Test).await;
    let sibling = stored_key(store, &merchant, Mode::Test).await;
    let freeze = Freeze {
        at: Timestamp::from_millis(1_750_000_000_000),
        reason: FreezeReason::parse("contract").unwrap(),
    };
    commit(store, |work| store.freeze_key(work, &key.id, &freeze))
        .await
        .unwrap();
    let read = store.get_key(&key.id).await.unwrap().unwrap();
    assert_eq!(read.frozen, Some(freeze.clone()));
    assert!(
        store.get_key(&sibling.id).await.unwrap().unwrap().frozen.is_none(),
        "one key only"
    );
    let again = commit(store, |work| store.freeze_key(work, &key.id, &freeze)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let missing = commit(store, |work| {
        store.freeze_key(work, &ApiKeyId::generate().unwrap(), &freeze)
    })
    .await;
    assert!(matches!(missing, Err(StoreError::Conflict)), "{missing:?}");
    commit(store, |work| store.unfreeze_key(work, &key.id)).await.unwrap();
    assert!(store.get_key(&key.id).await.unwrap().unwrap().frozen.is_none());
    let again = commit(store, |work| store.unfreeze_key(work, &key.id)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
}
