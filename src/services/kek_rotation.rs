//! Online KEK rotation and its inventory. A KEK wraps the data key of every
//! live token, of every stored idempotent response, of every webhook
//! signing secret (current and previous), of every processor
//! connection's credentials and of every operator's TOTP secret;
//! [`inventory`] counts all of them per KEK
//! version and [`rotate`] re-wraps all of them under a new one while the
//! gateway keeps serving. Anything new that the vault seals must join both,
//! or `vault status` would call a KEK unused while it still opens something.
//!
//! Ciphertexts are not touched (only the small wrapped key changes), each
//! record is updated on its own, conditionally on still having the old wrapped
//! key, so the walk can be interrupted and resumed at any point, and records
//! created meanwhile are picked up by the next pass.
//!
//! Runs against the storage ports ([`KekStores`]): the token, idempotency,
//! webhook endpoint, processor connection and operator stores, which each
//! walk their own records.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::domain::audit::Outcome;
use crate::store::idempotency_keys::{RecordKey, WrappedResponseRow};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Commit, ConnectionStore, IdempotencyStore, OperatorStore, TokenStore, WebhookEndpointStore};
use crate::vault::{self, Aad, KekProvider, KekVersion, ResponseAad, Sealed};

use super::actor::Actor;
use super::ServiceError;

/// The storage ports a rotation and its inventory use.
pub trait KekStores:
    TokenStore + IdempotencyStore + WebhookEndpointStore + ConnectionStore + OperatorStore + Commit
{
}

impl<S: TokenStore + IdempotencyStore + WebhookEndpointStore + ConnectionStore + OperatorStore + Commit> KekStores
    for S
{
}

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
    /// Operators' TOTP secrets (step-up).
    pub operator_secrets: i64,
}

impl Wrapped {
    /// Everything this version wraps.
    pub fn total(&self) -> i64 {
        self.tokens
            + self.idempotent_responses
            + self.webhook_secrets
            + self.connection_credentials
            + self.operator_secrets
    }
}

