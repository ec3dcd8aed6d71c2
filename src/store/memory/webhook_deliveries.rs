//! The webhook deliveries port on the double ([`WebhookDeliveryStore`]'s
//! semantics): deliveries and their leases, and the attempts written under
//! them.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::{limit, stage, MemoryStore, Tables};
use crate::store::ports::WebhookDeliveryStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_attempts::AttemptRow;
use crate::store::webhook_deliveries::{AttemptOutcome, DeliveryKey, DeliveryRow, Finish};
use crate::store::write_op::RowCounts;
use crate::store::StoreError;

type Key = (String, String);

fn key(k: DeliveryKey<'_>) -> Key {
    (k.endpoint_id.to_owned(), k.event_id.to_owned())
}

/// An outcome, owned, to apply at commit.
#[derive(Clone)]
struct Outcome {
    status: String,
    next_attempt_at: i64,
    status_code: Option<i64>,
    error: Option<String>,
    now: i64,
}

impl From<&AttemptOutcome<'_>> for Outcome {
    fn from(o: &AttemptOutcome<'_>) -> Self {
        Self {
            status: o.status.to_owned(),
            next_attempt_at: o.next_attempt_at,
            status_code: o.status_code,
            error: o.error.map(str::to_owned),
            now: o.now,
        }
    }
}

impl Tables {
    fn leased_under(&self, key: &Key, token: &str) -> bool {
        self.leases.get(key).is_some_and(|(t, _)| t == token)
    }

    /// Writes `outcome` and gives the lease back if the delivery is leased
    /// under `token`; whether it was.
    fn finish(&mut self, key: &Key, token: &str, outcome: &Outcome) -> bool {
        if !self.leased_under(key, token) {
            return false;
        }
        let Some(d) = self.deliveries.get_mut(key) else {
            return false;
        };
        d.status.clone_from(&outcome.status);
        d.attempts += 1;
        d.next_attempt_at = outcome.next_attempt_at;
        d.last_status_code = outcome.status_code;
        d.last_error.clone_from(&outcome.error);
        d.updated_at = outcome.now;
        self.leases.remove(key);
        true
    }

    /// Gives up the endpoint's pending deliveries, as the database does when
    /// an endpoint is disabled or deleted (their leases go too).
    pub(super) fn fail_pending_of_endpoint(&mut self, endpoint_id: &str, reason: &str, now: i64) {
        let mut failed = Vec::new();
        for (k, d) in self
            .deliveries
            .iter_mut()
            .filter(|(_, d)| d.endpoint_id == endpoint_id && d.status == "pending")
        {
            d.status = "failed".to_owned();
            d.last_error = Some(reason.to_owned());
            d.updated_at = now;
            failed.push(k.clone());
        }
        for k in failed {
            self.leases.remove(&k);
        }
    }
}

impl WebhookDeliveryStore for MemoryStore {
    async fn due_deliveries(&self, now: i64, per_endpoint: i64, page: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(self.read(|t| {
            // Each enabled endpoint's due pending deliveries, numbered:
            // leased now first, then by next attempt and event id.
            let mut by_endpoint: BTreeMap<&str, Vec<(bool, &DeliveryRow)>> = BTreeMap::new();
            for (k, d) in &t.deliveries {
                let enabled = t.endpoints.get(&d.endpoint_id).is_some_and(|e| e.status == "enabled");
                if d.status != "pending" || d.next_attempt_at > now || !enabled {
                    continue;
                }
                let leased = t.leases.get(k).is_some_and(|(_, until)| *until >= now);
                by_endpoint.entry(&d.endpoint_id).or_default().push((leased, d));
            }
            let mut free: Vec<(usize, &DeliveryRow)> = Vec::new();
            for rows in by_endpoint.values_mut() {
                rows.sort_by(|(la, a), (lb, b)| {
                    lb.cmp(la)
                        .then(a.next_attempt_at.cmp(&b.next_attempt_at))
                        .then(a.event_id.cmp(&b.event_id))
                });
                let slots = usize::try_from(per_endpoint).unwrap_or(0);
                free.extend(
                    rows.iter()
                        .enumerate()
                        .take(slots)
                        .filter(|(_, (leased, _))| !leased)
                        .map(|(slot, (_, d))| (slot, *d)),
                );
            }
            free.sort_by(|(sa, a), (sb, b)| sa.cmp(sb).then(a.next_attempt_at.cmp(&b.next_attempt_at)));
            free.into_iter().take(limit(page)).map(|(_, d)| d.clone()).collect()
        }))
    }

