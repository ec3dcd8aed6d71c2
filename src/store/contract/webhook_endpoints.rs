//! The webhook endpoints port's contract.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{commit, contracts, new_merchant, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::WebhookEndpointId;
use crate::domain::merchant::Merchant;
use crate::domain::tenant::Tenant;
use crate::store::ports::{Commit, MerchantStore, WebhookEndpointStore};
use crate::store::webhook_endpoints::{EndpointRow, EndpointUpdate, Rotation, SealedColumns};
use crate::store::StoreError;

contracts!(
    endpoints_are_found_only_in_their_tenant,
    an_id_collision_or_a_missing_merchant_is_refused,
    update_and_delete_need_the_tenants_live_endpoint,
    a_secret_rotation_is_compare_and_set,
    disabling_needs_an_enabled_endpoint,
    kek_rewrap_skips_changed_rows_and_counts_versions,
    deliveries_and_attempts_of_an_endpoint_without_any,
);

/// An enabled endpoint of `merchant` in `mode` with its secret under KEK 1.
fn new_endpoint(merchant: &Merchant, mode: Mode) -> EndpointRow {
    EndpointRow::for_tests(merchant.id.as_str(), mode)
}

async fn stored_endpoint<S: WebhookEndpointStore + Commit>(store: &S, merchant: &Merchant, mode: Mode) -> EndpointRow {
    let row = new_endpoint(merchant, mode);
    commit(store, |work| store.insert_endpoint(work, &row)).await.unwrap();
    row
}

fn id_of(row: &EndpointRow) -> WebhookEndpointId {
    WebhookEndpointId::from_trusted(row.id.clone())
}

fn tenant(merchant: &Merchant, mode: Mode) -> Tenant {
    Tenant::new(merchant.id.clone(), mode)
}

