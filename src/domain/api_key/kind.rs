//! What a key is for (secret, publishable, restricted) and which world it
//! acts in (test or live); both are written into the key itself.

use serde::{Deserialize, Serialize};

/// What a key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Full access to the merchant's resources (except card reveal).
    Secret,
    /// Safe to embed in a web page: may only create card tokens.
    Publishable,
    /// Only the permissions listed on the key.
    Restricted,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Secret, KeyKind::Publishable, KeyKind::Restricted];

    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk",
            KeyKind::Publishable => "pk",
            KeyKind::Restricted => "rk",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Publishable => "publishable",
            KeyKind::Restricted => "restricted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(KeyKind::Secret),
            "publishable" => Some(KeyKind::Publishable),
            "restricted" => Some(KeyKind::Restricted),
            _ => None,
        }
    }

    pub(super) fn from_prefix(s: &str) -> Option<Self> {
        match s {
            "sk" => Some(KeyKind::Secret),
            "pk" => Some(KeyKind::Publishable),
            "rk" => Some(KeyKind::Restricted),
            _ => None,
        }
    }
}

/// Test keys touch only sandbox processors; live keys move real money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
}
