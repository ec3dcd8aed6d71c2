//! An anomaly alert as merchants see it (`GET /v1/anomalies`, the
//! `data.object` of `anomaly.detected` events) and operators too
//! (`paywarden anomalies list --json`). A client address appears only as an
//! opaque subject (`ip:` and a keyed hash) and its network (IPv4 /24, IPv6
//! /48) in `evidence`: never the address itself, nor any key or secret.

use serde::Serialize;

use crate::domain::anomaly::Anomaly;
use crate::domain::api_key::Mode;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnomalyView {
    /// `anom_…`, time-ordered.
    pub id: String,
    /// Always `anomaly`.
    pub object: &'static str,
    /// `auth_failure_burst`, `request_rate_spike`, `new_country`,
    /// `retired_key_use`, `tokenization_burst` or `decline_rate_spike`.
    pub detector: &'static str,
    /// `warning` or `critical`.
    pub severity: &'static str,
    pub subject: AnomalySubjectView,
    pub window: AnomalyWindowView,
    /// What was seen in the window (requests, failures, tokenizations; a
    /// decline rate in percent; a count of countries).
    pub observed: i64,
    /// What the subject's own history predicted, in the same unit.
    pub baseline: i64,
    /// What the policy did: `alert`, `throttle`, `freeze_key` or
    /// `freeze_merchant`.
    pub response: &'static str,
    /// Unix time, seconds, until which the subject is refused (429), when
    /// the response throttles.
    pub throttled_until: Option<i64>,
    /// Unix time, seconds, until which the subject's payments must pass a
    /// 3-D Secure challenge, when the response is a step-up.
    pub step_up_until: Option<i64>,
    /// More facts: `key`, `country`, `known_countries`, `client_network`,
    /// `retired` (as the detector has them).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Map<String, serde_json::Value>,
    /// Unix time, seconds.
    pub created: i64,
    pub livemode: bool,
}

/// Who the alert is about.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnomalySubjectView {
    /// `key`, `merchant` or `client_ip`.
    pub kind: &'static str,
    /// A key id, a merchant id, or for an address `ip:` and a keyed hash.
    pub id: String,
}

/// The window the detector counted in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AnomalyWindowView {
    /// Unix time, seconds.
    pub start: i64,
    pub seconds: i64,
}

impl From<&Anomaly> for AnomalyView {
    fn from(a: &Anomaly) -> Self {
        Self {
            id: a.id.to_string(),
            object: "anomaly",
            detector: a.detector.as_str(),
            severity: a.severity.as_str(),
            subject: AnomalySubjectView {
                kind: a.subject_kind.as_str(),
                id: a.subject.clone(),
            },
            window: AnomalyWindowView {
                start: a.window_start.as_secs(),
                seconds: a.window_secs,
            },
            observed: a.observed,
            baseline: a.baseline,
            response: a.response.as_str(),
            throttled_until: a.throttle_until.map(|t| t.as_secs()),
            step_up_until: a.step_up_until.map(|t| t.as_secs()),
            evidence: a.evidence.clone(),
            created: a.created_at.as_secs(),
            livemode: a.merchant.as_ref().is_some_and(|(_, mode)| *mode == Mode::Live),
        }
    }
}

/// The JSON an `anomaly.detected` event carries.
pub fn snapshot(a: &Anomaly) -> Result<String, serde_json::Error> {
    serde_json::to_string(&AnomalyView::from(a))
}
