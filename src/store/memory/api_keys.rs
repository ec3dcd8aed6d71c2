//! The API keys port on the double ([`ApiKeyStore`]'s semantics).

use super::{limit, matched, stage, MemoryStore, Tables};
use crate::domain::api_key::{ApiKey, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::merchant::Freeze;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::ApiKeyStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// Up to `page` keys passing `keep` with ids after `after`, in id order.
fn page(t: &Tables, after: Option<&ApiKeyId>, page: i64, keep: impl Fn(&ApiKey) -> bool) -> Vec<ApiKey> {
    let after = after.map_or("", ApiKeyId::as_str);
    t.api_keys
        .values()
        .map(|(key, _)| key)
        .filter(|key| key.id.as_str() > after && keep(key))
        .take(limit(page))
        .cloned()
        .collect()
}

fn tenants(key: &ApiKey, tenant: &Tenant) -> bool {
    key.merchant_id == *tenant.merchant() && key.mode == tenant.mode()
}

impl ApiKeyStore for MemoryStore {
    async fn get_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.read(|t| t.api_keys.get(id.as_str()).map(|(key, _)| key.clone())))
    }

    async fn get_key_for_tenant(&self, tenant: &Tenant, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.read(|t| {
            t.api_keys
                .get(id.as_str())
                .map(|(key, _)| key)
                .filter(|key| tenants(key, tenant))
                .cloned()
        }))
    }

    async fn list_keys_for_tenant(
        &self,
        tenant: &Tenant,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.read(|t| page(t, after, limit, |key| tenants(key, tenant))))
    }

    async fn list_keys_for_merchant(
        &self,
        merchant: &MerchantId,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.read(|t| page(t, after, limit, |key| key.merchant_id == *merchant)))
    }

    async fn merchant_has_live_keys(&self, merchant: &MerchantId) -> Result<bool, StoreError> {
        Ok(self.read(|t| {
            t.api_keys
                .values()
                .any(|(key, _)| key.merchant_id == *merchant && key.mode == Mode::Live)
        }))
    }

    fn insert_key(&self, work: &mut UnitOfWork, key: &ApiKey, key_hash: &str) {
        // As the SQL statement: a new key is unrevoked, unused and unrotated.
        let key = ApiKey {
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            frozen: None,
            ..key.clone()
        };
        let hash = key_hash.to_owned();
        stage(work, move |t| {
            if t.api_keys.contains_key(key.id.as_str()) || t.api_keys.values().any(|(_, h)| *h == hash) {
                return Err(StoreError::Duplicate);
            }
            t.merchant_exists(key.merchant_id.as_str())?;
            t.api_keys.insert(key.id.to_string(), (key, hash));
            Ok(())
        });
    }

    fn revoke_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, at: Timestamp) {
        let id = id.clone();
        stage(work, move |t| {
            let (key, _) = matched(
                t.api_keys
                    .get_mut(id.as_str())
                    .filter(|(key, _)| key.revoked_at.is_none()),
            )?;
            key.revoked_at = Some(at);
            Ok(())
        });
    }

    fn mark_key_rotated(&self, work: &mut UnitOfWork, id: &ApiKeyId, successor: &ApiKeyId, expires_at: Timestamp) {
        let (id, successor) = (id.clone(), successor.clone());
        stage(work, move |t| {
            let (key, _) = matched(
                t.api_keys
                    .get_mut(id.as_str())
                    .filter(|(key, _)| key.rotated_to.is_none() && key.revoked_at.is_none()),
            )?;
            key.rotated_to = Some(successor);
            key.expires_at = Some(expires_at);
            Ok(())
        });
    }

    fn freeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, freeze: &Freeze) {
        let (id, freeze) = (id.clone(), freeze.clone());
        stage(work, move |t| {
            let (key, _) = matched(t.api_keys.get_mut(id.as_str()).filter(|(key, _)| key.frozen.is_none()))?;
            key.frozen = Some(freeze);
            Ok(())
        });
    }

    fn unfreeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId) {
        let id = id.clone();
        stage(work, move |t| {
            let (key, _) = matched(t.api_keys.get_mut(id.as_str()).filter(|(key, _)| key.frozen.is_some()))?;
            key.frozen = None;
            Ok(())
        });
    }

    fn touch_key_last_used(&self, work: &mut UnitOfWork, id: &str, at: i64) {
        let id = id.to_owned();
        stage(work, move |t| {
            if let Some((key, _)) = t.api_keys.get_mut(&id) {
                if key.last_used_at.is_none_or(|used| used.as_millis() < at) {
                    key.last_used_at = Some(Timestamp::from_millis(at));
                }
            }
            Ok(())
        });
    }
}
