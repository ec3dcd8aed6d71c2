//! The payment operations against PayPal: authorize (create the order, then
//! authorize or capture it with the vault's card as `payment_source.card`),
//! capture, void, refund, and sync.
//!
//! The reference the core keeps for a payment is the PayPal **order id**:
//! capture, void and refund read the order first to find its authorization
//! or capture (PayPal's ids for those are not the order's), which also makes
//! them safe to repeat (an order already captured is not captured again).
//!
//! Invariants: every POST's `PayPal-Request-Id` is derived from our payment
//! or refund id (or the order's) and the step, so a retried call is the same
//! call; the card leaves the vault's types only into the zeroizing body of
//! the authorize (or capture) call; the order exists, and its id is
//! remembered for `sync`, before that call is made.

use serde::de::IgnoredAny;
use serde_json::json;

use super::api::{request_id, segment, Answer, Request};
use super::mapping::{decline_of_issue, decline_of_response_code, error_answer, is_configuration};
use super::wire::{Amount, ApiError, CardSource, JsonBody, Order, PaymentSource, Transaction, WithPaymentSource};
use super::Paypal;
use crate::connectors::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, ConnectorError, DeclineCode, RefundOutcome, RemoteStatus,
};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

fn body(value: &serde_json::Value) -> Result<JsonBody, ConnectorError> {
    JsonBody::of(value).map_err(|_| ConnectorError::Rejected("the PayPal request could not be encoded".into()))
}

fn is_one_of(t: &Transaction, states: &[&str]) -> bool {
    states.contains(&t.status())
}

impl Paypal {
    pub(super) async fn authorize_order(
        &self,
        request: AuthorizeRequest<'_>,
    ) -> Result<AuthorizeOutcome, ConnectorError> {
        self.check_mode(request.mode)?;
        let payment = request.payment.as_str();
        let (intent, step) = if request.capture_at_once {
            ("CAPTURE", "capture")
        } else {
            ("AUTHORIZE", "authorize")
        };
        let order = json!({
            "intent": intent,
            "purchase_units": [{
                "reference_id": "default",
                "custom_id": payment,
                "amount": Amount::of(request.money),
            }],
        });
        let created = self
            .api
            .call::<Order>(&Request::post(
                "/v2/checkout/orders".into(),
                body(&order)?,
                request_id(payment, "order"),
            ))
            .await?;
        let order = match created {
            Answer::Ok(order) => order,
            Answer::Failed { status, error } => return Err(error_answer(status, error.as_ref(), true)),
        };
        self.references.record(payment, &order.id);
        let card = request.card;
        let source = WithPaymentSource {
            payment_source: PaymentSource {
                card: CardSource {
                    number: card.number.expose_digits(),
                    expiry: format!("{:04}-{:02}", card.expiry.year(), card.expiry.month()),
                    security_code: card.cvc.as_ref().map(|c| c.expose()),
                    name: card.name.as_ref().map(secrecy::ExposeSecret::expose_secret),
                },
            },
        };
        let source = JsonBody::of(&source)
            .map_err(|_| ConnectorError::Rejected("the PayPal request could not be encoded".into()))?;
        let id = segment(&order.id)?;
        let answer = self
            .api
            .call::<Order>(&Request::post(
                format!("/v2/checkout/orders/{id}/{step}"),
                source,
                request_id(payment, step),
            ))
            .await?;
        match answer {
            Answer::Ok(order) => outcome_of(&order, request.capture_at_once),
            Answer::Failed { status, error } => self.refused(id, status, error, request.capture_at_once).await,
        }
    }

