//! The webhook endpoints port on the double ([`WebhookEndpointStore`]'s
//! semantics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{limit, matched, stage, MemoryStore};
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;
use crate::store::ports::WebhookEndpointStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_endpoints::{EndpointRow, EndpointUpdate, Rotation};
use crate::store::StoreError;

/// Whether `row` is visible to `tenant`: its merchant, its mode, not deleted.
fn visible(row: &EndpointRow, tenant: &Tenant) -> bool {
    row.merchant_id == tenant.merchant_str() && row.mode == tenant.mode_str() && row.status != "deleted"
}

/// SQL's `a <> b` where `a` may be NULL (then neither true nor false: no match).
fn differs(a: Option<i64>, b: i64) -> bool {
    a.is_some_and(|a| a != b)
}

impl WebhookEndpointStore for MemoryStore {
    async fn get_endpoint(&self, tenant: &Tenant, id: &WebhookEndpointId) -> Result<Option<EndpointRow>, StoreError> {
        Ok(self.read(|t| t.endpoints.get(id.as_str()).filter(|r| visible(r, tenant)).cloned()))
    }

    async fn get_endpoint_any(&self, id: &str) -> Result<Option<EndpointRow>, StoreError> {
        Ok(self.read(|t| t.endpoints.get(id).cloned()))
    }

