//! A refund as merchants see it.

use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::domain::payment::Refund;
use crate::domain::payment_fields::RefundReason;

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
    pub fn from_refund(refund: &Refund) -> Self {
        RefundView {
            id: refund.id.to_string(),
            object: "refund",
            livemode: refund.tenant.mode() == Mode::Live,
            payment: refund.payment.to_string(),
            amount: refund.money.amount.get(),
            currency: refund.money.currency.api_code(),
            status: refund.status().as_str().to_owned(),
            reason: refund.reason.map(|r| RefundReason::as_str(r).to_owned()),
            failure_reason: refund.failure_reason.clone(),
            created: refund.created_at.as_secs(),
        }
    }
}
