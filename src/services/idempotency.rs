//! Idempotency: a POST sent again with the same `Idempotency-Key` gets the
//! first answer instead of running twice.
//!
//! Records belong to the API key that made them: they are keyed by the
//! caller's tenant (merchant and mode), its key's lineage (the key and the
//! keys rotated from it, so a retry sent with the successor during a
//! rotation's grace period is still deduplicated) and the client's key.
//! Another key of the merchant is neither blocked by a record nor learns that
//! it exists: the same client key is simply another record for it.
//!
//! [`Idempotency::begin`] claims the key for the lineage (one statement: an
//! in-progress record is inserted, or an expired record, or a stale one whose
//! gateway died mid-request, is taken over). If the key is held, the request
//! MAC decides: another request → [`Begun::Reused`]; the same one still
//! running → [`Begun::InUse`]; finished → [`Begun::Replay`] with the stored
//! answer. [`Claim::finish`] stores the answer; [`Claim::abandon`] deletes the
//! record so that the client can retry. Claims and answers are units of work
//! of the storage port ([`IdempotencyStore`]): on the SQL store they go
//! through the group commit, so under load they share durable commits. The
//! service is generic over that port, defaulting to the SQL `Store`.
//!
//! Invariants: a request body can hold a card number and CVC, so it is never
//! stored, nor an unkeyed hash of it: a request is recognised by an
//! HMAC-SHA-256 under a key derived from the API-key pepper (`RequestMacKey`),
//! compared in constant time. The MAC covers the authenticating key's lineage,
//! and records are only found within it, so an answer is only replayed to the
//! key that caused it or its successor, which holds the same kind, mode,
//! permissions and restrictions (a replay skips the handler and its permission
//! checks: a publishable key must not be able to replay what a restricted key
//! was answered). A stored answer can hold card data (a token's BIN and last
//! four), so it is sealed with the vault's envelope encryption, bound to the
//! merchant, key and request MAC.
//! A card reveal never comes here: the API refuses `Idempotency-Key` on it
//! (`api::idempotency::NOT_IDEMPOTENT`), so no stored answer holds a full
//! number. Nothing here logs or returns a request body.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::domain::idempotency_key::IdempotencyKey;
use crate::domain::ids::{ApiKeyId, RequestId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::idempotency_keys::{Finished, IdempotencyRow, NewClaim, RecordKey, DONE, IN_PROGRESS};
use crate::store::ports::{Commit, IdempotencyStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Store, StoreError};
use crate::vault::{KekVersion, ResponseAad, Sealed, VaultError};

use super::key_hasher::PEPPER_LEN;
use super::ServiceError;
use crate::vault::Vault;

/// The label under which the request-MAC key is derived from the pepper.
const MAC_KEY_LABEL: &[u8] = b"paywarden idempotency v1";

/// Records live at least this long (clients retry for up to a day).
pub const MIN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long the first request holds its key before a retry may take it over.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times `begin` re-reads a key that changed under it.
const BEGIN_ATTEMPTS: usize = 3;

/// How long records live and how long a running request holds its key.
#[derive(Debug, Clone)]
pub struct IdempotencyPolicy {
    /// At least [`MIN_TTL`] (configuration resolution refuses less).
    pub ttl: Duration,
    pub lock_timeout: Duration,
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        Self {
            ttl: MIN_TTL,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// The key of request MACs: HMAC(pepper, "paywarden idempotency v1"), so it
/// is unrelated to the API-key hashes made with the pepper itself. `Debug`
/// prints nothing of it.
pub struct RequestMacKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for RequestMacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestMacKey(***)")
    }
}

impl RequestMacKey {
    pub fn derive(pepper: &SecretBox<[u8; PEPPER_LEN]>) -> Self {
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        // new_from_slice only fails for invalid key lengths, which HMAC has none of.
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(pepper.expose_secret()) {
            mac.update(MAC_KEY_LABEL);
            let derived = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
            key.expose_secret_mut().copy_from_slice(derived.as_slice());
        }
        Self(key)
    }
}

/// What a request is recognised by: hex HMAC-SHA-256 of the API key lineage,
/// method, path and body (each length-prefixed). Keyed, so it reveals nothing
/// of the body without the pepper.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestMac(String);

impl std::fmt::Debug for RequestMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestMac(…)")
    }
}

