//! Enrolment, step-up and rotation of operators' secrets against the
//! in-memory double of the storage ports.

use super::step_up::{Attempt, FAILED, LOCKED_OUT, STEPPED_UP};
use super::*;
use crate::domain::operator::TotpCode;
use crate::store::memory::MemoryStore;
use crate::store::ports::AuditStore;
use crate::vault::{Kek, StaticKeyring};

fn cli() -> Actor {
    Actor::Operator {
        command: "operator test".into(),
    }
}

fn kek(byte: u8) -> Kek {
    Kek::new(secrecy::SecretBox::new(Box::new([byte; 32])))
}

/// KEK 1 current, KEK 2 held to rotate to.
fn keyring() -> StaticKeyring {
    StaticKeyring::new(
        KekVersion::new(1),
        [(KekVersion::new(1), kek(1)), (KekVersion::new(2), kek(2))],
    )
    .unwrap()
}

fn name(n: &str) -> OperatorName {
    OperatorName::parse(n).unwrap()
}

/// The code an authenticator app shows at `at` for the base32 `secret`.
fn code_at(secret: &TotpSecret, at: Timestamp) -> TotpCode {
    let step = u64::try_from(TotpSecret::step_of(at)).unwrap();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret.base32().to_string())
            .to_bytes()
            .unwrap(),
        None,
        String::new(),
    )
    .unwrap();
    TotpCode::parse(&totp.generate(step * 30)).unwrap()
}

/// A code that is none of the three accepted at `at`.
fn wrong_code(secret: &TotpSecret, at: Timestamp) -> TotpCode {
    (0..1_000_000u32)
        .map(|n| TotpCode::parse(&format!("{n:06}")).unwrap())
        .find(|c| secret.matching_step(c, at).is_none())
        .unwrap()
}

async fn actions(store: &MemoryStore) -> Vec<(String, Option<String>)> {
    store
        .audit_page(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.event.action, r.event.reason))
        .collect()
}

async fn try_step_up(
    store: &MemoryStore,
    keyring: &StaticKeyring,
    operator: Option<&OperatorName>,
    code: Option<&TotpCode>,
    now: Timestamp,
) -> Result<StepUp, StepUpError> {
    let attempt = Attempt {
        action: "key unfreeze",
        operator,
        code,
        now,
    };
    step_up(store, keyring, &StepUpPolicy::default(), &cli(), attempt).await
}

#[tokio::test]
async fn with_no_operator_enrolled_step_up_is_waived_and_once_one_is_it_is_required() {
    let store = MemoryStore::new();
    let ring = keyring();
    let now = Timestamp::now();
    assert!(matches!(
        try_step_up(&store, &ring, None, None, now).await,
        Ok(StepUp::Waived)
    ));
    let alice = enroll(&store, &ring, &cli(), name("alice")).await.unwrap();
    assert!(matches!(
        try_step_up(&store, &ring, None, None, now).await,
        Err(StepUpError::Required)
    ));
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), None, now).await,
        Err(StepUpError::Required)
    ));
    let code = code_at(&alice.secret, now);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("mallory")), Some(&code), now).await,
        Err(StepUpError::UnknownOperator(_))
    ));
    // Every refusal is audited, as a denial.
    let audit = actions(&store).await;
    assert_eq!(audit.iter().filter(|(a, _)| a == FAILED).count(), 3, "{audit:?}");
    // The operator is enrolled with a fresh secret that never appears in the trail.
    let b32 = alice.secret.base32();
    assert!(!format!("{audit:?}").contains(b32.as_str()));
    assert!(matches!(
        enroll(&store, &ring, &cli(), name("alice")).await,
        Err(ServiceError::Conflict {
            code: "operator_exists",
            ..
        })
    ));
}

