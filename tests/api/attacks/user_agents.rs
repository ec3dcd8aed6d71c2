//! Card numbers and API keys in the `User-Agent` header, written every way a
//! reader or a log pipeline could turn back into the secret: other
//! separators, runs of spaces, upper case, percent-encoding (once, twice, of
//! any character, of full-width forms). No audit entry may hold the card
//! number or the key in any normalised form, and the rest of the agent string
//! is kept.

use unicode_normalization::UnicodeNormalization;

use super::{assert_intact, Rows};
use crate::both_backends;

const PAN: &str = "4242424242424242";

/// The card number, written with other separators and encodings.
fn card_variants() -> Vec<String> {
    let full_width_encoded: String = PAN
        .chars()
        .map(|c| {
            let wide = char::from_u32(u32::from(c) + 0xFEE0).unwrap().to_string();
            wide.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
        })
        .collect();
    let grouped = |sep: &str| ["4242"; 4].join(sep);
    let mut variants: Vec<String> = [".", "/", "  ", " - ", "+", "_", "\t", "%20", "%2B", "%252D"]
        .into_iter()
        .map(grouped)
        .collect();
    variants.push(PAN.bytes().map(|b| format!("%{b:02x}")).collect());
    variants.push(format!("%2534%2532{}", &PAN[2..]));
    variants.push(full_width_encoded);
    variants
}

/// The merchant's own key, in other cases and encodings.
fn key_variants(key: &str) -> Vec<String> {
    let all_encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    vec![
        key.to_uppercase(),
        key.replace('_', "%5F"),
        key.to_uppercase().replace('_', "%5f"),
        key.replace('_', "%255F"),
        all_encoded,
        key.chars()
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
            .collect(),
    ]
}

/// What a reader could make of `text`: escapes decoded until none is left,
/// compatibility forms folded, lower case.
fn decoded(text: &str) -> String {
    let mut current = text.to_owned();
    loop {
        let bytes = current.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        let next = String::from_utf8_lossy(&out).into_owned();
        if next == current {
            return current.nfkc().collect::<String>().to_lowercase();
        }
        current = next;
    }
}

both_backends! {
    async fn card_numbers_and_keys_in_a_user_agent_never_reach_the_audit_trail(app) {
        let (_, sk) = app.merchant_with_secret("Agents").await;
        let body = sk.split('_').nth(2).unwrap().to_lowercase();
        let before = Rows::snapshot(app).await;
        let variants: Vec<String> = card_variants().into_iter().chain(key_variants(&sk)).collect();
        let mut sent = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            let agent = format!("agent-{i}/1.0 ({variant}) end");
            let r = app.client().get(app.url("/v1/merchant")).bearer_auth(&sk).header("user-agent", &agent).send().await.unwrap();
            assert_eq!(r.status(), 200, "{agent}");
            sent.push((r.headers()["request-id"].to_str().unwrap().to_owned(), i));
        }
        let audit = app.wait_for_audit(|a| sent.iter().all(|(id, _)| a.iter().any(|r| r.event.request_id.as_deref() == Some(id.as_str())))).await;
        for (id, i) in &sent {
            let entry = audit.iter().find(|r| r.event.request_id.as_deref() == Some(id.as_str())).unwrap();
            let recorded = entry.event.user_agent.as_deref().unwrap();
            assert_eq!(recorded, format!("agent-{i}/1.0 ([REDACTED]) end"), "variant {:?}", variants[*i]);
        }
        // Nowhere in the trail, in any free-text field, in any spelling.
        for r in &audit {
            for field in [&r.event.user_agent, &r.event.reason, &r.event.resource] {
                let text = decoded(field.as_deref().unwrap_or_default());
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                assert!(!digits.contains(PAN), "card number in the audit trail: {field:?}");
                assert!(!text.contains(&body), "API key in the audit trail: {field:?}");
                assert!(!text.contains(&sk.to_lowercase()), "API key in the audit trail: {field:?}");
            }
        }
        assert_intact(app, before, |r| r.audit_log += i64::try_from(variants.len()).unwrap() - 1).await;
    }
}
