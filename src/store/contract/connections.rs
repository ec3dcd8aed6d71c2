//! The processor connections port's contract.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{commit, contracts, new_merchant, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::ConnectionId;
use crate::domain::merchant::Merchant;
use crate::domain::tenant::Tenant;
use crate::store::ports::{Commit, ConnectionStore, MerchantStore};
use crate::store::processor_connections::ConnectionRow;
use crate::store::StoreError;

contracts!(
    connections_are_found_only_in_their_tenant,
    an_id_collision_or_a_missing_merchant_is_refused,
    disabling_needs_the_tenants_active_connection,
    routes_are_set_per_mode_and_moved_off_a_connection,
    kek_rewrap_is_conditional_and_counts_versions,
);

fn new_connection(merchant: &Merchant, mode: Mode) -> ConnectionRow {
    let id = ConnectionId::generate().unwrap();
    ConnectionRow {
        merchant_id: merchant.id.to_string(),
        mode: mode.as_str().to_owned(),
        kind: "stripe".to_owned(),
        status: "active".to_owned(),
        secret_key_last4: "4242".to_owned(),
        has_webhook_secret: 0,
        kek_version: 1,
        wrapped_dek: format!("wrapped-{id}"),
        ciphertext: format!("cipher-{id}"),
        created_at: 1_700_000_000_000,
        disabled_at: None,
        fallback: None,
        id: id.to_string(),
    }
}

async fn stored<S: ConnectionStore + Commit>(store: &S, merchant: &Merchant, mode: Mode) -> ConnectionRow {
    let row = new_connection(merchant, mode);
    commit(store, |work| store.insert_connection(work, &row)).await.unwrap();
    row
}

fn id_of(row: &ConnectionRow) -> ConnectionId {
    ConnectionId::from_trusted(row.id.clone())
}

fn tenant(merchant: &Merchant, mode: Mode) -> Tenant {
    Tenant::new(merchant.id.clone(), mode)
}

async fn connections_are_found_only_in_their_tenant<S: ConnectionStore + MerchantStore + Commit>(store: &S) {
    let a = stored_merchant(store, "A").await;
    let b = stored_merchant(store, "B").await;
    let test = stored(store, &a, Mode::Test).await;
    let live = stored(store, &a, Mode::Live).await;
    let other = stored(store, &b, Mode::Test).await;
    let a_test = tenant(&a, Mode::Test);
    assert_eq!(
        store.get_connection(&a_test, &id_of(&test)).await.unwrap(),
        Some(test.clone())
    );
    assert_eq!(
        store.get_connection(&a_test, &id_of(&live)).await.unwrap(),
        None,
        "other mode"
    );
    assert_eq!(
        store.get_connection(&a_test, &id_of(&other)).await.unwrap(),
        None,
        "other merchant"
    );
    let listed = store.list_connections(&a_test, None, 10).await.unwrap();
    assert_eq!(listed, vec![test.clone()]);
    assert!(store
        .list_connections(&a_test, Some(&id_of(&test)), 10)
        .await
        .unwrap()
        .is_empty());
    let all = store.list_merchant_connections(&a.id, "", 10).await.unwrap();
    assert_eq!(all.len(), 2);
}

async fn an_id_collision_or_a_missing_merchant_is_refused<S: ConnectionStore + MerchantStore + Commit>(store: &S) {
    let a = stored_merchant(store, "A").await;
    let row = stored(store, &a, Mode::Test).await;
    let clash = commit(store, |work| store.insert_connection(work, &row)).await;
    assert!(matches!(clash, Err(StoreError::Duplicate)), "{clash:?}");
    let orphan = new_connection(&new_merchant("Nobody"), Mode::Test);
    let missing = commit(store, |work| store.insert_connection(work, &orphan)).await;
    assert!(matches!(missing, Err(StoreError::Constraint(_))), "{missing:?}");
}

