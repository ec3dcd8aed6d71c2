//! Authentication of API requests by key, and lockout of client addresses
//! after repeated failures.
//!
//! Invariants: every failure looks the same to the client (one uniform 401)
//! while the audit trail records the true reason; a known and an unknown key
//! cost the same work (one HMAC, one indexed lookup, one constant-time
//! compare); key state is read from the database on every request, so a
//! revocation takes effect on the next request on every replica.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::api_key::ApiKeySecret;
use crate::domain::audit::Outcome;
use crate::domain::key_record::ApiKey;
use crate::domain::restrictions::canonical;
use crate::domain::time::Timestamp;
use crate::store::{self, Store};

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

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum AuthRejection {
    /// Missing, malformed, unknown, expired, revoked or IP-restricted key.
    Unauthenticated,
    /// The client address is locked out until the given time.
    LockedOut { until: Timestamp },
    /// Authentication could not be decided (storage failure).
    Unavailable(ServiceError),
}

#[derive(Clone)]
pub struct Authenticator {
    store: Store,
    hasher: Arc<KeyHasher>,
    policy: LockoutPolicy,
    audit: AuditSink,
}

impl Authenticator {
    pub fn new(store: Store, hasher: Arc<KeyHasher>, policy: LockoutPolicy, audit: AuditSink) -> Self {
        Self {
            store,
            hasher,
            policy,
            audit,
        }
    }

    /// Decides whether `presented` (the bearer token, if any) authenticates a
    /// request from `meta.client_ip`. Failures are audited here.
    pub async fn authenticate(&self, presented: Option<&str>, meta: &RequestMeta) -> Result<ApiKey, AuthRejection> {
        let now = Timestamp::now();
        let ip = canonical(meta.client_ip);
        let ip_text = ip.to_string();
        match store::lockouts::locked_until(self.store.reader(), &ip_text, now).await {
            Ok(Some(until)) => {
                let mut event =
                    Actor::Anonymous { meta: meta.clone() }.event("auth.locked_out_request", Outcome::Denied);
                event.resource = Some(meta.route.clone());
                event.reason = Some(format!("client address locked out until {}", until.to_rfc3339()));
                self.audit.record(event).await;
                return Err(AuthRejection::LockedOut { until });
            }
            Ok(None) => {}
            Err(e) => return Err(AuthRejection::Unavailable(e.into())),
        }
        match self.check(presented, ip, now).await {
            Ok(key) => Ok(key),
            Err(Failure::Storage(e)) => Err(AuthRejection::Unavailable(e)),
            Err(Failure::Rejected { reason, key }) => {
                self.record_failure(meta, &ip_text, now, reason, key.as_deref()).await
            }
        }
    }

    async fn check(&self, presented: Option<&str>, ip: IpAddr, now: Timestamp) -> Result<ApiKey, Failure> {
        let Some(presented) = presented else {
            return Err(Failure::rejected("no API key presented"));
        };
        let secret = ApiKeySecret::parse(presented).map_err(|e| Failure::rejected(&e.to_string()))?;
        let computed = self.hasher.hash(&secret);
        let found = store::api_keys::find_by_hash(self.store.reader(), &computed)
            .await
            .map_err(|e| Failure::Storage(e.into()))?;
        let Some((key, stored)) = found else {
            return Err(Failure::rejected("unknown API key"));
        };
        if !KeyHasher::same(&stored, &computed) {
            return Err(Failure::rejected("unknown API key"));
        }
        if let Err(unusable) = key.usable_at(now) {
            let reason = format!(
                "{unusable} (key used after {})",
                if key.revoked_at.is_some() {
                    "revocation"
                } else {
                    "expiry"
                }
            );
            return Err(Failure::Rejected {
                reason,
                key: Some(Box::new(key)),
            });
        }
        if key.restrictions.check_ip(ip).is_err() {
            return Err(Failure::Rejected {
                reason: "client IP address not in the key's allowed ranges".into(),
                key: Some(Box::new(key)),
            });
        }
        Ok(key)
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
    ) -> Result<ApiKey, AuthRejection> {
        let result: Result<Option<Timestamp>, ServiceError> = async {
            let mut event = Actor::Anonymous { meta: meta.clone() }.event("auth.failed", Outcome::Failure);
            event.resource = Some(meta.route.clone());
            event.reason = Some(reason);
            if let Some(key) = key {
                event.merchant_id = Some(key.merchant_id.to_string());
                event.key_id = Some(key.id.to_string());
            }
            let mut events = vec![event];
            let mut tx = self.store.begin().await?;
            store::lockouts::record_failure(&mut *tx, ip, now).await?;
            let failures =
                store::lockouts::failures_since(&mut *tx, ip, now.saturating_sub(self.policy.window)).await?;
            let locked = if failures >= self.policy.threshold {
                let until = now.saturating_add(self.policy.duration);
                store::lockouts::lock(&mut *tx, ip, until).await?;
                let mut lockout = Actor::Anonymous { meta: meta.clone() }.event("auth.lockout", Outcome::Denied);
                lockout.resource = Some(ip.to_owned());
                lockout.reason = Some(format!(
                    "{failures} failed authentications within {}; locked out until {}",
                    humantime::format_duration(self.policy.window),
                    until.to_rfc3339()
                ));
                events.push(lockout);
                Some(until)
            } else {
                None
            };
            store::audit::append(&mut tx, &events).await?;
            tx.commit().await?;
            Ok(locked)
        }
        .await;
        match result {
            Ok(Some(until)) => Err(AuthRejection::LockedOut { until }),
            Ok(None) => Err(AuthRejection::Unauthenticated),
            Err(e) => Err(AuthRejection::Unavailable(e)),
        }
    }

    /// Forgets failures older than the window (called periodically).
    pub async fn prune(&self) -> Result<u64, ServiceError> {
        let before = Timestamp::now().saturating_sub(self.policy.window);
        let mut tx = self.store.begin().await?;
        let pruned = store::lockouts::prune_failures(&mut *tx, before).await?;
        tx.commit().await?;
        Ok(pruned)
    }
}

enum Failure {
    Rejected { reason: String, key: Option<Box<ApiKey>> },
    Storage(ServiceError),
}

impl Failure {
    fn rejected(reason: &str) -> Self {
        Failure::Rejected {
            reason: reason.to_owned(),
            key: None,
        }
    }
}
