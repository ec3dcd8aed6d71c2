//! PayPal's webhook events (Webhooks v1 `event`: `id` `WH-…`,
//! `event_type`, `resource`), once verified, in the core's terms.
//!
//! - `PAYMENT.CAPTURE.COMPLETED`: the order (`supplementary_data.related_ids.order_id`,
//!   our payment's reference) is captured, by the capture's amount.
//! - `PAYMENT.CAPTURE.DENIED` / `DECLINED`: the capture failed.
//! - `PAYMENT.AUTHORIZATION.VOIDED`: the authorization was voided.
//! - `PAYMENT.CAPTURE.REFUNDED`: one refund succeeded; its `custom_id` is our
//!   refund id when the gateway made it.
//! - every other type (disputes among them: a dispute names PayPal's
//!   capture, not the order our payment references) is acknowledged and
//!   ignored.
//!
//! Invariants: only identifiers are kept of a body (ids, the event type);
//! an id that is not one refuses the event.

use serde::Deserialize;

use super::wire::Amount;
use crate::connectors::{ConnectorError, DeclineCode, InboundChange, InboundEvent, RemoteRefund, RemoteStatus};

#[derive(Deserialize)]
struct Event {
    id: String,
    event_type: String,
    #[serde(default)]
    resource: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct Resource {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    custom_id: Option<String>,
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(default)]
    supplementary_data: Option<Supplementary>,
}

#[derive(Deserialize, Default)]
struct Supplementary {
    #[serde(default)]
    related_ids: Option<RelatedIds>,
}

#[derive(Deserialize, Default)]
struct RelatedIds {
    #[serde(default)]
    order_id: Option<String>,
}

fn rejected(what: &str) -> ConnectorError {
    ConnectorError::Rejected(format!("the PayPal event's {what} is not usable"))
}

/// Letters, digits, `-` and `_` only, at most 255.
fn identifier(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An event type: upper-case letters, digits, `_` and `.`; recorded lower-case.
fn event_kind(value: &str) -> Option<String> {
    (!value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'.'))
    .then(|| value.to_ascii_lowercase())
}

/// The core's event of a verified body.
pub fn parse(body: &[u8]) -> Result<InboundEvent, ConnectorError> {
    let event: Event = serde_json::from_slice(body).map_err(|_| rejected("body"))?;
    if !identifier(&event.id) {
        return Err(rejected("id"));
    }
    let kind = event_kind(&event.event_type).ok_or_else(|| rejected("type"))?;
    let resource: Resource = serde_json::from_value(event.resource).unwrap_or_default();
    let payment = resource.custom_id.clone().filter(|c| identifier(c));
    let order = resource
        .supplementary_data
        .and_then(|s| s.related_ids)
        .and_then(|r| r.order_id)
        .filter(|o| identifier(o));
    let change = match (event.event_type.as_str(), order) {
        ("PAYMENT.CAPTURE.COMPLETED", Some(order)) => {
            let amount = resource.amount.as_ref().and_then(|a| a.minor_units(None));
            let amount = amount.ok_or_else(|| rejected("amount"))?;
            InboundChange::Payment {
                payment,
                reference: order.clone(),
                status: RemoteStatus::Captured {
                    reference: order,
                    amount,
                },
            }
        }
        ("PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED", Some(order)) => InboundChange::PaymentFailed {
            payment,
            reference: order,
            code: DeclineCode::CaptureFailed,
        },
        ("PAYMENT.AUTHORIZATION.VOIDED", Some(order)) => InboundChange::Payment {
            payment,
            reference: order,
            status: RemoteStatus::Voided,
        },
        ("PAYMENT.CAPTURE.REFUNDED", _) => {
            let processor_refund = resource
                .id
                .filter(|i| identifier(i))
                .ok_or_else(|| rejected("refund"))?;
            InboundChange::Refund {
                refund: resource.custom_id.filter(|c| c.starts_with("re_") && identifier(c)),
                processor_refund,
                state: RemoteRefund::Succeeded,
            }
        }
        _ => InboundChange::Ignored,
    };
    Ok(InboundEvent {
        processor_event_id: event.id,
        kind,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(value: serde_json::Value) -> Result<InboundEvent, ConnectorError> {
        parse(value.to_string().as_bytes())
    }

    #[test]
    fn captures_voids_and_refunds_map_onto_the_core_and_the_rest_is_ignored() {
        let captured = parsed(
            json!({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {
            "id": "C1", "custom_id": "pay_1", "amount": {"currency_code": "EUR", "value": "12.00"},
            "supplementary_data": {"related_ids": {"order_id": "O1"}}}}),
        )
        .unwrap();
        assert_eq!(captured.kind, "payment.capture.completed");
        assert_eq!(
            captured.change,
            InboundChange::Payment {
                payment: Some("pay_1".into()),
                reference: "O1".into(),
                status: RemoteStatus::Captured {
                    reference: "O1".into(),
                    amount: 1200
                }
            }
        );
        let refunded = parsed(json!({"id": "WH-2", "event_type": "PAYMENT.CAPTURE.REFUNDED",
            "resource": {"id": "R1", "custom_id": "re_abc"}}))
        .unwrap();
        assert_eq!(
            refunded.change,
            InboundChange::Refund {
                refund: Some("re_abc".into()),
                processor_refund: "R1".into(),
                state: RemoteRefund::Succeeded
            }
        );
        let dispute = parsed(json!({"id": "WH-3", "event_type": "CUSTOMER.DISPUTE.CREATED", "resource": {}})).unwrap();
        assert_eq!(dispute.change, InboundChange::Ignored);
        for bad in [
            json!({"id": "WH 4", "event_type": "PAYMENT.CAPTURE.COMPLETED"}),
            json!({"id": "WH-4", "event_type": "payment.capture.completed<script>"}),
            json!({"event_type": "PAYMENT.CAPTURE.COMPLETED"}),
        ] {
            assert!(parsed(bad.clone()).is_err(), "{bad}");
        }
    }
}
