//! PayPal's webhook signatures, verified offline (the self-verification of
//! `shared/vendor-specs/paypal/webhook-signature.md`, option B): the
//! message `transmission_id|transmission_time|webhook_id|crc32(body)` (the
//! CRC32 of the raw body in decimal, the webhook id from the connection, not
//! the delivery), RSA PKCS#1 v1.5 with SHA-256, against the certificate of
//! `PAYPAL-CERT-URL` that [`super::certs`] fetched and verified beforehand.
//!
//! Why offline and not the postback (`verify-webhook-signature`): it needs
//! no call to PayPal per delivery (the certificate is fetched once per URL),
//! it can be tested against a fake exactly as PayPal documents it, and
//! PayPal's guide warns that postback verification fails for its simulator's
//! mock events.
//!
//! Invariants: nothing of a delivery is read before its signature verifies;
//! `PAYPAL-AUTH-ALGO` must be `SHA256withRSA`; a transmission time more than
//! [`TOLERANCE`] away from now is refused (a replay), and the caller applies
//! each event id once; a connection without a webhook id verifies nothing.

use std::time::Duration;

use base64::Engine;
use rustls::pki_types::CertificateDer;

use super::certs::Certs;
use crate::connectors::{ConnectorError, InboundHeaders};

/// How far a transmission time may be from now.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The headers of a delivery, as text.
pub struct Transmission {
    pub id: String,
    pub time: String,
    pub signature: Vec<u8>,
    pub cert_url: String,
}

fn header<'a>(headers: &'a InboundHeaders, name: &str) -> Result<&'a str, ConnectorError> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 2048)
        .ok_or(ConnectorError::InvalidSignature)
}

/// The certificate URL a delivery names, for [`Certs::fetch`].
pub fn cert_url(headers: &InboundHeaders) -> Option<&str> {
    header(headers, "paypal-cert-url").ok()
}

/// Reads the signature headers, refusing any other algorithm.
pub fn transmission(headers: &InboundHeaders) -> Result<Transmission, ConnectorError> {
    if header(headers, "paypal-auth-algo")? != "SHA256withRSA" {
        return Err(ConnectorError::InvalidSignature);
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header(headers, "paypal-transmission-sig")?)
        .map_err(|_| ConnectorError::InvalidSignature)?;
    Ok(Transmission {
        id: header(headers, "paypal-transmission-id")?.to_owned(),
        time: header(headers, "paypal-transmission-time")?.to_owned(),
        signature,
        cert_url: header(headers, "paypal-cert-url")?.to_owned(),
    })
}

/// The signed message.
pub fn message(transmission: &Transmission, webhook_id: &str, body: &[u8]) -> String {
    format!(
        "{}|{}|{}|{}",
        transmission.id,
        transmission.time,
        webhook_id,
        crc32fast::hash(body)
    )
}

/// Whether `time` (RFC 3339) is within [`TOLERANCE`] of `now` (Unix seconds).
fn fresh(time: &str, now: i64) -> bool {
    let Ok(at) = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339) else {
        return false;
    };
    let tolerance = i64::try_from(TOLERANCE.as_secs()).unwrap_or(300);
    (at.unix_timestamp() - now).abs() <= tolerance
}

/// Verifies a delivery: its headers, its freshness, and its signature by the
/// cached certificate of its URL.
pub fn verify(
    certs: &Certs,
    webhook_id: Option<&str>,
    headers: &InboundHeaders,
    body: &[u8],
    now: i64,
) -> Result<(), ConnectorError> {
    let webhook_id = webhook_id.ok_or(ConnectorError::InvalidSignature)?;
    let transmission = transmission(headers)?;
    if !fresh(&transmission.time, now) {
        return Err(ConnectorError::InvalidSignature);
    }
    let certificate = certs
        .get(&transmission.cert_url)
        .ok_or(ConnectorError::InvalidSignature)?;
    verify_signature(
        &certificate,
        &message(&transmission, webhook_id, body),
        &transmission.signature,
    )
}

fn verify_signature(certificate: &CertificateDer<'_>, message: &str, signature: &[u8]) -> Result<(), ConnectorError> {
    let cert = webpki::EndEntityCert::try_from(certificate).map_err(|_| ConnectorError::InvalidSignature)?;
    cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, message.as_bytes(), signature)
        .map_err(|_| ConnectorError::InvalidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(algo: &str) -> InboundHeaders {
        InboundHeaders::new([
            ("PAYPAL-TRANSMISSION-ID", "69cd13f0-d67a-11e5-baa3-778b53f4ae55"),
            ("PAYPAL-TRANSMISSION-TIME", "2026-12-07T20:00:00Z"),
            ("PAYPAL-TRANSMISSION-SIG", "c2lnbmF0dXJl"),
            (
                "PAYPAL-CERT-URL",
                "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            ),
            ("PAYPAL-AUTH-ALGO", algo),
        ])
    }

    #[test]
    fn the_message_is_ids_time_webhook_id_and_the_decimal_crc32_of_the_raw_body() {
        let t = transmission(&headers("SHA256withRSA")).unwrap();
        assert_eq!(t.signature, b"signature");
        // CRC32 (IEEE) of "hello" is 0x3610a686 = 907060870.
        assert_eq!(
            message(&t, "9XL90610J3647323C", b"hello"),
            "69cd13f0-d67a-11e5-baa3-778b53f4ae55|2026-12-07T20:00:00Z|9XL90610J3647323C|907060870"
        );
        assert!(matches!(
            transmission(&headers("SHA1withRSA")),
            Err(ConnectorError::InvalidSignature)
        ));
    }

    #[test]
    fn only_fresh_transmissions_are_accepted() {
        let at = 1_796_673_600; // 2026-12-07T20:00:00Z
        assert!(fresh("2026-12-07T20:00:00Z", at));
        assert!(fresh("2026-12-07T20:04:59Z", at));
        assert!(!fresh("2026-12-07T20:05:01Z", at));
        assert!(!fresh("2026-12-07T19:54:59Z", at));
        assert!(!fresh("yesterday", at));
    }
}
