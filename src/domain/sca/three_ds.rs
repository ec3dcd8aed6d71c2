//! EMV 3-D Secure 2 results as types: the message version, `transStatus`,
//! the ECI read per card network, the authentication value (the cryptogram),
//! the Directory Server transaction id, and what each result means for the
//! payment ([`ThreeDsResult::outcome`]) and for fraud liability
//! ([`ThreeDsResult::liability_shift`]).
//!
//! Invariants: every field exists only if it parsed in the form the EMV
//! specification gives it. The authentication value is a secret: its `Debug`
//! prints nothing of it, it has no `Serialize`, and the one way to read it,
//! [`AuthenticationValue::expose_for_authorization`], is named for the only
//! place it may go. What a payment or a log may show is
//! [`ThreeDsResult::authentication_value_present`].

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::card::CardBrand;

/// Why a 3-D Secure field was refused; never quotes the input (a
/// cryptogram must not reach a log through an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidThreeDs {
    #[error("messageVersion must be 2.1.0, 2.2.0, 2.3.0 or 2.3.1 (3-D Secure 1 is retired)")]
    MessageVersion,
    #[error("transStatus must be one of the letters Y, N, U, A, C, D, R, I")]
    TransStatus,
    #[error("eci must be two digits with a meaning for the card network")]
    Eci,
    #[error("authenticationValue must be 20 bytes in base64 (28 characters)")]
    AuthenticationValue,
    #[error("dsTransID must be a UUID (8-4-4-4-12 hexadecimal digits)")]
    DsTransId,
}

/// The protocol version of the exchange (`messageVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageVersion {
    V2_1_0,
    V2_2_0,
    V2_3_0,
    V2_3_1,
}

impl MessageVersion {
    pub const ALL: [MessageVersion; 4] = [Self::V2_1_0, Self::V2_2_0, Self::V2_3_0, Self::V2_3_1];

    /// Parses `2.1.0`, `2.2.0`, `2.3.0` or `2.3.1`. `1.0.2` (3-D Secure 1) is
    /// refused: it is retired and carries no EMV 3DS2 result.
    pub fn parse(text: &str) -> Result<Self, InvalidThreeDs> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or(InvalidThreeDs::MessageVersion)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2_1_0 => "2.1.0",
            Self::V2_2_0 => "2.2.0",
            Self::V2_3_0 => "2.3.0",
            Self::V2_3_1 => "2.3.1",
        }
    }

    /// Whether this version knows decoupled authentication (`D`) and the
    /// informational status (`I`): 2.2.0 and later.
    pub fn has_decoupled_and_informational(self) -> bool {
        self >= Self::V2_2_0
    }
}

/// The outcome of authentication (`transStatus`), from the last of the
/// ARes (frictionless) or the RReq (after a challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransStatus {
    /// `Y`: authenticated (frictionless or after a challenge).
    Authenticated,
    /// `N`: not authenticated; the transaction is denied.
    NotAuthenticated,
    /// `U`: authentication could not be performed (technical or other).
    Unavailable,
    /// `A`: attempts processing: not authenticated, but proof of the
    /// attempt (an attempts cryptogram) is given.
    Attempted,
    /// `C`: a challenge is required (ARes only).
    ChallengeRequired,
    /// `D`: a decoupled challenge is required (2.2 and later).
    DecoupledChallengeRequired,
    /// `R`: rejected: the issuer asks that authorization not be attempted.
    Rejected,
    /// `I`: informational only: the requestor's challenge preference was
    /// acknowledged (2.2 and later; no liability shift).
    Informational,
}

impl TransStatus {
    pub const ALL: [TransStatus; 8] = [
        Self::Authenticated,
        Self::NotAuthenticated,
        Self::Unavailable,
        Self::Attempted,
        Self::ChallengeRequired,
        Self::DecoupledChallengeRequired,
        Self::Rejected,
        Self::Informational,
    ];

    /// Parses the EMV letter: exactly one of `Y N U A C D R I`, upper case.
    pub fn parse(letter: &str) -> Result<Self, InvalidThreeDs> {
        Self::ALL
            .into_iter()
            .find(|s| s.letter() == letter)
            .ok_or(InvalidThreeDs::TransStatus)
    }

