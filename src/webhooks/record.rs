//! Recording an attempt: the attempt row and the delivery's new state
//! (succeeded, pending with its next retry, or failed), written under the
//! lease; a final failure also disables the endpoint and emits
//! `webhook_endpoint.disabled` (with its audit entry), in one transaction.
//!
//! Invariants: nothing is written unless the lease is still the caller's
//! (every statement is conditional on its token), so a worker whose lease
//! ran out cannot overwrite the next owner's result; a delivery is marked
//! succeeded only with a 2xx; the usual outcome (anything but a final
//! failure) goes through the group commit, so records share commits with
//! each other and with payments instead of paying one each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::event::EventType;
use crate::domain::ids::{EventId, WebhookAttemptId};
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::group_commit::WriteJob;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryRow};
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::{self, Store, StoreError};

use super::attempt::Sent;
use super::endpoint::WebhookEndpoint;
use super::settings::WebhookSettings;

/// Writes the attempt and the delivery's new state under the lease `token`.
/// `Ok(false)` if the lease was no longer the caller's (nothing written).
pub async fn record(
    store: &Store,
    settings: &WebhookSettings,
    d: &DeliveryRow,
    endpoint: &EndpointRow,
    token: &str,
    sent: &Sent,
) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let failures = d.attempts + 1;
    let delivered = sent.delivered();
    let exhausted = !delivered && settings.retry.exhausted(d.created_at, now.as_millis());
    let (status, next) = if delivered {
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
    let outcome = AttemptOutcome {
        status,
        next_attempt_at: next,
        status_code: sent.status_code,
        error: error.as_deref(),
        now: now.as_millis(),
    };
    let held = if exhausted {
        let mut tx = store.begin().await?;
        if !store::webhook_deliveries::finish_attempt(&mut *tx, &d.endpoint_id, &d.event_id, token, &outcome).await? {
            return Ok(false);
        }
        store::webhook_attempts::insert(&mut *tx, &attempt).await?;
        disable(&mut tx, endpoint, d, now).await?;
        tx.commit().await?;
        true
    } else {
        // The attempt first: it is written only while the lease is held, and
        // the second statement releases it.
        let held = Arc::new(AtomicBool::new(false));
        let job = WriteJob::new(
            vec![
                store::webhook_attempts::insert_if_leased_op(&attempt, token),
                store::webhook_deliveries::finish_attempt_op(
                    &d.endpoint_id,
                    &d.event_id,
                    token,
                    &outcome,
                    Arc::clone(&held),
                ),
            ],
            Vec::new(),
        );
        store.group_commit().run(job).await?;
        held.load(Ordering::Relaxed)
    };
    if held {
        tracing::info!(
            endpoint = %d.endpoint_id,
            event = %d.event_id,
            attempt = failures,
            status_code = sent.status_code.unwrap_or(0),
            error = error.as_deref().unwrap_or("-"),
            duration_ms = sent.duration_ms,
            outcome = status,
            "webhook attempt"
        );
    }
    Ok(held)
}

async fn disable(
    tx: &mut store::Tx,
    endpoint: &EndpointRow,
    d: &DeliveryRow,
    now: Timestamp,
) -> Result<(), StoreError> {
    if !store::webhook_endpoints::disable(&mut **tx, &endpoint.id, now.as_millis()).await? {
        return Ok(());
    }
    store::webhook_deliveries::fail_pending_of_endpoint(&mut **tx, &endpoint.id, "endpoint_disabled", now.as_millis())
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
