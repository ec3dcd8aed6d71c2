//! The authorization flow of a confirmed payment: what each processor answer
//! does to it. Every answer (approval, decline, challenge, timeout, failure)
//! becomes a state of the payment; none is an error of the request.

use crate::connectors::{
    Authentication, AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, CardDetails, Connector, ConnectorError,
    DeclineCode, RemoteStatus,
};
use crate::domain::event::EventType;
use crate::domain::ids::PaymentId;
use crate::domain::money::MinorUnits;
use crate::domain::payment::{CaptureMethod, Decline, NextAction};
use crate::domain::payment_fields::ReturnUrl;
use crate::domain::random;
use crate::services::connections::failover::FailoverRoute;
use std::sync::Arc;

use super::change::Change;
use super::PaymentPolicy;

/// Authorizes a payment in `processing` (and captures it when its capture
/// method is automatic), recording every attempt.
///
/// An authorization that could not reach the processor at all
/// (`ConnectorError::Unavailable`: nothing was sent, so nothing was
/// authorized) goes to the connection's fallback when `failover` names one;
/// a decline or an unknown outcome never does.
pub(super) async fn authorize(
    policy: &PaymentPolicy,
    connector: &dyn Connector,
    change: &mut Change,
    card: &CardDetails,
    authentication: Option<&Authentication>,
    failover: Option<&dyn FailoverRoute>,
) {
    if card.expiry.is_expired(change.now) {
        fail(change, "authorize", DeclineCode::ExpiredCard);
        return;
    }
    let payment = change.payment.id.clone();
    let customer_ip = change.payment.customer_ip.map(|ip| ip.to_string());
    // A payment the fraud rules hold for review is not captured at once.
    let at_once = change.payment.capture_method() == CaptureMethod::Automatic
        && !change.payment.risk.as_ref().is_some_and(|r| r.held_for_review());
    let request = AuthorizeRequest {
        payment: &payment,
        mode: change.payment.tenant.mode(),
        money: change.payment.money(),
        card,
        authentication,
        customer_ip: customer_ip.as_deref(),
        capture_at_once: at_once,
    };
    let mut outcome = match connector.authorize(request).await {
        Err(ConnectorError::Timeout) => after_timeout(connector, &payment).await,
        other => other,
    };
    let mut rerouted: Option<Arc<dyn Connector>> = None;
    if let (Err(ConnectorError::Unavailable(reason)), Some(failover)) = (&outcome, failover) {
        let from = change.payment.connector.clone();
        let tenant = change.payment.tenant.clone();
        if let Some((name, fallback)) = failover.route(&tenant, &payment, &from).await {
            tracing::warn!(payment = %payment, from = %from, to = %name, reason = %reason, "processor unreachable; authorization failed over");
            change.attempt(
                "authorize",
                "failover",
                Some(format!("{from} unreachable; sent to {name}")),
            );
            change.payment.connector = name;
            let request = AuthorizeRequest {
                payment: &payment,
                mode: tenant.mode(),
                money: change.payment.money(),
                card,
                authentication,
                customer_ip: customer_ip.as_deref(),
                capture_at_once: at_once,
            };
            outcome = match fallback.authorize(request).await {
                Err(ConnectorError::Timeout) => after_timeout(fallback.as_ref(), &payment).await,
                other => other,
            };
            rerouted = Some(fallback);
        }
    }
    let connector: &dyn Connector = rerouted.as_deref().unwrap_or(connector);
    match outcome {
        Ok(AuthorizeOutcome::Approved { reference }) => {
            change.payment.processor_reference = Some(reference.clone());
            if change.apply(|p, at| p.authorize(at)).is_err() {
                return;
            }
            // A payment the fraud rules hold for review stays authorized,
            // uncaptured, until someone decides.
            let held = change.payment.risk.as_ref().is_some_and(|r| r.held_for_review());
            if held {
                change.events.push(EventType::ReviewOpened);
            } else if change.payment.capture_method() == CaptureMethod::Automatic {
                capture_at_once(connector, change, &reference).await;
            }
        }
        Ok(AuthorizeOutcome::Declined { code, reference }) => {
            change.payment.processor_reference = reference;
            fail(change, "authorize", code);
        }
        Ok(AuthorizeOutcome::ChallengeRequired { reference }) => challenge(policy, change, Some(reference)),
        Err(e) => {
            tracing::warn!(payment = %change.payment.id, connector = connector.name(), error = %e, "authorization failed");
            crate::metrics::process().connector_error(connector.name(), "authorize", e.kind());
            fail(change, "authorize", e.decline_code());
        }
    }
}

