//! The webhook deliveries port's contract: due deliveries fairly across
//! endpoints, leases taken by one claimer only, and attempts and outcomes
//! written only under the lease they were claimed with.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::{EventId, WebhookAttemptId};
use crate::domain::merchant::Merchant;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::ports::{Commit, EventStore, MerchantStore, WebhookDeliveryStore, WebhookEndpointStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryKey, DeliveryRow, Finish};
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::StoreError;

contracts!(
    due_deliveries_come_fairly_and_never_past_an_endpoints_leases,
    a_delivery_is_claimed_by_one_token_until_its_lease_ends,
    outcomes_and_attempts_are_written_only_under_the_lease,
    a_lease_given_back_makes_the_delivery_due_at_once,
);

const T0: i64 = 1_700_000_000_000;

/// An enabled endpoint of `merchant` (test mode) subscribed to everything.
async fn endpoint<S: WebhookEndpointStore + Commit>(store: &S, merchant: &Merchant) -> String {
    let row = EndpointRow::for_tests(merchant.id.as_str(), Mode::Test);
    commit(store, |work| store.insert_endpoint(work, &row)).await.unwrap();
    row.id
}

/// An event of `merchant` (test mode) created at `at`, fanned out to its
/// endpoints: one pending delivery each, due at `at`.
async fn event<S: EventStore + Commit>(store: &S, merchant: &Merchant, at: i64) -> String {
    let id = EventId::generate_time_ordered(Timestamp::from_millis(at))
        .unwrap()
        .to_string();
    let row = EventRow {
        id: id.clone(),
        merchant_id: merchant.id.to_string(),
        mode: Mode::Test.as_str().to_owned(),
        event_type: "payment.created".to_owned(),
        object_id: "pay_contract".to_owned(),
        data: "{}".to_owned(),
        created_at: at,
    };
    commit(store, |work| store.insert_events(work, std::slice::from_ref(&row)))
        .await
        .unwrap();
    id
}

fn key<'a>(endpoint_id: &'a str, event_id: &'a str) -> DeliveryKey<'a> {
    DeliveryKey { endpoint_id, event_id }
}

/// Claims `keys` under `token` at `now` for a minute; how many were taken.
async fn claim<S: WebhookDeliveryStore + Commit>(store: &S, keys: &[DeliveryKey<'_>], token: &str, now: i64) -> u64 {
    let mut work = UnitOfWork::new();
    let taken = store.claim_deliveries(&mut work, keys, token, now, now + 60_000);
    store.commit(work).await.unwrap();
    taken.total()
}

fn pairs(rows: &[DeliveryRow]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|d| (d.endpoint_id.as_str(), d.event_id.as_str()))
        .collect()
}

fn attempt(d: &DeliveryKey<'_>, merchant: &Merchant, at: i64) -> AttemptRow {
    AttemptRow {
        id: WebhookAttemptId::generate_time_ordered(Timestamp::from_millis(at))
            .unwrap()
            .to_string(),
        endpoint_id: d.endpoint_id.to_owned(),
        event_id: d.event_id.to_owned(),
        merchant_id: merchant.id.to_string(),
        attempt: 1,
        attempted_at: at,
        status_code: Some(500),
        error: Some("unexpected_status".to_owned()),
        duration_ms: 3,
        outcome: "failed".to_owned(),
    }
}

const RETRY: AttemptOutcome<'static> = AttemptOutcome {
    status: "pending",
    next_attempt_at: T0 + 10_000,
    status_code: Some(500),
    error: Some("unexpected_status"),
    now: T0 + 100,
};

