use proptest::prelude::*;

use super::*;
use crate::domain::api_key::Mode;
use crate::domain::ids::MerchantId;
use crate::domain::money::Currency;

fn units(amount: i64) -> MinorUnits {
    MinorUnits::parse(amount, i64::MAX).unwrap()
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn draft(amount: i64, capture_method: CaptureMethod, with_card: bool) -> PaymentDraft {
    PaymentDraft {
        id: PaymentId::from_trusted("pay_0Vd0SvHHnmGAbhXC8IhS4H0Q".into()),
        tenant: Tenant::new(MerchantId::from_trusted("mer_1".into()), Mode::Test),
        money: Money {
            amount: units(amount),
            currency: Currency::parse("usd").unwrap(),
        },
        capture_method,
        payment_method: with_card.then(|| TokenId::from_trusted("tok_1".into())),
        description: None,
        metadata: Metadata::default(),
        customer_ip: None,
        customer_email: None,
        return_url: None,
        connector: "sandbox".into(),
        idempotency_key: None,
    }
}

fn action(expires: i64) -> NextAction {
    NextAction {
        url: "https://pay.example/sandbox/3ds/pay_1?challenge=s3cr3t".into(),
        return_url: None,
        expires_at: at(expires),
    }
}

fn decline() -> Decline {
    Decline {
        code: "card_declined".into(),
        message: "The card was declined".into(),
    }
}

#[test]
fn creation_records_its_entry_and_announces_the_payment() {
    let (p, events) = Payment::create(draft(1000, CaptureMethod::Automatic, false), at(5));
    assert_eq!(events, [EventType::PaymentCreated]);
    assert_eq!(
        (p.status(), p.version, p.created_at),
        (PaymentStatus::RequiresPaymentMethod, 1, at(5))
    );
    assert_eq!(
        p.history(),
        [HistoryEntry {
            at: at(5),
            action: "create".into(),
            from: None,
            to: PaymentStatus::RequiresPaymentMethod,
            outcome: "succeeded".into(),
            amount: Some(units(1000)),
            reason: None,
        }]
    );
    let (p, _) = Payment::create(draft(1000, CaptureMethod::Automatic, true), at(5));
    assert_eq!(p.status(), PaymentStatus::RequiresConfirmation);
}

#[test]
fn transitions_return_the_events_they_cause() {
    let (mut p, _) = Payment::create(draft(1000, CaptureMethod::Manual, false), at(1));
    assert_eq!(
        p.attach_payment_method(TokenId::from_trusted("tok_2".into()), at(2)),
        Ok(vec![])
    );
    assert_eq!(p.payment_method.as_ref().map(TokenId::as_str), Some("tok_2"));
    assert_eq!(p.confirm(at(3)), Ok(vec![]));
    assert_eq!(
        p.require_action(action(99), at(4)),
        Ok(vec![EventType::PaymentRequiresAction])
    );
    assert_eq!(p.next_action(), Some(&action(99)));
    assert_eq!(p.authenticate(at(5)), Ok(vec![]));
    assert_eq!(p.next_action(), None, "only a payment requiring action has one");
    assert_eq!(p.authorize(at(6)), Ok(vec![EventType::PaymentAmountCapturableUpdated]));
    assert_eq!(p.state().amount_capturable, 1000);
    assert_eq!(
        p.capture(units(600), at(7)),
        Ok(vec![EventType::PaymentCaptured, EventType::PaymentSucceeded])
    );
    assert_eq!((p.state().amount_received, p.state().amount_capturable), (600, 0));
    let last = p.history().last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.from, last.to, last.amount),
        (
            "capture",
            Some(PaymentStatus::RequiresCapture),
            PaymentStatus::Succeeded,
            Some(units(600))
        )
    );
    assert_eq!(p.history().len(), 7);

    // Captured at once: authorization announces nothing, capture only success.
    let (mut p, _) = Payment::create(draft(500, CaptureMethod::Automatic, true), at(1));
    p.confirm(at(2)).unwrap();
    assert_eq!(p.authorize(at(3)), Ok(vec![]));
    assert_eq!(p.capture(units(500), at(4)), Ok(vec![EventType::PaymentSucceeded]));
}

#[test]
fn failing_and_canceling_say_why() {
    let (mut p, _) = Payment::create(draft(500, CaptureMethod::Automatic, true), at(1));
    p.confirm(at(2)).unwrap();
    assert_eq!(
        p.fail(decline(), "card_declined".into(), at(3)),
        Ok(vec![EventType::PaymentFailed])
    );
    assert_eq!(p.decline, Some(decline()));
    assert_eq!(p.history().last().unwrap().reason.as_deref(), Some("card_declined"));

    let (mut p, _) = Payment::create(draft(500, CaptureMethod::Automatic, true), at(1));
    assert_eq!(
        p.cancel(Some(CancellationReason::Duplicate), at(2)),
        Ok(vec![EventType::PaymentCanceled])
    );
    assert_eq!(p.cancellation_reason(), Some(CancellationReason::Duplicate));

    let (mut p, _) = Payment::create(draft(500, CaptureMethod::Automatic, true), at(1));
    p.confirm(at(2)).unwrap();
    p.require_action(action(10), at(3)).unwrap();
    assert_eq!(p.abandon(at(11)), Ok(vec![EventType::PaymentCanceled]));
    assert_eq!(p.cancellation_reason(), Some(CancellationReason::Abandoned));
    assert_eq!(p.next_action(), None);
    assert_eq!(p.history().last().unwrap().outcome, "expired");
}

