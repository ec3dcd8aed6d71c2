//! The tokens port: card tokens (masked facts in clear, the number only as
//! an envelope), their shredding, and the per-key allowance of reveals.
//! (The KEK rotation of their data keys still reads and writes through
//! `store::card_tokens`, with the idempotency records it rotates alongside.)

use std::future::Future;

use crate::domain::ids::TokenId;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::TokenRow;
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
}
