//! Recording attempts: the attempt row and the delivery's new state
//! (succeeded, pending with its next retry, or failed), written under the
//! lease; a final failure also disables the endpoint and emits
//! `webhook_endpoint.disabled` (with its audit entry), in one unit of work.
//!
//! The delivery worker hands every finished attempt to one [`recorder`]
//! task, which writes all the attempts that finished close together as one
//! group-commit job of a few multi-row statements ([`record_batch`]): the
//! attempts inserted, the deliveries' states written, unused leases given
//! back. A job is all or nothing: if it fails, none of its deliveries is
//! recorded and each is sent again after its lease (at least once).
//!
//! Invariants: nothing is written for a delivery unless its lease is still
//! the caller's (every row is conditional on its own token), so a worker
//! whose lease ran out cannot overwrite the next owner's result, and a lease
//! lost in the middle of a batch leaves only that delivery unwritten; a
//! delivery is marked succeeded only with a 2xx; the usual outcome (anything
//! but a final failure) goes through the group commit, so records share
//! commits with each other and with payments instead of paying one each.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::domain::api_key::Mode;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, WebhookAttemptId};
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryKey, DeliveryRow, Finish};
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::{EventStore, StoreError, WebhookEndpointStore};

use super::attempt::Sent;
use super::endpoint::WebhookEndpoint;
use super::payload::Payloads;
use super::settings::WebhookSettings;
use super::DeliveryStores;

/// Most attempts recorded in one job.
pub const MAX_RECORDS: usize = 512;

/// What an attempt came to, planned for its record.
struct Plan {
    attempt: AttemptRow,
    status: &'static str,
    next_attempt_at: i64,
    error: Option<String>,
    now: i64,
    /// A failure after the retry window: final, and the endpoint is disabled.
    exhausted: bool,
}

impl Plan {
    fn new(settings: &WebhookSettings, d: &DeliveryRow, sent: &Sent, now: Timestamp) -> Result<Self, StoreError> {
        let failures = d.attempts + 1;
        let delivered = sent.delivered();
        let exhausted = !delivered && settings.retry.exhausted(d.created_at, now.as_millis());
        let (status, next_attempt_at) = if delivered {
            ("succeeded", now.as_millis())
        } else if exhausted {
            ("failed", now.as_millis())
        } else {
            (
                "pending",
                now.saturating_add(settings.retry.delay(failures)).as_millis(),
            )
        };
        let error = sent
            .error
            .map(str::to_owned)
            .or_else(|| (!delivered).then(|| "unexpected_status".to_owned()));
        let attempt = AttemptRow {
            id: WebhookAttemptId::generate_time_ordered(now)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .to_string(),
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            merchant_id: d.merchant_id.clone(),
            attempt: failures,
            attempted_at: now.as_millis().saturating_sub(sent.duration_ms),
            status_code: sent.status_code,
            error: error.clone(),
            duration_ms: sent.duration_ms,
            outcome: if delivered { "succeeded" } else { "failed" }.to_owned(),
        };
        Ok(Self {
            attempt,
            status,
            next_attempt_at,
            error,
            now: now.as_millis(),
            exhausted,
        })
    }

    fn outcome(&self) -> AttemptOutcome<'_> {
        AttemptOutcome {
            status: self.status,
            next_attempt_at: self.next_attempt_at,
            status_code: self.attempt.status_code,
            error: self.error.as_deref(),
            now: self.now,
        }
    }

    fn log(&self) {
        tracing::info!(
            endpoint = %self.attempt.endpoint_id,
            event = %self.attempt.event_id,
            attempt = self.attempt.attempt,
            status_code = self.attempt.status_code.unwrap_or(0),
            error = self.error.as_deref().unwrap_or("-"),
            duration_ms = self.attempt.duration_ms,
            outcome = self.status,
            "webhook attempt"
        );
    }
}

