//! Merchants: the tenants. Every resource belongs to exactly one merchant.

use super::ids::MerchantId;
use super::time::Timestamp;

/// Longest merchant name accepted (characters).
pub const MAX_NAME_CHARS: usize = 200;

/// A merchant's display name: non-empty, bounded, without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
pub struct InvalidMerchantName;

impl MerchantName {
    pub fn parse(input: &str) -> Result<Self, InvalidMerchantName> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > MAX_NAME_CHARS || trimmed.chars().any(char::is_control) {
            return Err(InvalidMerchantName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: MerchantName,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(MerchantName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(MerchantName::parse("").is_err());
        assert!(MerchantName::parse("a\u{0}b").is_err());
        assert!(MerchantName::parse(&"x".repeat(201)).is_err());
    }
}
