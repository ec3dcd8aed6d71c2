//! The events port's contract, with the outbox's fan-out into deliveries
//! (and giving them up, from the webhook endpoints port).

use super::{commit, contracts, new_merchant, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::EventId;
use crate::domain::merchant::Merchant;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::ports::{Commit, EventStore, MerchantStore, WebhookEndpointStore};
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::StoreError;

contracts!(
    events_are_found_only_in_their_tenant_newest_first,
    events_fan_out_to_subscribed_enabled_endpoints_of_their_tenant,
    an_event_id_collision_or_a_missing_merchant_is_refused,
    giving_up_an_endpoints_deliveries_fails_only_its_pending_ones,
);

fn event(merchant: &Merchant, mode: Mode, event_type: &str, at: i64) -> EventRow {
    EventRow {
        id: EventId::generate_time_ordered(Timestamp::from_millis(at))
            .unwrap()
            .to_string(),
        merchant_id: merchant.id.to_string(),
        mode: mode.as_str().to_owned(),
        event_type: event_type.to_owned(),
        object_id: "pay_contract".to_owned(),
        data: format!(r#"{{"type":"{event_type}"}}"#),
        created_at: at,
    }
}

async fn endpoint<S: WebhookEndpointStore + Commit>(
    store: &S,
    merchant: &Merchant,
    mode: Mode,
    events: &str,
    status: &str,
) -> String {
    let row = EndpointRow {
        events: events.to_owned(),
        status: status.to_owned(),
        ..EndpointRow::for_tests(merchant.id.as_str(), mode)
    };
    commit(store, |work| store.insert_endpoint(work, &row)).await.unwrap();
    row.id
}

fn ids(rows: &[EventRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

async fn events_are_found_only_in_their_tenant_newest_first<S: EventStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Eventful").await;
    let other = stored_merchant(store, "Other").await;
    let t0 = 1_700_000_000_000;
    let created = event(&merchant, Mode::Test, "payment.created", t0);
    let succeeded = EventRow {
        id: EventId::generate_time_ordered(Timestamp::from_millis(t0 + 1))
            .unwrap()
            .to_string(),
        event_type: "payment.succeeded".to_owned(),
        ..created.clone()
    };
    let captured = event(&merchant, Mode::Test, "payment.captured", t0 + 2);
    commit(store, |work| {
        store.insert_events(work, &[created.clone(), succeeded.clone()])
    })
    .await
    .unwrap();
    commit(store, |work| store.insert_events(work, std::slice::from_ref(&captured)))
        .await
        .unwrap();
    let live = event(&merchant, Mode::Live, "payment.created", t0 + 3);
    commit(store, |work| store.insert_events(work, std::slice::from_ref(&live)))
        .await
        .unwrap();

    let test = Tenant::new(merchant.id.clone(), Mode::Test);
    let read = store
        .get_event(&test, &EventId::from_trusted(succeeded.id.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.event_type, "payment.succeeded");
    assert_eq!(
        read.data, created.data,
        "an event sharing its change's snapshot reads it"
    );
    assert_eq!((read.object_id.as_str(), read.created_at), ("pay_contract", t0));
    for tenant in [
        Tenant::new(merchant.id.clone(), Mode::Live),
        Tenant::new(other.id.clone(), Mode::Test),
    ] {
        let id = EventId::from_trusted(created.id.clone());
        assert!(store.get_event(&tenant, &id).await.unwrap().is_none());
    }
    let all = store.list_events(&test, None, None, 10).await.unwrap();
    assert_eq!(
        ids(&all),
        [captured.id.as_str(), succeeded.id.as_str(), created.id.as_str()]
    );
    let before = EventId::from_trusted(captured.id.clone());
    let older = store.list_events(&test, None, Some(&before), 1).await.unwrap();
    assert_eq!(ids(&older), [succeeded.id.as_str()]);
    let typed = store
        .list_events(&test, Some("payment.created"), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&typed), [created.id.as_str()]);
    let live_tenant = Tenant::new(merchant.id.clone(), Mode::Live);
    assert_eq!(
        ids(&store.list_events(&live_tenant, None, None, 10).await.unwrap()),
        [live.id.as_str()]
    );
    let theirs = Tenant::new(other.id.clone(), Mode::Test);
    assert!(store.list_events(&theirs, None, None, 10).await.unwrap().is_empty());
}

async fn events_fan_out_to_subscribed_enabled_endpoints_of_their_tenant<
    S: EventStore + WebhookEndpointStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Fanned").await;
    let other = stored_merchant(store, "Other").await;
    let all = endpoint(store, &merchant, Mode::Test, r#"["*"]"#, "enabled").await;
    let refunds = endpoint(store, &merchant, Mode::Test, r#"["refund.succeeded"]"#, "enabled").await;
    let payments = endpoint(store, &merchant, Mode::Test, r#"["payment.succeeded"]"#, "enabled").await;
    endpoint(store, &merchant, Mode::Test, r#"["*"]"#, "disabled").await;
    endpoint(store, &merchant, Mode::Live, r#"["*"]"#, "enabled").await;
    endpoint(store, &other, Mode::Test, r#"["*"]"#, "enabled").await;

    let at = 1_700_000_000_000;
    let created = event(&merchant, Mode::Test, "payment.created", at);
    let succeeded = EventRow {
        id: EventId::generate_time_ordered(Timestamp::from_millis(at + 1))
            .unwrap()
            .to_string(),
        event_type: "payment.succeeded".to_owned(),
        ..created.clone()
    };
    commit(store, |work| {
        store.insert_events(work, &[created.clone(), succeeded.clone()])
    })
    .await
    .unwrap();
    let to = |rows: Vec<crate::store::webhook_deliveries::DeliveryRow>| {
        let mut endpoints: Vec<String> = rows.iter().map(|d| d.endpoint_id.clone()).collect();
        endpoints.sort();
        (endpoints, rows)
    };
    let (endpoints, rows) = to(store.deliveries_of_event(&created.id).await.unwrap());
    assert_eq!(endpoints, std::slice::from_ref(&all));
    let delivery = &rows[0];
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("pending", 0));
    assert_eq!((delivery.next_attempt_at, delivery.created_at), (at, at));
    assert_eq!(delivery.merchant_id, merchant.id.as_str());
    let (endpoints, _) = to(store.deliveries_of_event(&succeeded.id).await.unwrap());
    let mut expected = vec![all.clone(), payments.clone()];
    expected.sort();
    assert_eq!(endpoints, expected);
    assert!(!endpoints.contains(&refunds));
    assert!(store.deliveries_of_event("evt_missing").await.unwrap().is_empty());
    commit(store, |work| store.insert_events(work, &[])).await.unwrap();
}

async fn an_event_id_collision_or_a_missing_merchant_is_refused<S: EventStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Twice").await;
    let row = event(&merchant, Mode::Test, "payment.created", 1_700_000_000_000);
    commit(store, |work| store.insert_events(work, std::slice::from_ref(&row)))
        .await
        .unwrap();
    let result = commit(store, |work| store.insert_events(work, std::slice::from_ref(&row))).await;
    assert!(matches!(result, Err(StoreError::Duplicate)), "{result:?}");
    let orphan = event(&new_merchant("Ghost"), Mode::Test, "payment.created", 1_700_000_000_000);
    let result = commit(store, |work| store.insert_events(work, std::slice::from_ref(&orphan))).await;
    assert!(matches!(result, Err(StoreError::Constraint(_))), "{result:?}");
}

async fn giving_up_an_endpoints_deliveries_fails_only_its_pending_ones<
    S: EventStore + WebhookEndpointStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Giving up").await;
    let doomed = endpoint(store, &merchant, Mode::Test, r#"["*"]"#, "enabled").await;
    let kept = endpoint(store, &merchant, Mode::Test, r#"["*"]"#, "enabled").await;
    let row = event(&merchant, Mode::Test, "payment.created", 1_700_000_000_000);
    commit(store, |work| store.insert_events(work, std::slice::from_ref(&row)))
        .await
        .unwrap();
    commit(store, |work| {
        store.fail_pending_deliveries(work, &doomed, "endpoint_disabled", 1_700_000_000_500)
    })
    .await
    .unwrap();
    for delivery in store.deliveries_of_event(&row.id).await.unwrap() {
        if delivery.endpoint_id == doomed {
            assert_eq!(delivery.status, "failed");
            assert_eq!(delivery.last_error.as_deref(), Some("endpoint_disabled"));
            assert_eq!(delivery.updated_at, 1_700_000_000_500);
        } else {
            assert_eq!(delivery.endpoint_id, kept);
            assert_eq!(delivery.status, "pending");
        }
    }
}
