//! Webhook signatures: `Paywarden-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`
//! where each `v1` is HMAC-SHA-256, keyed with a signing secret (the whole
//! `whsec_…` string as UTF-8), over `t + "." + body`.
//!
//! This module is exported for merchants ([`verify`]). Invariants: the header
//! parser accepts any input without panicking and rejects malformed headers
//! with a typed error; a timestamp more than [`TOLERANCE_SECS`] away from now,
//! in the past *or the future*, is refused; signatures are compared in
//! constant time; any one matching `v1` suffices (during a secret rotation the
//! gateway sends one per valid secret); unknown schemes (`v0=`, `v2=`) are
//! ignored so the format can grow.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header that carries the signature.
pub const HEADER: &str = "Paywarden-Signature";
/// Largest accepted distance between the signed timestamp and now, in seconds.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest header accepted; a rotation sends two signatures (~150 bytes).
const MAX_HEADER_LEN: usize = 4096;
/// Most `v1` values looked at.
const MAX_SIGNATURES: usize = 8;
/// Length of one HMAC-SHA-256 in bytes.
const MAC_LEN: usize = 32;

/// Why a webhook was not accepted. No variant carries input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is malformed")]
    MalformedHeader,
    #[error("the signature header has no timestamp")]
    MissingTimestamp,
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("the signature's timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
    #[error("no signature matches the payload and secret")]
    SignatureMismatch,
    #[error("the payload is not a webhook event")]
    MalformedPayload,
}

/// A parsed header: the timestamp and the `v1` signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub signatures: Vec<[u8; MAC_LEN]>,
}

/// Parses `t=…,v1=…` strictly: comma-separated `key=value` items (spaces
/// around items allowed), exactly one `t` of up to 12 decimal digits, 1 to 8
/// `v1` of 64 hex digits; other keys are ignored.
pub fn parse_header(header: &str) -> Result<SignatureHeader, VerifyError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(VerifyError::MalformedHeader);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(VerifyError::MalformedHeader)?;
        match key {
            "t" => {
                let valid = !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit());
                let parsed: i64 = value
                    .parse()
                    .ok()
                    .filter(|_| valid)
                    .ok_or(VerifyError::MalformedHeader)?;
                if timestamp.replace(parsed).is_some() {
                    return Err(VerifyError::MalformedHeader);
                }
            }
            "v1" => {
                let mut mac = [0u8; MAC_LEN];
                hex::decode_to_slice(value, &mut mac).map_err(|_| VerifyError::MalformedHeader)?;
                if signatures.len() == MAX_SIGNATURES {
                    return Err(VerifyError::MalformedHeader);
                }
                signatures.push(mac);
            }
            "" => return Err(VerifyError::MalformedHeader),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MissingTimestamp)?;
    if signatures.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    Ok(SignatureHeader { timestamp, signatures })
}

fn mac(secret: &[u8], timestamp: i64, payload: &[u8]) -> [u8; MAC_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0u8; MAC_LEN],
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(payload);
    m.finalize().into_bytes().into()
}

/// The hex `v1` signature of `payload` at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret.as_bytes(), timestamp, payload))
}

/// The full header value for `payload`, one `v1` per secret (current first).
pub fn header_value<'a>(secrets: impl IntoIterator<Item = &'a str>, timestamp: i64, payload: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, timestamp, payload));
    }
    value
}

/// Checks `header` against `payload` and `secret` at time `now` (Unix
/// seconds). Returns the signed timestamp.
pub fn verify_signature_at(payload: &[u8], header: &str, secret: &str, now: i64) -> Result<i64, VerifyError> {
    verify_signature_within(payload, header, secret, now, TOLERANCE_SECS.unsigned_abs())
}

