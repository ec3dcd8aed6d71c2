//! Merchants: the tenants. Every resource belongs to exactly one merchant.

use super::ids::MerchantId;
use super::time::Timestamp;

/// Longest merchant name accepted (characters).
pub const MAX_NAME_CHARS: usize = 200;

/// A merchant's display name: non-empty, bounded, without control characters
/// or invisible direction overrides (which can make a name display as another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
pub struct InvalidMerchantName;

impl MerchantName {
    pub fn parse(input: &str) -> Result<Self, InvalidMerchantName> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > MAX_NAME_CHARS || trimmed.chars().any(|c| c.is_control() || is_bidi_control(c)) {
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

/// Unicode bidirectional formatting characters (the "Trojan Source" set) and
/// zero-width characters.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
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
        assert!(MerchantName::parse("abc\u{202E}gpj.exe").is_err());
        assert!(MerchantName::parse("Café Zürich 東京").is_ok());
    }
}
