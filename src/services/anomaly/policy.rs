//! The anomaly policy: each detector's thresholds, and what is done about a
//! finding per detector and severity (`[anomaly.policies]`).
//!
//! Defaults are conservative: every finding is an alert only, except a
//! burst of failed authentications from one address (bad keys), which also
//! throttles that address for `throttle_for`, on every replica.

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::anomaly::{Detector, Response, Severity};

use super::window::Threshold;

/// Thresholds of every detector, the responses and the throttle time.
#[derive(Debug, Clone)]
pub struct AnomalyPolicy {
    /// Off: no detector runs (no alert, no response).
    pub enabled: bool,
    pub auth_failures: Threshold,
    /// The failed-authentication burst threshold is the lockout's (unless
    /// `[anomaly.detectors.auth_failure_burst] min` is configured): the
    /// alert and its throttle come with the lockout, never before it.
    pub auth_failures_follow_lockout: bool,
    pub request_rate: Threshold,
    pub tokenization: Threshold,
    pub retired_key: Threshold,
    /// `min` is the fewest declines; `factor` applies to the decline rate.
    pub declines: Threshold,
    /// The lowest decline rate (percent) that can be a spike.
    pub min_decline_percent: u64,
    /// How long a `throttle` response refuses its subject.
    pub throttle_for: Duration,
    /// How long a `step_up` response challenges its subject's payments.
    pub step_up_for: Duration,
    /// How often each replica reads the throttles other replicas imposed.
    pub sync_interval: Duration,
    /// Non-default responses; anything not here is `alert` (but see
    /// [`AnomalyPolicy::response`]).
    pub responses: HashMap<(Detector, Severity), Response>,
}

impl Default for AnomalyPolicy {
    fn default() -> Self {
        let secs = Duration::from_secs;
        Self {
            enabled: true,
            auth_failures: Threshold {
                length: secs(60),
                min: 5,
                factor: 3.0,
                critical_factor: 4.0,
                history: 0,
            },
            request_rate: Threshold {
                length: secs(60),
                min: 600,
                factor: 5.0,
                critical_factor: 4.0,
                history: 5,
            },
            auth_failures_follow_lockout: true,
            tokenization: Threshold {
                length: secs(60),
                min: 20,
                factor: 5.0,
                critical_factor: 4.0,
                history: 0,
            },
            retired_key: Threshold {
                length: secs(3600),
                min: 1,
                factor: 1.0,
                critical_factor: 20.0,
                history: 0,
            },
            declines: Threshold {
                length: secs(300),
                min: 10,
                factor: 3.0,
                critical_factor: 2.0,
                history: 0,
            },
            min_decline_percent: 50,
            throttle_for: secs(15 * 60),
            step_up_for: secs(60 * 60),
            sync_interval: secs(1),
            responses: HashMap::from([
                ((Detector::AuthFailureBurst, Severity::Warning), Response::Throttle),
                ((Detector::AuthFailureBurst, Severity::Critical), Response::Throttle),
            ]),
        }
    }
}

impl AnomalyPolicy {
    /// What is done about a `severity` finding of `detector`.
    pub fn response(&self, detector: Detector, severity: Severity) -> Response {
        self.responses
            .get(&(detector, severity))
            .copied()
            .unwrap_or(Response::Alert)
    }

    /// The thresholds of `detector` (new-country findings have none: any new
    /// country of a key with a history is one).
    pub fn threshold(&self, detector: Detector) -> Option<&Threshold> {
        match detector {
            Detector::AuthFailureBurst => Some(&self.auth_failures),
            Detector::RequestRateSpike => Some(&self.request_rate),
            Detector::TokenizationBurst => Some(&self.tokenization),
            Detector::RetiredKeyUse => Some(&self.retired_key),
            Detector::DeclineRateSpike => Some(&self.declines),
            Detector::NewCountry => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_alert_only_except_bad_key_bursts() {
        let p = AnomalyPolicy::default();
        for d in Detector::ALL {
            for s in [Severity::Warning, Severity::Critical] {
                let expected = if d == Detector::AuthFailureBurst {
                    Response::Throttle
                } else {
                    Response::Alert
                };
                assert_eq!(p.response(d, s), expected, "{d} {s:?}");
            }
        }
    }
}
