//! The tokens port: card tokens (masked facts in clear, the number only as
//! an envelope), their shredding, and the per-key allowance of reveals.
//! The KEK rotation walks the live tokens not yet under the target KEK and
//! re-wraps each one's data key conditionally (`services::kek_rotation`).

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::ids::TokenId;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::{TokenRow, WrappedKeyRow};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait TokenStore: Send + Sync {
    /// Stages a new token (never shredded: `shredded_at` is not written);
    /// an id collision fails the unit with `Duplicate`, a merchant that does
    /// not exist with `Constraint`.
    fn insert_token(&self, work: &mut UnitOfWork, row: &TokenRow);

    /// The token `id` only if it is `tenant`'s and not shredded; `None`
    /// otherwise (missing, shredded, another merchant's or mode's).
    fn get_live_token(
        &self,
        tenant: &Tenant,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<TokenRow>, StoreError>> + Send;

    /// [`get_live_token`](Self::get_live_token) for the payment path: the
    /// same answer, read the cheapest way the backend has (on SQLite inline,
    /// with no thread hop).
    fn get_live_token_for_payment(
        &self,
        tenant: &Tenant,
        id: &TokenId,
    ) -> impl Future<Output = Result<Option<TokenRow>, StoreError>> + Send;

    /// Stages destroying the token's key material and ciphertext at `at`; a
    /// token that is not a live token of `tenant` at commit time fails the
    /// unit with `Conflict`.
    fn shred_token(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &TokenId, at: Timestamp);

    /// Stages counting one reveal by `key_id` at `now_ms` against `limit`
    /// reveals per fixed window of `window_ms` (the window starts at a key's
    /// first reveal after the previous one ended); a key that used its
    /// allowance in the current window fails the unit with `Conflict`.
    fn count_reveal(&self, work: &mut UnitOfWork, key_id: &str, now_ms: i64, window_ms: i64, limit: i64);

    /// How many live (not shredded) tokens each KEK version wraps, by
    /// version; versions that wrap none are absent.
    fn tokens_by_kek_version(&self) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// Up to `limit` live tokens of any merchant with ids after `after`
    /// whose data key is wrapped by a KEK other than `version`, in id order;
    /// an empty page past the last one.
    fn tokens_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<WrappedKeyRow>, StoreError>> + Send;

    /// Stages replacing the token's wrapped data key by `wrapped_dek` under
    /// KEK `to`, only if it is still live and wrapped by `from`: `changed` is
    /// set at commit to whether it was; a token shredded or re-wrapped
    /// meanwhile (or missing) is skipped, never an error.
    fn rewrap_token(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        from: i64,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    );
}
