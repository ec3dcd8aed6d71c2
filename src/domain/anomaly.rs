//! Anomalies: what the detectors watch for (`Detector`), how bad a finding
//! is (`Severity`), what a policy does about it (`Response`), and the alert
//! itself (`Anomaly`) with its evidence. Pure types: the detectors live in
//! `services::anomaly`.

use std::fmt;

use super::api_key::Mode;
use super::ids::{AnomalyId, MerchantId};
use super::time::Timestamp;

/// What a detector watches for. Each has a baseline of its own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// Failed authentications from one client address.
    AuthFailureBurst,
    /// Requests with one key, against its own rate so far.
    RequestRateSpike,
    /// A key used from a country it was never used from.
    NewCountry,
    /// A revoked or rotated-out key presented again.
    RetiredKeyUse,
    /// Cards tokenized from one address or with one key.
    TokenizationBurst,
    /// A merchant's share of declined payments, against its own.
    DeclineRateSpike,
}

impl Detector {
    pub const ALL: [Detector; 6] = [
        Detector::AuthFailureBurst,
        Detector::RequestRateSpike,
        Detector::NewCountry,
        Detector::RetiredKeyUse,
        Detector::TokenizationBurst,
        Detector::DeclineRateSpike,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::AuthFailureBurst => "auth_failure_burst",
            Detector::RequestRateSpike => "request_rate_spike",
            Detector::NewCountry => "new_country",
            Detector::RetiredKeyUse => "retired_key_use",
            Detector::TokenizationBurst => "tokenization_burst",
            Detector::DeclineRateSpike => "decline_rate_spike",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == input)
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a finding is past its threshold: `Critical` at a multiple of it
/// (the detector's `critical_factor`), `Warning` below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// What a policy does about a finding, besides the alert every finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Response {
    /// The alert only (event, audit entry, metric).
    Alert,
    /// Refuse the subject's requests with 429 and `Retry-After` for the
    /// policy's throttle time, on every replica.
    Throttle,
    /// Freeze the key (403 `key_frozen` until an operator unfreezes it).
    FreezeKey,
    /// Freeze the key's merchant (403 `merchant_frozen`, today's freeze).
    FreezeMerchant,
    /// Step-up: for the policy's step-up time every payment of the subject
    /// (its key, its merchant, the address) must pass a 3-D Secure
    /// challenge, on every replica; its requests are not refused.
    StepUp,
}

impl Response {
    pub fn as_str(self) -> &'static str {
        match self {
            Response::Alert => "alert",
            Response::Throttle => "throttle",
            Response::FreezeKey => "freeze_key",
            Response::FreezeMerchant => "freeze_merchant",
            Response::StepUp => "step_up",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [
            Response::Alert,
            Response::Throttle,
            Response::FreezeKey,
            Response::FreezeMerchant,
            Response::StepUp,
        ]
        .into_iter()
        .find(|r| r.as_str() == input)
    }
}

/// Who an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    Key,
    Merchant,
    ClientIp,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Key => "key",
            SubjectKind::Merchant => "merchant",
            SubjectKind::ClientIp => "client_ip",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "key" => Some(SubjectKind::Key),
            "merchant" => Some(SubjectKind::Merchant),
            "client_ip" => Some(SubjectKind::ClientIp),
            _ => None,
        }
    }
}

/// One alert: a detector's finding about a subject in one window, and what
/// the policy did about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub id: AnomalyId,
    pub detector: Detector,
    pub severity: Severity,
    pub subject_kind: SubjectKind,
    /// A key id, a merchant id, or `ip:` and a keyed hash of the address
    /// (never the address).
    pub subject: String,
    /// The merchant (and mode) the subject belongs to, if any: who may see it.
    pub merchant: Option<(MerchantId, Mode)>,
    pub window_start: Timestamp,
    pub window_secs: i64,
    /// What was seen in the window (requests, failures, declines in
    /// percent, …: the detector's unit).
    pub observed: i64,
    /// What the subject's own history predicted for a window (same unit).
    pub baseline: i64,
    pub response: Response,
    /// Until when the subject is throttled, when the response throttles.
    pub throttle_until: Option<Timestamp>,
    /// Until when the subject's payments are challenged, when the response
    /// is a step-up.
    pub step_up_until: Option<Timestamp>,
    /// What else the detector found (a country, an address's network),
    /// as shown to the merchant: no secret, no full address.
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Detector::ALL {
            assert_eq!(Detector::parse(d.as_str()), Some(d));
        }
        for r in ["alert", "throttle", "freeze_key", "freeze_merchant"] {
            assert_eq!(Response::parse(r).map(Response::as_str), Some(r));
        }
        assert_eq!(Response::parse("require_step_up"), None);
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(SubjectKind::parse("ip"), None);
    }
}
