//! [`Risk`]: what the merchant's fraud rules decided about a payment when it
//! was confirmed, and why: the score, the decision, the rules that matched
//! and the signal values they read. Stored on the payment, shown in its view,
//! summarised (without signal values) in its audit entry.
//!
//! Invariant: a `Risk` holds only what the rules language reads (fixed
//! attributes, never a card number or CVC); its summary ([`Risk::summary`])
//! holds no customer data at all, only the decision, score, version and rule
//! names, so it may go into the audit trail.

use crate::domain::fraud_rules::{Decision, Explanation, Literal};

/// One signal a rule set read: the attribute's name and its value (`None`
/// when the fact was absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskSignal {
    pub name: String,
    pub value: Option<Literal>,
}

/// The fraud rules' assessment of one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// The version of the merchant's rule set that assessed it.
    pub rules_version: i64,
    /// `0..=100`.
    pub score: u8,
    pub decision: Decision,
    /// The names of the rules whose conditions held, in rule order.
    pub rules: Vec<String>,
    pub signals: Vec<RiskSignal>,
}

impl Risk {
    /// The risk an explanation of rule set `rules_version` gives.
    pub fn from_explanation(rules_version: i64, explanation: &Explanation<'_>) -> Self {
        Self {
            rules_version,
            score: explanation.assessment.score,
            decision: explanation.assessment.decision,
            rules: explanation
                .assessment
                .matched
                .iter()
                .map(|m| m.rule.as_str().to_owned())
                .collect(),
            signals: explanation
                .signals
                .iter()
                .map(|s| RiskSignal {
                    name: s.attribute.name().to_owned(),
                    value: s.value.clone(),
                })
                .collect(),
        }
    }

    /// Whether the payment is held for a manual review.
    pub fn held_for_review(&self) -> bool {
        self.decision == Decision::Review
    }

    /// What the audit trail keeps: decision, score, version and rule names
    /// (no signal values, which may be customer data).
    pub fn summary(&self) -> String {
        format!(
            "risk {} score {} rules v{} [{}]",
            decision_str(self.decision),
            self.score,
            self.rules_version,
            self.rules.join(",")
        )
    }
}

/// A decision as the API and the store write it.
pub fn decision_str(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "allow",
        Decision::Review => "review",
        Decision::Challenge => "challenge",
        Decision::Block => "block",
    }
}

/// The decision written `text`, if any.
pub fn parse_decision(text: &str) -> Option<Decision> {
    [Decision::Allow, Decision::Review, Decision::Challenge, Decision::Block]
        .into_iter()
        .find(|d| decision_str(*d) == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_and_the_summary_names_no_signal() {
        for d in [Decision::Allow, Decision::Review, Decision::Challenge, Decision::Block] {
            assert_eq!(parse_decision(decision_str(d)), Some(d));
        }
        assert_eq!(parse_decision("deny"), None);
        let risk = Risk {
            rules_version: 3,
            score: 40,
            decision: Decision::Review,
            rules: vec!["far_away".into(), "big".into()],
            signals: vec![RiskSignal {
                name: "customer.email".into(),
                value: Some(Literal::String("jenny@example.com".into())),
            }],
        };
        assert!(risk.held_for_review());
        let summary = risk.summary();
        assert_eq!(summary, "risk review score 40 rules v3 [far_away,big]");
        assert!(!summary.contains("jenny"));
    }
}
