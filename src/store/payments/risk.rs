//! The `risk` column of a payment: its [`Risk`] as JSON
//! (`{"rules_version", "score", "decision", "rules", "signals": [[name, value], …]}`),
//! written by the confirm that screened it. A value that does not parse is
//! `StoreError::Corrupt`.

use serde::{Deserialize, Serialize};

use crate::domain::fraud_rules::Literal;
use crate::domain::payment::risk::{decision_str, parse_decision};
use crate::domain::payment::{Risk, RiskSignal};
use crate::store::StoreError;

/// A `LIKE` pattern matching the column of every payment held for review
/// (`decision` is the third field written; the caller checks the parse).
pub(super) const REVIEW_PATTERN: &str = "%\"decision\":\"review\"%";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRisk {
    rules_version: i64,
    score: u8,
    decision: String,
    rules: Vec<String>,
    signals: Vec<(String, Option<StoredValue>)>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredValue {
    Boolean(bool),
    Integer(i64),
    String(String),
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("payments.risk".into())
}

/// The column's text for `risk`.
pub(super) fn risk_column(risk: Option<&Risk>) -> Result<Option<String>, StoreError> {
    let Some(risk) = risk else { return Ok(None) };
    let stored = StoredRisk {
        rules_version: risk.rules_version,
        score: risk.score,
        decision: decision_str(risk.decision).to_owned(),
        rules: risk.rules.clone(),
        signals: risk
            .signals
            .iter()
            .map(|s| {
                let value = s.value.as_ref().map(|v| match v {
                    Literal::Boolean(b) => StoredValue::Boolean(*b),
                    Literal::Integer(n) => StoredValue::Integer(*n),
                    Literal::String(t) => StoredValue::String(t.clone()),
                });
                (s.name.clone(), value)
            })
            .collect(),
    };
    serde_json::to_string(&stored).map(Some).map_err(|_| corrupt())
}

/// The [`Risk`] a column's text holds.
pub(super) fn parse_risk(text: Option<&str>) -> Result<Option<Risk>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let stored: StoredRisk = serde_json::from_str(text).map_err(|_| corrupt())?;
    Ok(Some(Risk {
        rules_version: stored.rules_version,
        score: stored.score,
        decision: parse_decision(&stored.decision).ok_or_else(corrupt)?,
        rules: stored.rules,
        signals: stored
            .signals
            .into_iter()
            .map(|(name, value)| RiskSignal {
                name,
                value: value.map(|v| match v {
                    StoredValue::Boolean(b) => Literal::Boolean(b),
                    StoredValue::Integer(n) => Literal::Integer(n),
                    StoredValue::String(t) => Literal::String(t),
                }),
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fraud_rules::Decision;

    #[test]
    fn a_risk_round_trips_through_its_column() {
        let risk = Risk {
            rules_version: 2,
            score: 70,
            decision: Decision::Challenge,
            rules: vec!["a".into()],
            signals: vec![
                RiskSignal {
                    name: "amount".into(),
                    value: Some(Literal::Integer(5000)),
                },
                RiskSignal {
                    name: "card.bin".into(),
                    value: Some(Literal::String("424242".into())),
                },
                RiskSignal {
                    name: "is_livemode".into(),
                    value: Some(Literal::Boolean(false)),
                },
                RiskSignal {
                    name: "card.funding".into(),
                    value: None,
                },
            ],
        };
        let text = risk_column(Some(&risk)).unwrap().unwrap();
        assert_eq!(parse_risk(Some(&text)).unwrap(), Some(risk.clone()));
        let like = REVIEW_PATTERN.trim_matches('%');
        assert!(!text.contains(like));
        let review = Risk {
            decision: Decision::Review,
            ..risk
        };
        assert!(risk_column(Some(&review)).unwrap().unwrap().contains(like));
        assert_eq!(parse_risk(None).unwrap(), None);
        assert!(parse_risk(Some("{}")).is_err());
    }
}
