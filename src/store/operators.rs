//! The `operators` and `operator_failures` tables: operators enrolled for
//! step-up, their TOTP secrets sealed (never in clear), the last accepted
//! time step (raised only by a conditional UPDATE: the replay guard), their
//! failed codes and lockouts.
//!
//! Single-statement primitives; the decisions are `services::operators`'.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{Store, StoreError};
use crate::domain::time::Timestamp;

/// An operator row as stored. `wrapped_dek` and `ciphertext` are the sealed
/// TOTP secret (base64) under KEK `kek_version`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperatorRow {
    pub id: String,
    pub name: String,
    pub kek_version: i64,
    pub wrapped_dek: String,
    pub ciphertext: String,
    pub created_at: i64,
    pub last_used_step: Option<i64>,
    pub locked_until: Option<i64>,
}

const COLUMNS: &str = "id, name, kek_version, wrapped_dek, ciphertext, created_at, last_used_step, locked_until";

/// Adds an operator; a taken id or name fails the unit with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, row: &OperatorRow) {
    work.push(
        WriteOp::new(
            "INSERT INTO operators (id, name, kek_version, wrapped_dek, ciphertext, created_at, last_used_step, \
             locked_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            vec![
                row.id.as_str().into(),
                row.name.as_str().into(),
                row.kek_version.into(),
                row.wrapped_dek.as_str().into(),
                row.ciphertext.as_str().into(),
                row.created_at.into(),
                row.last_used_step.into(),
                row.locked_until.into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
}

pub async fn get_by_name<'e>(
    db: impl Executor<'e, Database = Any>,
    name: &str,
) -> Result<Option<OperatorRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM operators WHERE name = $1"))
            .bind(name)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    after: &str,
    limit: i64,
) -> Result<Vec<OperatorRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM operators WHERE name > $1 ORDER BY name LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

pub async fn count<'e>(db: impl Executor<'e, Database = Any>) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM operators").fetch_one(db).await?;
    Ok(n)
}

/// Removes an operator and its failures; a missing one fails the unit with
/// `Conflict`.
pub fn delete(work: &mut UnitOfWork, id: &str) {
    work.push(WriteOp::new(
        "DELETE FROM operator_failures WHERE operator_id = $1",
        vec![id.into()],
    ));
    work.push(WriteOp::new("DELETE FROM operators WHERE id = $1", vec![id.into()]).expect_one(Failure::Conflict));
}

/// Raises the last accepted step to `step` if it is lower (or none); the
/// unit fails with `Conflict` otherwise.
pub fn accept_step(work: &mut UnitOfWork, id: &str, step: i64) {
    work.push(
        WriteOp::new(
            "UPDATE operators SET last_used_step = $1 WHERE id = $2 \
             AND (last_used_step IS NULL OR last_used_step < $1)",
            vec![step.into(), id.into()],
        )
        .expect_one(Failure::Conflict),
    );
}

pub fn record_failure(work: &mut UnitOfWork, id: &str, at: Timestamp) {
    work.push(WriteOp::new(
        "INSERT INTO operator_failures (operator_id, at) VALUES ($1, $2)",
        vec![id.into(), at.as_millis().into()],
    ));
}

pub fn clear_failures(work: &mut UnitOfWork, id: &str) {
    work.push(WriteOp::new(
        "DELETE FROM operator_failures WHERE operator_id = $1",
        vec![id.into()],
    ));
}

pub async fn failures_since<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &str,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM operator_failures WHERE operator_id = $1 AND at >= $2")
        .bind(id)
        .bind(since.as_millis())
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// Locks an operator out until `until` (extends, never shortens).
pub fn lock(work: &mut UnitOfWork, id: &str, until: Timestamp) {
    work.push(WriteOp::new(
        "UPDATE operators SET locked_until = $1 WHERE id = $2 AND (locked_until IS NULL OR locked_until < $1)",
        vec![until.as_millis().into(), id.into()],
    ));
}

pub async fn page_not_at_version<'e>(
    db: impl Executor<'e, Database = Any>,
    version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<OperatorRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM operators WHERE kek_version <> $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
    .bind(version)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

pub fn rewrap(
    work: &mut UnitOfWork,
    id: &str,
    expected_wrapped: &str,
    to: i64,
    wrapped_dek: &str,
    changed: Arc<AtomicBool>,
) {
    work.push(
        WriteOp::new(
            "UPDATE operators SET kek_version = $1, wrapped_dek = $2 WHERE id = $3 AND wrapped_dek = $4",
            vec![to.into(), wrapped_dek.into(), id.into(), expected_wrapped.into()],
        )
        .report_to(changed),
    );
}

pub async fn count_by_kek_version<'e>(db: impl Executor<'e, Database = Any>) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT kek_version, COUNT(*) FROM operators GROUP BY kek_version ORDER BY kek_version")
            .fetch_all(db)
            .await?,
    )
}

impl super::ports::OperatorStore for Store {
    fn insert_operator(&self, work: &mut UnitOfWork, row: &OperatorRow) {
        insert(work, row);
    }

    async fn get_operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        get_by_name(self.reader(), name).await
    }

    async fn list_operators(&self, after: &str, limit: i64) -> Result<Vec<OperatorRow>, StoreError> {
        list(self.reader(), after, limit).await
    }

    async fn count_operators(&self) -> Result<i64, StoreError> {
        count(self.reader()).await
    }

    fn delete_operator(&self, work: &mut UnitOfWork, id: &str) {
        delete(work, id);
    }

    fn accept_operator_step(&self, work: &mut UnitOfWork, id: &str, step: i64) {
        accept_step(work, id, step);
    }

    fn record_operator_failure(&self, work: &mut UnitOfWork, id: &str, at: Timestamp) {
        record_failure(work, id, at);
    }

    fn clear_operator_failures(&self, work: &mut UnitOfWork, id: &str) {
        clear_failures(work, id);
    }

    async fn operator_failures_since(&self, id: &str, since: Timestamp) -> Result<i64, StoreError> {
        failures_since(self.reader(), id, since).await
    }

    fn lock_operator(&self, work: &mut UnitOfWork, id: &str, until: Timestamp) {
        lock(work, id, until);
    }

    async fn operators_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<OperatorRow>, StoreError> {
        page_not_at_version(self.reader(), version, after, limit).await
    }

    fn rewrap_operator(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_wrapped: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        rewrap(work, id, expected_wrapped, to, wrapped_dek, changed);
    }

    async fn operator_secrets_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        count_by_kek_version(self.reader()).await
    }
}