impl RequestMac {
    /// Constant-time comparison with a stored MAC.
    fn matches(&self, stored: &str) -> bool {
        !self.0.is_empty() && stored.len() == self.0.len() && bool::from(self.0.as_bytes().ct_eq(stored.as_bytes()))
    }
}

/// A stored answer: status, content type and body. `Debug` shows no body.
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The outcome of [`Idempotency::begin`].
pub enum Begun<S = Store> {
    /// The key is this request's: run it, then `finish` or `abandon`.
    Proceed(Box<Claim<S>>),
    /// The same request already finished: answer this.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Reused,
    /// The same request is still running elsewhere.
    InUse,
}

impl<S> std::fmt::Debug for Begun<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Begun::Proceed(claim) => f.debug_tuple("Proceed").field(claim).finish(),
            Begun::Replay(response) => f.debug_tuple("Replay").field(response).finish(),
            Begun::Reused => f.write_str("Reused"),
            Begun::InUse => f.write_str("InUse"),
        }
    }
}

/// The idempotency service, shared by every request.
#[derive(Clone)]
pub struct Idempotency<S = Store> {
    store: S,
    vault: Arc<Vault>,
    mac_key: Arc<RequestMacKey>,
    policy: IdempotencyPolicy,
}

impl<S> std::fmt::Debug for Idempotency<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: IdempotencyStore + Commit + Clone> Idempotency<S> {
    pub fn new(store: S, vault: Arc<Vault>, mac_key: RequestMacKey, policy: IdempotencyPolicy) -> Self {
        Self {
            store,
            vault,
            mac_key: Arc::new(mac_key),
            policy,
        }
    }