    /// Whether authentication is over: every status but the two that ask
    /// for a challenge (`C`, `D`).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::ChallengeRequired | Self::DecoupledChallengeRequired)
    }

    /// The EMV letter, as it is stored and shown.
    pub fn letter(self) -> &'static str {
        match self {
            Self::Authenticated => "Y",
            Self::NotAuthenticated => "N",
            Self::Unavailable => "U",
            Self::Attempted => "A",
            Self::ChallengeRequired => "C",
            Self::DecoupledChallengeRequired => "D",
            Self::Rejected => "R",
            Self::Informational => "I",
        }
    }
}

/// What an ECI says, once read with the card's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EciMeaning {
    /// Visa-like 05, Mastercard 02.
    Authenticated,
    /// Visa-like 06, Mastercard 01: attempted, with an attempts cryptogram.
    Attempted,
    /// Visa-like 07, Mastercard 00: plain e-commerce, not authenticated.
    NotAuthenticated,
    /// Mastercard 06: an exemption or a network token without 3-D Secure.
    Exempted,
    /// Mastercard 07: an authenticated merchant-initiated transaction.
    AuthenticatedMerchantInitiated,
}

/// An Electronic Commerce Indicator, read for one card network.
///
/// Visa, Amex, Discover/Diners, JCB and UnionPay use `05` authenticated, `06`
/// attempted, `07` not authenticated; Mastercard and Maestro use `02`
/// authenticated, `01` attempted, `00` not authenticated, `06` exemption and
/// `07` authenticated merchant-initiated (Cybersource "Payer Authentication
/// Values"). A code the network does not define is refused, so a Visa `02`
/// can never pass for an authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eci {
    code: u8,
    meaning: EciMeaning,
}

/// The ECI family a network belongs to.
fn is_mastercard_family(brand: CardBrand) -> bool {
    matches!(brand, CardBrand::Mastercard | CardBrand::Maestro)
}

impl Eci {
    /// Reads a two-digit ECI (`"05"`) for a card of `brand`.
    pub fn parse(brand: CardBrand, code: &str) -> Result<Self, InvalidThreeDs> {
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidThreeDs::Eci);
        }
        let code: u8 = code.parse().map_err(|_| InvalidThreeDs::Eci)?;
        let meaning = if is_mastercard_family(brand) {
            match code {
                2 => EciMeaning::Authenticated,
                1 => EciMeaning::Attempted,
                0 => EciMeaning::NotAuthenticated,
                6 => EciMeaning::Exempted,
                7 => EciMeaning::AuthenticatedMerchantInitiated,
                _ => return Err(InvalidThreeDs::Eci),
            }
        } else {
            match code {
                5 => EciMeaning::Authenticated,
                6 => EciMeaning::Attempted,
                7 => EciMeaning::NotAuthenticated,
                _ => return Err(InvalidThreeDs::Eci),
            }
        };
        Ok(Self { code, meaning })
    }

    /// The ECI `brand` uses for `meaning`, if that network has one (only
    /// Mastercard and Maestro mark exemptions and authenticated MITs).
    pub fn for_meaning(brand: CardBrand, meaning: EciMeaning) -> Option<Self> {
        let code = if is_mastercard_family(brand) {
            match meaning {
                EciMeaning::Authenticated => 2,
                EciMeaning::Attempted => 1,
                EciMeaning::NotAuthenticated => 0,
                EciMeaning::Exempted => 6,
                EciMeaning::AuthenticatedMerchantInitiated => 7,
            }
        } else {
            match meaning {
                EciMeaning::Authenticated => 5,
                EciMeaning::Attempted => 6,
                EciMeaning::NotAuthenticated => 7,
                EciMeaning::Exempted | EciMeaning::AuthenticatedMerchantInitiated => return None,
            }
        };
        Some(Self { code, meaning })
    }

    /// The two digits, as sent in an authorization (`"05"`).
    pub fn code(self) -> String {
        format!("{:02}", self.code)
    }

    pub fn meaning(self) -> EciMeaning {
        self.meaning
    }
}

/// The authentication value (`authenticationValue`: Visa CAVV, Mastercard
/// AAV, Amex AEVV): 20 bytes, 28 characters of base64. It proves the
/// authentication to the issuer, so it is handled like a card number.
pub struct AuthenticationValue(SecretString);