    fn claim_deliveries(
        &self,
        work: &mut UnitOfWork,
        keys: &[DeliveryKey<'_>],
        token: &str,
        now: i64,
        until: i64,
    ) -> RowCounts {
        let mut counts = RowCounts::default();
        let taken = counts.counter();
        let keys: Vec<Key> = keys.iter().copied().map(key).collect();
        let token = token.to_owned();
        stage(work, move |t| {
            let mut n = 0;
            for k in keys {
                let free = t.leases.get(&k).is_none_or(|(_, until)| *until < now);
                let due = t
                    .deliveries
                    .get(&k)
                    .is_some_and(|d| d.status == "pending" && d.next_attempt_at <= now);
                if free && due {
                    t.leases.insert(k, (token.clone(), until));
                    n += 1;
                }
            }
            taken.store(n, Ordering::Relaxed);
            Ok(())
        });
        counts
    }

    async fn claimed_deliveries(
        &self,
        keys: &[DeliveryKey<'_>],
        token: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self.read(|t| {
            keys.iter()
                .copied()
                .map(key)
                .filter(|k| t.deliveries.contains_key(k) && t.leased_under(k, token))
                .collect()
        }))
    }

    fn insert_attempts_if_leased(&self, work: &mut UnitOfWork, rows: &[(&AttemptRow, &str)]) {
        let rows: Vec<(AttemptRow, String)> = rows.iter().map(|(r, t)| ((*r).clone(), (*t).to_owned())).collect();
        stage(work, move |t| {
            for (row, token) in rows {
                let k = (row.endpoint_id.clone(), row.event_id.clone());
                if !t.deliveries.contains_key(&k) || !t.leased_under(&k, &token) {
                    continue;
                }
                if t.attempts.contains_key(&row.id) {
                    return Err(StoreError::Duplicate);
                }
                t.attempts.insert(row.id.clone(), row);
            }
            Ok(())
        });
    }

    fn finish_deliveries(&self, work: &mut UnitOfWork, rows: &[Finish<'_>]) -> RowCounts {
        let mut counts = RowCounts::default();
        let written = counts.counter();
        let rows: Vec<(Key, String, Outcome)> = rows
            .iter()
            .map(|f| (key(f.key), f.token.to_owned(), Outcome::from(&f.outcome)))
            .collect();
        stage(work, move |t| {
            let n = rows.iter().filter(|(k, token, o)| t.finish(k, token, o)).count();
            written.store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
            Ok(())
        });
        counts
    }

    fn finish_leased_delivery(
        &self,
        work: &mut UnitOfWork,
        k: DeliveryKey<'_>,
        token: &str,
        outcome: &AttemptOutcome<'_>,
    ) {
        let (k, token, outcome) = (key(k), token.to_owned(), Outcome::from(outcome));
        stage(work, move |t| {
            if t.finish(&k, &token, &outcome) {
                Ok(())
            } else {
                Err(StoreError::Conflict)
            }
        });
    }

    fn release_delivery(&self, work: &mut UnitOfWork, k: DeliveryKey<'_>, token: &str) {
        let (k, token) = (key(k), token.to_owned());
        stage(work, move |t| {
            if t.leased_under(&k, &token) {
                t.leases.remove(&k);
            }
            Ok(())
        });
    }

    async fn recorded_attempts(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        Ok(self.read(|t| {
            ids.iter()
                .filter(|id| t.attempts.contains_key(**id))
                .map(|id| (*id).to_owned())
                .collect()
        }))
    }
}