    /// An authorize (or capture) call PayPal refused: a card decline, the
    /// account's configuration, an order already done (a retry after PayPal
    /// forgot the request id: the order tells), or an error.
    async fn refused(
        &self,
        order: &str,
        status: u16,
        error: Option<ApiError>,
        capture_at_once: bool,
    ) -> Result<AuthorizeOutcome, ConnectorError> {
        if is_configuration(status, error.as_ref()) {
            return Err(error_answer(status, error.as_ref(), true));
        }
        let issue = error.as_ref().and_then(ApiError::issue);
        if matches!(issue, Some("ORDER_ALREADY_AUTHORIZED" | "ORDER_ALREADY_CAPTURED")) {
            return match self.order(order).await? {
                Some(order) => outcome_of(&order, capture_at_once),
                None => Err(ConnectorError::Timeout),
            };
        }
        match issue.and_then(decline_of_issue) {
            Some(code) if matches!(status, 400 | 422) => Ok(AuthorizeOutcome::Declined {
                code,
                reference: Some(order.to_owned()),
            }),
            _ => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    /// The order `id`, or `None` if PayPal has none.
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        let answer = self
            .api
            .call::<Order>(&Request::get(format!("/v2/checkout/orders/{}", segment(id)?)))
            .await?;
        match answer {
            Answer::Ok(order) => Ok(Some(order)),
            Answer::Failed { status: 404, .. } => Ok(None),
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), false)),
        }
    }

    pub(super) async fn known_order(&self, reference: &str) -> Result<Order, ConnectorError> {
        self.order(reference)
            .await?
            .ok_or_else(|| ConnectorError::Rejected("PayPal has no order of this reference".into()))
    }

    pub(super) async fn capture_order(&self, reference: &str, amount: Money) -> Result<CaptureOutcome, ConnectorError> {
        let order = self.known_order(reference).await?;
        let payments = order.payments();
        let captured = ["COMPLETED", "PENDING", "PARTIALLY_REFUNDED", "REFUNDED"];
        if payments.is_some_and(|p| p.captures.iter().any(|c| is_one_of(c, &captured))) {
            return Ok(CaptureOutcome::Captured);
        }
        let failed = Ok(CaptureOutcome::Failed {
            code: DeclineCode::CaptureFailed,
        });
        let Some(authorization) = payments.and_then(|p| p.authorizations.first()) else {
            return failed;
        };
        if !is_one_of(authorization, &["CREATED", "PARTIALLY_CAPTURED"]) {
            return failed;
        }
        let capture = json!({"amount": Amount::of(amount), "final_capture": true});
        let answer = self
            .api
            .call::<Transaction>(&Request::post(
                format!("/v2/payments/authorizations/{}/capture", segment(&authorization.id)?),
                body(&capture)?,
                request_id(segment(&order.id)?, "capture"),
            ))
            .await?;
        match answer {
            Answer::Ok(capture) if is_one_of(&capture, &["COMPLETED", "PENDING"]) => Ok(CaptureOutcome::Captured),
            Answer::Ok(capture) if is_one_of(&capture, &["DECLINED", "FAILED"]) => Ok(CaptureOutcome::Failed {
                code: DeclineCode::CaptureFailed,
            }),
            Answer::Ok(_) => Err(ConnectorError::Timeout),
            Answer::Failed { status, error } if status == 422 && !is_configuration(status, error.as_ref()) => failed,
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    pub(super) async fn void_order(&self, reference: &str) -> Result<(), ConnectorError> {
        let order = self.known_order(reference).await?;
        let Some(authorization) = order.payments().and_then(|p| p.authorizations.first()) else {
            return Err(ConnectorError::Rejected(
                "the PayPal order has no authorization to void".into(),
            ));
        };
        match authorization.status() {
            "VOIDED" => return Ok(()),
            "CREATED" | "PENDING" => {}
            _ => {
                return Err(ConnectorError::Rejected(
                    "the PayPal authorization can no longer be voided".into(),
                ))
            }
        }
        let answer = self
            .api
            .call::<IgnoredAny>(&Request::post(
                format!("/v2/payments/authorizations/{}/void", segment(&authorization.id)?),
                body(&json!({}))?,
                request_id(segment(&order.id)?, "void"),
            ))
            .await?;
        match answer {
            Answer::Ok(_) => Ok(()),
            Answer::Failed { error, .. } if error.as_ref().and_then(ApiError::issue) == Some("PREVIOUSLY_VOIDED") => {
                Ok(())
            }
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    pub(super) async fn refund_order(
        &self,
        reference: &str,
        refund: &RefundId,
        amount: Money,
    ) -> Result<RefundOutcome, ConnectorError> {
        let failed = Ok(RefundOutcome::Failed {
            code: DeclineCode::RefundFailed,
        });
        let order = self.known_order(reference).await?;
        let refundable = ["COMPLETED", "PARTIALLY_REFUNDED"];
        let Some(capture) = order
            .payments()
            .and_then(|p| p.captures.iter().find(|c| is_one_of(c, &refundable)))
        else {
            return failed;
        };
        let request = json!({"amount": Amount::of(amount), "custom_id": refund.as_str()});
        let answer = self
            .api
            .call::<Transaction>(&Request::post(
                format!("/v2/payments/captures/{}/refund", segment(&capture.id)?),
                body(&request)?,
                request_id(refund.as_str(), "refund"),
            ))
            .await?;
        match answer {
            Answer::Ok(done) if done.status() == "COMPLETED" => Ok(RefundOutcome::Succeeded { reference: done.id }),
            Answer::Ok(done) if is_one_of(&done, &["CANCELLED", "FAILED"]) => failed,
            // Accepted but not settled (PENDING): unknown, reconciled later,
            // never taken for a success or a failure on a guess.
            Answer::Ok(_) => Err(ConnectorError::Timeout),
            Answer::Failed { status, error }
                if matches!(status, 400 | 422) && !is_configuration(status, error.as_ref()) =>
            {
                failed
            }
            Answer::Failed { status, error } => Err(error_answer(status, error.as_ref(), true)),
        }
    }

    pub(super) async fn sync_payment(&self, payment: &PaymentId) -> Result<RemoteStatus, ConnectorError> {
        // PayPal has no search of orders by our id: only an order this
        // process created can be asked about (see the module's choices).
        let Some(order) = self.references.get(payment.as_str()) else {
            return Err(ConnectorError::Unavailable(
                "the PayPal order of this payment is not known to this gateway process".into(),
            ));
        };
        match self.order(&order).await? {
            Some(order) => remote_status(&order).ok_or(ConnectorError::Timeout),
            None => Ok(RemoteStatus::NotFound),
        }
    }
}

/// What an authorized (or captured) order means for the authorization.
fn outcome_of(order: &Order, capture_at_once: bool) -> Result<AuthorizeOutcome, ConnectorError> {
    let reference = order.id.clone();
    let payments = order.payments();
    let transaction = if capture_at_once {
        payments.and_then(|p| p.captures.first())
    } else {
        payments.and_then(|p| p.authorizations.first())
    };
    let Some(transaction) = transaction else {
        return match order.status.as_deref() {
            Some("PAYER_ACTION_REQUIRED") => Ok(AuthorizeOutcome::Declined {
                code: DeclineCode::AuthenticationFailed,
                reference: Some(reference),
            }),
            _ => Err(ConnectorError::Timeout),
        };
    };
    match transaction.status() {
        "CREATED" | "CAPTURED" | "PARTIALLY_CAPTURED" | "COMPLETED" | "PENDING" if capture_at_once => {
            Ok(AuthorizeOutcome::Approved { reference })
        }
        "CREATED" | "CAPTURED" | "PARTIALLY_CAPTURED" => Ok(AuthorizeOutcome::Approved { reference }),
        "DENIED" | "DECLINED" | "FAILED" | "VOIDED" => Ok(AuthorizeOutcome::Declined {
            code: decline_of_response_code(
                transaction
                    .processor_response
                    .as_ref()
                    .and_then(|r| r.response_code.as_deref()),
            ),
            reference: Some(reference),
        }),
        // PENDING (held for PayPal's review) or a state this version does
        // not know: the outcome is not decided, and `sync` will tell.
        _ => Err(ConnectorError::Timeout),
    }
}

/// Where an order stands, in the core's terms; `None` while PayPal is still
/// deciding (a pending authorization).
pub fn remote_status(order: &Order) -> Option<RemoteStatus> {
    let Some(payments) = order.payments() else {
        return Some(RemoteStatus::NotFound);
    };
    let captured: i64 = payments
        .captures
        .iter()
        .filter(|c| is_one_of(c, &["COMPLETED", "PENDING", "PARTIALLY_REFUNDED", "REFUNDED"]))
        .filter_map(|c| c.amount.as_ref().and_then(|a| a.minor_units(None)))
        .sum();
    if captured > 0 {
        return Some(RemoteStatus::Captured {
            reference: order.id.clone(),
            amount: captured,
        });
    }
    match payments.authorizations.first().map(Transaction::status) {
        Some("CREATED") => Some(RemoteStatus::Authorized {
            reference: order.id.clone(),
        }),
        Some("VOIDED") => Some(RemoteStatus::Voided),
        Some("PENDING") => None,
        _ => Some(RemoteStatus::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: serde_json::Value) -> Order {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_orders_payments_say_where_it_stands() {
        let authorized = order(
            json!({"id": "O1", "status": "COMPLETED", "purchase_units": [{"payments": {
            "authorizations": [{"id": "A1", "status": "CREATED", "amount": {"currency_code": "EUR", "value": "20.00"}}]}}]}),
        );
        assert_eq!(
            remote_status(&authorized),
            Some(RemoteStatus::Authorized { reference: "O1".into() })
        );
        assert_eq!(
            outcome_of(&authorized, false),
            Ok(AuthorizeOutcome::Approved { reference: "O1".into() })
        );
        let captured = order(json!({"id": "O2", "purchase_units": [{"payments": {
            "authorizations": [{"id": "A2", "status": "PARTIALLY_CAPTURED"}],
            "captures": [{"id": "C2", "status": "COMPLETED", "amount": {"currency_code": "JPY", "value": "1500"}}]}}]}));
        assert_eq!(
            remote_status(&captured),
            Some(RemoteStatus::Captured {
                reference: "O2".into(),
                amount: 1500
            })
        );
        let denied = order(json!({"id": "O3", "purchase_units": [{"payments": {"authorizations": [
            {"id": "A3", "status": "DENIED", "processor_response": {"response_code": "5120"}}]}}]}));
        assert_eq!(remote_status(&denied), Some(RemoteStatus::NotFound));
        assert_eq!(
            outcome_of(&denied, false),
            Ok(AuthorizeOutcome::Declined {
                code: DeclineCode::InsufficientFunds,
                reference: Some("O3".into())
            })
        );
        let created = order(json!({"id": "O4", "status": "CREATED", "purchase_units": [{}]}));
        assert_eq!(remote_status(&created), Some(RemoteStatus::NotFound));
        assert_eq!(outcome_of(&created, false), Err(ConnectorError::Timeout));
        let pending = order(
            json!({"id": "O5", "purchase_units": [{"payments": {"authorizations": [{"id": "A5", "status": "PENDING"}]}}]}),
        );
        assert_eq!(remote_status(&pending), None);
    }
}
