//! The delivery worker: claims due deliveries under a lease, POSTs each event
//! to its endpoint with a `Paywarden-Signature`, records the attempt, and
//! schedules a retry with backoff, or gives up after the retry window:
//! the delivery fails, the endpoint is disabled and a
//! `webhook_endpoint.disabled` event says so (one transaction).
//!
//! Invariants: an attempt is sent only while this worker holds the lease,
//! and its outcome is written only if it still does; a delivery is marked
//! succeeded only after a 2xx, so a crash anywhere repeats the attempt
//! (at least once) but never loses it. Secrets are opened for the signature
//! only and never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::api_key::Mode;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, MerchantId, WebhookAttemptId};
use crate::domain::random;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryRow};
use crate::store::webhook_endpoints::{EndpointRow, SealedColumns};
use crate::store::{self, Store, StoreError};
use crate::vault::KekProvider;

use super::endpoint::WebhookEndpoint;
use super::payload::EventView;
use super::settings::WebhookSettings;
use super::{secret, signature, ssrf};

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
        let worker = Worker {
            store,
            keyring,
            settings,
        };
        let task = tokio::spawn(worker.run(stopped));
        Self { stop, task }
    }

    /// Stops polling; attempts in flight get a short grace, then are dropped
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
}

/// What one HTTP attempt came to.
struct Sent {
    status_code: Option<i64>,
    error: Option<&'static str>,
    duration_ms: i64,
}

impl Sent {
    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        loop {
            if *stopped.borrow() {
                return;
            }
            // A round stuck on a silent database is given up at the lease's
            // end (a transaction dropped is rolled back; deliveries claimed
            // and not recorded are sent again once their lease expires).
            let round = tokio::time::timeout(self.settings.lease, self.round());
            let mut grace = stopped.clone();
            let full = tokio::select! {
                result = round => match result {
                    Ok(Ok(claimed)) => claimed >= self.settings.batch,
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
                } => return,
            };
            if full {
                // More may be due right now: no pause while there is a backlog.
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// Claims up to a batch of due deliveries (in one transaction) and sends
    /// them concurrently; returns how many it claimed.
    async fn round(&self) -> Result<i64, StoreError> {
        let now = Timestamp::now();
        let due = store::webhook_deliveries::due(self.store.reader(), now.as_millis(), self.settings.batch).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let until = now.saturating_add(self.settings.lease).as_millis();
        let mut claimed = Vec::new();
        let mut tx = self.store.begin().await?;
        for d in due {
            let token = random::base62_string(24).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let won =
                store::webhook_deliveries::claim(&mut *tx, &d.endpoint_id, &d.event_id, &token, now.as_millis(), until)
                    .await?;
            if won {
                claimed.push((d, token));
            }
        }
        tx.commit().await?;
        let count = i64::try_from(claimed.len()).unwrap_or(i64::MAX);
        let results = join_all(claimed.iter().map(|(d, token)| self.deliver(d, token))).await;
        for r in results {
            if let Err(e) = r {
                tracing::warn!(error = %e, "webhook delivery could not be recorded");
            }
        }
        Ok(count)
    }

    async fn deliver(&self, delivery: &DeliveryRow, token: &str) -> Result<(), StoreError> {
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
        let sent = match self.secrets(&endpoint) {
            Ok(secrets) => self.send(&endpoint, &event, &secrets).await,
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "webhook secret cannot be opened");
                Sent {
                    status_code: None,
                    error: Some("secret_unavailable"),
                    duration_ms: 0,
                }
            }
        };
        self.record(delivery, &endpoint, token, &sent).await
    }

    /// The secrets that sign now: the current one, and the previous one
    /// while its overlap lasts.
    fn secrets(&self, e: &EndpointRow) -> Result<Vec<secret::WebhookSecret>, crate::vault::VaultError> {
        let malformed = || crate::vault::VaultError::Malformed("webhook secret columns");
        let current = SealedColumns {
            kek_version: e.kek_version.ok_or_else(malformed)?,
            wrapped_dek: e.secret_wrapped_dek.clone().ok_or_else(malformed)?,
            ciphertext: e.secret_ciphertext.clone().ok_or_else(malformed)?,
        };
        let mut secrets = vec![secret::open(self.keyring.as_ref(), &e.id, &e.merchant_id, &current)?];
        let now = Timestamp::now().as_millis();
        if let (Some(v), Some(w), Some(c), Some(until)) = (
            e.previous_kek_version,
            &e.previous_wrapped_dek,
            &e.previous_ciphertext,
            e.previous_expires_at,
        ) {
            if until > now {
                let previous = SealedColumns {
                    kek_version: v,
                    wrapped_dek: w.clone(),
                    ciphertext: c.clone(),
                };
                secrets.push(secret::open(self.keyring.as_ref(), &e.id, &e.merchant_id, &previous)?);
            }
        }
        Ok(secrets)
    }

