//! Payments and refunds through the store alone: every status of each is
//! written from its domain type and read back equal, on both backends; a row
//! that does not parse into a payment is an error (corrupt), never a panic.

use std::collections::BTreeMap;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::audit::{AuditEvent, Outcome};
use paywarden::domain::ids::{PaymentId, RefundId, TokenId};
use paywarden::domain::money::{Currency, MinorUnits, Money};
use paywarden::domain::payment::{
    CancellationReason, CaptureMethod, Claim, Decline, HistoryEntry, ListFilter, NewRefund, NextAction, Payment,
    PaymentDraft, PaymentStatus, Refund, RefundStatus, StoredParts,
};
use paywarden::domain::payment_fields::{CustomerEmail, Description, Metadata, RefundReason, ReturnUrl};
use paywarden::domain::tenant::Tenant;
use paywarden::domain::time::Timestamp;
use paywarden::store::group_commit::WriteJob;
use paywarden::store::write_op::WriteOp;
use paywarden::store::{self, StoreError};

use crate::both_backends;
use crate::support::TestApp;

fn units(n: i64) -> MinorUnits {
    MinorUnits::parse(n, i64::MAX).unwrap()
}

async fn write(app: &TestApp, op: WriteOp) {
    let audit = AuditEvent::new("test.payment_store", Outcome::Success);
    app.store
        .group_commit()
        .run(WriteJob::new(vec![op], vec![audit]))
        .await
        .unwrap();
}

/// A payment in `status` with every optional field set that the status allows.
fn sample(tenant: &Tenant, token: &TokenId, status: PaymentStatus, at: i64) -> Payment {
    use PaymentStatus as S;
    let amount = 1999;
    let metadata = BTreeMap::from([
        ("order".to_owned(), "42".to_owned()),
        ("note".to_owned(), "é \"quoted\" \\ ✓".to_owned()),
    ]);
    let draft = PaymentDraft {
        id: PaymentId::generate_time_ordered(Timestamp::from_millis(at)).unwrap(),
        tenant: tenant.clone(),
        money: Money {
            amount: units(amount),
            currency: Currency::parse("kwd").unwrap(),
        },
        capture_method: if status == S::RequiresCapture {
            CaptureMethod::Manual
        } else {
            CaptureMethod::Automatic
        },
        payment_method: (status != S::RequiresPaymentMethod).then(|| token.clone()),
        description: Some(Description::parse("A \"description\" with é").unwrap()),
        metadata: Metadata::parse(metadata).unwrap(),
        customer_ip: Some("2001:db8::7".parse().unwrap()),
        customer_email: Some(CustomerEmail::parse("a@example.com").unwrap()),
        return_url: Some(ReturnUrl::parse("https://shop.example/back?x=1&y=2").unwrap()),
        connector: "sandbox".into(),
        idempotency_key: Some(format!("key {at}")),
    };
    let history = vec![
        HistoryEntry {
            at: Timestamp::from_millis(at),
            action: "create".into(),
            from: None,
            to: S::RequiresConfirmation,
            outcome: "succeeded".into(),
            amount: Some(units(amount)),
            reason: None,
        },
        HistoryEntry {
            at: Timestamp::from_millis(at + 1),
            action: "authorize".into(),
            from: Some(S::Processing),
            to: status,
            outcome: "declined".into(),
            amount: None,
            reason: Some("said \"no\"\n".into()),
        },
    ];
    let parts = StoredParts {
        status,
        amount_capturable: if status == S::RequiresCapture { amount } else { 0 },
        amount_received: if status == S::Succeeded { 1500 } else { 0 },
        amount_refunded: if status == S::Succeeded { 250 } else { 0 },
        processor_reference: (status != S::RequiresPaymentMethod).then(|| "sbx_ref".to_owned()),
        decline: (status == S::Failed).then(|| Decline {
            code: "card_declined".into(),
            message: "The card was declined".into(),
        }),
        next_action: (status == S::RequiresAction).then(|| NextAction {
            url: "https://pay.example/sandbox/3ds/pay_x?challenge=abc".into(),
            return_url: Some("https://shop.example/back?x=1&y=2".into()),
            expires_at: Timestamp::from_millis(at + 600_123),
        }),
        cancellation_reason: (status == S::Canceled).then_some(CancellationReason::RequestedByCustomer),
        claim: (status == S::RequiresCapture).then_some(Claim::Capture),
        version: 1,
        created_at: Timestamp::from_millis(at),
        updated_at: Timestamp::from_millis(at + 1),
        history,
    };
    Payment::restore(draft, parts).unwrap()
}

