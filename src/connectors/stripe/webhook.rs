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

use super::mapping::{decline_code, remote_status};
use super::payments::PAYMENT_METADATA;
use super::wire::{identifier, Charge, Dispute, Event, PaymentIntent, Refund, RefundStatus};
use crate::connectors::{ConnectorError, InboundChange, InboundEvent, InboundHeaders, RemoteRefund};
use crate::domain::api_key::Mode;
use crate::webhooks::signature::verify_signature_within;

/// The header Stripe signs with.
pub const HEADER: &str = "Stripe-Signature";
/// The official libraries' default tolerance (stripe-python, -node, -go).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The metadata key that ties a Stripe refund to ours.
pub const REFUND_METADATA: &str = "paywarden_refund";

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
    if !is_event_id(&event.id) {
        return Err(ConnectorError::Rejected("the Stripe event's id is malformed".into()));
    }
    let kind = event_type(&event.kind);
    let change = change(&event.kind, event.data.object)?;
    Ok(InboundEvent {
        processor_event_id: event.id,
        kind,
        change,
    })
}

/// An event id as Stripe makes them (`evt_` and base62), of a bounded length.
fn is_event_id(id: &str) -> bool {
    id.len() <= 255 && id.len() > 4 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The event's type when it is an identifier (`charge.dispute.created`),
/// else `unrecognised`: nothing else of the body is kept.
fn event_type(kind: &str) -> String {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if ok { kind } else { "unrecognised" }.to_owned()
}

fn change(kind: &str, object: serde_json::Value) -> Result<InboundChange, ConnectorError> {
    let unreadable = || ConnectorError::Rejected("the Stripe event's object could not be read".into());
    Ok(match kind {
        "charge.refunded" => {
            let charge: Charge = serde_json::from_value(object).map_err(|_| unreadable())?;
            let intent = charge.payment_intent.ok_or_else(unreadable)?;
            InboundChange::RefundedTotal {
                reference: intent.id().to_owned(),
                total: charge.amount_refunded,
            }
        }
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            let refund: Refund = serde_json::from_value(object).map_err(|_| unreadable())?;
            let state = match refund.status {
                Some(RefundStatus::Succeeded) => RemoteRefund::Succeeded,
                Some(RefundStatus::Failed | RefundStatus::Canceled) => RemoteRefund::Failed,
                _ => RemoteRefund::Pending,
            };
            InboundChange::Refund {
                refund: refund.metadata.get(REFUND_METADATA).cloned(),
                processor_refund: refund.id,
                state,
            }
        }
        "charge.dispute.created" => {
            let dispute: Dispute = serde_json::from_value(object).map_err(|_| unreadable())?;
            let intent = dispute.payment_intent.ok_or_else(unreadable)?;
            InboundChange::Dispute {
                reference: intent.id().to_owned(),
                amount: dispute.amount,
                reason: identifier(dispute.reason.as_deref()).to_owned(),
            }
        }
        "payment_intent.payment_failed" => {
            let intent: PaymentIntent = serde_json::from_value(object).map_err(|_| unreadable())?;
            let error = intent.last_payment_error.as_ref();
            InboundChange::PaymentFailed {
                payment: intent.metadata.get(PAYMENT_METADATA).cloned(),
                code: decline_code(
                    error.and_then(|e| e.code.as_deref()),
                    error.and_then(|e| e.decline_code.as_deref()),
                ),
                reference: intent.id,
            }
        }
        "payment_intent.succeeded" | "payment_intent.canceled" | "payment_intent.amount_capturable_updated" => {
            let intent: PaymentIntent = serde_json::from_value(object).map_err(|_| unreadable())?;
            match remote_status(&intent) {
                Some(status) => InboundChange::Payment {
                    payment: intent.metadata.get(PAYMENT_METADATA).cloned(),
                    reference: intent.id,
                    status,
                },
                // Still deciding: the event that settles it follows.
                None => InboundChange::Ignored,
            }
        }
        _ => InboundChange::Ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::RemoteStatus;
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
        format!(
            r#"{{"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":1500,"status":"{status}","metadata":{{"paywarden_payment":"pay_1"}},"last_payment_error":{{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}}}"#
        )
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
        assert_eq!(event.kind, "payment_intent.succeeded");
        assert_eq!(
            event.change,
            InboundChange::Payment {
                payment: Some("pay_1".into()),
                reference: "pi_1".into(),
                status: RemoteStatus::Captured {
                    reference: "pi_1".into(),
                    amount: 1500
                }
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
        assert!(matches!(
            event.change,
            InboundChange::Payment {
                status: RemoteStatus::Authorized { .. },
                ..
            }
        ));
    }

    #[test]
    fn refunds_map_and_events_of_the_other_mode_or_unknown_types_are_refused() {
        let secret = SecretString::from(SECRET);
        let charge = r#"{"id":"ch_1","object":"charge","payment_intent":"pi_1","amount":2000,"amount_refunded":700,"refunded":false}"#;
        let body = body("charge.refunded", charge, false);
        let event = parse(&check(&secret), &signed(&body, NOW, &[SECRET]), &body).unwrap();
        assert_eq!(
            event.change,
            InboundChange::RefundedTotal {
                reference: "pi_1".into(),
                total: 700
            }
        );
        let live = self::body("payment_intent.succeeded", &intent("succeeded"), true);
        assert!(matches!(
            parse(&check(&secret), &signed(&live, NOW, &[SECRET]), &live),
            Err(ConnectorError::Rejected(_))
        ));
        let other = self::body("customer.created", r#"{"id":"cus_1"}"#, false);
        let ignored = parse(&check(&secret), &signed(&other, NOW, &[SECRET]), &other).unwrap();
        assert_eq!(ignored.change, InboundChange::Ignored);
        assert_eq!(ignored.kind, "customer.created");
    }

    #[test]
    fn failures_refunds_and_disputes_map_onto_the_core() {
        let secret = SecretString::from(SECRET);
        let parsed = |kind: &str, object: &str| {
            let body = body(kind, object, false);
            parse(&check(&secret), &signed(&body, NOW, &[SECRET]), &body)
                .unwrap()
                .change
        };
        assert_eq!(
            parsed("payment_intent.payment_failed", &intent("requires_payment_method")),
            InboundChange::PaymentFailed {
                payment: Some("pay_1".into()),
                reference: "pi_1".into(),
                code: crate::connectors::DeclineCode::InsufficientFunds
            }
        );
        assert_eq!(
            parsed(
                "refund.updated",
                r#"{"id":"re_1","object":"refund","status":"succeeded","metadata":{"paywarden_refund":"re_ours"}}"#
            ),
            InboundChange::Refund {
                refund: Some("re_ours".into()),
                processor_refund: "re_1".into(),
                state: RemoteRefund::Succeeded
            }
        );
        assert_eq!(
            parsed(
                "charge.dispute.created",
                r#"{"id":"dp_1","object":"dispute","amount":2000,"payment_intent":"pi_1","reason":"<script>"}"#
            ),
            InboundChange::Dispute {
                reference: "pi_1".into(),
                amount: 2000,
                reason: "unrecognised".into()
            }
        );
        // Still deciding at Stripe: nothing to apply yet.
        assert_eq!(
            parsed("payment_intent.succeeded", &intent("processing")),
            InboundChange::Ignored
        );
    }
}
