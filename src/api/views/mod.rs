//! How payments and refunds look to merchants: in API responses and, as the
//! same JSON, in the `data.object` of their events. Built from the domain
//! types ([`crate::domain::payment`]), one definition for both; the OpenAPI
//! schemas of those types live here too (the domain names no `utoipa`).

pub mod payments;
pub mod refunds;

pub use payments::{
    CancellationReasonField, CaptureMethodField, HistoryView, LastErrorView, NextActionView, PaymentView,
};
pub use refunds::RefundView;
