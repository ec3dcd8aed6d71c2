//! The delivery worker: a dispatcher that claims due deliveries under a
//! lease, in batches, and starts each attempt as a task of its own, so that
//! one endpoint's slow or failing receiver delays only itself.
//!
//! A round takes the due deliveries fairly across endpoints (at most
//! 2 × [`AHEAD`] × `max_in_flight_per_endpoint` leased per endpoint, counting
//! every replica's leases:
//! [`WebhookDeliveryStore::due_deliveries`](crate::store::WebhookDeliveryStore::due_deliveries)),
//! takes a slot for each in this gateway's [`Lanes`] (its own per-endpoint cap, larger
//! for an endpoint that answers quickly, one at a time for a failing one,
//! and a total cap), claims them all under one lease token in a few
//! multi-row statements of one group-commit job, reads their endpoints,
//! events and secrets at once ([`Round`]), and starts their attempts without
//! waiting for them. Each attempt waits for one of its endpoint's permits
//! (at most `max_in_flight_per_endpoint` requests at once to an endpoint
//! from this gateway), is sent ([`attempt`]), cut at the attempt deadline,
//! its slot comes back (which wakes the dispatcher) and it is handed to the
//! [`record::recorder`], which records the attempts that finished close
//! together in one job, while the dispatcher claims more at once when a
//! backlog is waiting.
//!
//! Invariants: an attempt is sent only while this worker holds the lease,
//! with time left on it for the whole attempt deadline and an eighth of the
//! lease besides (a delivery that waited too long for a permit is given back
//! unsent), and its outcome is written only if it still holds it; no other
//! replica sends a delivery while its attempt is in flight; a delivery is
//! marked succeeded only after a 2xx, so a crash anywhere repeats the attempt
//! after its lease (at least once) but never loses it. Secrets are opened
//! once per endpoint and round, for the signature only, and never logged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::domain::random;
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_deliveries::{DeliveryKey, DeliveryRow};
use crate::store::StoreError;
use crate::vault::KekProvider;

use super::attempt::{self, Sent};
use super::lanes::{Lanes, Outcome, AHEAD, QUICK};
use super::record::{self, Finished};
use super::round::{Round, Target};
use super::settings::WebhookSettings;
use super::DeliveryStores;

/// How long in-flight attempts may finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How soon the dispatcher looks again while deliveries flow (at most the
/// poll interval).
const BUSY_POLL: Duration = Duration::from_millis(20);

/// Finished attempts waiting for the recorder, at most.
const RECORD_QUEUE: usize = 4096;

