//! Where a payment service provider is, for the scope of SCA: the European
//! Economic Area (the 27 EU member states, Iceland, Liechtenstein and
//! Norway), where PSD2 and its RTS apply, plus the United Kingdom, which kept
//! its own copy of the RTS (FCA SCA-RTS) with the same exemptions.
//!
//! Invariant: a country not known here counts as outside; an unknown
//! country (no issuer data for a card, no acquirer country configured) is
//! decided by the caller, which treats it as inside (SCA applies: the safe
//! side for the merchant's liability).

use crate::domain::country::CountryCode;

/// ISO 3166-1 alpha-2 codes of the EEA members and the United Kingdom.
pub const SCA_AREA: [&str; 31] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", // EU 27
    "IS", "LI", "NO", // EEA
    "GB", // UK SCA-RTS
];

/// Whether a provider in `country` is bound by SCA.
pub fn in_sca_area(country: CountryCode) -> bool {
    SCA_AREA.contains(&country.as_str())
}

/// Whether a provider in `country` is bound by SCA; an unknown country
/// (`None`) counts as inside.
pub fn in_sca_area_or_unknown(country: Option<CountryCode>) -> bool {
    country.is_none_or(in_sca_area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eea_and_the_uk_are_in_and_others_out() {
        let code = |c| CountryCode::parse(c).unwrap();
        for inside in ["DE", "FR", "NO", "IS", "LI", "GB", "ie"] {
            assert!(in_sca_area(code(inside)), "{inside}");
        }
        for outside in ["US", "CH", "BR", "JP", "TR"] {
            assert!(!in_sca_area(code(outside)), "{outside}");
        }
        assert!(in_sca_area_or_unknown(None));
        assert!(!in_sca_area_or_unknown(Some(code("US"))));
    }
}