#[test]
fn a_change_moves_the_version_and_time_on_even_within_a_millisecond() {
    let (mut p, _) = Payment::create(draft(500, CaptureMethod::Automatic, true), at(100));
    assert_eq!(p.begin_change(at(50)), at(101));
    assert_eq!((p.version, p.updated_at), (2, at(101)));
    assert_eq!(p.begin_change(at(200)), at(200));
    assert_eq!(p.version, 3);
}

#[test]
fn challenges_match_only_their_own_secret() {
    let a = action(1);
    assert!(a.challenge_matches("s3cr3t"));
    for wrong in ["", "s3cr3", "s3cr3tt", "S3CR3T"] {
        assert!(!a.challenge_matches(wrong), "{wrong}");
    }
    let no_secret = NextAction {
        url: "https://pay.example/sandbox/3ds/pay_1".into(),
        ..action(1)
    };
    assert!(!no_secret.challenge_matches(""));
    let not_a_url = NextAction {
        url: "not a url?challenge=x".into(),
        ..action(1)
    };
    assert!(!not_a_url.challenge_matches("x"));
}

#[test]
fn restoring_refuses_contradictory_parts() {
    let parts = |status, capturable, received, refunded, next_action| StoredParts {
        status,
        amount_capturable: capturable,
        amount_received: received,
        amount_refunded: refunded,
        processor_reference: None,
        decline: None,
        next_action,
        cancellation_reason: None,
        claim: None,
        version: 2,
        created_at: at(1),
        updated_at: at(2),
        history: Vec::new(),
    };
    let d = || draft(500, CaptureMethod::Manual, true);
    assert!(Payment::restore(d(), parts(PaymentStatus::Succeeded, 0, 500, 200, None)).is_some());
    assert!(Payment::restore(d(), parts(PaymentStatus::RequiresAction, 0, 0, 0, Some(action(3)))).is_some());
    for bad in [
        parts(PaymentStatus::Succeeded, 0, 501, 0, None),
        parts(PaymentStatus::Succeeded, 0, 500, 501, None),
        parts(PaymentStatus::RequiresCapture, -1, 0, 0, None),
        parts(PaymentStatus::Processing, 0, 0, 0, Some(action(3))),
    ] {
        assert!(Payment::restore(d(), bad.clone()).is_none(), "{bad:?}");
    }
}

#[derive(Debug, Clone)]
enum Transition {
    Attach,
    Confirm,
    RequireAction,
    Authenticate,
    Authorize,
    Capture(i64),
    Fail,
    Cancel,
    Abandon,
}

fn any_transition() -> impl Strategy<Value = Transition> {
    prop_oneof![
        Just(Transition::Attach),
        Just(Transition::Confirm),
        Just(Transition::RequireAction),
        Just(Transition::Authenticate),
        Just(Transition::Authorize),
        (1i64..2_000).prop_map(Transition::Capture),
        Just(Transition::Fail),
        Just(Transition::Cancel),
        Just(Transition::Abandon),
    ]
}

fn run(p: &mut Payment, t: &Transition, now: Timestamp) -> Result<Vec<EventType>, PaymentError> {
    match t {
        Transition::Attach => p.attach_payment_method(TokenId::from_trusted("tok_9".into()), now),
        Transition::Confirm => p.confirm(now),
        Transition::RequireAction => p.require_action(action(now.as_millis() + 10), now),
        Transition::Authenticate => p.authenticate(now),
        Transition::Authorize => p.authorize(now),
        Transition::Capture(amount) => p.capture(units(*amount), now),
        Transition::Fail => p.fail(decline(), "card_declined".into(), now),
        Transition::Cancel => p.cancel(None, now),
        Transition::Abandon => p.abandon(now),
    }
}

proptest! {
    /// Whatever transitions arrive: a refused one changes nothing at all; an
    /// accepted one adds exactly one history entry from the status before to
    /// the status after; a next action exists only while `requires_action`;
    /// and every event belongs to the status reached.
    #[test]
    fn refused_transitions_change_nothing(amount in 1i64..1_500, manual in any::<bool>(),
                                          transitions in proptest::collection::vec(any_transition(), 0..40)) {
        let capture = if manual { CaptureMethod::Manual } else { CaptureMethod::Automatic };
        let (mut p, _) = Payment::create(draft(amount, capture, true), at(0));
        for (i, t) in transitions.iter().enumerate() {
            let before = p.clone();
            let now = at(i64::try_from(i).unwrap() + 1);
            match run(&mut p, t, now) {
                Err(_) => prop_assert_eq!(&p, &before),
                Ok(events) => {
                    prop_assert_eq!(p.history().len(), before.history().len() + 1);
                    let entry = p.history().last().unwrap();
                    prop_assert_eq!((entry.from, entry.to, entry.at), (Some(before.status()), p.status(), now));
                    for e in events {
                        let fits = match e {
                            EventType::PaymentSucceeded | EventType::PaymentCaptured => p.status() == PaymentStatus::Succeeded,
                            EventType::PaymentFailed => p.status() == PaymentStatus::Failed,
                            EventType::PaymentCanceled => p.status() == PaymentStatus::Canceled,
                            EventType::PaymentRequiresAction => p.status() == PaymentStatus::RequiresAction,
                            EventType::PaymentAmountCapturableUpdated => p.status() == PaymentStatus::RequiresCapture,
                            _ => false,
                        };
                        prop_assert!(fits, "{:?} after {:?} in {:?}", e, t, p.status());
                    }
                }
            }
            prop_assert_eq!(p.next_action().is_some(), p.status() == PaymentStatus::RequiresAction);
        }
    }
}
