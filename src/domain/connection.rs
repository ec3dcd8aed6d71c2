//! Processor connections: a merchant's account at a processor, in one mode,
//! and the credentials that reach it.
//!
//! Invariants: a credential exists only inside a zeroizing secret type whose
//! `Debug` prints nothing, and is built only through its parser (a Stripe
//! key's prefix says its kind and mode, so a publishable key or a key of the
//! other mode never becomes a connection); outside the vault only its hint
//! (the last four characters) is ever shown. A connection's credentials never
//! change: another key is another connection.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::api_key::Mode;
use super::ids::ConnectionId;
use super::tenant::Tenant;
use super::time::Timestamp;

mod paypal;

pub use paypal::{PaypalClientId, PaypalClientSecret, PaypalWebhookId};

/// The processors a merchant can connect (the built-in sandbox needs no
/// connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    Stripe,
    Paypal,
}

impl ConnectionKind {
    pub const ALL: [ConnectionKind; 2] = [ConnectionKind::Stripe, ConnectionKind::Paypal];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Stripe => "stripe",
            ConnectionKind::Paypal => "paypal",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == input)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Takes new payments (when it is the merchant's default) and serves the
    /// payments made with it.
    Active,
    /// Takes no new payments; still serves captures, cancels and refunds of
    /// the payments made with it.
    Disabled,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Disabled => "disabled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "active" => Some(ConnectionStatus::Active),
            "disabled" => Some(ConnectionStatus::Disabled),
            _ => None,
        }
    }
}

/// Why a credential was refused. The text never contains the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("must be a Stripe secret or restricted key (sk_test_…, rk_test_…, sk_live_…, rk_live_…)")]
    Malformed,
    #[error("is a publishable key; a connection needs the account's secret or restricted key")]
    Publishable,
    #[error("is a key of the other mode: test-mode connections take sk_test_/rk_test_ keys, live ones sk_live_/rk_live_ keys")]
    WrongMode,
    #[error("must be the endpoint's signing secret (whsec_…)")]
    MalformedWebhookSecret,
    #[error("must be the PayPal REST app's client id (letters, digits, - and _)")]
    MalformedPaypalClientId,
    #[error("must be the PayPal REST app's client secret (letters, digits, - and _)")]
    MalformedPaypalClientSecret,
    #[error("must be the id PayPal gave the webhook subscription (upper-case letters and digits)")]
    MalformedPaypalWebhookId,
}

/// Longest credential accepted (Stripe's keys are about 110 characters).
const MAX_CREDENTIAL_LEN: usize = 255;
/// Shortest part after a Stripe prefix accepted.
const MIN_BODY_LEN: usize = 8;

