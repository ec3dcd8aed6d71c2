//! Webhook signing secrets: `whsec_` and 32 base62 characters (≈190 bits)
//! from the OS CSPRNG, shown to the merchant once and otherwise only ever
//! stored sealed by the vault (envelope encryption bound to endpoint and
//! merchant). `Debug` prints nothing of the value.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::random::{self, RandomError};
use crate::store::webhook_endpoints::SealedColumns;
use crate::vault::{self, Aad, KekProvider, KekVersion, Sealed, VaultError};

pub const PREFIX: &str = "whsec_";
const RANDOM_LEN: usize = 32;

pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(SecretString::from(format!(
            "{PREFIX}{}",
            random::base62_string(RANDOM_LEN)?
        ))))
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// The vault identity of an endpoint's secrets: the endpoint id (`we_…`,
/// never a token id) under its merchant.
fn aad<'a>(endpoint_id: &'a str, merchant_id: &'a str) -> Aad<'a> {
    Aad {
        token_id: endpoint_id,
        merchant_id,
    }
}

/// Seals `secret` for the endpoint under the keyring's current KEK.
pub fn seal<P: KekProvider + ?Sized>(
    keyring: &P,
    endpoint_id: &str,
    merchant_id: &str,
    secret: &WebhookSecret,
) -> Result<SealedColumns, VaultError> {
    let sealed = vault::seal(
        keyring,
        aad(endpoint_id, merchant_id),
        secret.expose_secret().as_bytes(),
    )?;
    Ok(SealedColumns {
        kek_version: i64::from(sealed.kek_version().get()),
        wrapped_dek: sealed.wrapped_dek_base64(),
        ciphertext: sealed.ciphertext_base64(),
    })
}

fn sealed(columns: &SealedColumns) -> Result<Sealed, VaultError> {
    let version = u32::try_from(columns.kek_version).map_err(|_| VaultError::Malformed("kek version"))?;
    Sealed::from_base64(KekVersion::new(version), &columns.wrapped_dek, &columns.ciphertext)
}

/// Opens a sealed secret of the endpoint.
pub fn open<P: KekProvider + ?Sized>(
    keyring: &P,
    endpoint_id: &str,
    merchant_id: &str,
    columns: &SealedColumns,
) -> Result<WebhookSecret, VaultError> {
    let plain = vault::open(keyring, aad(endpoint_id, merchant_id), &sealed(columns)?)?;
    let text = std::str::from_utf8(&plain).map_err(|_| VaultError::Decrypt)?;
    Ok(WebhookSecret(SecretString::from(text.to_owned())))
}

/// Re-wraps a sealed secret's data key under KEK `to` (the ciphertext is
/// unchanged). Returns the new wrapped key, base64.
pub fn rewrap<P: KekProvider + ?Sized>(
    keyring: &P,
    endpoint_id: &str,
    merchant_id: &str,
    columns: &SealedColumns,
    to: KekVersion,
) -> Result<String, VaultError> {
    let rewrapped = vault::rewrap(keyring, aad(endpoint_id, merchant_id), &sealed(columns)?, to)?;
    Ok(rewrapped.wrapped_dek_base64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{Kek, StaticKeyring};

    #[test]
    fn secrets_are_random_sealed_bound_and_never_printed() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert!(a.expose_secret().starts_with(PREFIX));
        assert_eq!(a.expose_secret().len(), PREFIX.len() + RANDOM_LEN);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(format!("{a:?}"), "WebhookSecret(***)");
        let keyring = StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap());
        let columns = seal(&keyring, "we_1", "mer_1", &a).unwrap();
        assert!(!columns.ciphertext.contains(a.expose_secret()));
        assert_eq!(
            open(&keyring, "we_1", "mer_1", &columns).unwrap().expose_secret(),
            a.expose_secret()
        );
        assert!(
            open(&keyring, "we_2", "mer_1", &columns).is_err(),
            "bound to the endpoint"
        );
        assert!(
            open(&keyring, "we_1", "mer_2", &columns).is_err(),
            "bound to the merchant"
        );
    }
}
