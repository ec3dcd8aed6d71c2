//! The `anomalies` and `key_countries` tables ([`AnomalyStore`]): alerts,
//! unique per detector, subject and window (a second replica's insert is
//! `Duplicate`), and the countries each key was used from.

use sqlx::{Any, Executor};

use super::ports::AnomalyStore;
use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{Store, StoreError};
use crate::domain::anomaly::{Anomaly, Detector, Response, Severity, SubjectKind};
use crate::domain::api_key::Mode;
use crate::domain::ids::{AnomalyId, ApiKeyId, MerchantId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

const COLUMNS: &str = "id, detector, severity, subject_kind, subject, merchant_id, mode, window_start, \
                       window_secs, observed, baseline, action, throttle_until, step_up_until, evidence, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    detector: String,
    severity: String,
    subject_kind: String,
    subject: String,
    merchant_id: Option<String>,
    mode: Option<String>,
    window_start: i64,
    window_secs: i64,
    observed: i64,
    baseline: i64,
    action: String,
    throttle_until: Option<i64>,
    step_up_until: Option<i64>,
    evidence: String,
    created_at: i64,
}

impl TryFrom<Row> for Anomaly {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let corrupt = |column: &str| StoreError::Corrupt(format!("anomalies.{column}"));
        let merchant = match (r.merchant_id, r.mode) {
            (Some(m), Some(mode)) => Some((
                MerchantId::from_trusted(m),
                Mode::parse(&mode).ok_or_else(|| corrupt("mode"))?,
            )),
            _ => None,
        };
        Ok(Anomaly {
            id: AnomalyId::from_trusted(r.id),
            detector: Detector::parse(&r.detector).ok_or_else(|| corrupt("detector"))?,
            severity: Severity::parse(&r.severity).ok_or_else(|| corrupt("severity"))?,
            subject_kind: SubjectKind::parse(&r.subject_kind).ok_or_else(|| corrupt("subject_kind"))?,
            subject: r.subject,
            merchant,
            window_start: Timestamp::from_millis(r.window_start),
            window_secs: r.window_secs,
            observed: r.observed,
            baseline: r.baseline,
            response: Response::parse(&r.action).ok_or_else(|| corrupt("action"))?,
            throttle_until: r.throttle_until.map(Timestamp::from_millis),
            step_up_until: r.step_up_until.map(Timestamp::from_millis),
            evidence: serde_json::from_str(&r.evidence).map_err(|_| corrupt("evidence"))?,
            created_at: Timestamp::from_millis(r.created_at),
        })
    }
}

