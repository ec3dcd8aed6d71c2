//! Rate limits: token buckets behind one interface ([`RateLimiter`]), the
//! tokenization policy that uses them ([`Tokenization`]), and the audit of
//! throttled requests ([`ThrottleLog`]: one entry per subject and window,
//! not one per refused request).
//!
//! Why tokenization: a card's fingerprint, the BIN and the last four narrow a
//! card number to about 100,000 candidates, and tokenizing with the public
//! publishable key is the cheapest way to test them. Fingerprints are no
//! longer shown to publishable keys, and tokenization with a publishable key
//! is limited per key and per client address, so a script meets the limit in
//! its first few hundred requests while a checkout page never does. Secret and
//! restricted keys (the merchant's own servers) get a per-key limit only when
//! the operator configures one.
//!
//! The buckets here live in this process ([`LocalBuckets`], `governor`'s
//! GCRA token buckets). Replicas sharing buckets (through Redis) implement
//! the same [`RateLimiter`] trait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use governor::clock::{Clock, DefaultClock};
use governor::DefaultKeyedRateLimiter;

use crate::domain::api_key::ApiKey;
use crate::domain::api_key::KeyKind;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::ApiKeyId;

use super::actor::Actor;
use super::audit_writer::AuditSink;

/// A bucket's size and refill rate: `burst` requests at once, then
/// `per_minute` a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub burst: u32,
    pub per_minute: u32,
}

impl Quota {
    fn governor(self) -> Option<governor::Quota> {
        let burst = NonZeroU32::new(self.burst)?;
        let per_minute = NonZeroU32::new(self.per_minute)?;
        Some(governor::Quota::per_minute(per_minute).allow_burst(burst))
    }
}

/// The tokenization limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizationPolicy {
    /// Per publishable key: the merchant's whole public checkout traffic.
    pub per_publishable_key: Quota,
    /// Per client address (IPv6: per /64), for publishable keys.
    pub per_client_ip: Quota,
    /// Per secret or restricted key; `None` (the default) limits nothing, so
    /// a merchant's own servers are never throttled by surprise.
    pub per_private_key: Option<Quota>,
}

impl Default for TokenizationPolicy {
    fn default() -> Self {
        Self {
            // A busy checkout: 5 cards a second, bursts of 300.
            per_publishable_key: Quota {
                burst: 300,
                per_minute: 300,
            },
            // One shopper retries a few cards; a script is stopped after 30
            // and then gets one every 6 seconds.
            per_client_ip: Quota {
                burst: 30,
                per_minute: 10,
            },
            per_private_key: None,
        }
    }
}

/// What a token is taken from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Tokenizations with one publishable key.
    PublishableKey(ApiKeyId),
    /// Tokenizations with a publishable key from one client address.
    ClientIp(IpAddr),
    /// Tokenizations with one secret or restricted key.
    PrivateKey(ApiKeyId),
}

impl Bucket {
    /// The bucket's kind, as audit entries and logs name it (never the key
    /// or the address itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Bucket::PublishableKey(_) => "publishable_key",
            Bucket::ClientIp(_) => "client_ip",
            Bucket::PrivateKey(_) => "private_key",
        }
    }
}

/// A refusal: the bucket is empty until `retry_after` has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub bucket: &'static str,
}

/// Takes tokens from buckets. Implementations must be cheap when a bucket
/// has tokens (this runs on every limited request).
pub trait RateLimiter: Send + Sync {
    /// Takes one token from `bucket`, or says how long until one is there.
    fn take<'a>(&'a self, bucket: &'a Bucket) -> BoxFuture<'a, Result<(), Throttled>>;

    /// Forgets buckets that are full again (called periodically).
    fn forget_idle(&self);
}

/// Token buckets in this process, one keyed limiter per kind of bucket.
pub struct LocalBuckets {
    publishable_keys: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    client_ips: Option<DefaultKeyedRateLimiter<IpAddr>>,
    private_keys: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
}

impl std::fmt::Debug for LocalBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBuckets").finish_non_exhaustive()
    }
}