/// Everything wrapped by a KEK, per version (ascending; versions that wrap
/// nothing are absent).
pub async fn inventory<S: KekStores>(store: &S) -> Result<Vec<Wrapped>, ServiceError> {
    let mut by_version: BTreeMap<i64, Wrapped> = BTreeMap::new();
    fn entry(map: &mut BTreeMap<i64, Wrapped>, version: i64) -> &mut Wrapped {
        map.entry(version).or_insert(Wrapped {
            version,
            ..Wrapped::default()
        })
    }
    for (v, n) in store.tokens_by_kek_version().await? {
        entry(&mut by_version, v).tokens = n;
    }
    for (v, n) in store.idempotency_responses_by_kek_version().await? {
        entry(&mut by_version, v).idempotent_responses = n;
    }
    for (v, n) in super::webhook_endpoints::secrets_by_kek_version(store).await? {
        entry(&mut by_version, v).webhook_secrets = n;
    }
    for (v, n) in super::connections::credentials_by_kek_version(store).await? {
        entry(&mut by_version, v).connection_credentials = n;
    }
    for (v, n) in super::operators::secrets_by_kek_version(store).await? {
        entry(&mut by_version, v).operator_secrets = n;
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
    pub operator_secrets: Walk,
    /// Nothing is left under another version.
    pub complete: bool,
}

impl RotationReport {
    fn handled(&self) -> u64 {
        self.walks().iter().map(|w| w.rewrapped + w.skipped).sum()
    }

    fn walks(&self) -> [Walk; 5] {
        [
            self.tokens,
            self.idempotent_responses,
            self.webhook_secrets,
            self.connection_credentials,
            self.operator_secrets,
        ]
    }

    pub fn rewrapped(&self) -> u64 {
        self.walks().iter().map(|w| w.rewrapped).sum()
    }

    pub fn skipped(&self) -> u64 {
        self.walks().iter().map(|w| w.skipped).sum()
    }
}

/// Re-wraps up to `limit` (all, if `None`) data keys to `to`: tokens, then
/// stored idempotent responses, then webhook secrets, then processor
/// connections' credentials, then operators' secrets. `keyring` must hold the
/// old versions and `to`. `progress` is called after every page.
pub async fn rotate<S: KekStores>(
    store: &S,
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
        let page = store.tokens_not_at_kek_version(target, &after, PAGE).await?;
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
            store.rewrap_token(
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
    let budget = limit.map(|l| l.saturating_sub(report.handled()));
    if budget != Some(0) {
        let (rewrapped, skipped) = super::operators::rewrap_secrets(store, keyring, to, budget).await?;
        report.operator_secrets.rewrapped = rewrapped;
        report.operator_secrets.skipped = skipped;
        progress(&report);
    }
    for wrapped in inventory(store).await?.iter().filter(|w| w.version != target) {
        report.tokens.remaining += wrapped.tokens;
        report.idempotent_responses.remaining += wrapped.idempotent_responses;
        report.webhook_secrets.remaining += wrapped.webhook_secrets;
        report.connection_credentials.remaining += wrapped.connection_credentials;
        report.operator_secrets.remaining += wrapped.operator_secrets;
    }
    report.complete = report.walks().iter().all(|w| w.remaining == 0);
    let mut event = actor.event("vault.kek_rotated", Outcome::Success);
    event.resource = Some(format!("kek version {to}"));
    event.reason = Some(format!(
        "tokens: {} re-wrapped, {} skipped, {} remaining under other versions; \
         stored responses: {} re-wrapped, {} skipped, {} remaining; \
         webhook secrets: {} re-wrapped, {} skipped, {} remaining; \
         connection credentials: {} re-wrapped, {} skipped, {} remaining; \
         operator secrets: {} re-wrapped, {} skipped, {} remaining",
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
        report.operator_secrets.rewrapped,
        report.operator_secrets.skipped,
        report.operator_secrets.remaining,
    ));
    let mut work = UnitOfWork::new();
    work.audit(event);
    store.commit(work).await?;
    Ok(report)
}

/// The walk of a kind of record whose sealed values are re-wrapped one
/// record per unit of work (webhook endpoints, processor connections):
/// pages of records not under the target version, in id order from
/// `page(after)`, each staged by `stage` and committed on its own, until
/// `budget` sealed values (all, if `None`) have been handled. `stage`
/// stages one conditional update (its flag set if it applied) and returns
/// how many sealed values it covers, or `None` when the record holds
/// nothing to re-wrap (counted as one skipped). Returns (re-wrapped,
/// skipped).
pub(crate) async fn walk_records<S, R, Page, PageFut>(
    store: &S,
    budget: Option<u64>,
    mut page: Page,
    id_of: fn(&R) -> &str,
    mut stage: impl FnMut(&R, &mut UnitOfWork, Arc<AtomicBool>) -> Result<Option<u64>, ServiceError>,
) -> Result<(u64, u64), ServiceError>
where
    S: Commit,
    Page: FnMut(String) -> PageFut,
    PageFut: std::future::Future<Output = Result<Vec<R>, crate::store::StoreError>>,
{
    let (mut rewrapped, mut skipped) = (0u64, 0u64);
    let mut after = String::new();
    loop {
        let records = page(after.clone()).await?;
        let Some(last) = records.last() else { break };
        after = id_of(last).to_owned();
        for record in &records {
            if budget.is_some_and(|b| rewrapped + skipped >= b) {
                return Ok((rewrapped, skipped));
            }
            let changed = Arc::new(AtomicBool::new(false));
            let mut work = UnitOfWork::new();
            let Some(values) = stage(record, &mut work, changed.clone())? else {
                skipped += 1;
                continue;
            };
            store.commit(work).await?;
            if changed.load(Ordering::Relaxed) {
                rewrapped += values;
            } else {
                skipped += values;
            }
        }
    }
    Ok((rewrapped, skipped))
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
async fn rotate_responses<S: KekStores>(
    store: &S,
    keyring: &dyn KekProvider,
    to: KekVersion,
    limit: Option<u64>,
    report: &mut RotationReport,
    progress: &mut impl FnMut(&RotationReport),
) -> Result<(), ServiceError> {
    let target = i64::from(to.get());
    let mut after: Option<WrappedResponseRow> = None;
    loop {
        let cursor = after.as_ref().map_or(
            RecordKey {
                merchant_id: "",
                mode: "",
                lineage_id: "",
                key: "",
            },
            |row| row.record(),
        );
        let page = store
            .idempotency_responses_not_at_kek_version(target, cursor, PAGE)
            .await?;
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
            store.rewrap_idempotency_response(
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

/// Inventory and rotation against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{MerchantId, TokenId};
    use crate::domain::merchant::MerchantName;
    use crate::domain::time::Timestamp;
    use crate::store::card_tokens::TokenRow;
    use crate::store::idempotency_keys::{Finished, NewClaim};
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;
    use crate::vault::{Kek, StaticKeyring};

    fn operator() -> Actor {
        Actor::Operator {
            command: "vault rotate-kek".into(),
        }
    }

    struct Fixture {
        store: MemoryStore,
        keyring: StaticKeyring,
        merchant: MerchantId,
        tokens: Vec<String>,
    }

    impl Fixture {
        /// Three tokens (one of them shredded afterwards: two live) and two
        /// stored answers, sealed under KEK 1; KEK 2 held to rotate to.
        async fn new() -> Self {
            let store = MemoryStore::new();
            let merchant =
                crate::services::merchants::create(&store, &operator(), MerchantName::parse("Sealed").unwrap())
                    .await
                    .unwrap()
                    .id;
            let keyring = StaticKeyring::new(
                KekVersion::new(1),
                [
                    (KekVersion::new(1), Kek::generate().unwrap()),
                    (KekVersion::new(2), Kek::generate().unwrap()),
                ],
            )
            .unwrap();
            let mut tokens = Vec::new();
            let mut work = UnitOfWork::new();
            for n in 0..3 {
                let id = TokenId::generate().unwrap().to_string();
                let aad = Aad {
                    token_id: &id,
                    merchant_id: merchant.as_str(),
                };
                let sealed = vault::seal(&keyring, aad, format!("424242424242424{n}").as_bytes()).unwrap();
                store.insert_token(
                    &mut work,
                    &TokenRow {
                        id: id.clone(),
                        merchant_id: merchant.to_string(),
                        mode: "test".into(),
                        brand: "visa".into(),
                        bin: "424242".into(),
                        last4: format!("424{n}"),
                        exp_month: 12,
                        exp_year: 2031,
                        fingerprint: "fp".into(),
                        kek_version: 1,
                        wrapped_dek: Some(sealed.wrapped_dek_base64()),
                        ciphertext: Some(sealed.ciphertext_base64()),
                        created_at: 1,
                        shredded_at: None,
                    },
                );
                tokens.push(id);
            }
            for key in ["order-1", "order-2"] {
                let record = RecordKey {
                    merchant_id: merchant.as_str(),
                    mode: "test",
                    lineage_id: "key_a",
                    key,
                };
                let now = Timestamp::now();
                store.claim_idempotency_key(
                    &mut work,
                    &NewClaim {
                        record,
                        request_mac: "mac",
                        request_id: "req_1",
                        now,
                        locked_until: now.saturating_add(std::time::Duration::from_secs(60)),
                        expires_at: now.saturating_add(std::time::Duration::from_secs(86_400)),
                    },
                );
                let record_id = crate::services::idempotency::response_record_id(key, "mac");
                let aad = ResponseAad {
                    merchant_id: merchant.as_str(),
                    record_id: &record_id,
                };
                let sealed = vault::seal(&keyring, aad, format!("answer {key}").as_bytes()).unwrap();
                let (wrapped, response) = (sealed.wrapped_dek_base64(), sealed.ciphertext_base64());
                let finished = Finished {
                    status_code: 200,
                    response: &response,
                    wrapped_dek: &wrapped,
                    kek_version: 1,
                };
                store.finish_idempotency_record(
                    &mut work,
                    record,
                    "req_1",
                    &finished,
                    Arc::new(AtomicBool::new(false)),
                );
            }
            store.commit(work).await.unwrap();
            let tenant = crate::domain::tenant::Tenant::new(merchant.clone(), crate::domain::api_key::Mode::Test);
            let shredded = TokenId::from_trusted(tokens.remove(2));
            let mut work = UnitOfWork::new();
            store.shred_token(&mut work, &tenant, &shredded, Timestamp::now());
            store.commit(work).await.unwrap();
            Self {
                store,
                keyring,
                merchant,
                tokens,
            }
        }

        /// Each live token's number, opened from what is stored now, with the
        /// KEK version it is wrapped under.
        async fn opened_tokens(&self) -> Vec<(i64, String)> {
            let tenant = crate::domain::tenant::Tenant::new(self.merchant.clone(), crate::domain::api_key::Mode::Test);
            let mut opened = Vec::new();
            for id in &self.tokens {
                let row = self
                    .store
                    .get_live_token(&tenant, &TokenId::from_trusted(id.clone()))
                    .await
                    .unwrap()
                    .unwrap();
                let version = KekVersion::new(u32::try_from(row.kek_version).unwrap());
                let sealed = Sealed::from_base64(version, &row.wrapped_dek.unwrap(), &row.ciphertext.unwrap()).unwrap();
                let aad = Aad {
                    token_id: id,
                    merchant_id: self.merchant.as_str(),
                };
                let plain = vault::open(&self.keyring, aad, &sealed).unwrap();
                opened.push((row.kek_version, String::from_utf8(plain.to_vec()).unwrap()));
            }
            opened
        }
    }

    #[tokio::test]
    async fn the_inventory_counts_live_tokens_and_stored_answers_per_version() {
        let f = Fixture::new().await;
        let inventory = inventory(&f.store).await.unwrap();
        assert_eq!(
            inventory,
            [Wrapped {
                version: 1,
                tokens: 2,
                idempotent_responses: 2,
                webhook_secrets: 0,
                connection_credentials: 0,
                operator_secrets: 0,
            }]
        );
        assert_eq!(inventory.first().map(Wrapped::total), Some(4));
    }

    #[tokio::test]
    async fn a_limited_rotation_resumes_and_everything_still_opens_under_the_new_kek() {
        let f = Fixture::new().await;
        let to = KekVersion::new(2);
        let mut pages = 0;
        let first = rotate(&f.store, &f.keyring, &operator(), to, Some(3), |_| pages += 1)
            .await
            .unwrap();
        assert!(pages >= 2, "progress after every page");
        assert_eq!((first.tokens.rewrapped, first.tokens.remaining), (2, 0));
        assert_eq!(
            (
                first.idempotent_responses.rewrapped,
                first.idempotent_responses.remaining
            ),
            (1, 1)
        );
        assert_eq!((first.rewrapped(), first.skipped()), (3, 0));
        assert!(!first.complete);
        let audit = f.store.audit_page(0, 100).await.unwrap();
        let entry = &audit.last().unwrap().event;
        assert_eq!(
            (entry.action.as_str(), entry.resource.as_deref()),
            ("vault.kek_rotated", Some("kek version 2"))
        );

        let rest = rotate(&f.store, &f.keyring, &operator(), to, None, |_| {})
            .await
            .unwrap();
        assert_eq!((rest.rewrapped(), rest.skipped()), (1, 0));
        assert!(rest.complete);
        assert_eq!(
            inventory(&f.store).await.unwrap(),
            [Wrapped {
                version: 2,
                tokens: 2,
                idempotent_responses: 2,
                webhook_secrets: 0,
                connection_credentials: 0,
                operator_secrets: 0,
            }]
        );
        let mut opened = f.opened_tokens().await;
        opened.sort();
        assert_eq!(opened.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [2, 2]);
        let mut numbers: Vec<String> = opened.into_iter().map(|(_, n)| n).collect();
        numbers.sort();
        assert_eq!(numbers, ["4242424242424240", "4242424242424241"]);
        // The stored answers open under KEK 2 as well.
        for key in ["order-1", "order-2"] {
            let record = RecordKey {
                merchant_id: f.merchant.as_str(),
                mode: "test",
                lineage_id: "key_a",
                key,
            };
            let row = f.store.get_idempotency_record(record).await.unwrap().unwrap();
            assert_eq!(row.kek_version, Some(2));
            let sealed =
                Sealed::from_base64(KekVersion::new(2), &row.wrapped_dek.unwrap(), &row.response.unwrap()).unwrap();
            let record_id = crate::services::idempotency::response_record_id(key, "mac");
            let aad = ResponseAad {
                merchant_id: f.merchant.as_str(),
                record_id: &record_id,
            };
            let plain = vault::open(&f.keyring, aad, &sealed).unwrap();
            assert_eq!(plain.as_slice(), format!("answer {key}").as_bytes());
        }
        // Nothing is left: a third run re-wraps nothing and is complete.
        let none = rotate(&f.store, &f.keyring, &operator(), to, None, |_| {})
            .await
            .unwrap();
        assert_eq!((none.rewrapped(), none.skipped(), none.complete), (0, 0, true));
    }
}
