//! Operators and their second factor: the operator's name (what the CLI's
//! `--operator` names and the audit trail records) and a TOTP code as typed
//! at the CLI (`--totp`), each parsed at the edge.
//!
//! Invariants: a name is 1 to 64 characters of lowercase ASCII letters,
//! digits, `.`, `_` and `-`, starting with a letter (so it is safe in an
//! otpauth:// label, an audit entry and a terminal, and a code typed into
//! `--operator` by mistake is refused, never recorded); a code is exactly
//! six ASCII digits (RFC 6238 as authenticator apps use it), and `Debug`
//! prints nothing of it.

use std::fmt;

use zeroize::Zeroizing;

use super::ids::OperatorId;
use super::time::Timestamp;

/// Longest operator name.
pub const MAX_NAME_LEN: usize = 64;

/// Digits of a TOTP code.
pub const CODE_DIGITS: usize = 6;

/// Why a name or code was refused (never echoing a code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorInputError {
    #[error(
        "an operator name is 1 to 64 characters of lowercase letters, digits, '.', '_' and '-', \
         starting with a letter"
    )]
    Name,
    #[error("a TOTP code is exactly 6 digits")]
    Code,
}

/// An operator's unique name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperatorName(String);

impl OperatorName {
    pub fn parse(raw: &str) -> Result<Self, OperatorInputError> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        let starts_well = raw.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        if starts_well && raw.len() <= MAX_NAME_LEN && raw.chars().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(OperatorInputError::Name)
        }
    }

    /// Rebuilds a name read back from our own database.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorName({})", self.0)
    }
}

/// A TOTP code as the operator typed it: six ASCII digits (surrounding
/// whitespace, as a prompt's line ending, is dropped).
#[derive(Clone)]
pub struct TotpCode(Zeroizing<String>);

impl TotpCode {
    pub fn parse(raw: &str) -> Result<Self, OperatorInputError> {
        let code = raw.trim();
        if code.len() == CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(Zeroizing::new(code.to_owned())))
        } else {
            Err(OperatorInputError::Code)
        }
    }

    /// The digits, for the constant-time comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(***)")
    }
}

/// An enrolled operator, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub name: OperatorName,
    pub created_at: Timestamp,
    /// The TOTP time step of the last accepted code (none accepted yet: `None`).
    pub last_used_step: Option<i64>,
    /// Refused until then after repeated failed codes.
    pub locked_until: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["alice", "a", "ops-1", "j.doe_2", "a1", &"x".repeat(MAX_NAME_LEN)] {
            assert_eq!(OperatorName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "123456",
            "1st",
            "Alice",
            "-lead",
            ".x",
            "a b",
            "a:b",
            "a/b",
            "é",
            "a\n",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert_eq!(OperatorName::parse(bad), Err(OperatorInputError::Name), "{bad:?}");
        }
    }

    #[test]
    fn codes_are_six_digits_and_never_printed() {
        assert_eq!(TotpCode::parse(" 012345\n").unwrap().expose(), "012345");
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 345", "+12345"] {
            assert!(TotpCode::parse(bad).is_err(), "{bad:?}");
        }
        let code = TotpCode::parse("987654").unwrap();
        assert_eq!(format!("{code:?}"), "TotpCode(***)");
        let err = TotpCode::parse("98765x").err().unwrap().to_string();
        assert!(!err.contains("98765"), "{err}");
    }
}
