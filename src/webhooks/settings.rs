//! How deliveries are made: the retry schedule, the lease, the poll interval,
//! the per-attempt timeout, the in-flight caps and the two HTTP clients (one
//! per mode).
//!
//! Invariants: TLS certificates are always verified (rustls with the
//! system's roots, plus an operator-configured extra CA); redirects are never
//! followed; no proxy from the environment is used (a proxy would resolve
//! names itself and bypass the SSRF guard); live-mode deliveries resolve names
//! only through [`GuardedResolver`](super::ssrf::GuardedResolver).

use std::sync::Arc;
use std::time::Duration;

use crate::domain::random;

use super::payload::Payloads;

/// How long one attempt may take by default, from connecting to the
/// response's status: receivers are expected to acknowledge first and work
/// afterwards (Shopify allows 5 s, GitHub 10 s). An endpoint slower than
/// this delays only itself (its attempt fails with `timeout` and is retried
/// on its own schedule); `webhooks.attempt_timeout` raises it up to
/// [`MAX_ATTEMPT_TIMEOUT`].
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest attempt timeout allowed.
pub const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests in flight to one endpoint from one gateway at most, by default.
/// A gateway claims at most as many of an endpoint's deliveries ahead of
/// their requests ([`AHEAD`](super::lanes::AHEAD) times as many while the
/// endpoint answers within [`QUICK`](super::lanes::QUICK), one while it
/// fails), so that its next deliveries are claimed while the last ones are
/// sent and recorded; an endpoint's leases in all replicas together
/// (claimed, in flight or being recorded) are at most 2 × `AHEAD` times it.
pub const DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT: usize = 8;
/// Attempts in flight from one gateway at most, by default: each may hold a
/// connection (a file descriptor).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// The shortest retry window allowed outside development mode.
pub const MIN_RETRY_WINDOW: Duration = Duration::from_secs(3 * 86_400);
/// A lease must outlast an attempt (timeout plus the writes around it).
pub const MIN_LEASE: Duration = Duration::from_secs(15);
/// How much longer than the attempt timeout a lease must be outside
/// development mode: the reads before an attempt and the writes after it.
pub const LEASE_OVER_ATTEMPT: Duration = Duration::from_secs(10);
pub const USER_AGENT: &str = concat!("paywarden-webhooks/", env!("CARGO_PKG_VERSION"));

/// Exponential backoff with jitter, for at least `window` after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Longest delay between two attempts.
    pub max_interval: Duration,
    /// How long after the event deliveries are retried; a failure after it
    /// is final and disables the endpoint.
    pub window: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(60),
            max_interval: Duration::from_secs(6 * 3600),
            window: MIN_RETRY_WINDOW,
        }
    }
}

impl RetrySchedule {
    /// The delay after the `failures`-th failed attempt (1-based): `initial ×
    /// 2^(failures-1)`, capped at `max_interval`, plus up to 25% random jitter
    /// (never less than the base, so the window is never cut short).
    pub fn delay(&self, failures: i64) -> Duration {
        let exponent = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_interval);
        let jitter_permille = random::bytes::<2>()
            .map(|b| u32::from(u16::from_le_bytes(b)) % 251)
            .unwrap_or(0);
        base + base.mul_f64(f64::from(jitter_permille) / 1000.0)
    }

    /// Whether a delivery of an event created at `created_ms` is given up when
    /// an attempt fails at `now_ms`.
    pub fn exhausted(&self, created_ms: i64, now_ms: i64) -> bool {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(created_ms) >= window
    }
}

/// Why the webhook settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("webhooks.extra_root_ca_file: {0}")]
    RootCa(String),
    #[error("webhook HTTP client: {0}")]
    Client(String),
}

