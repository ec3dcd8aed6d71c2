//! One of the gateway's refunds as PayPal has it, found after the fact (a
//! refund left `pending` when its answer was lost): the order the payment
//! references lists its refunds, each with the `custom_id` the gateway gave
//! it (our refund id).
//!
//! Invariant: a refund is reported only when PayPal has one with our id; a
//! state this version does not know is `Pending`, never settled on a guess.

use super::wire::{Order, Transaction};
use super::Paypal;
use crate::connectors::{ConnectorError, RemoteRefund};
use crate::domain::ids::RefundId;

impl Paypal {
    /// PayPal's id and state of our refund `refund` of the order
    /// `reference`; `None` when PayPal has no such refund. (The body of
    /// `Connector::sync_refund` where the trait has it.)
    pub async fn find_refund(
        &self,
        reference: &str,
        refund: &RefundId,
    ) -> Result<Option<(String, RemoteRefund)>, ConnectorError> {
        let order = self.known_order(reference).await?;
        Ok(found(&order, refund))
    }
}

fn found(order: &Order, refund: &RefundId) -> Option<(String, RemoteRefund)> {
    let ours = |t: &&Transaction| t.custom_id.as_deref() == Some(refund.as_str());
    let transaction = order.payments()?.refunds.iter().find(ours)?;
    let state = match transaction.status() {
        "COMPLETED" => RemoteRefund::Succeeded,
        "FAILED" | "CANCELLED" => RemoteRefund::Failed,
        _ => RemoteRefund::Pending,
    };
    Some((transaction.id.clone(), state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_our_refund_is_found_with_its_state() {
        let refund = RefundId::generate().unwrap();
        let other = RefundId::generate().unwrap();
        let order: Order = serde_json::from_value(json!({"id": "O1", "purchase_units": [{"payments": {"refunds": [
            {"id": "R1", "status": "COMPLETED", "custom_id": other.as_str()},
            {"id": "R2", "status": "PENDING", "custom_id": refund.as_str()}]}}]}))
        .unwrap();
        assert_eq!(found(&order, &refund), Some(("R2".into(), RemoteRefund::Pending)));
        assert_eq!(found(&order, &other), Some(("R1".into(), RemoteRefund::Succeeded)));
        assert_eq!(found(&order, &RefundId::generate().unwrap()), None);
    }
}
