//! Online KEK rotation: every live token's data key, the data key of every
//! stored idempotent response, and every webhook signing secret are
//! re-wrapped under a new key-encryption key while the gateway keeps serving.
//! Ciphertexts are not touched (only the small wrapped key changes), each
//! record is updated on its own, conditionally on still having the old wrapped
//! key, so the walk can be interrupted and resumed at any point, and records
//! created meanwhile are picked up by the next pass. Webhook secrets are
//! re-wrapped on full runs (without `--limit`), after the tokens and responses.

use crate::domain::audit::Outcome;
use crate::store::{self, Store};
use crate::vault::{self, Aad, KekProvider, KekVersion, ResponseAad, Sealed};

use super::actor::Actor;
use super::ServiceError;

/// Records read per page.
const PAGE: i64 = 200;

/// Progress of a rotation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RotationReport {
    pub rewrapped: u64,
    /// Tokens that changed under us (shredded or rotated concurrently).
    pub skipped: u64,
    /// Tokens still under another version (0 when the rotation is complete).
    pub remaining: i64,
    /// Stored idempotent responses re-wrapped.
    pub responses_rewrapped: u64,
    /// Responses that changed under us (expired, or rotated concurrently).
    pub responses_skipped: u64,
    /// Stored responses still under another version.
    pub responses_remaining: i64,
}

impl RotationReport {
    fn handled(&self) -> u64 {
        self.rewrapped + self.skipped + self.responses_rewrapped + self.responses_skipped
    }
}

/// Re-wraps up to `limit` (all, if `None`) data keys to `to`: tokens first,
/// then stored idempotent responses. `keyring` must hold the old versions and
/// `to`. `progress` is called after every page.
pub async fn rotate(
    store: &Store,
    keyring: &dyn KekProvider,
    actor: &Actor,
    to: KekVersion,
    limit: Option<u64>,
    mut progress: impl FnMut(&RotationReport),
) -> Result<RotationReport, ServiceError> {
    let target = i64::from(to.get());
    let mut report = RotationReport::default();
    let mut after = String::new();
    'pages: loop {
        let page = store::card_tokens::page_not_at_version(store.reader(), target, &after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        for row in page {
            if limit.is_some_and(|l| report.handled() >= l) {
                break 'pages;
            }
            let from = KekVersion::new(
                u32::try_from(row.kek_version).map_err(|_| vault::VaultError::Malformed("kek version"))?,
            );
            let sealed = Sealed::from_base64(from, &row.wrapped_dek, &row.ciphertext)?;
            let aad = Aad {
                token_id: &row.id,
                merchant_id: &row.merchant_id,
            };
            let rewrapped = vault::rewrap(keyring, aad, &sealed, to)?;
            let mut tx = store.begin().await?;
            let changed = store::card_tokens::rewrap(
                &mut *tx,
                &row.id,
                row.kek_version,
                target,
                &rewrapped.wrapped_dek_base64(),
            )
            .await?;
            tx.commit().await?;
            if changed {
                report.rewrapped += 1;
            } else {
                report.skipped += 1;
            }
        }
        progress(&report);
    }
    if limit.is_none_or(|l| report.handled() < l) {
        rotate_responses(store, keyring, to, limit, &mut report, &mut progress).await?;
    }
    if limit.is_none() {
        let (rewrapped, skipped) = super::webhook_endpoints::rewrap_secrets(store, keyring, to).await?;
        report.rewrapped += rewrapped;
        report.skipped += skipped;
        progress(&report);
    }
    let webhook_secrets = super::webhook_endpoints::secrets_by_kek_version(store).await?;
    let elsewhere = |counts: &[(i64, i64)]| counts.iter().filter(|(v, _)| *v != target).map(|(_, n)| n).sum();
    let tokens = status(store).await?;
    report.remaining = elsewhere(&tokens) + elsewhere(&webhook_secrets);
    report.responses_remaining = elsewhere(&response_status(store).await?);
    let mut event = actor.event("vault.kek_rotated", Outcome::Success);
    event.resource = Some(format!("kek version {to}"));
    event.reason = Some(format!(
        "{} data keys re-wrapped, {} skipped, {} remaining under other versions; \
         stored responses: {} re-wrapped, {} skipped, {} remaining",
        report.rewrapped,
        report.skipped,
        report.remaining,
        report.responses_rewrapped,
        report.responses_skipped,
        report.responses_remaining
    ));
    let mut tx = store.begin().await?;
    store::audit::append(&mut tx, &[event]).await?;
    tx.commit().await?;
    Ok(report)
}

/// Live tokens per KEK version.
pub async fn status(store: &Store) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store::card_tokens::count_by_kek_version(store.reader()).await?)
}

/// Stored idempotent responses per KEK version.
pub async fn response_status(store: &Store) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store::idempotency_keys::count_by_kek_version(store.reader()).await?)
}

/// The second walk of [`rotate`]: stored idempotent responses, in (merchant,
/// key) order, each updated only if it still holds the wrapped key read (a
/// record that expired and was reused meanwhile is skipped).
async fn rotate_responses(
    store: &Store,
    keyring: &dyn KekProvider,
    to: KekVersion,
    limit: Option<u64>,
    report: &mut RotationReport,
    progress: &mut impl FnMut(&RotationReport),
) -> Result<(), ServiceError> {
    let target = i64::from(to.get());
    let mut after: Option<store::idempotency_keys::WrappedResponseRow> = None;
    loop {
        let cursor = after.as_ref().map_or(
            store::idempotency_keys::RecordKey {
                merchant_id: "",
                mode: "",
                lineage_id: "",
                key: "",
            },
            |row| row.record(),
        );
        let page = store::idempotency_keys::page_not_at_version(store.reader(), target, cursor, PAGE).await?;
        let Some(last) = page.last().cloned() else { break };
        for row in &page {
            if limit.is_some_and(|l| report.handled() >= l) {
                return Ok(());
            }
            let from = KekVersion::new(
                u32::try_from(row.kek_version).map_err(|_| vault::VaultError::Malformed("kek version"))?,
            );
            let sealed = Sealed::from_base64(from, &row.wrapped_dek, &row.response)?;
            let record = crate::services::idempotency::response_record_id(&row.key, &row.request_mac);
            let aad = ResponseAad {
                merchant_id: &row.merchant_id,
                record_id: &record,
            };
            let rewrapped = vault::rewrap(keyring, aad, &sealed, to)?;
            let mut tx = store.begin().await?;
            let changed = store::idempotency_keys::rewrap(
                &mut *tx,
                row.record(),
                &row.wrapped_dek,
                target,
                &rewrapped.wrapped_dek_base64(),
            )
            .await?;
            tx.commit().await?;
            if changed {
                report.responses_rewrapped += 1;
            } else {
                report.responses_skipped += 1;
            }
        }
        after = Some(last);
        progress(report);
    }
    Ok(())
}
