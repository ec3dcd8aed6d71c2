//! Extractors that answer rejections in the API's own error format: JSON
//! bodies (unknown fields rejected, size-limited), query strings, and the
//! `{id}` of a path.
//!
//! Invariant: an error message never echoes a value from the request. serde's
//! own messages for wrong types and unknown variants quote the input, so they
//! are replaced by a generic message; only the field path is named, and only
//! when it cannot itself be a card number or key.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body parsed into `T`; rejections are `ApiError`s naming the field.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let limit_hint = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = read_body(req, state, limit_hint).await?;
        parse_json(&bytes).map(AppJson)
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`; a
/// non-empty one is parsed exactly like [`AppJson`].
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let limit_hint = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = read_body(req, state, limit_hint).await?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S, limit_hint: usize) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit_hint)
        } else {
            ApiError::invalid("body", "invalid_body", "The request body could not be read")
        }
    })
}

/// The configured body limit, for the 413 message.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses a JSON document into `T` with errors in the API's format.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() && de.end().is_err() {
        return Err(ApiError::invalid(
            "body",
            "invalid_json",
            "The request body is not valid JSON",
        ));
    }
    parsed.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid("body", "invalid_json", "The request body is not valid JSON");
        }
        let message = strip_position(&inner.to_string());
        let path = err.path().to_string();
        if let Some(field) = quoted(&message, "unknown field `") {
            let param = join_param(&path, &field);
            return match safe_param(&param) {
                Some(p) => ApiError::invalid(
                    p.clone(),
                    "parameter_unknown",
                    format!("Received unknown parameter: {p}"),
                ),
                None => ApiError::invalid("body", "parameter_unknown", "Received an unknown parameter"),
            };
        }
        if let Some(field) = quoted(&message, "missing field `") {
            let param = join_param(&path, &field);
            let p = safe_param(&param).unwrap_or_else(|| "body".into());
            return ApiError::invalid(
                p.clone(),
                "parameter_missing",
                format!("Missing required parameter: {p}"),
            );
        }
        let param = safe_param(&bracketed(&path)).unwrap_or_else(|| "body".into());
        let echoes_input = ["invalid type", "invalid value", "invalid length", "unknown variant"]
            .iter()
            .any(|p| message.starts_with(p));
        if echoes_input {
            ApiError::invalid(
                param.clone(),
                "parameter_invalid",
                format!("Invalid value for parameter: {param}"),
            )
        } else {
            // Our own parsers' messages: they describe the rule, never the input.
            ApiError::invalid(
                param.clone(),
                "parameter_invalid",
                format!("Invalid {param}: {message}"),
            )
        }
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

fn quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_owned)
}

fn join_param(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        field.to_owned()
    } else if path == field || path.ends_with(&format!(".{field}")) {
        // serde_path_to_error already put the unknown field at the end of the path.
        bracketed(path)
    } else {
        bracketed(&format!("{path}.{field}"))
    }
}

/// `card.number` → `card[number]`, the API's way of naming nested fields.
fn bracketed(path: &str) -> String {
    let mut parts = path.split('.').filter(|s| !s.is_empty());
    let mut out = parts.next().unwrap_or_default().to_owned();
    for p in parts {
        out.push('[');
        out.push_str(p);
        out.push(']');
    }
    out
}

/// The parameter name, if it is safe to echo: short, from a plain alphabet,
/// and without enough digits to be a card number or part of a key.
fn safe_param(param: &str) -> Option<String> {
    let plain = param
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '[' | ']'));
    let digits = param.chars().filter(char::is_ascii_digit).count();
    (plain && !param.is_empty() && param.len() <= 64 && digits <= 4).then(|| param.to_owned())
}

/// The `{id}` of a path, percent-decoded. An id whose bytes are not UTF-8
/// (`/v1/payments/%FF`) comes through as U+FFFD, which no id parser accepts:
/// it gets the handler's own answer for a malformed id (the same 404 as an
/// unknown one), where axum's `Path` would answer a plain-text 400 outside
/// the API's error format.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(PathRejection::FailedToDeserializePathParams(e))
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                Ok(PathId(char::REPLACEMENT_CHARACTER.to_string()))
            }
            // The route has no single `{id}`: a mistake in the router, not the request.
            Err(e) => Err(ApiError::internal(format!("path id: {e}"))),
        }
    }
}

/// A query string parsed into `T`; rejections are `ApiError`s.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(AppQuery).map_err(|err| {
            let message = err.inner().to_string();
            let field = quoted(&message, "unknown field `").or_else(|| quoted(&message, "missing field `"));
            let param = field
                .or_else(|| Some(bracketed(&err.path().to_string())))
                .and_then(|p| safe_param(&p));
            let param = param.unwrap_or_else(|| "query".into());
            ApiError::invalid(
                param.clone(),
                "parameter_invalid",
                format!("Invalid query parameter: {param}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        card: Card,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Card {
        number: String,
    }

    fn err(json: &str) -> serde_json::Value {
        let e = parse_json::<Body>(json.as_bytes()).unwrap_err();
        let response = axum::response::IntoResponse::into_response(e);
        let summary = response
            .extensions()
            .get::<super::super::error::ErrorSummary>()
            .cloned()
            .unwrap();
        serde_json::json!({ "code": summary.code })
    }

    #[test]
    fn errors_name_the_field_without_echoing_values() {
        let e = parse_json::<Body>(br#"{"amount": "4242424242424242", "card": {"number": "1"}}"#).unwrap_err();
        let text = format!("{e:?}");
        assert!(!text.contains("4242424242424242"), "{text}");
        assert!(text.contains("amount"));
        let e = parse_json::<Body>(br#"{"amount": 1, "card": {"number": "1", "cvc": "1"}}"#).unwrap_err();
        assert!(format!("{e:?}").contains("card[cvc]"));
        let e = parse_json::<Body>(br#"{"amount": 1, "4242424242424242": 1, "card": {"number": "1"}}"#).unwrap_err();
        assert!(!format!("{e:?}").contains("4242424242424242"));
        assert_eq!(err(r#"{"amount": 1"#)["code"], "invalid_json");
        assert_eq!(err(r#"{"card": {"number": "1"}}"#)["code"], "parameter_missing");
    }
}
