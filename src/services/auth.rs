//! Authentication of API requests by key, and lockout of client addresses
//! after repeated failures.
//!
//! Invariants: every failure looks the same to the client (one uniform 401)
//! while the audit trail records the true reason; a known and an unknown key
//! cost the same work (one HMAC, one indexed lookup, one constant-time
//! compare); key state comes from the database, through a cache whose copies
//! live at most 200 ms while every change of key, merchant or lockout state
//! waits longer than that before it is answered ([`cache`]), so a
//! revocation takes effect on the next request on every replica.
//!
//! What counts towards a client address's lockout: every failure of a request
//! that presented an `Authorization` header (a wrong, malformed, revoked or
//! expired key, or a header that is not a bearer token). A request with no
//! `Authorization` header at all ([`Credential::Missing`]) is refused and
//! audited like any failure but not counted: it is what any web page can make
//! a visitor's browser send (a cross-origin page cannot add the header), so
//! counting it would let a hostile page lock out the visitor's office, every
//! server behind its address included. Not counting it costs no protection:
//! a request without a key cannot guess one. Brute force still has to present
//! keys, and every one of those counts exactly as before, with the same
//! threshold; an address that is locked out stays refused for every request,
//! with or without credentials.

pub mod cache;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::domain::api_key::ApiKey;
use crate::domain::api_key::ApiKeySecret;
use crate::domain::audit::Outcome;
use crate::domain::merchant::Merchant;
use crate::domain::restrictions::canonical;
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{AuthStore, Commit, LockoutStore, Store};

use self::cache::{AuthCache, ReadStart, Verified};
use super::actor::{Actor, RequestMeta};
use super::audit_writer::AuditSink;
use super::key_hasher::KeyHasher;
use super::ServiceError;

/// Lockout thresholds.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Failures from one address within `window` that trigger a lockout.
    pub threshold: i64,
    pub window: Duration,
    /// How long a locked-out address is refused.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 10,
            window: Duration::from_secs(15 * 60),
            duration: Duration::from_secs(30 * 60),
        }
    }
}

/// The credential a request presented, as far as the lockout cares.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// No `Authorization` header at all. Refused and audited, but not counted
    /// towards the client address's lockout (see the module comment).
    Missing,
    /// An `Authorization` header: its bearer token, or `None` when it is not a
    /// well-formed `Bearer` header. Every failure counts.
    Header(Option<&'a str>),
    /// A key the caller passed some other way (the card fields page's
    /// `?key=`). Every failure counts.
    Given(&'a str),
}

impl<'a> Credential<'a> {
    /// The presented key, if there is one to check.
    fn key(self) -> Option<&'a str> {
        match self {
            Credential::Missing | Credential::Header(None) => None,
            Credential::Header(Some(key)) | Credential::Given(key) => Some(key),
        }
    }

    /// Whether a failure of this credential counts towards the lockout.
    fn counts(self) -> bool {
        !matches!(self, Credential::Missing)
    }

    /// The audit reason when there is no key to check.
    fn absent_reason(self) -> &'static str {
        match self {
            Credential::Header(None) => "Authorization header is not a bearer token",
            _ => "no API key presented",
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum AuthRejection {
    /// Missing, malformed, unknown, expired, revoked or IP-restricted key.
    Unauthenticated,
    /// The client address is locked out until the given time.
    LockedOut { until: Timestamp },
    /// A genuine, usable key of a merchant the operator has frozen. Not a
    /// guessing attempt (the key matched), so it does not count towards the
    /// client address's lockout.
    MerchantFrozen,
    /// A genuine, usable key that an operator or an anomaly policy froze
    /// (`services::key_freeze`). Not counted towards the lockout either.
    KeyFrozen,
    /// Authentication could not be decided (storage failure).
    Unavailable(ServiceError),
}

/// Told of every counted authentication failure, with the key when one was
/// found (revoked, expired, rotated out, or used from outside its ranges):
/// the anomaly detectors (`services::anomaly`). Called after the failure is
/// durable; it must stay cheap (failures are not the hot path, but bursts
/// are what it watches).
pub trait FailureObserver: Send + Sync {
    fn failed<'a>(&'a self, meta: &'a RequestMeta, key: Option<&'a ApiKey>) -> BoxFuture<'a, ()>;
}

/// Why a request was refused (the true reason, for the audit trail) and the
/// key, when one was found.
type Rejected = Box<(String, Option<ApiKey>)>;

/// An authenticated caller: the key and the merchant it belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub merchant: Merchant,
}

