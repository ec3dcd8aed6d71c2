//! The fake's vocabulary: a call as received, an answer, the count of state
//! changes, and Stripe's error envelope (`{"error": {"type", "code",
//! "message", ...}}`) for the answers every operation shares.

use serde_json::{json, Value};

/// A call as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Every header: lower-case name and value, in order.
    pub headers: Vec<(String, String)>,
    /// Answered from the idempotency store.
    pub replayed: bool,
    /// What the ledger answered (status and JSON), before any fault.
    pub answer: Option<(u16, String)>,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// An answer: status, JSON body, whether it was replayed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

/// How many times each operation changed the fake's state (replays and
/// refusals do not count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub payment_methods: usize,
    pub intents: usize,
    pub confirms: usize,
    pub captures: usize,
    pub cancels: usize,
    pub refunds: usize,
}

pub const CREATED: i64 = 1_700_000_000;

pub fn error(status: u16, error: Value) -> Answer {
    Answer {
        status,
        body: json!({ "error": error }).to_string(),
        replayed: false,
    }
}

pub fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        body: body.to_string(),
        replayed: false,
    }
}

pub fn invalid(code: &str, message: &str) -> Answer {
    error(
        400,
        json!({"type": "invalid_request_error", "code": code, "message": message}),
    )
}

pub fn missing(id: &str) -> Answer {
    error(
        404,
        json!({"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such payment_intent: '{id}'")}),
    )
}

pub fn unknown_parameter(call: &Call, allowed: &[&str]) -> Option<Answer> {
    call.form
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, _)| {
            error(
                400,
                json!({"type": "invalid_request_error", "code": "parameter_unknown", "param": k,
                   "message": format!("Received unknown parameter: {k}")}),
            )
        })
}
