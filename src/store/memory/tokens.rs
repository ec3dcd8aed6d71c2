//! The tokens port on the double ([`TokenStore`]'s semantics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{limit, matched, stage, MemoryStore, Tables};
use crate::domain::ids::TokenId;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::{TokenRow, WrappedKeyRow};
use crate::store::ports::TokenStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

/// The live token `id` of `tenant`.
fn live<'t>(t: &'t Tables, tenant: &Tenant, id: &TokenId) -> Option<&'t TokenRow> {
    t.tokens
        .get(id.as_str())
        .filter(|r| r.merchant_id == tenant.merchant_str() && r.mode == tenant.mode_str() && r.shredded_at.is_none())
}

impl TokenStore for MemoryStore {
    fn insert_token(&self, work: &mut UnitOfWork, row: &TokenRow) {
        let row = TokenRow {
            shredded_at: None,
            ..row.clone()
        };
        stage(work, move |t| {
            if t.tokens.contains_key(&row.id) {
                return Err(StoreError::Duplicate);
            }
            t.merchant_exists(&row.merchant_id)?;
            t.tokens.insert(row.id.clone(), row);
            Ok(())
        });
    }

    async fn get_live_token(&self, tenant: &Tenant, id: &TokenId) -> Result<Option<TokenRow>, StoreError> {
        Ok(self.read(|t| live(t, tenant, id).cloned()))
    }

    async fn get_live_token_for_payment(&self, tenant: &Tenant, id: &TokenId) -> Result<Option<TokenRow>, StoreError> {
        self.get_live_token(tenant, id).await
    }

    fn shred_token(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &TokenId, at: Timestamp) {
        let (tenant, id) = (tenant.clone(), id.clone());
        stage(work, move |t| {
            matched(live(t, &tenant, &id))?;
            let row = matched(t.tokens.get_mut(id.as_str()))?;
            row.wrapped_dek = None;
            row.ciphertext = None;
            row.shredded_at = Some(at.as_millis());
            Ok(())
        });
    }

    fn count_reveal(&self, work: &mut UnitOfWork, key_id: &str, now_ms: i64, window_ms: i64, limit: i64) {
        let key_id = key_id.to_owned();
        stage(work, move |t| {
            let ended = now_ms.saturating_sub(window_ms);
            match t.reveal_allowances.get_mut(&key_id) {
                None => {
                    t.reveal_allowances.insert(key_id, (now_ms, 1));
                }
                // The window ended: a new one starts with this reveal.
                Some(allowance) if allowance.0 <= ended => *allowance = (now_ms, 1),
                Some(allowance) if allowance.1 < limit => allowance.1 += 1,
                Some(_) => return Err(StoreError::Conflict),
            }
            Ok(())
        });
    }

    async fn tokens_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self.read(|t| {
            let mut counts = BTreeMap::new();
            for row in t.tokens.values().filter(|r| r.shredded_at.is_none()) {
                *counts.entry(row.kek_version).or_insert(0) += 1;
            }
            counts.into_iter().collect()
        }))
    }

    async fn tokens_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        page: i64,
    ) -> Result<Vec<WrappedKeyRow>, StoreError> {
        Ok(self.read(|t| {
            t.tokens
                .values()
                .filter(|r| r.id.as_str() > after && r.kek_version != version && r.shredded_at.is_none())
                .filter_map(|r| {
                    Some(WrappedKeyRow {
                        id: r.id.clone(),
                        merchant_id: r.merchant_id.clone(),
                        kek_version: r.kek_version,
                        wrapped_dek: r.wrapped_dek.clone()?,
                        ciphertext: r.ciphertext.clone()?,
                    })
                })
                .take(limit(page))
                .collect()
        }))
    }

    fn rewrap_token(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        from: i64,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        let (id, wrapped_dek) = (id.to_owned(), wrapped_dek.to_owned());
        stage(work, move |t| {
            let row = t
                .tokens
                .get_mut(&id)
                .filter(|r| r.kek_version == from && r.shredded_at.is_none());
            changed.store(row.is_some(), Ordering::Relaxed);
            if let Some(row) = row {
                row.kek_version = to;
                row.wrapped_dek = Some(wrapped_dek);
            }
            Ok(())
        });
    }
}
