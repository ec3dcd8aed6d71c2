//! The operators port on the double ([`OperatorStore`]'s semantics).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{limit, matched, stage, MemoryStore};
use crate::domain::time::Timestamp;
use crate::store::operators::OperatorRow;
use crate::store::ports::OperatorStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

impl OperatorStore for MemoryStore {
    fn insert_operator(&self, work: &mut UnitOfWork, row: &OperatorRow) {
        let row = row.clone();
        stage(work, move |t| {
            if t.operators.contains_key(&row.id) || t.operators.values().any(|o| o.name == row.name) {
                return Err(StoreError::Duplicate);
            }
            t.operators.insert(row.id.clone(), row);
            Ok(())
        });
    }

    async fn get_operator_by_name(&self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        Ok(self.read(|t| t.operators.values().find(|o| o.name == name).cloned()))
    }

    async fn list_operators(&self, after: &str, page: i64) -> Result<Vec<OperatorRow>, StoreError> {
        Ok(self.read(|t| {
            let mut rows: Vec<OperatorRow> = t
                .operators
                .values()
                .filter(|o| o.name.as_str() > after)
                .cloned()
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            rows.truncate(limit(page));
            rows
        }))
    }

    async fn count_operators(&self) -> Result<i64, StoreError> {
        Ok(self.read(|t| i64::try_from(t.operators.len()).unwrap_or(i64::MAX)))
    }

    fn delete_operator(&self, work: &mut UnitOfWork, id: &str) {
        let id = id.to_owned();
        stage(work, move |t| {
            t.operator_failures.retain(|(o, _)| *o != id);
            matched(t.operators.remove(&id)).map(drop)
        });
    }

    fn accept_operator_step(&self, work: &mut UnitOfWork, id: &str, step: i64) {
        let id = id.to_owned();
        stage(work, move |t| {
            let row = matched(t.operators.get_mut(&id))?;
            if row.last_used_step.is_some_and(|last| last >= step) {
                return Err(StoreError::Conflict);
            }
            row.last_used_step = Some(step);
            Ok(())
        });
    }

    fn record_operator_failure(&self, work: &mut UnitOfWork, id: &str, at: Timestamp) {
        let id = id.to_owned();
        stage(work, move |t| {
            t.operator_failures.push((id, at.as_millis()));
            Ok(())
        });
    }

    fn clear_operator_failures(&self, work: &mut UnitOfWork, id: &str) {
        let id = id.to_owned();
        stage(work, move |t| {
            t.operator_failures.retain(|(o, _)| *o != id);
            Ok(())
        });
    }

    async fn operator_failures_since(&self, id: &str, since: Timestamp) -> Result<i64, StoreError> {
        let since = since.as_millis();
        Ok(self.read(|t| {
            let n = t
                .operator_failures
                .iter()
                .filter(|(o, at)| o == id && *at >= since)
                .count();
            i64::try_from(n).unwrap_or(i64::MAX)
        }))
    }

    fn lock_operator(&self, work: &mut UnitOfWork, id: &str, until: Timestamp) {
        let id = id.to_owned();
        stage(work, move |t| {
            if let Some(row) = t.operators.get_mut(&id) {
                let until = until.as_millis();
                row.locked_until = Some(row.locked_until.map_or(until, |was| was.max(until)));
            }
            Ok(())
        });
    }

    async fn operators_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        page: i64,
    ) -> Result<Vec<OperatorRow>, StoreError> {
        Ok(self.read(|t| {
            t.operators
                .values()
                .filter(|o| o.kek_version != version && o.id.as_str() > after)
                .take(limit(page))
                .cloned()
                .collect()
        }))
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
        let (id, expected, wrapped) = (id.to_owned(), expected_wrapped.to_owned(), wrapped_dek.to_owned());
        stage(work, move |t| {
            let row = t.operators.get_mut(&id).filter(|o| o.wrapped_dek == expected);
            changed.store(row.is_some(), Ordering::Relaxed);
            if let Some(row) = row {
                row.kek_version = to;
                row.wrapped_dek = wrapped;
            }
            Ok(())
        });
    }

    async fn operator_secrets_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self.read(|t| {
            let mut counts = std::collections::BTreeMap::new();
            for o in t.operators.values() {
                *counts.entry(o.kek_version).or_insert(0i64) += 1;
            }
            counts.into_iter().collect()
        }))
    }
}
