//! The port of token buckets shared by every replica (Redis in production,
//! `store::redis_buckets`): one atomic take per request, and a probe for
//! readiness.

use futures_util::future::BoxFuture;

use crate::domain::rate_limit::{Decision, Gcra};

use super::super::StoreError;

/// Buckets kept outside the process. `key` is already namespaced and holds
/// no secret and no client address in clear (the caller hashes those).
pub trait RateBuckets: Send + Sync {
    /// Takes one token from `key`'s bucket, on the store's own clock, in one
    /// atomic step (the GCRA of [`Gcra::decide`]). A fault (unreachable,
    /// refused, a wrong answer) is `Err(Unavailable)`; the caller decides
    /// what a missing answer means.
    fn take<'a>(&'a self, key: &'a str, gcra: Gcra) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Whether the store answers now.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
