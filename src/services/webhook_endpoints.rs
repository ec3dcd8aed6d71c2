//! Webhook endpoints: create (the secret is returned once), list, show,
//! update (url, events, enable/disable), delete, rotate the signing secret
//! with an overlap, and list delivery attempts.
//!
//! Invariants: each change commits with its audit entry; the secret exists
//! in clear only in the value returned by `create`/`rotate_secret` and is
//! stored sealed; URLs pass the SSRF policy (live mode: resolved addresses
//! are checked too) before anything is written; an endpoint of another
//! merchant or of the other mode is reported exactly like a missing one.

use crate::domain::api_key::Mode;
use crate::domain::audit::Outcome;
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{Commit, WebhookEndpointStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_endpoints::{EndpointRow, EndpointUpdate, Rotation, SealedColumns};
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

/// What the endpoint services need besides the store (the SQL backend,
/// unless a test gives another implementation of the ports).
pub struct Context<'a, S = Store> {
    pub store: &'a S,
    pub keyring: &'a dyn KekProvider,
    /// The gateway runs in development mode (`http://localhost` allowed).
    pub dev: bool,
    pub actor: &'a Actor,
    /// The caller's merchant and mode: the only endpoints it reaches.
    pub tenant: &'a Tenant,
}

impl<S> Context<'_, S> {
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

pub async fn create<S: WebhookEndpointStore + Commit>(
    cx: &Context<'_, S>,
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
    cx.store.insert_endpoint(&mut work, &row);
    work.audit(event);
    cx.store.commit(work).await?;
    Ok((WebhookEndpoint::from_row(&row, now)?, secret))
}

pub async fn get<S: WebhookEndpointStore>(
    store: &S,
    tenant: &Tenant,
    id: &WebhookEndpointId,
) -> Result<WebhookEndpoint, ServiceError> {
    let row = store.get_endpoint(tenant, id).await?.ok_or_else(not_found)?;
    Ok(WebhookEndpoint::from_row(&row, Timestamp::now().as_millis())?)
}

pub async fn list<S: WebhookEndpointStore>(
    store: &S,
    tenant: &Tenant,
    after: Option<&WebhookEndpointId>,
    limit: i64,
) -> Result<Vec<WebhookEndpoint>, ServiceError> {
    let now = Timestamp::now().as_millis();
    store
        .list_endpoints(tenant, after, limit)
        .await?
        .iter()
        .map(|row| WebhookEndpoint::from_row(row, now).map_err(ServiceError::from))
        .collect()
}

pub async fn update<S: WebhookEndpointStore + Commit>(
    cx: &Context<'_, S>,
    id: &WebhookEndpointId,
    changes: Changes,
) -> Result<WebhookEndpoint, ServiceError> {
    let row = cx.store.get_endpoint(cx.tenant, id).await?.ok_or_else(not_found)?;
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
    let change = EndpointUpdate {
        url: &url,
        events: &events,
        status,
        disabled_at,
        now,
    };
    cx.store.update_endpoint(&mut work, cx.tenant, id, &change);
    if status == "disabled" {
        cx.store
            .fail_pending_deliveries(&mut work, id.as_str(), "endpoint_disabled", now);
    }
    work.audit(event);
    commit_or_not_found(cx.store, work).await?;
    let updated = cx.store.get_endpoint(cx.tenant, id).await?.ok_or_else(not_found)?;
    Ok(WebhookEndpoint::from_row(&updated, now)?)
}

/// Deletes the endpoint: its secrets are destroyed and its pending
/// deliveries given up.
pub async fn delete<S: WebhookEndpointStore + Commit>(
    cx: &Context<'_, S>,
    id: &WebhookEndpointId,
) -> Result<(), ServiceError> {
    let now = Timestamp::now().as_millis();
    let event = cx.event("webhook_endpoint.deleted", id);
    let mut work = UnitOfWork::new();
    cx.store.delete_endpoint(&mut work, cx.tenant, id, now);
    cx.store
        .fail_pending_deliveries(&mut work, id.as_str(), "endpoint_deleted", now);
    work.audit(event);
    commit_or_not_found(cx.store, work).await
}

/// Commits `work`, whose conditional statement on the endpoint found none
/// (missing, deleted meanwhile, or another tenant's) as `Conflict`: 404.
async fn commit_or_not_found<S: Commit>(store: &S, work: UnitOfWork) -> Result<(), ServiceError> {
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => not_found(),
        other => other.into(),
    })
}