    async fn list_endpoints(
        &self,
        tenant: &Tenant,
        after: Option<&WebhookEndpointId>,
        page: i64,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let after = after.map_or("", WebhookEndpointId::as_str);
        Ok(self.read(|t| {
            t.endpoints
                .values()
                .filter(|r| r.id.as_str() > after && visible(r, tenant))
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    fn insert_endpoint(&self, work: &mut UnitOfWork, row: &EndpointRow) {
        let row = row.clone();
        stage(work, move |t| {
            if t.endpoints.contains_key(&row.id) {
                return Err(StoreError::Duplicate);
            }
            t.merchant_exists(&row.merchant_id)?;
            t.endpoints.insert(row.id.clone(), row);
            Ok(())
        });
    }

    fn update_endpoint(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        change: &EndpointUpdate<'_>,
    ) {
        let (tenant, id) = (tenant.clone(), id.clone());
        let (url, events, status) = (
            change.url.to_owned(),
            change.events.to_owned(),
            change.status.to_owned(),
        );
        let (disabled_at, now) = (change.disabled_at, change.now);
        stage(work, move |t| {
            let row = matched(t.endpoints.get_mut(id.as_str()).filter(|r| visible(r, &tenant)))?;
            row.url = url;
            row.events = events;
            row.status = status;
            row.disabled_at = disabled_at;
            row.updated_at = now;
            Ok(())
        });
    }

    fn disable_endpoint(&self, work: &mut UnitOfWork, id: &str, now: i64) {
        let id = id.to_owned();
        stage(work, move |t| {
            let row = matched(t.endpoints.get_mut(&id).filter(|r| r.status == "enabled"))?;
            row.status = "disabled".to_owned();
            row.disabled_at = Some(now);
            row.updated_at = now;
            Ok(())
        });
    }

    fn delete_endpoint(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &WebhookEndpointId, now: i64) {
        let (tenant, id) = (tenant.clone(), id.clone());
        stage(work, move |t| {
            let row = matched(t.endpoints.get_mut(id.as_str()).filter(|r| visible(r, &tenant)))?;
            row.status = "deleted".to_owned();
            row.kek_version = None;
            row.secret_wrapped_dek = None;
            row.secret_ciphertext = None;
            row.previous_kek_version = None;
            row.previous_wrapped_dek = None;
            row.previous_ciphertext = None;
            row.previous_expires_at = None;
            row.updated_at = now;
            Ok(())
        });
    }

    fn rotate_endpoint_secret(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &WebhookEndpointId,
        rotation: &Rotation<'_>,
    ) {
        let (tenant, id) = (tenant.clone(), id.clone());
        let expected = rotation.expected_ciphertext.to_owned();
        let (new, previous) = (rotation.new.clone(), rotation.previous.clone());
        let (previous_expires_at, now) = (rotation.previous_expires_at, rotation.now);
        stage(work, move |t| {
            let row = matched(
                t.endpoints
                    .get_mut(id.as_str())
                    .filter(|r| visible(r, &tenant) && r.secret_ciphertext.as_deref() == Some(expected.as_str())),
            )?;
            row.kek_version = Some(new.kek_version);
            row.secret_wrapped_dek = Some(new.wrapped_dek);
            row.secret_ciphertext = Some(new.ciphertext);
            row.previous_kek_version = Some(previous.kek_version);
            row.previous_wrapped_dek = Some(previous.wrapped_dek);
            row.previous_ciphertext = Some(previous.ciphertext);
            row.previous_expires_at = Some(previous_expires_at);
            row.updated_at = now;
            Ok(())
        });
    }

    async fn endpoints_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        page: i64,
    ) -> Result<Vec<EndpointRow>, StoreError> {
        Ok(self.read(|t| {
            t.endpoints
                .values()
                .filter(|r| {
                    r.id.as_str() > after
                        && r.status != "deleted"
                        && (differs(r.kek_version, version) || differs(r.previous_kek_version, version))
                })
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    fn rewrap_endpoint_secrets(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_ciphertext: &str,
        current: (i64, &str),
        previous: Option<(i64, &str)>,
        changed: Arc<AtomicBool>,
    ) {
        let (id, expected) = (id.to_owned(), expected_ciphertext.to_owned());
        let current = (current.0, current.1.to_owned());
        let previous = previous.map(|(v, w)| (v, w.to_owned()));
        stage(work, move |t| {
            let row = t
                .endpoints
                .get_mut(&id)
                .filter(|r| r.status != "deleted" && r.secret_ciphertext.as_deref() == Some(expected.as_str()));
            changed.store(row.is_some(), Ordering::Relaxed);
            if let Some(row) = row {
                row.kek_version = Some(current.0);
                row.secret_wrapped_dek = Some(current.1);
                if let Some((version, wrapped)) = previous {
                    row.previous_kek_version = Some(version);
                    row.previous_wrapped_dek = Some(wrapped);
                }
            }
            Ok(())
        });
    }

    async fn endpoint_secrets_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self.read(|t| {
            let mut counts = BTreeMap::new();
            for row in t.endpoints.values() {
                for version in [row.kek_version, row.previous_kek_version].into_iter().flatten() {
                    *counts.entry(version).or_insert(0) += 1;
                }
            }
            counts.into_iter().collect()
        }))
    }

    fn fail_pending_deliveries(&self, work: &mut UnitOfWork, endpoint_id: &str, reason: &str, now: i64) {
        let (endpoint_id, reason) = (endpoint_id.to_owned(), reason.to_owned());
        stage(work, move |t| {
            t.fail_pending_of_endpoint(&endpoint_id, &reason, now);
            Ok(())
        });
    }

    async fn list_attempts(
        &self,
        tenant: &Tenant,
        endpoint: &WebhookEndpointId,
        before: Option<&WebhookAttemptId>,
        page: i64,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        Ok(self.read(|t| {
            // The endpoint must be the tenant's (of any status: a deleted
            // endpoint's attempts stay listed, as in the database).
            let owned = t
                .endpoints
                .get(endpoint.as_str())
                .is_some_and(|r| r.merchant_id == tenant.merchant_str() && r.mode == tenant.mode_str());
            if !owned {
                return Vec::new();
            }
            t.attempts
                .values()
                .rev()
                .filter(|a| {
                    a.endpoint_id == endpoint.as_str()
                        && a.merchant_id == tenant.merchant_str()
                        && before.is_none_or(|b| a.id.as_str() < b.as_str())
                })
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }
}
