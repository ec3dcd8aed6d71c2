//! The OpenAPI schemas of the payment and refund fields and list queries.
//!
//! Invariant: each schema accepts exactly what the parser behind the field
//! accepts, so a schema-valid request is never refused for its shape and a
//! schema-invalid one never gets through. Patterns and bounds are not
//! restated here but taken from the constants the parsers use
//! (`domain::payment_fields`, `domain::money`, `domain::ids`,
//! `domain::payment`); the domain tests check each pattern against its
//! parser, and `scripts/schema-fuzz.sh` the whole document against the server.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr, Required, SchemaFormat};
use utoipa::Modify;

use crate::domain::ids::{PaymentId, RefundId, TokenId};
use crate::domain::money::Currency;
use crate::domain::payment::PaymentStatus;
use crate::domain::payment_fields::{
    EMAIL_PATTERN, IP_PATTERN, MAX_DESCRIPTION_CHARS, MAX_EMAIL_CHARS, MAX_METADATA_KEYS, MAX_METADATA_VALUE_CHARS,
    MAX_URL_CHARS, METADATA_KEY_PATTERN, PLAIN_TEXT_PATTERN, RETURN_URL_PATTERN,
};
use crate::services::payments::DEFAULT_MAX_AMOUNT;

use super::pagination;
use super::schema;

/// `T` or `null` (`null` counts as not given).
fn or_null(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

fn int64() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

const WHOLE_FLOATS: &str =
    "Any spelling of a whole number is that integer (`100`, `100.0`, `1e2`); a fraction is a 400.";

/// `amount` of a new payment.
pub fn payment_amount() -> Object {
    int64()
        .minimum(Some(1))
        .maximum(Some(DEFAULT_MAX_AMOUNT))
        .description(Some(format!(
            "A positive integer in the currency's minor unit (cents for USD, yen for JPY, fils for KWD), at most \
             `payments.max_amount` ({DEFAULT_MAX_AMOUNT} unless the operator configured another limit; a larger \
             amount is a 400 `amount_too_large`). {WHOLE_FLOATS}"
        )))
        .build()
}

/// `amount_to_capture`.
pub fn capture_amount() -> Object {
    int64()
        .schema_type(or_null(Type::Integer))
        .minimum(Some(1))
        .description(Some(format!(
            "At most the authorized amount (a larger one is a 409 `amount_exceeds_capturable`); default all of it. The \
             rest is released. {WHOLE_FLOATS}"
        )))
        .build()
}

/// `amount` of a refund.
pub fn refund_amount() -> Object {
    int64()
        .schema_type(or_null(Type::Integer))
        .minimum(Some(1))
        .description(Some(format!(
            "Minor units, at most what is left to refund of the payment (a larger amount, or none when \
             nothing is left, is a 409 `amount_exceeds_refundable`); default: everything not yet refunded. \
             {WHOLE_FLOATS}"
        )))
        .build()
}

/// Every ISO 4217 code the gateway knows, lower-case then upper-case
/// (`Currency::parse` takes exactly these spellings).
pub fn currency() -> Object {
    let lower = Currency::codes().map(str::to_ascii_lowercase);
    let upper = Currency::codes().map(str::to_owned);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(lower.chain(upper)))
        .description(Some(
            "ISO 4217 code, all lower-case (`usd`, as responses show it) or all upper-case (`USD`).",
        ))
        .build()
}

fn nullable_id(prefix: &str, description: &str) -> Object {
    schema::id_schema(prefix)
        .schema_type(or_null(Type::String))
        .description(Some(description))
        .build()
}

/// `payment_method`: a card token id.
pub fn payment_method() -> Object {
    nullable_id(
        TokenId::PREFIX,
        "A card token (`tok_…`) of this merchant and mode; an unknown one (or another merchant's) is a 409 \
         `resource_missing`.",
    )
}

/// `payment` of a new refund.
pub fn refunded_payment() -> Object {
    schema::id_schema(PaymentId::PREFIX)
        .description(Some(
            "The succeeded payment to refund (`pay_…`); an unknown one (or another merchant's) is a 404.",
        ))
        .build()
}

fn plain_text(max_chars: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(or_null(Type::String))
        .max_length(Some(max_chars))
        .pattern(Some(PLAIN_TEXT_PATTERN))
}

pub fn description() -> Object {
    plain_text(MAX_DESCRIPTION_CHARS)
        .description(Some(format!(
            "Up to {MAX_DESCRIPTION_CHARS} characters, without control, bidirectional-override or zero-width characters."
        )))
        .build()
}

