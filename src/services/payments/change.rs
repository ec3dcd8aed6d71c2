//! One change of one payment: the transitions applied to it, the events they
//! cause, and the single unit of work that stores all of them together with
//! the audit entry.

use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::EventId;
use crate::domain::payment::{Payment, PaymentError};
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::fraud::velocity::Observation;
use crate::services::ServiceError;
use crate::store::events::EventRow;
use crate::store::ports::{Commit, EventStore, PaymentStore, ScaStore, SignalStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::sca::CounterWrite;
use super::{PaymentRecord, Snapshots};

/// A payment being changed.
pub(super) struct Change {
    pub payment: Payment,
    /// Inserted (a new payment) rather than updated.
    pub is_new: bool,
    /// The events of the transitions applied, in order.
    pub events: Vec<EventType>,
    /// The audit action, e.g. `payment.confirmed`.
    pub action: &'static str,
    /// The time of the change (of its history entries and events).
    pub now: Timestamp,
    /// The fraud rules screened the payment in this change: its audit entry
    /// carries the risk summary.
    pub screened: bool,
    /// The change of the card's SCA counters that commits with the payment.
    pub sca_counters: Option<CounterWrite>,
    /// The screening's observation, recorded (with the outcome) by the
    /// commit that ends the confirm.
    pub observation: Option<Observation>,
}

impl Change {
    /// The creation of `payment`, with the events its creation caused.
    pub fn create(payment: Payment, events: Vec<EventType>, now: Timestamp) -> Self {
        Self {
            payment,
            is_new: true,
            events,
            action: "payment.created",
            now,
            screened: false,
            sca_counters: None,
            observation: None,
        }
    }

    /// Starts changing a stored payment: its version moves on by one, and the
    /// change is timed after its last one ([`Payment::begin_change`]).
    pub fn of(payment: Payment, action: &'static str) -> Self {
        let mut payment = payment;
        let now = payment.begin_change(Timestamp::now());
        Self {
            payment,
            is_new: false,
            events: Vec::new(),
            action,
            now,
            screened: false,
            sca_counters: None,
            observation: None,
        }
    }

    /// A copy to try one way of going on with (the original stays as it is).
    pub fn fork(&self) -> Self {
        Self {
            payment: self.payment.clone(),
            is_new: self.is_new,
            events: self.events.clone(),
            action: self.action,
            now: self.now,
            screened: self.screened,
            sca_counters: self.sca_counters.clone(),
            observation: self.observation.clone(),
        }
    }

    /// Applies a transition at the change's time and keeps its events; a
    /// refused one changes nothing.
    pub fn apply(
        &mut self,
        transition: impl FnOnce(&mut Payment, Timestamp) -> Result<Vec<EventType>, PaymentError>,
    ) -> Result<(), PaymentError> {
        let events = transition(&mut self.payment, self.now)?;
        self.events.extend(events);
        Ok(())
    }

    /// Records an attempt that changed no status (a failed manual capture).
    pub fn attempt(&mut self, action: &str, outcome: &str, reason: Option<String>) {
        self.payment.record_attempt(action, outcome, reason, self.now);
    }

    /// Writes the payment with its history, its events and the audit entry in
    /// one unit of work. A concurrent change of the same payment makes this a
    /// `StoreError::Conflict`; an idempotency-key collision a `Duplicate`.
    /// Returns the payment as written and its snapshot.
    pub async fn commit<S: PaymentStore + EventStore + ScaStore + SignalStore + Commit>(
        self,
        store: &S,
        snapshots: Snapshots,
        actor: &Actor,
    ) -> Result<PaymentRecord, ServiceError> {
        self.commit_in(UnitOfWork::new(), store, snapshots, actor).await
    }

    /// [`Change::commit`], in `work` with what the caller staged there (an
    /// inbound processor event's record): all of it commits, or none.
    pub async fn commit_in<S: PaymentStore + EventStore + ScaStore + SignalStore + Commit>(
        self,
        mut work: UnitOfWork,
        store: &S,
        snapshots: Snapshots,
        actor: &Actor,
    ) -> Result<PaymentRecord, ServiceError> {
        let payment = self.payment;
        let snapshot =
            (snapshots.payment)(&payment).map_err(|e| StoreError::Corrupt(format!("payment snapshot: {e}")))?;
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
                merchant_id: payment.tenant.merchant_str().to_owned(),
                mode: payment.tenant.mode_str().to_owned(),
                event_type: kind.as_str().to_owned(),
                object_id: payment.id.to_string(),
                data: snapshot.clone(),
                created_at: self.now.as_millis(),
            })
            .collect();
        let money = payment.money();
        let mut audit = actor.event(self.action, Outcome::Success);
        audit.merchant_id = Some(payment.tenant.merchant_str().to_owned());
        audit.mode = Some(payment.tenant.mode());
        audit.resource = Some(payment.id.to_string());
        audit.reason = Some(format!(
            "status {}; {} {} {}",
            payment.status(),
            money.amount.get(),
            money.currency.api_code(),
            payment
                .decline
                .as_ref()
                .map(|d| format!("declined: {}", d.code))
                .unwrap_or_default()
        ));
        if let (true, Some(risk), Some(reason)) = (self.screened, &payment.risk, audit.reason.as_mut()) {
            reason.push_str("; ");
            reason.push_str(&risk.summary());
        }
        if let (Some(sca), Some(reason)) = (&payment.sca, audit.reason.as_mut()) {
            reason.push_str("; ");
            reason.push_str(&sca.summary());
        }
        if self.is_new {
            store.insert_payment(&mut work, &payment)?;
        } else {
            store.update_payment(&mut work, &payment)?;
        }
        if let Some(counters) = &self.sca_counters {
            counters.stage(store, &mut work, &payment.tenant, self.now.as_millis());
        }
        // One snapshot for all of them: the events of one change share it.
        store.insert_events(&mut work, &event_rows);
        if let Some(observation) = &self.observation {
            store.insert_observation(&mut work, &payment.tenant, &observation.row(&payment));
        }
        work.audit(audit);
        store.commit(work).await.map_err(|e| match e {
            StoreError::Conflict => ServiceError::Conflict {
                code: "payment_conflict",
                message: "The payment was changed by another request at the same time; fetch it and retry".into(),
            },
            other => other.into(),
        })?;
        Ok(PaymentRecord {
            payment,
            snapshot: Some(snapshot),
        })
    }
}
