//! The `sca` column of a payment: its [`ScaRecord`] as JSON
//! (`{"decision", "exemption", "threshold", "reason", "amount_eur",
//! "three_d_secure": {…} | null, "challenge_failures"}`), written by the
//! confirm that decided it and the 3-D Secure steps after. It holds no
//! cryptogram (the record has none). A value that does not parse is
//! `StoreError::Corrupt`.

use serde::{Deserialize, Serialize};

use crate::domain::sca::record::{outcome_from_codes, tra_threshold};
use crate::domain::sca::{
    AuthenticationFlow, DsTransId, EurCents, MessageVersion, ScaRecord, ThreeDsRecord, TransStatus,
};
use crate::store::StoreError;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSca {
    decision: String,
    exemption: Option<String>,
    threshold: Option<u64>,
    reason: String,
    amount_eur: Option<u64>,
    three_d_secure: Option<StoredThreeDs>,
    challenge_failures: u8,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredThreeDs {
    version: String,
    trans_status: String,
    eci: Option<String>,
    authentication_value_present: bool,
    ds_trans_id: Option<String>,
    liability_shift: bool,
    flow: String,
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("payments.sca".into())
}

/// The column's text for `sca`.
pub(super) fn sca_column(sca: Option<&ScaRecord>) -> Result<Option<String>, StoreError> {
    let Some(sca) = sca else { return Ok(None) };
    let stored = StoredSca {
        decision: sca.decision_code().to_owned(),
        exemption: sca.exemption_code().map(str::to_owned),
        threshold: tra_threshold(sca.outcome),
        reason: sca.reason.clone(),
        amount_eur: sca.amount_eur.map(EurCents::cents),
        three_d_secure: sca.three_d_secure.as_ref().map(|t| StoredThreeDs {
            version: t.version.as_str().to_owned(),
            trans_status: t.trans_status.letter().to_owned(),
            eci: t.eci.clone(),
            authentication_value_present: t.authentication_value_present,
            ds_trans_id: t.ds_trans_id.as_ref().map(|d| d.as_str().to_owned()),
            liability_shift: t.liability_shift,
            flow: t.flow.as_str().to_owned(),
        }),
        challenge_failures: sca.challenge_failures,
    };
    serde_json::to_string(&stored).map(Some).map_err(|_| corrupt())
}

/// The [`ScaRecord`] a column's text holds.
pub(super) fn parse_sca(text: Option<&str>) -> Result<Option<ScaRecord>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let stored: StoredSca = serde_json::from_str(text).map_err(|_| corrupt())?;
    let outcome =
        outcome_from_codes(&stored.decision, stored.exemption.as_deref(), stored.threshold).ok_or_else(corrupt)?;
    let three_d_secure = match stored.three_d_secure {
        None => None,
        Some(t) => {
            let eci_ok = t
                .eci
                .as_deref()
                .is_none_or(|e| e.len() == 2 && e.bytes().all(|b| b.is_ascii_digit()));
            if !eci_ok {
                return Err(corrupt());
            }
            Some(ThreeDsRecord {
                version: MessageVersion::parse(&t.version).map_err(|_| corrupt())?,
                trans_status: TransStatus::parse(&t.trans_status).map_err(|_| corrupt())?,
                eci: t.eci,
                authentication_value_present: t.authentication_value_present,
                ds_trans_id: t
                    .ds_trans_id
                    .as_deref()
                    .map(DsTransId::parse)
                    .transpose()
                    .map_err(|_| corrupt())?,
                liability_shift: t.liability_shift,
                flow: AuthenticationFlow::parse(&t.flow).ok_or_else(corrupt)?,
            })
        }
    };
    Ok(Some(ScaRecord {
        outcome,
        reason: stored.reason,
        amount_eur: stored.amount_eur.map(EurCents::new),
        three_d_secure,
        challenge_failures: stored.challenge_failures,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sca::{Exemption, OutOfScope, ScaOutcome};

    #[test]
    fn every_outcome_round_trips_through_the_column() {
        let three_ds = ThreeDsRecord {
            version: MessageVersion::V2_2_0,
            trans_status: TransStatus::Authenticated,
            eci: Some("05".into()),
            authentication_value_present: true,
            ds_trans_id: Some(DsTransId::parse("f25084f0-5b16-4c0a-ae5d-b24808a95e4b").unwrap()),
            liability_shift: true,
            flow: AuthenticationFlow::Challenge,
        };
        for outcome in [
            ScaOutcome::Frictionless,
            ScaOutcome::Challenge,
            ScaOutcome::Exempt(Exemption::LowValue),
            ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis {
                threshold: EurCents::euros(250),
            }),
            ScaOutcome::OutOfScope(OutOfScope::MerchantInitiated),
            ScaOutcome::OutOfScope(OutOfScope::OneLegOut),
            ScaOutcome::OutOfScope(OutOfScope::OutsideEea),
        ] {
            let record = ScaRecord {
                outcome,
                reason: "why".into(),
                amount_eur: Some(EurCents::new(1234)),
                three_d_secure: Some(three_ds.clone()),
                challenge_failures: 2,
            };
            let text = sca_column(Some(&record)).unwrap().unwrap();
            assert_eq!(parse_sca(Some(&text)).unwrap(), Some(record));
        }
        assert_eq!(parse_sca(None).unwrap(), None);
        assert!(parse_sca(Some("{}")).is_err());
    }
}
