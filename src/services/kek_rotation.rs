//! Online KEK rotation and its inventory. A KEK wraps the data key of every
//! live token, of every stored idempotent response, of every webhook
//! signing secret (current and previous), and of every processor
//! connection's credentials; [`inventory`] counts all of them per KEK
//! version and [`rotate`] re-wraps all of them under a new one while the
//! gateway keeps serving. Anything new that the vault seals must join both,
//! or `vault status` would call a KEK unused while it still opens something.
//!
//! Ciphertexts are not touched (only the small wrapped key changes), each
//! record is updated on its own, conditionally on still having the old wrapped
//! key, so the walk can be interrupted and resumed at any point, and records
//! created meanwhile are picked up by the next pass.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::audit::Outcome;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{self, Store};
use crate::vault::{self, Aad, KekProvider, KekVersion, ResponseAad, Sealed};

use super::actor::Actor;
use super::ServiceError;

/// Records read per page.
const PAGE: i64 = 200;

/// What one KEK version wraps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Wrapped {
    pub version: i64,
    /// Live (not shredded) card tokens.
    pub tokens: i64,
    /// Stored answers to `Idempotency-Key` requests.
    pub idempotent_responses: i64,
    /// Webhook signing secrets, current and previous ones.
    pub webhook_secrets: i64,
    /// Processor connections' credentials (active and disabled ones).
    pub connection_credentials: i64,
}

impl Wrapped {
    /// Everything this version wraps.
    pub fn total(&self) -> i64 {
        self.tokens + self.idempotent_responses + self.webhook_secrets + self.connection_credentials
    }
}

/// Everything wrapped by a KEK, per version (ascending; versions that wrap
/// nothing are absent).
pub async fn inventory(store: &Store) -> Result<Vec<Wrapped>, ServiceError> {
    let mut by_version: BTreeMap<i64, Wrapped> = BTreeMap::new();
    fn entry(map: &mut BTreeMap<i64, Wrapped>, version: i64) -> &mut Wrapped {
        map.entry(version).or_insert(Wrapped {
            version,
            ..Wrapped::default()
        })
    }
    for (v, n) in store::card_tokens::count_by_kek_version(store.reader()).await? {
        entry(&mut by_version, v).tokens = n;
    }
    for (v, n) in store::idempotency_keys::count_by_kek_version(store.reader()).await? {
        entry(&mut by_version, v).idempotent_responses = n;
    }
    for (v, n) in super::webhook_endpoints::secrets_by_kek_version(store).await? {
        entry(&mut by_version, v).webhook_secrets = n;
    }
    for (v, n) in super::connections::credentials_by_kek_version(store).await? {
        entry(&mut by_version, v).connection_credentials = n;
    }
    Ok(by_version.into_values().collect())
}

/// One kind of record in a rotation.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Walk {
    pub rewrapped: u64,
    /// Records that changed under us (shredded, expired or rotated
    /// concurrently); a changed record is wrapped under the current KEK.
    pub skipped: u64,
    /// Still under another version after this run (0 when complete).
    pub remaining: i64,
}

/// Progress of a rotation.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RotationReport {
    pub tokens: Walk,
    pub idempotent_responses: Walk,
    pub webhook_secrets: Walk,
    pub connection_credentials: Walk,
    /// Nothing is left under another version.
    pub complete: bool,
}

impl RotationReport {
    fn handled(&self) -> u64 {
        [
            self.tokens,
            self.idempotent_responses,
            self.webhook_secrets,
            self.connection_credentials,
        ]
        .iter()
        .map(|w| w.rewrapped + w.skipped)
        .sum()
    }

    pub fn rewrapped(&self) -> u64 {
        self.tokens.rewrapped
            + self.idempotent_responses.rewrapped
            + self.webhook_secrets.rewrapped
            + self.connection_credentials.rewrapped
    }

    pub fn skipped(&self) -> u64 {
        self.tokens.skipped
            + self.idempotent_responses.skipped
            + self.webhook_secrets.skipped
            + self.connection_credentials.skipped
    }
}

