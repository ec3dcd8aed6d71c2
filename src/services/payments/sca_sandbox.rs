//! The sandbox's 3-D Secure: a simulated directory server and issuer ACS
//! for payments routed to the `sandbox` processor, deterministic by test
//! card, and the issuer country of the sandbox test cards (the gateway has
//! no BIN table yet: a card not listed has an unknown issuer country, which
//! the SCA decision treats as inside the EEA).
//!
//! | Card number        | Issuer | 3-D Secure (ARes)                         |
//! |--------------------|--------|-------------------------------------------|
//! | 4000002760000016   | DE     | `Y` frictionless, authenticated           |
//! | 5555002760000004   | DE     | `Y` frictionless (Mastercard, ECI 02)     |
//! | 4000002760000107   | DE     | `A` attempts                              |
//! | 4000002760000206   | DE     | `N` not authenticated                     |
//! | 4000002760000305   | DE     | `U` unavailable                           |
//! | 4000002760000404   | DE     | `R` rejected                              |
//! | 4000002760000503   | DE     | `D` decoupled challenge (challenge page)  |
//! | 4000002760003184   | DE     | `C` challenge                             |
//! | 4000008400000001   | US     | `Y`                                       |
//! | 4242424242424242   | US     | `Y`                                       |
//! | any other          | ?      | `Y`                                       |
//!
//! Results carry what a real ACS gives: message version 2.2.0, a DS
//! transaction id (a random UUID), the card network's ECI and, for `Y` and
//! `A`, a random 20-byte cryptogram that goes to the authorization only.
//! The challenge's one-time code is derived from the challenge secret
//! (SHA-256), so nothing more is stored; the page shows it in test mode.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::domain::card::CardBrand;
use crate::domain::country::CountryCode;
use crate::domain::random::{self, RandomError};
use crate::domain::sca::{AuthenticationValue, DsTransId, Eci, EciMeaning, MessageVersion, ThreeDsResult, TransStatus};

/// The sandbox's 3-D Secure test cards: number, issuer country, ARes status.
pub const THREE_DS_CARDS: [(&str, &str, TransStatus); 10] = [
    ("4000002760000016", "DE", TransStatus::Authenticated),
    ("5555002760000004", "DE", TransStatus::Authenticated),
    ("4000002760000107", "DE", TransStatus::Attempted),
    ("4000002760000206", "DE", TransStatus::NotAuthenticated),
    ("4000002760000305", "DE", TransStatus::Unavailable),
    ("4000002760000404", "DE", TransStatus::Rejected),
    ("4000002760000503", "DE", TransStatus::DecoupledChallengeRequired),
    ("4000002760003184", "DE", TransStatus::ChallengeRequired),
    ("4000008400000001", "US", TransStatus::Authenticated),
    ("4242424242424242", "US", TransStatus::Authenticated),
];

fn card(digits: &str) -> Option<&'static (&'static str, &'static str, TransStatus)> {
    THREE_DS_CARDS.iter().find(|(number, _, _)| *number == digits)
}

/// The issuer country of a sandbox test card; `None` for any other card.
pub fn issuer_country(digits: &str) -> Option<CountryCode> {
    card(digits).and_then(|(_, country, _)| CountryCode::parse(country).ok())
}

/// The status the simulated ACS answers an authentication request with.
pub fn ares_status(digits: &str) -> TransStatus {
    card(digits).map_or(TransStatus::Authenticated, |(_, _, status)| *status)
}

/// A random UUID (version 4) as a DS transaction id.
fn ds_trans_id() -> Result<DsTransId, RandomError> {
    let mut b = random::bytes::<16>()?;
    if let Some(v) = b.get_mut(6) {
        *v = (*v & 0x0f) | 0x40;
    }
    if let Some(v) = b.get_mut(8) {
        *v = (*v & 0x3f) | 0x80;
    }
    let hex = hex::encode(b);
    let text = format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    );
    DsTransId::parse(&text).map_err(|_| RandomError)
}

/// The simulated ACS's result with `status` for a card of `brand`.
pub fn result(brand: CardBrand, status: TransStatus) -> Result<ThreeDsResult, RandomError> {
    let meaning = match status {
        TransStatus::Authenticated => Some(EciMeaning::Authenticated),
        TransStatus::Attempted => Some(EciMeaning::Attempted),
        TransStatus::NotAuthenticated | TransStatus::Unavailable | TransStatus::Rejected => {
            Some(EciMeaning::NotAuthenticated)
        }
        TransStatus::ChallengeRequired | TransStatus::DecoupledChallengeRequired | TransStatus::Informational => None,
    };
    let authentication_value = match status {
        TransStatus::Authenticated | TransStatus::Attempted => {
            let bytes = random::bytes::<20>()?;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            Some(AuthenticationValue::parse(&text).map_err(|_| RandomError)?)
        }
        _ => None,
    };
    Ok(ThreeDsResult {
        version: MessageVersion::V2_2_0,
        status,
        eci: meaning.and_then(|m| Eci::for_meaning(brand, m)),
        authentication_value,
        ds_trans_id: Some(ds_trans_id()?),
    })
}

/// The challenge's one-time code: six digits from SHA-256 of the challenge
/// secret (a new challenge, a new secret, a new code).
pub fn one_time_code(challenge_secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"paywarden sandbox acs one-time code\0")
        .chain_update(challenge_secret.as_bytes())
        .finalize();
    let mut word = [0u8; 8];
    for (w, d) in word.iter_mut().zip(digest.iter()) {
        *w = *d;
    }
    format!("{:06}", u64::from_be_bytes(word) % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_card_is_a_valid_card_number() {
        for (number, _, _) in THREE_DS_CARDS {
            assert!(crate::domain::card::CardNumber::parse(number).is_ok(), "{number}");
        }
    }

    #[test]
    fn results_carry_the_network_eci_and_a_cryptogram_only_when_authenticated_or_attempted() {
        let y = result(CardBrand::Visa, TransStatus::Authenticated).unwrap();
        assert_eq!(y.eci.unwrap().code(), "05");
        assert!(y.liability_shift());
        let mc = result(CardBrand::Mastercard, TransStatus::Authenticated).unwrap();
        assert_eq!(mc.eci.unwrap().code(), "02");
        let a = result(CardBrand::Visa, TransStatus::Attempted).unwrap();
        assert_eq!(a.eci.unwrap().code(), "06");
        assert!(a.authentication_value_present());
        for status in [
            TransStatus::NotAuthenticated,
            TransStatus::Rejected,
            TransStatus::Unavailable,
        ] {
            let r = result(CardBrand::Visa, status).unwrap();
            assert!(!r.authentication_value_present());
            assert!(!r.liability_shift());
            assert_eq!(r.eci.unwrap().code(), "07");
        }
        let id = y.ds_trans_id.unwrap();
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(id.as_str().get(14..15), Some("4"));
    }

    #[test]
    fn the_one_time_code_is_six_digits_and_follows_the_secret() {
        let a = one_time_code("abc");
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(a, one_time_code("abc"));
        assert_ne!(a, one_time_code("abd"));
    }

    #[test]
    fn issuer_countries_come_from_the_table() {
        assert_eq!(issuer_country("4242424242424242").unwrap().as_str(), "US");
        assert_eq!(issuer_country("4000002760000016").unwrap().as_str(), "DE");
        assert_eq!(issuer_country("4111111111111111"), None);
        assert_eq!(ares_status("4111111111111111"), TransStatus::Authenticated);
    }
}
