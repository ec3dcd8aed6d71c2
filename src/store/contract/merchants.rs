//! The merchants port's contract.

use std::collections::BTreeSet;

use super::{commit, contracts, new_merchant, stored_merchant};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, FreezeReason, MerchantName};
use crate::domain::time::Timestamp;
use crate::store::ports::{Commit, MerchantStore};
use crate::store::StoreError;

contracts!(
    a_merchant_reads_back_once_committed,
    pages_list_every_merchant_once,
    an_id_collision_fails_the_whole_unit,
    changes_apply_to_existing_merchants_only,
    freeze_and_unfreeze_are_compare_and_set,
);

async fn a_merchant_reads_back_once_committed<S: MerchantStore + Commit>(store: &S) {
    let merchant = new_merchant("Acme");
    let mut work = crate::store::unit_of_work::UnitOfWork::new();
    store.insert_merchant(&mut work, &merchant);
    assert!(
        store.get_merchant(&merchant.id).await.unwrap().is_none(),
        "staged is not written"
    );
    store.commit(work).await.unwrap();
    let read = store.get_merchant(&merchant.id).await.unwrap().unwrap();
    assert_eq!(read.id, merchant.id);
    assert_eq!(read.name, merchant.name);
    assert_eq!(read.created_at, merchant.created_at);
    assert_eq!(read.connector, "sandbox");
    assert!(read.element_origins.is_empty());
    assert!(read.frozen.is_none());
    let missing = MerchantId::generate().unwrap();
    assert!(store.get_merchant(&missing).await.unwrap().is_none());
}

async fn pages_list_every_merchant_once<S: MerchantStore + Commit>(store: &S) {
    let mut ids = BTreeSet::new();
    for name in ["One", "Two", "Three", "Four", "Five"] {
        ids.insert(stored_merchant(store, name).await.id.to_string());
    }
    let mut seen = Vec::new();
    let mut after: Option<MerchantId> = None;
    loop {
        let page = store.list_merchants(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.iter().map(|m| m.id.to_string()));
    }
    assert_eq!(seen.len(), ids.len(), "{seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), ids);
    assert!(store.list_merchants(None, 0).await.unwrap().is_empty());
}

async fn an_id_collision_fails_the_whole_unit<S: MerchantStore + Commit>(store: &S) {
    let existing = stored_merchant(store, "Existing").await;
    let fresh = new_merchant("Fresh");
    let clash = crate::domain::merchant::Merchant {
        name: MerchantName::parse("Clash").unwrap(),
        ..existing.clone()
    };
    let result = commit(store, |work| {
        store.insert_merchant(work, &fresh);
        store.insert_merchant(work, &clash);
    })
    .await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    assert!(store.get_merchant(&fresh.id).await.unwrap().is_none(), "all or nothing");
    let kept = store.get_merchant(&existing.id).await.unwrap().unwrap();
    assert_eq!(kept.name.as_str(), "Existing");
}

async fn changes_apply_to_existing_merchants_only<S: MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Before").await;
    let origins = vec![ElementOrigin::parse("https://shop.example").unwrap()];
    commit(store, |work| {
        store.rename_merchant(work, &merchant.id, &MerchantName::parse("After").unwrap());
        store.set_element_origins(work, &merchant.id, &origins);
    })
    .await
    .unwrap();
    let read = store.get_merchant(&merchant.id).await.unwrap().unwrap();
    assert_eq!(read.name.as_str(), "After");
    assert_eq!(read.element_origins, origins);

    let missing = MerchantId::generate().unwrap();
    let renamed = commit(store, |work| {
        store.rename_merchant(work, &merchant.id, &MerchantName::parse("Lost").unwrap());
        store.rename_merchant(work, &missing, &MerchantName::parse("Nobody").unwrap());
    })
    .await;
    assert!(matches!(renamed, Err(StoreError::Conflict)), "{renamed:?}");
    let origins_set = commit(store, |work| store.set_element_origins(work, &missing, &origins)).await;
    assert!(matches!(origins_set, Err(StoreError::Conflict)), "{origins_set:?}");
    let read = store.get_merchant(&merchant.id).await.unwrap().unwrap();
    assert_eq!(read.name.as_str(), "After", "the failed unit renamed nothing");
}

async fn freeze_and_unfreeze_are_compare_and_set<S: MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Frosty").await;
    let freeze = Freeze {
        at: Timestamp::from_millis(1_700_000_001_000),
        reason: FreezeReason::parse("chargebacks").unwrap(),
    };
    commit(store, |work| store.freeze_merchant(work, &merchant.id, &freeze))
        .await
        .unwrap();
    let read = store.get_merchant(&merchant.id).await.unwrap().unwrap();
    assert_eq!(read.frozen.as_ref(), Some(&freeze));
    let again = commit(store, |work| store.freeze_merchant(work, &merchant.id, &freeze)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    commit(store, |work| store.unfreeze_merchant(work, &merchant.id))
        .await
        .unwrap();
    assert!(store
        .get_merchant(&merchant.id)
        .await
        .unwrap()
        .unwrap()
        .frozen
        .is_none());
    let again = commit(store, |work| store.unfreeze_merchant(work, &merchant.id)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    let missing = MerchantId::generate().unwrap();
    let frozen = commit(store, |work| store.freeze_merchant(work, &missing, &freeze)).await;
    assert!(matches!(frozen, Err(StoreError::Conflict)), "{frozen:?}");
}