/// Stages the alert; the unique (detector, subject, window_start, severity)
/// makes a second one change no row, which fails its unit with `Duplicate`
/// (without an error that would roll back the rest of the batch).
pub fn insert(work: &mut UnitOfWork, a: &Anomaly) {
    let (merchant, mode) = match &a.merchant {
        Some((m, mode)) => (Some(m.as_str()), Some(mode.as_str())),
        None => (None, None),
    };
    work.push(
        WriteOp::new(
            "INSERT INTO anomalies (id, detector, severity, subject_kind, subject, merchant_id, mode, window_start, \
             window_secs, observed, baseline, action, throttle_until, step_up_until, evidence, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING",
            vec![
                a.id.as_str().into(),
                a.detector.as_str().into(),
                a.severity.as_str().into(),
                a.subject_kind.as_str().into(),
                a.subject.as_str().into(),
                merchant.into(),
                mode.into(),
                a.window_start.as_millis().into(),
                a.window_secs.into(),
                a.observed.into(),
                a.baseline.into(),
                a.response.as_str().into(),
                a.throttle_until.map(Timestamp::as_millis).into(),
                a.step_up_until.map(Timestamp::as_millis).into(),
                serde_json::Value::Object(a.evidence.clone()).to_string().into(),
                a.created_at.as_millis().into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
}

/// The tenant's alerts before `before` (an id; `None`: from the newest).
pub async fn list_for_tenant<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Anomaly>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM anomalies WHERE merchant_id = $1 AND mode = $2 AND ($3 = '' OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(tenant.merchant_str())
        .bind(tenant.mode_str())
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(Anomaly::try_from).collect()
}

/// Every alert before `before`, newest first (operator use).
pub async fn list_all<'e>(
    db: impl Executor<'e, Database = Any>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Anomaly>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM anomalies WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2");
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.into_iter().map(Anomaly::try_from).collect()
}

/// A timed response whose subjects every replica reads: the column that
/// holds its end.
#[derive(Debug, Clone, Copy)]
pub enum Restriction {
    Throttle,
    StepUp,
}

/// The subjects under `restriction` at `now`, each with its latest end.
pub async fn active<'e>(
    db: impl Executor<'e, Database = Any>,
    restriction: Restriction,
    now: Timestamp,
    limit: i64,
) -> Result<Vec<(String, Timestamp)>, StoreError> {
    // One of two fixed statements: no text from outside reaches the SQL.
    let sql = match restriction {
        Restriction::Throttle => {
            "SELECT subject, MAX(throttle_until) FROM anomalies WHERE throttle_until > $1 GROUP BY subject LIMIT $2"
        }
        Restriction::StepUp => {
            "SELECT subject, MAX(step_up_until) FROM anomalies WHERE step_up_until > $1 GROUP BY subject LIMIT $2"
        }
    };
    let rows: Vec<(String, i64)> = sqlx::query_as(sql)
        .bind(now.as_millis())
        .bind(limit)
        .fetch_all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(subject, until)| (subject, Timestamp::from_millis(until)))
        .collect())
}

/// The countries `key` was used from.
pub async fn countries<'e>(db: impl Executor<'e, Database = Any>, key: &ApiKeyId) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT country FROM key_countries WHERE key_id = $1 ORDER BY country")
        .bind(key.as_str())
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(c,)| c).collect())
}

/// Stages the (key, country) pair; one already recorded is `Duplicate`.
pub fn insert_country(work: &mut UnitOfWork, key: &ApiKeyId, country: &str, at: Timestamp) {
    work.push(
        WriteOp::new(
            "INSERT INTO key_countries (key_id, country, first_seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            vec![key.as_str().into(), country.into(), at.as_millis().into()],
        )
        .expect_one(Failure::Duplicate),
    );
}

impl AnomalyStore for Store {
    fn insert_anomaly(&self, work: &mut UnitOfWork, anomaly: &Anomaly) {
        insert(work, anomaly);
    }

    async fn list_anomalies_for_tenant(
        &self,
        tenant: &Tenant,
        before: Option<&AnomalyId>,
        limit: i64,
    ) -> Result<Vec<Anomaly>, StoreError> {
        list_for_tenant(self.reader(), tenant, before.map(AnomalyId::as_str), limit).await
    }

    async fn list_anomalies(&self, before: Option<&AnomalyId>, limit: i64) -> Result<Vec<Anomaly>, StoreError> {
        list_all(self.reader(), before.map(AnomalyId::as_str), limit).await
    }

    async fn active_throttles(&self, now: Timestamp, limit: i64) -> Result<Vec<(String, Timestamp)>, StoreError> {
        active(self.reader(), Restriction::Throttle, now, limit).await
    }

    async fn active_step_ups(&self, now: Timestamp, limit: i64) -> Result<Vec<(String, Timestamp)>, StoreError> {
        active(self.reader(), Restriction::StepUp, now, limit).await
    }

    async fn key_countries(&self, key: &ApiKeyId) -> Result<Vec<String>, StoreError> {
        countries(self.reader(), key).await
    }

    fn insert_key_country(&self, work: &mut UnitOfWork, key: &ApiKeyId, country: &str, at: Timestamp) {
        insert_country(work, key, country, at);
    }
}
