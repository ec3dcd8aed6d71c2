//! Raising an alert: a finding becomes an [`Anomaly`], committed in one unit
//! of work with its `anomaly.detected` event (when the subject belongs to a
//! merchant), its audit entry and the freeze its policy calls for; then it
//! is counted, and a throttle applies here at once (other replicas read it
//! from the database). A second replica raising the same alert (same
//! detector, subject, window and severity) fails its unit with `Duplicate`
//! and writes nothing, but still applies the throttle: every replica refuses
//! the subject from its next request.

use std::time::Duration;

use crate::domain::anomaly::{Anomaly, Detector, Response, SubjectKind};
use crate::domain::api_key::ApiKey;
use crate::domain::audit::Outcome;
use crate::domain::event::EventType;
use crate::domain::ids::{AnomalyId, EventId};
use crate::domain::merchant::{Freeze, FreezeReason};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::key_freeze;
use crate::store::events::EventRow;
use crate::store::ports::{AnomalyStore, EventStore, MerchantStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::window::Finding;
use super::Inner;

/// The audit action of an alert.
pub const DETECTED: &str = "anomaly.detected";

/// A finding with its subject, before it is an alert.
pub(super) struct Detection {
    pub detector: Detector,
    pub finding: Finding,
    pub window: Duration,
    pub subject_kind: SubjectKind,
    pub subject: String,
    /// Who the subject belongs to (who sees the alert), if anyone.
    pub merchant: Option<Tenant>,
    /// The key a `freeze_key` response would freeze.
    pub key: Option<ApiKey>,
    /// What the merchant is shown besides the counts.
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

fn actor() -> Actor {
    Actor::System {
        task: "anomaly detection",
    }
}

impl Inner {
    /// Raises `d`: returns the response in force (a freeze or throttle that
    /// could not apply is an alert).
    pub(super) async fn raise(&self, d: Detection) -> Response {
        let now = Timestamp::now();
        let mut response = self.policy.response(d.detector, d.finding.severity);
        let merchant_frozen = match (&response, &d.merchant) {
            (Response::FreezeMerchant, Some(tenant)) => match self.store.get_merchant(tenant.merchant()).await {
                Ok(Some(m)) => m.frozen.is_some(),
                _ => true,
            },
            _ => false,
        };
        let freezable_key = d.key.as_ref().filter(|k| k.frozen.is_none());
        response = match response {
            Response::FreezeKey if freezable_key.is_none() => Response::Alert,
            Response::FreezeMerchant if d.merchant.is_none() || merchant_frozen => Response::Alert,
            other => other,
        };
        let throttle_until = (response == Response::Throttle).then(|| now.saturating_add(self.policy.throttle_for));
        let step_up_until = (response == Response::StepUp).then(|| now.saturating_add(self.policy.step_up_for));
        let id = match AnomalyId::generate_time_ordered(now) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for an anomaly id");
                return Response::Alert;
            }
        };
        let anomaly = Anomaly {
            id,
            detector: d.detector,
            severity: d.finding.severity,
            subject_kind: d.subject_kind,
            subject: d.subject,
            merchant: d.merchant.as_ref().map(|t| (t.merchant().clone(), t.mode())),
            window_start: d.finding.window_start,
            window_secs: i64::try_from(d.window.as_secs()).unwrap_or(i64::MAX),
            observed: d.finding.observed,
            baseline: d.finding.baseline,
            response,
            throttle_until,
            step_up_until,
            evidence: d.evidence,
            created_at: now,
        };
        let result = self.commit(&anomaly, d.merchant.as_ref(), freezable_key, now).await;
        if let Some(until) = throttle_until {
            // Applies whether this replica's insert won or another's did.
            self.throttles.impose(&anomaly.subject, until);
        }
        if let Some(until) = step_up_until {
            self.step_ups.impose(&anomaly.subject, until);
        }
        match result {
            Ok(()) => {
                self.metrics.anomaly(anomaly.detector.as_str());
                tracing::warn!(
                    anomaly = %anomaly.id,
                    detector = anomaly.detector.as_str(),
                    severity = anomaly.severity.as_str(),
                    subject_kind = anomaly.subject_kind.as_str(),
                    response = response.as_str(),
                    observed = anomaly.observed,
                    baseline = anomaly.baseline,
                    "anomaly detected"
                );
                if matches!(response, Response::FreezeKey | Response::FreezeMerchant) {
                    // From the next request on, on every replica.
                    self.store.auth_state_changed().await;
                }
                response
            }
            // Raised already (by another replica, or a moment ago here).
            Err(StoreError::Duplicate) => match response {
                Response::FreezeKey | Response::FreezeMerchant => Response::Alert,
                other => other,
            },
            Err(e) => {
                tracing::warn!(error = %e, detector = anomaly.detector.as_str(), "recording an anomaly failed");
                match response {
                    Response::Throttle | Response::StepUp => response,
                    _ => Response::Alert,
                }
            }
        }
    }

    async fn commit(
        &self,
        anomaly: &Anomaly,
        tenant: Option<&Tenant>,
        freeze_key: Option<&ApiKey>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut work = UnitOfWork::new();
        self.store.insert_anomaly(&mut work, anomaly);
        if let Some(tenant) = tenant {
            let data = (self.snapshot)(anomaly).map_err(|e| StoreError::Corrupt(format!("anomaly snapshot: {e}")))?;
            let event = EventRow {
                id: EventId::generate_time_ordered(now)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .to_string(),
                merchant_id: tenant.merchant_str().to_owned(),
                mode: tenant.mode_str().to_owned(),
                event_type: EventType::AnomalyDetected.as_str().to_owned(),
                object_id: anomaly.id.to_string(),
                data,
                created_at: now.as_millis(),
            };
            self.store.insert_events(&mut work, std::slice::from_ref(&event));
        }
        let mut audit = actor().event(DETECTED, Outcome::Success);
        if let Some(tenant) = tenant {
            audit.merchant_id = Some(tenant.merchant_str().to_owned());
            audit.mode = Some(tenant.mode());
        }
        if anomaly.subject_kind == SubjectKind::Key {
            audit.key_id = Some(anomaly.subject.clone());
        }
        audit.resource = Some(anomaly.id.to_string());
        audit.reason = Some(format!(
            "{} ({}) on {} {}: observed {} against a baseline of {} in a {} s window; response {}",
            anomaly.detector.as_str(),
            anomaly.severity.as_str(),
            anomaly.subject_kind.as_str(),
            anomaly.subject,
            anomaly.observed,
            anomaly.baseline,
            anomaly.window_secs,
            anomaly.response.as_str()
        ));
        work.audit(audit);
        let reason = || FreezeReason::from_trusted(format!("anomaly {}: {}", anomaly.id, anomaly.detector.as_str()));
        match anomaly.response {
            Response::FreezeKey => {
                if let Some(key) = freeze_key {
                    let freeze = Freeze {
                        at: now,
                        reason: reason(),
                    };
                    key_freeze::stage(&self.store, &mut work, &actor(), key, &freeze);
                }
            }
            Response::FreezeMerchant => {
                if let Some(tenant) = tenant {
                    let freeze = Freeze {
                        at: now,
                        reason: reason(),
                    };
                    self.store.freeze_merchant(&mut work, tenant.merchant(), &freeze);
                    let mut event = actor().event("merchant.frozen", Outcome::Success);
                    event.merchant_id = Some(tenant.merchant_str().to_owned());
                    event.resource = Some(tenant.merchant_str().to_owned());
                    event.reason = Some(freeze.reason.as_str().to_owned());
                    work.audit(event);
                }
            }
            Response::Alert | Response::Throttle | Response::StepUp => {}
        }
        self.store.commit(work).await
    }
}
