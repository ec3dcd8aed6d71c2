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
        printable_text(input, MAX_NAME_CHARS)
            .map(Self)
            .ok_or(InvalidMerchantName)
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `input` trimmed, if it is 1 to `max` characters without control or
/// invisible direction characters (text shown to people as it is stored).
fn printable_text(input: &str, max: usize) -> Option<String> {
    let trimmed = input.trim();
    let count = trimmed.chars().count();
    let printable = !trimmed.chars().any(|c| c.is_control() || is_bidi_control(c));
    (count > 0 && count <= max && printable).then(|| trimmed.to_owned())
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
    /// Origins allowed to embed the hosted card fields page.
    pub element_origins: Vec<ElementOrigin>,
    /// The connector its new test-mode payments are routed to: `sandbox`
    /// (the default) or one of its processor connections (`conn_…`).
    pub connector: String,
    /// The connection its new live-mode payments are routed to; `None` when
    /// there is none (live payments then fail with `connector_configuration`:
    /// the sandbox never takes them).
    pub live_connector: Option<String>,
    /// Set while the operator has frozen the merchant: every key is refused.
    pub frozen: Option<Freeze>,
}

/// The connector name a live payment records when its merchant has no
/// live connector: a built-in that refuses every call as a configuration
/// error.
pub const UNCONFIGURED_CONNECTOR: &str = "unconfigured";

/// The connector of a test merchant that has no connection of its own.
pub const DEFAULT_TEST_CONNECTOR: &str = "sandbox";

impl Merchant {
    /// The connector new payments of `mode` go to.
    pub fn route(&self, mode: super::api_key::Mode) -> &str {
        match mode {
            super::api_key::Mode::Test => &self.connector,
            super::api_key::Mode::Live => self.live_connector.as_deref().unwrap_or(UNCONFIGURED_CONNECTOR),
        }
    }
}

/// An operator's freeze of a merchant (incident containment), with its time
/// and the operator's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub at: Timestamp,
    pub reason: FreezeReason,
}

/// Longest freeze reason accepted (characters).
pub const MAX_FREEZE_REASON_CHARS: usize = 500;

/// Why an operator froze or unfroze a merchant: non-empty, bounded, without
/// control or invisible direction characters (it is shown to operators and
/// written to the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeReason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reason must be 1 to {MAX_FREEZE_REASON_CHARS} characters without control characters")]
pub struct InvalidFreezeReason;

impl FreezeReason {
    pub fn parse(input: &str) -> Result<Self, InvalidFreezeReason> {
        printable_text(input, MAX_FREEZE_REASON_CHARS)
            .map(Self)
            .ok_or(InvalidFreezeReason)
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Most origins a merchant may register for the hosted card fields page.
pub const MAX_ELEMENT_ORIGINS: usize = 10;

/// A web origin (`scheme://host[:port]`, nothing else) allowed to frame the
/// hosted card fields page. `https` only, except `http` on loopback hosts for
/// local development. No wildcards, paths, credentials or queries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ElementOrigin(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("origins look like https://shop.example or https://shop.example:8443 (http only for localhost)")]
pub struct InvalidOrigin;

impl ElementOrigin {
    pub fn parse(input: &str) -> Result<Self, InvalidOrigin> {
        let lower = input.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or(InvalidOrigin)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                let port: u16 = p.parse().map_err(|_| InvalidOrigin)?;
                (h, Some(port))
            }
            _ => (rest, None),
        };
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host == "[::1]"
                || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                    && !host.starts_with(['.', '-'])
                    && !host.ends_with(['.', '-']));
        let scheme_ok = scheme == "https" || (scheme == "http" && loopback);
        if !host_ok || !scheme_ok || port == Some(0) {
            return Err(InvalidOrigin);
        }
        Ok(Self(match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ElementOrigin {
    type Error = InvalidOrigin;
    fn try_from(s: String) -> Result<Self, InvalidOrigin> {
        Self::parse(&s)
    }
}

impl From<ElementOrigin> for String {
    fn from(o: ElementOrigin) -> String {
        o.0
    }
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

    #[test]
    fn freeze_reasons_are_trimmed_bounded_and_printable() {
        assert_eq!(
            FreezeReason::parse("  card testing from key_1  ").unwrap().as_str(),
            "card testing from key_1"
        );
        assert!(FreezeReason::parse("   ").is_err());
        assert!(FreezeReason::parse("line\nbreak").is_err());
        assert!(FreezeReason::parse("abc\u{202E}def").is_err());
        assert!(FreezeReason::parse(&"x".repeat(MAX_FREEZE_REASON_CHARS)).is_ok());
        assert!(FreezeReason::parse(&"x".repeat(MAX_FREEZE_REASON_CHARS + 1)).is_err());
    }

    #[test]
    fn origins_are_strict() {
        assert_eq!(
            ElementOrigin::parse("https://Shop.Example").unwrap().as_str(),
            "https://shop.example"
        );
        assert_eq!(
            ElementOrigin::parse("https://shop.example:8443").unwrap().as_str(),
            "https://shop.example:8443"
        );
        assert!(ElementOrigin::parse("http://localhost:3000").is_ok());
        assert!(ElementOrigin::parse("http://127.0.0.1:3000").is_ok());
        for bad in [
            "http://shop.example",
            "https://shop.example/path",
            "https://*.shop.example",
            "shop.example",
            "https://user@shop.example",
            "https://shop.example:0",
            "https://shop.example?x=1",
            "javascript://x",
            "https://",
            "https://shop example",
            "https://shop.example'; script-src *",
        ] {
            assert!(ElementOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