/// Replaces the signing secret. The old one keeps signing (a second `v1`)
/// for `overlap_secs` (default 24 h, at most 7 days; 0 ends it at once).
/// Returns the new secret, which is never shown again.
pub async fn rotate_secret<S: WebhookEndpointStore + Commit>(
    cx: &Context<'_, S>,
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
    let row = cx.store.get_endpoint(cx.tenant, id).await?.ok_or_else(not_found)?;
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
    let rotation = Rotation {
        expected_ciphertext: &ciphertext,
        new: &sealed,
        previous: &previous,
        previous_expires_at: expires,
        now,
    };
    let mut work = UnitOfWork::new();
    cx.store.rotate_endpoint_secret(&mut work, cx.tenant, id, &rotation);
    work.audit(event);
    cx.store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "concurrent_rotation",
            message: "the endpoint changed during the rotation; try again".into(),
        },
        other => other.into(),
    })?;
    let updated = cx.store.get_endpoint(cx.tenant, id).await?.ok_or_else(not_found)?;
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
pub async fn attempts<S: WebhookEndpointStore>(
    store: &S,
    tenant: &Tenant,
    id: &WebhookEndpointId,
    before: Option<&WebhookAttemptId>,
    limit: i64,
) -> Result<Vec<WebhookAttempt>, ServiceError> {
    store.get_endpoint(tenant, id).await?.ok_or_else(not_found)?;
    let rows = store.list_attempts(tenant, id, before, limit).await?;
    Ok(rows.into_iter().map(WebhookAttempt::from).collect())
}

/// KEK rotation of the sealed webhook secrets: re-wraps every data key not
/// under `to` (current and previous secret), each endpoint conditionally on
/// its secret being unchanged, until `budget` secrets (all, if `None`) have
/// been handled. Returns the secrets (re-wrapped, skipped because their
/// endpoint changed meanwhile).
pub async fn rewrap_secrets<S: WebhookEndpointStore + Commit>(
    store: &S,
    keyring: &dyn KekProvider,
    to: crate::vault::KekVersion,
    budget: Option<u64>,
) -> Result<(u64, u64), ServiceError> {
    let target = i64::from(to.get());
    let page = |after: String| async move { store.endpoints_not_at_kek_version(target, &after, 200).await };
    super::kek_rotation::walk_records(
        store,
        budget,
        page,
        |row: &EndpointRow| &row.id,
        |row, work, changed| {
            let (Some(v), Some(w), Some(c)) = (row.kek_version, &row.secret_wrapped_dek, &row.secret_ciphertext) else {
                return Ok(None);
            };
            let sealed = |kek_version, wrapped_dek: &String, ciphertext: &String| SealedColumns {
                kek_version,
                wrapped_dek: wrapped_dek.clone(),
                ciphertext: ciphertext.clone(),
            };
            let new_current = secret::rewrap(keyring, &row.id, &row.merchant_id, &sealed(v, w, c), to)?;
            let previous = match (
                row.previous_kek_version,
                &row.previous_wrapped_dek,
                &row.previous_ciphertext,
            ) {
                (Some(pv), Some(pw), Some(pc)) => Some(secret::rewrap(
                    keyring,
                    &row.id,
                    &row.merchant_id,
                    &sealed(pv, pw, pc),
                    to,
                )?),
                _ => None,
            };
            store.rewrap_endpoint_secrets(
                work,
                &row.id,
                c,
                (target, &new_current),
                previous.as_deref().map(|p| (target, p)),
                changed,
            );
            Ok(Some(1 + u64::from(previous.is_some())))
        },
    )
    .await
}