async fn disabling_needs_the_tenants_active_connection<S: ConnectionStore + MerchantStore + Commit>(store: &S) {
    let a = stored_merchant(store, "A").await;
    let row = stored(store, &a, Mode::Test).await;
    let id = id_of(&row);
    let wrong = commit(store, |work| {
        store.disable_connection(work, &tenant(&a, Mode::Live), &id, 5)
    })
    .await;
    assert!(matches!(wrong, Err(StoreError::Conflict)), "{wrong:?}");
    commit(store, |work| {
        store.disable_connection(work, &tenant(&a, Mode::Test), &id, 5)
    })
    .await
    .unwrap();
    let read = store
        .get_connection(&tenant(&a, Mode::Test), &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.status.as_str(), read.disabled_at), ("disabled", Some(5)));
    assert_eq!(read.ciphertext, row.ciphertext, "disabling keeps the credentials");
    let again = commit(store, |work| {
        store.disable_connection(work, &tenant(&a, Mode::Test), &id, 6)
    })
    .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
}

async fn routes_are_set_per_mode_and_moved_off_a_connection<S: ConnectionStore + MerchantStore + Commit>(store: &S) {
    let a = stored_merchant(store, "A").await;
    let test = stored(store, &a, Mode::Test).await;
    let live = stored(store, &a, Mode::Live).await;
    let (t, l) = (tenant(&a, Mode::Test), tenant(&a, Mode::Live));
    commit(store, |work| {
        store.set_merchant_route(work, &t, Some(&test.id));
        store.set_merchant_route(work, &l, Some(&live.id));
    })
    .await
    .unwrap();
    let m = store.get_merchant(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (m.connector.as_str(), m.live_connector.as_deref()),
        (test.id.as_str(), Some(live.id.as_str()))
    );
    // Moving off another connection changes nothing.
    commit(store, |work| {
        store.unroute_merchant(work, &t, &id_of(&live));
        store.unroute_merchant(work, &l, &id_of(&test));
    })
    .await
    .unwrap();
    let m = store.get_merchant(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (m.connector.as_str(), m.live_connector.as_deref()),
        (test.id.as_str(), Some(live.id.as_str()))
    );
    commit(store, |work| {
        store.unroute_merchant(work, &t, &id_of(&test));
        store.unroute_merchant(work, &l, &id_of(&live));
    })
    .await
    .unwrap();
    let m = store.get_merchant(&a.id).await.unwrap().unwrap();
    assert_eq!((m.connector.as_str(), m.live_connector), ("sandbox", None));
    // No route in test mode is the sandbox.
    commit(store, |work| store.set_merchant_route(work, &t, None))
        .await
        .unwrap();
    assert_eq!(store.get_merchant(&a.id).await.unwrap().unwrap().connector, "sandbox");
    let nobody = tenant(&new_merchant("Nobody"), Mode::Live);
    let missing = commit(store, |work| store.set_merchant_route(work, &nobody, Some(&live.id))).await;
    assert!(matches!(missing, Err(StoreError::Conflict)), "{missing:?}");
}

async fn kek_rewrap_is_conditional_and_counts_versions<S: ConnectionStore + MerchantStore + Commit>(store: &S) {
    let a = stored_merchant(store, "A").await;
    let one = stored(store, &a, Mode::Test).await;
    let two = stored(store, &a, Mode::Live).await;
    assert_eq!(
        store.connection_credentials_by_kek_version().await.unwrap(),
        vec![(1, 2)]
    );
    let page = store.connections_not_at_kek_version(2, "", 10).await.unwrap();
    assert_eq!(page.len(), 2);
    let (done, stale) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(true)));
    commit(store, |work| {
        store.rewrap_connection(work, &one.id, &one.wrapped_dek, 2, "new-1", done.clone());
        store.rewrap_connection(work, &two.id, "not-what-is-stored", 2, "new-2", stale.clone());
    })
    .await
    .unwrap();
    assert!(done.load(Ordering::Relaxed));
    assert!(!stale.load(Ordering::Relaxed), "a changed row is skipped");
    assert_eq!(
        store.connection_credentials_by_kek_version().await.unwrap(),
        vec![(1, 1), (2, 1)]
    );
    let left = store.connections_not_at_kek_version(2, "", 10).await.unwrap();
    assert_eq!(left, vec![two]);
    let read = store
        .get_connection(&tenant(&a, Mode::Test), &id_of(&one))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((read.kek_version, read.wrapped_dek.as_str()), (2, "new-1"));
}
