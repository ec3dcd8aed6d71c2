//! How payments and refunds look to merchants: in API responses and, as the
//! same JSON, in the `data.object` of their events. One definition for both.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::payments::{HistoryEntry, PaymentRow};
use crate::store::refunds::RefundRow;

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
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// Every transition and processor attempt, oldest first (on single-payment
    /// responses; absent in lists and events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryView>>,
}

/// `{"type": "redirect_to_url", "url", "return_url"}`: send the customer's
/// browser to `url`; they come back to `return_url`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    pub fn from_row(row: &PaymentRow, history: Option<&[HistoryEntry]>) -> Self {
        PaymentView {
            id: row.id.clone(),
            object: "payment",
            livemode: row.mode == "live",
            status: row.status.clone(),
            amount: row.amount,
            currency: row.currency.to_ascii_lowercase(),
            capture_method: row.capture_method.clone(),
            payment_method: row.payment_method.clone(),
            amount_capturable: row.amount_capturable,
            amount_received: row.amount_received,
            amount_refunded: row.amount_refunded,
            description: row.description.clone(),
            metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            customer_email: row.customer_email.clone(),
            customer_ip: row.customer_ip.clone(),
            return_url: row.return_url.clone(),
            next_action: row.next_action.as_deref().and_then(|a| serde_json::from_str(a).ok()),
            decline_code: row.decline_code.clone(),
            last_error: row.failure_code.as_ref().map(|code| LastErrorView {
                code: code.clone(),
                message: row.failure_message.clone().unwrap_or_default(),
            }),
            cancellation_reason: row.cancellation_reason.clone(),
            created: row.created_at.div_euclid(1000),
            history: history.map(history_views),
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
    from_status: Option<&'a str>,
    to_status: &'a str,
    outcome: &'a str,
    amount: Option<i64>,
    reason: Option<&'a str>,
}

impl<'a> From<&'a HistoryEntry> for HistoryViewRef<'a> {
    fn from(e: &'a HistoryEntry) -> Self {
        HistoryViewRef {
            at_ms: e.at,
            action: &e.action,
            from_status: e.from_status.as_deref(),
            to_status: &e.to_status,
            outcome: &e.outcome,
            amount: e.amount,
            reason: e.reason.as_deref(),
        }
    }
}

fn history_views(history: &[HistoryEntry]) -> Vec<HistoryView> {
    history
        .iter()
        .map(|e| HistoryView {
            at_ms: e.at,
            action: e.action.clone(),
            from_status: e.from_status.clone(),
            to_status: e.to_status.clone(),
            outcome: e.outcome.clone(),
            amount: e.amount,
            reason: e.reason.clone(),
        })
        .collect()
}

/// A refund as merchants see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefundView {
    /// `re_…`, time-ordered.
    pub id: String,
    /// Always `refund`.
    pub object: &'static str,
    pub livemode: bool,
    /// The refunded payment (`pay_…`).
    pub payment: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
    /// Why the processor refused (`failed` refunds).
    pub failure_reason: Option<String>,
    pub created: i64,
}

impl RefundView {
    pub fn from_row(row: &RefundRow) -> Self {
        RefundView {
            id: row.id.clone(),
            object: "refund",
            livemode: row.mode == "live",
            payment: row.payment_id.clone(),
            amount: row.amount,
            currency: row.currency.to_ascii_lowercase(),
            status: row.status.clone(),
            reason: row.reason.clone(),
            failure_reason: row.failure_reason.clone(),
            created: row.created_at.div_euclid(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> PaymentRow {
        PaymentRow {
            id: "pay_0Vd0SvHHnmGAbhXC8IhS4H0Q".into(),
            merchant_id: "mer_1".into(),
            mode: "test".into(),
            status: "requires_action".into(),
            amount: 1999,
            currency: "EUR".into(),
            capture_method: "manual".into(),
            payment_method: Some("tok_abc".into()),
            amount_capturable: 0,
            amount_received: 0,
            amount_refunded: 0,
            description: Some("a \"quoted\" description \\ with é and \u{1}".into()),
            metadata: r#"{"order":"42","note":"line\nbreak"}"#.into(),
            customer_ip: Some("203.0.113.7".into()),
            customer_email: Some("a@example.com".into()),
            return_url: Some("https://shop.example/back?x=1&y=2".into()),
            connector: "sandbox".into(),
            processor_reference: Some("sbx_1".into()),
            decline_code: Some("generic_decline".into()),
            failure_code: Some("card_declined".into()),
            failure_message: Some("The card was declined".into()),
            next_action: Some(
                r#"{"type":"redirect_to_url","url":"https://127.0.0.1/sandbox/3ds/pay_1?c=x","return_url":null,"expires_at":1700000000}"#
                    .into(),
            ),
            action_expires_at: Some(1_700_000_000_000),
            cancellation_reason: None,
            idempotency_key: None,
            claim: None,
            version: 3,
            created_at: 1_700_000_000_123,
            updated_at: 1_700_000_000_456,
            history: "[]".into(),
        }
    }

    fn entry(action: &str, from: Option<&str>, to: &str, reason: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            at: 1_700_000_000_123,
            action: action.into(),
            from_status: from.map(str::to_owned),
            to_status: to.into(),
            outcome: "succeeded".into(),
            amount: from.is_none().then_some(1999),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_payment_spliced_from_its_snapshot_is_byte_for_byte_its_serialized_view() {
        let row = row();
        let snapshot = serde_json::to_string(&PaymentView::from_row(&row, None)).unwrap();
        for history in [
            vec![],
            vec![entry("create", None, "requires_payment_method", None)],
            vec![
                entry("create", None, "requires_confirmation", None),
                entry("confirm", Some("requires_confirmation"), "processing", None),
                entry(
                    "authorize",
                    Some("processing"),
                    "requires_action",
                    Some("3-D \"Secure\"\n"),
                ),
            ],
        ] {
            let spliced = PaymentView::json_with_history(&snapshot, &history).unwrap();
            let whole = serde_json::to_vec(&PaymentView::from_row(&row, Some(&history))).unwrap();
            assert_eq!(String::from_utf8(spliced).unwrap(), String::from_utf8(whole).unwrap());
        }
    }

    #[test]
    fn a_snapshot_that_is_not_an_object_is_not_spliced() {
        let history = [entry("create", None, "requires_payment_method", None)];
        for snapshot in ["", "{}", "}", "[1]", "\"x\""] {
            assert!(
                PaymentView::json_with_history(snapshot, &history).is_none(),
                "{snapshot:?}"
            );
        }
    }
}
