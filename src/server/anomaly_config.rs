//! `[anomaly]`: the detectors' thresholds (`[anomaly.detectors.NAME]`) and
//! what is done per detector and severity (`[anomaly.policies]`), resolved
//! into `services::anomaly::AnomalyPolicy` (operators: docs/operations.md,
//! "Anomaly detection").

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::anomaly::{Detector, Response, Severity};
use crate::domain::time::parse_duration;
use crate::services::anomaly::window::Threshold;
use crate::services::anomaly::AnomalyPolicy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Off: no detector runs.
    pub enabled: bool,
    /// How long a `throttle` response refuses its subject (e.g. `15m`).
    pub throttle_for: Option<String>,
    /// How long a `step_up` response challenges its subject's payments
    /// (e.g. `1h`).
    pub step_up_for: Option<String>,
    /// How often each replica reads the other replicas' throttles (e.g. `1s`).
    pub sync_interval: Option<String>,
    /// The lowest decline rate (percent) that can be a decline-rate spike.
    pub min_decline_percent: Option<u64>,
    /// Per detector name: its thresholds.
    pub detectors: BTreeMap<String, ThresholdConfig>,
    /// Per detector name: the response per severity.
    pub policies: BTreeMap<String, PolicyConfig>,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            throttle_for: None,
            step_up_for: None,
            sync_interval: None,
            min_decline_percent: None,
            detectors: BTreeMap::new(),
            policies: BTreeMap::new(),
        }
    }
}

/// A detector's thresholds; unset ones keep their defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdConfig {
    /// The window (e.g. `60s`).
    pub window: Option<String>,
    pub min: Option<u64>,
    pub factor: Option<f64>,
    pub critical_factor: Option<f64>,
    pub history: Option<u32>,
}

/// The response to each severity (`alert`, `throttle`, `step_up`,
/// `freeze_key`, `freeze_merchant`); an unset one keeps its default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub warning: Option<String>,
    pub critical: Option<String>,
}

fn duration(field: &str, raw: &Option<String>, default: Duration) -> Result<Duration, String> {
    match raw {
        None => Ok(default),
        Some(raw) => match parse_duration(raw) {
            Ok(d) if !d.is_zero() => Ok(d),
            _ => Err(format!("anomaly.{field}: expected a duration such as 60s or 15m")),
        },
    }
}

fn detector(name: &str, section: &str) -> Result<Detector, String> {
    Detector::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Detector::ALL.iter().map(|d| d.as_str()).collect();
        format!(
            "anomaly.{section}.{name}: unknown detector (one of {})",
            names.join(", ")
        )
    })
}

impl AnomalyConfig {
    pub fn policy(&self) -> Result<AnomalyPolicy, String> {
        let mut policy = AnomalyPolicy {
            enabled: self.enabled,
            ..AnomalyPolicy::default()
        };
        policy.throttle_for = duration("throttle_for", &self.throttle_for, policy.throttle_for)?;
        policy.step_up_for = duration("step_up_for", &self.step_up_for, policy.step_up_for)?;
        policy.sync_interval = duration("sync_interval", &self.sync_interval, policy.sync_interval)?;
        if let Some(p) = self.min_decline_percent {
            if p > 100 {
                return Err("anomaly.min_decline_percent: expected 0 to 100".into());
            }
            policy.min_decline_percent = p;
        }
        for (name, t) in &self.detectors {
            let d = detector(name, "detectors")?;
            let target = match d {
                Detector::AuthFailureBurst => &mut policy.auth_failures,
                Detector::RequestRateSpike => &mut policy.request_rate,
                Detector::TokenizationBurst => &mut policy.tokenization,
                Detector::RetiredKeyUse => &mut policy.retired_key,
                Detector::DeclineRateSpike => &mut policy.declines,
                Detector::NewCountry => {
                    return Err("anomaly.detectors.new_country: has no thresholds (any new country counts)".into())
                }
            };
            *target = threshold(name, t, *target)?;
            if d == Detector::AuthFailureBurst && t.min.is_some() {
                policy.auth_failures_follow_lockout = false;
            }
        }
        for (name, p) in &self.policies {
            let d = detector(name, "policies")?;
            for (severity, raw) in [(Severity::Warning, &p.warning), (Severity::Critical, &p.critical)] {
                let Some(raw) = raw else { continue };
                let response = Response::parse(raw).ok_or_else(|| {
                    format!(
                        "anomaly.policies.{name}.{}: expected alert, throttle, step_up, freeze_key or freeze_merchant",
                        severity.as_str()
                    )
                })?;
                policy.responses.insert((d, severity), response);
            }
        }
        Ok(policy)
    }
}

fn threshold(name: &str, t: &ThresholdConfig, default: Threshold) -> Result<Threshold, String> {
    let positive = |field: &str, v: Option<f64>, default: f64| match v {
        None => Ok(default),
        Some(v) if v.is_finite() && v >= 1.0 => Ok(v),
        Some(_) => Err(format!(
            "anomaly.detectors.{name}.{field}: expected a number of at least 1"
        )),
    };
    Ok(Threshold {
        length: duration(&format!("detectors.{name}.window"), &t.window, default.length)?,
        min: match t.min {
            Some(0) => return Err(format!("anomaly.detectors.{name}.min: expected at least 1")),
            other => other.unwrap_or(default.min),
        },
        factor: positive("factor", t.factor, default.factor)?,
        critical_factor: positive("critical_factor", t.critical_factor, default.critical_factor)?,
        history: t.history.unwrap_or(default.history),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<AnomalyPolicy, String> {
        let config: AnomalyConfig = {
            use figment::providers::Format as _;
            figment::Figment::from(figment::providers::Toml::string(toml_text))
        }
        .extract()
        .map_err(|e| e.to_string())?;
        config.policy()
    }

    #[test]
    fn policies_and_thresholds_are_read_and_checked() {
        let p = parse(
            r#"
            throttle_for = "2m"
            [detectors.request_rate_spike]
            window = "1s"
            min = 20
            history = 2
            [policies.new_country]
            warning = "freeze_key"
            [policies.auth_failure_burst]
            critical = "freeze_merchant"
            "#,
        )
        .unwrap();
        assert_eq!(p.throttle_for, Duration::from_secs(120));
        assert_eq!(p.request_rate.length, Duration::from_secs(1));
        assert_eq!((p.request_rate.min, p.request_rate.history), (20, 2));
        assert_eq!(p.response(Detector::NewCountry, Severity::Warning), Response::FreezeKey);
        assert_eq!(
            p.response(Detector::AuthFailureBurst, Severity::Warning),
            Response::Throttle
        );
        assert_eq!(
            p.response(Detector::AuthFailureBurst, Severity::Critical),
            Response::FreezeMerchant
        );
        assert!(parse("[policies.nope]\nwarning = \"alert\"")
            .unwrap_err()
            .contains("unknown detector"));
        assert!(parse("[policies.new_country]\nwarning = \"challenge\"")
            .unwrap_err()
            .contains("new_country.warning"));
        let stepped = parse("step_up_for = \"30m\"\n[policies.new_country]\nwarning = \"step_up\"").unwrap();
        assert_eq!(
            stepped.response(Detector::NewCountry, Severity::Warning),
            Response::StepUp
        );
        assert_eq!(stepped.step_up_for, Duration::from_secs(1800));
        assert!(parse("step_up_for = \"0s\"").unwrap_err().contains("step_up_for"));
        assert!(parse("[detectors.auth_failure_burst]\nmin = 0")
            .unwrap_err()
            .contains("min"));
        assert!(parse("throttle_for = \"soon\"").unwrap_err().contains("throttle_for"));
    }
}
