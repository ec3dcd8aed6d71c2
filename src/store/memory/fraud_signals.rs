//! The fraud signals port on the double ([`SignalStore`]'s semantics).

use std::collections::BTreeSet;

use super::{stage, MemoryStore};
use crate::domain::tenant::Tenant;
use crate::store::fraud_signals::{
    KeyCounts, ObservationKeys, ObservationRow, ObservedCounts, MAX_COUNTED, USUAL_SAMPLE,
};
use crate::store::ports::SignalStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// The counts of the newest `MAX_COUNTED` of `rows` (newest last).
fn count<'a>(rows: impl DoubleEndedIterator<Item = &'a ObservationRow>, since_1h: i64, cards_too: bool) -> KeyCounts {
    let mut counts = KeyCounts::default();
    let (mut cards, mut cards_1h) = (BTreeSet::new(), BTreeSet::new());
    for row in rows.rev().take(usize::try_from(MAX_COUNTED).unwrap_or(0)) {
        let recent = row.at >= since_1h;
        let declined = i64::from(row.outcome == crate::store::fraud_signals::OUTCOME_DECLINED);
        counts.payments_24h += 1;
        counts.payments_1h += i64::from(recent);
        counts.declines_24h += declined;
        counts.declines_1h += if recent { declined } else { 0 };
        cards.insert(row.card_key.clone());
        if recent {
            cards_1h.insert(row.card_key.clone());
        }
    }
    if cards_too {
        counts.cards_24h = i64::try_from(cards.len()).unwrap_or(i64::MAX);
        counts.cards_1h = i64::try_from(cards_1h.len()).unwrap_or(i64::MAX);
    }
    counts
}

impl SignalStore for MemoryStore {
    async fn observed_counts(
        &self,
        tenant: &Tenant,
        keys: ObservationKeys<'_>,
        since_1h: i64,
        since_24h: i64,
    ) -> Result<ObservedCounts, StoreError> {
        let (merchant, mode) = (tenant.merchant_str(), tenant.mode_str());
        Ok(self.read(|t| {
            let mut rows: Vec<&ObservationRow> = t
                .fraud_observations
                .iter()
                .filter(|((m, o, _, _), _)| m == merchant && o == mode)
                .map(|(_, row)| row)
                .collect();
            rows.sort_by_key(|row| row.at);
            let of = |f: &dyn Fn(&ObservationRow) -> bool, cards_too: bool| {
                count(
                    rows.iter().copied().filter(|r| r.at >= since_24h && f(r)),
                    since_1h,
                    cards_too,
                )
            };
            ObservedCounts {
                card: of(&|r| r.card_key == keys.card_key, false),
                ip: of(&|r| keys.ip_key.is_some() && r.ip_key.as_deref() == keys.ip_key, true),
                email: of(
                    &|r| keys.email_key.is_some() && r.email_key.as_deref() == keys.email_key,
                    false,
                ),
                card_seen: rows.iter().any(|r| r.card_key == keys.card_key),
            }
        }))
    }

    async fn observed_amounts(&self, tenant: &Tenant, currency: &str) -> Result<(i64, i64), StoreError> {
        let (merchant, mode) = (tenant.merchant_str(), tenant.mode_str());
        Ok(self.read(|t| {
            let mut amounts: Vec<(&String, i64)> = t
                .fraud_observations
                .iter()
                .filter(|((m, o, _, _), row)| m == merchant && o == mode && row.currency == currency)
                .map(|((_, _, id, _), row)| (id, row.amount))
                .collect();
            amounts.sort();
            let newest = amounts.iter().rev().take(usize::try_from(USUAL_SAMPLE).unwrap_or(0));
            let (n, sum) = newest.fold((0i64, 0i64), |(n, s), (_, a)| (n + 1, s.saturating_add(*a)));
            (n, sum)
        }))
    }

    async fn prune_observations(&self, before: i64) -> Result<u64, StoreError> {
        Ok(self.with_tables(|t| {
            let old = t.fraud_observations.len();
            t.fraud_observations.retain(|_, row| row.at >= before);
            u64::try_from(old.saturating_sub(t.fraud_observations.len())).unwrap_or(0)
        }))
    }

    fn insert_observation(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ObservationRow) {
        let id = (
            tenant.merchant_str().to_owned(),
            tenant.mode_str().to_owned(),
            row.payment_id.clone(),
            row.at,
        );
        let row = row.clone();
        stage(work, move |t| {
            t.fraud_observations.entry(id).or_insert(row);
            Ok(())
        });
    }
}
