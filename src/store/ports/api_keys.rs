//! The API keys port: key records, stored with the keyed hash of their
//! plaintext (never the plaintext), their rotation and revocation.
//!
//! Authentication's own read (key, merchant and lockout in one statement,
//! inline on SQLite, behind the authentication cache) is the
//! [`AuthStore`](super::AuthStore) port's.

use std::future::Future;

use crate::domain::api_key::ApiKey;
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::merchant::Freeze;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ApiKeyStore: Send + Sync {
    /// The key `id`, whichever merchant and mode it belongs to (operator
    /// use); `None` if there is none.
    fn get_key(&self, id: &ApiKeyId) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// The key `id` only if it is `tenant`'s: a key of another merchant or
    /// of the other mode is `None`, like a missing one.
    fn get_key_for_tenant(
        &self,
        tenant: &Tenant,
        id: &ApiKeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// Up to `limit` keys of `tenant` (its merchant, its mode) with ids after
    /// `after`, in id order.
    fn list_keys_for_tenant(
        &self,
        tenant: &Tenant,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// Up to `limit` keys of `merchant`, both modes, with ids after `after`,
    /// in id order (operator use).
    fn list_keys_for_merchant(
        &self,
        merchant: &MerchantId,
        after: Option<&ApiKeyId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// Whether `merchant` was ever issued a live key (revoked or not).
    fn merchant_has_live_keys(&self, merchant: &MerchantId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stages a new key with the keyed hash of its plaintext; an id or hash
    /// collision fails the unit with `Duplicate`, a merchant that does not
    /// exist with `Constraint`.
    fn insert_key(&self, work: &mut UnitOfWork, key: &ApiKey, key_hash: &str);

    /// Stages the key's revocation at `at`; a key that does not exist or is
    /// already revoked at commit time fails the unit with `Conflict`.
    fn revoke_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, at: Timestamp);

    /// Stages that `id` was replaced by `successor` and now expires at
    /// `expires_at`; a key that does not exist, or was rotated or revoked
    /// meanwhile, fails the unit with `Conflict`.
    fn mark_key_rotated(&self, work: &mut UnitOfWork, id: &ApiKeyId, successor: &ApiKeyId, expires_at: Timestamp);

    /// Stages moving the key's `last_used_at` forward to `at` (ms), never
    /// back; a key that does not exist, or was used later already, changes
    /// nothing and never fails the unit.
    fn touch_key_last_used(&self, work: &mut UnitOfWork, id: &str, at: i64);

    /// Stages freezing the key (`freeze`); a key that does not exist or is
    /// already frozen at commit time fails the unit with `Conflict`.
    fn freeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId, freeze: &Freeze);

    /// Stages lifting the key's freeze; a key that does not exist or is not
    /// frozen at commit time fails the unit with `Conflict`.
    fn unfreeze_key(&self, work: &mut UnitOfWork, id: &ApiKeyId);
}
