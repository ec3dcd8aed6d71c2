//! Fault injection between the Stripe connector and the fake Stripe: 5xx,
//! 429 with and without `Retry-After`, malformed and truncated JSON, a slow
//! body past the timeout, an oversized body, connection resets, an
//! authorization whose answer never comes. Each ends in a defined outcome; where Stripe may have acted
//! the outcome is `Timeout` (unknown) and `sync` tells what happened; a
//! retried capture or refund is replayed by Stripe, never done twice.

use std::time::Duration;

use paywarden::connectors::{AuthorizeOutcome, CaptureOutcome, Connector, ConnectorError, RefundOutcome, RemoteStatus};
use paywarden::domain::ids::RefundId;

use super::fake_stripe::{Damage, FakeStripe, Fault};
use super::{authorize, eur, stripe_at};

async fn authorized(fake: &FakeStripe) -> (paywarden::connectors::stripe::Stripe, String) {
    let stripe = stripe_at(&fake.base);
    let (_, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    let AuthorizeOutcome::Approved { reference } = outcome.unwrap().outcome else {
        panic!("approved")
    };
    (stripe, reference)
}

#[tokio::test]
async fn a_5xx_on_confirm_is_unknown_and_sync_finds_nothing_authorized() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    fake.inject("/confirm", Fault::server_error(500));
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout);
    assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::NotFound));
    assert_eq!(fake.applied().confirms, 0);
    // A 5xx on a read has no effect to wonder about: the processor is down.
    fake.inject("/v1/payment_intents/pi_", Fault::server_error(503));
    assert!(matches!(
        stripe.sync(&payment).await,
        Err(ConnectorError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_429_is_retried_after_a_short_retry_after_and_not_after_a_long_or_missing_one() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    fake.inject("/confirm", Fault::rate_limited(Some(1)));
    let (_, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    assert!(matches!(outcome.unwrap().outcome, AuthorizeOutcome::Approved { .. }));
    let confirms = fake.calls_to("/confirm");
    assert_eq!(confirms.len(), 2, "refused once, then done");
    assert_eq!(
        confirms[0].idempotency_key, confirms[1].idempotency_key,
        "the retry is the same call"
    );
    assert_eq!(fake.applied().confirms, 1);

    for fault in [Fault::rate_limited(Some(60)), Fault::rate_limited(None)] {
        fake.inject("/confirm", fault);
        let (_, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
        assert!(matches!(outcome, Err(ConnectorError::Unavailable(_))), "{outcome:?}");
    }
    assert_eq!(
        fake.calls_to("/confirm").len(),
        4,
        "no retry without a short Retry-After"
    );
    assert_eq!(fake.applied().confirms, 1);
}

#[tokio::test]
async fn malformed_or_truncated_json_after_the_authorization_is_unknown_and_sync_reports_it() {
    for damage in [Damage::Malformed, Damage::Truncated] {
        let fake = FakeStripe::start().await;
        let stripe = stripe_at(&fake.base);
        fake.inject("/confirm", Fault::Processed(damage.clone()));
        let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
        assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout, "{damage:?}");
        let Ok(RemoteStatus::Authorized { reference }) = stripe.sync(&payment).await else {
            panic!("{damage:?}: the authorization is found")
        };
        assert_eq!(fake.status(&reference), Some("requires_capture"));
    }
}

#[tokio::test]
async fn an_answer_over_the_size_limit_is_not_read_and_after_a_post_is_unknown() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    fake.inject("/confirm", Fault::Processed(Damage::Oversized));
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout);
    fake.inject("/v1/payment_intents/pi_", Fault::Processed(Damage::Oversized));
    assert!(matches!(
        stripe.sync(&payment).await,
        Err(ConnectorError::Unavailable(_))
    ));
    assert!(matches!(
        stripe.sync(&payment).await,
        Ok(RemoteStatus::Authorized { .. })
    ));
}

#[tokio::test]
async fn an_authorization_whose_answer_comes_too_late_or_too_slowly_is_found_by_sync() {
    for damage in [
        Damage::Delay(Duration::from_secs(4)),
        Damage::SlowBody(Duration::from_secs(4)),
    ] {
        let fake = FakeStripe::start().await;
        let stripe = stripe_at(&fake.base);
        fake.inject("/confirm", Fault::Processed(damage.clone()));
        let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
        assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout, "{damage:?}");
        let Ok(RemoteStatus::Authorized { reference }) = stripe.sync(&payment).await else {
            panic!("{damage:?}: the authorization is found")
        };
        // And it is captured once, as any other.
        assert_eq!(
            stripe.capture(&reference, eur(2000)).await,
            Ok(CaptureOutcome::Captured)
        );
        assert_eq!((fake.applied().confirms, fake.applied().captures), (1, 1));
    }
}

