//! Webhook signatures: the `Paywarden-Signature` parser and verifier never
//! panic on any header or body; what they accept is exactly what was signed
//! with the secret within the tolerance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::webhooks::signature::{header_value, parse_header, verify_signature_at, TOLERANCE_SECS};

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_764_000_000;

fuzz_target!(|data: &[u8]| {
    // Arbitrary header text against an arbitrary body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = data.split_at(split);
    let header = String::from_utf8_lossy(header);
    let _ = parse_header(&header);
    if let Ok(t) = verify_signature_at(body, &header, SECRET, NOW) {
        // Accepted: then it was signed with this secret for this body.
        assert!((t - NOW).abs() <= TOLERANCE_SECS);
        assert!(header.contains(&paywarden::webhooks::signature::sign(SECRET, t, body)));
    }
    // A genuine signature over the fuzzed body verifies, and not with another secret.
    let genuine = header_value([SECRET], NOW, data);
    assert_eq!(verify_signature_at(data, &genuine, SECRET, NOW), Ok(NOW));
    assert!(verify_signature_at(data, &genuine, "whsec_other", NOW).is_err());
});
