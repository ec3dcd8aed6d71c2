//! `IdempotencyKey`: the client's `Idempotency-Key` header value, 1 to 255
//! printable ASCII characters (space through `~`). Anything else, including
//! control characters and non-ASCII bytes, never becomes a key.

use super::ids::ApiKeyId;

/// Longest key accepted, in characters (= bytes: ASCII only).
pub const MAX_LEN: usize = 255;

/// A client-chosen key that makes a POST safe to retry. Not a secret: it is
/// stored in clear, scoped to the merchant, mode and key lineage of the API
/// key that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key must be 1 to {MAX_LEN} printable ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// Parses the raw header bytes.
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let printable = raw.iter().all(|b| (b' '..=b'~').contains(b));
        if raw.is_empty() || raw.len() > MAX_LEN || !printable {
            return Err(InvalidIdempotencyKey);
        }
        std::str::from_utf8(raw)
            .map(|s| Self(s.to_owned()))
            .map_err(|_| InvalidIdempotencyKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as what it created records it (a payment's or a refund's
    /// recovery point): `<key lineage id>/<key>`, so that only the API key
    /// that sent it (or its successor after a rotation) finds that object
    /// by it. The lineage id holds no `/`, so the two parts never blur.
    pub fn scoped_to(&self, lineage: &ApiKeyId) -> String {
        format!("{lineage}/{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn printable_ascii_up_to_255_characters() {
        assert_eq!(
            IdempotencyKey::parse(b"order-42/retry 1").unwrap().as_str(),
            "order-42/retry 1"
        );
        assert!(IdempotencyKey::parse(&[b'k'; MAX_LEN]).is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_LEN + 1]).is_err());
        assert!(IdempotencyKey::parse(b"").is_err());
        for bad in [
            &b"a\tb"[..],
            b"a\nb",
            b"a\x7fb",
            b"a\x00b",
            "caf\u{e9}".as_bytes(),
            b"\xff",
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_exactly_when_printable_and_bounded(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let expected = !raw.is_empty() && raw.len() <= MAX_LEN && raw.iter().all(|b| (0x20..=0x7e).contains(b));
            prop_assert_eq!(IdempotencyKey::parse(&raw).is_ok(), expected);
        }
    }
}