async fn due_deliveries_come_fairly_and_never_past_an_endpoints_leases<
    S: WebhookDeliveryStore + WebhookEndpointStore + EventStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Fanned").await;
    let (a, b) = (endpoint(store, &merchant).await, endpoint(store, &merchant).await);
    let events = [
        event(store, &merchant, T0).await,
        event(store, &merchant, T0 + 1).await,
        event(store, &merchant, T0 + 2).await,
    ];
    // Nothing is due before its time.
    assert!(store.due_deliveries(T0 - 1, 10, 100).await.unwrap().is_empty());
    let now = T0 + 5;
    let due = store.due_deliveries(now, 10, 100).await.unwrap();
    assert_eq!(due.len(), 6);
    // Every endpoint's first before any endpoint's second.
    let firsts: Vec<&str> = due.iter().take(2).map(|d| d.event_id.as_str()).collect();
    assert_eq!(firsts, [events[0].as_str(), events[0].as_str()]);
    let first = due.first().unwrap();
    assert_eq!(
        (first.status.as_str(), first.attempts, first.next_attempt_at),
        ("pending", 0, T0)
    );
    assert_eq!(first.merchant_id, merchant.id.as_str());
    assert_eq!(store.due_deliveries(now, 10, 3).await.unwrap().len(), 3, "the limit");
    // At most two per endpoint, counting the leased ones.
    let two = store.due_deliveries(now, 2, 100).await.unwrap();
    assert_eq!(two.len(), 4);
    assert_eq!(claim(store, &[key(&a, &events[0])], "tok_a", now).await, 1);
    let due = store.due_deliveries(now, 2, 100).await.unwrap();
    let mut got = pairs(&due);
    got.sort_unstable();
    let mut want = vec![
        (a.as_str(), events[1].as_str()),
        (b.as_str(), events[0].as_str()),
        (b.as_str(), events[1].as_str()),
    ];
    want.sort_unstable();
    assert_eq!(got, want, "the leased one takes a's first slot");
    // A disabled endpoint's deliveries are not due.
    commit(store, |work| store.disable_endpoint(work, &b, now))
        .await
        .unwrap();
    let due = store.due_deliveries(now, 10, 100).await.unwrap();
    assert!(due.iter().all(|d| d.endpoint_id == a), "{:?}", pairs(&due));
    assert_eq!(due.len(), 2);
}

async fn a_delivery_is_claimed_by_one_token_until_its_lease_ends<
    S: WebhookDeliveryStore + WebhookEndpointStore + EventStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Claimed").await;
    let a = endpoint(store, &merchant).await;
    let (e1, e2) = (event(store, &merchant, T0).await, event(store, &merchant, T0).await);
    let keys = [key(&a, &e1), key(&a, &e2), key(&a, "evt_none")];
    assert_eq!(claim(store, &keys[..1], "tok_one", T0).await, 1);
    // The second claimer gets only what the first did not take.
    assert_eq!(claim(store, &keys, "tok_two", T0 + 1).await, 1);
    assert_eq!(
        store.claimed_deliveries(&keys, "tok_one").await.unwrap(),
        [(a.clone(), e1.clone())]
    );
    assert_eq!(
        store.claimed_deliveries(&keys, "tok_two").await.unwrap(),
        [(a.clone(), e2.clone())]
    );
    assert!(store.claimed_deliveries(&keys, "tok_three").await.unwrap().is_empty());
    // Not due before its time; taken again once the lease ended.
    let e3 = event(store, &merchant, T0 + 500_000).await;
    assert_eq!(claim(store, &[key(&a, &e3)], "tok_early", T0 + 1).await, 0);
    assert_eq!(
        claim(store, &keys[..1], "tok_three", T0 + 60_000).await,
        0,
        "lease ends after"
    );
    assert_eq!(claim(store, &keys[..1], "tok_three", T0 + 60_001).await, 1);
    assert_eq!(
        store.claimed_deliveries(&keys[..1], "tok_three").await.unwrap().len(),
        1
    );
    assert!(store
        .claimed_deliveries(&keys[..1], "tok_one")
        .await
        .unwrap()
        .is_empty());
}

