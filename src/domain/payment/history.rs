//! A payment's history: every transition and every processor attempt, oldest
//! first, as merchants read it back (`history` of a single payment).
//!
//! Entries are only ever appended, by the payment's own transitions
//! ([`super::Payment`]); the statuses they name are payment statuses.

use crate::domain::money::MinorUnits;
use crate::domain::time::Timestamp;

use super::status::PaymentStatus;

/// One entry of a payment's history: a transition (`from` → `to`) or an
/// attempt that left the status as it was (`from == to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    /// `create`, `confirm`, `authorize`, `capture`, `cancel`, …
    pub action: String,
    /// `None` for the creation entry.
    pub from: Option<PaymentStatus>,
    pub to: PaymentStatus,
    /// `succeeded`, `approved`, `declined`, `failed`, `error`, …
    pub outcome: String,
    /// The amount created, captured or refunded, when the entry moved one.
    pub amount: Option<MinorUnits>,
    pub reason: Option<String>,
}
