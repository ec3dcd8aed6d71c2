//! The payments service against the in-memory double of the storage ports,
//! with the sandbox connector.

use super::change::Change;
use super::test_support::{Fixture, APPROVED};
use super::Confirmation;
use crate::domain::ids::PaymentId;
use crate::domain::money::MinorUnits;
use crate::domain::payment::{CaptureMethod, PaymentStatus};
use crate::services::ServiceError;
use crate::store::ports::{AuditStore, EventStore, PaymentStore};

fn units(amount: i64) -> MinorUnits {
    MinorUnits::parse(amount, i64::MAX).unwrap()
}

/// The event types stored for `payment`, oldest first.
async fn events_of(f: &Fixture, payment: &PaymentId) -> Vec<String> {
    let mut events: Vec<String> = f
        .store
        .list_events(&f.tenant, None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.object_id == payment.as_str())
        .map(|e| e.event_type)
        .collect();
    events.reverse();
    events
}

async fn audit_actions(f: &Fixture) -> Vec<String> {
    f.store
        .audit_page(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.action)
        .collect()
}

#[tokio::test]
async fn a_payment_created_then_confirmed_through_the_sandbox_succeeds() {
    let f = Fixture::new().await;
    let card = f.card(&f.tenant, APPROVED).await;
    let created = f
        .payments
        .create(
            &f.actor,
            f.caller(&f.tenant),
            Fixture::new_payment(1_500, CaptureMethod::Automatic, Some(card), false),
        )
        .await
        .unwrap();
    assert_eq!(created.payment.status(), PaymentStatus::RequiresConfirmation);
    let id = created.payment.id.clone();

    let confirmed = f
        .payments
        .confirm(&f.actor, f.caller(&f.tenant), &id, Confirmation::default())
        .await
        .unwrap();
    assert_eq!(confirmed.payment.status(), PaymentStatus::Succeeded);
    assert!(confirmed.snapshot.is_some(), "the events' snapshot comes back");

    let stored = f.store.get_payment(&f.tenant, &id).await.unwrap().unwrap();
    assert_eq!(stored.status(), PaymentStatus::Succeeded);
    assert_eq!(stored.state().amount_received, 1_500);
    assert!(stored.processor_reference.is_some());
    assert_eq!(stored.version, confirmed.payment.version);
    assert_eq!(
        f.payments.get(&f.tenant, &id).await.unwrap().payment.status(),
        PaymentStatus::Succeeded
    );
    let listed = f.payments.list(&f.tenant, &Default::default(), 10).await.unwrap();
    assert_eq!(listed.iter().map(|p| &p.id).collect::<Vec<_>>(), [&id]);

    let events = events_of(&f, &id).await;
    assert_eq!(events.first().map(String::as_str), Some("payment.created"));
    assert_eq!(events.last().map(String::as_str), Some("payment.succeeded"));
    let actions = audit_actions(&f).await;
    assert!(
        actions.ends_with(&["payment.created".to_owned(), "payment.confirmed".to_owned()]),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_manual_capture_takes_part_of_the_authorization_once() {
    let f = Fixture::new().await;
    let card = f.card(&f.tenant, APPROVED).await;
    let authorized = f
        .payments
        .create(
            &f.actor,
            f.caller(&f.tenant),
            Fixture::new_payment(1_000, CaptureMethod::Manual, Some(card), true),
        )
        .await
        .unwrap()
        .payment;
    assert_eq!(authorized.status(), PaymentStatus::RequiresCapture);
    assert_eq!(authorized.state().amount_capturable, 1_000);

    let too_much = f
        .payments
        .capture(&f.actor, f.caller(&f.tenant), &authorized.id, Some(units(1_001)))
        .await;
    assert!(
        matches!(
            too_much,
            Err(ServiceError::ExceedsBalance {
                code: "amount_exceeds_capturable",
                ..
            })
        ),
        "{too_much:?}"
    );

    let captured = f
        .payments
        .capture(&f.actor, f.caller(&f.tenant), &authorized.id, Some(units(600)))
        .await
        .unwrap()
        .payment;
    assert_eq!(captured.status(), PaymentStatus::Succeeded);
    assert_eq!(captured.state().amount_received, 600);
    let stored = f.store.get_payment(&f.tenant, &authorized.id).await.unwrap().unwrap();
    assert_eq!(stored.state().amount_received, 600);

    let again = f
        .payments
        .capture(&f.actor, f.caller(&f.tenant), &authorized.id, None)
        .await;
    assert!(
        matches!(
            again,
            Err(ServiceError::Conflict {
                code: "payment_unexpected_state",
                ..
            })
        ),
        "{again:?}"
    );
    assert!(events_of(&f, &authorized.id)
        .await
        .contains(&"payment.captured".to_owned()));
}

/// A change made from a payment read before another change of it was
/// committed is refused whole: the payment stays as the other change left
/// it, and no event or audit entry of the stale change is written.
#[tokio::test]
async fn a_change_of_a_payment_changed_meanwhile_is_a_conflict() {
    let f = Fixture::new().await;
    let card = f.card(&f.tenant, APPROVED).await;
    let authorized = f
        .payments
        .create(
            &f.actor,
            f.caller(&f.tenant),
            Fixture::new_payment(1_000, CaptureMethod::Manual, Some(card), true),
        )
        .await
        .unwrap()
        .payment;
    let read_before = f.store.get_payment(&f.tenant, &authorized.id).await.unwrap().unwrap();

    let canceled = f
        .payments
        .cancel(&f.actor, &f.tenant, &authorized.id, None)
        .await
        .unwrap()
        .payment;
    assert_eq!(canceled.status(), PaymentStatus::Canceled);
    let events = events_of(&f, &authorized.id).await;
    let audit = audit_actions(&f).await;

    let mut stale = Change::of(read_before, "payment.captured");
    stale.apply(|p, at| p.capture(units(1_000), at)).unwrap();
    let result = stale.commit(&f.store, f.payments.snapshots(), &f.actor).await;
    assert!(
        matches!(
            result,
            Err(ServiceError::Conflict {
                code: "payment_conflict",
                ..
            })
        ),
        "{:?}",
        result.map(|r| r.payment.status())
    );

    let stored = f.store.get_payment(&f.tenant, &authorized.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), PaymentStatus::Canceled);
    assert_eq!(stored.version, canceled.version);
    assert_eq!(events_of(&f, &authorized.id).await, events);
    assert_eq!(audit_actions(&f).await, audit);
}

#[tokio::test]
async fn a_payment_of_another_mode_or_merchant_is_not_found() {
    let f = Fixture::new().await;
    let card = f.card(&f.tenant, APPROVED).await;
    let authorized = f
        .payments
        .create(
            &f.actor,
            f.caller(&f.tenant),
            Fixture::new_payment(1_000, CaptureMethod::Manual, Some(card), true),
        )
        .await
        .unwrap()
        .payment;
    let not_found = |r: &Result<_, ServiceError>| {
        matches!(
            r,
            Err(ServiceError::NotFound {
                resource: "payment",
                ..
            })
        )
    };
    let mut tenants = f.other_tenants().await.to_vec();
    tenants.push(Fixture::unknown_tenant());
    for tenant in &tenants {
        let got = f.payments.get(tenant, &authorized.id).await.map(drop);
        assert!(not_found(&got), "{got:?}");
        let confirmed = f
            .payments
            .confirm(&f.actor, f.caller(tenant), &authorized.id, Confirmation::default())
            .await
            .map(drop);
        assert!(not_found(&confirmed), "{confirmed:?}");
        let captured = f
            .payments
            .capture(&f.actor, f.caller(tenant), &authorized.id, None)
            .await
            .map(drop);
        assert!(not_found(&captured), "{captured:?}");
        let canceled = f
            .payments
            .cancel(&f.actor, tenant, &authorized.id, None)
            .await
            .map(drop);
        assert!(not_found(&canceled), "{canceled:?}");
        assert!(f
            .payments
            .list(tenant, &Default::default(), 10)
            .await
            .unwrap()
            .is_empty());
    }
    let stored = f.store.get_payment(&f.tenant, &authorized.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), PaymentStatus::RequiresCapture);
    assert_eq!(stored.version, authorized.version);
}

