//! Anomaly detection on live traffic: the detectors ([`detectors`]), their
//! policy ([`policy`]), the alerts they raise and the responses those carry
//! out ([`raise`]), and the throttles every replica applies ([`throttles`]).
//!
//! Where it hooks in (all cheap while nothing is wrong):
//! - after authentication, [`Anomalies::observe_request`]: the throttles
//!   (one atomic load unless some subject is throttled), the key's request
//!   window, and the key's country (a hash-set lookup; the database only for
//!   a pair this process has not seen, never for addresses without one);
//! - after a card was tokenized, [`Anomalies::observe_tokenization`];
//! - after a failed authentication, [`Anomalies::throttled_address`] (a
//!   lockout keeps its own answer);
//! - on every counted authentication failure (the [`FailureObserver`] of
//!   `services::auth`): the address's shared failure count and retired keys;
//! - on every confirmed payment, [`Anomalies::payment_outcome`].
//!
//! Invariants: no detector keeps or writes a key, a card number or a client
//! address in clear (an address subject is `ip:` and a keyed hash of its
//! bucket address; the merchant sees its network and country only); one
//! alert per detector, subject, window and severity across replicas (the
//! database's unique index); an alert, its `anomaly.detected` event, its
//! audit entry and a freeze it causes commit as one unit of work.

pub mod detectors;
pub mod policy;
mod raise;
mod subject;
mod throttles;
pub mod window;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::domain::anomaly::{Anomaly, Detector, Response, Severity, SubjectKind};
use crate::domain::api_key::ApiKey;
use crate::domain::country::CountryCode;
use crate::domain::ids::AnomalyId;
use crate::domain::restrictions::canonical;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::store::ports::{AnomalyStore, LockoutStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Store, StoreError};

use self::detectors::auth_failures::AuthFailureBurst;
use self::detectors::decline_rate::DeclineRateSpike;
use self::detectors::new_country::NewCountry;
use self::detectors::rate_spike::RequestRateSpike;
use self::detectors::retired_key::RetiredKeyUse;
use self::detectors::tokenization::TokenizationBurst;
use self::raise::Detection;
use self::throttles::Throttles;
use self::window::Finding;
use super::actor::RequestMeta;
use super::auth::FailureObserver;
use super::ServiceError;

pub use policy::AnomalyPolicy;
pub use subject::{SubjectKey, SUBJECT_KEY_LABEL};

/// The JSON an `anomaly.detected` event carries (the API's view of it).
pub type Snapshot = fn(&Anomaly) -> Result<String, serde_json::Error>;

/// What the request path does after the detectors looked at a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 429 with `Retry-After`.
    Throttled(Duration),
    /// The policy froze the key with this very request.
    KeyFrozen,
    /// The policy froze the key's merchant with this very request.
    MerchantFrozen,
}

/// The detectors of one gateway, with their policy and throttles.
#[derive(Clone)]
pub struct Anomalies {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    policy: AnomalyPolicy,
    snapshot: Snapshot,
    metrics: Arc<Metrics>,
    subjects: SubjectKey,
    throttles: Throttles,
    /// Subjects whose payments a `step_up` response sent to a challenge,
    /// kept and synchronised like the throttles.
    step_ups: Throttles,
    auth_failures: AuthFailureBurst,
    rate: RequestRateSpike,
    tokenization: TokenizationBurst,
    retired: RetiredKeyUse,
    countries: NewCountry,
    declines: DeclineRateSpike,
}

impl std::fmt::Debug for Anomalies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anomalies")
            .field("enabled", &self.inner.policy.enabled)
            .finish_non_exhaustive()
    }
}

