//! Webhook endpoints: create (the secret is returned once), list, show,
//! update (url, events, enable/disable), delete, rotate the signing secret
//! with an overlap, and list delivery attempts.
//!
//! Invariants: each change commits with its audit entry; the secret exists
//! in clear only in the value returned by `create`/`rotate_secret` and is
//! stored sealed; URLs pass the SSRF policy (live mode: resolved addresses
//! are checked too) before anything is written; an endpoint of another
//! merchant or of the other mode is reported exactly like a missing one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::api_key::Mode;
use crate::domain::audit::Outcome;
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_endpoints::{EndpointRow, SealedColumns};
use crate::store::{self, Store, StoreError};
use crate::vault::KekProvider;
use crate::webhooks::endpoint::{parse_events, EventsError, WebhookEndpoint};
use crate::webhooks::secret::{self, WebhookSecret};
use crate::webhooks::ssrf::{self, UrlError};

use super::actor::Actor;
use super::ServiceError;

/// Default overlap during which a rotated-out secret still signs: 24 hours.
pub const DEFAULT_OVERLAP_SECS: i64 = 86_400;
/// Longest overlap a rotation may ask for: 7 days.
pub const MAX_OVERLAP_SECS: i64 = 7 * 86_400;

/// What the endpoint services need besides the store.
pub struct Context<'a> {
    pub store: &'a Store,
    pub keyring: &'a dyn KekProvider,
    /// The gateway runs in development mode (`http://localhost` allowed).
    pub dev: bool,
    pub actor: &'a Actor,
    /// The caller's merchant and mode: the only endpoints it reaches.
    pub tenant: &'a Tenant,
}

impl Context<'_> {
    /// An audit event of this caller about endpoint `id`.
    fn event(&self, action: &str, id: &WebhookEndpointId) -> crate::domain::audit::AuditEvent {
        let mut event = self.actor.event(action, Outcome::Success);
        event.merchant_id = Some(self.tenant.merchant().to_string());
        event.mode = Some(self.tenant.mode());
        event.resource = Some(id.to_string());
        event
    }
}

/// Fields of an update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

fn not_found() -> ServiceError {
    ServiceError::NotFound {
        resource: "webhook_endpoint",
        param: "id",
    }
}

async fn checked_url(raw: &str, mode: Mode, dev: bool) -> Result<String, ServiceError> {
    let url_error = |e: UrlError| {
        let code = match e {
            UrlError::NonPublicAddress | UrlError::Unresolvable => "url_not_allowed",
            _ => "url_invalid",
        };
        ServiceError::invalid("url", code, format!("url {e}"))
    };
    let url = ssrf::check_url(raw, mode, dev).map_err(url_error)?;
    ssrf::resolve_checked(&url, mode).await.map_err(url_error)?;
    Ok(url.as_str().to_owned())
}

fn checked_events(raw: &[String]) -> Result<String, ServiceError> {
    let events = parse_events(raw)
        .map_err(|e: EventsError| ServiceError::invalid("events", "events_invalid", format!("events {e}")))?;
    Ok(store::to_json_column(&events))
}

