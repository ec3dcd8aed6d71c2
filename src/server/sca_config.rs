//! `[sca]`: the operator's Strong Customer Authentication settings, parsed
//! into the payments service's [`ScaPolicy`] at start (a value that does not
//! parse stops the start, naming its key).
//!
//! ```toml
//! [sca]
//! acquirer_country = "DE"        # where the acquirer is; unset: inside the EEA
//! fraud_rate = "0.05%"           # every merchant's fraud rate; unset: no TRA
//! on_unavailable = "fail"        # 3-D Secure `U`: "fail" (default) or "authorize"
//! [sca.rates]                    # EUR per unit of each other currency
//! USD = "0.92"
//! GBP = "1.17"
//! [sca.merchant_fraud_rates]     # a merchant's own rate, by merchant id
//! mer_0123456789abcdef = "0.01%"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::country::CountryCode;
use crate::domain::money::Currency;
use crate::domain::sca::{EurRate, FraudRate, OnUnavailable, RateTable};
use crate::services::payments::ScaPolicy;

use super::StartupError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScaConfig {
    pub acquirer_country: Option<String>,
    pub fraud_rate: Option<String>,
    pub on_unavailable: Option<String>,
    pub rates: BTreeMap<String, String>,
    pub merchant_fraud_rates: BTreeMap<String, String>,
}

fn invalid(key: &str, why: impl std::fmt::Display) -> StartupError {
    StartupError::Invalid(format!("sca.{key}: {why}"))
}

/// The policy `[sca]` describes.
pub fn sca_policy(config: &ScaConfig) -> Result<ScaPolicy, StartupError> {
    let acquirer_country = config
        .acquirer_country
        .as_deref()
        .map(|c| CountryCode::parse(c).map_err(|e| invalid("acquirer_country", e)))
        .transpose()?;
    let fraud_rate = config
        .fraud_rate
        .as_deref()
        .map(|r| FraudRate::parse_percent(r).map_err(|e| invalid("fraud_rate", e)))
        .transpose()?;
    let on_unavailable = match config.on_unavailable.as_deref() {
        None | Some("fail") => OnUnavailable::Fail,
        Some("authorize") => OnUnavailable::Authorize,
        Some(_) => return Err(invalid("on_unavailable", "must be \"fail\" or \"authorize\"")),
    };
    let mut rates = RateTable::new();
    for (currency, rate) in &config.rates {
        let code = Currency::parse(currency).map_err(|e| invalid(&format!("rates.{currency}"), e))?;
        let rate = EurRate::parse(rate).map_err(|e| invalid(&format!("rates.{currency}"), e))?;
        rates = rates.with(code, rate);
    }
    let mut merchant_fraud_rates = std::collections::HashMap::new();
    for (merchant, rate) in &config.merchant_fraud_rates {
        let rate =
            FraudRate::parse_percent(rate).map_err(|e| invalid(&format!("merchant_fraud_rates.{merchant}"), e))?;
        merchant_fraud_rates.insert(merchant.clone(), rate);
    }
    Ok(ScaPolicy {
        rates,
        acquirer_country,
        fraud_rate,
        merchant_fraud_rates,
        on_unavailable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_section_parses_and_bad_values_name_their_key() {
        let config = ScaConfig {
            acquirer_country: Some("de".into()),
            fraud_rate: Some("0.05%".into()),
            on_unavailable: Some("authorize".into()),
            rates: [("USD".to_owned(), "0.92".to_owned())].into(),
            merchant_fraud_rates: [("mer_1".to_owned(), "0.01%".to_owned())].into(),
        };
        let policy = sca_policy(&config).unwrap();
        assert_eq!(policy.acquirer_country.unwrap().as_str(), "DE");
        assert_eq!(policy.fraud_rate_of("mer_1").unwrap().ppm(), 100);
        assert_eq!(policy.fraud_rate_of("mer_2").unwrap().ppm(), 500);
        assert_eq!(policy.on_unavailable, OnUnavailable::Authorize);
        assert!(policy.rates.rate(Currency::parse("usd").unwrap()).is_some());
        for (bad, key) in [
            (
                ScaConfig {
                    acquirer_country: Some("DEU".into()),
                    ..Default::default()
                },
                "sca.acquirer_country",
            ),
            (
                ScaConfig {
                    fraud_rate: Some("0.05".into()),
                    ..Default::default()
                },
                "sca.fraud_rate",
            ),
            (
                ScaConfig {
                    on_unavailable: Some("maybe".into()),
                    ..Default::default()
                },
                "sca.on_unavailable",
            ),
            (
                ScaConfig {
                    rates: [("USD".to_owned(), "-1".to_owned())].into(),
                    ..Default::default()
                },
                "sca.rates.USD",
            ),
        ] {
            let Err(StartupError::Invalid(message)) = sca_policy(&bad) else {
                panic!("{key} accepted")
            };
            assert!(message.starts_with(key), "{message}");
        }
    }
}