/// [`verify_signature_at`] with a tolerance of `tolerance_secs` instead of
/// [`TOLERANCE_SECS`]. Stripe signs its webhooks the same way (the
/// `Stripe-Signature` header), so its connector verifies them here.
pub fn verify_signature_within(
    payload: &[u8],
    header: &str,
    secret: &str,
    now: i64,
    tolerance_secs: u64,
) -> Result<i64, VerifyError> {
    let parsed = parse_header(header)?;
    if parsed.timestamp.abs_diff(now) > tolerance_secs {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let expected = mac(secret.as_bytes(), parsed.timestamp, payload);
    // Every candidate is compared, matching or not, so timing says nothing
    // about which one (if any) matched.
    let mut matched = subtle::Choice::from(0u8);
    for candidate in &parsed.signatures {
        matched |= candidate.ct_eq(&expected);
    }
    if bool::from(matched) {
        Ok(parsed.timestamp)
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

/// A verified webhook event. Deliveries are at least once: deduplicate on
/// `id` (the same event may arrive again, with a newer timestamp).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VerifiedEvent {
    /// `evt_…`: unique per event, the same on every redelivery.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened (Unix seconds).
    pub created: i64,
    pub livemode: bool,
    /// `{"object": …}`: the object as it was after the change.
    pub data: serde_json::Value,
    /// The signed timestamp of this delivery (not part of the payload).
    #[serde(skip)]
    pub signed_at: i64,
}

/// Verifies a delivery as a merchant's server receives it: the raw request
/// body, the `Paywarden-Signature` header and the endpoint's signing secret.
/// Uses the system clock; see [`verify_at`].
///
/// ```
/// let secret = "whsec_test";
/// let body = br#"{"id":"evt_1","object":"event","type":"payment.succeeded","created":1,"livemode":false,"data":{"object":{}}}"#;
/// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
/// let header = paywarden::webhooks::signature::header_value([secret], now, body);
/// let event = paywarden::webhooks::verify(body, &header, secret).unwrap();
/// assert_eq!(event.id, "evt_1");
/// assert!(paywarden::webhooks::verify(body, &header, "whsec_other").is_err());
/// ```
pub fn verify(payload: &[u8], header: &str, secret: &str) -> Result<VerifiedEvent, VerifyError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    verify_at(payload, header, secret, now)
}

/// [`verify`] at time `now` (Unix seconds).
pub fn verify_at(payload: &[u8], header: &str, secret: &str, now: i64) -> Result<VerifiedEvent, VerifyError> {
    let signed_at = verify_signature_at(payload, header, secret, now)?;
    let mut event: VerifiedEvent = serde_json::from_slice(payload).map_err(|_| VerifyError::MalformedPayload)?;
    event.signed_at = signed_at;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"payment.succeeded","created":1,"livemode":false,"data":{"object":{"id":"pay_1"}}}"#;
    const NOW: i64 = 1_764_000_000;

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = "whsec_test", "1764000000.{}"), computed with Python's hmac module.
        assert_eq!(
            sign("whsec_test", NOW, b"{}"),
            "4f96748d68fa89f609c83851e8a98602c0d9762fcc5bc7c698c980211b7522ed"
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let header = header_value(["whsec_a"], NOW, BODY);
        let event = verify_at(BODY, &header, "whsec_a", NOW).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.signed_at, NOW);
        assert_eq!(
            verify_at(BODY, &header, "whsec_b", NOW),
            Err(VerifyError::SignatureMismatch)
        );
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify_at(&tampered, &header, "whsec_a", NOW),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify_at(BODY, &header, "whsec_a", NOW + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify_at(BODY, &header, "whsec_a", NOW - 301),
            Err(VerifyError::TimestampOutOfTolerance),
            "a timestamp from the future is refused too"
        );
        assert!(verify_at(BODY, &header, "whsec_a", NOW + 300).is_ok());
        assert!(verify_at(BODY, &header, "whsec_a", NOW - 300).is_ok());
        // A signature for another timestamp does not verify with this one.
        let other = sign("whsec_a", NOW - 1, BODY);
        assert_eq!(
            verify_at(BODY, &format!("t={NOW},v1={other}"), "whsec_a", NOW),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn any_of_several_signatures_verifies() {
        let header = header_value(["whsec_new", "whsec_old"], NOW, BODY);
        assert!(verify_at(BODY, &header, "whsec_new", NOW).is_ok());
        assert!(verify_at(BODY, &header, "whsec_old", NOW).is_ok());
        assert!(verify_at(BODY, &header, "whsec_other", NOW).is_err());
        let with_unknown = format!("{header},v0=abc,v2=zz");
        assert!(verify_at(BODY, &with_unknown, "whsec_old", NOW).is_ok());
    }

    #[test]
    fn malformed_headers_have_typed_errors() {
        let sig = sign("s", NOW, BODY);
        for (header, error) in [
            ("", VerifyError::MalformedHeader),
            ("garbage", VerifyError::MalformedHeader),
            (&format!("v1={sig}") as &str, VerifyError::MissingTimestamp),
            (&format!("t={NOW}"), VerifyError::NoSignature),
            (&format!("t={NOW},t={NOW},v1={sig}"), VerifyError::MalformedHeader),
            (&format!("t=-{NOW},v1={sig}"), VerifyError::MalformedHeader),
            (&format!("t=+{NOW},v1={sig}"), VerifyError::MalformedHeader),
            (&format!("t={NOW},v1={}", &sig[..63]), VerifyError::MalformedHeader),
            (&format!("t={NOW},v1={sig}00"), VerifyError::MalformedHeader),
            (&format!("t={NOW},v1=zz{}", &sig[2..]), VerifyError::MalformedHeader),
            (
                &format!("t=99999999999999999999,v1={sig}"),
                VerifyError::MalformedHeader,
            ),
            (&format!("t={NOW},,v1={sig}"), VerifyError::MalformedHeader),
            (&format!("t={NOW},=x,v1={sig}"), VerifyError::MalformedHeader),
        ] {
            assert_eq!(parse_header(header).err(), Some(error), "{header:?}");
        }
        let many = format!("t={NOW}{}", format!(",v1={sig}").repeat(9));
        assert_eq!(parse_header(&many).err(), Some(VerifyError::MalformedHeader));
        assert_eq!(
            parse_header(&"a".repeat(5000)).err(),
            Some(VerifyError::MalformedHeader)
        );
        // Spaces around items are tolerated (some proxies fold headers).
        assert!(verify_at(BODY, &format!("t={NOW}, v1={sig}"), "s", NOW).is_ok());
        // A valid signature over a payload that is not an event.
        let header = header_value(["s"], NOW, b"[]");
        assert_eq!(verify_at(b"[]", &header, "s", NOW), Err(VerifyError::MalformedPayload));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(header in ".{0,300}") {
            let _ = parse_header(&header);
            let _ = verify_at(BODY, &header, "s", NOW);
        }

        #[test]
        fn structured_headers_never_panic(t in "[0-9+-]{0,25}", v in "[0-9a-fA-Fz]{0,70}", extra in "[ ,=a-z0-9]{0,20}") {
            let _ = verify_at(BODY, &format!("t={t},v1={v}{extra}"), "s", NOW);
        }

        #[test]
        fn signatures_verify_and_bind_every_input(
            secret in "[!-~]{1,40}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
            t in 0i64..4_000_000_000,
            skew in -300i64..=300,
            flip in any::<prop::sample::Index>(),
        ) {
            let header = header_value([secret.as_str()], t, &body);
            prop_assert_eq!(verify_signature_at(&body, &header, &secret, t + skew), Ok(t));
            let wrong = format!("{secret}x");
            prop_assert!(verify_signature_at(&body, &header, &wrong, t).is_err());
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip.index(changed.len());
                changed[i] ^= 0x01;
                prop_assert_eq!(verify_signature_at(&changed, &header, &secret, t), Err(VerifyError::SignatureMismatch));
            }
        }
    }
}