    /// The MAC that recognises this request among later ones of the key
    /// lineage `lineage`.
    pub fn request_mac(&self, lineage: &ApiKeyId, method: &str, path: &str, body: &[u8]) -> RequestMac {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.mac_key.0.expose_secret()) else {
            return RequestMac(String::new());
        };
        for field in [lineage.as_str().as_bytes(), method.as_bytes(), path.as_bytes(), body] {
            mac.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(field);
        }
        RequestMac(hex::encode(mac.finalize().into_bytes()))
    }

    /// Claims `key` for this request of `tenant`'s key lineage `lineage`, or
    /// says why not (see the module docs).
    pub async fn begin(
        &self,
        tenant: &Tenant,
        lineage: &ApiKeyId,
        key: &IdempotencyKey,
        mac: RequestMac,
        request_id: &RequestId,
    ) -> Result<Begun<S>, ServiceError> {
        let record = RecordKey {
            merchant_id: tenant.merchant_str(),
            mode: tenant.mode_str(),
            lineage_id: lineage.as_str(),
            key: key.as_str(),
        };
        for _ in 0..BEGIN_ATTEMPTS {
            let now = Timestamp::now();
            let (locked_until, expires_at) = (
                now.saturating_add(self.policy.lock_timeout),
                now.saturating_add(self.policy.ttl),
            );
            let request = request_id.to_string();
            let claim = NewClaim {
                record,
                request_mac: &mac.0,
                request_id: &request,
                now,
                locked_until,
                expires_at,
            };
            let mut work = UnitOfWork::new();
            self.store.claim_idempotency_key(&mut work, &claim);
            let claimed = self.store.commit(work).await;
            match claimed {
                Ok(()) => {
                    return Ok(Begun::Proceed(Box::new(Claim {
                        service: self.clone(),
                        tenant: tenant.clone(),
                        lineage: lineage.clone(),
                        key: key.clone(),
                        mac,
                        request_id: request_id.clone(),
                    })))
                }
                Err(StoreError::Duplicate) => {}
                Err(e) => return Err(e.into()),
            }
            let held = self.store.get_idempotency_record(record).await?;
            let Some(row) = held else {
                continue; // released meanwhile: claim again
            };
            let now = Timestamp::now().as_millis();
            if row.expires_at <= now {
                continue;
            }
            if !mac.matches(&row.request_mac) {
                return Ok(Begun::Reused);
            }
            match row.state.as_str() {
                IN_PROGRESS if row.locked_until <= now => continue, // stale: take it over
                IN_PROGRESS => return Ok(Begun::InUse),
                DONE => return self.stored_response(&row).map(Begun::Replay),
                _ => return Err(corrupt("state")),
            }
        }
        // The key kept changing hands: another request is busy with it.
        Ok(Begun::InUse)
    }

    /// Deletes records that have expired; returns how many.
    pub async fn sweep(&self) -> Result<u64, ServiceError> {
        Ok(self.store.delete_expired_idempotency_records(Timestamp::now()).await?)
    }

    fn stored_response(&self, row: &IdempotencyRow) -> Result<StoredResponse, ServiceError> {
        let (Some(status), Some(response), Some(wrapped), Some(version)) =
            (row.status_code, &row.response, &row.wrapped_dek, row.kek_version)
        else {
            return Err(corrupt("response"));
        };
        let version = KekVersion::new(u32::try_from(version).map_err(|_| corrupt("kek_version"))?);
        let sealed = Sealed::from_base64(version, wrapped, response)?;
        let record = response_record_id(&row.key, &row.request_mac);
        let aad = ResponseAad {
            merchant_id: &row.merchant_id,
            record_id: &record,
        };
        let plain = self.vault.open_response(aad, &sealed)?;
        let (content_type, body) = decode(&plain).ok_or(VaultError::Malformed("stored response"))?;
        Ok(StoredResponse {
            status: u16::try_from(status).map_err(|_| corrupt("status_code"))?,
            content_type,
            body,
        })
    }
}

/// A claimed key: the request runs, then its answer is stored (`finish`) or
/// the key is released (`abandon`). If neither happens (the process died),
/// the lock expires and a retry takes the key over.
pub struct Claim<S = Store> {
    service: Idempotency<S>,
    tenant: Tenant,
    lineage: ApiKeyId,
    key: IdempotencyKey,
    mac: RequestMac,
    request_id: RequestId,
}

impl<S> std::fmt::Debug for Claim<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("service", &self.service)
            .field("tenant", &self.tenant)
            .field("lineage", &self.lineage)
            .field("key", &self.key)
            .field("mac", &self.mac)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl<S: IdempotencyStore + Commit + Clone> Claim<S> {
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    fn record(&self) -> RecordKey<'_> {
        RecordKey {
            merchant_id: self.tenant.merchant_str(),
            mode: self.tenant.mode_str(),
            lineage_id: self.lineage.as_str(),
            key: self.key.as_str(),
        }
    }

    /// Seals and stores the answer, and marks the record done. If the lock was
    /// taken over meanwhile (this request ran past the lock timeout), the other
    /// request's record is left alone.
    pub async fn finish(self, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), ServiceError> {
        let record = response_record_id(self.key.as_str(), &self.mac.0);
        let aad = ResponseAad {
            merchant_id: self.tenant.merchant_str(),
            record_id: &record,
        };
        let plain = encode(content_type, body);
        let sealed = self.service.vault.seal_response(aad, &plain)?;
        let (response, wrapped_dek) = (sealed.ciphertext_base64(), sealed.wrapped_dek_base64());
        let finished = Finished {
            status_code: i64::from(status),
            response: &response,
            wrapped_dek: &wrapped_dek,
            kek_version: i64::from(sealed.kek_version().get()),
        };
        let stored = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = &self.service.store;
        let mut work = UnitOfWork::new();
        store.finish_idempotency_record(
            &mut work,
            self.record(),
            self.request_id.as_str(),
            &finished,
            Arc::clone(&stored),
        );
        store.commit(work).await?;
        if !stored.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                request_id = %self.request_id,
                "the idempotency key was taken over before this request finished; its answer was not stored"
            );
        }
        Ok(())
    }

    /// Releases the key (the request failed in a way worth retrying).
    pub async fn abandon(self) -> Result<(), ServiceError> {
        let store = &self.service.store;
        let mut work = UnitOfWork::new();
        store.release_idempotency_record(&mut work, self.record(), self.request_id.as_str());
        store.commit(work).await?;
        Ok(())
    }
}

