//! The delivery worker: a dispatcher that claims due deliveries under a
//! lease and starts each attempt as a task of its own, so that one
//! endpoint's slow or failing receiver delays only itself.
//!
//! A round takes the due deliveries fairly across endpoints (at most
//! `max_in_flight_per_endpoint` in flight per endpoint, counting every
//! replica's leases: [`store::webhook_deliveries::due`]), takes a slot for
//! each in this gateway's [`Lanes`] (its own per-endpoint cap, one attempt
//! at a time for a failing endpoint, and a total cap), claims them all in
//! one group-commit job, and starts their attempts without waiting for
//! them. Each attempt ([`attempt`]) is cut at the attempt deadline and
//! recorded as it completes ([`record`]); its slot then comes back and wakes
//! the dispatcher, which claims more at once when a backlog is waiting.
//!
//! Invariants: an attempt is sent only while this worker holds the lease,
//! and its outcome is written only if it still does; the attempt deadline
//! ends an attempt before its lease, so no other replica sends a delivery
//! while it is in flight; a delivery is marked succeeded only after a 2xx,
//! so a crash anywhere repeats the attempt after its lease (at least once)
//! but never loses it. Secrets are opened for the signature only and never
//! logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::domain::api_key::Mode;
use crate::domain::ids::{EventId, MerchantId};
use crate::domain::random;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::group_commit::WriteJob;
use crate::store::webhook_deliveries::DeliveryRow;
use crate::store::{self, Store, StoreError};
use crate::vault::KekProvider;

use super::attempt::{self, Sent};
use super::lanes::{Lanes, Outcome};
use super::record;
use super::settings::WebhookSettings;

/// How long in-flight attempts may finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The running worker; [`DeliveryWorker::shutdown`] stops it.
pub struct DeliveryWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DeliveryWorker {
    pub fn spawn(store: Store, keyring: Arc<dyn KekProvider>, settings: WebhookSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let lanes = Lanes::new(settings.max_in_flight_per_endpoint, settings.max_in_flight);
        let worker = Arc::new(Worker {
            store,
            keyring,
            settings,
            lanes: Mutex::new(lanes),
            freed: Notify::new(),
        });
        let task = tokio::spawn(worker.run(stopped));
        Self { stop, task }
    }

    /// Stops claiming; attempts in flight get a short grace, then are dropped
    /// (their leases expire and they are sent again: at least once).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

struct Worker {
    store: Store,
    keyring: Arc<dyn KekProvider>,
    settings: WebhookSettings,
    /// Slots per endpoint. A std mutex: held for a few map operations, never
    /// across an await.
    lanes: Mutex<Lanes>,
    /// Signalled whenever an attempt gives its slot back.
    freed: Notify,
}

/// An attempt's slot in the lanes, given back when dropped (also if the
/// attempt's task is cancelled), with what the attempt came to.
struct Slot {
    worker: Arc<Worker>,
    endpoint_id: String,
    outcome: Outcome,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.worker
            .lanes()
            .give_back(&self.endpoint_id, self.outcome, Instant::now());
        self.worker.freed.notify_one();
    }
}

