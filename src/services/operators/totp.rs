//! An operator's TOTP secret (RFC 6238 as authenticator apps use it:
//! HMAC-SHA-1, 6 digits, 30-second steps; `totp-rs` computes the codes) and
//! the check of a typed code against it.
//!
//! Invariants: the secret is 160 bits from the OS CSPRNG (RFC 4226's
//! recommendation), lives in clear only inside [`TotpSecret`] (zeroized on
//! drop, `Debug` prints nothing) and leaves it only as the base32 text and
//! otpauth:// URI shown once at enrolment, or as bytes to be sealed. A code
//! is compared in constant time with the codes of the current step and one
//! step either side, all three always computed.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::domain::operator::{OperatorName, TotpCode, CODE_DIGITS};
use crate::domain::random::{self, RandomError};
use crate::domain::time::Timestamp;

/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// The same, for step arithmetic on signed times.
const STEP_SECS_I64: i64 = 30;
/// Steps of clock skew accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a secret (160 bits).
pub const SECRET_LEN: usize = 20;
/// The issuer an authenticator app shows beside the operator's name.
pub const ISSUER: &str = "paywarden";

/// Why a stored secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("an operator's TOTP secret must be {SECRET_LEN} bytes")]
    Malformed,
}

/// An operator's TOTP secret in clear.
pub struct TotpSecret(TOTP);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// A fresh secret for `name`.
    pub fn generate(name: &OperatorName) -> Result<Self, TotpError> {
        let bytes = Zeroizing::new(random::bytes::<SECRET_LEN>()?);
        Self::from_bytes(bytes.as_slice(), name)
    }

    /// The secret `bytes` (as opened from the vault) of `name`.
    pub fn from_bytes(bytes: &[u8], name: &OperatorName) -> Result<Self, TotpError> {
        if bytes.len() != SECRET_LEN {
            return Err(TotpError::Malformed);
        }
        let digits = CODE_DIGITS;
        // A name holds no ':' and the issuer is a constant, so this cannot
        // fail for the reasons `new` checks; the length is checked above.
        TOTP::new(
            Algorithm::SHA1,
            digits,
            1,
            STEP_SECS,
            bytes.to_vec(),
            Some(ISSUER.to_owned()),
            name.as_str().to_owned(),
        )
        .map(Self)
        .map_err(|_| TotpError::Malformed)
    }

    /// The raw secret, to be sealed.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0.secret
    }

    /// The secret as authenticator apps take it typed in (base32, no padding).
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.get_secret_base32())
    }

    /// The otpauth:// URI an authenticator app scans.
    pub fn uri(&self) -> Zeroizing<String> {
        Zeroizing::new(self.0.get_url())
    }

    /// The time step of `at`.
    pub fn step_of(at: Timestamp) -> i64 {
        at.as_millis().div_euclid(1000).div_euclid(STEP_SECS_I64)
    }

    /// The step (current, or one either side) whose code `code` is, if any.
    pub fn matching_step(&self, code: &TotpCode, at: Timestamp) -> Option<i64> {
        let current = Self::step_of(at);
        let mut found = None;
        for step in current - SKEW_STEPS..=current + SKEW_STEPS {
            let Ok(time) = u64::try_from(step) else { continue };
            let expected = Zeroizing::new(self.0.generate(time.saturating_mul(STEP_SECS)));
            let same: bool = expected.as_bytes().ct_eq(code.expose().as_bytes()).into();
            if same && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> OperatorName {
        OperatorName::parse("alice").unwrap()
    }

    /// RFC 6238 appendix B, SHA-1, the 20-byte ASCII secret
    /// "12345678901234567890" (the test vectors give 8 digits; an
    /// authenticator's 6 are their last six).
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890", &name()).unwrap();
        for (secs, eight) in [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (2_000_000_000, "69279037"),
        ] {
            let code = TotpCode::parse(&eight[2..]).unwrap();
            let at = Timestamp::from_millis(secs * 1000);
            assert_eq!(secret.matching_step(&code, at), Some(secs / 30), "{secs}");
        }
    }

    #[test]
    fn one_step_of_skew_either_side_and_no_more() {
        let secret = TotpSecret::generate(&name()).unwrap();
        let now = Timestamp::from_millis(1_800_000_000_000);
        let step = TotpSecret::step_of(now);
        let code_at = |s: i64| TotpCode::parse(&secret.0.generate(u64::try_from(s).unwrap() * STEP_SECS)).unwrap();
        for s in [step - 1, step, step + 1] {
            assert_eq!(secret.matching_step(&code_at(s), now), Some(s));
        }
        for s in [step - 2, step + 2] {
            // (A code of another step may collide with a valid one one time in a million.)
            let code = code_at(s);
            let valid = [step - 1, step, step + 1]
                .iter()
                .any(|v| code_at(*v).expose() == code.expose());
            assert_eq!(secret.matching_step(&code, now).is_some(), valid, "step {s}");
        }
    }

    #[test]
    fn the_secret_is_160_bits_shown_as_base32_and_an_otpauth_uri_never_in_debug() {
        let secret = TotpSecret::generate(&name()).unwrap();
        assert_eq!(secret.expose_bytes().len(), SECRET_LEN);
        let b32 = secret.base32();
        assert_eq!(b32.len(), 32);
        let uri = secret.uri();
        assert!(uri.starts_with("otpauth://totp/paywarden:alice?"), "{}", uri.as_str());
        assert!(uri.contains(&format!("secret={}", b32.as_str())));
        assert!(uri.contains("issuer=paywarden"));
        assert_eq!(format!("{secret:?}"), "TotpSecret(***)");
        assert!(TotpSecret::from_bytes(&[1; 16], &name()).is_err());
    }
}
