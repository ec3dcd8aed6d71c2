//! A PayPal REST app's credentials: the client id and client secret that the
//! OAuth 2.0 client-credentials grant exchanges for an access token.
//!
//! Invariants: both are parsed (printable ASCII identifiers PayPal issues:
//! letters, digits, `-` and `_`), so no line break or control character can
//! reach the sealed encoding or a header; the secret lives in a zeroizing
//! secret type whose `Debug` prints nothing, and only its last four
//! characters are ever shown. Unlike a Stripe key, neither says its mode: the
//! connection's mode (the caller's key) decides which PayPal host it reaches.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::CredentialError;

/// Longest client id or secret accepted (PayPal's are 80 characters).
const MAX_LEN: usize = 255;
/// Shortest accepted: anything shorter is surely not PayPal's.
const MIN_LEN: usize = 16;

fn well_formed(input: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&input.len())
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A PayPal REST app's client id (not a secret on its own, but it is only
/// ever sent together with the secret, and stored sealed with it).
#[derive(Clone, PartialEq, Eq)]
pub struct PaypalClientId(String);

impl PaypalClientId {
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        if well_formed(input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(CredentialError::MalformedPaypalClientId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PaypalClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaypalClientId(***)")
    }
}

/// A PayPal REST app's client secret. `Debug` prints nothing.
pub struct PaypalClientSecret(SecretString);

impl PaypalClientSecret {
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        if well_formed(input) {
            Ok(Self(SecretString::from(input.to_owned())))
        } else {
            Err(CredentialError::MalformedPaypalClientSecret)
        }
    }

    /// The last four characters: all that is ever shown of the secret.
    pub fn last4(&self) -> String {
        let secret = self.0.expose_secret();
        secret
            .get(secret.len().saturating_sub(4)..)
            .unwrap_or_default()
            .to_owned()
    }

    /// The secret itself, for the token call and the vault only.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PaypalClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaypalClientSecret(***)")
    }
}

/// The id PayPal gave a webhook subscription (e.g. `9XL90610J3647323C`): it
/// is part of what PayPal's signature covers, so it binds a delivery to one
/// subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaypalWebhookId(String);

impl PaypalWebhookId {
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        if (8..=64).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(CredentialError::MalformedPaypalWebhookId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConnectionKind, Credentials};
    use super::*;
    use crate::domain::api_key::Mode;

    const ID: &str = "AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9R";
    const SECRET: &str = "EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6";

    #[test]
    fn paypal_credentials_round_trip_through_their_sealed_encoding_for_their_mode() {
        let credentials = Credentials::Paypal {
            client_id: PaypalClientId::parse(ID).unwrap(),
            client_secret: PaypalClientSecret::parse(SECRET).unwrap(),
            webhook_id: Some(PaypalWebhookId::parse("9XL90610J3647323C").unwrap()),
            mode: Mode::Live,
        };
        assert_eq!(credentials.kind(), ConnectionKind::Paypal);
        assert_eq!(credentials.hint(), "kjs6");
        assert!(credentials.has_webhook_secret());
        let bytes = credentials.encode();
        let Some(Credentials::Paypal {
            client_id,
            client_secret,
            webhook_id,
            mode,
        }) = Credentials::decode(ConnectionKind::Paypal, Mode::Live, &bytes)
        else {
            panic!("PayPal credentials")
        };
        assert_eq!((client_id.as_str(), client_secret.expose_secret()), (ID, SECRET));
        assert_eq!(webhook_id.unwrap().as_str(), "9XL90610J3647323C");
        assert_eq!(mode, Mode::Live);
        // Not a Stripe record; without a webhook id it decodes without one.
        assert!(Credentials::decode(ConnectionKind::Stripe, Mode::Live, &bytes).is_none());
        let plain = Credentials::Paypal {
            client_id: PaypalClientId::parse(ID).unwrap(),
            client_secret: PaypalClientSecret::parse(SECRET).unwrap(),
            webhook_id: None,
            mode: Mode::Test,
        };
        let decoded = Credentials::decode(ConnectionKind::Paypal, Mode::Test, &plain.encode()).unwrap();
        assert!(!decoded.has_webhook_secret());
        assert!(!format!("{decoded:?}").contains("qRPdaLdZz8"));
        for bad in ["9xl90610j3647323c", "9XL9-0610", ""] {
            assert!(PaypalWebhookId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_and_secrets_parse_only_when_well_formed_and_never_print() {
        let id = PaypalClientId::parse("AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9R").unwrap();
        assert_eq!(id.as_str(), "AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9R");
        let secret = PaypalClientSecret::parse("EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6").unwrap();
        assert_eq!(secret.last4(), "kjs6");
        assert_eq!(format!("{secret:?}"), "PaypalClientSecret(***)");
        assert_eq!(format!("{id:?}"), "PaypalClientId(***)");
        for bad in [
            "",
            "short",
            "EGnHDxD_qRPdaLdZz8i\nCr8N7",
            "EGnHDxD qRPdaLdZz8iCr8N7",
            "EGnHDxD:qRPdaLdZz8iCr8N7",
        ] {
            assert!(PaypalClientSecret::parse(bad).is_err(), "{bad:?}");
            assert!(PaypalClientId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PaypalClientSecret::parse(&"a".repeat(300)).is_err());
        let error = PaypalClientSecret::parse("EGnHDxD:secretsecret").unwrap_err();
        assert!(!error.to_string().contains("secretsecret"));
    }
}
