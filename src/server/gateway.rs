//! The running gateway: the services wired together behind the router,
//! their background tasks, and a shutdown that drains within a bound.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ipnet::IpNet;
use tokio::task::JoinHandle;

use crate::api::{self, AppServices, AppState};
use crate::connectors::Connectors;
use crate::domain::anomaly::{Detector, Response, Severity};
use crate::services::anomaly::{Anomalies, AnomalyPolicy, SubjectKey};
use crate::services::audit_writer::AuditWriter;
use crate::services::auth::{Authenticator, LockoutPolicy};
use crate::services::idempotency::{Idempotency, IdempotencyPolicy, RequestMacKey};
use crate::services::key_hasher::KeyHasher;
use crate::services::payments::{PaymentPolicy, Payments};
use crate::services::rate_limit::{
    ClientAddressKey, Limits, LocalBuckets, RateLimitPolicy, RateLimiter, SharedBuckets, ThrottleLog,
    THROTTLE_AUDIT_WINDOW,
};
use crate::store::ports::RateBuckets;
use crate::store::Store;
use crate::vault::Vault;
use crate::webhooks::delivery::DeliveryWorker;
use crate::webhooks::settings::WebhookSettings;

use super::secrets::Pepper;

/// The running services behind the router.
pub struct Gateway {
    pub state: AppState,
    audit_writer: AuditWriter,
    maintenance: JoinHandle<()>,
    payment_upkeep: JoinHandle<()>,
    /// Payments left `processing`, asked about at their processors.
    reconciliation: JoinHandle<()>,
    /// Keeps the store's health (readiness) current.
    watch: JoinHandle<()>,
    /// Reads the throttles other replicas' anomaly policies imposed.
    anomaly_sync: JoinHandle<()>,
    webhooks: DeliveryWorker,
}

/// What a shutdown could not finish within its drain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Audit entries still queued (or being written) when the drain ended.
    pub audit_entries: usize,
    /// The database connections were still in use when the drain ended.
    pub database_connections: bool,
}

impl Abandoned {
    pub fn nothing(&self) -> bool {
        self.audit_entries == 0 && !self.database_connections
    }
}

/// What `Gateway::start` needs besides the store.
pub struct GatewayOptions {
    pub pepper: Pepper,
    pub vault: Arc<Vault>,
    pub lockout: LockoutPolicy,
    pub idempotency: IdempotencyPolicy,
    pub payments: PaymentPolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub body_limit: usize,
    pub webhooks: WebhookSettings,
    /// The rate limits of every route class.
    pub rate_limits: RateLimitPolicy,
    /// Buckets shared by every replica (Redis), if configured; otherwise
    /// each replica limits on its own.
    pub shared_rate_limits: Option<SharedRateLimits>,
    /// The processors payments may be routed to, by name:
    /// [`Connectors::builtin`] in production; tests add doubles of
    /// third-party processors.
    pub connectors: Connectors,
    /// The anomaly detectors' thresholds and responses (`[anomaly]`).
    pub anomaly: AnomalyPolicy,
}

/// The store of shared buckets and how this gateway uses it.
pub struct SharedRateLimits {
    pub buckets: Arc<dyn RateBuckets>,
    /// Namespaces every key (`redis.key_prefix`).
    pub key_prefix: String,
    /// How long a request waits for the store before falling back to this
    /// replica's own buckets (`redis.timeout`).
    pub timeout: Duration,
}

