//! Who is acting: an operator at the CLI or an API caller (merchant + key), and
//! the request facts every audit entry carries.

use std::net::IpAddr;

use crate::domain::api_key::KeyKind;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::{ApiKeyId, RequestId};
use crate::domain::tenant::Tenant;

/// Facts about one HTTP request that go into its audit entries.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: RequestId,
    pub client_ip: IpAddr,
    pub user_agent: Option<String>,
    /// `METHOD /matched/route`, never the raw query string.
    pub route: String,
}

#[derive(Debug, Clone)]
pub enum Actor {
    /// An operator running a CLI command on the server.
    Operator { command: String },
    /// An authenticated API caller.
    Api {
        meta: RequestMeta,
        /// The key's merchant and mode.
        tenant: Tenant,
        key: ApiKeyId,
        /// The key's kind (a publishable key has a CVC share of its own).
        kind: KeyKind,
    },
    /// An API request not (yet) attributed to a key.
    Anonymous { meta: RequestMeta },
    /// The gateway itself, in a background task (e.g. expiring challenges).
    System { task: &'static str },
}

impl Actor {
    /// An audit event stamped with this actor's identity and request facts.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(action, outcome);
        match self {
            Actor::Operator { command } => {
                e.user_agent = Some(format!("paywarden-cli {command}"));
            }
            Actor::Api { meta, tenant, key, .. } => {
                stamp_request(&mut e, meta);
                e.merchant_id = Some(tenant.merchant().to_string());
                e.mode = Some(tenant.mode());
                e.key_id = Some(key.to_string());
            }
            Actor::Anonymous { meta } => stamp_request(&mut e, meta),
            Actor::System { task } => {
                e.user_agent = Some(format!("paywarden-system {task}"));
            }
        }
        e
    }

    /// The publishable key acting, if the actor is one.
    pub fn publishable_key(&self) -> Option<&ApiKeyId> {
        match self {
            Actor::Api {
                key,
                kind: KeyKind::Publishable,
                ..
            } => Some(key),
            _ => None,
        }
    }
}

fn stamp_request(e: &mut AuditEvent, meta: &RequestMeta) {
    e.request_id = Some(meta.request_id.to_string());
    e.client_ip = Some(meta.client_ip.to_string());
    e.user_agent = meta.user_agent.as_deref().map(AuditEvent::sanitize_user_agent);
}
