//! Permissions a key can hold, and what each key kind is granted.
//!
//! Invariant: `tokens:reveal` is never implied; it must be listed explicitly on
//! a restricted key. A `write` permission implies the `read` of the same resource.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One resource-scoped permission, written `resource:access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "api_keys:read")]
    ApiKeysRead,
    #[serde(rename = "api_keys:write")]
    ApiKeysWrite,
    #[serde(rename = "payments:read")]
    PaymentsRead,
    #[serde(rename = "payments:write")]
    PaymentsWrite,
    #[serde(rename = "refunds:read")]
    RefundsRead,
    #[serde(rename = "refunds:write")]
    RefundsWrite,
    #[serde(rename = "tokens:read")]
    TokensRead,
    #[serde(rename = "tokens:write")]
    TokensWrite,
    #[serde(rename = "tokens:reveal")]
    TokensReveal,
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "fraud:read")]
    FraudRead,
    #[serde(rename = "fraud:write")]
    FraudWrite,
    #[serde(rename = "anomalies:read")]
    AnomaliesRead,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::ApiKeysRead,
        Permission::ApiKeysWrite,
        Permission::PaymentsRead,
        Permission::PaymentsWrite,
        Permission::RefundsRead,
        Permission::RefundsWrite,
        Permission::TokensRead,
        Permission::TokensWrite,
        Permission::TokensReveal,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::EventsRead,
        Permission::FraudRead,
        Permission::FraudWrite,
        Permission::AnomaliesRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ApiKeysRead => "api_keys:read",
            Permission::ApiKeysWrite => "api_keys:write",
            Permission::PaymentsRead => "payments:read",
            Permission::PaymentsWrite => "payments:write",
            Permission::RefundsRead => "refunds:read",
            Permission::RefundsWrite => "refunds:write",
            Permission::TokensRead => "tokens:read",
            Permission::TokensWrite => "tokens:write",
            Permission::TokensReveal => "tokens:reveal",
            Permission::WebhooksRead => "webhooks:read",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::EventsRead => "events:read",
            Permission::FraudRead => "fraud:read",
            Permission::FraudWrite => "fraud:write",
            Permission::AnomaliesRead => "anomalies:read",
        }
    }

    /// The read permission that this write permission implies, if any.
    fn implied_read(self) -> Option<Permission> {
        match self {
            Permission::ApiKeysWrite => Some(Permission::ApiKeysRead),
            Permission::PaymentsWrite => Some(Permission::PaymentsRead),
            Permission::RefundsWrite => Some(Permission::RefundsRead),
            Permission::TokensWrite => Some(Permission::TokensRead),
            Permission::WebhooksWrite => Some(Permission::WebhooksRead),
            Permission::FraudWrite => Some(Permission::FraudRead),
            _ => None,
        }
    }

    /// True if holding `self` grants `wanted`.
    pub fn grants(self, wanted: Permission) -> bool {
        self == wanted || self.implied_read() == Some(wanted)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission; expected one of resource:read or resource:write, e.g. payments:read")]
pub struct UnknownPermission;

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(UnknownPermission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_through_strings() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert!("payments:delete".parse::<Permission>().is_err());
    }

    #[test]
    fn write_implies_read_but_not_the_reverse() {
        assert!(Permission::PaymentsWrite.grants(Permission::PaymentsRead));
        assert!(!Permission::PaymentsRead.grants(Permission::PaymentsWrite));
        assert!(!Permission::TokensWrite.grants(Permission::TokensReveal));
        assert!(Permission::FraudWrite.grants(Permission::FraudRead));
        assert!(!Permission::FraudRead.grants(Permission::FraudWrite));
    }
}
