//! A `payments` row and its mapping to and from [`Payment`]: the only place
//! that knows how a payment is laid out in columns. A row that does not parse
//! into a payment is `StoreError::Corrupt`.

use std::net::IpAddr;

use crate::domain::api_key::Mode;
use crate::domain::ids::{MerchantId, PaymentId, TokenId};
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::{
    CancellationReason, CaptureMethod, Claim, Decline, NextAction, Payment, PaymentDraft, PaymentStatus, StoredParts,
};
use crate::domain::payment_fields::{CustomerEmail, Description, Metadata, ReturnUrl};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::write_op::Value;
use crate::store::StoreError;

use super::history::{history_column, parse_history};

/// The columns of a payment, in the order of [`PaymentRow`] and of the
/// values of [`insert_values`] (written once: every statement uses it).
macro_rules! payment_columns {
    () => {
        "id, merchant_id, mode, status, amount, currency, capture_method, payment_method, amount_capturable, \
         amount_received, amount_refunded, description, metadata, customer_ip, customer_email, return_url, \
         connector, processor_reference, decline_code, failure_code, failure_message, next_action, \
         action_expires_at, cancellation_reason, idempotency_key, version, created_at, updated_at, history, claim, risk, sca"
    };
}
pub(super) use payment_columns;

/// A payment row as stored. Money columns are minor units of `currency`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct PaymentRow {
    id: String,
    merchant_id: String,
    mode: String,
    status: String,
    amount: i64,
    currency: String,
    capture_method: String,
    payment_method: Option<String>,
    amount_capturable: i64,
    amount_received: i64,
    amount_refunded: i64,
    description: Option<String>,
    /// JSON object of strings.
    metadata: String,
    customer_ip: Option<String>,
    customer_email: Option<String>,
    return_url: Option<String>,
    connector: String,
    processor_reference: Option<String>,
    decline_code: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    /// JSON ([`StoredAction`]), while the customer has something to do.
    next_action: Option<String>,
    action_expires_at: Option<i64>,
    cancellation_reason: Option<String>,
    idempotency_key: Option<String>,
    version: i64,
    created_at: i64,
    updated_at: i64,
    /// See `history`.
    history: String,
    claim: Option<String>,
    /// JSON (`risk`), once the fraud rules screened it.
    risk: Option<String>,
    /// JSON (`sca`), once a confirm decided SCA.
    sca: Option<String>,
}

/// A [`PaymentRow`] from a result row of a driver other than sqlx, whose
/// columns are [`payment_columns`] in order: `$get` is the driver's typed
/// getter by index.
macro_rules! payment_row_from {
    ($row:ident . $get:ident) => {
        PaymentRow {
            id: $row.$get(0)?,
            merchant_id: $row.$get(1)?,
            mode: $row.$get(2)?,
            status: $row.$get(3)?,
            amount: $row.$get(4)?,
            currency: $row.$get(5)?,
            capture_method: $row.$get(6)?,
            payment_method: $row.$get(7)?,
            amount_capturable: $row.$get(8)?,
            amount_received: $row.$get(9)?,
            amount_refunded: $row.$get(10)?,
            description: $row.$get(11)?,
            metadata: $row.$get(12)?,
            customer_ip: $row.$get(13)?,
            customer_email: $row.$get(14)?,
            return_url: $row.$get(15)?,
            connector: $row.$get(16)?,
            processor_reference: $row.$get(17)?,
            decline_code: $row.$get(18)?,
            failure_code: $row.$get(19)?,
            failure_message: $row.$get(20)?,
            next_action: $row.$get(21)?,
            action_expires_at: $row.$get(22)?,
            cancellation_reason: $row.$get(23)?,
            idempotency_key: $row.$get(24)?,
            version: $row.$get(25)?,
            created_at: $row.$get(26)?,
            updated_at: $row.$get(27)?,
            history: $row.$get(28)?,
            claim: $row.$get(29)?,
            risk: $row.$get(30)?,
            sca: $row.$get(31)?,
        }
    };
}

impl PaymentRow {
    /// From rusqlite (the inline SQLite read path).
    pub(super) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(payment_row_from!(row.get))
    }

    /// From tokio-postgres (the PostgreSQL hot read path).
    pub(super) fn from_postgres(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(payment_row_from!(row.try_get))
    }
}

/// The `next_action` column: exactly the JSON merchants see.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAction<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    url: String,
    return_url: Option<String>,
    /// Seconds since the epoch.
    expires_at: i64,
}

const REDIRECT: &str = "redirect_to_url";

fn corrupt(column: &str) -> StoreError {
    StoreError::Corrupt(format!("payments.{column}"))
}

impl TryFrom<PaymentRow> for Payment {
    type Error = StoreError;

