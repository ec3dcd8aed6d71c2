//! Finding one of the gateway's refunds at Stripe after its outcome was
//! lost (a timeout, a crash): `GET /v1/refunds?payment_intent=…` lists the
//! intent's refunds, newest first, and the one whose
//! `metadata[paywarden_refund]` is the gateway's refund id is it (every
//! refund the connector makes carries that id).
//!
//! Invariant: "not found" is said only when Stripe listed every refund of
//! the intent; a longer list than one page answers an error, so the job asks
//! again rather than fail a refund that may exist.

use super::api::{segment, Answer, Request};
use super::mapping::error_answer;
use super::webhook::REFUND_METADATA;
use super::wire::{RefundList, RefundStatus};
use super::Stripe;
use crate::connectors::{ConnectorError, FoundRefund, RemoteRefund};
use crate::domain::ids::RefundId;

/// Stripe's largest page.
const PAGE: u32 = 100;

impl Stripe {
    pub(super) async fn find_refund(
        &self,
        reference: &str,
        refund: &RefundId,
    ) -> Result<Option<FoundRefund>, ConnectorError> {
        let intent = segment(reference)?;
        let request = Request::get("/v1/refunds".into())
            .query("payment_intent", intent.to_owned())
            .query("limit", PAGE.to_string());
        let list = match self.api.call::<RefundList>(request).await? {
            Answer::Ok(list) => list,
            Answer::Failed { status, error } => return Err(error_answer(status, error.as_ref(), false)),
        };
        let found = list
            .data
            .into_iter()
            .find(|r| r.metadata.get(REFUND_METADATA).map(String::as_str) == Some(refund.as_str()));
        match found {
            Some(r) => Ok(Some(FoundRefund {
                state: match r.status {
                    Some(RefundStatus::Succeeded) => RemoteRefund::Succeeded,
                    Some(RefundStatus::Failed | RefundStatus::Canceled) => RemoteRefund::Failed,
                    _ => RemoteRefund::Pending,
                },
                processor_refund: r.id,
            })),
            None if list.has_more => Err(ConnectorError::Unavailable(
                "the payment intent has more refunds than one page".into(),
            )),
            None => Ok(None),
        }
    }
}
