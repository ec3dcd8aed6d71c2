//! The connector a live payment records when its merchant has no live
//! processor connection: every call is refused as a configuration error, so
//! the payment fails with `connector_configuration` and is never sandboxed.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
    InboundHeaders, RefundOutcome, RemoteStatus,
};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::merchant::UNCONFIGURED_CONNECTOR;
use crate::domain::money::Money;

/// No processor: nothing to call, nothing moved.
#[derive(Debug, Default)]
pub struct Unconfigured;

fn refusal() -> ConnectorError {
    ConnectorError::Configuration(
        "the merchant has no processor connection for this mode; create one with POST /v1/connectors \
         (\"default\": true)"
            .into(),
    )
}

impl Connector for Unconfigured {
    fn name(&self) -> &'static str {
        UNCONFIGURED_CONNECTOR
    }

    fn has_external_effects(&self) -> bool {
        false
    }

    fn authorize<'a>(&'a self, _: AuthorizeRequest<'a>) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn capture<'a>(&'a self, _: &'a str, _: Money) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn void<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn refund<'a>(
        &'a self,
        _: &'a str,
        _: &'a RefundId,
        _: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn sync<'a>(&'a self, _: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn sync_refund<'a>(
        &'a self,
        _: &'a str,
        _: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
        async { Err(refusal()) }.boxed()
    }

    fn parse_webhook(&self, _: &InboundHeaders, _: &[u8]) -> Result<InboundEvent, ConnectorError> {
        Err(refusal())
    }
}
