//! Prometheus metrics (the `prometheus-client` crate): what is counted, with
//! which labels, and the text the operator listener serves at `/metrics`.
//!
//! Labels never carry keys, key ids, merchant ids, object ids or client
//! addresses: only route templates (`MatchedPath`, never the raw path),
//! methods, status codes and closed sets of reasons and codes, so a scrape
//! reveals nothing about who called and the series stay few.
//!
//! Cost: every series is an atomic counter or a histogram behind a
//! reader-writer lock per label set; a request looks its label set up in a
//! hash map (one small allocation for the route template) and adds to atomics.
//!
//! Two scopes. [`Metrics`] belongs to one gateway (its API edge: requests,
//! authentication failures, refusals, declines); [`process`] holds what the
//! process-wide machinery records (group commit), which every gateway's
//! registry also exposes.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The label set of a request: method, route template and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    /// The matched route template (e.g. `/v1/payments/{id}`), or
    /// `(unmatched)`: never a raw path.
    pub route: String,
    pub status: u16,
}

/// One closed-set reason (authentication failures, declines, refusals).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// A decline code (a closed set: `DeclineCode`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: String,
}

/// The detector of an anomaly alert (a closed set: `Detector`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorLabel {
    pub detector: &'static str,
}

/// A fraud decision (`allow`, `review`, `challenge`, `block`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub decision: &'static str,
}

/// An SCA decision at confirm (`frictionless`, `challenge`, `exempt`,
/// `out_of_scope`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScaLabel {
    pub sca: &'static str,
}

/// A final 3-D Secure `transStatus` letter (`Y`, `N`, `U`, `A`, `R`, `I`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransStatusLabel {
    pub trans_status: &'static str,
}

/// A route template of a refused request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

/// A webhook attempt's outcome: `delivered`, `http_4xx`, `http_5xx`,
/// `http_other` or a failure class (`timeout`, `connection_failed`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// A processor call that failed: connector name, operation, error kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub connector: &'static str,
    pub operation: &'static str,
    pub kind: &'static str,
}

/// A connector kind (`stripe`): never a connection id.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorKindLabel {
    pub connector: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// What one gateway counts at its API edge.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RequestLabels>,
    auth_failures: Family<ReasonLabel, Counter>,
    rate_limited: Family<RouteLabel, Counter>,
    declines: Family<CodeLabel, Counter>,
    anomalies: Family<DetectorLabel, Counter>,
    fraud_decisions: Family<DecisionLabel, Counter>,
    sca_decisions: Family<ScaLabel, Counter>,
    three_ds_results: Family<TransStatusLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("paywarden");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RequestLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival at the router to its answer, by method, route template and status",
            latency.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Refused authentications, by reason (missing_or_invalid_key, locked_out, merchant_frozen, key_frozen, unavailable)",
            auth_failures.clone(),
        );
        let rate_limited = Family::<RouteLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests answered 429 (rate limits and address lockouts), by route template",
            rate_limited.clone(),
        );
        let declines = Family::<CodeLabel, Counter>::default();
        registry.register(
            "payment_declines",
            "Payments answered failed with a decline code, by code",
            declines.clone(),
        );
        let anomalies = Family::<DetectorLabel, Counter>::default();
        registry.register(
            "anomalies",
            "Anomaly alerts raised by this gateway, by detector",
            anomalies.clone(),
        );
        let fraud_decisions = Family::<DecisionLabel, Counter>::default();
        registry.register(
            "fraud_decisions",
            "Payments screened by their merchant's fraud rules at confirm, by decision",
            fraud_decisions.clone(),
        );
        let sca_decisions = Family::<ScaLabel, Counter>::default();
        registry.register(
            "sca_decisions",
            "Strong Customer Authentication decisions at confirm, by outcome",
            sca_decisions.clone(),
        );
        let three_ds_results = Family::<TransStatusLabel, Counter>::default();
        registry.register(
            "three_ds_results",
            "Final 3-D Secure results (frictionless or after a challenge), by transStatus",
            three_ds_results.clone(),
        );
        process().register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            auth_failures,
            rate_limited,
            declines,
            anomalies,
            fraud_decisions,
            sca_decisions,
            three_ds_results,
        }
    }

    /// One answered request. `route` is the template, never the raw path.
    pub fn request(&self, method: &axum::http::Method, route: Option<&str>, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method_label(method),
            route: route.unwrap_or("(unmatched)").to_owned(),
            status,
        };
        if status == 429 {
            self.rate_limited
                .get_or_create(&RouteLabel {
                    route: labels.route.clone(),
                })
                .inc();
        }
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// One refused authentication.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// One payment answered `failed` with `code` (a `DeclineCode`).
    pub fn decline(&self, code: &str) {
        self.declines.get_or_create(&CodeLabel { code: code.to_owned() }).inc();
    }

    /// One anomaly alert of `detector` (a `Detector` name).
    pub fn anomaly(&self, detector: &'static str) {
        self.anomalies.get_or_create(&DetectorLabel { detector }).inc();
    }

    /// One payment screened by fraud rules, with its `decision`.
    pub fn fraud_decision(&self, decision: &'static str) {
        self.fraud_decisions.get_or_create(&DecisionLabel { decision }).inc();
    }

    /// One SCA decision at confirm (an `ScaOutcome` code).
    pub fn sca_decision(&self, sca: &'static str) {
        self.sca_decisions.get_or_create(&ScaLabel { sca }).inc();
    }

    /// One final 3-D Secure result (a `TransStatus` letter).
    pub fn three_ds_result(&self, trans_status: &'static str) {
        self.three_ds_results
            .get_or_create(&TransStatusLabel { trans_status })
            .inc();
    }

    /// The OpenMetrics text of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// What the process-wide machinery records (every gateway's registry