/// The running worker; [`DeliveryWorker::shutdown`] stops it.
pub struct DeliveryWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DeliveryWorker {
    /// Starts the worker on `store` (the gateway's:
    /// [`Store`](crate::store::Store)).
    pub fn spawn<S: DeliveryStores>(store: S, keyring: Arc<dyn KekProvider>, settings: WebhookSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let lanes = Lanes::new(settings.max_in_flight_per_endpoint, settings.max_in_flight);
        let (records, queue) = mpsc::channel(RECORD_QUEUE);
        let recorder = tokio::spawn(record::recorder(store.clone(), settings.clone(), queue));
        let worker = Arc::new(Worker {
            store,
            keyring,
            settings,
            lanes: Mutex::new(lanes),
            permits: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            records,
        });
        let task = tokio::spawn(worker.run(stopped, recorder));
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

struct Worker<S> {
    store: S,
    keyring: Arc<dyn KekProvider>,
    settings: WebhookSettings,
    /// Slots per endpoint. A std mutex: held for a few map operations, never
    /// across an await.
    lanes: Mutex<Lanes>,
    /// Per endpoint, the permits of the requests sent to it at once.
    permits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Signalled whenever an attempt gives its slot back.
    freed: Notify,
    /// To the recorder.
    records: mpsc::Sender<Finished>,
}

/// An attempt's slot in the lanes, given back when dropped (also if the
/// attempt's task is cancelled), with what the attempt came to.
struct Slot<S: DeliveryStores> {
    worker: Arc<Worker<S>>,
    endpoint_id: String,
    outcome: Outcome,
}

impl<S: DeliveryStores> Drop for Slot<S> {
    fn drop(&mut self) {
        self.worker
            .lanes()
            .give_back(&self.endpoint_id, self.outcome, Instant::now());
        self.worker.freed.notify_one();
    }
}

/// A claimed delivery, ready for its attempt.
struct Claimed<S: DeliveryStores> {
    slot: Slot<S>,
    delivery: DeliveryRow,
    token: Arc<str>,
    /// When its lease runs out (by this gateway's clock, from before the claim).
    lease_ends: Instant,
    target: Target,
    permits: Arc<Semaphore>,
}

impl<S: DeliveryStores> Worker<S> {
    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        // Nothing panics while holding it; if something did, the counts are
        // still whole numbers and the worker carries on.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The permits of requests to `endpoint`, shared by its attempts.
    fn permits_of(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut permits = self.permits.lock().unwrap_or_else(PoisonError::into_inner);
        // Endpoints with no attempt holding their permits are forgotten.
        if permits.len() > 64 {
            permits.retain(|_, p| Arc::strong_count(p) > 1);
        }
        let cap = self.settings.max_in_flight_per_endpoint.max(1);
        Arc::clone(
            permits
                .entry(endpoint.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(cap))),
        )
    }

    async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>, recorder: JoinHandle<()>) {
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
            let (claimed, full) = tokio::select! {
                result = round => match result {
                    Ok(Ok(claimed)) => claimed,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "webhook delivery round failed");
                        (false, false)
                    }
                    Err(_) => {
                        tracing::warn!("webhook delivery round did not finish within the lease; its deliveries will be sent again");
                        (false, false)
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
            // While deliveries flow, look again soon: events keep coming,
            // and the last of a burst should not wait for the idle poll.
            let poll = if claimed || !attempts.is_empty() {
                self.settings.poll_interval.min(BUSY_POLL)
            } else {
                self.settings.poll_interval
            };
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                // A slot came back: a backlog held back by a cap may go on.
                () = self.freed.notified() => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
        }
        // Attempts in flight get a short grace to finish and be recorded
        // (each waits for its record); the rest are dropped with the set
        // (sent again after their lease).
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async { while attempts.join_next().await.is_some() {} }).await;
        recorder.abort();
    }

    /// Claims due deliveries that have a free slot, in one group-commit job,
    /// and starts their attempts. Whether it claimed any, and whether it
    /// claimed a whole batch.
    async fn round(self: &Arc<Self>, attempts: &mut JoinSet<()>) -> Result<(bool, bool), StoreError> {
        let free = {
            let mut lanes = self.lanes();
            lanes.forget_idle(Instant::now());
            lanes.free()
        };
        let limit = i64::try_from(free).unwrap_or(i64::MAX).min(self.settings.batch);
        if limit <= 0 {
            return Ok((false, false));
        }
        let started = Instant::now();
        let now = Timestamp::now();
        // Leases per endpoint: those claimed and not yet sent (the lanes'
        // caps) and as many again being recorded.
        let per_endpoint =
            i64::try_from(self.settings.max_in_flight_per_endpoint.saturating_mul(2 * AHEAD)).unwrap_or(i64::MAX);
        let due = self.store.due_deliveries(now.as_millis(), per_endpoint, limit).await?;
        if due.is_empty() {
            return Ok((false, false));
        }
        let mut taken: Vec<(Slot<S>, DeliveryRow)> = Vec::with_capacity(due.len());
        for d in due {
            if !self.lanes().try_take(&d.endpoint_id, Instant::now()) {
                continue;
            }
            // On an error the slots taken so far are given back as they drop.
            let slot = Slot {
                worker: Arc::clone(self),
                endpoint_id: d.endpoint_id.clone(),
                outcome: Outcome::NotSent,
            };
            taken.push((slot, d));
        }
        if taken.is_empty() {
            return Ok((false, false));
        }
        let asked = taken.len();
        let token: Arc<str> = random::base62_string(24)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .into();
        let until = now.saturating_add(self.settings.lease).as_millis();
        let lost: Option<HashSet<(String, String)>> = {
            let keys: Vec<DeliveryKey<'_>> = taken
                .iter()
                .map(|(_, d)| DeliveryKey {
                    endpoint_id: &d.endpoint_id,
                    event_id: &d.event_id,
                })
                .collect();
            let mut work = UnitOfWork::new();
            let won = self
                .store
                .claim_deliveries(&mut work, &keys, &token, now.as_millis(), until);
            self.store.commit(work).await?;
            if usize::try_from(won.total()).ok() == Some(asked) {
                None
            } else {
                // Another replica took some of them first: which are ours.
                let ours: HashSet<(String, String)> = self
                    .store
                    .claimed_deliveries(&keys, &token)
                    .await?
                    .into_iter()
                    .collect();
                Some(
                    keys.iter()
                        .map(|k| (k.endpoint_id.to_owned(), k.event_id.to_owned()))
                        .filter(|k| !ours.contains(k))
                        .collect(),
                )
            }
        };
        if let Some(lost) = &lost {
            taken.retain(|(_, d)| !lost.contains(&(d.endpoint_id.clone(), d.event_id.clone())));
        }
        let round = {
            let deliveries: Vec<&DeliveryRow> = taken.iter().map(|(_, d)| d).collect();
            Round::load(&self.store, self.keyring.as_ref(), &deliveries).await?
        };
        let lease_ends = started + self.settings.lease;
        for (slot, delivery) in taken {
            // Endpoint disabled or event gone meanwhile: nothing to send (the
            // lease runs out; a disabled endpoint's deliveries are not due).
            let Some(target) = round.target(&delivery) else {
                continue;
            };
            let claimed = Claimed {
                permits: self.permits_of(&delivery.endpoint_id),
                slot,
                delivery,
                token: Arc::clone(&token),
                lease_ends,
                target,
            };
            let worker = Arc::clone(self);
            attempts.spawn(async move { worker.attempt(claimed).await });
        }
        Ok((true, i64::try_from(asked).unwrap_or(i64::MAX) >= limit))
    }

    /// One claimed delivery: wait for a permit, send, give the slot back,
    /// record.
    async fn attempt(self: Arc<Self>, claimed: Claimed<S>) {
        let Claimed {
            mut slot,
            delivery,
            token,
            lease_ends,
            target,
            permits,
        } = claimed;
        let sent = match permits.acquire_owned().await {
            Ok(permit) if self.lease_left_for_an_attempt(lease_ends) => {
                let sent = match &target.secrets {
                    Some(secrets) => attempt::send(&self.settings, &target.endpoint, &target.event, secrets).await,
                    None => Sent::not_sent("secret_unavailable"),
                };
                drop(permit);
                // The endpoint's health, whether or not the record succeeds.
                slot.outcome = match u64::try_from(sent.duration_ms) {
                    _ if !sent.delivered() => Outcome::Failed,
                    Ok(ms) if Duration::from_millis(ms) < QUICK => Outcome::DeliveredQuickly,
                    _ => Outcome::Delivered,
                };
                Some(sent)
            }
            // Waited too long for a permit (or the worker is stopping): given
            // back unsent, due again at once.
            _ => None,
        };
        // The slot comes back once the request is over: its record is
        // written meanwhile, under the lease, while the next deliveries are
        // claimed and sent (the lease, held until the record, keeps counting
        // against the endpoint's leases in every replica's claims).
        drop(slot);
        let (done, written) = oneshot::channel();
        let finished = Finished {
            delivery,
            endpoint: target.endpoint,
            token,
            sent,
            done,
        };
        if self.records.send(finished).await.is_err() {
            return;
        }
        // Recorded (or not: it is sent again after its lease).
        let _ = written.await;
    }

    /// Whether an attempt started now ends, with an eighth of the lease to
    /// spare for its record, before the lease.
    fn lease_left_for_an_attempt(&self, lease_ends: Instant) -> bool {
        let needed = self.settings.attempt_deadline() + self.settings.lease / 8;
        Instant::now().checked_add(needed).is_some_and(|end| end <= lease_ends)
    }
}