#[tokio::test]
async fn a_valid_code_passes_once_and_a_replay_or_wrong_code_is_refused_and_audited() {
    let store = MemoryStore::new();
    let ring = keyring();
    let alice = enroll(&store, &ring, &cli(), name("alice")).await.unwrap();
    let now = Timestamp::now();
    let code = code_at(&alice.secret, now);
    let Ok(StepUp::Verified(op)) = try_step_up(&store, &ring, Some(&name("alice")), Some(&code), now).await else {
        panic!("a valid code passes");
    };
    assert_eq!(op.id, alice.operator.id);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), Some(&code), now).await,
        Err(StepUpError::Replayed(_))
    ));
    let wrong = wrong_code(&alice.secret, now);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), Some(&wrong), now).await,
        Err(StepUpError::WrongCode(_))
    ));
    // The next step's code (one step of skew) still passes.
    let later = now.saturating_add(std::time::Duration::from_secs(30));
    let next = code_at(&alice.secret, later);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), Some(&next), now).await,
        Ok(StepUp::Verified(_))
    ));
    let audit = actions(&store).await;
    let of = |action: &str| audit.iter().filter(|(a, _)| a == action).count();
    assert_eq!((of(STEPPED_UP), of(FAILED)), (2, 2), "{audit:?}");
    let text = format!("{audit:?}");
    for secret in [
        code.expose(),
        wrong.expose(),
        next.expose(),
        alice.secret.base32().as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_operator_out_even_for_a_valid_code() {
    let store = MemoryStore::new();
    let ring = keyring();
    let alice = enroll(&store, &ring, &cli(), name("alice")).await.unwrap();
    let bob = enroll(&store, &ring, &cli(), name("bob")).await.unwrap();
    let now = Timestamp::now();
    let wrong = wrong_code(&alice.secret, now);
    for n in 1..=5 {
        let result = try_step_up(&store, &ring, Some(&name("alice")), Some(&wrong), now).await;
        if n < 5 {
            assert!(matches!(result, Err(StepUpError::WrongCode(_))), "{n}: {result:?}");
        } else {
            assert!(matches!(result, Err(StepUpError::LockedOut { .. })), "{result:?}");
        }
    }
    let good = code_at(&alice.secret, now);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), Some(&good), now).await,
        Err(StepUpError::LockedOut { .. })
    ));
    assert!(actions(&store).await.iter().any(|(a, _)| a == LOCKED_OUT));
    // Another operator is not affected; the lockout ends.
    let bob_code = code_at(&bob.secret, now);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("bob")), Some(&bob_code), now).await,
        Ok(StepUp::Verified(_))
    ));
    let after = now.saturating_add(std::time::Duration::from_secs(16 * 60));
    let fresh = code_at(&alice.secret, after);
    assert!(matches!(
        try_step_up(&store, &ring, Some(&name("alice")), Some(&fresh), after).await,
        Ok(StepUp::Verified(_))
    ));
}

#[tokio::test]
async fn secrets_are_sealed_rotated_to_a_new_kek_and_still_verify_and_removal_forgets_them() {
    let store = MemoryStore::new();
    let ring = keyring();
    let alice = enroll(&store, &ring, &cli(), name("alice")).await.unwrap();
    let rows = store.list_operators("", 10).await.unwrap();
    let b32 = alice.secret.base32();
    assert!(!format!("{rows:?}").contains(b32.as_str()), "never stored in clear");
    assert_eq!(secrets_by_kek_version(&store).await.unwrap(), [(1, 1)]);
    // `vault rotate-kek`'s walk takes the operators' secrets along.
    let to = KekVersion::new(2);
    let report = crate::services::kek_rotation::rotate(&store, &ring, &cli(), to, None, |_| {})
        .await
        .unwrap();
    let walked = report.operator_secrets;
    assert_eq!((walked.rewrapped, walked.skipped, walked.remaining), (1, 0, 0));
    assert!(report.complete);
    let inventory = crate::services::kek_rotation::inventory(&store).await.unwrap();
    assert_eq!(
        inventory
            .iter()
            .map(|w| (w.version, w.operator_secrets))
            .collect::<Vec<_>>(),
        [(2, 1)]
    );
    assert_eq!(rewrap_secrets(&store, &ring, to, None).await.unwrap(), (0, 0));
    // Only KEK 2 left in the keyring: the re-wrapped secret still verifies.
    let only_new = StaticKeyring::single(KekVersion::new(2), kek(2));
    let now = Timestamp::now();
    let code = code_at(&alice.secret, now);
    assert!(matches!(
        try_step_up(&store, &only_new, Some(&name("alice")), Some(&code), now).await,
        Ok(StepUp::Verified(_))
    ));

    assert_eq!(list(&store).await.unwrap().len(), 1);
    remove(&store, &cli(), &name("alice")).await.unwrap();
    assert!(list(&store).await.unwrap().is_empty());
    assert!(matches!(
        remove(&store, &cli(), &name("alice")).await,
        Err(ServiceError::NotFound { .. })
    ));
}
