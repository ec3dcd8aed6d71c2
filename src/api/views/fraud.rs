//! The fraud engine as merchants see it: a tenant's rules (the active
//! version and the versions saved), a list, and the `risk` of a payment.

use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::domain::fraud_rules::Literal;
use crate::domain::payment::risk::decision_str;
use crate::domain::payment::{PaymentStatus, Risk};
use crate::services::fraud::{FraudList, RuleSetVersion, RulesOverview};

/// A merchant's fraud rules in one mode.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FraudRulesView {
    /// Always `fraud_rules`.
    pub object: &'static str,
    pub livemode: bool,
    /// The version every confirm is screened with; `null` without one.
    pub active: Option<RuleSetVersionView>,
    /// The versions saved, newest first (at most 100), without their text.
    pub versions: Vec<RuleSetVersionSummary>,
}

/// One version of a rule set, with its text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSetVersionView {
    pub version: i64,
    /// The rules as written.
    pub rules: String,
    /// SHA-256 of `rules`, lower-case hex (as the audit trail names it).
    pub sha256: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// The API key that saved it.
    pub created_by: Option<String>,
    /// The score from which the score alone holds a payment for review.
    pub review_at: i64,
    /// The score from which the score alone blocks a payment.
    pub block_at: i64,
}

/// One version of a rule set in the list of versions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSetVersionSummary {
    pub version: i64,
    pub sha256: String,
    /// Seconds since the epoch.
    pub created: i64,
    pub created_by: Option<String>,
    /// Whether this is the active version.
    pub active: bool,
}

impl FraudRulesView {
    pub fn new(mode: Mode, overview: RulesOverview) -> Self {
        let active_version = overview.active.as_ref().map(|a| a.version);
        Self {
            object: "fraud_rules",
            livemode: mode == Mode::Live,
            active: overview.active.map(RuleSetVersionView::from),
            versions: overview
                .versions
                .into_iter()
                .map(|v| RuleSetVersionSummary {
                    active: Some(v.version) == active_version,
                    version: v.version,
                    sha256: v.sha256,
                    created: v.created_at.as_secs(),
                    created_by: v.created_by,
                })
                .collect(),
        }
    }
}

impl From<RuleSetVersion> for RuleSetVersionView {
    fn from(v: RuleSetVersion) -> Self {
        Self {
            version: v.version,
            rules: v.rules,
            sha256: v.sha256,
            created: v.created_at.as_secs(),
            created_by: v.created_by,
            review_at: v.review_at,
            block_at: v.block_at,
        }
    }
}

/// A merchant's list, referred to as `@name` in rules.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FraudListView {
    /// Always `fraud_list`.
    pub object: &'static str,
    pub livemode: bool,
    pub name: String,
    /// The values, trimmed, in lower case, sorted, each once.
    pub values: Vec<String>,
    /// Seconds since the epoch.
    pub updated: i64,
}

impl FraudListView {
    pub fn new(mode: Mode, list: FraudList) -> Self {
        Self {
            object: "fraud_list",
            livemode: mode == Mode::Live,
            name: list.name,
            values: list.values,
            updated: list.updated_at.as_secs(),
        }
    }
}

/// What the merchant's fraud rules decided when the payment was confirmed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RiskView {
    /// `0` to `100`: the sum of the matching `score` rules, clamped.
    pub score: u8,
    /// `allow`, `review`, `challenge` or `block`.
    pub decision: &'static str,
    /// The rules whose conditions held, in rule order.
    pub rules: Vec<String>,
    /// Every fact the rule set read, by attribute name (`null`: unknown).
    #[schema(value_type = Object)]
    pub signals: serde_json::Map<String, serde_json::Value>,
    /// The rule set version that decided.
    pub rules_version: i64,
}

impl RiskView {
    pub fn from_risk(risk: &Risk) -> Self {
        Self {
            score: risk.score,
            decision: decision_str(risk.decision),
            rules: risk.rules.clone(),
            signals: risk
                .signals
                .iter()
                .map(|s| {
                    let value = match &s.value {
                        None => serde_json::Value::Null,
                        Some(Literal::Integer(n)) => serde_json::Value::from(*n),
                        Some(Literal::String(t)) => serde_json::Value::from(t.as_str()),
                        Some(Literal::Boolean(b)) => serde_json::Value::from(*b),
                    };
                    (s.name.clone(), value)
                })
                .collect(),
            rules_version: risk.rules_version,
        }
    }
}

/// The review marker of a payment: `open` while the rules hold it
/// authorized and uncaptured for a person to decide, `closed` once it was
/// captured or canceled; `None` for a payment not held.
pub fn review_marker(risk: Option<&Risk>, status: PaymentStatus) -> Option<&'static str> {
    match risk {
        Some(r) if r.held_for_review() => Some(if status == PaymentStatus::RequiresCapture {
            "open"
        } else {
            "closed"
        }),
        _ => None,
    }
}

/// What a candidate rule set would have decided over recent payments.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FraudDryRunView {
    /// Always `fraud_dry_run`.
    pub object: &'static str,
    pub livemode: bool,
    /// How many confirmed payments were replayed (the newest, at most 1000
    /// of the last 30 days).
    pub payments: usize,
    /// How many would get each decision.
    pub decisions: DecisionCounts,
    /// How many would get another decision than they got.
    pub changed: usize,
    /// The first 100 of them, newest first.
    pub changes: Vec<DecisionChangeView>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct DecisionCounts {
    pub allow: usize,
    pub review: usize,
    pub challenge: usize,
    pub block: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionChangeView {
    /// The payment's id.
    pub payment: String,
    /// The decision it got (`allow` if no rules screened it).
    pub from: &'static str,
    /// The decision the candidate gives it.
    pub to: &'static str,
}

impl FraudDryRunView {
    pub fn new(mode: Mode, run: crate::services::fraud::dry_run::DryRun) -> Self {
        use crate::domain::fraud_rules::Decision;
        let mut decisions = DecisionCounts::default();
        for (decision, n) in run.decisions {
            match decision {
                Decision::Allow => decisions.allow = n,
                Decision::Review => decisions.review = n,
                Decision::Challenge => decisions.challenge = n,
                Decision::Block => decisions.block = n,
            }
        }
        Self {
            object: "fraud_dry_run",
            livemode: mode == Mode::Live,
            payments: run.payments,
            decisions,
            changed: run.changed,
            changes: run
                .changes
                .into_iter()
                .map(|c| DecisionChangeView {
                    payment: c.payment.to_string(),
                    from: decision_str(c.from),
                    to: decision_str(c.to),
                })
                .collect(),
        }
    }
}