fn well_formed_body(body: &str) -> bool {
    (MIN_BODY_LEN..=MAX_CREDENTIAL_LEN).contains(&body.len())
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A Stripe secret (`sk_`) or restricted (`rk_`) key. `Debug` prints nothing.
pub struct StripeSecretKey {
    key: SecretString,
    mode: Mode,
}

impl StripeSecretKey {
    /// Parses a key for a connection of `mode`: a publishable key or a key of
    /// the other mode is refused, each with its own reason.
    pub fn parse(input: &str, mode: Mode) -> Result<Self, CredentialError> {
        if input.starts_with("pk_") {
            return Err(CredentialError::Publishable);
        }
        let prefixes = [
            ("sk_test_", Mode::Test),
            ("rk_test_", Mode::Test),
            ("sk_live_", Mode::Live),
            ("rk_live_", Mode::Live),
        ];
        let (body, key_mode) = prefixes
            .iter()
            .find_map(|(prefix, m)| input.strip_prefix(prefix).map(|body| (body, *m)))
            .ok_or(CredentialError::Malformed)?;
        if !well_formed_body(body) {
            return Err(CredentialError::Malformed);
        }
        if key_mode != mode {
            return Err(CredentialError::WrongMode);
        }
        Ok(Self {
            key: SecretString::from(input.to_owned()),
            mode,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The last four characters: all that is ever shown of the key.
    pub fn last4(&self) -> String {
        let key = self.key.expose_secret();
        key.get(key.len().saturating_sub(4)..).unwrap_or_default().to_owned()
    }

    /// The key itself, for the processor call and the vault only.
    pub fn expose_secret(&self) -> &str {
        self.key.expose_secret()
    }
}

impl fmt::Debug for StripeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeSecretKey(***)")
    }
}

/// A Stripe webhook endpoint's signing secret (`whsec_…`). `Debug` prints
/// nothing.
pub struct StripeWebhookSecret(SecretString);

impl StripeWebhookSecret {
    pub fn parse(input: &str) -> Result<Self, CredentialError> {
        match input.strip_prefix("whsec_") {
            Some(body) if well_formed_body(body) => Ok(Self(SecretString::from(input.to_owned()))),
            _ => Err(CredentialError::MalformedWebhookSecret),
        }
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for StripeWebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeWebhookSecret(***)")
    }
}

/// What a connection authenticates with, per kind.
#[derive(Debug)]
pub enum Credentials {
    Stripe {
        secret_key: StripeSecretKey,
        webhook_secret: Option<StripeWebhookSecret>,
    },
    /// A PayPal REST app of the connection's `mode` (PayPal's credentials do
    /// not say their mode: the sandbox or live host is chosen by it).
    Paypal {
        client_id: PaypalClientId,
        client_secret: PaypalClientSecret,
        /// The webhook subscription whose deliveries this connection accepts.
        webhook_id: Option<PaypalWebhookId>,
        mode: Mode,
    },
}

/// The version line of the sealed encoding.
const ENCODING: &str = "paywarden-credentials/v1";

impl Credentials {
    pub fn kind(&self) -> ConnectionKind {
        match self {
            Credentials::Stripe { .. } => ConnectionKind::Stripe,
            Credentials::Paypal { .. } => ConnectionKind::Paypal,
        }
    }

    /// The hint shown of the credentials: the secret key's last four.
    pub fn hint(&self) -> String {
        match self {
            Credentials::Stripe { secret_key, .. } => secret_key.last4(),
            Credentials::Paypal { client_secret, .. } => client_secret.last4(),
        }
    }

    pub fn has_webhook_secret(&self) -> bool {
        match self {
            Credentials::Stripe { webhook_secret, .. } => webhook_secret.is_some(),
            Credentials::Paypal { webhook_id, .. } => webhook_id.is_some(),
        }
    }

    /// The bytes the vault seals: a version line, then one credential per
    /// line (no credential contains a line break: the parsers refuse it).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        match self {
            Credentials::Stripe {
                secret_key,
                webhook_secret,
            } => {
                out.extend_from_slice(ENCODING.as_bytes());
                out.push(b'\n');
                out.extend_from_slice(secret_key.expose_secret().as_bytes());
                out.push(b'\n');
                if let Some(secret) = webhook_secret {
                    out.extend_from_slice(secret.expose_secret().as_bytes());
                }
            }
            Credentials::Paypal {
                client_id,
                client_secret,
                webhook_id,
                ..
            } => {
                for line in [ENCODING, client_id.as_str(), client_secret.expose_secret()] {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                if let Some(id) = webhook_id {
                    out.extend_from_slice(id.as_str().as_bytes());
                }
            }
        }
        out
    }

    /// Parses what [`Credentials::encode`] made, for a connection of `kind`
    /// and `mode`; `None` if it is not that (a record sealed for another
    /// mode cannot be opened anyway: the vault binds the mode).
    pub fn decode(kind: ConnectionKind, mode: Mode, bytes: &[u8]) -> Option<Self> {
        let text = Zeroizing::new(std::str::from_utf8(bytes).ok()?.to_owned());
        let mut lines = text.split('\n');
        if lines.next()? != ENCODING {
            return None;
        }
        match kind {
            ConnectionKind::Stripe => {
                let secret_key = StripeSecretKey::parse(lines.next()?, mode).ok()?;
                let webhook_secret = match lines.next() {
                    None | Some("") => None,
                    Some(raw) => Some(StripeWebhookSecret::parse(raw).ok()?),
                };
                lines.next().is_none().then_some(Credentials::Stripe {
                    secret_key,
                    webhook_secret,
                })
            }
            ConnectionKind::Paypal => {
                let client_id = PaypalClientId::parse(lines.next()?).ok()?;
                let client_secret = PaypalClientSecret::parse(lines.next()?).ok()?;
                let webhook_id = match lines.next() {
                    None | Some("") => None,
                    Some(raw) => Some(PaypalWebhookId::parse(raw).ok()?),
                };
                lines.next().is_none().then_some(Credentials::Paypal {
                    client_id,
                    client_secret,
                    webhook_id,
                    mode,
                })
            }
        }
    }
}

/// A processor connection as merchants see it: never its credentials, only
/// their hint.
#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant: Tenant,
    pub kind: ConnectionKind,
    pub status: ConnectionStatus,
    /// The last four characters of the secret key.
    pub secret_key_last4: String,
    pub has_webhook_secret: bool,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    /// New payments of its mode go to it.
    pub is_default: bool,
    /// Where an authorization goes when this connection's processor cannot
    /// be reached.
    pub fallback: Option<ConnectionId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_51Habcdefghijkl0123456789";

    #[test]
    fn a_key_parses_only_for_its_own_mode_and_never_prints() {
        let key = StripeSecretKey::parse(KEY, Mode::Test).unwrap();
        assert_eq!(key.last4(), "6789");
        assert_eq!(format!("{key:?}"), "StripeSecretKey(***)");
        assert_eq!(
            StripeSecretKey::parse(KEY, Mode::Live).unwrap_err(),
            CredentialError::WrongMode
        );
        assert_eq!(
            StripeSecretKey::parse("rk_live_51Habcdefghijkl", Mode::Test).unwrap_err(),
            CredentialError::WrongMode
        );
        assert!(StripeSecretKey::parse("rk_live_51Habcdefghijkl", Mode::Live).is_ok());
        assert_eq!(
            StripeSecretKey::parse("pk_test_51Habcdefghijkl", Mode::Test).unwrap_err(),
            CredentialError::Publishable
        );
        for bad in [
            "",
            "sk_test_",
            "sk_test_short",
            "whsec_abcdefghijkl",
            "sk_test_abc\ndefghijkl",
            "sk_test_abc defghijkl",
        ] {
            assert_eq!(
                StripeSecretKey::parse(bad, Mode::Test).unwrap_err(),
                CredentialError::Malformed,
                "{bad:?}"
            );
        }
        let long = format!("sk_test_{}", "a".repeat(300));
        assert!(StripeSecretKey::parse(&long, Mode::Test).is_err());
    }

    #[test]
    fn the_error_text_never_contains_the_key() {
        let key = "sk_live_51Hsecretsecretsecret";
        let error = StripeSecretKey::parse(key, Mode::Test).unwrap_err();
        assert!(!error.to_string().contains("51Hsecret"));
    }

    #[test]
    fn credentials_round_trip_through_their_sealed_encoding() {
        let credentials = Credentials::Stripe {
            secret_key: StripeSecretKey::parse(KEY, Mode::Test).unwrap(),
            webhook_secret: Some(StripeWebhookSecret::parse("whsec_abcdefghijkl").unwrap()),
        };
        let bytes = credentials.encode();
        let Some(Credentials::Stripe {
            secret_key,
            webhook_secret,
        }) = Credentials::decode(ConnectionKind::Stripe, Mode::Test, &bytes)
        else {
            panic!("Stripe credentials")
        };
        assert_eq!(secret_key.expose_secret(), KEY);
        assert_eq!(webhook_secret.unwrap().expose_secret(), "whsec_abcdefghijkl");
        let without = Credentials::Stripe {
            secret_key: StripeSecretKey::parse(KEY, Mode::Test).unwrap(),
            webhook_secret: None,
        };
        assert!(!without.has_webhook_secret());
        let decoded = Credentials::decode(ConnectionKind::Stripe, Mode::Test, &without.encode()).unwrap();
        assert!(!decoded.has_webhook_secret());
        // Another mode's connection does not take it; nor does garbage.
        assert!(Credentials::decode(ConnectionKind::Stripe, Mode::Live, &bytes).is_none());
        assert!(Credentials::decode(ConnectionKind::Stripe, Mode::Test, b"sk_test_abcdefghijkl").is_none());
        assert!(format!("{decoded:?}").find("51Habc").is_none());
    }
}
