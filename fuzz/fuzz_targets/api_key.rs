//! API keys and redaction: the key parser never panics and accepts only
//! well-formed, checksummed keys; redaction never lets a 12-digit run or a
//! key-shaped token through, in any spelling it decodes: redacting its output
//! again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::domain::api_key::ApiKeySecret;
use paywarden::domain::redact::redact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = ApiKeySecret::parse(&text) {
        assert_eq!(key.expose(), text);
        assert!(!format!("{key:?}").contains(&text[8..]));
    }
    let out = redact(&text);
    let longest = out.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
    assert!(longest < 12, "redaction left a long digit run");
    assert_eq!(redact(&out), out, "redaction left something it would redact");
});