#[tokio::test]
async fn a_sync_after_a_restart_finds_the_intent_by_its_metadata() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    fake.inject("/confirm", Fault::Processed(Damage::Reset));
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout);
    // A new connector remembers nothing: it searches.
    let restarted = stripe_at(&fake.base);
    assert!(matches!(
        restarted.sync(&payment).await,
        Ok(RemoteStatus::Authorized { .. })
    ));
    let search = fake.calls_to("/v1/payment_intents/search");
    assert_eq!(search.len(), 1);
    assert!(search[0].query.contains("paywarden_payment"));
    assert!(search[0].idempotency_key.is_none(), "a read carries no key");
}

#[tokio::test]
async fn a_reset_before_anything_was_done_leaves_nothing_behind() {
    let fake = FakeStripe::start().await;
    let stripe = stripe_at(&fake.base);
    fake.inject("/v1/payment_methods", Fault::ResetUnprocessed);
    let (payment, outcome) = authorize(&stripe, "4242424242424242", 2000).await;
    // The connector cannot know the request was not acted on: unknown.
    assert_eq!(outcome.unwrap_err(), ConnectorError::Timeout);
    assert_eq!(stripe.sync(&payment).await, Ok(RemoteStatus::NotFound));
    assert_eq!(fake.applied().payment_methods, 0);
}

#[tokio::test]
async fn a_capture_or_refund_whose_answer_is_lost_is_done_once_when_retried() {
    let fake = FakeStripe::start().await;
    let (stripe, intent) = authorized(&fake).await;
    for damage in [Damage::Reset, Damage::Truncated] {
        fake.inject("/capture", Fault::Processed(damage));
    }
    assert_eq!(stripe.capture(&intent, eur(2000)).await, Err(ConnectorError::Timeout));
    // The retry is replayed (as is the next one, whose answer is damaged too).
    assert_eq!(stripe.capture(&intent, eur(2000)).await, Err(ConnectorError::Timeout));
    assert_eq!(stripe.capture(&intent, eur(2000)).await, Ok(CaptureOutcome::Captured));
    let captures = fake.calls_to("/capture");
    assert_eq!(captures.len(), 3);
    assert!(!captures[0].replayed && captures[1].replayed && captures[2].replayed);
    assert_eq!(fake.applied().captures, 1, "captured once");

    let refund = RefundId::generate().unwrap();
    fake.inject("/v1/refunds", Fault::Processed(Damage::Reset));
    assert_eq!(
        stripe.refund(&intent, &refund, eur(800)).await,
        Err(ConnectorError::Timeout)
    );
    assert!(matches!(
        stripe.refund(&intent, &refund, eur(800)).await,
        Ok(RefundOutcome::Succeeded { .. })
    ));
    assert_eq!(fake.applied().refunds, 1, "refunded once");
}

#[tokio::test]
async fn a_void_refused_with_a_5xx_is_unknown_and_a_retry_voids_once() {
    let fake = FakeStripe::start().await;
    let (stripe, intent) = authorized(&fake).await;
    fake.inject("/cancel", Fault::server_error(502));
    assert_eq!(stripe.void(&intent).await, Err(ConnectorError::Timeout));
    assert_eq!(stripe.void(&intent).await, Ok(()));
    assert_eq!(fake.applied().cancels, 1);
}
