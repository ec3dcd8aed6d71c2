//! API keys: kinds, modes, the secret's format and its checksum.
//!
//! Format: `{kind}_{mode}_{32 random base62 chars}{6-char base62 CRC32}`, e.g.
//! `sk_test_…`. The 32 random characters carry ≈190 bits from the OS CSPRNG; the
//! checksum (CRC32 of everything before it) lets a typo be rejected, and a leaked
//! key be recognised by a scanner, without touching the database.
//!
//! Invariant: the plaintext lives only in [`ApiKeySecret`], which zeroizes on
//! drop and whose `Debug` prints nothing of it.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::{KeyKind, Mode};
use crate::domain::random::{self, RandomError};

const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;

/// Why a presented string is not a well-formed key. Never shown to clients
/// (they get one uniform 401); recorded as the audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKey {
    #[error("key has an unknown prefix")]
    UnknownPrefix,
    #[error("key has the wrong length or characters")]
    BadShape,
    #[error("key checksum does not match")]
    BadChecksum,
}

/// The plaintext of an API key. Zeroized on drop; `Debug` prints `***`.
pub struct ApiKeySecret {
    secret: SecretString,
    kind: KeyKind,
    mode: Mode,
}

impl ApiKeySecret {
    /// Draws a new key from the OS CSPRNG.
    pub fn generate(kind: KeyKind, mode: Mode) -> Result<Self, RandomError> {
        let body = format!(
            "{}_{}_{}",
            kind.prefix(),
            mode.as_str(),
            random::base62_string(RANDOM_LEN)?
        );
        let checksum = checksum(&body);
        Ok(Self {
            secret: SecretString::from(format!("{body}{checksum}")),
            kind,
            mode,
        })
    }

    /// Parses a presented key: prefix, length, alphabet and checksum.
    pub fn parse(presented: &str) -> Result<Self, MalformedKey> {
        let mut parts = presented.splitn(3, '_');
        let kind = parts
            .next()
            .and_then(KeyKind::from_prefix)
            .ok_or(MalformedKey::UnknownPrefix)?;
        let mode = parts.next().and_then(Mode::parse).ok_or(MalformedKey::UnknownPrefix)?;
        let tail = parts.next().ok_or(MalformedKey::BadShape)?;
        if tail.len() != RANDOM_LEN + CHECKSUM_LEN || !random::is_base62(tail) {
            return Err(MalformedKey::BadShape);
        }
        let split_at = presented.len() - CHECKSUM_LEN;
        let (body, check) = (presented.get(..split_at), presented.get(split_at..));
        match (body, check) {
            (Some(body), Some(check)) if checksum(body) == check => Ok(Self {
                secret: SecretString::from(presented.to_owned()),
                kind,
                mode,
            }),
            _ => Err(MalformedKey::BadChecksum),
        }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The key's visible prefix, e.g. `sk_test_`.
    pub fn display_prefix(&self) -> String {
        format!("{}_{}_", self.kind.prefix(), self.mode.as_str())
    }

    /// The last four characters, safe to show in listings.
    pub fn last4(&self) -> String {
        let s = self.secret.expose_secret();
        s.get(s.len().saturating_sub(4)..).unwrap_or_default().to_owned()
    }

    /// The plaintext, for hashing and for showing it once at creation.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}***)", self.display_prefix())
    }
}

/// True if `candidate` has the shape and checksum of a paywarden key, for
/// secret scanners; needs no database.
pub fn looks_like_paywarden_key(candidate: &str) -> bool {
    ApiKeySecret::parse(candidate).is_ok()
}

fn checksum(body: &str) -> String {
    random::base62_fixed(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_keep_kind_and_mode() {
        for kind in [KeyKind::Secret, KeyKind::Publishable, KeyKind::Restricted] {
            for mode in [Mode::Test, Mode::Live] {
                let key = ApiKeySecret::generate(kind, mode).unwrap();
                assert!(key
                    .expose()
                    .starts_with(&format!("{}_{}_", kind.prefix(), mode.as_str())));
                let parsed = ApiKeySecret::parse(key.expose()).unwrap();
                assert_eq!((parsed.kind(), parsed.mode()), (kind, mode));
            }
        }
    }

    #[test]
    fn a_single_typo_is_caught_by_the_checksum() {
        let key = ApiKeySecret::generate(KeyKind::Secret, Mode::Test).unwrap();
        let text = key.expose().to_owned();
        let mut bytes = text.into_bytes();
        let i = 12;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert_eq!(ApiKeySecret::parse(&typo).unwrap_err(), MalformedKey::BadChecksum);
    }

    #[test]
    fn debug_never_prints_the_key() {
        let key = ApiKeySecret::generate(KeyKind::Secret, Mode::Live).unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.expose()[8..]));
        assert_eq!(debug, "ApiKeySecret(sk_live_***)");
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert_eq!(
            ApiKeySecret::parse("xk_test_abc").unwrap_err(),
            MalformedKey::UnknownPrefix
        );
        assert_eq!(
            ApiKeySecret::parse("sk_prod_abc").unwrap_err(),
            MalformedKey::UnknownPrefix
        );
        assert_eq!(ApiKeySecret::parse("sk_test_abc").unwrap_err(), MalformedKey::BadShape);
        assert!(looks_like_paywarden_key(
            ApiKeySecret::generate(KeyKind::Publishable, Mode::Test)
                .unwrap()
                .expose()
        ));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in ".{0,60}") {
            let _ = ApiKeySecret::parse(&s);
        }
    }
}
