//! What the fake Stripe does with a call: PaymentMethods, PaymentIntents
//! (create, confirm, capture, cancel, retrieve, search) and Refunds, with
//! Stripe's test cards, its JSON shapes (API 2023-08-16; field names checked
//! against the spec subset by `stripe_spec`), its error envelope, and its
//! idempotency: a POST whose `Idempotency-Key` was seen gets the first
//! answer again (`Idempotent-Replayed: true`), or an `idempotency_error` if
//! its parameters differ.
//!
//! It is stricter than Stripe where that catches a connector bug: a POST
//! without `Idempotency-Key`, any call without `Stripe-Version`, or an
//! unknown parameter is refused with a 400.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::wire::{error, invalid, missing, ok, unknown_parameter, Answer, Applied, Call, CREATED};

struct Intent {
    id: String,
    amount: i64,
    currency: String,
    status: &'static str,
    payment_method: Option<String>,
    metadata: Value,
    amount_received: i64,
    amount_refunded: i64,
    latest_charge: Option<String>,
    next_action: Value,
    last_payment_error: Value,
    payment_method_types: Vec<String>,
}

#[derive(Default)]
pub struct Ledger {
    next: u64,
    /// PaymentMethod id → card number.
    methods: HashMap<String, String>,
    intents: HashMap<String, Intent>,
    /// Every refund made, oldest first (Stripe lists them newest first).
    refunds: Vec<Value>,
    idempotency: HashMap<String, (String, Answer)>,
    pub applied: Applied,
    /// Answer PaymentMethod creation as an account without raw card data
    /// access does.
    pub refuse_raw_card_data: bool,
}

/// Stripe's test cards: the decline (`code`, `decline_code`) of a number.
fn decline_of(number: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match number {
        "4000000000000002" => ("card_declined", Some("generic_decline")),
        "4000000000009995" => ("card_declined", Some("insufficient_funds")),
        "4000000000009987" => ("card_declined", Some("lost_card")),
        "4000000000000069" => ("expired_card", None),
        "4000000000000127" => ("incorrect_cvc", None),
        "4000000000000119" => ("processing_error", None),
        _ => return None,
    })
}

const CHALLENGE_CARDS: [&str; 2] = ["4000002760003184", "4000002500003155"];