pub fn metadata() -> Object {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(METADATA_KEY_PATTERN));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(MAX_METADATA_VALUE_CHARS))
        .pattern(Some(PLAIN_TEXT_PATTERN));
    ObjectBuilder::new()
        .schema_type(or_null(Type::Object))
        .max_properties(Some(MAX_METADATA_KEYS))
        .property_names(Some(key))
        .additional_properties(Some(value))
        .description(Some(format!(
            "Up to {MAX_METADATA_KEYS} keys (1–40 letters, digits, `_`, `.`, `-`) with string values of up to \
             {MAX_METADATA_VALUE_CHARS} characters without control, bidirectional-override or zero-width characters."
        )))
        .build()
}

pub fn customer_ip() -> Object {
    ObjectBuilder::new()
        .schema_type(or_null(Type::String))
        .pattern(Some(IP_PATTERN))
        .description(Some(
            "The customer's IP address: IPv4 (dotted decimal, no leading zeros) or IPv6 (any RFC 4291 text form, no zone).",
        ))
        .build()
}

pub fn customer_email() -> Object {
    ObjectBuilder::new()
        .schema_type(or_null(Type::String))
        .max_length(Some(MAX_EMAIL_CHARS))
        .pattern(Some(EMAIL_PATTERN))
        .description(Some(format!(
            "The customer's e-mail address: `local@domain` with a local part of 1–64 ASCII letters, digits or \
             `._%+-`, and a domain of DNS labels ending in a letters-only top-level label; at most \
             {MAX_EMAIL_CHARS} characters."
        )))
        .build()
}

pub fn return_url() -> Object {
    ObjectBuilder::new()
        .schema_type(or_null(Type::String))
        .max_length(Some(MAX_URL_CHARS))
        .pattern(Some(RETURN_URL_PATTERN))
        .description(Some(format!(
            "Where the customer returns after 3-D Secure: `https://` and a host name (`http://` only for \
             `localhost`, `127.0.0.1` or `[::1]`), an optional port of up to 4 digits, then an optional path, \
             query and fragment of URL characters (others percent-encoded). No credentials; at most \
             {MAX_URL_CHARS} characters."
        )))
        .build()
}

fn query(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// The query of `GET /v1/payments`.
pub fn payment_list_params() -> Vec<Parameter> {
    let status = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(PaymentStatus::ALL.map(PaymentStatus::as_str)));
    let seconds = || int64().minimum(Some(0));
    let mut params = pagination::list_params(PaymentId::PREFIX);
    params.extend([
        query("status", "Only payments in this status.", status),
        query(
            "created[gte]",
            "Only payments created at or after this time (seconds since the epoch).",
            seconds(),
        ),
        query(
            "created[lte]",
            "Only payments created at or before this time (seconds since the epoch).",
            seconds(),
        ),
    ]);
    params
}

/// The query of `GET /v1/refunds`.
pub fn refund_list_params() -> Vec<Parameter> {
    let mut params = pagination::list_params(RefundId::PREFIX);
    params.push(query(
        "payment",
        "Only refunds of this payment (`pay_…`).",
        schema::id_schema(PaymentId::PREFIX),
    ));
    params
}

/// `POST /v1/payments` with `confirm: true` needs a `payment_method`: the
/// body is `allOf` the derived schema and `anyOf` "`confirm` is absent, false
/// or null" / "`payment_method` is a string".
pub struct ConfirmNeedsPaymentMethod;

