//! The payments and refunds ports' contract.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::Mode;
use crate::domain::ids::{PaymentId, RefundId, TokenId};
use crate::domain::merchant::Merchant;
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::{
    CaptureMethod, ListFilter, NewRefund, NextAction, Payment, PaymentDraft, PaymentStatus, Refund, RefundStatus,
};
use crate::domain::payment_fields::Metadata;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::TokenRow;
use crate::store::ports::{Commit, MerchantStore, PaymentStore, RefundStore, TokenStore};
use crate::store::StoreError;

contracts!(
    a_payment_reads_back_only_in_its_tenant,
    payment_updates_are_compare_and_set_on_the_version,
    refund_reservations_stay_within_the_capture,
    payments_awaiting_a_challenge_are_found_by_id_and_expiry,
    refunds_are_written_pending_and_settled_once,
    risk_reads_back_and_held_payments_form_the_review_queue,
);

const T0: i64 = 1_700_000_000_000;

fn money(amount: i64) -> Money {
    Money {
        amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
        currency: Currency::parse("usd").unwrap(),
    }
}

fn new_payment(merchant: &Merchant, mode: Mode, at: i64, key: Option<&str>) -> Payment {
    let draft = PaymentDraft {
        id: PaymentId::generate_time_ordered(Timestamp::from_millis(at)).unwrap(),
        tenant: Tenant::new(merchant.id.clone(), mode),
        money: money(1_000),
        capture_method: CaptureMethod::Automatic,
        payment_method: None,
        description: None,
        metadata: Metadata::default(),
        customer_ip: None,
        customer_email: None,
        return_url: None,
        connector: "sandbox".to_owned(),
        idempotency_key: key.map(str::to_owned),
    };
    Payment::create(draft, Timestamp::from_millis(at)).0
}

async fn stored_payment<S: PaymentStore + Commit>(store: &S, payment: &Payment) {
    commit(store, |work| store.insert_payment(work, payment).unwrap())
        .await
        .unwrap();
}

/// A token of the payment's tenant, stored, for its payment method.
async fn stored_token<S: TokenStore + Commit>(store: &S, tenant: &Tenant) -> TokenId {
    let id = TokenId::generate().unwrap();
    let row = TokenRow {
        id: id.to_string(),
        merchant_id: tenant.merchant_str().to_owned(),
        mode: tenant.mode_str().to_owned(),
        brand: "visa".to_owned(),
        bin: "424242".to_owned(),
        last4: "4242".to_owned(),
        exp_month: 1,
        exp_year: 2031,
        fingerprint: "fp".to_owned(),
        kek_version: 1,
        wrapped_dek: Some("w".to_owned()),
        ciphertext: Some("c".to_owned()),
        created_at: T0,
        shredded_at: None,
    };
    commit(store, |work| store.insert_token(work, &row)).await.unwrap();
    id
}

/// `payment` taken to `succeeded` (its whole amount captured) in one change.
async fn succeeded<S: PaymentStore + TokenStore + Commit>(store: &S, payment: &Payment) -> Payment {
    let mut p = payment.clone();
    let at = p.begin_change(Timestamp::from_millis(T0 + 10));
    p.attach_payment_method(stored_token(store, &p.tenant).await, at)
        .unwrap();
    p.confirm(at).unwrap();
    p.authorize(at).unwrap();
    p.capture(p.money().amount, at).unwrap();
    commit(store, |work| store.update_payment(work, &p).unwrap())
        .await
        .unwrap();
    p
}