/// Re-wraps up to `limit` (all, if `None`) data keys to `to`: tokens, then
/// stored idempotent responses, then webhook secrets, then processor
/// connections' credentials. `keyring` must hold the
/// old versions and `to`. `progress` is called after every page.
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
    loop {
        let page = store::card_tokens::page_not_at_version(store.reader(), target, &after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        // One unit per page; each token is re-wrapped only if unchanged.
        let mut work = UnitOfWork::new();
        let mut outcomes = Vec::new();
        let page_len = page.len();
        for row in page {
            if limit.is_some_and(|l| report.handled() + outcomes.len() as u64 >= l) {
                break;
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
            let changed = Arc::new(AtomicBool::new(false));
            store::card_tokens::rewrap(
                &mut work,
                &row.id,
                row.kek_version,
                target,
                &rewrapped.wrapped_dek_base64(),
                changed.clone(),
            );
            outcomes.push(changed);
        }
        let stopped = outcomes.len() < page_len;
        store.commit(work).await?;
        count(&outcomes, &mut report.tokens);
        progress(&report);
        if stopped {
            break;
        }
    }
    if limit.is_none_or(|l| report.handled() < l) {
        rotate_responses(store, keyring, to, limit, &mut report, &mut progress).await?;
    }
    let budget = limit.map(|l| l.saturating_sub(report.handled()));
    if budget != Some(0) {
        let (rewrapped, skipped) = super::webhook_endpoints::rewrap_secrets(store, keyring, to, budget).await?;
        report.webhook_secrets.rewrapped = rewrapped;
        report.webhook_secrets.skipped = skipped;
        progress(&report);
    }
    let budget = limit.map(|l| l.saturating_sub(report.handled()));
    if budget != Some(0) {
        let (rewrapped, skipped) = super::connections::rewrap_credentials(store, keyring, to, budget).await?;
        report.connection_credentials.rewrapped = rewrapped;
        report.connection_credentials.skipped = skipped;
        progress(&report);
    }
    for wrapped in inventory(store).await?.iter().filter(|w| w.version != target) {
        report.tokens.remaining += wrapped.tokens;
        report.idempotent_responses.remaining += wrapped.idempotent_responses;
        report.webhook_secrets.remaining += wrapped.webhook_secrets;
        report.connection_credentials.remaining += wrapped.connection_credentials;
    }
    report.complete = report.tokens.remaining
        + report.idempotent_responses.remaining
        + report.webhook_secrets.remaining
        + report.connection_credentials.remaining
        == 0;
    let mut event = actor.event("vault.kek_rotated", Outcome::Success);
    event.resource = Some(format!("kek version {to}"));
    event.reason = Some(format!(
        "tokens: {} re-wrapped, {} skipped, {} remaining under other versions; \
         stored responses: {} re-wrapped, {} skipped, {} remaining; \
         webhook secrets: {} re-wrapped, {} skipped, {} remaining; \
         connection credentials: {} re-wrapped, {} skipped, {} remaining",
        report.tokens.rewrapped,
        report.tokens.skipped,
        report.tokens.remaining,
        report.idempotent_responses.rewrapped,
        report.idempotent_responses.skipped,
        report.idempotent_responses.remaining,
        report.webhook_secrets.rewrapped,
        report.webhook_secrets.skipped,
        report.webhook_secrets.remaining,
        report.connection_credentials.rewrapped,
        report.connection_credentials.skipped,
        report.connection_credentials.remaining,
    ));
    let mut work = UnitOfWork::new();
    work.audit(event);
    store.commit(work).await?;
    Ok(report)
}

/// Adds the outcomes of one page's conditional re-wraps to `walk`.
fn count(outcomes: &[Arc<AtomicBool>], walk: &mut Walk) {
    for changed in outcomes {
        if changed.load(Ordering::Relaxed) {
            walk.rewrapped += 1;
        } else {
            walk.skipped += 1;
        }
    }
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
        let mut work = UnitOfWork::new();
        let mut outcomes = Vec::new();
        for row in &page {
            if limit.is_some_and(|l| report.handled() + outcomes.len() as u64 >= l) {
                break;
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
            let changed = Arc::new(AtomicBool::new(false));
            store::idempotency_keys::rewrap(
                &mut work,
                row.record(),
                &row.wrapped_dek,
                target,
                &rewrapped.wrapped_dek_base64(),
                changed.clone(),
            );
            outcomes.push(changed);
        }
        let stopped = outcomes.len() < page.len();
        store.commit(work).await?;
        count(&outcomes, &mut report.idempotent_responses);
        progress(report);
        if stopped {
            return Ok(());
        }
        after = Some(last);
    }
    Ok(())
}