impl Worker {
    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        // Nothing panics while holding it; if something did, the counts are
        // still whole numbers and the worker carries on.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut attempts = JoinSet::new();
        loop {
            if *stopped.borrow() {
                break;
            }
            while let Some(done) = attempts.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a webhook attempt task failed");
                }
            }
            // A round stuck on a silent database is given up at the lease's
            // end (a claim dropped is rolled back; deliveries claimed and not
            // recorded are sent again once their lease expires).
            let round = tokio::time::timeout(self.settings.lease, self.round(&mut attempts));
            let mut grace = stopped.clone();
            let full = tokio::select! {
                result = round => match result {
                    Ok(Ok(full)) => full,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "webhook delivery round failed");
                        false
                    }
                    Err(_) => {
                        tracing::warn!("webhook delivery round did not finish within the lease; its deliveries will be sent again");
                        false
                    }
                },
                () = async move {
                    let _ = grace.wait_for(|s| *s).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                } => break,
            };
            if full {
                // A whole batch was claimed: more may be due right now.
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                // A slot came back: a backlog held back by a cap may go on.
                () = self.freed.notified() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
        }
        // Attempts in flight get a short grace to finish and be recorded;
        // the rest are dropped with the set (sent again after their lease).
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while attempts.join_next().await.is_some() {} }).await;
    }

    /// Claims due deliveries that have a free slot, in one group-commit job,
    /// and starts their attempts. `true` if it claimed a whole batch.
    async fn round(self: &Arc<Self>, attempts: &mut JoinSet<()>) -> Result<bool, StoreError> {
        let free = {
            let mut lanes = self.lanes();
            lanes.forget_idle(Instant::now());
            lanes.free()
        };
        let limit = i64::try_from(free).unwrap_or(i64::MAX).min(self.settings.batch);
        if limit <= 0 {
            return Ok(false);
        }
        let now = Timestamp::now();
        let per_endpoint = i64::try_from(self.settings.max_in_flight_per_endpoint).unwrap_or(i64::MAX);
        let due = store::webhook_deliveries::due(self.store.reader(), now.as_millis(), per_endpoint, limit).await?;
        if due.is_empty() {
            return Ok(false);
        }
        let until = now.saturating_add(self.settings.lease).as_millis();
        let mut claims: Vec<(Slot, DeliveryRow, String, Arc<AtomicBool>)> = Vec::with_capacity(due.len());
        let mut ops = Vec::with_capacity(due.len());
        for d in due {
            if !self.lanes().try_take(&d.endpoint_id, Instant::now()) {
                continue;
            }
            let slot = Slot {
                worker: Arc::clone(self),
                endpoint_id: d.endpoint_id.clone(),
                outcome: Outcome::NotSent,
            };
            // On an error the slots taken so far are given back as they drop.
            let token = random::base62_string(24).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let won = Arc::new(AtomicBool::new(false));
            ops.push(store::webhook_deliveries::claim_op(
                &d.endpoint_id,
                &d.event_id,
                &token,
                now.as_millis(),
                until,
                Arc::clone(&won),
            ));
            claims.push((slot, d, token, won));
        }
        if claims.is_empty() {
            return Ok(false);
        }
        self.store.group_commit().run(WriteJob::new(ops, Vec::new())).await?;
        let claimed = i64::try_from(claims.len()).unwrap_or(i64::MAX);
        for (slot, d, token, won) in claims {
            if won.load(Ordering::Relaxed) {
                let worker = Arc::clone(self);
                attempts.spawn(async move { worker.attempt(slot, d, token).await });
            }
        }
        Ok(claimed >= limit)
    }

    /// One claimed delivery: read, send, record; the slot comes back at the end.
    async fn attempt(self: Arc<Self>, mut slot: Slot, delivery: DeliveryRow, token: String) {
        if let Err(e) = self.deliver(&mut slot, &delivery, &token).await {
            tracing::warn!(
                endpoint = %delivery.endpoint_id,
                event = %delivery.event_id,
                error = %e,
                "webhook delivery could not be recorded; it is sent again after its lease"
            );
        }
    }

    async fn deliver(&self, slot: &mut Slot, delivery: &DeliveryRow, token: &str) -> Result<(), StoreError> {
        let Some(endpoint) = store::webhook_endpoints::get_any(self.store.reader(), &delivery.endpoint_id).await?
        else {
            return Ok(());
        };
        if endpoint.status != "enabled" {
            // Disabled or deleted meanwhile: that change gave up its deliveries.
            return Ok(());
        }
        // The event is read in the endpoint's own merchant and mode: an
        // endpoint is only ever sent events of its own world.
        let Some(mode) = Mode::parse(&endpoint.mode) else {
            return Err(StoreError::Corrupt("webhook_endpoints.mode".into()));
        };
        let tenant = Tenant::new(MerchantId::from_trusted(delivery.merchant_id.clone()), mode);
        let event_id = EventId::from_trusted(delivery.event_id.clone());
        let Some(event) = store::events::get(self.store.reader(), &tenant, &event_id).await? else {
            return Ok(());
        };
        let sent = match attempt::secrets(self.keyring.as_ref(), &endpoint) {
            Ok(secrets) => attempt::send(&self.settings, &endpoint, &event, &secrets).await,
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "webhook secret cannot be opened");
                Sent::not_sent("secret_unavailable")
            }
        };
        // The endpoint's health, whether or not the record below succeeds.
        slot.outcome = if sent.delivered() {
            Outcome::Delivered
        } else {
            Outcome::Failed
        };
        if !record::record(&self.store, &self.settings, delivery, &endpoint, token, &sent).await? {
            tracing::debug!(endpoint = %delivery.endpoint_id, "webhook lease ran out before the attempt was recorded");
        }
        Ok(())
    }
}