async fn a_payment_reads_back_only_in_its_tenant<S: PaymentStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Paid").await;
    let other = stored_merchant(store, "Other").await;
    let payment = new_payment(&merchant, Mode::Test, T0, Some("idem-1"));
    stored_payment(store, &payment).await;
    let tenant = payment.tenant.clone();
    let read = store.get_payment(&tenant, &payment.id).await.unwrap();
    assert_eq!(read.as_ref(), Some(&payment));
    for elsewhere in [
        Tenant::new(merchant.id.clone(), Mode::Live),
        Tenant::new(other.id.clone(), Mode::Test),
    ] {
        assert!(store.get_payment(&elsewhere, &payment.id).await.unwrap().is_none());
        assert!(store
            .get_payment_by_idempotency_key(&elsewhere, "idem-1", 0)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .list_payments(&elsewhere, &ListFilter::default(), 10)
            .await
            .unwrap()
            .is_empty());
    }
    let again = commit(store, |work| store.insert_payment(work, &payment).unwrap()).await;
    assert!(matches!(again, Err(StoreError::Duplicate)), "{again:?}");

    let newer = new_payment(&merchant, Mode::Test, T0 + 5, Some("idem-1"));
    stored_payment(store, &newer).await;
    let by_key = store
        .get_payment_by_idempotency_key(&tenant, "idem-1", 0)
        .await
        .unwrap();
    assert_eq!(by_key.map(|p| p.id), Some(newer.id.clone()), "the newest with the key");
    let since = store
        .get_payment_by_idempotency_key(&tenant, "idem-1", T0 + 6)
        .await
        .unwrap();
    assert!(since.is_none(), "none created since");
    assert!(store
        .get_payment_by_idempotency_key(&tenant, "other", 0)
        .await
        .unwrap()
        .is_none());

    let all = store.list_payments(&tenant, &ListFilter::default(), 10).await.unwrap();
    let ids: Vec<&PaymentId> = all.iter().map(|p| &p.id).collect();
    assert_eq!(ids, [&newer.id, &payment.id], "newest first");
    let filter = ListFilter {
        before: Some(newer.id.clone()),
        ..ListFilter::default()
    };
    let older = store.list_payments(&tenant, &filter, 10).await.unwrap();
    assert_eq!(older.iter().map(|p| &p.id).collect::<Vec<_>>(), [&payment.id]);
    let filter = ListFilter {
        created_gte: Some(Timestamp::from_millis(T0 + 1)),
        status: Some(PaymentStatus::RequiresPaymentMethod),
        ..ListFilter::default()
    };
    let recent = store.list_payments(&tenant, &filter, 10).await.unwrap();
    assert_eq!(recent.iter().map(|p| &p.id).collect::<Vec<_>>(), [&newer.id]);
    let filter = ListFilter {
        status: Some(PaymentStatus::Succeeded),
        ..ListFilter::default()
    };
    assert!(store.list_payments(&tenant, &filter, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .list_payments(&tenant, &ListFilter::default(), 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn payment_updates_are_compare_and_set_on_the_version<S: PaymentStore + TokenStore + MerchantStore + Commit>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Versioned").await;
    let payment = new_payment(&merchant, Mode::Live, T0, None);
    stored_payment(store, &payment).await;
    let done = succeeded(store, &payment).await;
    let read = store.get_payment(&payment.tenant, &payment.id).await.unwrap().unwrap();
    assert_eq!(read, done);
    assert_eq!((read.status(), read.version), (PaymentStatus::Succeeded, 2));
    assert_eq!(read.state().amount_received, 1_000);

    // Another change made from the same read (version 1) lost the race.
    let mut stale = payment.clone();
    let at = stale.begin_change(Timestamp::from_millis(T0 + 20));
    stale.abandon(at).unwrap();
    let lost = commit(store, |work| store.update_payment(work, &stale).unwrap()).await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");
    assert_eq!(
        store.get_payment(&payment.tenant, &payment.id).await.unwrap().unwrap(),
        done
    );

    let missing = new_payment(&merchant, Mode::Live, T0, None);
    let mut missing_change = missing.clone();
    missing_change.begin_change(Timestamp::from_millis(T0 + 1));
    let absent = commit(store, |work| store.update_payment(work, &missing_change).unwrap()).await;
    assert!(matches!(absent, Err(StoreError::Conflict)), "{absent:?}");
}

async fn refund_reservations_stay_within_the_capture<S: PaymentStore + TokenStore + MerchantStore + Commit>(store: &S) {
    let merchant = stored_merchant(store, "Refunding").await;
    let payment = new_payment(&merchant, Mode::Test, T0, None);
    stored_payment(store, &payment).await;
    let (tenant, id) = (payment.tenant.clone(), payment.id.clone());
    let early = commit(store, |work| store.reserve_refund(work, &tenant, &id, 100, T0 + 5)).await;
    assert!(
        matches!(early, Err(StoreError::Conflict)),
        "not succeeded yet: {early:?}"
    );
    let done = succeeded(store, &payment).await;

    commit(store, |work| store.reserve_refund(work, &tenant, &id, 600, T0 + 30))
        .await
        .unwrap();
    let read = store.get_payment(&tenant, &id).await.unwrap().unwrap();
    assert_eq!((read.state().amount_refunded, read.version), (600, done.version + 1));
    assert_eq!(read.updated_at, Timestamp::from_millis(T0 + 30));
    let beyond = commit(store, |work| store.reserve_refund(work, &tenant, &id, 401, T0 + 31)).await;
    assert!(matches!(beyond, Err(StoreError::Conflict)), "{beyond:?}");
    let other_mode = Tenant::new(merchant.id.clone(), Mode::Live);
    let across = commit(store, |work| store.reserve_refund(work, &other_mode, &id, 1, T0 + 31)).await;
    assert!(matches!(across, Err(StoreError::Conflict)), "{across:?}");
    commit(store, |work| store.reserve_refund(work, &tenant, &id, 400, T0 + 32))
        .await
        .unwrap();

    // An update made before the reservations conflicts (they moved the version on).
    let mut stale = done.clone();
    stale.begin_change(Timestamp::from_millis(T0 + 40));
    let lost = commit(store, |work| store.update_payment(work, &stale).unwrap()).await;
    assert!(matches!(lost, Err(StoreError::Conflict)), "{lost:?}");

    commit(store, |work| store.release_refund(work, &tenant, &id, 1_000, T0 + 50))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_payment(&tenant, &id)
            .await
            .unwrap()
            .unwrap()
            .state()
            .amount_refunded,
        0
    );
    // Releasing more than is refunded changes nothing and fails nothing.
    commit(store, |work| store.release_refund(work, &tenant, &id, 1, T0 + 51))
        .await
        .unwrap();
    let read = store.get_payment(&tenant, &id).await.unwrap().unwrap();
    assert_eq!((read.state().amount_refunded, read.version), (0, done.version + 3));
    // A later update of the payment keeps what is refunded.
    commit(store, |work| store.reserve_refund(work, &tenant, &id, 250, T0 + 60))
        .await
        .unwrap();
    let mut change = store.get_payment(&tenant, &id).await.unwrap().unwrap();
    change.begin_change(Timestamp::from_millis(T0 + 70));
    change.record_attempt("sync", "succeeded", None, Timestamp::from_millis(T0 + 70));
    commit(store, |work| store.update_payment(work, &change).unwrap())
        .await
        .unwrap();
    let read = store.get_payment(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(read.state().amount_refunded, 250);
    assert_eq!(read.history().len(), change.history().len());
}

async fn payments_awaiting_a_challenge_are_found_by_id_and_expiry<
    S: PaymentStore + TokenStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Challenged").await;
    let plain = new_payment(&merchant, Mode::Test, T0, None);
    stored_payment(store, &plain).await;
    assert!(store.get_payment_with_next_action(&plain.id).await.unwrap().is_none());

    let payment = new_payment(&merchant, Mode::Test, T0 + 1, None);
    stored_payment(store, &payment).await;
    let mut p = payment.clone();
    let at = p.begin_change(Timestamp::from_millis(T0 + 10));
    p.attach_payment_method(stored_token(store, &p.tenant).await, at)
        .unwrap();
    p.confirm(at).unwrap();
    let expires = T0 + 600_000;
    let action = NextAction {
        url: format!("https://pay.example/sandbox/3ds/{}?challenge=s3cr3t", p.id),
        return_url: None,
        expires_at: Timestamp::from_millis(expires),
    };
    p.require_action(action.clone(), at).unwrap();
    commit(store, |work| store.update_payment(work, &p).unwrap())
        .await
        .unwrap();

    let found = store.get_payment_with_next_action(&p.id).await.unwrap().unwrap();
    assert_eq!(found.next_action(), Some(&action));
    assert_eq!(found.status(), PaymentStatus::RequiresAction);
    assert!(store.expired_actions(expires, 10).await.unwrap().is_empty());
    let expired = store.expired_actions(expires + 1, 10).await.unwrap();
    assert_eq!(expired.iter().map(|p| &p.id).collect::<Vec<_>>(), [&p.id]);
}

async fn refunds_are_written_pending_and_settled_once<
    S: RefundStore + PaymentStore + TokenStore + MerchantStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Refunds").await;
    let payment = new_payment(&merchant, Mode::Test, T0, None);
    stored_payment(store, &payment).await;
    succeeded(store, &payment).await;
    let tenant = payment.tenant.clone();
    let new_refund = |at: i64, key: Option<&str>, payment: &PaymentId| {
        Refund::new(
            NewRefund {
                id: RefundId::generate_time_ordered(Timestamp::from_millis(at)).unwrap(),
                tenant: tenant.clone(),
                payment: payment.clone(),
                money: money(100),
                reason: None,
                idempotency_key: key.map(str::to_owned),
            },
            Timestamp::from_millis(at),
        )
    };
    let first = new_refund(T0 + 100, Some("re-1"), &payment.id);
    let second = new_refund(T0 + 200, Some("re-1"), &payment.id);
    commit(store, |work| {
        store.insert_refund(work, &first);
        store.insert_refund(work, &second);
    })
    .await
    .unwrap();
    assert_eq!(
        store.get_refund(&tenant, &first.id).await.unwrap().as_ref(),
        Some(&first)
    );
    let live = Tenant::new(merchant.id.clone(), Mode::Live);
    assert!(store.get_refund(&live, &first.id).await.unwrap().is_none());
    assert!(store.list_refunds(&live, None, None, 10).await.unwrap().is_empty());
    let by_key = store.get_refund_by_idempotency_key(&tenant, "re-1", 0).await.unwrap();
    assert_eq!(by_key.map(|r| r.id), Some(second.id.clone()));
    assert!(store
        .get_refund_by_idempotency_key(&tenant, "re-1", T0 + 201)
        .await
        .unwrap()
        .is_none());
    let listed = store.list_refunds(&tenant, Some(&payment.id), None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&second.id, &first.id]
    );
    let older = store.list_refunds(&tenant, None, Some(&second.id), 10).await.unwrap();
    assert_eq!(older.iter().map(|r| &r.id).collect::<Vec<_>>(), [&first.id]);
    let elsewhere = PaymentId::generate().unwrap();
    assert!(store
        .list_refunds(&tenant, Some(&elsewhere), None, 10)
        .await
        .unwrap()
        .is_empty());

    let mut settled = first.clone();
    settled
        .succeed("re_ref_1".to_owned(), Timestamp::from_millis(T0 + 300))
        .unwrap();
    commit(store, |work| store.settle_refund(work, &settled)).await.unwrap();
    let read = store.get_refund(&tenant, &first.id).await.unwrap().unwrap();
    assert_eq!(read, settled);
    assert_eq!(read.status(), RefundStatus::Succeeded);
    let mut again = first.clone();
    again.fail("declined", Timestamp::from_millis(T0 + 400)).unwrap();
    let twice = commit(store, |work| store.settle_refund(work, &again)).await;
    assert!(matches!(twice, Err(StoreError::Conflict)), "{twice:?}");

    let duplicate = commit(store, |work| store.insert_refund(work, &first)).await;
    assert!(matches!(duplicate, Err(StoreError::Duplicate)), "{duplicate:?}");
    let orphan = new_refund(T0 + 500, None, &elsewhere);
    let result = commit(store, |work| store.insert_refund(work, &orphan)).await;
    assert!(matches!(result, Err(StoreError::Constraint(_))), "{result:?}");
}