impl Modify for ConfirmNeedsPaymentMethod {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(body))) = components.schemas.get("CreatePayment") else {
            return;
        };
        let not_confirming = ObjectBuilder::new().property(
            "confirm",
            ObjectBuilder::new()
                .schema_type(or_null(Type::Boolean))
                .enum_values(Some([serde_json::Value::Bool(false), serde_json::Value::Null])),
        );
        let with_card = ObjectBuilder::new()
            .property("payment_method", ObjectBuilder::new().schema_type(Type::String))
            .required("payment_method");
        let combined = AllOfBuilder::new()
            .item(Schema::Object(body.clone()))
            .item(AnyOfBuilder::new().item(not_confirming).item(with_card));
        components
            .schemas
            .insert("CreatePayment".to_owned(), RefOr::T(Schema::AllOf(combined.build())));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::domain::money::Currency;
    use crate::domain::payment::PaymentStatus;
    use crate::domain::payment_fields::{
        EMAIL_PATTERN, IP_PATTERN, METADATA_KEY_PATTERN, PLAIN_TEXT_PATTERN, RETURN_URL_PATTERN,
    };
    use crate::services::payments::DEFAULT_MAX_AMOUNT;

    fn doc() -> Value {
        serde_json::from_str(super::super::openapi::document()).unwrap()
    }

    fn create_payment(doc: &Value) -> &Value {
        &doc["components"]["schemas"]["CreatePayment"]["allOf"][0]["properties"]
    }

    /// The document lists exactly the spellings `Currency::parse` takes: every
    /// three-letter ASCII string is in the enum if and only if it parses.
    #[test]
    fn currency_enum_is_exactly_what_the_parser_takes() {
        let doc = doc();
        let listed: Vec<&str> = create_payment(&doc)["currency"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), 2 * Currency::codes().count());
        let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
        for a in &letters {
            for b in &letters {
                for c in &letters {
                    let code = format!("{a}{b}{c}");
                    assert_eq!(
                        listed.contains(&code.as_str()),
                        Currency::parse(&code).is_ok(),
                        "{code}"
                    );
                }
            }
        }
    }

    #[test]
    fn payment_fields_carry_the_parsers_patterns_and_bounds() {
        let doc = doc();
        let fields = create_payment(&doc);
        assert_eq!(fields["amount"]["minimum"], 1);
        assert_eq!(fields["amount"]["maximum"], DEFAULT_MAX_AMOUNT);
        assert_eq!(fields["payment_method"]["pattern"], "^tok_[0-9A-Za-z]{24}$");
        assert_eq!(fields["description"]["pattern"], PLAIN_TEXT_PATTERN);
        assert_eq!(fields["description"]["maxLength"], 1000);
        assert_eq!(fields["metadata"]["maxProperties"], 20);
        assert_eq!(fields["metadata"]["propertyNames"]["pattern"], METADATA_KEY_PATTERN);
        assert_eq!(
            fields["metadata"]["additionalProperties"]["pattern"],
            PLAIN_TEXT_PATTERN
        );
        assert_eq!(fields["metadata"]["additionalProperties"]["maxLength"], 500);
        assert_eq!(fields["customer_ip"]["pattern"], IP_PATTERN);
        assert_eq!(fields["customer_email"]["pattern"], EMAIL_PATTERN);
        assert_eq!(fields["customer_email"]["maxLength"], 254);
        assert_eq!(fields["return_url"]["pattern"], RETURN_URL_PATTERN);
        assert_eq!(fields["return_url"]["maxLength"], 2048);
        for optional in [
            "payment_method",
            "description",
            "metadata",
            "customer_ip",
            "customer_email",
            "return_url",
        ] {
            let types = fields[optional]["type"].as_array().unwrap();
            assert!(types.contains(&Value::from("null")), "{optional}: null is not given");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CapturePayment"]["properties"]["amount_to_capture"]["minimum"],
            1
        );
        assert_eq!(schemas["CreateRefund"]["properties"]["amount"]["minimum"], 1);
        assert_eq!(
            schemas["CreateRefund"]["properties"]["payment"]["pattern"],
            "^pay_[0-9A-Za-z]{24}$"
        );
        assert_eq!(
            schemas["ConfirmPayment"]["properties"]["return_url"]["pattern"],
            RETURN_URL_PATTERN
        );
    }

    /// `confirm: true` without a `payment_method` is outside the schema.
    #[test]
    fn confirming_needs_a_payment_method() {
        let doc = doc();
        let rule = &doc["components"]["schemas"]["CreatePayment"]["allOf"][1]["anyOf"];
        assert_eq!(
            rule[0]["properties"]["confirm"]["enum"],
            serde_json::json!([false, null])
        );
        assert_eq!(rule[1]["required"], serde_json::json!(["payment_method"]));
        assert_eq!(rule[1]["properties"]["payment_method"]["type"], "string");
    }

    #[test]
    fn list_queries_are_exact() {
        let doc = doc();
        let params = |path: &str| -> Vec<Value> { doc["paths"][path]["get"]["parameters"].as_array().unwrap().clone() };
        let find = |params: &[Value], name: &str| params.iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
        let payments = params("/v1/payments");
        assert_eq!(find(&payments, "limit")["minimum"], 1);
        assert_eq!(find(&payments, "limit")["maximum"], 100);
        assert_eq!(find(&payments, "starting_after")["pattern"], "^pay_[0-9A-Za-z]{24}$");
        let statuses: Vec<Value> = PaymentStatus::ALL.iter().map(|s| Value::from(s.as_str())).collect();
        assert_eq!(find(&payments, "status")["enum"], Value::from(statuses));
        for time in ["created[gte]", "created[lte]"] {
            assert_eq!(find(&payments, time)["minimum"], 0, "{time}");
            assert_eq!(find(&payments, time)["format"], "int64", "{time}");
        }
        let refunds = params("/v1/refunds");
        assert_eq!(find(&refunds, "starting_after")["pattern"], "^re_[0-9A-Za-z]{24}$");
        assert_eq!(find(&refunds, "payment")["pattern"], "^pay_[0-9A-Za-z]{24}$");
        assert_eq!(refunds.len(), 3);
        assert_eq!(payments.len(), 5);
    }
}