impl Anomalies {
    pub fn new(
        store: Store,
        policy: AnomalyPolicy,
        subjects: SubjectKey,
        snapshot: Snapshot,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                auth_failures: AuthFailureBurst::new(policy.auth_failures),
                rate: RequestRateSpike::new(policy.request_rate),
                tokenization: TokenizationBurst::new(policy.tokenization),
                retired: RetiredKeyUse::new(policy.retired_key),
                countries: NewCountry::default(),
                declines: DeclineRateSpike::new(policy.declines, policy.min_decline_percent),
                store,
                policy,
                snapshot,
                metrics,
                subjects,
                throttles: Throttles::default(),
                step_ups: Throttles::default(),
            }),
        }
    }

    pub fn policy(&self) -> &AnomalyPolicy {
        &self.inner.policy
    }

    /// How long requests from `ip` are still refused, if a policy throttled
    /// the address (on any replica).
    pub fn throttled_address(&self, ip: IpAddr) -> Option<Duration> {
        let inner = &self.inner;
        if !inner.throttles.any() {
            return None;
        }
        inner.throttles.check(&inner.subjects.address(ip), Timestamp::now())
    }

    /// Looks at one authenticated request of `key` from `ip`: refused while
    /// the key, its merchant or the address is throttled.
    pub async fn observe_request(&self, key: &ApiKey, ip: IpAddr) -> Verdict {
        let inner = &self.inner;
        if !inner.policy.enabled {
            return Verdict::Proceed;
        }
        let now = Timestamp::now();
        if inner.throttles.any() {
            let subjects = [key.id.as_str(), key.merchant_id.as_str()];
            if let Some(left) = subjects.iter().find_map(|s| inner.throttles.check(s, now)) {
                return Verdict::Throttled(left);
            }
            if let Some(left) = inner.throttles.check(&inner.subjects.address(ip), now) {
                return Verdict::Throttled(left);
            }
        }
        let mut responses = Vec::new();
        if let Some(finding) = inner.rate.observe(&key.id, now) {
            let window = inner.rate.threshold().length;
            responses.push(
                inner
                    .raise(key_detection(Detector::RequestRateSpike, finding, window, key))
                    .await,
            );
        }
        if let Some(country) = inner.countries.unseen(&key.id, ip) {
            if let Some(response) = inner.new_country(key, ip, country, now).await {
                responses.push(response);
            }
        }
        verdict(&responses, inner.policy.throttle_for)
    }

    /// Whether a `step_up` response (on any replica) requires that a
    /// payment made with `key` from `ip` pass a 3-D Secure challenge: the
    /// key, its merchant or the address is stepped up. One atomic load
    /// while nothing is.
    pub fn requires_step_up(&self, key: &ApiKey, ip: IpAddr) -> bool {
        let inner = &self.inner;
        if !inner.step_ups.any() {
            return false;
        }
        let now = Timestamp::now();
        [key.id.as_str(), key.merchant_id.as_str()]
            .iter()
            .any(|s| inner.step_ups.check(s, now).is_some())
            || inner.step_ups.check(&inner.subjects.address(ip), now).is_some()
    }

    /// One card tokenized with `key` from `ip` (a refused tokenization is not
    /// counted: the rate limiter and the lockout answer those). A policy's
    /// response applies from the next request on.
    pub async fn observe_tokenization(&self, key: &ApiKey, ip: IpAddr) {
        let inner = &self.inner;
        if !inner.policy.enabled {
            return;
        }
        let (per_key, per_ip) = inner.tokenization.observe(&key.id, ip, Timestamp::now());
        let window = inner.tokenization.threshold().length;
        if let Some(finding) = per_key {
            inner
                .raise(key_detection(Detector::TokenizationBurst, finding, window, key))
                .await;
        }
        if let Some(finding) = per_ip {
            let mut d = inner.address_detection(Detector::TokenizationBurst, finding, window, ip);
            d.merchant = Some(Tenant::new(key.merchant_id.clone(), key.mode));
            inner.raise(d).await;
        }
    }

    /// One confirmed payment of `tenant`, declined or not.
    pub async fn payment_outcome(&self, tenant: &Tenant, declined: bool) {
        let inner = &self.inner;
        if !inner.policy.enabled {
            return;
        }
        if let Some(finding) = inner.declines.observe(tenant, declined, Timestamp::now()) {
            let mut evidence = serde_json::Map::new();
            evidence.insert("merchant".into(), tenant.merchant_str().into());
            let d = Detection {
                detector: Detector::DeclineRateSpike,
                finding,
                window: inner.declines.threshold().length,
                subject_kind: SubjectKind::Merchant,
                subject: tenant.merchant_str().to_owned(),
                merchant: Some(tenant.clone()),
                key: None,
                evidence,
            };
            inner.raise(d).await;
        }
    }

    /// Keeps this replica's throttles and step-ups in step with every
    /// replica's (run as a background task).
    pub async fn follow_throttles(self) {
        let mut tick = tokio::time::interval(self.inner.policy.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Timestamp::now();
            match self.inner.store.active_throttles(now, 100_000).await {
                Ok(active) => self.inner.throttles.sync(&active, now),
                Err(e) => tracing::warn!(error = %e, "reading anomaly throttles failed"),
            }
            match self.inner.store.active_step_ups(now, 100_000).await {
                Ok(active) => self.inner.step_ups.sync(&active, now),
                Err(e) => tracing::warn!(error = %e, "reading anomaly step-ups failed"),
            }
        }
    }
}

/// The tenant's own alerts, newest first.
pub async fn list_for_tenant<S: AnomalyStore>(
    store: &S,
    tenant: &Tenant,
    before: Option<&AnomalyId>,
    limit: i64,
) -> Result<Vec<Anomaly>, ServiceError> {
    Ok(store.list_anomalies_for_tenant(tenant, before, limit).await?)
}

/// Every alert, newest first (operator use).
pub async fn list_all<S: AnomalyStore>(
    store: &S,
    before: Option<&AnomalyId>,
    limit: i64,
) -> Result<Vec<Anomaly>, ServiceError> {
    Ok(store.list_anomalies(before, limit).await?)
}

/// What the request path does about the responses of its findings.
fn verdict(responses: &[Response], throttle_for: Duration) -> Verdict {
    if responses.contains(&Response::FreezeMerchant) {
        Verdict::MerchantFrozen
    } else if responses.contains(&Response::FreezeKey) {
        Verdict::KeyFrozen
    } else if responses.contains(&Response::Throttle) {
        Verdict::Throttled(throttle_for)
    } else {
        Verdict::Proceed
    }
}