/// exposes the same series).
pub struct ProcessMetrics {
    commit_batch_size: Histogram,
    commit_seconds: Histogram,
    commit_failures: Counter,
    lockouts: Counter,
    webhook_attempts: Family<OutcomeLabel, Counter>,
    webhook_lag: Histogram,
    connector_errors: Family<ConnectorLabels, Counter>,
    breakers_open: Family<ConnectorKindLabel, Gauge>,
}

impl ProcessMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "commit_batch_size",
            "Write jobs per group-commit batch",
            self.commit_batch_size.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Time of one group-commit batch, BEGIN to COMMIT's answer",
            self.commit_seconds.clone(),
        );
        registry.register(
            "commit_failures",
            "Group-commit batches that failed as a whole",
            self.commit_failures.clone(),
        );
        registry.register(
            "auth_lockouts",
            "Client addresses locked out for repeated failed authentications",
            self.lockouts.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome",
            self.webhook_attempts.clone(),
        );
        registry.register(
            "webhook_lag_seconds",
            "Time from an event to each attempt to deliver it",
            self.webhook_lag.clone(),
        );
        registry.register(
            "connector_errors",
            "Processor calls that failed (not declines), by connector, operation and kind",
            self.connector_errors.clone(),
        );
        registry.register(
            "connector_breakers_open",
            "Processor connections whose circuit breaker is open or half-open, by connector kind",
            self.breakers_open.clone(),
        );
    }

    /// A connection's circuit breaker opened.
    pub fn breaker_opened(&self, connector: &'static str) {
        self.breakers_open
            .get_or_create(&ConnectorKindLabel { connector })
            .inc();
    }

    /// A connection's circuit breaker closed (or its breaker went away open).
    pub fn breaker_closed(&self, connector: &'static str) {
        self.breakers_open
            .get_or_create(&ConnectorKindLabel { connector })
            .dec();
    }

    /// A client address was locked out.
    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// One webhook attempt, `lag` after its event.
    pub fn webhook_attempt(&self, outcome: &'static str, lag: Duration) {
        self.webhook_attempts.get_or_create(&OutcomeLabel { outcome }).inc();
        self.webhook_lag.observe(lag.as_secs_f64());
    }

    /// One failed processor call.
    pub fn connector_error(&self, connector: &'static str, operation: &'static str, kind: &'static str) {
        self.connector_errors
            .get_or_create(&ConnectorLabels {
                connector,
                operation,
                kind,
            })
            .inc();
    }

    /// One batch of `jobs` write jobs that took `elapsed`, committed or not.
    pub fn commit(&self, jobs: usize, elapsed: Duration, committed: bool) {
        if committed {
            self.commit_batch_size.observe(jobs as f64);
            self.commit_seconds.observe(elapsed.as_secs_f64());
        } else {
            self.commit_failures.inc();
        }
    }
}

static PROCESS: LazyLock<ProcessMetrics> = LazyLock::new(|| ProcessMetrics {
    // 1 … 2048 jobs.
    commit_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
    // 0.1 ms … ~3 s.
    commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
    commit_failures: Counter::default(),
    lockouts: Counter::default(),
    webhook_attempts: Family::default(),
    // 0.1 s … ~3.6 days (retries back off up to the retry window).
    webhook_lag: Histogram::new(exponential_buckets(0.1, 4.0, 13)),
    connector_errors: Family::default(),
    breakers_open: Family::default(),
});

/// The process-wide metrics.
pub fn process() -> &'static ProcessMetrics {
    &PROCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_route_templates_and_counts() {
        let m = Metrics::new();
        m.request(
            &axum::http::Method::GET,
            Some("/v1/payments/{id}"),
            200,
            Duration::from_millis(3),
        );
        m.request(
            &axum::http::Method::POST,
            Some("/v1/tokens"),
            429,
            Duration::from_millis(1),
        );
        m.auth_failure("locked_out");
        m.auth_failure("locked_out");
        let text = m.render();
        assert!(
            text.contains(r#"paywarden_http_requests_total{method="GET",route="/v1/payments/{id}",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"paywarden_rate_limited_total{route="/v1/tokens"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"paywarden_auth_failures_total{reason="locked_out"} 2"#),
            "{text}"
        );
        assert!(text.contains("paywarden_commit_batch_size"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
