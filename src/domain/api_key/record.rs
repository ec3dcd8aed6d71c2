//! What the gateway knows about an issued API key (never the key itself), and
//! the rules that decide whether a presented key may be used right now.

use super::{KeyKind, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::merchant::Freeze;
use crate::domain::permission::Permission;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::time::Timestamp;

/// Longest description accepted on a key.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub merchant_id: MerchantId,
    pub kind: KeyKind,
    pub mode: Mode,
    /// `sk_test_`, `pk_live_`, …: the visible prefix.
    pub prefix: String,
    /// The last four characters of the key.
    pub last4: String,
    /// Explicit permissions; only meaningful for restricted keys.
    pub permissions: Vec<Permission>,
    pub restrictions: KeyRestrictions,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Set when this key was rotated: the key that replaced it.
    pub rotated_to: Option<ApiKeyId>,
    /// The first key of this key's rotation chain (its own id unless it was
    /// issued by a rotation). Keys of one lineage share idempotency records.
    pub lineage: ApiKeyId,
    /// Set while an operator or an anomaly policy has frozen this key: it is
    /// refused (403 `key_frozen`) until an operator unfreezes it.
    pub frozen: Option<Freeze>,
}

/// Why a well-formed key that exists may not be used. Recorded in the audit
/// trail; clients only ever see one uniform 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyUnusable {
    #[error("key was revoked")]
    Revoked,
    #[error("key has expired")]
    Expired,
}

impl ApiKey {
    /// Whether the key may authenticate a request at `now`.
    pub fn usable_at(&self, now: Timestamp) -> Result<(), KeyUnusable> {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(KeyUnusable::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyUnusable::Expired);
        }
        Ok(())
    }

    /// Whether this key grants `wanted`, by kind and (for restricted keys) by
    /// its explicit list. `tokens:reveal` is granted only when listed.
    pub fn grants(&self, wanted: Permission) -> bool {
        match self.kind {
            KeyKind::Secret => wanted != Permission::TokensReveal,
            KeyKind::Publishable => wanted == Permission::TokensWrite,
            KeyKind::Restricted => self.permissions.iter().any(|p| p.grants(wanted)),
        }
    }
}

#[cfg(test)]
impl ApiKey {
    /// A usable key of `merchant` for tests: no permissions, restrictions,
    /// expiry or description, created at the epoch, its own lineage. Tests
    /// change the fields they are about.
    pub fn for_test(merchant_id: MerchantId, kind: KeyKind, mode: Mode) -> ApiKey {
        let id = ApiKeyId::generate().unwrap();
        let kind_prefix = match kind {
            KeyKind::Secret => "sk",
            KeyKind::Publishable => "pk",
            KeyKind::Restricted => "rk",
        };
        ApiKey {
            lineage: id.clone(),
            id,
            merchant_id,
            kind,
            mode,
            prefix: format!("{kind_prefix}_{}_", mode.as_str()),
            last4: "abcd".into(),
            permissions: Vec::new(),
            restrictions: KeyRestrictions::default(),
            description: None,
            created_at: Timestamp::from_millis(0),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            frozen: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: KeyKind, permissions: Vec<Permission>) -> ApiKey {
        ApiKey {
            permissions,
            ..ApiKey::for_test(MerchantId::generate().unwrap(), kind, Mode::Test)
        }
    }

    #[test]
    fn kinds_grant_what_they_should() {
        let secret = key(KeyKind::Secret, vec![]);
        assert!(secret.grants(Permission::PaymentsWrite));
        assert!(!secret.grants(Permission::TokensReveal));
        let pk = key(KeyKind::Publishable, vec![]);
        assert!(pk.grants(Permission::TokensWrite));
        assert!(!pk.grants(Permission::PaymentsRead));
        let read_only = key(KeyKind::Restricted, vec![Permission::PaymentsRead]);
        assert!(read_only.grants(Permission::PaymentsRead));
        assert!(!read_only.grants(Permission::PaymentsWrite));
        let revealer = key(KeyKind::Restricted, vec![Permission::TokensReveal]);
        assert!(revealer.grants(Permission::TokensReveal));
    }

    #[test]
    fn expiry_and_revocation_are_checked() {
        let mut k = key(KeyKind::Secret, vec![]);
        let now = Timestamp::from_millis(10_000);
        assert!(k.usable_at(now).is_ok());
        k.expires_at = Some(Timestamp::from_millis(10_000));
        assert_eq!(k.usable_at(now), Err(KeyUnusable::Expired));
        k.expires_at = Some(Timestamp::from_millis(20_000));
        assert!(k.usable_at(now).is_ok());
        k.revoked_at = Some(Timestamp::from_millis(5_000));
        assert_eq!(k.usable_at(now), Err(KeyUnusable::Revoked));
    }
}