/// An authorized payment (`requires_capture`) of `tenant` with `decision`'s risk.
async fn assessed<S: PaymentStore + TokenStore + Commit>(
    store: &S,
    merchant: &Merchant,
    mode: Mode,
    at: i64,
    decision: crate::domain::fraud_rules::Decision,
) -> Payment {
    let mut payment = new_payment(merchant, mode, at, None);
    let token = stored_token(store, &payment.tenant).await;
    let t = Timestamp::from_millis(at);
    payment.attach_payment_method(token, t).unwrap();
    payment.confirm(t).unwrap();
    payment.authorize(t).unwrap();
    payment.risk = Some(crate::domain::payment::Risk {
        rules_version: 1,
        score: 70,
        decision,
        rules: vec!["mid".to_owned()],
        signals: vec![crate::domain::payment::RiskSignal {
            name: "customer.email".to_owned(),
            value: Some(crate::domain::fraud_rules::Literal::String(
                "review@example.com".to_owned(),
            )),
        }],
    });
    stored_payment(store, &payment).await;
    payment
}

async fn risk_reads_back_and_held_payments_form_the_review_queue<
    S: PaymentStore + TokenStore + MerchantStore + Commit,
>(
    store: &S,
) {
    use crate::domain::fraud_rules::Decision;
    let merchant = stored_merchant(store, "Reviews").await;
    let first = assessed(store, &merchant, Mode::Test, T0, Decision::Review).await;
    let allowed = assessed(store, &merchant, Mode::Test, T0 + 1, Decision::Allow).await;
    let second = assessed(store, &merchant, Mode::Test, T0 + 2, Decision::Review).await;
    let live = assessed(store, &merchant, Mode::Live, T0 + 3, Decision::Review).await;
    let read = store.get_payment(&first.tenant, &first.id).await.unwrap().unwrap();
    assert_eq!(read.risk, first.risk);
    let ids = |payments: Vec<Payment>| payments.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let queue = store.list_open_reviews(&first.tenant, None, 10).await.unwrap();
    assert_eq!(ids(queue), [second.id.clone(), first.id.clone()]);
    let page = store
        .list_open_reviews(&first.tenant, Some(&second.id), 10)
        .await
        .unwrap();
    assert_eq!(ids(page), vec![first.id.clone()]);
    assert_eq!(
        ids(store.list_open_reviews(&live.tenant, None, 10).await.unwrap()),
        vec![live.id.clone()]
    );
    assert!(!allowed.risk.as_ref().unwrap().held_for_review());
    // Captured, it leaves the queue (and keeps its risk).
    let mut done = read;
    let at = done.begin_change(Timestamp::from_millis(T0 + 10));
    done.capture(MinorUnits::parse(1_000, i64::MAX).unwrap(), at).unwrap();
    commit(store, |work| store.update_payment(work, &done).unwrap())
        .await
        .unwrap();
    assert_eq!(
        ids(store.list_open_reviews(&first.tenant, None, 10).await.unwrap()),
        vec![second.id.clone()]
    );
    let after = store.get_payment(&first.tenant, &first.id).await.unwrap().unwrap();
    assert_eq!(after.risk, first.risk);
}