async fn endpoints_are_found_only_in_their_tenant<S: WebhookEndpointStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Hooked").await;
    let other = stored_merchant(store, "Other").await;
    let mine = stored_endpoint(store, &merchant, Mode::Test).await;
    let live = stored_endpoint(store, &merchant, Mode::Live).await;
    stored_endpoint(store, &other, Mode::Test).await;

    let read = store
        .get_endpoint(&tenant(&merchant, Mode::Test), &id_of(&mine))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (read.url.as_str(), read.events.as_str(), read.status.as_str()),
        ("https://hooks.example/in", r#"["*"]"#, "enabled")
    );
    assert_eq!(read.secret_ciphertext, mine.secret_ciphertext);
    assert_eq!((read.kek_version, read.created_at), (Some(1), mine.created_at));
    for (who, mode) in [(&merchant, Mode::Live), (&other, Mode::Test)] {
        assert!(store
            .get_endpoint(&tenant(who, mode), &id_of(&mine))
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(
        store.get_endpoint_any(&mine.id).await.unwrap().unwrap().merchant_id,
        merchant.id.as_str()
    );
    assert!(store.get_endpoint_any("we_missing").await.unwrap().is_none());

    let listed = store
        .list_endpoints(&tenant(&merchant, Mode::Test), None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [mine.id.as_str()]
    );
    let listed = store
        .list_endpoints(&tenant(&merchant, Mode::Live), None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [live.id.as_str()]
    );
    let second = stored_endpoint(store, &merchant, Mode::Test).await;
    let first_page = store
        .list_endpoints(&tenant(&merchant, Mode::Test), None, 1)
        .await
        .unwrap();
    let after = id_of(&first_page[0]);
    let rest = store
        .list_endpoints(&tenant(&merchant, Mode::Test), Some(&after), 10)
        .await
        .unwrap();
    let mut all: Vec<String> = first_page.iter().chain(&rest).map(|r| r.id.clone()).collect();
    all.sort();
    let mut expected = vec![mine.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(all, expected);
}

async fn an_id_collision_or_a_missing_merchant_is_refused<S: WebhookEndpointStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Twice").await;
    let row = stored_endpoint(store, &merchant, Mode::Test).await;
    let result = commit(store, |work| store.insert_endpoint(work, &row)).await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    let orphan = new_endpoint(&new_merchant("Ghost"), Mode::Test);
    let result = commit(store, |work| store.insert_endpoint(work, &orphan)).await;
    assert!(matches!(result, Err(StoreError::Constraint(_))), "{result:?}");
    assert!(store.get_endpoint_any(&orphan.id).await.unwrap().is_none());
}

async fn update_and_delete_need_the_tenants_live_endpoint<S: WebhookEndpointStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Changing").await;
    let row = stored_endpoint(store, &merchant, Mode::Test).await;
    let id = id_of(&row);
    let mine = tenant(&merchant, Mode::Test);
    let change = EndpointUpdate {
        url: "https://hooks.example/moved",
        events: r#"["payment.succeeded"]"#,
        status: "disabled",
        disabled_at: Some(1_700_000_100_000),
        now: 1_700_000_100_000,
    };
    let elsewhere = commit(store, |work| {
        store.update_endpoint(work, &tenant(&merchant, Mode::Live), &id, &change)
    })
    .await;
    assert!(matches!(elsewhere, Err(StoreError::Conflict)), "{elsewhere:?}");
    commit(store, |work| store.update_endpoint(work, &mine, &id, &change))
        .await
        .unwrap();
    let read = store.get_endpoint(&mine, &id).await.unwrap().unwrap();
    assert_eq!(read.url, "https://hooks.example/moved");
    assert_eq!(read.events, r#"["payment.succeeded"]"#);
    assert_eq!(
        (read.status.as_str(), read.disabled_at),
        ("disabled", Some(1_700_000_100_000))
    );
    assert_eq!(read.updated_at, 1_700_000_100_000);

    let elsewhere = commit(store, |work| {
        store.delete_endpoint(work, &tenant(&merchant, Mode::Live), &id, 1_700_000_200_000)
    })
    .await;
    assert!(matches!(elsewhere, Err(StoreError::Conflict)), "{elsewhere:?}");
    commit(store, |work| store.delete_endpoint(work, &mine, &id, 1_700_000_200_000))
        .await
        .unwrap();
    assert!(
        store.get_endpoint(&mine, &id).await.unwrap().is_none(),
        "a deleted endpoint is gone"
    );
    assert!(store.list_endpoints(&mine, None, 10).await.unwrap().is_empty());
    let gone = store.get_endpoint_any(&row.id).await.unwrap().unwrap();
    assert_eq!(gone.status, "deleted");
    assert!(gone.kek_version.is_none() && gone.secret_wrapped_dek.is_none() && gone.secret_ciphertext.is_none());
    for result in [
        commit(store, |work| store.delete_endpoint(work, &mine, &id, 1_700_000_300_000)).await,
        commit(store, |work| store.update_endpoint(work, &mine, &id, &change)).await,
    ] {
        assert!(matches!(result, Err(StoreError::Conflict)), "{result:?}");
    }
}

async fn a_secret_rotation_is_compare_and_set<S: WebhookEndpointStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Rotating").await;
    let row = stored_endpoint(store, &merchant, Mode::Live).await;
    let (id, mine) = (id_of(&row), tenant(&merchant, Mode::Live));
    let current = row.secret_ciphertext.clone().unwrap();
    let new = SealedColumns {
        kek_version: 2,
        wrapped_dek: "wrapped-2".to_owned(),
        ciphertext: "cipher-new".to_owned(),
    };
    let previous = SealedColumns {
        kek_version: 1,
        wrapped_dek: "wrapped-1".to_owned(),
        ciphertext: current.clone(),
    };
    let rotation = Rotation {
        expected_ciphertext: &current,
        new: &new,
        previous: &previous,
        previous_expires_at: 1_700_086_400_000,
        now: 1_700_000_000_500,
    };
    let elsewhere = commit(store, |work| {
        store.rotate_endpoint_secret(work, &tenant(&merchant, Mode::Test), &id, &rotation)
    })
    .await;
    assert!(matches!(elsewhere, Err(StoreError::Conflict)), "{elsewhere:?}");
    commit(store, |work| store.rotate_endpoint_secret(work, &mine, &id, &rotation))
        .await
        .unwrap();
    let read = store.get_endpoint(&mine, &id).await.unwrap().unwrap();
    assert_eq!(read.secret_ciphertext.as_deref(), Some("cipher-new"));
    assert_eq!(
        (read.kek_version, read.secret_wrapped_dek.as_deref()),
        (Some(2), Some("wrapped-2"))
    );
    assert_eq!(read.previous_ciphertext.as_deref(), Some(current.as_str()));
    assert_eq!(read.previous_kek_version, Some(1));
    assert_eq!(read.previous_expires_at, Some(1_700_086_400_000));
    // A second rotation that read the same secret lost the race.
    let stale = commit(store, |work| store.rotate_endpoint_secret(work, &mine, &id, &rotation)).await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
}

