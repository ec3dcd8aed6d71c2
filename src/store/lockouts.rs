//! Authentication failures per client IP (`auth_failures`) and the lockouts
//! they trigger (`ip_lockouts`). Shared through the database so that every
//! replica refuses a locked-out address.

use sqlx::{Any, Executor};

use super::StoreError;
use crate::domain::time::Timestamp;

pub async fn record_failure<'e>(
    db: impl Executor<'e, Database = Any>,
    ip: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO auth_failures (client_ip, at) VALUES ($1, $2)")
        .bind(ip)
        .bind(at.as_millis())
        .execute(db)
        .await?;
    Ok(())
}

/// Failures from `ip` at or after `since`.
pub async fn failures_since<'e>(
    db: impl Executor<'e, Database = Any>,
    ip: &str,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM auth_failures WHERE client_ip = $1 AND at >= $2")
        .bind(ip)
        .bind(since.as_millis())
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// Forgets failures older than `before` (all addresses).
pub async fn prune_failures<'e>(db: impl Executor<'e, Database = Any>, before: Timestamp) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM auth_failures WHERE at < $1")
        .bind(before.as_millis())
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Locks `ip` out until `until` (extends an existing lockout, never shortens it).
pub async fn lock<'e>(db: impl Executor<'e, Database = Any>, ip: &str, until: Timestamp) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ip_lockouts (client_ip, locked_until) VALUES ($1, $2) \
         ON CONFLICT (client_ip) DO UPDATE SET locked_until = excluded.locked_until \
         WHERE ip_lockouts.locked_until < excluded.locked_until",
    )
    .bind(ip)
    .bind(until.as_millis())
    .execute(db)
    .await?;
    Ok(())
}

/// Forgets every recorded failure of `ip` (with [`unlock`], so that a cleared
/// address starts from zero failures). Returns how many were forgotten.
pub async fn forget_failures<'e>(db: impl Executor<'e, Database = Any>, ip: &str) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM auth_failures WHERE client_ip = $1")
        .bind(ip)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Lifts the lockout of `ip` (operator action). Returns whether one existed.
pub async fn unlock<'e>(db: impl Executor<'e, Database = Any>, ip: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM ip_lockouts WHERE client_ip = $1")
        .bind(ip)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}
