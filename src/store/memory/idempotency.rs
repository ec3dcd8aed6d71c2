//! The idempotency port on the double ([`IdempotencyStore`]'s semantics):
//! records keyed by merchant, mode, lineage and client key, as the table's
//! primary key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::collections::BTreeMap;

use super::{limit, stage, MemoryStore};
use crate::domain::time::Timestamp;
use crate::store::idempotency_keys::{
    Finished, IdempotencyRow, NewClaim, RecordKey, WrappedResponseRow, DONE, IN_PROGRESS,
};
use crate::store::ports::IdempotencyStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// A record's key in the double's table.
pub(super) type RecordId = (String, String, String, String);

fn id(record: RecordKey<'_>) -> RecordId {
    (
        record.merchant_id.to_owned(),
        record.mode.to_owned(),
        record.lineage_id.to_owned(),
        record.key.to_owned(),
    )
}

impl IdempotencyStore for MemoryStore {
    fn claim_idempotency_key(&self, work: &mut UnitOfWork, claim: &NewClaim<'_>) {
        let row = IdempotencyRow {
            merchant_id: claim.record.merchant_id.to_owned(),
            mode: claim.record.mode.to_owned(),
            lineage_id: claim.record.lineage_id.to_owned(),
            key: claim.record.key.to_owned(),
            request_mac: claim.request_mac.to_owned(),
            state: IN_PROGRESS.to_owned(),
            request_id: claim.request_id.to_owned(),
            locked_until: claim.locked_until.as_millis(),
            status_code: None,
            response: None,
            wrapped_dek: None,
            kek_version: None,
            created_at: claim.now.as_millis(),
            expires_at: claim.expires_at.as_millis(),
        };
        let (key, now) = (id(claim.record), claim.now.as_millis());
        stage(work, move |t| {
            t.merchant_exists(&row.merchant_id)?;
            let free = t.idempotency.get(&key).is_none_or(|held| {
                held.expires_at <= now
                    || (held.state == IN_PROGRESS && held.locked_until <= now && held.request_mac == row.request_mac)
            });
            if !free {
                return Err(StoreError::Duplicate);
            }
            t.idempotency.insert(key, row);
            Ok(())
        });
    }

    async fn get_idempotency_record(&self, record: RecordKey<'_>) -> Result<Option<IdempotencyRow>, StoreError> {
        let key = id(record);
        Ok(self.read(|t| t.idempotency.get(&key).cloned()))
    }

    fn finish_idempotency_record(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        request_id: &str,
        finished: &Finished<'_>,
        changed: Arc<AtomicBool>,
    ) {
        let (key, request_id) = (id(record), request_id.to_owned());
        let (status, response, wrapped, version) = (
            finished.status_code,
            finished.response.to_owned(),
            finished.wrapped_dek.to_owned(),
            finished.kek_version,
        );
        stage(work, move |t| {
            let held = t
                .idempotency
                .get_mut(&key)
                .filter(|r| r.request_id == request_id && r.state == IN_PROGRESS);
            changed.store(held.is_some(), Ordering::Relaxed);
            if let Some(row) = held {
                row.state = DONE.to_owned();
                row.status_code = Some(status);
                row.response = Some(response);
                row.wrapped_dek = Some(wrapped);
                row.kek_version = Some(version);
            }
            Ok(())
        });
    }

    fn release_idempotency_record(&self, work: &mut UnitOfWork, record: RecordKey<'_>, request_id: &str) {
        let (key, request_id) = (id(record), request_id.to_owned());
        stage(work, move |t| {
            let held = t
                .idempotency
                .get(&key)
                .is_some_and(|r| r.request_id == request_id && r.state == IN_PROGRESS);
            if held {
                t.idempotency.remove(&key);
            }
            Ok(())
        });
    }

    async fn delete_expired_idempotency_records(&self, now: Timestamp) -> Result<u64, StoreError> {
        let now = now.as_millis();
        Ok(self.with_tables(|t| {
            let before = t.idempotency.len();
            t.idempotency.retain(|_, r| r.expires_at > now);
            u64::try_from(before.saturating_sub(t.idempotency.len())).unwrap_or(u64::MAX)
        }))
    }

    async fn idempotency_responses_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self.read(|t| {
            let mut counts = BTreeMap::new();
            for version in t
                .idempotency
                .values()
                .filter(|r| r.state == DONE)
                .filter_map(|r| r.kek_version)
            {
                *counts.entry(version).or_insert(0) += 1;
            }
            counts.into_iter().collect()
        }))
    }

    async fn idempotency_responses_not_at_kek_version(
        &self,
        version: i64,
        after: RecordKey<'_>,
        page: i64,
    ) -> Result<Vec<WrappedResponseRow>, StoreError> {
        let after = id(after);
        Ok(self.read(|t| {
            t.idempotency
                .iter()
                .filter(|(key, r)| **key > after && r.state == DONE && r.kek_version.is_some_and(|v| v != version))
                .filter_map(|(_, r)| {
                    Some(WrappedResponseRow {
                        merchant_id: r.merchant_id.clone(),
                        mode: r.mode.clone(),
                        lineage_id: r.lineage_id.clone(),
                        key: r.key.clone(),
                        request_mac: r.request_mac.clone(),
                        kek_version: r.kek_version?,
                        wrapped_dek: r.wrapped_dek.clone()?,
                        response: r.response.clone()?,
                    })
                })
                .take(limit(page))
                .collect()
        }))
    }

    fn rewrap_idempotency_response(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        old_wrapped_dek: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        let (key, old, new) = (id(record), old_wrapped_dek.to_owned(), wrapped_dek.to_owned());
        stage(work, move |t| {
            let row = t
                .idempotency
                .get_mut(&key)
                .filter(|r| r.state == DONE && r.wrapped_dek.as_deref() == Some(old.as_str()));
            changed.store(row.is_some(), Ordering::Relaxed);
            if let Some(row) = row {
                row.kek_version = Some(to);
                row.wrapped_dek = Some(new);
            }
            Ok(())
        });
    }
}