async fn outcomes_and_attempts_are_written_only_under_the_lease<
    S: WebhookDeliveryStore + WebhookEndpointStore + EventStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Recorded").await;
    let a = endpoint(store, &merchant).await;
    let (e1, e2) = (event(store, &merchant, T0).await, event(store, &merchant, T0).await);
    let (k1, k2) = (key(&a, &e1), key(&a, &e2));
    assert_eq!(claim(store, &[k1, k2], "tok_mine", T0).await, 2);
    let (r1, r2) = (attempt(&k1, &merchant, T0 + 10), attempt(&k2, &merchant, T0 + 11));

    // Under another token nothing is written, and that is no error.
    let mut work = UnitOfWork::new();
    store.insert_attempts_if_leased(&mut work, &[(&r1, "tok_other"), (&r2, "tok_other")]);
    let finishes = [k1, k2].map(|k| Finish {
        key: k,
        token: "tok_other",
        outcome: RETRY,
    });
    let written = store.finish_deliveries(&mut work, &finishes);
    store.commit(work).await.unwrap();
    assert_eq!(written.total(), 0);
    assert!(store.recorded_attempts(&[&r1.id, &r2.id]).await.unwrap().is_empty());
    let failed = commit(store, |work| {
        store.finish_leased_delivery(work, k1, "tok_other", &RETRY);
    })
    .await;
    assert!(matches!(failed, Err(StoreError::Conflict)), "{failed:?}");

    // Under the lease: one attempt written with its outcome, the lease given back.
    let mut work = UnitOfWork::new();
    store.insert_attempts_if_leased(&mut work, &[(&r1, "tok_mine")]);
    let finish = [Finish {
        key: k1,
        token: "tok_mine",
        outcome: RETRY,
    }];
    let written = store.finish_deliveries(&mut work, &finish);
    store.commit(work).await.unwrap();
    assert_eq!(written.total(), 1);
    assert_eq!(
        store.recorded_attempts(&[&r1.id, &r2.id, "wha_none"]).await.unwrap(),
        std::slice::from_ref(&r1.id)
    );
    let rows = store.deliveries_of_event(&e1).await.unwrap();
    let d = rows.first().unwrap();
    assert_eq!(
        (d.status.as_str(), d.attempts, d.next_attempt_at),
        ("pending", 1, T0 + 10_000)
    );
    assert_eq!(
        (d.last_status_code, d.last_error.as_deref(), d.updated_at),
        (Some(500), Some("unexpected_status"), T0 + 100)
    );
    assert!(
        store.claimed_deliveries(&[k1], "tok_mine").await.unwrap().is_empty(),
        "released"
    );
    // Written once: the lease is gone, so again is nothing.
    let again = commit(store, |work| store.finish_leased_delivery(work, k1, "tok_mine", &RETRY)).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    // The final outcome, under the lease, with its attempt.
    let done = AttemptOutcome {
        status: "succeeded",
        next_attempt_at: T0 + 200,
        status_code: Some(204),
        error: None,
        now: T0 + 200,
    };
    commit(store, |work| {
        store.insert_attempts_if_leased(work, &[(&r2, "tok_mine")]);
        store.finish_leased_delivery(work, k2, "tok_mine", &done);
    })
    .await
    .unwrap();
    let rows = store.deliveries_of_event(&e2).await.unwrap();
    let d = rows.first().unwrap();
    assert_eq!(
        (
            d.status.as_str(),
            d.attempts,
            d.last_status_code,
            d.last_error.as_deref()
        ),
        ("succeeded", 1, Some(204), None)
    );
    assert_eq!(
        store.recorded_attempts(&[&r2.id]).await.unwrap(),
        std::slice::from_ref(&r2.id)
    );
    // A delivery that is no longer pending is never due or claimed again.
    assert!(store
        .due_deliveries(T0 + 1_000_000, 10, 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.event_id != e2));
    assert_eq!(claim(store, &[k2], "tok_late", T0 + 1_000_000).await, 0);
}

async fn a_lease_given_back_makes_the_delivery_due_at_once<
    S: WebhookDeliveryStore + WebhookEndpointStore + EventStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Released").await;
    let a = endpoint(store, &merchant).await;
    let e1 = event(store, &merchant, T0).await;
    let k1 = key(&a, &e1);
    assert_eq!(claim(store, &[k1], "tok_mine", T0).await, 1);
    assert!(store.due_deliveries(T0 + 1, 10, 10).await.unwrap().is_empty());
    // Another token's release leaves the lease alone.
    commit(store, |work| store.release_delivery(work, k1, "tok_other"))
        .await
        .unwrap();
    assert!(store.due_deliveries(T0 + 1, 10, 10).await.unwrap().is_empty());
    commit(store, |work| store.release_delivery(work, k1, "tok_mine"))
        .await
        .unwrap();
    let due = store.due_deliveries(T0 + 1, 10, 10).await.unwrap();
    assert_eq!(pairs(&due), [(a.as_str(), e1.as_str())]);
    assert_eq!(due.first().map(|d| d.attempts), Some(0), "nothing recorded");
    // Giving the endpoint's deliveries up takes their leases too.
    assert_eq!(claim(store, &[k1], "tok_again", T0 + 2).await, 1);
    commit(store, |work| {
        store.fail_pending_deliveries(work, &a, "endpoint_disabled", T0 + 3)
    })
    .await
    .unwrap();
    assert!(store.claimed_deliveries(&[k1], "tok_again").await.unwrap().is_empty());
    let rows = store.deliveries_of_event(&e1).await.unwrap();
    assert_eq!(rows.first().map(|d| d.status.as_str()), Some("failed"));
}