/// A finding about `key`.
fn key_detection(detector: Detector, finding: Finding, window: Duration, key: &ApiKey) -> Detection {
    let mut evidence = serde_json::Map::new();
    evidence.insert("key".into(), key.id.as_str().into());
    Detection {
        detector,
        finding,
        window,
        subject_kind: SubjectKind::Key,
        subject: key.id.to_string(),
        merchant: Some(Tenant::new(key.merchant_id.clone(), key.mode)),
        key: Some(key.clone()),
        evidence,
    }
}

impl Inner {
    /// A finding about the client address `ip`: its subject is a keyed hash,
    /// its evidence the address's network and country.
    fn address_detection(&self, detector: Detector, finding: Finding, window: Duration, ip: IpAddr) -> Detection {
        let mut evidence = serde_json::Map::new();
        evidence.insert("client_network".into(), subject::network(ip).into());
        if let Some(country) = CountryCode::of_address(ip) {
            evidence.insert("country".into(), country.as_str().into());
        }
        Detection {
            detector,
            finding,
            window,
            subject_kind: SubjectKind::ClientIp,
            subject: self.subjects.address(ip),
            merchant: None,
            key: None,
            evidence,
        }
    }

    /// `key` used from `country`, which this process had not seen it use.
    async fn new_country(&self, key: &ApiKey, ip: IpAddr, country: CountryCode, now: Timestamp) -> Option<Response> {
        let known = match self.store.key_countries(&key.id).await {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(error = %e, "reading a key's countries failed");
                return None;
            }
        };
        if known.iter().any(|c| c == country.as_str()) {
            self.countries.remember(&key.id, country);
            return None;
        }
        let mut work = UnitOfWork::new();
        self.store.insert_key_country(&mut work, &key.id, country.as_str(), now);
        match self.store.commit(work).await {
            Ok(()) => {}
            // Another replica recorded it first (and judged it).
            Err(StoreError::Duplicate) => {
                self.countries.remember(&key.id, country);
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording a key's country failed");
                return None;
            }
        }
        self.countries.remember(&key.id, country);
        if known.is_empty() {
            // The key's first country is its baseline.
            return None;
        }
        let day = window::Threshold {
            length: Duration::from_secs(86_400),
            min: 1,
            factor: 1.0,
            critical_factor: 1.0,
            history: 0,
        };
        let finding = Finding {
            severity: Severity::Warning,
            observed: i64::try_from(known.len() + 1).unwrap_or(i64::MAX),
            baseline: i64::try_from(known.len()).unwrap_or(i64::MAX),
            window_start: day.window_start(now),
        };
        let mut d = key_detection(Detector::NewCountry, finding, day.length, key);
        d.evidence.insert("country".into(), country.as_str().into());
        d.evidence.insert("known_countries".into(), known.into());
        d.evidence.insert("client_network".into(), subject::network(ip).into());
        Some(self.raise(d).await)
    }

    /// A counted authentication failure from `meta.client_ip`, with the key
    /// when one matched.
    async fn failed(&self, meta: &RequestMeta, key: Option<&ApiKey>) {
        if !self.policy.enabled {
            return;
        }
        let now = Timestamp::now();
        let ip = canonical(meta.client_ip);
        let since = self.auth_failures.window_start(now);
        match self.store.auth_failures_since(&ip.to_string(), since).await {
            Ok(failures) => {
                let failures = u64::try_from(failures).unwrap_or(0);
                if let Some(finding) = self.auth_failures.observe(ip, failures, now) {
                    let window = self.auth_failures.threshold().length;
                    let d = self.address_detection(Detector::AuthFailureBurst, finding, window, ip);
                    self.raise(d).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "counting authentication failures failed"),
        }
        if let Some(key) = key {
            if let Some(finding) = self.retired.observe(key, now) {
                let window = self.retired.threshold().length;
                let mut d = key_detection(Detector::RetiredKeyUse, finding, window, key);
                d.evidence.insert(
                    "retired".into(),
                    if key.revoked_at.is_some() { "revoked" } else { "rotated" }.into(),
                );
                d.evidence.insert("client_network".into(), subject::network(ip).into());
                // A retired key cannot be frozen usefully: it is refused already.
                d.key = None;
                self.raise(d).await;
            }
        }
    }
}

impl FailureObserver for Anomalies {
    fn failed<'a>(&'a self, meta: &'a RequestMeta, key: Option<&'a ApiKey>) -> BoxFuture<'a, ()> {
        Box::pin(self.inner.failed(meta, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_response_decides_the_request() {
        let t = Duration::from_secs(60);
        assert_eq!(verdict(&[], t), Verdict::Proceed);
        assert_eq!(
            verdict(&[Response::Alert, Response::Throttle], t),
            Verdict::Throttled(t)
        );
        assert_eq!(
            verdict(&[Response::Throttle, Response::FreezeKey], t),
            Verdict::KeyFrozen
        );
        assert_eq!(
            verdict(&[Response::FreezeKey, Response::FreezeMerchant], t),
            Verdict::MerchantFrozen
        );
    }
}
