//! Payments and refunds, the model every layer works with: [`Payment`] (its
//! state machine in [`status`], its [`history`]) and [`Refund`].
//!
//! Invariants: a payment's status is held once, in its state, and changes
//! only through its transitions, which return the events they cause; a
//! refused transition leaves the payment untouched; nothing is captured
//! beyond the amount, nothing refunded beyond what was captured; a terminal
//! status never changes. Stored rows, JSON views and OpenAPI schemas of these
//! types live at the edges (`store/`, `api/views/`), not here.

pub mod history;
#[allow(clippy::module_inception)]
pub mod payment;
pub mod refund;
pub mod risk;
pub mod status;

pub use history::HistoryEntry;
pub use payment::{CancellationReason, Claim, Decline, NextAction, Payment, PaymentDraft, StoredParts};
pub use refund::{AlreadySettled, NewRefund, Refund, RefundStatus};
pub use risk::{Risk, RiskSignal};
pub use status::{CaptureMethod, PaymentError, PaymentState, PaymentStatus, Step};

use super::ids::PaymentId;
use super::time::Timestamp;

/// Filters of a payment list; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub status: Option<PaymentStatus>,
    /// Created at or after.
    pub created_gte: Option<Timestamp>,
    /// Created at or before.
    pub created_lte: Option<Timestamp>,
    /// Only payments older than this one (ids are time-ordered).
    pub before: Option<PaymentId>,
}
