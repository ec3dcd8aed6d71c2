//! Decline-rate spikes per merchant (and mode): the share of confirmed
//! payments declined in a window against the merchant's own usual share.
//! Card testing shows as many declines; a spike needs at least `min`
//! declines and `min_decline_percent`, and `factor` times the usual rate.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::domain::anomaly::Severity;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

use super::super::window::{Finding, Threshold};

/// Weight of the newest closed window in the baseline rate.
const ALPHA: f64 = 0.3;
const CAPACITY: usize = 100_000;

#[derive(Clone, Copy)]
struct State {
    index: i64,
    total: u64,
    declined: u64,
    /// Usual decline rate, 0..=1.
    baseline: f64,
    raised: Option<Severity>,
}

pub struct DeclineRateSpike {
    threshold: Threshold,
    min_percent: u64,
    merchants: Mutex<HashMap<Tenant, State>>,
}

impl DeclineRateSpike {
    pub fn new(threshold: Threshold, min_percent: u64) -> Self {
        Self {
            threshold,
            min_percent,
            merchants: Mutex::default(),
        }
    }

    pub fn threshold(&self) -> &Threshold {
        &self.threshold
    }

    /// One confirmed payment of `tenant`: declined or not. Observed and
    /// baseline of a finding are percentages.
    pub fn observe(&self, tenant: &Tenant, declined: bool, now: Timestamp) -> Option<Finding> {
        let t = &self.threshold;
        let length = i64::try_from(t.length.as_millis()).unwrap_or(i64::MAX).max(1);
        let index = now.as_millis().div_euclid(length);
        let mut map = self.merchants.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= CAPACITY && !map.contains_key(tenant) {
            map.clear();
        }
        if !map.contains_key(tenant) {
            let fresh = State {
                index,
                total: 0,
                declined: 0,
                baseline: 0.0,
                raised: None,
            };
            map.insert(tenant.clone(), fresh);
        }
        let state = map.get_mut(tenant)?;
        if index > state.index {
            if state.total > 0 {
                let rate = state.declined as f64 / state.total as f64;
                state.baseline = ALPHA * rate + (1.0 - ALPHA) * state.baseline;
            }
            *state = State {
                index,
                total: 0,
                declined: 0,
                raised: None,
                ..*state
            };
        }
        state.total += 1;
        state.declined += u64::from(declined);
        if !declined || state.declined < t.min {
            return None;
        }
        let rate = state.declined as f64 / state.total as f64;
        let needed = (self.min_percent as f64 / 100.0).max(t.factor * state.baseline);
        let severity = if state.declined >= t.min.saturating_mul(t.critical_factor as u64) && rate >= needed {
            Severity::Critical
        } else if rate >= needed {
            Severity::Warning
        } else {
            return None;
        };
        match (state.raised, severity) {
            (None, _) | (Some(Severity::Warning), Severity::Critical) => {}
            _ => return None,
        }
        state.raised = Some(severity);
        Some(Finding {
            severity,
            observed: (rate * 100.0).round() as i64,
            baseline: (state.baseline * 100.0).round() as i64,
            window_start: Timestamp::from_millis(index.saturating_mul(length)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::ids::MerchantId;
    use std::time::Duration;

    #[test]
    fn many_declines_against_a_usually_clean_merchant_are_a_spike() {
        let d = DeclineRateSpike::new(
            Threshold {
                length: Duration::from_secs(300),
                min: 5,
                factor: 3.0,
                critical_factor: 2.0,
                history: 0,
            },
            50,
        );
        let tenant = Tenant::new(MerchantId::generate().unwrap(), Mode::Test);
        let now = Timestamp::from_millis(1_800_000_000_000);
        // Approvals alone are no spike.
        for _ in 0..5 {
            assert!(d.observe(&tenant, false, now).is_none());
        }
        let found: Vec<_> = (0..40).filter_map(|_| d.observe(&tenant, true, now)).collect();
        assert_eq!(found.len(), 2, "a warning, then one critical: {found:?}");
        assert_eq!(found[0].severity, Severity::Warning);
        assert_eq!(found[0].observed, 50, "5 of 10 declined");
        assert_eq!(found[1].severity, Severity::Critical);
        // Another merchant's share is its own.
        let other = Tenant::new(MerchantId::generate().unwrap(), Mode::Test);
        assert!(d.observe(&other, true, now).is_none(), "one decline is below min");
    }
}
