//! A payment as merchants see it, with its history on single-payment
//! responses; and the request enums of payments with their OpenAPI schemas.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::domain::money::MinorUnits;
use crate::domain::payment::{CancellationReason, CaptureMethod, HistoryEntry, Payment, PaymentStatus};
use crate::domain::payment_fields::{CustomerEmail, Description, ReturnUrl};

/// A payment as merchants see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// `pay_…`, time-ordered.
    pub id: String,
    /// Always `payment`.
    pub object: &'static str,
    pub livemode: bool,
    /// One of `requires_payment_method`, `requires_confirmation`,
    /// `requires_action`, `processing`, `requires_capture`, `succeeded`,
    /// `failed`, `canceled`.
    pub status: String,
    /// Minor units of `currency`.
    pub amount: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    /// `automatic` or `manual`.
    pub capture_method: String,
    /// The card token (`tok_…`) charged, if one is attached.
    pub payment_method: Option<String>,
    /// Authorized and not yet captured.
    pub amount_capturable: i64,
    /// Captured.
    pub amount_received: i64,
    /// Refunded, out of `amount_received`.
    pub amount_refunded: i64,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub customer_email: Option<String>,
    pub customer_ip: Option<String>,
    pub return_url: Option<String>,
    /// What the customer must do next (`requires_action` only).
    pub next_action: Option<NextActionView>,
    /// Why the issuer or processor refused (`failed` payments).
    pub decline_code: Option<String>,
    /// The last failure: a code and a sentence, never processor payloads.
    pub last_error: Option<LastErrorView>,
    pub cancellation_reason: Option<String>,
    /// What the merchant's fraud rules decided when it was confirmed
    /// (`null` without a rule set, or before confirmation).
    pub risk: Option<super::fraud::RiskView>,
    /// `open` while the fraud rules hold it authorized and uncaptured for a
    /// review, `closed` once captured or canceled; `null` if never held.
    pub review: Option<&'static str>,
    /// The SCA decision made when it was confirmed (`null` before).
    pub sca: Option<super::sca::ScaView>,
    /// The 3-D Secure result, once authentication ran (`null` without).
    pub three_d_secure: Option<super::sca::ThreeDSecureView>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Every transition and processor attempt, oldest first (on single-payment
    /// responses; absent in lists and events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
}

/// `{"type": "redirect_to_url", "url", "return_url"}`: send the customer's
/// browser to `url`; they come back to `return_url`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NextActionView {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub return_url: Option<String>,
    /// When the challenge expires unanswered (seconds since the epoch).
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LastErrorView {
    pub code: String,
    pub message: String,
}

/// One entry of a payment's history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// `create`, `confirm`, `authorize`, `capture`, `cancel`, …
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    /// `succeeded`, `declined`, `failed`, …
    pub outcome: String,
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

impl PaymentView {
    /// The view of `payment`, with its history when `with_history`.
    pub fn from_payment(payment: &Payment, with_history: bool) -> Self {
        let state = payment.state();
        PaymentView {
            id: payment.id.to_string(),
            object: "payment",
            livemode: payment.tenant.mode() == Mode::Live,
            status: state.status.as_str().to_owned(),
            amount: state.money.amount.get(),
            currency: state.money.currency.api_code(),
            capture_method: state.capture_method.as_str().to_owned(),
            payment_method: payment.payment_method.as_ref().map(ToString::to_string),
            amount_capturable: state.amount_capturable,
            amount_received: state.amount_received,
            amount_refunded: state.amount_refunded,
            description: payment.description.as_ref().map(|d| Description::as_str(d).to_owned()),
            metadata: payment.metadata.as_map().clone(),
            customer_email: payment
                .customer_email
                .as_ref()
                .map(|e| CustomerEmail::as_str(e).to_owned()),
            customer_ip: payment.customer_ip.map(|ip| ip.to_string()),
            return_url: payment.return_url.as_ref().map(|u| ReturnUrl::as_str(u).to_owned()),
            next_action: payment.next_action().map(|a| NextActionView {
                kind: "redirect_to_url".into(),
                url: a.url.clone(),
                return_url: a.return_url.clone(),
                expires_at: a.expires_at.as_secs(),
            }),
            decline_code: payment.decline.as_ref().map(|d| d.code.clone()),
            last_error: payment.decline.as_ref().map(|d| LastErrorView {
                code: d.code.clone(),
                message: d.message.clone(),
            }),
            cancellation_reason: payment.cancellation_reason().map(|r| r.as_str().to_owned()),
            risk: payment.risk.as_ref().map(super::fraud::RiskView::from_risk),
            review: super::fraud::review_marker(payment.risk.as_ref(), state.status),
            sca: payment.sca.as_ref().map(super::sca::ScaView::from_record),
            three_d_secure: payment.sca.as_ref().and_then(super::sca::ThreeDSecureView::from_record),
            created: payment.created_at.as_secs(),
            history: with_history.then(|| history_views(payment.history())),
        }
    }