pub async fn create(
    cx: &Context<'_>,
    url: &str,
    events: &[String],
) -> Result<(WebhookEndpoint, WebhookSecret), ServiceError> {
    let mode = cx.tenant.mode();
    let url = checked_url(url, mode, cx.dev).await?;
    let events = checked_events(events)?;
    let id = WebhookEndpointId::generate()?;
    let secret = WebhookSecret::generate()?;
    let sealed = secret::seal(cx.keyring, id.as_str(), cx.tenant.merchant_str(), &secret)?;
    let now = Timestamp::now().as_millis();
    let row = EndpointRow {
        id: id.to_string(),
        merchant_id: cx.tenant.merchant().to_string(),
        mode: mode.as_str().to_owned(),
        url,
        events,
        status: "enabled".to_owned(),
        kek_version: Some(sealed.kek_version),
        secret_wrapped_dek: Some(sealed.wrapped_dek),
        secret_ciphertext: Some(sealed.ciphertext),
        previous_kek_version: None,
        previous_wrapped_dek: None,
        previous_ciphertext: None,
        previous_expires_at: None,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    let event = cx.event("webhook_endpoint.created", &id);
    let mut work = UnitOfWork::new();
    store::webhook_endpoints::insert(&mut work, &row);
    work.audit(event);
    cx.store.commit(work).await?;
    Ok((WebhookEndpoint::from_row(&row, now)?, secret))
}

pub async fn get(store: &Store, tenant: &Tenant, id: &WebhookEndpointId) -> Result<WebhookEndpoint, ServiceError> {
    let row = store::webhook_endpoints::get(store.reader(), tenant, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(WebhookEndpoint::from_row(&row, Timestamp::now().as_millis())?)
}

pub async fn list(
    store: &Store,
    tenant: &Tenant,
    after: Option<&WebhookEndpointId>,
    limit: i64,
) -> Result<Vec<WebhookEndpoint>, ServiceError> {
    let now = Timestamp::now().as_millis();
    store::webhook_endpoints::list(store.reader(), tenant, after, limit)
        .await?
        .iter()
        .map(|row| WebhookEndpoint::from_row(row, now).map_err(ServiceError::from))
        .collect()
}

pub async fn update(
    cx: &Context<'_>,
    id: &WebhookEndpointId,
    changes: Changes,
) -> Result<WebhookEndpoint, ServiceError> {
    let row = store::webhook_endpoints::get(cx.store.reader(), cx.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    let mode = cx.tenant.mode();
    let url = match &changes.url {
        Some(u) => checked_url(u, mode, cx.dev).await?,
        None => row.url.clone(),
    };
    let events = match &changes.events {
        Some(e) => checked_events(e)?,
        None => row.events.clone(),
    };
    let now = Timestamp::now().as_millis();
    let (status, disabled_at) = match changes.disabled {
        Some(true) if row.status == "enabled" => ("disabled", Some(now)),
        Some(true) => ("disabled", row.disabled_at),
        Some(false) => ("enabled", None),
        None => (row.status.as_str(), row.disabled_at),
    };
    let mut event = cx.event("webhook_endpoint.updated", id);
    event.reason = Some(format!("status {status}"));
    let mut work = UnitOfWork::new();
    let change = store::webhook_endpoints::EndpointUpdate {
        url: &url,
        events: &events,
        status,
        disabled_at,
        now,
    };
    store::webhook_endpoints::update(&mut work, cx.tenant, id, &change);
    if status == "disabled" {
        store::webhook_deliveries::fail_pending_of_endpoint_in(&mut work, id.as_str(), "endpoint_disabled", now);
    }
    work.audit(event);
    commit_or_not_found(cx.store, work).await?;
    let updated = store::webhook_endpoints::get(cx.store.reader(), cx.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(WebhookEndpoint::from_row(&updated, now)?)
}

/// Deletes the endpoint: its secrets are destroyed and its pending
/// deliveries given up.
pub async fn delete(cx: &Context<'_>, id: &WebhookEndpointId) -> Result<(), ServiceError> {
    let now = Timestamp::now().as_millis();
    let event = cx.event("webhook_endpoint.deleted", id);
    let mut work = UnitOfWork::new();
    store::webhook_endpoints::delete(&mut work, cx.tenant, id, now);
    store::webhook_deliveries::fail_pending_of_endpoint_in(&mut work, id.as_str(), "endpoint_deleted", now);
    work.audit(event);
    commit_or_not_found(cx.store, work).await
}

/// Commits `work`, whose conditional statement on the endpoint found none
/// (missing, deleted meanwhile, or another tenant's) as `Conflict`: 404.
async fn commit_or_not_found(store: &Store, work: UnitOfWork) -> Result<(), ServiceError> {
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => not_found(),
        other => other.into(),
    })
}

/// Replaces the signing secret. The old one keeps signing (a second `v1`)
/// for `overlap_secs` (default 24 h, at most 7 days; 0 ends it at once).
/// Returns the new secret, which is never shown again.
pub async fn rotate_secret(
    cx: &Context<'_>,
    id: &WebhookEndpointId,
    overlap_secs: Option<i64>,
) -> Result<(WebhookEndpoint, WebhookSecret), ServiceError> {
    let overlap = overlap_secs.unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(ServiceError::invalid(
            "expires_in",
            "parameter_invalid",
            format!("expires_in must be between 0 and {MAX_OVERLAP_SECS} seconds"),
        ));
    }
    let row = store::webhook_endpoints::get(cx.store.reader(), cx.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    let (Some(version), Some(wrapped), Some(ciphertext)) = (
        row.kek_version,
        row.secret_wrapped_dek.clone(),
        row.secret_ciphertext.clone(),
    ) else {
        return Err(not_found());
    };
    let previous = SealedColumns {
        kek_version: version,
        wrapped_dek: wrapped,
        ciphertext: ciphertext.clone(),
    };
    let secret = WebhookSecret::generate()?;
    let sealed = secret::seal(cx.keyring, id.as_str(), cx.tenant.merchant_str(), &secret)?;
    let now = Timestamp::now().as_millis();
    let expires = now.saturating_add(overlap.saturating_mul(1000));
    let mut event = cx.event("webhook_endpoint.secret_rotated", id);
    event.reason = Some(format!("previous secret valid for {overlap} s"));
    let rotation = store::webhook_endpoints::Rotation {
        expected_ciphertext: &ciphertext,
        new: &sealed,
        previous: &previous,
        previous_expires_at: expires,
        now,
    };
    let mut work = UnitOfWork::new();
    store::webhook_endpoints::rotate_secret(&mut work, cx.tenant, id, &rotation);
    work.audit(event);
    cx.store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "concurrent_rotation",
            message: "the endpoint changed during the rotation; try again".into(),
        },
        other => other.into(),
    })?;
    let updated = store::webhook_endpoints::get(cx.store.reader(), cx.tenant, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((WebhookEndpoint::from_row(&updated, now)?, secret))
}

