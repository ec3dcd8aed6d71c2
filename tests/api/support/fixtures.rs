//! Keys, secrets and policies of test gateways.

use std::time::Duration;

use base64::Engine;
use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use paywarden::domain::permission::Permission;
use paywarden::domain::restrictions::KeyRestrictions;
use paywarden::services::actor::Actor;
use paywarden::services::api_keys::NewKey;
use paywarden::services::payments::PaymentPolicy;
use paywarden::vault::Kek;
use secrecy::SecretBox;

pub fn test_pepper() -> (String, [u8; 32]) {
    let bytes: [u8; 32] = paywarden::domain::random::bytes().unwrap();
    (base64::engine::general_purpose::STANDARD.encode(bytes), bytes)
}

/// Payments as in production, but expired challenges are found within 100 ms.
pub fn test_payment_policy() -> PaymentPolicy {
    PaymentPolicy {
        sweep_interval: Duration::from_millis(100),
        ..PaymentPolicy::default()
    }
}

/// A KEK from base64.
pub fn kek(b64: &str) -> Kek {
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .try_into()
        .unwrap();
    Kek::new(SecretBox::new(Box::new(bytes)))
}

/// Writes a secret file as an operator must: owner-only (0600), which the
/// gateway and CLI demand of every secret file they read.
pub fn write_secret_file(path: impl AsRef<std::path::Path>, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn operator() -> Actor {
    Actor::Operator { command: "test".into() }
}

pub fn new_key(merchant: &MerchantId, kind: KeyKind, permissions: &[Permission]) -> NewKey {
    NewKey {
        merchant: merchant.clone(),
        kind,
        mode: Mode::Test,
        permissions: permissions.to_vec(),
        restrictions: KeyRestrictions::default(),
        expires_in: None,
        description: None,
    }
}