/// Everything the delivery worker and the endpoint services need.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Development mode: `http://localhost` endpoints are allowed.
    pub dev: bool,
    pub retry: RetrySchedule,
    /// How often the worker looks for due deliveries.
    pub poll_interval: Duration,
    /// How long a claimed delivery belongs to one worker.
    pub lease: Duration,
    /// Deliveries claimed per round at most.
    pub batch: i64,
    /// How long one attempt may take ([`DEFAULT_ATTEMPT_TIMEOUT`]); see
    /// [`WebhookSettings::attempt_deadline`].
    pub attempt_timeout: Duration,
    /// Requests in flight to one endpoint from this gateway at most (see
    /// [`DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT`]).
    pub max_in_flight_per_endpoint: usize,
    /// Attempts in flight from this gateway at most.
    pub max_in_flight: usize,
    /// Test-mode endpoints: the system resolver (private networks allowed).
    pub test_client: reqwest::Client,
    /// Live-mode endpoints: the guarded resolver (public addresses only).
    pub live_client: reqwest::Client,
    /// How events and endpoints are written into deliveries: the API's
    /// views, set by the wiring ([`Payloads::NOT_GIVEN`] until then).
    pub payloads: Payloads,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("dev", &self.dev)
            .field("retry", &self.retry)
            .field("poll_interval", &self.poll_interval)
            .field("lease", &self.lease)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_in_flight_per_endpoint", &self.max_in_flight_per_endpoint)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl WebhookSettings {
    /// Builds the clients. `extra_root_ca_pem` is trusted in addition to the
    /// system's roots (e.g. a private CA, or a test CA).
    pub fn new(
        dev: bool,
        extra_root_ca_pem: Option<&[u8]>,
        retry: RetrySchedule,
        poll_interval: Duration,
        lease: Duration,
    ) -> Result<Self, SettingsError> {
        let extra = match extra_root_ca_pem {
            Some(pem) => {
                let certs =
                    reqwest::Certificate::from_pem_bundle(pem).map_err(|e| SettingsError::RootCa(e.to_string()))?;
                if certs.is_empty() {
                    return Err(SettingsError::RootCa("no certificate in the file".into()));
                }
                certs
            }
            None => Vec::new(),
        };
        let build = |guarded: bool| {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .https_only(!dev)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                // The whole attempt is timed per request (`attempt_deadline`).
                .connect_timeout(Duration::from_secs(5))
                // Enough to reuse a connection for every attempt an endpoint
                // may have in flight.
                .pool_max_idle_per_host(DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT)
                .user_agent(USER_AGENT);
            for cert in &extra {
                builder = builder.add_root_certificate(cert.clone());
            }
            if guarded {
                builder = builder.dns_resolver(Arc::new(super::ssrf::GuardedResolver));
            }
            builder.build().map_err(|e| SettingsError::Client(e.to_string()))
        };
        Ok(Self {
            dev,
            retry,
            poll_interval,
            lease,
            batch: 128,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_in_flight_per_endpoint: DEFAULT_MAX_IN_FLIGHT_PER_ENDPOINT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            test_client: build(false)?,
            live_client: build(true)?,
            payloads: Payloads::NOT_GIVEN,
        })
    }
}

impl WebhookSettings {
    /// The timeout of one attempt: the configured one, but never so long
    /// that the lease could run out before the attempt is recorded (a
    /// quarter of the lease stays for the reads and writes around it), so
    /// that no other replica sends a delivery while its attempt is in flight.
    /// Outside development mode the configuration already guarantees it.
    pub fn attempt_deadline(&self) -> Duration {
        self.attempt_timeout
            .min(self.lease.saturating_sub(self.lease / 4))
            .max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_has_jitter_and_covers_the_window() {
        let s = RetrySchedule::default();
        let d1 = s.delay(1);
        assert!(d1 >= Duration::from_secs(60) && d1 <= Duration::from_secs(75), "{d1:?}");
        let d3 = s.delay(3);
        assert!(
            d3 >= Duration::from_secs(240) && d3 <= Duration::from_secs(300),
            "{d3:?}"
        );
        let d40 = s.delay(40);
        assert!(d40 >= s.max_interval && d40 <= s.max_interval.mul_f64(1.25));
        assert!(
            (0..50)
                .map(|_| s.delay(2))
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1,
            "jittered"
        );
        // Retries continue for at least three days after the event.
        let day = 86_400_000;
        assert!(!s.exhausted(0, 3 * day - 1));
        assert!(s.exhausted(0, 3 * day));
        // Simulated failures: the last attempt is at or after the window.
        let (mut now, mut failures) = (0i64, 0i64);
        while !s.exhausted(0, now) {
            failures += 1;
            now += i64::try_from(s.delay(failures).as_millis()).unwrap();
        }
        assert!(now >= 3 * day && (10..40).contains(&failures), "{failures} attempts");
    }

    #[test]
    fn an_attempt_ends_before_its_lease() {
        let mut s = WebhookSettings::new(
            true,
            None,
            RetrySchedule::default(),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(s.attempt_timeout, DEFAULT_ATTEMPT_TIMEOUT);
        assert_eq!(s.attempt_deadline(), DEFAULT_ATTEMPT_TIMEOUT);
        s.lease = Duration::from_secs(4);
        assert_eq!(s.attempt_deadline(), Duration::from_secs(3));
        s.attempt_timeout = Duration::from_secs(2);
        assert_eq!(s.attempt_deadline(), Duration::from_secs(2));
    }
}