both_backends! {
    async fn every_payment_status_round_trips_through_its_row(app) {
        let m = app.merchant("Round trips").await;
        let key = app.key(&m, KeyKind::Secret, &[]).await;
        let token = TokenId::parse(&crate::payments::token(app, key.secret.expose(), "4242424242424242").await).unwrap();
        let tenant = Tenant::new(m.clone(), Mode::Test);
        let base = Timestamp::now().as_millis();
        let mut written = Vec::new();
        for (i, status) in PaymentStatus::ALL.into_iter().enumerate() {
            let payment = sample(&tenant, &token, status, base + 10 * i64::try_from(i).unwrap());
            write(app, store::payments::insert_op(&payment).unwrap()).await;
            let read = store::payments::get(&app.store, &tenant, &payment.id).await.unwrap();
            assert_eq!(read.as_ref(), Some(&payment), "{status}");
            // Another mode of the same merchant does not see it.
            let live = Tenant::new(m.clone(), Mode::Live);
            assert_eq!(store::payments::get(&app.store, &live, &payment.id).await.unwrap(), None);

            // A change (its version and time moved on) writes every mutable column.
            let mut changed = payment.clone();
            let at = changed.begin_change(Timestamp::now());
            changed.record_attempt("capture", "declined", Some("card_declined".into()), at);
            changed.claim = if changed.claim.is_some() { None } else { Some(Claim::Cancel) };
            changed.processor_reference = Some("sbx_other".into());
            write(app, store::payments::update_op(&changed).unwrap()).await;
            let read = store::payments::get(&app.store, &tenant, &payment.id).await.unwrap().unwrap();
            assert_eq!(read, changed, "{status} after a change");
            assert_ne!(read, payment);
            written.push(changed);
        }
        // Listed newest first, and by status.
        let all = store::payments::list(app.store.reader(), &tenant, &ListFilter::default(), 100).await.unwrap();
        let mut expected = written.clone();
        expected.reverse();
        assert_eq!(all, expected);
        for p in &written {
            let filter = ListFilter { status: Some(p.status()), ..ListFilter::default() };
            let found = store::payments::list(app.store.reader(), &tenant, &filter, 100).await.unwrap();
            assert_eq!(found, std::slice::from_ref(p));
        }
        // The challenge page finds only the payment with a next action.
        for p in &written {
            let found = store::payments::get_unscoped(app.store.reader(), &p.id).await.unwrap();
            assert_eq!(found.is_some(), p.status() == PaymentStatus::RequiresAction, "{}", p.status());
        }

        // Refunds of the succeeded one, in every status.
        let paid = written.iter().find(|p| p.status() == PaymentStatus::Succeeded).unwrap();
        for (i, status) in RefundStatus::ALL.into_iter().enumerate() {
            let at = Timestamp::from_millis(base + 1000 + i64::try_from(i).unwrap());
            let mut refund = Refund::new(
                NewRefund {
                    id: RefundId::generate_time_ordered(at).unwrap(),
                    tenant: tenant.clone(),
                    payment: paid.id.clone(),
                    money: Money { amount: units(5), currency: paid.money().currency },
                    reason: Some(RefundReason::RequestedByCustomer),
                    idempotency_key: Some(format!("refund {i}")),
                },
                at,
            );
            write(app, store::refunds::insert_op(&refund)).await;
            let later = Timestamp::from_millis(at.as_millis() + 7);
            match status {
                RefundStatus::Pending => {}
                RefundStatus::Succeeded => {
                    refund.succeed("sbx_refund".into(), later).unwrap();
                    write(app, store::refunds::settle_op(&refund)).await;
                }
                RefundStatus::Failed => {
                    refund.fail("processing_error", later).unwrap();
                    write(app, store::refunds::settle_op(&refund)).await;
                }
            }
            assert_eq!(refund.status(), status);
            let read = store::refunds::get(app.store.reader(), &tenant, &refund.id).await.unwrap();
            assert_eq!(read.as_ref(), Some(&refund), "{}", status.as_str());
        }
    }

    async fn a_row_that_is_not_a_payment_is_corrupt_not_a_panic(app) {
        let m = app.merchant("Corrupt rows").await;
        let key = app.key(&m, KeyKind::Secret, &[]).await;
        let token = TokenId::parse(&crate::payments::token(app, key.secret.expose(), "4242424242424242").await).unwrap();
        let tenant = Tenant::new(m.clone(), Mode::Test);
        let corruptions = [
            "currency = 'XYZ'",
            "metadata = '{\"order\": 42}'",
            "customer_ip = 'not an ip'",
            "history = '[[1,\"create\",null,\"paid\",\"succeeded\",null,null]]'",
            "next_action = '{\"type\":\"redirect_to_url\"}'",
            "cancellation_reason = 'bored'",
            "failure_code = 'other_code'",
            // Well-formed, but a failed payment waits for no customer.
            "next_action = '{\"type\":\"redirect_to_url\",\"url\":\"https://x.example/?challenge=a\",\"return_url\":null,\"expires_at\":1}'",
        ];
        for (i, set) in corruptions.iter().enumerate() {
            let at = Timestamp::now().as_millis() + i64::try_from(i).unwrap();
            let payment = sample(&tenant, &token, PaymentStatus::Failed, at);
            write(app, store::payments::insert_op(&payment).unwrap()).await;
            app.sql(&format!("UPDATE payments SET {set} WHERE id = '{}'", payment.id)).await;
            let read = store::payments::get(&app.store, &tenant, &payment.id).await;
            assert!(matches!(read, Err(StoreError::Corrupt(_))), "{set}: {read:?}");
            // And through the API: an error, the process still serving.
            let r = app.get(&format!("/v1/payments/{}", payment.id), key.secret.expose()).await;
            assert_eq!(r.status(), 500, "{set}");
        }
        let r = app.get("/healthz", key.secret.expose()).await;
        assert_eq!(r.status(), 200);
    }
}
