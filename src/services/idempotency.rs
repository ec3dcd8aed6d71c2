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
//! record so that the client can retry. Claims and answers go through the
//! store's group commit, so under load they share durable commits.
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
use crate::store::group_commit::WriteJob;
use crate::store::idempotency_keys::{self, Finished, IdempotencyRow, NewClaim, RecordKey, DONE, IN_PROGRESS};
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
#[derive(Debug)]
pub enum Begun {
    /// The key is this request's: run it, then `finish` or `abandon`.
    Proceed(Box<Claim>),
    /// The same request already finished: answer this.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Reused,
    /// The same request is still running elsewhere.
    InUse,
}

/// The idempotency service, shared by every request.
#[derive(Clone)]
pub struct Idempotency {
    store: Store,
    vault: Arc<Vault>,
    mac_key: Arc<RequestMacKey>,
    policy: IdempotencyPolicy,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    pub fn new(store: Store, vault: Arc<Vault>, mac_key: RequestMacKey, policy: IdempotencyPolicy) -> Self {
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
    ) -> Result<Begun, ServiceError> {
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
            let claimed = self
                .store
                .group_commit()
                .run(WriteJob::new(vec![idempotency_keys::claim_op(&claim)], Vec::new()))
                .await;
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
            let held = idempotency_keys::get(self.store.reader(), record).await?;
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
        Ok(idempotency_keys::delete_expired(&self.store, Timestamp::now()).await?)
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
#[derive(Debug)]
pub struct Claim {
    service: Idempotency,
    tenant: Tenant,
    lineage: ApiKeyId,
    key: IdempotencyKey,
    mac: RequestMac,
    request_id: RequestId,
}

impl Claim {
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
        let op = idempotency_keys::finish_op(self.record(), self.request_id.as_str(), &finished, Arc::clone(&stored));
        self.service
            .store
            .group_commit()
            .run(WriteJob::new(vec![op], Vec::new()))
            .await?;
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
        let op = idempotency_keys::release_op(self.record(), self.request_id.as_str());
        self.service
            .store
            .group_commit()
            .run(WriteJob::new(vec![op], Vec::new()))
            .await?;
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

    #[test]
    fn macs_compare_only_equal_values() {
        let mac = RequestMac("ab".repeat(32));
        assert!(mac.matches(&"ab".repeat(32)));
        assert!(!mac.matches(&"ac".repeat(32)));
        assert!(!mac.matches("ab"));
        assert!(!RequestMac(String::new()).matches(""), "an empty MAC never matches");
    }
}
