//! Buckets shared by every replica through a store outside the process
//! (Redis: `store::redis_buckets`), with this replica's own buckets as the
//! fallback while that store does not answer in time.
//!
//! What must hold: a take always answers, from the shared bucket or, for that
//! take, from the local one (never "allowed" for want of an answer); an
//! outage is logged once (error level) and audited once
//! ([`SHARED_UNAVAILABLE`]), its end likewise ([`SHARED_RESTORED`]); while it
//! lasts, requests do not wait for the store at all, and a watcher probing
//! it once a second brings the shared buckets back. Keys hold no secret and
//! no client address in clear: key and merchant ids as they are, addresses
//! as a keyed hash.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use sha2::Sha256;

use crate::domain::audit::{AuditEvent, Outcome};
use crate::store::ports::RateBuckets;

use super::super::audit_writer::AuditSink;
use super::super::health::Check;
use super::{Bucket, Decision, Gcra, LocalBuckets, RateLimiter, Subject};

/// The audit actions of an outage of the shared buckets and of its end.
pub const SHARED_UNAVAILABLE: &str = "rate_limit.shared_unavailable";
pub const SHARED_RESTORED: &str = "rate_limit.shared_restored";

/// How often the watcher probes the shared store.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

const ADDRESS_KEY_LABEL: &[u8] = b"paywarden rate-limit client address key v1";

/// The key that hashes client addresses into bucket names, derived from the
/// pepper (so every replica derives the same one).
pub struct ClientAddressKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for ClientAddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientAddressKey(***)")
    }
}

impl ClientAddressKey {
    pub fn derive(pepper: &SecretBox<[u8; 32]>) -> Self {
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(pepper.expose_secret()) {
            mac.update(ADDRESS_KEY_LABEL);
            key.expose_secret_mut().copy_from_slice(&mac.finalize().into_bytes());
        }
        Self(key)
    }

    /// 128 bits of HMAC-SHA256 of the address, hex.
    fn hash(&self, ip: IpAddr) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()) else {
            return String::new();
        };
        match ip {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let digest = mac.finalize().into_bytes();
        hex::encode(digest.get(..16).unwrap_or_default())
    }
}

/// Shared buckets with a local fallback.
pub struct SharedBuckets {
    inner: Arc<Inner>,
    watcher: tokio::task::JoinHandle<()>,
}

struct Inner {
    store: Arc<dyn RateBuckets>,
    local: LocalBuckets,
    timeout: Duration,
    /// Namespaces every key: `{prefix}:{class}:{kind}:{subject}`.
    prefix: String,
    addresses: ClientAddressKey,
    /// The store failed and has not answered a probe since.
    down: AtomicBool,
    audit: AuditSink,
}

impl std::fmt::Debug for SharedBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuckets")
            .field("prefix", &self.inner.prefix)
            .field("down", &self.inner.down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for SharedBuckets {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl SharedBuckets {
    /// Buckets in `store` under `prefix`, each take waiting at most
    /// `timeout`; starts the watcher (call inside a Tokio runtime).
    pub fn start(
        store: Arc<dyn RateBuckets>,
        prefix: String,
        timeout: Duration,
        addresses: ClientAddressKey,
        audit: AuditSink,
    ) -> Self {
        let inner = Arc::new(Inner {
            store,
            local: LocalBuckets::new(),
            timeout,
            prefix,
            addresses,
            down: AtomicBool::new(false),
            audit,
        });
        let watcher = tokio::spawn(watch(Arc::clone(&inner)));
        Self { inner, watcher }
    }

    /// The store key of `bucket`.
    pub fn key(&self, bucket: &Bucket) -> String {
        self.inner.key(bucket)
    }
}

impl Inner {
    fn key(&self, bucket: &Bucket) -> String {
        let subject = match &bucket.subject {
            Subject::PublishableKey(id) | Subject::PrivateKey(id) => id.to_string(),
            Subject::Merchant(id, mode) => format!("{id}:{}", mode.as_str()),
            Subject::ClientIp(ip) => self.addresses.hash(*ip),
        };
        format!(
            "{}:{}:{}:{subject}",
            self.prefix,
            bucket.class.as_str(),
            bucket.subject.kind()
        )
    }

    /// The store failed: the first failure of an outage is logged and
    /// audited, the rest only counted by the fallback.
    async fn failed(&self, why: &str) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(error = why, "shared rate limits unavailable (redis): each replica now limits on its own buckets until redis answers again");
        let mut event = AuditEvent::new(SHARED_UNAVAILABLE, Outcome::Failure);
        event.reason = Some(
            "the shared rate-limit store (redis) did not answer in time; limits fall back to this replica's own buckets"
                .to_owned(),
        );
        event.user_agent = Some("paywarden-system rate_limits".to_owned());
        self.audit.record(event).await;
    }

    async fn restored(&self) {
        if !self.down.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::info!("shared rate limits available again (redis answers): limits are shared by every replica again");
        let mut event = AuditEvent::new(SHARED_RESTORED, Outcome::Success);
        event.reason = Some("the shared rate-limit store (redis) answers again; limits are shared again".to_owned());
        event.user_agent = Some("paywarden-system rate_limits".to_owned());
        self.audit.record(event).await;
    }
}

/// Probes the store once a second: notices an outage without traffic, and
/// ends one when the store answers again.
async fn watch(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(inner.timeout.max(Duration::from_millis(200)), inner.store.ping()).await {
            Ok(Ok(())) => inner.restored().await,
            Ok(Err(e)) => inner.failed(&e.to_string()).await,
            Err(_) => inner.failed("no answer to a probe in time").await,
        }
    }
}