/// Writes the attempt and the delivery's new state under the lease `token`.
/// `Ok(false)` if the lease was no longer the caller's (nothing written).
pub async fn record<S: DeliveryStores>(
    store: &S,
    settings: &WebhookSettings,
    d: &DeliveryRow,
    endpoint: &EndpointRow,
    token: &str,
    sent: &Sent,
) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let plan = Plan::new(settings, d, sent, now)?;
    let held = if plan.exhausted {
        record_final_failure(store, settings.payloads, &plan, d, endpoint, token, now).await?
    } else {
        // The attempt first: it is written only while the lease is held, and
        // the outcome releases it.
        let mut work = UnitOfWork::new();
        store.insert_attempts_if_leased(&mut work, &[(&plan.attempt, token)]);
        let finish = Finish {
            key: key_of(d),
            token,
            outcome: plan.outcome(),
        };
        let written = store.finish_deliveries(&mut work, std::slice::from_ref(&finish));
        store.commit(work).await?;
        written.total() == 1
    };
    if held {
        plan.log();
    }
    Ok(held)
}

/// A claimed delivery whose attempt is over (or was never sent), to record.
pub struct Finished {
    pub delivery: DeliveryRow,
    pub endpoint: Arc<EndpointRow>,
    /// The lease token it was claimed under.
    pub token: Arc<str>,
    /// `None`: not sent; its lease is given back unused.
    pub sent: Option<Sent>,
    /// Told whether the outcome was written under the lease.
    pub done: oneshot::Sender<bool>,
}

/// Records what the worker hands it, as many at a time as are waiting, until
/// every sender is gone.
pub async fn recorder<S: DeliveryStores>(store: S, settings: WebhookSettings, mut queue: mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(MAX_RECORDS);
    while queue.recv_many(&mut batch, MAX_RECORDS).await > 0 {
        let finished = std::mem::take(&mut batch);
        record_batch(&store, &settings, finished).await;
    }
}

/// Records `finished` in one group-commit job (final failures, which also
/// disable their endpoint, each in a transaction of its own), and tells each
/// caller whether its outcome was written.
pub async fn record_batch<S: DeliveryStores>(store: &S, settings: &WebhookSettings, finished: Vec<Finished>) {
    let now = Timestamp::now();
    let mut usual: Vec<(Finished, Plan)> = Vec::with_capacity(finished.len());
    let mut unused: Vec<Finished> = Vec::new();
    for f in finished {
        let Some(sent) = &f.sent else {
            unused.push(f);
            continue;
        };
        let plan = match Plan::new(settings, &f.delivery, sent, now) {
            Ok(plan) => plan,
            Err(e) => {
                warn_unrecorded(&f.delivery, &e);
                let _ = f.done.send(false);
                continue;
            }
        };
        if plan.exhausted {
            let held = record(store, settings, &f.delivery, &f.endpoint, &f.token, sent)
                .await
                .unwrap_or_else(|e| {
                    warn_unrecorded(&f.delivery, &e);
                    false
                });
            let _ = f.done.send(held);
        } else {
            usual.push((f, plan));
        }
    }
    if usual.is_empty() && unused.is_empty() {
        return;
    }
    let mut work = UnitOfWork::new();
    {
        let rows: Vec<(&AttemptRow, &str)> = usual.iter().map(|(f, p)| (&p.attempt, &*f.token)).collect();
        store.insert_attempts_if_leased(&mut work, &rows);
    }
    let finishes: Vec<Finish<'_>> = usual
        .iter()
        .map(|(f, p)| Finish {
            key: key_of(&f.delivery),
            token: &f.token,
            outcome: p.outcome(),
        })
        .collect();
    let written = store.finish_deliveries(&mut work, &finishes);
    for f in &unused {
        store.release_delivery(&mut work, key_of(&f.delivery), &f.token);
    }
    drop(finishes);
    let result = store.commit(work).await;
    // Which outcomes were written: all of them, unless some lease ran out
    // (then the attempt rows say which, as each was inserted under its lease).
    let held: Result<Option<HashSet<String>>, StoreError> = match result {
        Ok(()) if usize::try_from(written.total()).ok() == Some(usual.len()) => Ok(None),
        Ok(()) => {
            let ids: Vec<&str> = usual.iter().map(|(_, p)| p.attempt.id.as_str()).collect();
            store
                .recorded_attempts(&ids)
                .await
                .map(|found| Some(found.into_iter().collect()))
        }
        Err(e) => Err(e),
    };
    for f in unused {
        let _ = f.done.send(held.is_ok());
    }
    for (f, plan) in usual {
        let written = match &held {
            Ok(None) => true,
            Ok(Some(ids)) => ids.contains(&plan.attempt.id),
            Err(e) => {
                warn_unrecorded(&f.delivery, e);
                false
            }
        };
        if written {
            plan.log();
        } else if held.is_ok() {
            tracing::debug!(endpoint = %f.delivery.endpoint_id, "webhook lease ran out before the attempt was recorded");
        }
        let _ = f.done.send(written);
    }
}

