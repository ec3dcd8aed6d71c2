//! The posture of operator step-up: with no operator enrolled, the operator
//! actions that widen access or expose data (unfreezing, keys that may
//! reveal cards, KEK rotation, audit export, clearing lockouts) need no
//! second factor, which is worth a warning; operators locked out after
//! failed codes are named.

use crate::domain::time::Timestamp;
use crate::store::ports::OperatorStore;

use super::super::{operators, ServiceError};
use super::{listed, Finding};

/// The check's identifier.
pub const CHECK: &str = "operators.step_up";

/// The step-up finding at `now`.
pub async fn finding<S: OperatorStore>(store: &S, now: Timestamp) -> Result<Finding, ServiceError> {
    let enrolled = operators::list(store).await?;
    if enrolled.is_empty() {
        return Ok(Finding::warn(
            CHECK,
            "no operator enrolled for step-up: unfreezing, keys with tokens:reveal, KEK rotation, audit export \
             and lockout clearing run without a second factor; enroll one with `paywarden operator enroll NAME`",
        ));
    }
    let locked: Vec<String> = enrolled
        .iter()
        .filter(|o| o.locked_until.is_some_and(|until| until > now))
        .map(|o| o.name.to_string())
        .collect();
    Ok(if locked.is_empty() {
        Finding::pass(
            CHECK,
            format!(
                "{} operator(s) enrolled; privileged operator actions require a TOTP step-up",
                enrolled.len()
            ),
        )
    } else {
        Finding::warn(
            CHECK,
            format!(
                "operators locked out after failed step-up codes: {}; see `operator.step_up_failed` in the audit trail",
                listed(&locked, 5)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operator::OperatorName;
    use crate::services::actor::Actor;
    use crate::store::memory::MemoryStore;
    use crate::vault::{Kek, KekVersion, StaticKeyring};

    #[tokio::test]
    async fn warns_without_an_operator_and_passes_with_one() {
        let store = MemoryStore::new();
        let now = Timestamp::now();
        let none = finding(&store, now).await.unwrap();
        assert_eq!(none.status, super::super::Status::Warn);
        assert!(
            none.detail.contains("no operator enrolled for step-up"),
            "{}",
            none.detail
        );
        let ring = StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap());
        let cli = Actor::Operator { command: "test".into() };
        operators::enroll(&store, &ring, &cli, OperatorName::parse("alice").unwrap())
            .await
            .unwrap();
        let one = finding(&store, now).await.unwrap();
        assert_eq!(one.status, super::super::Status::Pass, "{}", one.detail);
    }
}