    /// The JSON of a payment with its history, from its `snapshot` (its JSON
    /// without history, as [`PaymentView::from_row`] with no history
    /// serializes it) and its history: the snapshot with `history` added as
    /// its last field, byte for byte what serializing the whole view gives.
    /// So a change serializes the payment once, for its events and its
    /// response. `None` if `snapshot` is not a JSON object.
    pub fn json_with_history(snapshot: &str, history: &[HistoryEntry]) -> Option<Vec<u8>> {
        let fields = snapshot
            .strip_suffix('}')
            .filter(|f| f.starts_with('{') && f.len() > 1)?;
        let mut json = Vec::with_capacity(snapshot.len() + 160 * history.len() + 16);
        json.extend_from_slice(fields.as_bytes());
        json.extend_from_slice(b",\"history\":");
        let entries: Vec<HistoryViewRef<'_>> = history.iter().map(HistoryViewRef::from).collect();
        serde_json::to_writer(&mut json, &entries).ok()?;
        json.push(b'}');
        Some(json)
    }
}

/// [`HistoryView`] borrowing its entry: the same fields in the same order,
/// so the same JSON (the splicing test compares them), without copying.
#[derive(Serialize)]
struct HistoryViewRef<'a> {
    at_ms: i64,
    action: &'a str,
    from_status: Option<&'static str>,
    to_status: &'static str,
    outcome: &'a str,
    amount: Option<i64>,
    reason: Option<&'a str>,
}

impl<'a> From<&'a HistoryEntry> for HistoryViewRef<'a> {
    fn from(e: &'a HistoryEntry) -> Self {
        HistoryViewRef {
            at_ms: e.at.as_millis(),
            action: &e.action,
            from_status: e.from.map(PaymentStatus::as_str),
            to_status: e.to.as_str(),
            outcome: &e.outcome,
            amount: e.amount.map(MinorUnits::get),
            reason: e.reason.as_deref(),
        }
    }
}

fn history_views(history: &[HistoryEntry]) -> Vec<HistoryView> {
    history
        .iter()
        .map(|e| HistoryView {
            at_ms: e.at.as_millis(),
            action: e.action.clone(),
            from_status: e.from.map(|s| s.as_str().to_owned()),
            to_status: e.to.as_str().to_owned(),
            outcome: e.outcome.clone(),
            amount: e.amount.map(MinorUnits::get),
            reason: e.reason.clone(),
        })
        .collect()
}

/// Whether an approved authorization is captured at once or on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CaptureMethod)]
pub enum CaptureMethodField {
    Automatic,
    Manual,
}

impl From<CaptureMethodField> for CaptureMethod {
    fn from(field: CaptureMethodField) -> Self {
        match field {
            CaptureMethodField::Automatic => CaptureMethod::Automatic,
            CaptureMethodField::Manual => CaptureMethod::Manual,
        }
    }
}

/// Why a merchant cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CancellationReason)]
pub enum CancellationReasonField {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    Abandoned,
}