fn key_of(d: &DeliveryRow) -> DeliveryKey<'_> {
    DeliveryKey {
        endpoint_id: &d.endpoint_id,
        event_id: &d.event_id,
    }
}

fn warn_unrecorded(d: &DeliveryRow, e: &StoreError) {
    tracing::warn!(
        endpoint = %d.endpoint_id,
        event = %d.event_id,
        error = %e,
        "webhook delivery could not be recorded; it is sent again after its lease"
    );
}

/// A final failure: the attempt and the delivery's end, and, if the
/// endpoint is still enabled, its disabling with the pending deliveries
/// given up, the `webhook_endpoint.disabled` event and its audit entry, all
/// in one unit of work. `Ok(false)` if the lease was no longer the caller's
/// (nothing written).
async fn record_final_failure<S: DeliveryStores>(
    store: &S,
    payloads: Payloads,
    plan: &Plan,
    d: &DeliveryRow,
    endpoint: &EndpointRow,
    token: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    // The endpoint's state is read first and its change made conditional on
    // it: a unit that fails was either refused the lease or raced another
    // disabling, which the second pass (without the disabling) tells apart.
    for with_disable in [true, false] {
        let current = store.get_endpoint_any(&endpoint.id).await?;
        let enabled = current.as_ref().filter(|row| row.status == "enabled");
        let mut work = UnitOfWork::new();
        store.insert_attempts_if_leased(&mut work, &[(&plan.attempt, token)]);
        // The lease must still be the caller's, or nothing is written.
        store.finish_leased_delivery(&mut work, key_of(d), token, &plan.outcome());
        if let (true, Some(row)) = (with_disable, enabled) {
            disable(store, &mut work, payloads, row, d, now)?;
        }
        match store.commit(work).await {
            Ok(()) => return Ok(true),
            Err(StoreError::Conflict) if with_disable && enabled.is_some() => continue,
            Err(StoreError::Conflict) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Adds the disabling of an enabled endpoint (as read in `row`) to `work`:
/// conditional on it still being enabled, its pending deliveries given up,
/// the `webhook_endpoint.disabled` event and its audit entry.
fn disable<S: WebhookEndpointStore + EventStore>(
    store: &S,
    work: &mut UnitOfWork,
    payloads: Payloads,
    row: &EndpointRow,
    d: &DeliveryRow,
    now: Timestamp,
) -> Result<(), StoreError> {
    let at = now.as_millis();
    store.disable_endpoint(work, &row.id, at);
    store.fail_pending_deliveries(work, &row.id, "endpoint_disabled", at);
    let disabled = EndpointRow {
        status: "disabled".to_owned(),
        disabled_at: Some(at),
        updated_at: at,
        ..row.clone()
    };
    let data = (payloads.endpoint)(&WebhookEndpoint::from_row(&disabled, at)?)
        .map_err(|e| StoreError::Corrupt(format!("webhook_endpoint.disabled event: {e}")))?;
    let event = EventRow {
        id: EventId::generate_time_ordered(now)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .to_string(),
        merchant_id: row.merchant_id.clone(),
        mode: row.mode.clone(),
        event_type: EventType::WebhookEndpointDisabled.as_str().to_owned(),
        object_id: row.id.clone(),
        data,
        created_at: at,
    };
    store.insert_events(work, std::slice::from_ref(&event));
    let mut audit = AuditEvent::new("webhook_endpoint.disabled", Outcome::Success);
    audit.merchant_id = Some(row.merchant_id.clone());
    audit.mode = Mode::parse(&row.mode);
    audit.resource = Some(row.id.clone());
    audit.user_agent = Some("paywarden webhook delivery".to_owned());
    audit.reason = Some(format!(
        "delivery of {} failed for the whole retry window ({} attempts)",
        d.event_id,
        d.attempts + 1
    ));
    work.audit(audit);
    tracing::warn!(endpoint = %row.id, "webhook endpoint disabled after its retry window");
    Ok(())
}