/// Authenticates requests against `S`'s keys and lockouts; the gateway's
/// is over the SQL backend (the default), the unit tests' over the
/// in-memory double. Statically dispatched: the per-request lookup is the
/// backend's own, as if called directly.
#[derive(Clone)]
pub struct Authenticator<S = Store> {
    store: S,
    /// Keys verified a moment ago; emptied by every change of authentication
    /// state committed through `store` (or a clone of it).
    cache: Arc<AuthCache>,
    hasher: Arc<KeyHasher>,
    policy: LockoutPolicy,
    audit: AuditSink,
    observer: Option<Arc<dyn FailureObserver>>,
}

impl<S: AuthStore + LockoutStore + Commit> Authenticator<S> {
    pub fn new(store: S, hasher: Arc<KeyHasher>, policy: LockoutPolicy, audit: AuditSink) -> Self {
        Self {
            cache: Arc::new(AuthCache::following(Arc::clone(store.auth_state()))),
            store,
            hasher,
            policy,
            audit,
            observer: None,
        }
    }

    /// Tells `observer` of every counted failure from now on.
    #[must_use]
    pub fn observed_by(mut self, observer: Arc<dyn FailureObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Decides whether `presented` authenticates a request from
    /// `meta.client_ip`. Failures are audited here, and counted towards the
    /// address's lockout unless no credential was presented at all.
    ///
    /// One database round trip: the key (by keyed hash), its merchant and the
    /// client address's lockout are read together. A malformed or missing key
    /// still makes the same lookup (with an empty hash), so it costs the same;
    /// only a key that passes every check may be answered from the cache
    /// instead ([`cache`]), and it gets a 200 either way.
    pub async fn authenticate(&self, presented: Credential<'_>, meta: &RequestMeta) -> Result<Caller, AuthRejection> {
        let now = Timestamp::now();
        let ip = canonical(meta.client_ip);
        let ip_text = ip.to_string();
        let parsed = match presented.key() {
            None => Err(presented.absent_reason().to_owned()),
            Some(p) => ApiKeySecret::parse(p).map_err(|e| e.to_string()),
        };
        let computed = parsed
            .as_ref()
            .map(|secret| self.hasher.hash(secret))
            .unwrap_or_default();
        // A key verified a moment ago, if it passes every check again (a
        // refusal always reads the database below, like an unknown key).
        if parsed.is_ok() {
            if let Some(Verified { key, merchant }) = self.cache.get(&computed, &ip_text) {
                if let Ok(key) = Self::check(key, &computed, &computed, ip, now) {
                    return Ok(Caller { key, merchant });
                }
            }
        }
        let read = ReadStart::now();
        let lookup = match self.store.lookup_for_auth(&computed, &ip_text, now).await {
            Ok(lookup) => lookup,
            Err(e) => return Err(AuthRejection::Unavailable(e.into())),
        };
        if let Some(until) = lookup.locked_until {
            let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.locked_out_request", Outcome::Denied);
            event.resource = Some(meta.route.clone());
            event.reason = Some(format!("client address locked out until {}", until.to_rfc3339()));
            self.audit.record(event).await;
            return Err(AuthRejection::LockedOut { until });
        }
        let verdict = match (parsed, lookup.key) {
            (Err(reason), _) => Err(Box::new((reason, None))),
            (Ok(_), None) => Err(Box::new(("unknown API key".to_owned(), None))),
            (Ok(_), Some((key, stored, merchant))) => {
                Self::check(key, &stored, &computed, ip, now).map(|key| Caller { key, merchant })
            }
        };
        match verdict {
            Ok(caller) if caller.merchant.frozen.is_some() => {
                self.record_frozen(meta, &caller).await;
                Err(AuthRejection::MerchantFrozen)
            }
            Ok(caller) if caller.key.frozen.is_some() => {
                self.record_key_frozen(meta, &caller).await;
                Err(AuthRejection::KeyFrozen)
            }
            Ok(caller) => {
                let verified = Verified {
                    key: caller.key.clone(),
                    merchant: caller.merchant.clone(),
                };
                self.cache.put(&computed, &ip_text, &verified, read);
                Ok(caller)
            }
            Err(rejected) if !presented.counts() => {
                let (reason, _) = *rejected;
                self.record_uncounted(meta, reason).await;
                Err(AuthRejection::Unauthenticated)
            }
            Err(rejected) => {
                let (reason, key) = *rejected;
                self.record_failure(meta, &ip_text, now, reason, key.as_ref()).await
            }
        }
    }

    /// The checks on a key found by its hash: hash equality (constant time),
    /// revocation, expiry, client address.
    fn check(key: ApiKey, stored: &str, computed: &str, ip: IpAddr, now: Timestamp) -> Result<ApiKey, Rejected> {
        if !KeyHasher::same(stored, computed) {
            return Err(Box::new(("unknown API key".to_owned(), None)));
        }
        if let Err(unusable) = key.usable_at(now) {
            let after = if key.revoked_at.is_some() {
                "revocation"
            } else {
                "expiry"
            };
            return Err(Box::new((format!("{unusable} (key used after {after})"), Some(key))));
        }
        if key.restrictions.check_ip(ip).is_err() {
            return Err(Box::new((
                "client IP address not in the key's allowed ranges".to_owned(),
                Some(key),
            )));
        }
        Ok(key)
    }

    /// Audits a refused request of a frozen merchant (through the audit
    /// writer: nothing else changes).
    async fn record_frozen(&self, meta: &RequestMeta, caller: &Caller) {
        let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.merchant_frozen", Outcome::Denied);
        event.merchant_id = Some(caller.merchant.id.to_string());
        event.key_id = Some(caller.key.id.to_string());
        event.resource = Some(meta.route.clone());
        event.reason = caller
            .merchant
            .frozen
            .as_ref()
            .map(|f| format!("merchant frozen since {}", f.at.to_rfc3339()));
        self.audit.record(event).await;
    }

    /// Audits a refused request with a frozen key (through the audit
    /// writer: nothing else changes).
    async fn record_key_frozen(&self, meta: &RequestMeta, caller: &Caller) {
        let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.key_frozen", Outcome::Denied);
        event.merchant_id = Some(caller.merchant.id.to_string());
        event.mode = Some(caller.key.mode);
        event.key_id = Some(caller.key.id.to_string());
        event.resource = Some(meta.route.clone());
        event.reason = caller
            .key
            .frozen
            .as_ref()
            .map(|f| format!("key frozen since {}", f.at.to_rfc3339()));
        self.audit.record(event).await;
    }

    /// Audits a refusal that does not count towards the lockout (through the
    /// audit writer: nothing else changes).
    async fn record_uncounted(&self, meta: &RequestMeta, reason: String) {
        let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.failed", Outcome::Failure);
        event.resource = Some(meta.route.clone());
        event.reason = Some(reason);
        self.audit.record(event).await;
    }

    /// Audits the failure with its true reason, counts it against the client
    /// address and locks the address out at the threshold, in one transaction.
    async fn record_failure(
        &self,
        meta: &RequestMeta,
        ip: &str,
        now: Timestamp,
        reason: String,
        key: Option<&ApiKey>,
    ) -> Result<Caller, AuthRejection> {
        let result: Result<Option<Timestamp>, ServiceError> = async {
            let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.failed", Outcome::Failure);
            event.resource = Some(meta.route.clone());
            event.reason = Some(reason);
            if let Some(key) = key {
                event.merchant_id = Some(key.merchant_id.to_string());
                event.key_id = Some(key.id.to_string());
            }
            let mut work = UnitOfWork::new();
            self.store.record_auth_failure(&mut work, ip, now);
            work.audit(event);
            self.store.commit(work).await?;
            // Counted after the failure is durable, so that concurrent
            // failures (on any replica) each see at least themselves.
            let failures = self
                .store
                .auth_failures_since(ip, now.saturating_sub(self.policy.window))
                .await?;
            if failures < self.policy.threshold {
                return Ok(None);
            }
            let until = now.saturating_add(self.policy.duration);
            let mut work = UnitOfWork::new();
            self.store.lock_address(&mut work, ip, until);
            let mut lockout = Actor::Anonymous { meta: meta.clone() }.event("auth.lockout", Outcome::Denied);
            lockout.resource = Some(ip.to_owned());
            lockout.reason = Some(format!(
                "{failures} failed authentications within {}; locked out until {}",
                humantime::format_duration(self.policy.window),
                until.to_rfc3339()
            ));
            work.audit(lockout);
            self.store.commit(work).await?;
            let locked = Some(until);
            Ok(locked)
        }
        .await;
        if let (Some(observer), Ok(_)) = (&self.observer, &result) {
            observer.failed(meta, key).await;
        }
        match result {
            Ok(Some(until)) => {
                crate::metrics::process().lockout();
                // The lockout holds from the next request on, on every replica,
                // also for keys that were verified a moment ago.
                self.store.auth_state_changed().await;
                Err(AuthRejection::LockedOut { until })
            }
            Ok(None) => Err(AuthRejection::Unauthenticated),
            Err(e) => Err(AuthRejection::Unavailable(e)),
        }
    }

    /// Forgets failures older than the window (called periodically).
    pub async fn prune(&self) -> Result<u64, ServiceError> {
        let before = Timestamp::now().saturating_sub(self.policy.window);
        Ok(self.store.prune_auth_failures(before).await?)
    }
}

#[cfg(test)]
mod tests;