impl AuthenticationValue {
    /// Accepts exactly 28 characters of standard base64 decoding to 20 bytes.
    pub fn parse(text: &str) -> Result<Self, InvalidThreeDs> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| InvalidThreeDs::AuthenticationValue)?;
        if text.len() != 28 || decoded.len() != 20 {
            return Err(InvalidThreeDs::AuthenticationValue);
        }
        Ok(Self(SecretString::from(text.to_owned())))
    }

    /// The cryptogram, for the authorization request to the processor and
    /// nowhere else (never a response, a log, an event or a column in clear).
    pub fn expose_for_authorization(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AuthenticationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthenticationValue(..)")
    }
}

/// The Directory Server's transaction id (`dsTransID`), which must go into
/// the authorization: a UUID, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DsTransId(String);

impl DsTransId {
    /// Accepts a UUID in its 8-4-4-4-12 hexadecimal form, either case.
    pub fn parse(text: &str) -> Result<Self, InvalidThreeDs> {
        let groups: Vec<&str> = text.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        let hex = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
        if lengths == [8, 4, 4, 4, 12] && hex {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(InvalidThreeDs::DsTransId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the merchant wants done when authentication could not be performed
/// (`U`): a setting of the merchant, never of the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnUnavailable {
    /// Fail the payment (`authentication_failed`): the safe default, since
    /// the merchant keeps the fraud liability of an unauthenticated payment.
    #[default]
    Fail,
    /// Authorize without authentication and without liability shift.
    Authorize,
}

/// What a 3-D Secure result means for the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthenticationOutcome {
    /// `Y`: authorize as authenticated.
    Authenticated,
    /// `A`: authorize with the attempts result (its cryptogram and ECI).
    AuthorizeAttempted,
    /// `U` under [`OnUnavailable::Authorize`], or `I`: authorize, without
    /// liability shift.
    AuthorizeUnauthenticated,
    /// `C` or `D`: run the challenge; the final status comes after it.
    Challenge { decoupled: bool },
    /// `N`, `R`, or `U` under [`OnUnavailable::Fail`]: stop before
    /// authorization; the processor is never called.
    Fail,
}

impl AuthenticationOutcome {
    /// The payment's failure code when authentication stops it.
    pub const FAILURE_CODE: &'static str = "authentication_failed";
}

/// One 3-D Secure result as a payment stores it.
#[derive(Debug)]
pub struct ThreeDsResult {
    pub version: MessageVersion,
    pub status: TransStatus,
    pub eci: Option<Eci>,
    pub authentication_value: Option<AuthenticationValue>,
    pub ds_trans_id: Option<DsTransId>,
}

impl ThreeDsResult {
    /// Whether a cryptogram came with the result; all that may be shown of it.
    pub fn authentication_value_present(&self) -> bool {
        self.authentication_value.is_some()
    }

    /// What the payment does next, given the merchant's policy for `U`.
    pub fn outcome(&self, on_unavailable: OnUnavailable) -> AuthenticationOutcome {
        match self.status {
            TransStatus::Authenticated => AuthenticationOutcome::Authenticated,
            TransStatus::Attempted => AuthenticationOutcome::AuthorizeAttempted,
            TransStatus::Informational => AuthenticationOutcome::AuthorizeUnauthenticated,
            TransStatus::Unavailable => match on_unavailable {
                OnUnavailable::Fail => AuthenticationOutcome::Fail,
                OnUnavailable::Authorize => AuthenticationOutcome::AuthorizeUnauthenticated,
            },
            TransStatus::ChallengeRequired => AuthenticationOutcome::Challenge { decoupled: false },
            TransStatus::DecoupledChallengeRequired => AuthenticationOutcome::Challenge { decoupled: true },
            TransStatus::NotAuthenticated | TransStatus::Rejected => AuthenticationOutcome::Fail,
        }
    }

    /// Whether fraud liability moves to the issuer. It does only when all
    /// three agree: the status is `Y` or `A`, the ECI says the same
    /// (authenticated, or an authenticated MIT, for `Y`; attempted for `A`),
    /// and the cryptogram that proves it is present. An exemption ECI, `I`,
    /// `U`, a challenge still pending and every failure shift nothing: under
    /// scheme rules an exempted payment's liability stays with the party
    /// whose exemption was applied.
    pub fn liability_shift(&self) -> bool {
        let eci_agrees = matches!(
            (self.status, self.eci.map(Eci::meaning)),
            (
                TransStatus::Authenticated,
                Some(EciMeaning::Authenticated | EciMeaning::AuthenticatedMerchantInitiated)
            ) | (TransStatus::Attempted, Some(EciMeaning::Attempted))
        );
        eci_agrees && self.authentication_value_present()
    }
}
