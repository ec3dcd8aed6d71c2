//! How the gateway's objects look outside it: API keys (to the API and the
//! CLI), payments and refunds (in API responses and, as the same JSON, in
//! the `data.object` of their events). Built from the domain
//! types ([`crate::domain::payment`]), one definition for both; the OpenAPI
//! schemas of those types live here too (the domain names no `utoipa`).

pub mod api_keys;
pub mod payments;
pub mod refunds;

pub use api_keys::{ApiKeyView, RestrictionsView};
pub use payments::{
    CancellationReasonField, CaptureMethodField, HistoryView, LastErrorView, NextActionView, PaymentView,
};
pub use refunds::RefundView;

/// The views as the payments service writes them into events.
pub fn snapshots() -> crate::services::payments::Snapshots {
    crate::services::payments::Snapshots {
        payment: |payment| serde_json::to_string(&PaymentView::from_payment(payment, false)),
        refund: |refund| serde_json::to_string(&RefundView::from_refund(refund)),
    }
}
