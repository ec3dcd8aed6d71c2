//! Which quotas apply to which requests: one [`ClassQuotas`] per
//! [`RouteClass`]. The defaults limit publishable keys and unauthenticated
//! traffic only, far above what a checkout page or a shopper sends; secret
//! and restricted keys are limited only where the operator sets a quota.

use super::Quota;

/// The classes of routes, each with quotas of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// `POST /v1/tokens`: card tokenization (the card-testing oracle).
    Tokenize,
    /// Authenticated reads (`GET` under `/v1`).
    Read,
    /// Authenticated changes (every other `/v1` route).
    Write,
    /// Unauthenticated requests: the hosted card fields page and its
    /// assets, the 3-D Secure page, the OpenAPI document. (`/healthz` and
    /// `/readyz` are never limited: load balancers probe them.)
    Unauthenticated,
}

impl RouteClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Tokenize => "tokenize",
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Unauthenticated => "unauthenticated",
        }
    }
}

/// The quotas of one class; `None` limits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassQuotas {
    /// Per publishable key.
    pub per_publishable_key: Option<Quota>,
    /// Per secret or restricted key.
    pub per_private_key: Option<Quota>,
    /// Per merchant and mode, every key of it together.
    pub per_merchant: Option<Quota>,
    /// Per client address (IPv6: per /64), for publishable keys and
    /// unauthenticated requests.
    pub per_client_ip: Option<Quota>,
}

/// Every class's quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    pub tokenize: ClassQuotas,
    pub read: ClassQuotas,
    pub write: ClassQuotas,
    pub unauthenticated: ClassQuotas,
}

impl RateLimitPolicy {
    pub fn class(&self, class: RouteClass) -> &ClassQuotas {
        match class {
            RouteClass::Tokenize => &self.tokenize,
            RouteClass::Read => &self.read,
            RouteClass::Write => &self.write,
            RouteClass::Unauthenticated => &self.unauthenticated,
        }
    }

    /// No bucket anywhere.
    pub fn unlimited() -> Self {
        Self {
            tokenize: ClassQuotas::default(),
            read: ClassQuotas::default(),
            write: ClassQuotas::default(),
            unauthenticated: ClassQuotas::default(),
        }
    }
}

const fn quota(burst: u32, per_minute: u32) -> Option<Quota> {
    Some(Quota { burst, per_minute })
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        // A publishable key may only tokenize cards; its other requests are
        // refused (403), but still limited, as anything public is.
        let publishable_elsewhere = ClassQuotas {
            per_publishable_key: quota(600, 600),
            per_client_ip: quota(120, 60),
            ..ClassQuotas::default()
        };
        Self {
            tokenize: ClassQuotas {
                // A busy checkout: 5 cards a second, bursts of 300.
                per_publishable_key: quota(300, 300),
                // One shopper retries a few cards; a script is stopped after
                // 30 and then gets one every 6 seconds.
                per_client_ip: quota(30, 10),
                // The merchant's own servers are never throttled by surprise.
                per_private_key: None,
                per_merchant: None,
            },
            read: publishable_elsewhere,
            write: publishable_elsewhere,
            // A checkout loads the card fields page and two assets, a 3-D
            // Secure challenge one page and one answer: a few a minute per
            // shopper; an office behind one address, a few hundred.
            unauthenticated: ClassQuotas {
                per_client_ip: quota(600, 300),
                ..ClassQuotas::default()
            },
        }
    }
}
