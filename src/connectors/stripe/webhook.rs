//! Stripe's inbound webhooks: the `Stripe-Signature` header verified, then
//! `payment_intent.*` and `charge.refunded` events mapped onto
//! [`InboundEvent`].
//!
//! Stripe signs exactly as the gateway signs its own webhooks (`t=…,v1=…`,
//! HMAC-SHA-256 keyed with the whole `whsec_…` secret over `"{t}.{body}"`,
//! several `v1` while a secret rolls, `v0` ignored), so verification is
//! [`crate::webhooks::signature`]'s, with this connector's tolerance.
//!
//! Invariants: nothing of an event is read before its signature verified
//! over the body exactly as received; an event of the other mode (live vs
//! test) is refused; errors name no part of the body. Deliveries repeat:
//! the caller deduplicates on [`InboundEvent::processor_event_id`].

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::mapping::remote_status;
use super::wire::{Charge, Event, PaymentIntent};
use crate::connectors::{ConnectorError, InboundEvent, InboundHeaders, RemoteStatus};
use crate::domain::api_key::Mode;
use crate::webhooks::signature::verify_signature_within;

/// The header Stripe signs with.
pub const HEADER: &str = "Stripe-Signature";
/// The official libraries' default tolerance (stripe-python, -node, -go).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// What a webhook is checked against.
pub struct WebhookCheck<'a> {
    pub secret: Option<&'a SecretString>,
    pub tolerance: Duration,
    pub mode: Mode,
    /// Unix seconds.
    pub now: i64,
}

