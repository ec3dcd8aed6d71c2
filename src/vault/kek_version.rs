//! The version number that names a key-encryption key. Stored beside every
//! record a KEK wraps, so that old records stay readable while new ones use a
//! newer key; a type of its own so that errors can name a version without
//! depending on the keys themselves.

use std::fmt;

/// Identifies one KEK; stored beside every record it wraps, so that old records
/// stay readable while new ones use a newer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KekVersion(u32);

impl KekVersion {
    pub const fn new(version: u32) -> Self {
        Self(version)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for KekVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