impl From<CancellationReasonField> for CancellationReason {
    fn from(field: CancellationReasonField) -> Self {
        match field {
            CancellationReasonField::Duplicate => CancellationReason::Duplicate,
            CancellationReasonField::Fraudulent => CancellationReason::Fraudulent,
            CancellationReasonField::RequestedByCustomer => CancellationReason::RequestedByCustomer,
            CancellationReasonField::Abandoned => CancellationReason::Abandoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{MerchantId, PaymentId, TokenId};
    use crate::domain::money::{Currency, Money};
    use crate::domain::payment::{Decline, NextAction, PaymentDraft, StoredParts};
    use crate::domain::payment_fields::{Metadata, ReturnUrl};
    use crate::domain::tenant::Tenant;
    use crate::domain::time::Timestamp;

    fn payment() -> Payment {
        let draft = PaymentDraft {
            id: PaymentId::from_trusted("pay_0Vd0SvHHnmGAbhXC8IhS4H0Q".into()),
            tenant: Tenant::new(MerchantId::from_trusted("mer_1".into()), Mode::Test),
            money: Money {
                amount: MinorUnits::parse(1999, i64::MAX).unwrap(),
                currency: Currency::parse("EUR").unwrap(),
            },
            capture_method: CaptureMethod::Manual,
            payment_method: Some(TokenId::from_trusted("tok_abc".into())),
            description: Some(Description::from_trusted(
                "a \"quoted\" description \\ with é and \u{1}".into(),
            )),
            metadata: serde_json::from_str::<Metadata>(r#"{"order":"42","note":"line\nbreak"}"#).unwrap(),
            customer_ip: Some("203.0.113.7".parse().unwrap()),
            customer_email: Some(CustomerEmail::from_trusted("a@example.com".into())),
            return_url: Some(ReturnUrl::from_trusted("https://shop.example/back?x=1&y=2".into())),
            connector: "sandbox".into(),
            idempotency_key: None,
        };
        let parts = StoredParts {
            status: PaymentStatus::RequiresAction,
            amount_capturable: 0,
            amount_received: 0,
            amount_refunded: 0,
            processor_reference: Some("sbx_1".into()),
            decline: Some(Decline {
                code: "generic_decline".into(),
                message: "The card was declined".into(),
            }),
            next_action: Some(NextAction {
                url: "https://127.0.0.1/sandbox/3ds/pay_1?c=x".into(),
                return_url: None,
                expires_at: Timestamp::from_millis(1_700_000_000_000),
            }),
            cancellation_reason: None,
            claim: None,
            version: 3,
            created_at: Timestamp::from_millis(1_700_000_000_123),
            updated_at: Timestamp::from_millis(1_700_000_000_456),
            history: Vec::new(),
        };
        Payment::restore(draft, parts).unwrap()
    }

    fn entry(action: &str, from: Option<PaymentStatus>, to: PaymentStatus, reason: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at: Timestamp::from_millis(1_700_000_000_123),
            action: action.into(),
            from,
            to,
            outcome: "succeeded".into(),
            amount: from.is_none().then(|| MinorUnits::parse(1999, i64::MAX).unwrap()),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_payment_shows_every_field_as_before() {
        let json = serde_json::to_string(&PaymentView::from_payment(&payment(), false)).unwrap();
        assert_eq!(
            json,
            r#"{"id":"pay_0Vd0SvHHnmGAbhXC8IhS4H0Q","object":"payment","livemode":false,"status":"requires_action","amount":1999,"currency":"eur","capture_method":"manual","payment_method":"tok_abc","amount_capturable":0,"amount_received":0,"amount_refunded":0,"description":"a \"quoted\" description \\ with é and \u0001","metadata":{"note":"line\nbreak","order":"42"},"customer_email":"a@example.com","customer_ip":"203.0.113.7","return_url":"https://shop.example/back?x=1&y=2","next_action":{"type":"redirect_to_url","url":"https://127.0.0.1/sandbox/3ds/pay_1?c=x","return_url":null,"expires_at":1700000000},"decline_code":"generic_decline","last_error":{"code":"generic_decline","message":"The card was declined"},"cancellation_reason":null,"risk":null,"review":null,"sca":null,"three_d_secure":null,"created":1700000000}"#
        );
    }

    #[test]
    fn a_payment_spliced_from_its_snapshot_is_byte_for_byte_its_serialized_view() {
        use PaymentStatus as S;
        let base = payment();
        let snapshot = serde_json::to_string(&PaymentView::from_payment(&base, false)).unwrap();
        for history in [
            vec![],
            vec![entry("create", None, S::RequiresPaymentMethod, None)],
            vec![
                entry("create", None, S::RequiresConfirmation, None),
                entry("confirm", Some(S::RequiresConfirmation), S::Processing, None),
                entry(
                    "authorize",
                    Some(S::Processing),
                    S::RequiresAction,
                    Some("3-D \"Secure\"\n"),
                ),
            ],
        ] {
            let spliced = PaymentView::json_with_history(&snapshot, &history).unwrap();
            let mut view = PaymentView::from_payment(&base, false);
            view.history = Some(history_views(&history));
            let whole = serde_json::to_vec(&view).unwrap();
            assert_eq!(String::from_utf8(spliced).unwrap(), String::from_utf8(whole).unwrap());
        }
    }

    #[test]
    fn a_snapshot_that_is_not_an_object_is_not_spliced() {
        let history = [entry("create", None, PaymentStatus::RequiresPaymentMethod, None)];
        for snapshot in ["", "{}", "}", "[1]", "\"x\""] {
            assert!(
                PaymentView::json_with_history(snapshot, &history).is_none(),
                "{snapshot:?}"
            );
        }
    }
}