/// Verifies and parses one delivery.
pub fn parse(check: &WebhookCheck<'_>, headers: &InboundHeaders, body: &[u8]) -> Result<InboundEvent, ConnectorError> {
    let secret = check.secret.ok_or(ConnectorError::InvalidSignature)?;
    let header = headers
        .get(HEADER)
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(ConnectorError::InvalidSignature)?;
    verify_signature_within(
        body,
        header,
        secret.expose_secret(),
        check.now,
        check.tolerance.as_secs(),
    )
    .map_err(|_| ConnectorError::InvalidSignature)?;
    let event: Event = serde_json::from_slice(body)
        .map_err(|_| ConnectorError::Rejected("the Stripe event could not be read".into()))?;
    if event.livemode != (check.mode == Mode::Live) {
        return Err(ConnectorError::Rejected(format!(
            "a Stripe event of the other mode reached a {}-mode connector",
            check.mode.as_str()
        )));
    }
    let unreadable = || ConnectorError::Rejected("the Stripe event's object could not be read".into());
    let (reference, status) = if event.kind == "charge.refunded" {
        let charge: Charge = serde_json::from_value(event.data.object).map_err(|_| unreadable())?;
        let intent = charge.payment_intent.ok_or_else(unreadable)?;
        let reference = intent.id().to_owned();
        let status = RemoteStatus::Refunded {
            reference: reference.clone(),
            amount: charge.amount_refunded,
        };
        (reference, status)
    } else if event.kind.starts_with("payment_intent.") {
        let intent: PaymentIntent = serde_json::from_value(event.data.object).map_err(|_| unreadable())?;
        let status = remote_status(&intent)
            .ok_or_else(|| ConnectorError::Rejected("the PaymentIntent is in no settled state".into()))?;
        (intent.id, status)
    } else {
        return Err(ConnectorError::Rejected(
            "a Stripe event type this connector does not handle".into(),
        ));
    };
    Ok(InboundEvent {
        processor_event_id: event.id,
        reference,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::signature::{header_value, sign};

    const NOW: i64 = 1_796_613_934;
    const SECRET: &str = "whsec_test_secret";

    fn body(kind: &str, object: &str, livemode: bool) -> Vec<u8> {
        format!(
            r#"{{"id":"evt_1","object":"event","api_version":"2023-08-16","created":{NOW},"livemode":{livemode},"type":"{kind}","data":{{"object":{object}}}}}"#
        )
        .into_bytes()
    }

    fn intent(status: &str) -> String {
        format!(r#"{{"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":1500,"status":"{status}"}}"#)
    }

    fn check(secret: &SecretString) -> WebhookCheck<'_> {
        WebhookCheck {
            secret: Some(secret),
            tolerance: DEFAULT_TOLERANCE,
            mode: Mode::Test,
            now: NOW,
        }
    }

    fn signed(body: &[u8], at: i64, secrets: &[&str]) -> InboundHeaders {
        InboundHeaders::new([(HEADER, header_value(secrets.iter().copied(), at, body))])
    }

    #[test]
    fn a_valid_signature_yields_the_event() {
        let secret = SecretString::from(SECRET);
        let body = body("payment_intent.succeeded", &intent("succeeded"), false);
        let event = parse(&check(&secret), &signed(&body, NOW - 10, &[SECRET]), &body).unwrap();
        assert_eq!(event.processor_event_id, "evt_1");
        assert_eq!(event.reference, "pi_1");
        assert_eq!(
            event.status,
            RemoteStatus::Captured {
                reference: "pi_1".into(),
                amount: 1500
            }
        );
    }

    #[test]
    fn wrong_secret_stale_or_future_timestamp_and_tampered_body_are_refused() {
        let secret = SecretString::from(SECRET);
        let body = body("payment_intent.canceled", &intent("canceled"), false);
        let refused = |headers: &InboundHeaders, body: &[u8]| parse(&check(&secret), headers, body).unwrap_err();
        assert_eq!(
            refused(&signed(&body, NOW, &["whsec_other"]), &body),
            ConnectorError::InvalidSignature
        );
        assert_eq!(
            refused(&signed(&body, NOW - 301, &[SECRET]), &body),
            ConnectorError::InvalidSignature
        );
        assert_eq!(
            refused(&signed(&body, NOW + 301, &[SECRET]), &body),
            ConnectorError::InvalidSignature
        );
        let mut tampered = body.clone();
        let at = tampered.iter().position(|&b| b == b'2').unwrap();
        tampered[at] = b'9';
        assert_eq!(
            refused(&signed(&body, NOW, &[SECRET]), &tampered),
            ConnectorError::InvalidSignature
        );
        assert_eq!(
            refused(&InboundHeaders::default(), &body),
            ConnectorError::InvalidSignature
        );
        // No secret configured: nothing verifies.
        let none = WebhookCheck {
            secret: None,
            ..check(&secret)
        };
        assert_eq!(
            parse(&none, &signed(&body, NOW, &[SECRET]), &body).unwrap_err(),
            ConnectorError::InvalidSignature
        );
        // Within a longer configured tolerance, the older delivery passes.
        let lenient = WebhookCheck {
            tolerance: Duration::from_secs(600),
            ..check(&secret)
        };
        assert!(parse(&lenient, &signed(&body, NOW - 500, &[SECRET]), &body).is_ok());
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_and_v0_is_ignored() {
        let secret = SecretString::from(SECRET);
        let body = body(
            "payment_intent.amount_capturable_updated",
            &intent("requires_capture"),
            false,
        );
        let header = format!(
            "t={NOW},v1={},v1={},v0={}",
            sign("whsec_old", NOW, &body),
            sign(SECRET, NOW, &body),
            "0".repeat(64)
        );
        let event = parse(
            &check(&secret),
            &InboundHeaders::new([("stripe-signature", header)]),
            &body,
        )
        .unwrap();
        assert_eq!(
            event.status,
            RemoteStatus::Authorized {
                reference: "pi_1".into()
            }
        );
    }

    #[test]
    fn refunds_map_and_events_of_the_other_mode_or_unknown_types_are_refused() {
        let secret = SecretString::from(SECRET);
        let charge = r#"{"id":"ch_1","object":"charge","payment_intent":"pi_1","amount":2000,"amount_refunded":700,"refunded":false}"#;
        let body = body("charge.refunded", charge, false);
        let event = parse(&check(&secret), &signed(&body, NOW, &[SECRET]), &body).unwrap();
        assert_eq!(
            event.status,
            RemoteStatus::Refunded {
                reference: "pi_1".into(),
                amount: 700
            }
        );
        let live = self::body("payment_intent.succeeded", &intent("succeeded"), true);
        assert!(matches!(
            parse(&check(&secret), &signed(&live, NOW, &[SECRET]), &live),
            Err(ConnectorError::Rejected(_))
        ));
        let other = self::body("customer.created", r#"{"id":"cus_1"}"#, false);
        assert!(matches!(
            parse(&check(&secret), &signed(&other, NOW, &[SECRET]), &other),
            Err(ConnectorError::Rejected(_))
        ));
    }
}