impl RateLimiter for SharedBuckets {
    fn take<'a>(&'a self, bucket: &'a Bucket, gcra: Gcra) -> BoxFuture<'a, Decision> {
        async move {
            let inner = &self.inner;
            if !inner.down.load(Ordering::Acquire) {
                let key = inner.key(bucket);
                match tokio::time::timeout(inner.timeout, inner.store.take(&key, gcra)).await {
                    Ok(Ok(decision)) => return decision,
                    Ok(Err(e)) => inner.failed(&e.to_string()).await,
                    Err(_) => {
                        inner
                            .failed(&format!("no answer within {} ms", inner.timeout.as_millis()))
                            .await
                    }
                }
            }
            inner.local.take_now(bucket, gcra)
        }
        .boxed()
    }

    fn forget_idle(&self) {
        self.inner.local.forget_idle();
    }

    fn health(&self) -> Option<Check> {
        let down = self.inner.down.load(Ordering::Acquire);
        Some(Check {
            ok: !down,
            detail: down.then(|| "unavailable".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::domain::rate_limit::Quota;
    use crate::services::rate_limit::RouteClass;
    use crate::store::fault::{Fault, FaultKind};
    use crate::store::StoreError;

    /// A store of bucket TATs by key, which fails while `failing` is set.
    struct Flaky {
        tats: std::sync::Mutex<std::collections::HashMap<String, u64>>,
        origin: std::time::Instant,
        failing: AtomicBool,
    }

    impl Flaky {
        fn new(failing: bool) -> Self {
            Self {
                tats: Default::default(),
                origin: std::time::Instant::now(),
                failing: AtomicBool::new(failing),
            }
        }
    }

    impl RateBuckets for Flaky {
        fn take<'a>(&'a self, key: &'a str, gcra: Gcra) -> BoxFuture<'a, Result<Decision, StoreError>> {
            async move {
                if self.failing.load(Ordering::SeqCst) {
                    return Err(StoreError::Unavailable(Fault::new(FaultKind::Unavailable, "down")));
                }
                let now = u64::try_from(self.origin.elapsed().as_micros()).unwrap();
                let mut tats = self.tats.lock().unwrap();
                let (d, tat) = gcra.decide(tats.get(key).copied(), now);
                if let Some(t) = tat {
                    tats.insert(key.to_owned(), t);
                }
                Ok(d)
            }
            .boxed()
        }

        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            let failing = self.failing.load(Ordering::SeqCst);
            async move {
                if failing {
                    Err(StoreError::Unavailable(Fault::new(FaultKind::Unavailable, "down")))
                } else {
                    Ok(())
                }
            }
            .boxed()
        }
    }

    fn pepper() -> SecretBox<[u8; 32]> {
        SecretBox::new(Box::new([7u8; 32]))
    }

    #[tokio::test]
    async fn keys_name_ids_and_hash_addresses() {
        let (audit, _rx) = AuditSink::channel();
        let store = Arc::new(Flaky::new(false));
        let shared = SharedBuckets::start(
            store,
            "pw-test".into(),
            Duration::from_millis(50),
            ClientAddressKey::derive(&pepper()),
            audit,
        );
        let ip: IpAddr = "203.0.113.77".parse().unwrap();
        let key = shared.key(&Bucket {
            class: RouteClass::Unauthenticated,
            subject: Subject::ClientIp(ip),
        });
        assert!(key.starts_with("pw-test:unauthenticated:client_ip:"), "{key}");
        assert!(!key.contains("203.0.113.77"), "{key}");
        assert_eq!(key.len(), "pw-test:unauthenticated:client_ip:".len() + 32);
        let other = ClientAddressKey::derive(&SecretBox::new(Box::new([8u8; 32])));
        assert_ne!(
            other.hash(ip),
            ClientAddressKey::derive(&pepper()).hash(ip),
            "keyed by the pepper"
        );
    }

    #[tokio::test]
    async fn an_outage_falls_back_to_local_buckets_and_is_audited_once() {
        let (audit, mut rx) = AuditSink::channel();
        let store = Arc::new(Flaky::new(true));
        let shared = SharedBuckets::start(
            Arc::clone(&store) as Arc<dyn RateBuckets>,
            "pw".into(),
            Duration::from_millis(50),
            ClientAddressKey::derive(&pepper()),
            audit,
        );
        let gcra = Quota {
            burst: 2,
            per_minute: 1,
        }
        .gcra()
        .unwrap();
        let bucket = Bucket {
            class: RouteClass::Write,
            subject: Subject::ClientIp("192.0.2.1".parse().unwrap()),
        };
        // Still limited: the local bucket holds two, then refuses.
        assert!(shared.take(&bucket, gcra).await.allowed);
        assert!(shared.take(&bucket, gcra).await.allowed);
        assert!(!shared.take(&bucket, gcra).await.allowed);
        assert_eq!(shared.health().map(|c| c.ok), Some(false));
        let first = rx.recv().await.unwrap();
        assert_eq!(first.action, SHARED_UNAVAILABLE);
        assert!(rx.try_recv().is_err(), "one entry per outage");
        // The store answers again: the watcher ends the outage.
        store.failing.store(false, Ordering::SeqCst);
        let restored = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(restored.action, SHARED_RESTORED);
        assert_eq!(shared.health().map(|c| c.ok), Some(true));
        assert!(
            shared.take(&bucket, gcra).await.allowed,
            "the shared bucket is a fresh one"
        );
    }
}