    async fn send(&self, endpoint: &EndpointRow, event: &EventRow, secrets: &[secret::WebhookSecret]) -> Sent {
        let started = Instant::now();
        let elapsed = |started: Instant| i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let failed = |error: &'static str| Sent {
            status_code: None,
            error: Some(error),
            duration_ms: elapsed(started),
        };
        let mode = Mode::parse(&endpoint.mode).unwrap_or(Mode::Live);
        // The URL policy again: it may have changed since the endpoint was
        // created (e.g. dev mode off). Names are checked by the live client's
        // resolver, at connect time.
        let url = match ssrf::check_url(&endpoint.url, mode, self.settings.dev) {
            Ok(u) => u,
            Err(ssrf::UrlError::NonPublicAddress) => return failed("blocked_address"),
            Err(_) => return failed("invalid_url"),
        };
        let Ok(view) = EventView::from_row(event) else {
            return failed("invalid_event");
        };
        let body = view.to_body();
        let timestamp = Timestamp::now().as_secs();
        let header = signature::header_value(
            secrets.iter().map(secret::WebhookSecret::expose_secret),
            timestamp,
            &body,
        );
        let client = match mode {
            Mode::Live => &self.settings.live_client,
            Mode::Test => &self.settings.test_client,
        };
        let result = client
            .post(url.url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::HEADER, header)
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) => Sent {
                status_code: Some(i64::from(response.status().as_u16())),
                error: None,
                duration_ms: elapsed(started),
            },
            Err(e) => failed(classify(&e)),
        }
    }

    /// Writes the attempt and the delivery's new state under the lease; on a
    /// final failure also disables the endpoint and emits the event.
    async fn record(
        &self,
        d: &DeliveryRow,
        endpoint: &EndpointRow,
        token: &str,
        sent: &Sent,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let failures = d.attempts + 1;
        let delivered = sent.delivered();
        let exhausted = !delivered && self.settings.retry.exhausted(d.created_at, now.as_millis());
        let (status, next) = if delivered {
            ("succeeded", now.as_millis())
        } else if exhausted {
            ("failed", now.as_millis())
        } else {
            (
                "pending",
                now.saturating_add(self.settings.retry.delay(failures)).as_millis(),
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
        let mut tx = self.store.begin().await?;
        let outcome = AttemptOutcome {
            status,
            next_attempt_at: next,
            status_code: sent.status_code,
            error: error.as_deref(),
            now: now.as_millis(),
        };
        if !store::webhook_deliveries::finish_attempt(&mut *tx, &d.endpoint_id, &d.event_id, token, &outcome).await? {
            // Our lease ran out and another worker owns the delivery now.
            return Ok(());
        }
        store::webhook_attempts::insert(&mut *tx, &attempt).await?;
        if exhausted {
            self.disable(&mut tx, endpoint, d, now).await?;
        }
        tx.commit().await?;
        tracing::info!(
            endpoint = %d.endpoint_id,
            event = %d.event_id,
            attempt = failures,
            status_code = sent.status_code.unwrap_or(0),
            error = error.as_deref().unwrap_or("-"),
            outcome = status,
            "webhook attempt"
        );
        Ok(())
    }

    async fn disable(
        &self,
        tx: &mut store::Tx,
        endpoint: &EndpointRow,
        d: &DeliveryRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !store::webhook_endpoints::disable(&mut **tx, &endpoint.id, now.as_millis()).await? {
            return Ok(());
        }
        store::webhook_deliveries::fail_pending_of_endpoint(
            &mut **tx,
            &endpoint.id,
            "endpoint_disabled",
            now.as_millis(),
        )
        .await?;
        let Some(row) = store::webhook_endpoints::get_any(&mut **tx, &endpoint.id).await? else {
            return Ok(());
        };
        let view = WebhookEndpoint::from_row(&row, now.as_millis())?;
        let event = EventRow {
            id: EventId::generate_time_ordered(now)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .to_string(),
            merchant_id: endpoint.merchant_id.clone(),
            mode: endpoint.mode.clone(),
            event_type: EventType::WebhookEndpointDisabled.as_str().to_owned(),
            object_id: endpoint.id.clone(),
            data: view.to_json(),
            created_at: now.as_millis(),
        };
        store::events::insert(tx, std::slice::from_ref(&event)).await?;
        let mut audit = AuditEvent::new("webhook_endpoint.disabled", Outcome::Success);
        audit.merchant_id = Some(endpoint.merchant_id.clone());
        audit.resource = Some(endpoint.id.clone());
        audit.user_agent = Some("paywarden webhook delivery".to_owned());
        audit.reason = Some(format!(
            "delivery of {} failed for the whole retry window ({} attempts)",
            d.event_id,
            d.attempts + 1
        ));
        store::audit::append(tx, &[audit]).await?;
        tracing::warn!(endpoint = %endpoint.id, "webhook endpoint disabled after its retry window");
        Ok(())
    }
}

/// A short, stable class for a failed request (shown through the API; never
/// the error text, which could carry internal addresses).
fn classify(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<ssrf::BlockedAddress>().is_some() {
            return "blocked_address";
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return "tls_error";
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection_failed"
    } else {
        "request_failed"
    }
}
