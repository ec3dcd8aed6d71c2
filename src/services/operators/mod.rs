//! Operators enrolled for step-up: enrolment (a fresh TOTP secret, sealed by
//! the vault before anything is written, shown once to the caller), listing,
//! removal, and the KEK rotation of their sealed secrets
//! ([`rewrap_secrets`], walked by `services::kek_rotation`). The check of a
//! code before a privileged operator action is [`step_up`]'s.
//!
//! Invariants: a TOTP secret is in clear only in [`TotpSecret`] (zeroized,
//! `Debug` prints nothing); the database holds it sealed (bound to the
//! operator id); no audit entry, error or log line carries it or a code.
//! Every change commits with its audit entry.

pub mod step_up;
pub mod totp;

use crate::domain::audit::Outcome;
use crate::domain::ids::OperatorId;
use crate::domain::operator::{Operator, OperatorName};
use crate::domain::time::Timestamp;
use crate::store::operators::OperatorRow;
use crate::store::ports::{Commit, OperatorStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;
use crate::vault::{self, KekProvider, KekVersion, OperatorAad, Sealed, VaultError};

use super::actor::Actor;
use super::ServiceError;

pub use step_up::{step_up, StepUp, StepUpError, StepUpPolicy};
pub use totp::TotpSecret;

/// The audit action of an enrolment.
pub const ENROLLED: &str = "operator.enrolled";
/// The audit action of a removal.
pub const REMOVED: &str = "operator.removed";

/// Operators read per page.
const PAGE: i64 = 200;

/// A new operator and its secret, to be shown once.
#[derive(Debug)]
pub struct Enrolled {
    pub operator: Operator,
    pub secret: TotpSecret,
}

fn aad(id: &str) -> OperatorAad<'_> {
    OperatorAad { operator_id: id }
}

fn operator(row: &OperatorRow) -> Operator {
    Operator {
        id: OperatorId::from_trusted(row.id.clone()),
        name: OperatorName::from_trusted(row.name.clone()),
        created_at: Timestamp::from_millis(row.created_at),
        last_used_step: row.last_used_step,
        locked_until: row.locked_until.map(Timestamp::from_millis),
    }
}

fn sealed_of(row: &OperatorRow) -> Result<Sealed, VaultError> {
    let version = u32::try_from(row.kek_version).map_err(|_| VaultError::Malformed("kek version"))?;
    Sealed::from_base64(KekVersion::new(version), &row.wrapped_dek, &row.ciphertext)
}

/// Opens an operator's secret.
pub(crate) fn open_secret<P: KekProvider + ?Sized>(keyring: &P, row: &OperatorRow) -> Result<TotpSecret, ServiceError> {
    let plain = vault::open(keyring, aad(&row.id), &sealed_of(row)?)?;
    TotpSecret::from_bytes(&plain, &OperatorName::from_trusted(row.name.clone())).map_err(|_| {
        ServiceError::Store(StoreError::Corrupt(
            "an operator's TOTP secret has the wrong length".into(),
        ))
    })
}

fn not_found() -> ServiceError {
    ServiceError::NotFound {
        resource: "operator",
        param: "name",
    }
}

/// Enrols operator `name` with a fresh TOTP secret, sealed under the
/// keyring's current KEK; the secret is returned to be shown once.
pub async fn enroll<S: OperatorStore + Commit>(
    store: &S,
    keyring: &dyn KekProvider,
    actor: &Actor,
    name: OperatorName,
) -> Result<Enrolled, ServiceError> {
    let id = OperatorId::generate()?;
    let secret = TotpSecret::generate(&name).map_err(|e| match e {
        totp::TotpError::Random(r) => ServiceError::Random(r),
        totp::TotpError::Malformed => ServiceError::invalid("name", "invalid_operator", "cannot build a TOTP secret"),
    })?;
    let sealed = vault::seal(keyring, aad(id.as_str()), secret.expose_bytes())?;
    let created_at = Timestamp::now();
    let row = OperatorRow {
        id: id.to_string(),
        name: name.to_string(),
        kek_version: i64::from(sealed.kek_version().get()),
        wrapped_dek: sealed.wrapped_dek_base64(),
        ciphertext: sealed.ciphertext_base64(),
        created_at: created_at.as_millis(),
        last_used_step: None,
        locked_until: None,
    };
    let mut work = UnitOfWork::new();
    store.insert_operator(&mut work, &row);
    let mut event = actor.event(ENROLLED, Outcome::Success);
    event.resource = Some(id.to_string());
    event.reason = Some(format!("operator {name}"));
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Duplicate => ServiceError::Conflict {
            code: "operator_exists",
            message: format!("an operator named {name} is already enrolled"),
        },
        other => other.into(),
    })?;
    Ok(Enrolled {
        operator: operator(&row),
        secret,
    })
}

/// Every enrolled operator, in name order.
pub async fn list<S: OperatorStore>(store: &S) -> Result<Vec<Operator>, ServiceError> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.list_operators(&after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.name);
        out.extend(page.iter().map(operator));
    }
    Ok(out)
}

/// How many operators are enrolled (none: step-up is not required).
pub async fn count<S: OperatorStore>(store: &S) -> Result<i64, ServiceError> {
    Ok(store.count_operators().await?)
}

/// Removes operator `name` with its secret and recorded failures.
pub async fn remove<S: OperatorStore + Commit>(
    store: &S,
    actor: &Actor,
    name: &OperatorName,
) -> Result<Operator, ServiceError> {
    let row = store.get_operator_by_name(name.as_str()).await?.ok_or_else(not_found)?;
    let mut work = UnitOfWork::new();
    store.delete_operator(&mut work, &row.id);
    let mut event = actor.event(REMOVED, Outcome::Success);
    event.resource = Some(row.id.clone());
    event.reason = Some(format!("operator {name}"));
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => not_found(),
        other => other.into(),
    })?;
    Ok(operator(&row))
}

/// KEK rotation of the operators' secrets: re-wraps every data key not
/// under `to`, each conditionally on being unchanged, until `budget`
/// records (all, if `None`) have been handled. Returns (re-wrapped,
/// skipped).
pub async fn rewrap_secrets<S: OperatorStore + Commit>(
    store: &S,
    keyring: &dyn KekProvider,
    to: KekVersion,
    budget: Option<u64>,
) -> Result<(u64, u64), ServiceError> {
    let target = i64::from(to.get());
    let page = |after: String| async move { store.operators_not_at_kek_version(target, &after, PAGE).await };
    super::kek_rotation::walk_records(
        store,
        budget,
        page,
        |row: &OperatorRow| &row.id,
        |row, work, changed| {
            let new = vault::rewrap(keyring, aad(&row.id), &sealed_of(row)?, to)?;
            store.rewrap_operator(
                work,
                &row.id,
                &row.wrapped_dek,
                target,
                &new.wrapped_dek_base64(),
                changed,
            );
            Ok(Some(1))
        },
    )
    .await
}

/// Sealed operator secrets per KEK version.
pub async fn secrets_by_kek_version<S: OperatorStore>(store: &S) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store.operator_secrets_by_kek_version().await?)
}

#[cfg(test)]
mod tests;
