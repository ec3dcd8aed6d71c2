//! Authentication failures per client IP (`auth_failures`) and the lockouts
//! they trigger (`ip_lockouts`). Shared through the database so that every
//! replica refuses a locked-out address.

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::WriteOp;
use super::{Store, StoreError};
use crate::domain::time::Timestamp;

/// Records a failed authentication from `ip` at `at`.
pub fn record_failure(work: &mut UnitOfWork, ip: &str, at: Timestamp) {
    work.push(WriteOp::new(
        "INSERT INTO auth_failures (client_ip, at) VALUES ($1, $2)",
        vec![ip.into(), at.as_millis().into()],
    ));
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

/// Forgets failures older than `before` (all addresses), in a statement of
/// its own (maintenance). Returns how many were forgotten.
pub async fn prune_failures(store: &Store, before: Timestamp) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query("DELETE FROM auth_failures WHERE at < $1")
        .bind(before.as_millis())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Locks `ip` out until `until` (extends an existing lockout, never shortens it).
pub fn lock(work: &mut UnitOfWork, ip: &str, until: Timestamp) {
    work.push(WriteOp::new(
        "INSERT INTO ip_lockouts (client_ip, locked_until) VALUES ($1, $2) \
         ON CONFLICT (client_ip) DO UPDATE SET locked_until = excluded.locked_until \
         WHERE ip_lockouts.locked_until < excluded.locked_until",
        vec![ip.into(), until.as_millis().into()],
    ));
}

/// Lifts the lockout of `ip` and forgets every failure recorded for it, so
/// that a cleared address starts from zero failures (operator action).
pub fn clear(work: &mut UnitOfWork, ip: &str) {
    work.push(WriteOp::new(
        "DELETE FROM ip_lockouts WHERE client_ip = $1",
        vec![ip.into()],
    ));
    work.push(WriteOp::new(
        "DELETE FROM auth_failures WHERE client_ip = $1",
        vec![ip.into()],
    ));
}

/// Whether `ip` has a lockout row (lifted or not) and how many failures are
/// recorded for it (what a clear would remove).
pub async fn recorded<'e>(db: impl Executor<'e, Database = Any>, ip: &str) -> Result<(bool, i64), StoreError> {
    let (locks, failures): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM ip_lockouts WHERE client_ip = $1), \
         (SELECT COUNT(*) FROM auth_failures WHERE client_ip = $1)",
    )
    .bind(ip)
    .fetch_one(db)
    .await?;
    Ok((locks > 0, failures))
}

impl super::ports::LockoutStore for Store {
    fn record_auth_failure(&self, work: &mut UnitOfWork, ip: &str, at: Timestamp) {
        record_failure(work, ip, at);
    }

    async fn auth_failures_since(&self, ip: &str, since: Timestamp) -> Result<i64, StoreError> {
        failures_since(self.reader(), ip, since).await
    }

    async fn prune_auth_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        prune_failures(self, before).await
    }

    fn lock_address(&self, work: &mut UnitOfWork, ip: &str, until: Timestamp) {
        lock(work, ip, until);
    }

    fn clear_lockout(&self, work: &mut UnitOfWork, ip: &str) {
        clear(work, ip);
    }

    async fn lockout_recorded(&self, ip: &str) -> Result<(bool, i64), StoreError> {
        recorded(self.reader(), ip).await
    }
}