/// The record part of a stored answer's associated data: the key (hex, so
/// that any printable character is unambiguous) and the request MAC.
pub fn response_record_id(key: &str, mac: &str) -> String {
    format!("{}.{mac}", hex::encode(key.as_bytes()))
}

/// `content type \n body`: a header value cannot contain a newline.
fn encode(content_type: Option<&str>, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let content_type = content_type.filter(|c| !c.contains('\n')).unwrap_or_default();
    let mut plain = Zeroizing::new(Vec::with_capacity(content_type.len() + 1 + body.len()));
    plain.extend_from_slice(content_type.as_bytes());
    plain.push(b'\n');
    plain.extend_from_slice(body);
    plain
}

fn decode(plain: &[u8]) -> Option<(Option<String>, Zeroizing<Vec<u8>>)> {
    let split = plain.iter().position(|b| *b == b'\n')?;
    let content_type = std::str::from_utf8(plain.get(..split)?).ok()?;
    let body = Zeroizing::new(plain.get(split + 1..)?.to_vec());
    Some(((!content_type.is_empty()).then(|| content_type.to_owned()), body))
}

fn corrupt(column: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!("idempotency_keys.{column}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mac_key_is_derived_and_never_printed() {
        let pepper = SecretBox::new(Box::new([7u8; PEPPER_LEN]));
        let key = RequestMacKey::derive(&pepper);
        assert_ne!(key.0.expose_secret(), &[7u8; 32]);
        assert_ne!(key.0.expose_secret(), &[0u8; 32]);
        assert_eq!(
            key.0.expose_secret(),
            RequestMacKey::derive(&SecretBox::new(Box::new([7u8; PEPPER_LEN])))
                .0
                .expose_secret()
        );
        assert_eq!(format!("{key:?}"), "RequestMacKey(***)");
    }

    #[test]
    fn stored_answers_round_trip_through_their_encoding() {
        let plain = encode(Some("application/json"), b"{\"a\":\n1}");
        let (ct, body) = decode(&plain).unwrap();
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(body.as_slice(), b"{\"a\":\n1}");
        let (ct, body) = decode(&encode(None, b"")).unwrap();
        assert_eq!((ct, body.len()), (None, 0));
        assert!(decode(b"no newline").is_none());
    }

    #[test]
    fn record_ids_cannot_contain_a_slash() {
        let id = response_record_id("a/b.c", "00ff");
        assert_eq!(id, "612f622e63.00ff");
        assert!(!id.contains('/'));
    }

    /// The service over the in-memory double of its storage port.
    mod service {
        use std::time::Duration;

        use super::*;
        use crate::domain::api_key::Mode;
        use crate::domain::merchant::MerchantName;
        use crate::services::actor::Actor;
        use crate::store::memory::MemoryStore;
        use crate::vault::{CvcStore, Fingerprinter, Kek, StaticKeyring};

        struct Fixture {
            store: MemoryStore,
            service: Idempotency<MemoryStore>,
            tenant: Tenant,
            lineage: ApiKeyId,
            key: IdempotencyKey,
        }

        impl Fixture {
            async fn new() -> Self {
                let store = MemoryStore::new();
                let actor = Actor::Operator {
                    command: "idempotency test".into(),
                };
                let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Idem").unwrap())
                    .await
                    .unwrap();
                let vault = Arc::new(Vault::new(
                    Arc::new(StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap())),
                    Fingerprinter::new(SecretBox::new(Box::new([3u8; 32]))),
                    CvcStore::new(Duration::from_secs(60), 10).unwrap(),
                ));
                let mac_key = RequestMacKey::derive(&SecretBox::new(Box::new([5u8; PEPPER_LEN])));
                Self {
                    service: Idempotency::new(store.clone(), vault, mac_key, IdempotencyPolicy::default()),
                    store,
                    tenant: Tenant::new(merchant.id, Mode::Test),
                    lineage: ApiKeyId::generate().unwrap(),
                    key: IdempotencyKey::parse(b"order-17").unwrap(),
                }
            }

            async fn begin(&self, tenant: &Tenant, body: &[u8]) -> Begun<MemoryStore> {
                let mac = self.service.request_mac(&self.lineage, "POST", "/v1/payments", body);
                self.service
                    .begin(tenant, &self.lineage, &self.key, mac, &RequestId::generate().unwrap())
                    .await
                    .unwrap()
            }
        }

        #[tokio::test]
        async fn a_finished_request_is_replayed_sealed_and_another_is_refused() {
            let f = Fixture::new().await;
            let Begun::Proceed(claim) = f.begin(&f.tenant, b"{\"amount\":1}").await else {
                panic!("the first request claims the key");
            };
            assert!(matches!(f.begin(&f.tenant, b"{\"amount\":1}").await, Begun::InUse));
            assert!(matches!(f.begin(&f.tenant, b"{\"amount\":2}").await, Begun::Reused));
            claim
                .finish(201, Some("application/json"), b"{\"id\":\"pay_1\"}")
                .await
                .unwrap();

            let record = RecordKey {
                merchant_id: f.tenant.merchant_str(),
                mode: f.tenant.mode_str(),
                lineage_id: f.lineage.as_str(),
                key: f.key.as_str(),
            };
            let row = f.store.get_idempotency_record(record).await.unwrap().unwrap();
            assert_eq!(row.state, DONE);
            assert!(!row.response.unwrap_or_default().contains("pay_1"), "stored sealed");

            let Begun::Replay(answer) = f.begin(&f.tenant, b"{\"amount\":1}").await else {
                panic!("the same request is answered from the record");
            };
            assert_eq!(answer.status, 201);
            assert_eq!(answer.content_type.as_deref(), Some("application/json"));
            assert_eq!(answer.body.as_slice(), b"{\"id\":\"pay_1\"}");
            assert!(matches!(f.begin(&f.tenant, b"{\"amount\":2}").await, Begun::Reused));

            // The other mode keeps records of its own.
            let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
            assert!(matches!(f.begin(&live, b"{\"amount\":2}").await, Begun::Proceed(_)));
        }

        #[tokio::test]
        async fn an_abandoned_request_frees_its_key() {
            let f = Fixture::new().await;
            let Begun::Proceed(claim) = f.begin(&f.tenant, b"{}").await else {
                panic!("the first request claims the key");
            };
            claim.abandon().await.unwrap();
            let Begun::Proceed(retry) = f.begin(&f.tenant, b"{}").await else {
                panic!("a retry claims the key again");
            };
            assert_eq!(retry.key().as_str(), "order-17");
        }
    }

    #[test]
    fn macs_compare_only_equal_values() {
        let mac = RequestMac("ab".repeat(32));
        assert!(mac.matches(&"ab".repeat(32)));
        assert!(!mac.matches(&"ac".repeat(32)));
        assert!(!mac.matches("ab"));
        assert!(!RequestMac(String::new()).matches(""), "an empty MAC never matches");
    }
}