impl Ledger {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_fake{:06}", self.next)
    }

    /// Answers `call`, replaying a known idempotency key.
    pub fn answer(&mut self, call: &Call) -> Answer {
        // Two accounts' keys (a connection and its fallback); one ledger.
        let known = [
            concat!("Bearer ", "sk_test_paywarden_fake"),
            concat!("Bearer ", "sk_test_paywarden_fallback"),
        ];
        if !call.authorization.as_deref().is_some_and(|a| known.contains(&a)) {
            return error(
                401,
                json!({"type": "invalid_request_error", "message": "Invalid API Key provided"}),
            );
        }
        if call.stripe_version.is_none() {
            return invalid(
                "fake_missing_stripe_version",
                "The fake requires a Stripe-Version header.",
            );
        }
        if call.method != "POST" {
            return self.read(call);
        }
        let Some(key) = call.idempotency_key.clone() else {
            return invalid(
                "fake_missing_idempotency_key",
                "The fake requires an Idempotency-Key on every POST.",
            );
        };
        if call.content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return invalid("fake_content_type", "The body must be form-encoded.");
        }
        let fingerprint = format!("{} {}", call.path, String::from_utf8_lossy(&call.body));
        if let Some((seen, answer)) = self.idempotency.get(&key) {
            if *seen != fingerprint {
                return error(
                    400,
                    json!({"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}),
                );
            }
            return Answer {
                replayed: true,
                ..answer.clone()
            };
        }
        let answer = self.write(call);
        self.idempotency.insert(key, (fingerprint, answer.clone()));
        answer
    }

    fn read(&mut self, call: &Call) -> Answer {
        if call.path == "/v1/payment_intents/search" {
            let query: HashMap<String, String> = form_urlencoded::parse(call.query.as_bytes()).into_owned().collect();
            let wanted = query
                .get("query")
                .and_then(|q| q.strip_prefix("metadata['paywarden_payment']:'"))
                .and_then(|q| q.strip_suffix('\''));
            let Some(wanted) = wanted else {
                return invalid("parameter_invalid_string", "Unsupported search query.");
            };
            let data: Vec<Value> = self
                .intents
                .values()
                .filter(|i| i.metadata["paywarden_payment"] == wanted)
                .map(Self::intent_json)
                .collect();
            return ok(json!({
                "object": "search_result", "url": "/v1/payment_intents/search",
                "has_more": false, "next_page": null, "data": data,
            }));
        }
        if call.path == "/v1/refunds" {
            return self.list_refunds(call);
        }
        match call.path.strip_prefix("/v1/payment_intents/") {
            Some(id) => match self.intents.get(id) {
                Some(intent) => ok(Self::intent_json(intent)),
                None => missing(id),
            },
            None => error(
                404,
                json!({"type": "invalid_request_error", "message": "Unrecognized request URL"}),
            ),
        }
    }

    fn write(&mut self, call: &Call) -> Answer {
        let path: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
        match path.as_slice() {
            ["v1", "payment_methods"] => self.create_method(call),
            ["v1", "payment_intents"] => self.create_intent(call),
            ["v1", "payment_intents", id, action] => {
                let allowed: &[&str] = match *action {
                    "confirm" => &["return_url"],
                    "capture" => &["amount_to_capture"],
                    "cancel" => &["cancellation_reason"],
                    _ => {
                        return error(
                            404,
                            json!({"type": "invalid_request_error", "message": "Unrecognized request URL"}),
                        )
                    }
                };
                if let Some(refused) = unknown_parameter(call, allowed) {
                    return refused;
                }
                let id = (*id).to_owned();
                if !self.intents.contains_key(&id) {
                    return missing(&id);
                }
                match *action {
                    "confirm" => self.confirm(&id, call),
                    "capture" => self.capture(&id, call),
                    _ => self.cancel(&id),
                }
            }
            ["v1", "refunds"] => self.refund(call),
            _ => error(
                404,
                json!({"type": "invalid_request_error", "message": "Unrecognized request URL"}),
            ),
        }
    }

    fn create_method(&mut self, call: &Call) -> Answer {
        let allowed = [
            "type",
            "card[number]",
            "card[exp_month]",
            "card[exp_year]",
            "card[cvc]",
            "billing_details[name]",
        ];
        if let Some(refused) = unknown_parameter(call, &allowed) {
            return refused;
        }
        if self.refuse_raw_card_data {
            return error(
                402,
                json!({"type": "invalid_request_error", "message": "Sending credit card numbers directly to the Stripe API is generally unsafe. To continue processing use Stripe.js, the Stripe mobile bindings, or Stripe Elements. For more information, see https://dashboard.stripe.com/account/integration/settings. If you are qualified to handle card data directly, see https://support.stripe.com/questions/enabling-access-to-raw-card-data-apis.", "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake"}),
            );
        }
        let (Some("card"), Some(number)) = (call.param("type"), call.param("card[number]")) else {
            return invalid("parameter_missing", "Missing required param: card.");
        };
        let id = self.id("pm");
        self.methods.insert(id.clone(), number.to_owned());
        self.applied.payment_methods += 1;
        let last4 = number.get(number.len().saturating_sub(4)..).unwrap_or_default();
        ok(json!({
            "id": id, "object": "payment_method", "type": "card", "created": CREATED, "customer": null,
            "livemode": false, "metadata": {},
            "billing_details": {"address": null, "email": null, "name": call.param("billing_details[name]"), "phone": null},
            "card": {"brand": "visa", "last4": last4, "exp_month": call.param("card[exp_month]").and_then(|m| m.parse::<i64>().ok()),
                     "exp_year": call.param("card[exp_year]").and_then(|y| y.parse::<i64>().ok()), "funding": "credit", "country": "US"},
        }))
    }

    fn create_intent(&mut self, call: &Call) -> Answer {
        let allowed = [
            "amount",
            "currency",
            "payment_method",
            "payment_method_types[]",
            "capture_method",
            "metadata[paywarden_payment]",
        ];
        if let Some(refused) = unknown_parameter(call, &allowed) {
            return refused;
        }
        let amount = call
            .param("amount")
            .and_then(|a| a.parse::<i64>().ok())
            .filter(|a| *a > 0);
        let (Some(amount), Some(currency)) = (amount, call.param("currency")) else {
            return invalid("parameter_missing", "Missing required param: amount.");
        };
        let payment_method = call.param("payment_method").map(str::to_owned);
        if payment_method.as_ref().is_some_and(|pm| !self.methods.contains_key(pm)) {
            return error(
                400,
                json!({"type": "invalid_request_error", "code": "resource_missing", "param": "payment_method", "message": "No such PaymentMethod"}),
            );
        }
        let id = self.id("pi");
        let intent = Intent {
            id: id.clone(),
            amount,
            currency: currency.to_owned(),
            status: if payment_method.is_some() {
                "requires_confirmation"
            } else {
                "requires_payment_method"
            },
            payment_method,
            metadata: json!({"paywarden_payment": call.param("metadata[paywarden_payment]")}),
            amount_received: 0,
            amount_refunded: 0,
            latest_charge: None,
            next_action: Value::Null,
            last_payment_error: Value::Null,
            payment_method_types: call
                .form
                .iter()
                .filter(|(k, _)| k == "payment_method_types[]")
                .map(|(_, v)| v.clone())
                .collect(),
        };
        let body = Self::intent_json(&intent);
        self.intents.insert(id, intent);
        self.applied.intents += 1;
        ok(body)
    }

    fn confirm(&mut self, id: &str, call: &Call) -> Answer {
        let charge = self.id("ch");
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        if intent.status != "requires_confirmation" {
            return unexpected_state(intent);
        }
        let number = intent
            .payment_method
            .as_ref()
            .and_then(|pm| self.methods.get(pm))
            .cloned()
            .unwrap_or_default();
        self.applied.confirms += 1;
        if CHALLENGE_CARDS.contains(&number.as_str()) {
            intent.status = "requires_action";
            intent.next_action = match call.param("return_url") {
                Some(return_url) => json!({"type": "redirect_to_url", "redirect_to_url": {
                    "url": format!("https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={id}"), "return_url": return_url}}),
                None => {
                    json!({"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""}})
                }
            };
            return ok(Self::intent_json(intent));
        }
        intent.latest_charge = Some(charge);
        if let Some((code, decline_code)) = decline_of(&number) {
            intent.status = "requires_payment_method";
            let mut failure = json!({"type": "card_error", "code": code, "message": "Your card was declined.",
                "doc_url": format!("https://stripe.com/docs/error-codes/{code}")});
            if let Some(decline) = decline_code {
                failure["decline_code"] = json!(decline);
            }
            intent.last_payment_error = failure.clone();
            failure["payment_intent"] = Self::intent_json(intent);
            failure["request_log_url"] = json!("https://dashboard.stripe.com/test/logs/req_fake");
            return error(402, failure);
        }
        intent.status = "requires_capture";
        ok(Self::intent_json(intent))
    }

    fn capture(&mut self, id: &str, call: &Call) -> Answer {
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        let amount = call
            .param("amount_to_capture")
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(intent.amount);
        if intent.status != "requires_capture" {
            return unexpected_state(intent);
        }
        if amount <= 0 || amount > intent.amount {
            return invalid(
                "amount_too_large",
                "The amount to capture exceeds the amount capturable.",
            );
        }
        intent.status = "succeeded";
        intent.amount_received = amount;
        self.applied.captures += 1;
        ok(Self::intent_json(intent))
    }

    fn cancel(&mut self, id: &str) -> Answer {
        let Some(intent) = self.intents.get_mut(id) else {
            return missing(id);
        };
        if matches!(intent.status, "succeeded" | "canceled" | "processing") {
            return unexpected_state(intent);
        }
        intent.status = "canceled";
        intent.next_action = Value::Null;
        self.applied.cancels += 1;
        ok(Self::intent_json(intent))
    }

    fn refund(&mut self, call: &Call) -> Answer {
        if let Some(refused) = unknown_parameter(call, &["payment_intent", "amount", "metadata[paywarden_refund]"]) {
            return refused;
        }
        let id = self.id("re");
        let Some(intent) = call.param("payment_intent").and_then(|pi| self.intents.get_mut(pi)) else {
            return missing(call.param("payment_intent").unwrap_or_default());
        };
        let remaining = intent.amount_received - intent.amount_refunded;
        let amount = call
            .param("amount")
            .and_then(|a| a.parse::<i64>().ok())
            .unwrap_or(remaining);
        if intent.status != "succeeded" {
            return invalid(
                "charge_not_captured",
                "This PaymentIntent has no captured charge to refund.",
            );
        }
        if remaining == 0 {
            return invalid("charge_already_refunded", "This charge has already been refunded.");
        }
        if amount <= 0 || amount > remaining {
            return invalid(
                "amount_too_large",
                "Refund amount is greater than the unrefunded amount.",
            );
        }
        intent.amount_refunded += amount;
        self.applied.refunds += 1;
        let refund = json!({
            "id": id, "object": "refund", "amount": amount, "currency": intent.currency,
            "charge": intent.latest_charge, "payment_intent": intent.id, "created": CREATED,
            "metadata": {"paywarden_refund": call.param("metadata[paywarden_refund]")},
            "reason": null, "receipt_number": null, "status": "succeeded", "balance_transaction": null,
        });
        self.refunds.push(refund.clone());
        ok(refund)
    }

    /// `GET /v1/refunds`: newest first, filtered by `payment_intent` when
    /// given, at most `limit` (default 10, 1 to 100).
    fn list_refunds(&self, call: &Call) -> Answer {
        let query: HashMap<String, String> = form_urlencoded::parse(call.query.as_bytes()).into_owned().collect();
        if let Some(name) = query
            .keys()
            .find(|k| !["payment_intent", "limit"].contains(&k.as_str()))
        {
            return invalid("parameter_unknown", &format!("Received unknown parameter: {name}"));
        }
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => return invalid("parameter_invalid_integer", "Invalid integer: limit"),
        };
        let wanted = query.get("payment_intent");
        let matching: Vec<&Value> = self
            .refunds
            .iter()
            .rev()
            .filter(|r| wanted.is_none_or(|pi| r["payment_intent"] == pi.as_str()))
            .collect();
        ok(json!({
            "object": "list", "url": "/v1/refunds", "has_more": matching.len() > limit,
            "data": matching.into_iter().take(limit).collect::<Vec<_>>(),
        }))
    }

    /// The customer answered the 3-D Secure challenge (as Stripe's hosted
    /// page would record it).
    pub fn complete_challenge(&mut self, id: &str, success: bool) {
        let Some(intent) = self.intents.get_mut(id) else {
            return;
        };
        assert_eq!(intent.status, "requires_action");
        intent.next_action = Value::Null;
        if success {
            intent.status = "requires_capture";
        } else {
            intent.status = "requires_payment_method";
            intent.last_payment_error = json!({"type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication."});
        }
    }

    pub fn status(&self, id: &str) -> Option<&'static str> {
        self.intents.get(id).map(|i| i.status)
    }

    fn intent_json(intent: &Intent) -> Value {
        json!({
            "id": intent.id, "object": "payment_intent", "amount": intent.amount,
            "amount_capturable": if intent.status == "requires_capture" { intent.amount } else { 0 },
            "amount_received": intent.amount_received, "capture_method": "manual",
            "client_secret": format!("{}_secret_fake", intent.id), "confirmation_method": "automatic",
            "created": CREATED, "currency": intent.currency, "customer": null, "description": null,
            "last_payment_error": intent.last_payment_error, "latest_charge": intent.latest_charge,
            "livemode": false, "metadata": intent.metadata, "next_action": intent.next_action,
            "payment_method": intent.payment_method, "payment_method_types": intent.payment_method_types,
            "status": intent.status, "canceled_at": null, "cancellation_reason": null,
        })
    }
}

fn unexpected_state(intent: &Intent) -> Answer {
    error(
        400,
        json!({"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
               "message": format!("This PaymentIntent's status is {}.", intent.status),
               "payment_intent": Ledger::intent_json(intent)}),
    )
}