#[tokio::test]
async fn a_card_token_of_another_mode_or_merchant_is_a_reference_not_found() {
    let f = Fixture::new().await;
    for owner in f.other_tenants().await {
        let card = f.card(&owner, APPROVED).await;
        let created = f
            .payments
            .create(
                &f.actor,
                f.caller(&f.tenant),
                Fixture::new_payment(1_000, CaptureMethod::Automatic, Some(card.clone()), true),
            )
            .await
            .map(drop);
        assert!(
            matches!(
                created,
                Err(ServiceError::ReferenceNotFound {
                    resource: "payment_method",
                    ..
                })
            ),
            "{created:?}"
        );

        // Attached at confirm, to a payment created without a card.
        let waiting = f
            .payments
            .create(
                &f.actor,
                f.caller(&f.tenant),
                Fixture::new_payment(1_000, CaptureMethod::Automatic, None, false),
            )
            .await
            .unwrap()
            .payment;
        let confirmed = f
            .payments
            .confirm(
                &f.actor,
                f.caller(&f.tenant),
                &waiting.id,
                Confirmation {
                    payment_method: Some(card),
                    return_url: None,
                    sca: Default::default(),
                },
            )
            .await
            .map(drop);
        assert!(
            matches!(
                confirmed,
                Err(ServiceError::ReferenceNotFound {
                    resource: "payment_method",
                    ..
                })
            ),
            "{confirmed:?}"
        );
        let stored = f.store.get_payment(&f.tenant, &waiting.id).await.unwrap().unwrap();
        assert_eq!(stored.status(), PaymentStatus::RequiresPaymentMethod);
        assert!(stored.payment_method.is_none());
    }
    let stored = f.payments.list(&f.tenant, &Default::default(), 10).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|p| p.status() == PaymentStatus::RequiresPaymentMethod),
        "no payment was written with another tenant's card"
    );
}