/// A timed-out authorization may still have happened: ask the processor
/// before giving up, so an approval is never lost (nor left dangling).
async fn after_timeout(connector: &dyn Connector, payment: &PaymentId) -> Result<AuthorizeOutcome, ConnectorError> {
    match connector.sync(payment).await {
        // A processor that captures in the authorizing call (when the core
        // asked for it) reports the payment captured: it was approved, and
        // the capture that follows finds it done.
        Ok(RemoteStatus::Authorized { reference } | RemoteStatus::Captured { reference, .. }) => {
            Ok(AuthorizeOutcome::Approved { reference })
        }
        _ => Err(ConnectorError::Timeout),
    }
}

async fn capture_at_once(connector: &dyn Connector, change: &mut Change, reference: &str) {
    let Ok(amount) = MinorUnits::parse(change.payment.state().amount_capturable, i64::MAX) else {
        return;
    };
    match connector.capture(reference, change.payment.money()).await {
        Ok(CaptureOutcome::Captured) => {
            let _ = change.apply(|p, at| p.capture(amount, at));
        }
        Ok(CaptureOutcome::Failed { code }) => {
            // Release the hold rather than leave an authorization nobody captures.
            let _ = connector.void(reference).await;
            fail(change, "capture", code);
        }
        Err(e) => {
            tracing::warn!(payment = %change.payment.id, connector = connector.name(), error = %e, "capture failed");
            crate::metrics::process().connector_error(connector.name(), "capture", e.kind());
            let _ = connector.void(reference).await;
            fail(change, "capture", e.decline_code());
        }
    }
}

/// The issuer (or, without a `reference`, the merchant's fraud rules) wants
/// the customer: the payment waits in `requires_action` with a link to the
/// challenge page, until answered or expired.
pub(super) fn challenge(policy: &PaymentPolicy, change: &mut Change, reference: Option<String>) {
    let Ok(secret) = random::base62_string(32) else {
        fail(change, "authorize", DeclineCode::ProcessingError);
        return;
    };
    let action = NextAction {
        url: format!(
            "{}/sandbox/3ds/{}?challenge={secret}",
            policy.public_url.trim_end_matches('/'),
            change.payment.id
        ),
        return_url: change
            .payment
            .return_url
            .as_ref()
            .map(|u| ReturnUrl::as_str(u).to_owned()),
        expires_at: change.now.saturating_add(policy.challenge_ttl),
    };
    if reference.is_some() {
        change.payment.processor_reference = reference;
    }
    let _ = change.apply(|p, at| p.require_action(action, at));
}

/// Fails the payment with `code`, recorded as the outcome of `action`.
pub(super) fn fail(change: &mut Change, action: &str, code: DeclineCode) {
    let outcome = if matches!(
        code,
        DeclineCode::ProcessingError
            | DeclineCode::ProcessorTimeout
            | DeclineCode::ConnectorError
            | DeclineCode::ConnectorConfiguration
            | DeclineCode::ProcessorUnavailable
    ) {
        "error"
    } else {
        "declined"
    };
    change.attempt(action, outcome, Some(code.as_str().to_owned()));
    let _ = change.apply(|p, at| p.fail(decline(code), code.as_str().to_owned(), at));
}

/// The payment's record of a decline.
pub(super) fn decline(code: DeclineCode) -> Decline {
    Decline {
        code: code.as_str().to_owned(),
        message: code.message().to_owned(),
    }
}
