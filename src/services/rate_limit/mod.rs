//! Rate limits: token buckets per API key, per merchant and per client
//! address, for every route by class ([`RouteClass`]), behind one interface
//! ([`RateLimiter`]); the policy of which buckets a request takes from
//! ([`policy`], applied by [`Limits::admit`]); and the audit of throttled
//! requests ([`ThrottleLog`]: one entry per subject and window, not one per
//! refused request).
//!
//! Who is limited by default: publishable keys (public by design: anyone
//! with a checkout page has one) and unauthenticated traffic, per client
//! address. Secret and restricted keys (the merchant's own servers) only
//! where the operator configures a quota, so they are never throttled by
//! surprise. Why tokenization is tightest: a card's fingerprint, the BIN and
//! the last four narrow a card number to about 100,000 candidates, and
//! tokenizing with the publishable key is the cheapest way to test them.
//!
//! Where buckets live: in this process ([`LocalBuckets`]) or, with
//! `redis.url` configured, in Redis, shared by every replica
//! ([`SharedBuckets`]), which falls back to its own local buckets while
//! Redis does not answer: never to no limit. Both apply the same GCRA
//! ([`crate::domain::rate_limit`]).

mod local;
pub mod policy;
mod shared;
mod throttle_log;

use std::net::IpAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::domain::api_key::{ApiKey, KeyKind, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
pub use crate::domain::rate_limit::{Decision, Gcra, Quota};

use super::health::Check;

pub use local::LocalBuckets;
pub use policy::{ClassQuotas, RateLimitPolicy, RouteClass};
pub use shared::{ClientAddressKey, SharedBuckets, SHARED_RESTORED, SHARED_UNAVAILABLE};
pub use throttle_log::{ThrottleLog, THROTTLED, THROTTLED_SUMMARY, THROTTLE_AUDIT_WINDOW};

/// Whose requests a bucket counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// One publishable key.
    PublishableKey(ApiKeyId),
    /// One secret or restricted key.
    PrivateKey(ApiKeyId),
    /// Every key of one merchant in one mode.
    Merchant(MerchantId, Mode),
    /// One client address (IPv6: its /64), for publishable keys and
    /// unauthenticated requests.
    ClientIp(IpAddr),
}

impl Subject {
    /// The bucket's kind, as audit entries, logs and Redis keys name it
    /// (never the key or the address itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::PublishableKey(_) => "publishable_key",
            Subject::PrivateKey(_) => "private_key",
            Subject::Merchant(..) => "merchant",
            Subject::ClientIp(_) => "client_ip",
        }
    }
}

/// One bucket: a subject's requests of one route class.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub class: RouteClass,
    pub subject: Subject,
}

/// What is left of the tightest bucket a request took from (the
/// `RateLimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    pub reset: Duration,
}

impl From<Decision> for Budget {
    fn from(d: Decision) -> Self {
        Self {
            limit: d.limit,
            remaining: d.remaining,
            reset: d.reset,
        }
    }
}

impl Budget {
    /// The one closer to running out.
    fn tighter(self, other: Budget) -> Budget {
        if (other.remaining, std::cmp::Reverse(other.reset)) < (self.remaining, std::cmp::Reverse(self.reset)) {
            other
        } else {
            self
        }
    }
}

/// A refusal: the bucket is empty until `retry_after` has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
    pub class: RouteClass,
    /// The empty bucket's kind ([`Subject::kind`]).
    pub bucket: &'static str,
    pub budget: Budget,
}

/// Takes tokens from buckets. Implementations must be cheap when a bucket
/// has tokens (this runs on every limited request), and always answer: a
/// store that cannot is replaced by a local one for that take, never by
/// "allowed".
pub trait RateLimiter: Send + Sync {
    /// Takes one token from `bucket` (of quota `gcra`).
    fn take<'a>(&'a self, bucket: &'a Bucket, gcra: Gcra) -> BoxFuture<'a, Decision>;

    /// Forgets buckets that are full again (called periodically).
    fn forget_idle(&self);

    /// Shared buckets: whether their store answers (readiness); `None` for
    /// buckets in this process.
    fn health(&self) -> Option<Check> {
        None
    }
}

/// Who sends a request.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Key(&'a ApiKey),
    /// Not authenticated: the public pages and assets.
    Anonymous,
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

