//! How the gateway's objects look outside it: every JSON shape the API
//! answers with, one module per resource. API keys also to the CLI
//! (`--json`); payments, refunds and webhook endpoints also, as the same JSON,
//! in the `data.object` of their events; the event itself also as the body
//! of every webhook delivery. Built from the domain and service types, one
//! definition each: the services and the webhook worker are handed the
//! serializers they need ([`snapshots`], [`webhook_payloads`]) and name no
//! view. The OpenAPI schemas of those types live here too (the domain names
//! no `utoipa`).

pub mod anomalies;
pub mod api_keys;
pub mod connectors;
pub mod events;
pub mod fraud;
pub mod health;
pub mod merchant;
pub mod payments;
pub mod refunds;
pub mod sca;
pub mod tokens;
pub mod webhook_endpoints;

pub use anomalies::AnomalyView;
pub use api_keys::{ApiKeyView, RestrictionsView};
pub use connectors::ConnectorView;
pub use events::{EventData, EventView};
pub use fraud::{
    DecisionChangeView, DecisionCounts, FraudDryRunView, FraudListView, FraudRulesView, RiskView,
    RuleSetVersionSummary, RuleSetVersionView,
};
pub use health::{CheckView, Checks, Health, Readiness};
pub use merchant::MerchantView;
pub use payments::{
    CancellationReasonField, CaptureMethodField, HistoryView, LastErrorView, NextActionView, PaymentView,
};
pub use refunds::RefundView;
pub use sca::{ScaView, ThreeDSecureView};
pub use tokens::{CardView, DeletedToken, RevealedCardDetails, RevealedCardView, TokenView};
pub use webhook_endpoints::{
    DeletedWebhookEndpoint, WebhookAttemptView, WebhookEndpointView, WebhookEndpointWithSecret,
};

/// The views as the payments service writes them into events.
pub fn snapshots() -> crate::services::payments::Snapshots {
    crate::services::payments::Snapshots {
        payment: |payment| serde_json::to_string(&PaymentView::from_payment(payment, false)),
        refund: |refund| serde_json::to_string(&RefundView::from_refund(refund)),
    }
}

/// The views as the webhook worker writes them into deliveries and events.
pub fn webhook_payloads() -> crate::webhooks::payload::Payloads {
    crate::webhooks::payload::Payloads {
        event: events::event_body,
        endpoint: webhook_endpoints::endpoint_json,
    }
}
