//! One change of one payment: the steps applied to its state, the history
//! entries and events they produce, and the single write (group commit) that
//! stores all of them together with the audit entry.

use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::EventId;
use crate::domain::payment::{PaymentError, PaymentState, Step};
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::ServiceError;
use crate::store::events::EventRow;
use crate::store::group_commit::WriteJob;
use crate::store::payments::{self as stored, HistoryEntry, PaymentRow};
use crate::store::{self, Store, StoreError};

use super::view::PaymentView;
use super::PaymentRecord;

/// A payment being changed.
pub(super) struct Change {
    pub row: PaymentRow,
    pub state: PaymentState,
    /// Inserted (a new payment) rather than updated.
    pub is_new: bool,
    /// The entries this change adds to the payment's history.
    pub history: Vec<HistoryEntry>,
    pub events: Vec<EventType>,
    /// The audit action, e.g. `payment.confirmed`.
    pub action: &'static str,
    pub now: Timestamp,
}

impl Change {
    /// Starts changing a stored payment: its version moves on by one. The
    /// change's time is after the payment's last one, also within one
    /// millisecond, so its events' time-ordered ids sort after those of every
    /// earlier change of the payment (a write-ahead record and the processor's
    /// answer can land in the same millisecond).
    pub fn of(row: PaymentRow, state: PaymentState, action: &'static str) -> Self {
        let now = Timestamp::now().max(Timestamp::from_millis(row.updated_at.saturating_add(1)));
        let mut row = row;
        row.version += 1;
        row.updated_at = now.as_millis();
        Self {
            row,
            state,
            is_new: false,
            history: Vec::new(),
            events: Vec::new(),
            action,
            now,
        }
    }

    /// Applies `step` and records it; refuses (changing nothing) if the state
    /// machine does.
    pub fn step(&mut self, step: Step, outcome: &str, reason: Option<String>) -> Result<(), PaymentError> {
        let from = self.state.apply(step)?;
        self.sync_row();
        let amount = match step {
            Step::Capture { amount } | Step::Refund { amount } => Some(amount),
            _ => None,
        };
        self.record(step.name(), Some(from.as_str()), outcome, amount, reason);
        Ok(())
    }

    /// Records an attempt that changed no status (a failed manual capture).
    pub fn attempt(&mut self, action: &str, outcome: &str, reason: Option<String>) {
        self.record(action, Some(self.state.status.as_str()), outcome, None, reason);
    }

    /// Records the creation entry of a new payment.
    pub fn created(&mut self) {
        self.record("create", None, "succeeded", Some(self.state.money.amount.get()), None);
    }

    fn record(&mut self, action: &str, from: Option<&str>, outcome: &str, amount: Option<i64>, reason: Option<String>) {
        self.history.push(HistoryEntry {
            at: self.now.as_millis(),
            action: action.to_owned(),
            from_status: from.map(str::to_owned),
            to_status: self.state.status.as_str().to_owned(),
            outcome: outcome.to_owned(),
            amount,
            reason,
        });
    }

    fn sync_row(&mut self) {
        self.row.status = self.state.status.as_str().to_owned();
        self.row.amount_capturable = self.state.amount_capturable;
        self.row.amount_received = self.state.amount_received;
        self.row.amount_refunded = self.state.amount_refunded;
    }

    pub fn emit(&mut self, event: EventType) {
        self.events.push(event);
    }

    /// Writes the payment with its history, its events and the audit entry in
    /// one (group) commit. A concurrent change of the same payment makes this a
    /// `StoreError::Conflict`; an idempotency-key collision a `Duplicate`.
    /// Returns the row as written, its whole history and its snapshot.
    pub async fn commit(mut self, store: &Store, actor: &Actor) -> Result<PaymentRecord, ServiceError> {
        let mut history = stored::parse_history(&self.row.history)?;
        history.append(&mut self.history);
        self.row.history = stored::history_column(&history)?;
        let snapshot = serde_json::to_string(&PaymentView::from_row(&self.row, None))
            .map_err(|e| StoreError::Corrupt(format!("payment snapshot: {e}")))?;
        // Sorted, so the events of one change keep their order even within
        // one millisecond.
        let mut ids = (0..self.events.len())
            .map(|_| EventId::generate_time_ordered(self.now))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        let event_rows: Vec<EventRow> = self
            .events
            .iter()
            .zip(ids)
            .map(|(kind, id)| EventRow {
                id: id.to_string(),
                merchant_id: self.row.merchant_id.clone(),
                mode: self.row.mode.clone(),
                event_type: kind.as_str().to_owned(),
                object_id: self.row.id.clone(),
                data: snapshot.clone(),
                created_at: self.now.as_millis(),
            })
            .collect();
        let mut audit = actor.event(self.action, Outcome::Success);
        audit.merchant_id = Some(self.row.merchant_id.clone());
        audit.mode = crate::domain::api_key::Mode::parse(&self.row.mode);
        audit.resource = Some(self.row.id.clone());
        audit.reason = Some(format!(
            "status {}; {} {} {}",
            self.row.status,
            self.row.amount,
            self.row.currency.to_ascii_lowercase(),
            self.row
                .decline_code
                .as_deref()
                .map(|c| format!("declined: {c}"))
                .unwrap_or_default()
        ));
        let mut ops = vec![if self.is_new {
            store::payments::insert_op(&self.row)
        } else {
            store::payments::update_op(&self.row)
        }];
        // One snapshot for all of them: the events of one change share it.
        ops.extend(store::events::insert_ops(&event_rows));
        store
            .group_commit()
            .run(WriteJob::new(ops, vec![audit]))
            .await
            .map_err(|e| match e {
                StoreError::Conflict => ServiceError::Conflict {
                    code: "payment_conflict",
                    message: "The payment was changed by another request at the same time; fetch it and retry".into(),
                },
                other => other.into(),
            })?;
        Ok(PaymentRecord {
            row: self.row,
            history,
            snapshot: Some(snapshot),
        })
    }
}