/// The policy applied to requests: which buckets each takes from.
pub struct Limits {
    policy: RateLimitPolicy,
    limiter: Box<dyn RateLimiter>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Limits {
    pub fn new(policy: RateLimitPolicy, limiter: Box<dyn RateLimiter>) -> Self {
        Self { policy, limiter }
    }

    /// In-process buckets for `policy`.
    pub fn local(policy: RateLimitPolicy) -> Self {
        Self::new(policy, Box::new(LocalBuckets::new()))
    }

    /// Whether `caller` may send a request of `class` now, from `client`.
    /// A publishable key's request takes a token from its address's bucket
    /// first (a script on one address does not drain the merchant's), then
    /// from the key's, then from the merchant's; a private key's from the
    /// key's and the merchant's; an anonymous one from its address's.
    /// `Ok(None)`: no bucket applies (nothing to report in headers).
    pub async fn admit(
        &self,
        class: RouteClass,
        caller: Caller<'_>,
        client: IpAddr,
    ) -> Result<Option<Budget>, Throttled> {
        let q = self.policy.class(class);
        // Which buckets, in order; a subject is built (its id cloned) only
        // for a bucket with a quota, so an unlimited caller costs nothing.
        #[derive(Clone, Copy)]
        enum Of {
            Ip,
            PublishableKey,
            PrivateKey,
            Merchant,
        }
        let order: [Option<(Of, Option<Quota>)>; 3] = match caller {
            Caller::Key(k) if k.kind == KeyKind::Publishable => [
                Some((Of::Ip, q.per_client_ip)),
                Some((Of::PublishableKey, q.per_publishable_key)),
                Some((Of::Merchant, q.per_merchant)),
            ],
            Caller::Key(_) => [
                Some((Of::PrivateKey, q.per_private_key)),
                Some((Of::Merchant, q.per_merchant)),
                None,
            ],
            Caller::Anonymous => [Some((Of::Ip, q.per_client_ip)), None, None],
        };
        let subject = |of: Of| match (of, caller) {
            (Of::PublishableKey, Caller::Key(k)) => Some(Subject::PublishableKey(k.id.clone())),
            (Of::PrivateKey, Caller::Key(k)) => Some(Subject::PrivateKey(k.id.clone())),
            (Of::Merchant, Caller::Key(k)) => Some(Subject::Merchant(k.merchant_id.clone(), k.mode)),
            (Of::Ip, _) => Some(Subject::ClientIp(client_bucket_address(client))),
            _ => None,
        };
        let buckets = order
            .into_iter()
            .flatten()
            .filter_map(|(of, quota)| Some((quota.and_then(Quota::gcra)?, of)));
        let mut tightest: Option<Budget> = None;
        for (gcra, of) in buckets {
            let Some(subject) = subject(of) else { continue };
            let bucket = Bucket { class, subject };
            let decision = self.limiter.take(&bucket, gcra).await;
            if !decision.allowed {
                return Err(Throttled {
                    retry_after: decision.retry_after,
                    class,
                    bucket: bucket.subject.kind(),
                    budget: decision.into(),
                });
            }
            let budget = Budget::from(decision);
            tightest = Some(tightest.map_or(budget, |t| t.tighter(budget)));
        }
        Ok(tightest)
    }

    pub fn forget_idle(&self) {
        self.limiter.forget_idle();
    }

    /// The shared buckets' readiness; `None` without shared buckets.
    pub fn health(&self) -> Option<Check> {
        self.limiter.health()
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MerchantId;

    fn key(kind: KeyKind) -> ApiKey {
        ApiKey::for_test(MerchantId::generate().unwrap(), kind, Mode::Test)
    }

    fn q((burst, per_minute): (u32, u32)) -> Option<Quota> {
        Some(Quota { burst, per_minute })
    }

    fn tokenize(pk: (u32, u32), ip: (u32, u32), private: Option<(u32, u32)>) -> Limits {
        let mut policy = RateLimitPolicy::unlimited();
        policy.tokenize = ClassQuotas {
            per_publishable_key: q(pk),
            per_client_ip: q(ip),
            per_private_key: private.and_then(q),
            per_merchant: None,
        };
        Limits::local(policy)
    }

    async fn admit(l: &Limits, k: &ApiKey, ip: IpAddr) -> Result<Option<Budget>, Throttled> {
        l.admit(RouteClass::Tokenize, Caller::Key(k), ip).await
    }

    #[tokio::test]
    async fn a_publishable_key_is_limited_per_address_and_per_key() {
        let limits = tokenize((5, 1), (3, 1), None);
        let pk = key(KeyKind::Publishable);
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        for left in [2, 1, 0] {
            assert_eq!(admit(&limits, &pk, a).await.unwrap().unwrap().remaining, left);
        }
        let refused = admit(&limits, &pk, a).await.unwrap_err();
        assert_eq!(refused.bucket, "client_ip");
        assert!(refused.retry_after > Duration::from_secs(30), "{refused:?}");
        // Another address has its own bucket, until the key's runs out.
        assert!(admit(&limits, &pk, b).await.is_ok());
        assert!(admit(&limits, &pk, b).await.is_ok());
        assert_eq!(admit(&limits, &pk, b).await.unwrap_err().bucket, "publishable_key");
        // Another key is not affected by the first one's bucket (from an
        // address whose bucket is not empty either).
        let c: IpAddr = "198.51.100.3".parse().unwrap();
        assert!(admit(&limits, &key(KeyKind::Publishable), c).await.is_ok());
    }

    #[tokio::test]
    async fn private_keys_are_unlimited_unless_configured() {
        let open = tokenize((1, 1), (1, 1), None);
        let sk = key(KeyKind::Secret);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..1000 {
            assert_eq!(admit(&open, &sk, ip).await, Ok(None));
        }
        let limited = tokenize((1, 1), (1, 1), Some((2, 1)));
        assert!(admit(&limited, &sk, ip).await.is_ok());
        assert!(admit(&limited, &sk, ip).await.is_ok());
        assert_eq!(admit(&limited, &sk, ip).await.unwrap_err().bucket, "private_key");
        // A zero quota limits nothing.
        let off = tokenize((0, 0), (0, 0), None);
        for _ in 0..100 {
            assert!(admit(&off, &key(KeyKind::Publishable), ip).await.is_ok());
        }
    }

    #[tokio::test]
    async fn the_defaults_limit_publishable_keys_and_anonymous_clients_but_not_private_keys() {
        let limits = Limits::local(RateLimitPolicy::default());
        let ip: IpAddr = "192.0.2.44".parse().unwrap();
        let sk = key(KeyKind::Secret);
        let rk = key(KeyKind::Restricted);
        for class in [RouteClass::Tokenize, RouteClass::Read, RouteClass::Write] {
            for _ in 0..2000 {
                assert_eq!(limits.admit(class, Caller::Key(&sk), ip).await, Ok(None));
                assert_eq!(limits.admit(class, Caller::Key(&rk), ip).await, Ok(None));
            }
        }
        let pk = key(KeyKind::Publishable);
        let refused = (0..1000).find(|_| {
            futures_util::FutureExt::now_or_never(limits.admit(RouteClass::Read, Caller::Key(&pk), ip))
                .is_some_and(|r| r.is_err())
        });
        assert!(refused.is_some_and(|n| n <= 120), "{refused:?}");
        let anonymous = (0..2000).find(|_| {
            futures_util::FutureExt::now_or_never(limits.admit(RouteClass::Unauthenticated, Caller::Anonymous, ip))
                .is_some_and(|r| r.is_err())
        });
        assert!(anonymous.is_some_and(|n| n <= 600), "{anonymous:?}");
    }

    #[tokio::test]
    async fn a_merchant_quota_holds_every_key_of_the_merchant_in_one_mode() {
        let mut policy = RateLimitPolicy::unlimited();
        policy.write.per_merchant = q((3, 1));
        let limits = Limits::local(policy);
        let ip: IpAddr = "192.0.2.45".parse().unwrap();
        let a = key(KeyKind::Secret);
        let mut b = key(KeyKind::Restricted);
        b.merchant_id = a.merchant_id.clone();
        let mut live = key(KeyKind::Secret);
        live.merchant_id = a.merchant_id.clone();
        live.mode = Mode::Live;
        for k in [&a, &b, &a] {
            assert!(limits.admit(RouteClass::Write, Caller::Key(k), ip).await.is_ok());
        }
        let refused = limits.admit(RouteClass::Write, Caller::Key(&b), ip).await.unwrap_err();
        assert_eq!((refused.bucket, refused.class), ("merchant", RouteClass::Write));
        // The other mode is another world; reads are another class.
        assert!(limits.admit(RouteClass::Write, Caller::Key(&live), ip).await.is_ok());
        assert!(limits.admit(RouteClass::Read, Caller::Key(&a), ip).await.is_ok());
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