    fn try_from(row: PaymentRow) -> Result<Self, StoreError> {
        let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
        let money = Money {
            amount: MinorUnits::parse(row.amount, i64::MAX).map_err(|_| corrupt("amount"))?,
            currency: Currency::parse(&row.currency).map_err(|_| corrupt("currency"))?,
        };
        let metadata: Metadata = serde_json::from_str(&row.metadata).map_err(|_| corrupt("metadata"))?;
        let customer_ip = row
            .customer_ip
            .as_deref()
            .map(|ip| ip.parse::<IpAddr>().map_err(|_| corrupt("customer_ip")))
            .transpose()?;
        let decline = match (row.decline_code, row.failure_code, row.failure_message) {
            (None, None, None) => None,
            (Some(code), Some(same), Some(message)) if code == same => Some(Decline { code, message }),
            _ => return Err(corrupt("decline_code")),
        };
        let next_action = match row.next_action.as_deref() {
            None => None,
            Some(json) => {
                let stored: StoredAction<'_> = serde_json::from_str(json).map_err(|_| corrupt("next_action"))?;
                if stored.kind != REDIRECT {
                    return Err(corrupt("next_action"));
                }
                let expires_at = row
                    .action_expires_at
                    .unwrap_or_else(|| stored.expires_at.saturating_mul(1000));
                Some(NextAction {
                    url: stored.url,
                    return_url: stored.return_url,
                    expires_at: Timestamp::from_millis(expires_at),
                })
            }
        };
        let draft = PaymentDraft {
            id: PaymentId::from_trusted(row.id),
            tenant: Tenant::new(MerchantId::from_trusted(row.merchant_id), mode),
            money,
            capture_method: CaptureMethod::parse(&row.capture_method).ok_or_else(|| corrupt("capture_method"))?,
            payment_method: row.payment_method.map(TokenId::from_trusted),
            description: row.description.map(Description::from_trusted),
            metadata,
            customer_ip,
            customer_email: row.customer_email.map(CustomerEmail::from_trusted),
            return_url: row.return_url.map(ReturnUrl::from_trusted),
            connector: row.connector,
            idempotency_key: row.idempotency_key,
        };
        let parts = StoredParts {
            status: PaymentStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            amount_capturable: row.amount_capturable,
            amount_received: row.amount_received,
            amount_refunded: row.amount_refunded,
            processor_reference: row.processor_reference,
            decline,
            next_action,
            cancellation_reason: row
                .cancellation_reason
                .as_deref()
                .map(|r| CancellationReason::parse(r).ok_or_else(|| corrupt("cancellation_reason")))
                .transpose()?,
            claim: row
                .claim
                .as_deref()
                .map(|c| Claim::parse(c).ok_or_else(|| corrupt("claim")))
                .transpose()?,
            version: row.version,
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            history: parse_history(&row.history)?,
        };
        let mut payment = Payment::restore(draft, parts).ok_or_else(|| corrupt("amounts"))?;
        payment.risk = super::risk::parse_risk(row.risk.as_deref())?;
        payment.sca = super::sca::parse_sca(row.sca.as_deref())?;
        Ok(payment)
    }
}

/// The columns a change of a payment can write, as values.
pub(super) struct Mutable {
    pub status: Value,
    pub payment_method: Value,
    pub amount_capturable: Value,
    pub amount_received: Value,
    pub processor_reference: Value,
    pub decline_code: Value,
    pub failure_code: Value,
    pub failure_message: Value,
    pub next_action: Value,
    pub action_expires_at: Value,
    pub cancellation_reason: Value,
    pub version: Value,
    pub updated_at: Value,
    pub history: Value,
    pub claim: Value,
    pub risk: Value,
    pub sca: Value,
}

pub(super) fn mutable(p: &Payment) -> Result<Mutable, StoreError> {
    let state = p.state();
    let (next_action, action_expires_at) = match p.next_action() {
        Some(a) => {
            let stored = StoredAction {
                kind: REDIRECT,
                url: a.url.clone(),
                return_url: a.return_url.clone(),
                expires_at: a.expires_at.as_secs(),
            };
            let json = serde_json::to_string(&stored).map_err(|_| corrupt("next_action"))?;
            (Some(json), Some(a.expires_at.as_millis()))
        }
        None => (None, None),
    };
    let decline = p.decline.as_ref();
    Ok(Mutable {
        status: state.status.as_str().into(),
        payment_method: p.payment_method.as_ref().map(TokenId::as_str).into(),
        amount_capturable: state.amount_capturable.into(),
        amount_received: state.amount_received.into(),
        processor_reference: (&p.processor_reference).into(),
        decline_code: decline.map(|d| d.code.as_str()).into(),
        failure_code: decline.map(|d| d.code.as_str()).into(),
        failure_message: decline.map(|d| d.message.as_str()).into(),
        next_action: next_action.into(),
        action_expires_at: action_expires_at.into(),
        cancellation_reason: p.cancellation_reason().map(CancellationReason::as_str).into(),
        version: p.version.into(),
        updated_at: p.updated_at.as_millis().into(),
        history: history_column(p.history())?.into(),
        claim: p.claim.map(Claim::as_str).into(),
        risk: super::risk::risk_column(p.risk.as_ref())?.into(),
        sca: super::sca::sca_column(p.sca.as_ref())?.into(),
    })
}

/// Every column of `p`, in the order of [`payment_columns`].
pub(super) fn insert_values(p: &Payment) -> Result<Vec<Value>, StoreError> {
    let m = mutable(p)?;
    let money = p.money();
    Ok(vec![
        p.id.as_str().into(),
        p.tenant.merchant_str().into(),
        p.tenant.mode_str().into(),
        m.status,
        money.amount.get().into(),
        money.currency.code().into(),
        p.capture_method().as_str().into(),
        m.payment_method,
        m.amount_capturable,
        m.amount_received,
        p.state().amount_refunded.into(),
        p.description.as_ref().map(Description::as_str).into(),
        serde_json::to_string(&p.metadata)
            .map_err(|_| corrupt("metadata"))?
            .into(),
        p.customer_ip.map(|ip| ip.to_string()).into(),
        p.customer_email.as_ref().map(CustomerEmail::as_str).into(),
        p.return_url.as_ref().map(ReturnUrl::as_str).into(),
        (&p.connector).into(),
        m.processor_reference,
        m.decline_code,
        m.failure_code,
        m.failure_message,
        m.next_action,
        m.action_expires_at,
        m.cancellation_reason,
        (&p.idempotency_key).into(),
        m.version,
        p.created_at.as_millis().into(),
        m.updated_at,
        m.history,
        m.claim,
        m.risk,
        m.sca,
    ])
}
