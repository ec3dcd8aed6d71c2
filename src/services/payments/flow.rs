//! The authorization flow of a confirmed payment: what each processor answer
//! does to it. Every answer (approval, decline, challenge, timeout, failure)
//! becomes a state of the payment; none is an error of the request.

use crate::connectors::{
    Authentication, AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, CardDetails, Connector, ConnectorError,
    DeclineCode, RemoteStatus,
};
use crate::domain::api_key::Mode;
use crate::domain::event::EventType;
use crate::domain::ids::PaymentId;
use crate::domain::payment::{CaptureMethod, Step};
use crate::domain::random;

use super::change::Change;
use super::view::NextActionView;
use super::PaymentPolicy;

/// Authorizes a payment in `processing` (and captures it when its capture
/// method is automatic), recording every attempt.
pub(super) async fn authorize(
    policy: &PaymentPolicy,
    connector: &dyn Connector,
    change: &mut Change,
    card: &CardDetails,
    authentication: Option<&Authentication>,
) {
    if card.expiry.is_expired(change.now) {
        fail(change, "authorize", DeclineCode::ExpiredCard);
        return;
    }
    let payment = PaymentId::from_trusted(change.row.id.clone());
    let mode = if change.row.mode == "live" {
        Mode::Live
    } else {
        Mode::Test
    };
    let request = AuthorizeRequest {
        payment: &payment,
        mode,
        money: change.state.money,
        card,
        authentication,
        customer_ip: change.row.customer_ip.as_deref(),
    };
    let outcome = match connector.authorize(request).await {
        Err(ConnectorError::Timeout) => after_timeout(connector, &payment).await,
        other => other,
    };
    match outcome {
        Ok(AuthorizeOutcome::Approved { reference }) => {
            change.row.processor_reference = Some(reference.clone());
            if change.step(Step::Authorized, "approved", None).is_err() {
                return;
            }
            match change.state.capture_method {
                CaptureMethod::Manual => change.emit(EventType::PaymentAmountCapturableUpdated),
                CaptureMethod::Automatic => capture_at_once(connector, change, &reference).await,
            }
        }
        Ok(AuthorizeOutcome::Declined { code, reference }) => {
            change.row.processor_reference = reference;
            fail(change, "authorize", code);
        }
        Ok(AuthorizeOutcome::ChallengeRequired { reference }) => challenge(policy, change, reference),
        Err(e) => {
            tracing::warn!(payment = %change.row.id, connector = connector.name(), error = %e, "authorization failed");
            let code = match e {
                ConnectorError::Timeout => DeclineCode::ProcessorTimeout,
                _ => DeclineCode::ProcessingError,
            };
            fail(change, "authorize", code);
        }
    }
}

/// A timed-out authorization may still have happened: ask the processor
/// before giving up, so an approval is never lost (nor left dangling).
async fn after_timeout(connector: &dyn Connector, payment: &PaymentId) -> Result<AuthorizeOutcome, ConnectorError> {
    match connector.sync(payment).await {
        Ok(RemoteStatus::Authorized { reference }) => Ok(AuthorizeOutcome::Approved { reference }),
        _ => Err(ConnectorError::Timeout),
    }
}

async fn capture_at_once(connector: &dyn Connector, change: &mut Change, reference: &str) {
    let amount = change.state.amount_capturable;
    match connector.capture(reference, change.state.money).await {
        Ok(CaptureOutcome::Captured) => {
            if change.step(Step::Capture { amount }, "succeeded", None).is_ok() {
                change.emit(EventType::PaymentSucceeded);
            }
        }
        Ok(CaptureOutcome::Failed { code }) => {
            // Release the hold rather than leave an authorization nobody captures.
            let _ = connector.void(reference).await;
            fail(change, "capture", code);
        }
        Err(e) => {
            tracing::warn!(payment = %change.row.id, connector = connector.name(), error = %e, "capture failed");
            let _ = connector.void(reference).await;
            fail(change, "capture", DeclineCode::ProcessingError);
        }
    }
}

/// The issuer wants the customer: the payment waits in `requires_action`
/// with a link to the challenge page, until answered or expired.
fn challenge(policy: &PaymentPolicy, change: &mut Change, reference: String) {
    let Ok(secret) = random::base62_string(32) else {
        fail(change, "authorize", DeclineCode::ProcessingError);
        return;
    };
    let expires = change.now.saturating_add(policy.challenge_ttl);
    let action = NextActionView {
        kind: "redirect_to_url".into(),
        url: format!(
            "{}/sandbox/3ds/{}?challenge={secret}",
            policy.public_url.trim_end_matches('/'),
            change.row.id
        ),
        return_url: change.row.return_url.clone(),
        expires_at: expires.as_secs(),
    };
    let Ok(json) = serde_json::to_string(&action) else {
        fail(change, "authorize", DeclineCode::ProcessingError);
        return;
    };
    change.row.processor_reference = Some(reference);
    if change
        .step(
            Step::RequireAction,
            "challenge_required",
            Some("3-D Secure challenge".into()),
        )
        .is_ok()
    {
        change.row.next_action = Some(json);
        change.row.action_expires_at = Some(expires.as_millis());
        change.emit(EventType::PaymentRequiresAction);
    }
}

/// Fails the payment with `code`, recorded as the outcome of `action`.
fn fail(change: &mut Change, action: &str, code: DeclineCode) {
    let outcome = if code == DeclineCode::ProcessingError || code == DeclineCode::ProcessorTimeout {
        "error"
    } else {
        "declined"
    };
    change.attempt(action, outcome, Some(code.as_str().to_owned()));
    if change
        .step(Step::Fail, "failed", Some(code.as_str().to_owned()))
        .is_ok()
    {
        declined(change, code);
    }
}

/// Marks a failed payment's decline and emits `payment.failed`.
pub(super) fn declined(change: &mut Change, code: DeclineCode) {
    change.row.decline_code = Some(code.as_str().to_owned());
    change.row.failure_code = Some(code.as_str().to_owned());
    change.row.failure_message = Some(code.message().to_owned());
    change.emit(EventType::PaymentFailed);
}
