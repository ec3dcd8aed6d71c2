//! Typed identifiers: a type prefix (`mer_`, `key_`, `req_`, …) followed by
//! 24 base62 characters, so ids are unguessable and one kind of id can never
//! be passed where another is expected.
//!
//! Most ids are 24 random characters (≈142 bits). Ids of records that are
//! listed newest first (payments, refunds, events) are time-ordered: 8
//! characters of creation time in milliseconds, then 16 random ones (≈95
//! bits), so their id order is their creation order and a cursor is an id.

use std::fmt;

use super::random::{self, RandomError};

/// Length of the part after the prefix of every id.
const RANDOM_LEN: usize = 24;
/// Time-ordered ids: milliseconds since the epoch in this many base62 digits
/// (62^8 ms is about 6,900 years), then random characters to `RANDOM_LEN`.
const TIME_LEN: usize = 8;

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an id starting with `{expected_prefix}`")]
pub struct InvalidId {
    pub expected_prefix: &'static str,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Result<Self, RandomError> {
                Ok(Self(format!("{}{}", Self::PREFIX, random::id_string(RANDOM_LEN)?)))
            }

            /// A new id whose order among ids of its kind follows creation
            /// time (to the millisecond; random within one millisecond).
            pub fn generate_time_ordered(at: super::time::Timestamp) -> Result<Self, RandomError> {
                let millis = u64::try_from(at.as_millis()).unwrap_or(0);
                let mut id = String::with_capacity(Self::PREFIX.len() + RANDOM_LEN);
                id.push_str(Self::PREFIX);
                id.push_str(&random::base62_fixed(millis, TIME_LEN));
                id.push_str(&random::id_string(RANDOM_LEN - TIME_LEN)?);
                Ok(Self(id))
            }

            /// Parses an id received from outside. Accepts exactly the shape that
            /// `generate` produces, so nothing else reaches a query.
            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                let rest = input
                    .strip_prefix(Self::PREFIX)
                    .ok_or(InvalidId { expected_prefix: Self::PREFIX })?;
                if rest.len() == RANDOM_LEN && random::is_base62(rest) {
                    Ok(Self(input.to_owned()))
                } else {
                    Err(InvalidId { expected_prefix: Self::PREFIX })
                }
            }

            /// Rebuilds an id read back from our own database.
            pub fn from_trusted(stored: String) -> Self {
                Self(stored)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A merchant (tenant). Every resource belongs to exactly one.
    MerchantId,
    "mer_"
);
typed_id!(
    /// An API key's public identifier (never the key itself).
    ApiKeyId,
    "key_"
);
typed_id!(
    /// A card token: the vault record standing in for a card number.
    TokenId,
    "tok_"
);
typed_id!(
    /// A payment (time-ordered).
    PaymentId,
    "pay_"
);
typed_id!(
    /// A refund of a payment (time-ordered).
    RefundId,
    "re_"
);
typed_id!(
    /// An event: one state change, as delivered by webhook (time-ordered).
    EventId,
    "evt_"
);
typed_id!(
    /// A merchant's webhook endpoint.
    WebhookEndpointId,
    "we_"
);
typed_id!(
    /// One HTTP attempt to deliver an event to a webhook endpoint (time-ordered).
    WebhookAttemptId,
    "wha_"
);
typed_id!(
    /// A merchant's processor connection (one account at a processor, in one
    /// mode).
    ConnectionId,
    "conn_"
);
typed_id!(
    /// An alert of an anomaly detector (time-ordered).
    AnomalyId,
    "anom_"
);
typed_id!(
    /// An operator enrolled for step-up (`paywarden operator enroll`).
    OperatorId,
    "op_"
);
typed_id!(
    /// One API request, echoed in the `Request-Id` header and every error.
    RequestId,
    "req_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = MerchantId::generate().unwrap();
        assert!(id.as_str().starts_with("mer_"));
        assert_eq!(MerchantId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        let key = ApiKeyId::generate().unwrap();
        assert!(MerchantId::parse(key.as_str()).is_err());
        assert!(MerchantId::parse("mer_short").is_err());
        assert!(MerchantId::parse("mer_' OR 1=1 --aaaaaaaaaaaaaa").is_err());
        assert!(MerchantId::parse("").is_err());
    }

    #[test]
    fn time_ordered_ids_sort_by_creation_time_and_parse_back() {
        use crate::domain::time::Timestamp;
        let earlier = PaymentId::generate_time_ordered(Timestamp::from_millis(1_764_000_000_000)).unwrap();
        let later = PaymentId::generate_time_ordered(Timestamp::from_millis(1_764_000_000_001)).unwrap();
        let much_later = PaymentId::generate_time_ordered(Timestamp::from_millis(4_000_000_000_000)).unwrap();
        assert!(earlier < later && later < much_later);
        assert!(earlier.as_str().as_bytes() < later.as_str().as_bytes());
        assert_eq!(PaymentId::parse(later.as_str()).unwrap(), later);
        let same_ms = PaymentId::generate_time_ordered(Timestamp::from_millis(1_764_000_000_000)).unwrap();
        assert_ne!(same_ms, earlier, "the random part differs within one millisecond");
    }
}