async fn disabling_needs_an_enabled_endpoint<S: WebhookEndpointStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Failing").await;
    let row = stored_endpoint(store, &merchant, Mode::Test).await;
    commit(store, |work| store.disable_endpoint(work, &row.id, 1_700_000_000_900))
        .await
        .unwrap();
    let read = store.get_endpoint_any(&row.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status.as_str(), read.disabled_at),
        ("disabled", Some(1_700_000_000_900))
    );
    for id in [row.id.as_str(), "we_missing"] {
        let again = commit(store, |work| store.disable_endpoint(work, id, 1_700_000_001_000)).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    }
}

async fn kek_rewrap_skips_changed_rows_and_counts_versions<S: WebhookEndpointStore + MerchantStore + Commit>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Wrapped").await;
    let a = stored_endpoint(store, &merchant, Mode::Test).await;
    let b = stored_endpoint(store, &merchant, Mode::Live).await;
    let gone = stored_endpoint(store, &merchant, Mode::Test).await;
    commit(store, |work| {
        store.delete_endpoint(work, &tenant(&merchant, Mode::Test), &id_of(&gone), 1)
    })
    .await
    .unwrap();
    assert_eq!(store.endpoint_secrets_by_kek_version().await.unwrap(), [(1, 2)]);
    let mut due: Vec<String> = store
        .endpoints_not_at_kek_version(2, "", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    due.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(due, expected, "deleted endpoints have nothing to re-wrap");
    assert!(store.endpoints_not_at_kek_version(1, "", 10).await.unwrap().is_empty());

    let stale = Arc::new(AtomicBool::new(true));
    commit(store, |work| {
        store.rewrap_endpoint_secrets(work, &a.id, "cipher-stale", (2, "wrapped-2"), None, Arc::clone(&stale))
    })
    .await
    .unwrap();
    assert!(!stale.load(Ordering::Relaxed), "a row that changed is skipped");
    let done = Arc::new(AtomicBool::new(false));
    let expected_cipher = a.secret_ciphertext.clone().unwrap();
    commit(store, |work| {
        store.rewrap_endpoint_secrets(work, &a.id, &expected_cipher, (2, "wrapped-2"), None, Arc::clone(&done))
    })
    .await
    .unwrap();
    assert!(done.load(Ordering::Relaxed));
    let read = store.get_endpoint_any(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (read.kek_version, read.secret_wrapped_dek.as_deref()),
        (Some(2), Some("wrapped-2"))
    );
    assert_eq!(read.secret_ciphertext, a.secret_ciphertext, "the ciphertext stays");
    assert_eq!(store.endpoint_secrets_by_kek_version().await.unwrap(), [(1, 1), (2, 1)]);
    let due = store.endpoints_not_at_kek_version(2, "", 10).await.unwrap();
    assert_eq!(due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [b.id.as_str()]);
}

async fn deliveries_and_attempts_of_an_endpoint_without_any<S: WebhookEndpointStore + MerchantStore + Commit>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Quiet").await;
    let row = stored_endpoint(store, &merchant, Mode::Test).await;
    commit(store, |work| {
        store.fail_pending_deliveries(work, &row.id, "endpoint_disabled", 5)
    })
    .await
    .unwrap();
    let mine = tenant(&merchant, Mode::Test);
    assert!(store
        .list_attempts(&mine, &id_of(&row), None, 10)
        .await
        .unwrap()
        .is_empty());
    let other = tenant(&merchant, Mode::Live);
    assert!(store
        .list_attempts(&other, &id_of(&row), None, 10)
        .await
        .unwrap()
        .is_empty());
}