/// Sealed webhook secrets per KEK version.
pub async fn secrets_by_kek_version<S: WebhookEndpointStore>(store: &S) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store.endpoint_secrets_by_kek_version().await?)
}

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MerchantId;
    use crate::domain::merchant::MerchantName;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;
    use crate::store::webhook_deliveries::DeliveryRow;
    use crate::vault::{Kek, KekVersion, StaticKeyring};

    struct Fixture {
        store: MemoryStore,
        keyring: StaticKeyring,
        actor: Actor,
        tenant: Tenant,
    }

    impl Fixture {
        async fn new(mode: Mode) -> Self {
            let store = MemoryStore::new();
            let actor = Actor::Operator {
                command: "endpoints test".into(),
            };
            let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Hooks").unwrap())
                .await
                .unwrap();
            Self {
                store,
                // Sealing under version 1; version 2 there to rotate to.
                keyring: StaticKeyring::new(
                    KekVersion::new(1),
                    [
                        (KekVersion::new(1), Kek::generate().unwrap()),
                        (KekVersion::new(2), Kek::generate().unwrap()),
                    ],
                )
                .unwrap(),
                actor,
                tenant: Tenant::new(merchant.id, mode),
            }
        }

        fn cx(&self) -> Context<'_, MemoryStore> {
            self.cx_for(&self.tenant)
        }

        fn cx_for<'a>(&'a self, tenant: &'a Tenant) -> Context<'a, MemoryStore> {
            Context {
                store: &self.store,
                keyring: &self.keyring,
                dev: false,
                actor: &self.actor,
                tenant,
            }
        }

        async fn created(&self) -> (WebhookEndpoint, WebhookSecret) {
            create(
                &self.cx(),
                "https://hooks.example/in",
                &["payment.succeeded".to_owned()],
            )
            .await
            .unwrap()
        }

        /// The current secret of `id`, opened with the keyring.
        async fn stored_secret(&self, id: &str) -> String {
            let row = self.store.get_endpoint_any(id).await.unwrap().unwrap();
            let columns = SealedColumns {
                kek_version: row.kek_version.unwrap(),
                wrapped_dek: row.secret_wrapped_dek.unwrap(),
                ciphertext: row.secret_ciphertext.unwrap(),
            };
            secret::open(&self.keyring, id, &row.merchant_id, &columns)
                .unwrap()
                .expose_secret()
                .to_owned()
        }
    }

    fn id(endpoint: &WebhookEndpoint) -> WebhookEndpointId {
        WebhookEndpointId::from_trusted(endpoint.id.clone())
    }

    #[tokio::test]
    async fn a_created_endpoint_keeps_its_secret_sealed_and_is_the_tenants_only() {
        let f = Fixture::new(Mode::Test).await;
        let (endpoint, secret) = f.created().await;
        assert_eq!(endpoint.status, "enabled");
        assert!(!endpoint.livemode);
        let row = f.store.get_endpoint_any(&endpoint.id).await.unwrap().unwrap();
        assert_ne!(row.secret_ciphertext.as_deref(), Some(secret.expose_secret()));
        assert_eq!(f.stored_secret(&endpoint.id).await, secret.expose_secret());
        assert_eq!(
            get(&f.store, &f.tenant, &id(&endpoint)).await.unwrap().url,
            "https://hooks.example/in"
        );
        assert_eq!(list(&f.store, &f.tenant, None, 10).await.unwrap().len(), 1);

        let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
        let other = Tenant::new(MerchantId::generate().unwrap(), Mode::Test);
        for tenant in [&live, &other] {
            let found = get(&f.store, tenant, &id(&endpoint)).await;
            assert!(matches!(found, Err(ServiceError::NotFound { .. })), "{found:?}");
            let deleted = delete(&f.cx_for(tenant), &id(&endpoint)).await;
            assert!(matches!(deleted, Err(ServiceError::NotFound { .. })), "{deleted:?}");
            assert!(list(&f.store, tenant, None, 10).await.unwrap().is_empty());
        }
        let page = f.store.audit_page(0, 10).await.unwrap();
        assert_eq!(page.last().unwrap().event.action, "webhook_endpoint.created");
    }

    #[tokio::test]
    async fn disabling_or_deleting_gives_up_pending_deliveries() {
        let f = Fixture::new(Mode::Test).await;
        let (endpoint, _) = f.created().await;
        f.store.with_tables(|t| {
            for (event, status) in [("evt_pending", "pending"), ("evt_done", "succeeded")] {
                t.add_delivery(DeliveryRow {
                    endpoint_id: endpoint.id.clone(),
                    event_id: event.into(),
                    merchant_id: f.tenant.merchant().to_string(),
                    status: status.into(),
                    attempts: 1,
                    next_attempt_at: 0,
                    last_status_code: None,
                    last_error: None,
                    created_at: 0,
                    updated_at: 0,
                });
            }
        });
        let changes = Changes {
            disabled: Some(true),
            ..Changes::default()
        };
        let disabled = update(&f.cx(), &id(&endpoint), changes).await.unwrap();
        assert_eq!(disabled.status, "disabled");
        assert!(disabled.disabled_at.is_some());
        f.store.with_tables(|t| {
            let pending = t.delivery(&endpoint.id, "evt_pending").unwrap();
            assert_eq!(
                (pending.status.as_str(), pending.last_error.as_deref()),
                ("failed", Some("endpoint_disabled"))
            );
            assert_eq!(t.delivery(&endpoint.id, "evt_done").unwrap().status, "succeeded");
        });
        let enabled = update(
            &f.cx(),
            &id(&endpoint),
            Changes {
                disabled: Some(false),
                ..Changes::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((enabled.status.as_str(), enabled.disabled_at), ("enabled", None));

        delete(&f.cx(), &id(&endpoint)).await.unwrap();
        let gone = get(&f.store, &f.tenant, &id(&endpoint)).await;
        assert!(matches!(gone, Err(ServiceError::NotFound { .. })), "{gone:?}");
        let again = delete(&f.cx(), &id(&endpoint)).await;
        assert!(matches!(again, Err(ServiceError::NotFound { .. })), "{again:?}");
        let row = f.store.get_endpoint_any(&endpoint.id).await.unwrap().unwrap();
        assert!(row.secret_ciphertext.is_none() && row.previous_ciphertext.is_none());
        let actions: Vec<String> = f
            .store
            .audit_page(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.action)
            .collect();
        assert_eq!(
            actions[1..],
            [
                "webhook_endpoint.created",
                "webhook_endpoint.updated",
                "webhook_endpoint.updated",
                "webhook_endpoint.deleted"
            ]
        );
    }

    #[tokio::test]
    async fn a_rotated_secret_keeps_the_old_one_for_the_overlap() {
        let f = Fixture::new(Mode::Test).await;
        let (endpoint, old) = f.created().await;
        let too_long = rotate_secret(&f.cx(), &id(&endpoint), Some(MAX_OVERLAP_SECS + 1)).await;
        assert!(matches!(too_long, Err(ServiceError::Invalid { .. })), "{too_long:?}");
        let (rotated, new) = rotate_secret(&f.cx(), &id(&endpoint), Some(60)).await.unwrap();
        assert_ne!(new.expose_secret(), old.expose_secret());
        assert_eq!(f.stored_secret(&endpoint.id).await, new.expose_secret());
        assert!(rotated.previous_secret_expires_at.is_some());
        let row = f.store.get_endpoint_any(&endpoint.id).await.unwrap().unwrap();
        let previous = SealedColumns {
            kek_version: row.previous_kek_version.unwrap(),
            wrapped_dek: row.previous_wrapped_dek.unwrap(),
            ciphertext: row.previous_ciphertext.unwrap(),
        };
        let opened = secret::open(&f.keyring, &endpoint.id, f.tenant.merchant_str(), &previous).unwrap();
        assert_eq!(opened.expose_secret(), old.expose_secret());
    }

    #[tokio::test]
    async fn attempts_are_listed_newest_first_to_their_tenant_only() {
        let f = Fixture::new(Mode::Test).await;
        let (endpoint, _) = f.created().await;
        f.store.with_tables(|t| {
            for n in 1..=3 {
                t.add_attempt(AttemptRow {
                    id: format!("wa_{n}"),
                    endpoint_id: endpoint.id.clone(),
                    event_id: "evt_1".into(),
                    merchant_id: f.tenant.merchant().to_string(),
                    attempt: n,
                    attempted_at: n * 1000,
                    status_code: Some(500),
                    error: None,
                    duration_ms: 3,
                    outcome: "failed".into(),
                });
            }
        });
        let listed = attempts(&f.store, &f.tenant, &id(&endpoint), None, 2).await.unwrap();
        let numbers: Vec<i64> = listed.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, [3, 2]);
        assert!(!listed[0].succeeded);
        let before = WebhookAttemptId::from_trusted("wa_2".into());
        let older = attempts(&f.store, &f.tenant, &id(&endpoint), Some(&before), 10)
            .await
            .unwrap();
        assert_eq!(older.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1]);
        let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
        let across = attempts(&f.store, &live, &id(&endpoint), None, 10).await;
        assert!(matches!(across, Err(ServiceError::NotFound { .. })), "{across:?}");
    }

    #[tokio::test]
    async fn kek_rotation_rewraps_current_and_previous_secrets() {
        let f = Fixture::new(Mode::Test).await;
        let (endpoint, _) = f.created().await;
        let (_, secret) = rotate_secret(&f.cx(), &id(&endpoint), None).await.unwrap();
        let (untouched, _) = f.created().await;
        delete(&f.cx(), &id(&untouched)).await.unwrap();
        assert_eq!(secrets_by_kek_version(&f.store).await.unwrap(), [(1, 2)]);

        let to = KekVersion::new(2);
        assert_eq!(rewrap_secrets(&f.store, &f.keyring, to, None).await.unwrap(), (2, 0));
        assert_eq!(secrets_by_kek_version(&f.store).await.unwrap(), [(2, 2)]);
        assert_eq!(f.stored_secret(&endpoint.id).await, secret.expose_secret());
        assert_eq!(
            rewrap_secrets(&f.store, &f.keyring, to, None).await.unwrap(),
            (0, 0),
            "nothing left"
        );
    }
}
