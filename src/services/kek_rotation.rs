//! Online KEK rotation: every live token's data key is re-wrapped under a new
//! key-encryption key while the gateway keeps serving. Card ciphertexts are not
//! touched (only the small wrapped key changes), each token is updated on its
//! own, conditionally on still having the old version, so the walk can be
//! interrupted and resumed at any point, and tokens created meanwhile are
//! picked up by the next pass. Webhook signing secrets, sealed the same way,
//! are re-wrapped after the tokens (`webhook_endpoints::rewrap_secrets`).

use crate::domain::audit::Outcome;
use crate::store::{self, Store};
use crate::vault::{self, Aad, KekProvider, KekVersion, Sealed};

use super::actor::Actor;
use super::ServiceError;

/// Tokens read per page.
const PAGE: i64 = 200;

/// Progress of a rotation.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RotationReport {
    pub rewrapped: u64,
    /// Tokens that changed under us (shredded or rotated concurrently).
    pub skipped: u64,
    /// Tokens still under another version (0 when the rotation is complete).
    pub remaining: i64,
}

/// Re-wraps up to `limit` (all, if `None`) data keys to `to`. `keyring` must
/// hold the old versions and `to`. `progress` is called after every page.
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
            if limit.is_some_and(|l| report.rewrapped + report.skipped >= l) {
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
    if limit.is_none() {
        let (rewrapped, skipped) = super::webhook_endpoints::rewrap_secrets(store, keyring, to).await?;
        report.rewrapped += rewrapped;
        report.skipped += skipped;
        progress(&report);
    }
    let webhook_secrets = super::webhook_endpoints::secrets_by_kek_version(store).await?;
    report.remaining = status(store)
        .await?
        .iter()
        .chain(webhook_secrets.iter())
        .filter(|(v, _)| *v != target)
        .map(|(_, n)| n)
        .sum();
    let mut event = actor.event("vault.kek_rotated", Outcome::Success);
    event.resource = Some(format!("kek version {to}"));
    event.reason = Some(format!(
        "{} data keys re-wrapped, {} skipped, {} remaining under other versions",
        report.rewrapped, report.skipped, report.remaining
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