impl LocalBuckets {
    /// Buckets for `policy`; a quota of zero (burst or rate) limits nothing.
    pub fn new(policy: &TokenizationPolicy) -> Self {
        Self {
            publishable_keys: policy.per_publishable_key.governor().map(governor::RateLimiter::keyed),
            client_ips: policy.per_client_ip.governor().map(governor::RateLimiter::keyed),
            private_keys: policy
                .per_private_key
                .and_then(Quota::governor)
                .map(governor::RateLimiter::keyed),
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
    kind: &'static str,
) -> Result<(), Throttled> {
    let Some(limiter) = limiter else { return Ok(()) };
    limiter.check_key(key).map_err(|not_until| Throttled {
        retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        bucket: kind,
    })
}

impl RateLimiter for LocalBuckets {
    fn take<'a>(&'a self, bucket: &'a Bucket) -> BoxFuture<'a, Result<(), Throttled>> {
        let kind = bucket.kind();
        let taken = match bucket {
            Bucket::PublishableKey(id) => check(self.publishable_keys.as_ref(), id, kind),
            Bucket::ClientIp(ip) => check(self.client_ips.as_ref(), ip, kind),
            Bucket::PrivateKey(id) => check(self.private_keys.as_ref(), id, kind),
        };
        async move { taken }.boxed()
    }

    fn forget_idle(&self) {
        if let Some(l) = &self.publishable_keys {
            l.retain_recent();
        }
        if let Some(l) = &self.client_ips {
            l.retain_recent();
        }
        if let Some(l) = &self.private_keys {
            l.retain_recent();
        }
    }
}

/// The address a client's bucket is keyed by: IPv4 as it is, IPv6 by its /64
/// (one customer line gets a whole /64; keying by address would give a
/// script 2^64 buckets).
pub fn client_bucket_address(ip: IpAddr) -> IpAddr {
    match crate::domain::restrictions::canonical(ip) {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments.iter_mut().skip(4).for_each(|s| *s = 0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

/// The tokenization limits, applied before a card is parsed.
pub struct Tokenization {
    limiter: Box<dyn RateLimiter>,
}

impl std::fmt::Debug for Tokenization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokenization")
    }
}

impl Tokenization {
    pub fn new(limiter: Box<dyn RateLimiter>) -> Self {
        Self { limiter }
    }

    /// In-process buckets for `policy`.
    pub fn local(policy: &TokenizationPolicy) -> Self {
        Self::new(Box::new(LocalBuckets::new(policy)))
    }

    /// Whether `key` may tokenize a card now, from `client`. A publishable
    /// key's request takes a token from its address's bucket first (a script
    /// on one address does not drain the merchant's), then from the key's.
    pub async fn admit(&self, key: &ApiKey, client: IpAddr) -> Result<(), Throttled> {
        match key.kind {
            KeyKind::Publishable => {
                self.limiter
                    .take(&Bucket::ClientIp(client_bucket_address(client)))
                    .await?;
                self.limiter.take(&Bucket::PublishableKey(key.id.clone())).await
            }
            KeyKind::Secret | KeyKind::Restricted => self.limiter.take(&Bucket::PrivateKey(key.id.clone())).await,
        }
    }

    pub fn forget_idle(&self) {
        self.limiter.forget_idle();
    }
}

/// How long one audit entry speaks for a subject's throttled requests.
pub const THROTTLE_AUDIT_WINDOW: Duration = Duration::from_secs(60);

/// One subject's refusals in the current window.
struct Window {
    started: Instant,
    /// Refusals after the first, which was audited on its own.
    more: u64,
    /// The first refusal's entry, the template of the window's summary.
    first: AuditEvent,
}

/// Audits throttled requests: the first refusal of a subject (key and client
/// address) in a window is written at once; the rest of the window is one
/// summary entry with their count, written when the window closes. A flood
/// of refusals is then a handful of entries, not a flood of its own.
pub struct ThrottleLog {
    sink: AuditSink,
    window: Duration,
    open: Mutex<HashMap<(ApiKeyId, IpAddr), Window>>,
}

impl std::fmt::Debug for ThrottleLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThrottleLog")
    }
}

/// The action of a throttled request's entry and of a window's summary.
pub const THROTTLED: &str = "rate_limit.throttled";
pub const THROTTLED_SUMMARY: &str = "rate_limit.throttled_summary";

impl ThrottleLog {
    pub fn new(sink: AuditSink, window: Duration) -> Self {
        Self {
            sink,
            window,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Records one throttled request of `actor` (key `key`, from `client`)
    /// to `route`.
    pub async fn note(&self, actor: &Actor, key: &ApiKey, client: IpAddr, route: &str, throttled: &Throttled) {
        let now = Instant::now();
        let subject = (key.id.clone(), client);
        let (first, closed) = {
            let Ok(mut open) = self.open.lock() else { return };
            match open.get_mut(&subject) {
                Some(w) if now.duration_since(w.started) < self.window => {
                    w.more += 1;
                    (None, None)
                }
                _ => {
                    let mut event = actor.event(THROTTLED, Outcome::Denied);
                    event.resource = Some(route.to_owned());
                    event.reason = Some(format!(
                        "rate_limited by the {} bucket; further refusals within {} s are counted in one entry",
                        throttled.bucket,
                        self.window.as_secs()
                    ));
                    let previous = open.insert(
                        subject,
                        Window {
                            started: now,
                            more: 0,
                            first: event.clone(),
                        },
                    );
                    (Some(event), previous.and_then(|w| summary(&w)))
                }
            }
        };
        for event in closed.into_iter().chain(first) {
            self.sink.record(event).await;
        }
    }

    /// Writes the summaries of windows that have closed (call periodically).
    pub async fn flush(&self) {
        self.flush_older_than(self.window).await;
    }

    /// Writes the summaries of every window, open or not (at shutdown).
    pub async fn flush_all(&self) {
        self.flush_older_than(Duration::ZERO).await;
    }

    async fn flush_older_than(&self, age: Duration) {
        let now = Instant::now();
        let closed: Vec<AuditEvent> = {
            let Ok(mut open) = self.open.lock() else { return };
            let mut closed = Vec::new();
            open.retain(|_, w| {
                let done = now.duration_since(w.started) >= age;
                if done {
                    closed.extend(summary(w));
                }
                !done
            });
            closed
        };
        for event in closed {
            self.sink.record(event).await;
        }
    }
}

/// The summary entry of a closed window, if it refused more than its first.
fn summary(w: &Window) -> Option<AuditEvent> {
    (w.more > 0).then(|| {
        let mut event = w.first.clone();
        event.action = THROTTLED_SUMMARY.to_owned();
        event.at = crate::domain::time::Timestamp::now();
        event.reason = Some(format!(
            "{} more requests refused (rate_limited) in the window after the first",
            w.more
        ));
        event
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::ids::MerchantId;
    use crate::domain::time::Timestamp;

    fn key(kind: KeyKind) -> ApiKey {
        let id = ApiKeyId::generate().unwrap();
        ApiKey {
            lineage: id.clone(),
            id,
            merchant_id: MerchantId::generate().unwrap(),
            kind,
            mode: Mode::Test,
            prefix: "pk_test_".into(),
            last4: "abcd".into(),
            permissions: Vec::new(),
            restrictions: Default::default(),
            description: None,
            created_at: Timestamp::now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
        }
    }

    fn policy(pk: (u32, u32), ip: (u32, u32), private: Option<(u32, u32)>) -> TokenizationPolicy {
        let q = |(burst, per_minute)| Quota { burst, per_minute };
        TokenizationPolicy {
            per_publishable_key: q(pk),
            per_client_ip: q(ip),
            per_private_key: private.map(q),
        }
    }

    #[tokio::test]
    async fn a_publishable_key_is_limited_per_address_and_per_key() {
        let limits = Tokenization::local(&policy((5, 1), (3, 1), None));
        let pk = key(KeyKind::Publishable);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limits.admit(&pk, a).await.is_ok());
        }
        let refused = limits.admit(&pk, a).await.unwrap_err();
        assert_eq!(refused.bucket, "client_ip");
        assert!(refused.retry_after > Duration::from_secs(30), "{refused:?}");
        // Another address has its own bucket, until the key's runs out.
        assert!(limits.admit(&pk, b).await.is_ok());
        assert!(limits.admit(&pk, b).await.is_ok());
        assert_eq!(limits.admit(&pk, b).await.unwrap_err().bucket, "publishable_key");
        // Another key is not affected by the first one's bucket (from an
        // address whose bucket is not empty either).
        let c: IpAddr = "198.51.100.3".parse().unwrap();
        assert!(limits.admit(&key(KeyKind::Publishable), c).await.is_ok());
    }

    #[tokio::test]
    async fn private_keys_are_unlimited_unless_configured() {
        let open = Tokenization::local(&policy((1, 1), (1, 1), None));
        let sk = key(KeyKind::Secret);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..1000 {
            assert!(open.admit(&sk, ip).await.is_ok());
        }
        let limited = Tokenization::local(&policy((1, 1), (1, 1), Some((2, 1))));
        assert!(limited.admit(&sk, ip).await.is_ok());
        assert!(limited.admit(&sk, ip).await.is_ok());
        assert_eq!(limited.admit(&sk, ip).await.unwrap_err().bucket, "private_key");
        // A zero quota limits nothing.
        let off = Tokenization::local(&policy((0, 0), (0, 0), None));
        for _ in 0..100 {
            assert!(off.admit(&key(KeyKind::Publishable), ip).await.is_ok());
        }
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_bucket_address(a), client_bucket_address(b));
        assert_ne!(client_bucket_address(a), client_bucket_address(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_bucket_address(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