/// One delivery attempt, as the merchant may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: i64,
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// Why the attempt failed, if it did (never the receiver's body).
    pub error: Option<String>,
    pub duration_ms: i64,
    /// A 2xx came back.
    pub succeeded: bool,
}

impl From<AttemptRow> for WebhookAttempt {
    fn from(a: AttemptRow) -> Self {
        Self {
            id: a.id,
            endpoint_id: a.endpoint_id,
            event_id: a.event_id,
            attempt: a.attempt,
            attempted_at: Timestamp::from_millis(a.attempted_at),
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
            succeeded: a.outcome == "succeeded",
        }
    }
}

/// The delivery attempts to the merchant's endpoint, newest first.
pub async fn attempts(
    store: &Store,
    tenant: &Tenant,
    id: &WebhookEndpointId,
    before: Option<&WebhookAttemptId>,
    limit: i64,
) -> Result<Vec<WebhookAttempt>, ServiceError> {
    store::webhook_endpoints::get(store.reader(), tenant, id)
        .await?
        .ok_or_else(not_found)?;
    let rows = store::webhook_attempts::list(store.reader(), tenant, id, before, limit).await?;
    Ok(rows.into_iter().map(WebhookAttempt::from).collect())
}

/// KEK rotation of the sealed webhook secrets: re-wraps every data key not
/// under `to` (current and previous secret), each endpoint conditionally on
/// its secret being unchanged, until `budget` secrets (all, if `None`) have
/// been handled. Returns the secrets (re-wrapped, skipped because their
/// endpoint changed meanwhile).
pub async fn rewrap_secrets(
    store: &Store,
    keyring: &dyn KekProvider,
    to: crate::vault::KekVersion,
    budget: Option<u64>,
) -> Result<(u64, u64), ServiceError> {
    let target = i64::from(to.get());
    let (mut rewrapped, mut skipped) = (0u64, 0u64);
    let mut after = String::new();
    'pages: loop {
        let page = store::webhook_endpoints::page_not_at_version(store.reader(), target, &after, 200).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        for row in page {
            if budget.is_some_and(|b| rewrapped + skipped >= b) {
                break 'pages;
            }
            let (Some(v), Some(w), Some(c)) = (row.kek_version, &row.secret_wrapped_dek, &row.secret_ciphertext) else {
                skipped += 1;
                continue;
            };
            let current = SealedColumns {
                kek_version: v,
                wrapped_dek: w.clone(),
                ciphertext: c.clone(),
            };
            let new_current = secret::rewrap(keyring, &row.id, &row.merchant_id, &current, to)?;
            let previous = match (
                row.previous_kek_version,
                &row.previous_wrapped_dek,
                &row.previous_ciphertext,
            ) {
                (Some(pv), Some(pw), Some(pc)) => {
                    let columns = SealedColumns {
                        kek_version: pv,
                        wrapped_dek: pw.clone(),
                        ciphertext: pc.clone(),
                    };
                    Some(secret::rewrap(keyring, &row.id, &row.merchant_id, &columns, to)?)
                }
                _ => None,
            };
            let changed = Arc::new(AtomicBool::new(false));
            let mut work = UnitOfWork::new();
            store::webhook_endpoints::rewrap(
                &mut work,
                &row.id,
                c,
                (target, &new_current),
                previous.as_deref().map(|p| (target, p)),
                changed.clone(),
            );
            store.commit(work).await?;
            let secrets = 1 + u64::from(previous.is_some());
            if changed.load(Ordering::Relaxed) {
                rewrapped += secrets;
            } else {
                skipped += secrets;
            }
        }
    }
    Ok((rewrapped, skipped))
}

/// Sealed webhook secrets per KEK version.
pub async fn secrets_by_kek_version(store: &Store) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store::webhook_endpoints::count_by_kek_version(store.reader()).await?)
}