impl Gateway {
    pub fn start(store: Store, options: GatewayOptions) -> Self {
        let (audit, audit_writer) = AuditWriter::spawn(store.clone());
        let audit_sink_for_throttles = audit.clone();
        let mac_key = RequestMacKey::derive(&options.pepper);
        let limiter: Box<dyn RateLimiter> = match options.shared_rate_limits {
            Some(shared) => Box::new(SharedBuckets::start(
                shared.buckets,
                shared.key_prefix,
                shared.timeout,
                ClientAddressKey::derive(&options.pepper),
                audit.clone(),
            )),
            None => Box::new(LocalBuckets::new()),
        };
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let mut anomaly = options.anomaly;
        if anomaly.auth_failures_follow_lockout {
            // At the lockout's threshold the lockout already refuses the
            // address on every replica (and `lockout clear` lifts it): a
            // throttle there would only outlive a cleared lockout.
            anomaly.auth_failures.min = u64::try_from(options.lockout.threshold).unwrap_or(u64::MAX).max(1);
            for severity in [Severity::Warning, Severity::Critical] {
                let key = (Detector::AuthFailureBurst, severity);
                if anomaly.responses.get(&key) == Some(&Response::Throttle) {
                    anomaly.responses.insert(key, Response::Alert);
                }
            }
        }
        let anomalies = Anomalies::new(
            store.clone(),
            anomaly,
            SubjectKey::derive(&options.pepper),
            crate::api::views::anomalies::snapshot,
            Arc::clone(&metrics),
        );
        let hasher = Arc::new(KeyHasher::new(options.pepper));
        let auth = Authenticator::new(store.clone(), hasher, options.lockout, audit.clone())
            .observed_by(Arc::new(anomalies.clone()));
        let anomaly_sync = tokio::spawn(anomalies.clone().follow_throttles());
        let idempotency = Idempotency::new(store.clone(), Arc::clone(&options.vault), mac_key, options.idempotency);
        let payments = Payments::new(
            store.clone(),
            Arc::clone(&options.vault),
            options.connectors,
            options.payments,
            crate::api::views::snapshots(),
        );
        let payment_upkeep = tokio::spawn(expire_challenges(payments.clone()));
        let reconciliation = tokio::spawn(crate::services::reconciliation::run(
            payments.clone(),
            store.clone(),
            crate::services::reconciliation::Settings::default(),
        ));
        let dev_mode = options.webhooks.dev;
        let mut webhook_settings = options.webhooks;
        webhook_settings.payloads = crate::api::views::webhook_payloads();
        let webhooks = DeliveryWorker::spawn(store.clone(), options.vault.keyring_arc(), webhook_settings);
        let state = AppState::new(AppServices {
            store,
            auth,
            audit,
            vault: options.vault,
            idempotency,
            payments,
            rate_limits: Limits::new(options.rate_limits, limiter),
            throttles: ThrottleLog::new(audit_sink_for_throttles, THROTTLE_AUDIT_WINDOW),
            trusted_proxies: options.trusted_proxies.into(),
            body_limit: options.body_limit,
            dev_mode,
            metrics,
            anomalies,
        });
        let maintenance = tokio::spawn(maintain(state.clone()));
        let watch = tokio::spawn(state.store.clone().watch());
        Gateway {
            state,
            audit_writer,
            maintenance,
            payment_upkeep,
            reconciliation,
            watch,
            anomaly_sync,
            webhooks,
        }
    }

    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    /// The operator listener's router: `/metrics` and `/readyz` only.
    pub fn operator_router(&self) -> Router {
        api::operator::router(self.state.clone())
    }

    /// Stops background work and writes every queued audit entry, within
    /// `drain`; returns what it had to abandon (e.g. entries it could not
    /// write while the database was down). Call after the listener has
    /// stopped, so no request can queue another.
    pub async fn shutdown(self, drain: Duration) -> Abandoned {
        let deadline = tokio::time::Instant::now() + drain;
        self.maintenance.abort();
        self.watch.abort();
        self.anomaly_sync.abort();
        // Throttled requests of windows still open get their summary entry.
        let _ = tokio::time::timeout_at(deadline, self.state.throttles.flush_all()).await;
        self.payment_upkeep.abort();
        self.reconciliation.abort();
        let _ = tokio::time::timeout_at(deadline, self.webhooks.shutdown()).await;
        let store = self.state.store.clone();
        drop(self.state);
        let audit_entries = self.audit_writer.shutdown(deadline).await;
        let closed = tokio::time::timeout_at(deadline, store.close()).await.is_ok();
        Abandoned {
            audit_entries,
            database_connections: !closed,
        }
    }
}

/// Periodic housekeeping: forget old authentication failures, expired CVCs,
/// expired idempotency records, fraud observations past their retention and
/// idle rate-limit buckets; write the audit
/// summaries of closed throttle windows.
async fn maintain(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.vault.purge_expired();
        state.rate_limits.forget_idle();
        state.throttles.flush().await;
        if let Err(e) = state.auth.prune().await {
            tracing::warn!(error = %e, "pruning authentication failures failed");
        }
        if let Err(e) = state.idempotency.sweep().await {
            tracing::warn!(error = %e, "deleting expired idempotency records failed");
        }
        if let Err(e) = state.payments.fraud().prune_signals().await {
            tracing::warn!(error = %e, "deleting old fraud observations failed");
        }
    }
}

/// Cancels payments whose 3-D Secure challenge went unanswered.
async fn expire_challenges(payments: Payments) {
    let mut tick = tokio::time::interval(payments.policy().sweep_interval);
    loop {
        tick.tick().await;
        match payments.expire_challenges().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(payments = n, "expired unanswered 3-D Secure challenges"),
            Err(e) => tracing::warn!(error = %e, "expiring 3-D Secure challenges failed"),
        }
    }
}
