//! The one error type of the services layer. Each variant says what the client
//! may be told; the `Internal` detail goes to the log only.

use crate::domain::random::RandomError;
pub use crate::store::fault::{Fault, FaultKind};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The resource does not exist *for this merchant* (another merchant's
    /// resource is reported exactly like a missing one).
    #[error("no such {resource}")]
    NotFound {
        resource: &'static str,
        param: &'static str,
    },
    /// A well-formed reference in the request body to an object the request
    /// uses (the card of `payment_method`) names no object of this merchant;
    /// another merchant's object is reported alike. Not a 404: the request's
    /// own target (the payment being confirmed) exists, and a 404 would say it
    /// does not. (A refund's `payment` is its parent, as a path segment would
    /// be, and stays a `NotFound`.)
    #[error("no such {resource}")]
    ReferenceNotFound {
        resource: &'static str,
        param: &'static str,
    },
    /// Input parsed but is not acceptable.
    #[error("{message}")]
    Invalid {
        param: String,
        code: &'static str,
        message: String,
    },
    /// The request conflicts with the resource's current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A well-formed amount is more than the resource's current balance allows
    /// (what is left to refund or to capture): a conflict with its state, not
    /// bad input, since the same request may succeed against another object.
    #[error("{message}")]
    ExceedsBalance {
        param: &'static str,
        code: &'static str,
        message: String,
    },
    /// The processor or issuer refused the operation (a card error).
    #[error("{message}")]
    Declined { code: &'static str, message: String },
    /// The processor could not be reached or failed; nothing was changed.
    /// `detail` is for the operator's log only.
    #[error("processor unavailable: {detail}")]
    ProcessorUnavailable { detail: String },
    /// A call to the processor timed out and the processor could not say
    /// whether it acted; the payment stays claimed until the claim expires.
    #[error("the {operation} outcome at the processor is unknown")]
    OutcomeUnknown {
        operation: &'static str,
        retry_after: std::time::Duration,
    },
    /// Too many requests of this kind; try again later.
    #[error("{message}")]
    RateLimited { message: String },
    /// The calling key's limits (maximum amount, allowed currencies) refuse
    /// this movement of money; nothing was changed. `amount_param` names the
    /// request field that carried the amount.
    #[error("{violation}")]
    KeyLimit {
        violation: crate::domain::restrictions::RestrictionViolation,
        amount_param: &'static str,
    },
    #[error("vault failure: {0}")]
    Vault(#[from] crate::vault::VaultError),
    /// Storage cannot take or confirm a change now (full, unreachable, no
    /// answer in time, or the outcome of a sent commit unknown); a retry
    /// with the same idempotency key can succeed or learn the outcome.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(Fault),
    /// Any other storage failure (corrupt data, a broken invariant).
    #[error("storage failure: {0}")]
    Store(StoreError),
    #[error("random source failure")]
    Random(#[from] RandomError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(fault) => ServiceError::StorageUnavailable(fault),
            other => ServiceError::Store(other),
        }
    }
}

impl ServiceError {
    pub fn invalid(param: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            param: param.into(),
            code,
            message: message.into(),
        }
    }
}
