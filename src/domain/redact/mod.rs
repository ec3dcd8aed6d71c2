//! Redaction of free text that comes from outside (user agents, and any other
//! client-supplied string that is recorded): card-number-like digit runs and
//! API-key-like tokens are replaced before the text reaches a log or the audit
//! trail.
//!
//! The detectors run on a normalised view of the text, in which every
//! character remembers the bytes of the original it came from; what they find
//! is replaced in the original, so the rest of the text stays as it was sent.
//! The view:
//! - decodes `%XX` escapes, again and again until none is left (`%255F` is
//!   `_`), multi-byte UTF-8 sequences included;
//! - folds compatibility forms (NFKC per character: full-width `４`, `ＳＫ`,
//!   `＿`, mathematical digits, the no-break space…) and lower-cases;
//! - drops invisible characters (zero-width, soft hyphen, bidi controls) and
//!   combining marks, and reads every Unicode space as a space and every dash
//!   as `-`.
//!
//! Card numbers: 12 or more digits (any Unicode number character counts as a
//! digit) with any run of separators (space, tab, `.`, `-`, `/`, `_`, `+`, the
//! `+` of form encoding included) between them. One exception keeps addresses
//! readable: a run that is exactly a dotted-quad IPv4 address (four groups of
//! one to three digits, each ≤ 255, joined by single dots) is not a card number.
//!
//! Keys: `sk_`, `pk_` or `rk_` and at least 9 more letters, digits or
//! underscores, where the prefix starts a word (is not preceded by a letter,
//! so `network_interface` stays) or is followed by `test_` or `live_` (the
//! shape of a real key, found even when glued to a preceding word).
//!
//! Both readings are searched: with escapes decoded, and with them read
//! literally (`%222222222222` is a quote and ten digits decoded, and twelve
//! digits as it stands).
//!
//! Invariant: neither view of the output holds such a digit run or such a key
//! token: `redact(redact(s)) == redact(s)`. Not covered: encodings
//! other than percent-encoding (HTML entities, base64, JSON `\u` escapes).

mod view;

use std::ops::Range;

use view::{normalise, Escapes, Normalised};

/// Replacement text for a redacted span.
pub const REDACTED: &str = "[REDACTED]";

/// Digits (ignoring separators) that make a span look like a card number.
const MIN_PAN_DIGITS: usize = 12;

/// Characters from the key prefix on that make a token look like a key.
const MIN_KEY_CHARS: usize = 12;

/// Replaces card-number-like and key-like content of `input` with [`REDACTED`].
///
/// The detectors read the text twice: with `%XX` escapes decoded and with
/// them read literally, since a reader may see it either way (`%222222…` is a
/// quote and ten digits, or twelve digits): what either reading finds is
/// redacted.
pub fn redact(input: &str) -> String {
    let mut spans = Vec::new();
    for escapes in [Escapes::Decoded, Escapes::Literal] {
        let view = normalise(input, escapes);
        spans.extend(card_spans(&view));
        spans.extend(key_spans(&view));
    }
    replace(input, spans)
}

fn is_digit(c: char) -> bool {
    c.is_numeric()
}

/// What may stand between the digits of one card number.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '.' | '-' | '/' | '_' | '+')
}

/// Original ranges of every maximal digit run (digits joined by separator
/// runs) with at least [`MIN_PAN_DIGITS`] digits that is not an IPv4 address.
fn card_spans(view: &[Normalised]) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(first) = view.get(i) {
        if !is_digit(first.c) {
            i += 1;
            continue;
        }
        let (mut digits, mut last, mut j) = (0, i, i);
        while let Some(n) = view.get(j) {
            if is_digit(n.c) {
                digits += 1;
                last = j;
            } else if !is_separator(n.c) {
                break;
            }
            j += 1;
        }
        let run = view.get(i..=last).unwrap_or_default();
        if digits >= MIN_PAN_DIGITS && !is_dotted_quad(run) {
            if let Some(end) = run.last() {
                spans.push(first.span.start..end.span.end);
            }
        }
        i = last + 1;
    }
    spans
}

/// `a.b.c.d`, each part one to three ASCII digits and at most 255.
fn is_dotted_quad(run: &[Normalised]) -> bool {
    let text: String = run.iter().map(|n| n.c).collect();
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|v| v <= 255)
        })
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Original ranges of every key-like token (see the module documentation).
fn key_spans(view: &[Normalised]) -> Vec<Range<usize>> {
    let at = |k: usize| view.get(k).map(|n| n.c);
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        let prefix = matches!(c, 's' | 'p' | 'r') && at(i + 1) == Some('k') && at(i + 2) == Some('_');
        let word_start = i == 0 || !at(i - 1).is_some_and(|p| p.is_ascii_alphabetic());
        let key_shaped = || {
            let mode: String = (i + 3..i + 8).filter_map(at).collect();
            mode == "test_" || mode == "live_"
        };
        if prefix && (word_start || key_shaped()) {
            let len = (i..).take_while(|&k| at(k).is_some_and(is_token_char)).count();
            if len >= MIN_KEY_CHARS {
                let end = i + len - 1;
                if let (Some(first), Some(last)) = (view.get(i), view.get(end)) {
                    spans.push(first.span.start..last.span.end);
                }
                i = end + 1;
                continue;
            }
        }
        i += 1;
    }
    spans
}

/// `input` with every range in `spans` (merged where they overlap or touch)
/// replaced by one [`REDACTED`].
fn replace(input: &str, mut spans: Vec<Range<usize>>) -> String {
    spans.sort_by_key(|s| s.start);
    let mut out = String::with_capacity(input.len());
    let mut done = 0;
    let mut pending: Option<Range<usize>> = None;
    let flush = |out: &mut String, done: &mut usize, span: Range<usize>| {
        out.push_str(input.get(*done..span.start).unwrap_or_default());
        out.push_str(REDACTED);
        *done = span.end;
    };
    for span in spans {
        pending = match pending {
            Some(p) if span.start <= p.end => Some(p.start..p.end.max(span.end)),
            Some(p) => {
                flush(&mut out, &mut done, p);
                Some(span)
            }
            None => Some(span),
        };
    }
    if let Some(p) = pending {
        flush(&mut out, &mut done, p);
    }
    out.push_str(input.get(done..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_escape_that_hides_a_digit_run_in_one_reading_is_redacted() {
        // Found by fuzzing: decoded, `%22` is a quote before ten digits;
        // literally, twelve digits follow the `%`.
        assert_eq!(redact("H%222222222222r"), "H%[REDACTED]r");
        // And the other way round: decoded digits join a run.
        assert_eq!(redact("4242%34242424242"), "[REDACTED]");
    }

    #[test]
    fn card_numbers_and_keys_are_redacted() {
        assert_eq!(redact("agent 4242424242424242 x"), "agent [REDACTED] x");
        assert_eq!(redact("4242 4242 4242 4242"), "[REDACTED]");
        assert_eq!(redact("4242-4242-4242-4242;1"), "[REDACTED];1");
        // `/` joins digits too: the trailing 1 belongs to the run.
        assert_eq!(redact("4242-4242-4242-4242/1"), "[REDACTED]");
        assert_eq!(redact("curl/8.1.2 (x86_64) 12345"), "curl/8.1.2 (x86_64) 12345");
        assert_eq!(redact("k=sk_test_abcdefghijklmnop;"), "k=[REDACTED];");
        assert_eq!(redact("risk_level"), "risk_level");
    }

    /// The text as a reader (or a log pipeline) could turn it back into:
    /// percent escapes decoded until none is left, compatibility forms
    /// (full-width and the like) folded (NFKC), lower case. Written
    /// independently of the module's own normalisation.
    fn reference_view(s: &str) -> String {
        use unicode_normalization::UnicodeNormalization;
        let mut bytes = s.as_bytes().to_vec();
        loop {
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match (bytes[i], hex) {
                    (b'%', Some(b)) if bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() => {
                        out.push(b);
                        i += 3;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            if out == bytes {
                break;
            }
            bytes = out;
        }
        String::from_utf8_lossy(&bytes)
            .nfkc()
            .collect::<String>()
            .to_lowercase()
    }

    /// Every decimal digit of the reference view, as ASCII, in order.
    fn reference_digits(s: &str) -> String {
        reference_view(s)
            .chars()
            .filter_map(|c| c.to_digit(10).map(|d| char::from(b'0' + d as u8)))
            .collect()
    }

    #[test]
    fn separators_case_and_encodings_of_the_issue_are_redacted() {
        for (input, expected) in [
            ("ua 4242.4242.4242.4242 x", "ua [REDACTED] x"),
            ("ua 4242/4242/4242/4242 x", "ua [REDACTED] x"),
            ("ua 4242  4242  4242  4242 x", "ua [REDACTED] x"),
            ("ua 4242 \t 4242_4242+4242 x", "ua [REDACTED] x"),
            ("ua 4242 - 4242 - 4242 - 4242", "ua [REDACTED]"),
            ("ua 4242%204242%204242%204242", "ua [REDACTED]"),
            ("ua %34%32%34%32424242424242", "ua [REDACTED]"),
            ("ua %2534%2532424242424242424242", "ua [REDACTED]"),
            ("ua \u{FF14}\u{FF12}\u{FF14}\u{FF12}424242424242", "ua [REDACTED]"),
            ("ua %EF%BC%94%EF%BC%92424242424242 x", "ua [REDACTED] x"),
            ("ua \u{0664}\u{0662}\u{0664}\u{0662}424242424242", "ua [REDACTED]"),
            ("ua 4242\u{00A0}4242\u{2013}4242\u{200B}4242", "ua [REDACTED]"),
            ("k=SK_TEST_abcdefghijklmnop;", "k=[REDACTED];"),
            ("k=Sk_LiVe_abcdefghijklmnop;", "k=[REDACTED];"),
            ("k=sk%5Ftest%5Fabcdefghijklmnop;", "k=[REDACTED];"),
            ("k=sk%5ftest%5fabcdefghijklmnop;", "k=[REDACTED];"),
            ("k=SK%255FTEST%255Fabcdefghijklmnop;", "k=[REDACTED];"),
            ("k=%73%6B_test_abcdefghijklmnop;", "k=[REDACTED];"),
            ("k=\u{FF53}\u{FF4B}\u{FF3F}test_abcdefghijklmnop;", "k=[REDACTED];"),
            ("k=rk_live_%41bcdefghijklmnop;", "k=[REDACTED];"),
        ] {
            assert_eq!(redact(input), expected, "{input:?}");
        }
    }

    #[test]
    fn ordinary_user_agents_dates_addresses_and_short_numbers_are_unchanged() {
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.204 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2.1 Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.210 Mobile Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.133",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "okhttp/4.12.0",
            "Go-http-client/2.0",
            "Dalvik/2.1.0 (Linux; U; Android 11; Pixel 5 Build/RQ3A.211001.001)",
            "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/sts#1.26.6",
            "Stripe/v1 RubyBindings/10.3.0",
            "PostmanRuntime/7.36.0",
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            "Java/17.0.9",
            "paywarden-cli payment list",
            "deploy 2026-12-07 from 10.0.0.1",
            "proxy 192.168.100.200 and 255.255.255.255",
            "order 1234567 ref 99-88-77",
            "risk_level network_interface task_scheduler",
            "100% sure, 50%off %zz %",
        ] {
            assert_eq!(redact(ua), ua);
        }
    }

    /// Separators a card number may be written with, alone or in runs.
    fn separator() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just(""),
            Just(""),
            Just(""),
            Just(" "),
            Just("  "),
            Just("\t"),
            Just("."),
            Just("-"),
            Just("/"),
            Just("_"),
            Just("+"),
            Just(" - "),
            Just("\u{00A0}"),
            Just("\u{2013}"),
            Just("\u{3000}"),
        ]
    }

    /// `c` as it may be written: itself, upper case, full width, or
    /// percent-encoded (hex in either case, once or twice).
    fn disguise(c: char, how: u8) -> String {
        let escape = |s: &str, upper: bool| -> String {
            s.bytes()
                .map(|b| {
                    if upper {
                        format!("%{b:02X}")
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect()
        };
        let wide = |c: char| {
            if c.is_ascii_graphic() {
                char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        };
        match how % 8 {
            0..=2 => c.to_string(),
            3 => c.to_ascii_uppercase().to_string(),
            4 => wide(c).to_string(),
            5 => escape(&c.to_string(), true),
            6 => escape(&wide(c).to_string(), false),
            _ => escape(&escape(&c.to_string(), true), false),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn card_numbers_in_any_spelling_disappear(
            prefix in "[a-zA-Z ;:()/,=]{0,20}",
            pan in "[0-9]{12,19}",
            seps in proptest::collection::vec(separator(), 19),
            how in proptest::collection::vec(any::<u8>(), 19),
            suffix in "[a-zA-Z ;:()/,=]{0,20}",
        ) {
            let written: String = pan
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    let sep = if i + 1 < pan.len() { seps[i] } else { "" };
                    format!("{}{sep}", disguise(c, how[i]))
                })
                .collect();
            let out = redact(&format!("{prefix}{written}{suffix}"));
            prop_assert!(!reference_digits(&out).contains(&pan), "{written:?} -> {out:?}");
        }

        #[test]
        fn keys_in_any_case_and_encoding_disappear(
            prefix in "[a-zA-Z ;:()/,=]{0,20}",
            kind in prop_oneof![Just("sk"), Just("pk"), Just("rk")],
            mode in prop_oneof![Just("test"), Just("live")],
            body in "[a-zA-Z0-9]{38}",
            how in proptest::collection::vec(any::<u8>(), 46),
            suffix in "[ ;:()/,=][a-zA-Z ;:()/,=]{0,20}",
        ) {
            let key = format!("{kind}_{mode}_{body}");
            let written: String = key.chars().zip(&how).map(|(c, h)| disguise(c, *h)).collect();
            let out = redact(&format!("{prefix}{written}{suffix}"));
            let view = reference_view(&out);
            prop_assert!(!view.contains(&body.to_lowercase()), "{written:?} -> {out:?}");
            prop_assert!(!view.contains(&format!("{kind}_{mode}_")), "{written:?} -> {out:?}");
        }

        /// The module invariant, on text made of what the detectors look at:
        /// the output's own view holds nothing they find, so redacting it
        /// again changes nothing.
        #[test]
        fn output_holds_nothing_the_detectors_find(s in "([0-9 ._/+\t-]|%|[0-9a-fA-F]|[sSpPrRkK]|_|test|live|\u{FF10}|\u{FF3F}|\u{200B}|\u{0663}|[xyz;=\\[\\]]){0,80}") {
            let out = redact(&s);
            for escapes in [Escapes::Decoded, Escapes::Literal] {
                let view = normalise(&out, escapes);
                prop_assert!(card_spans(&view).is_empty(), "{s:?} -> {out:?}");
                prop_assert!(key_spans(&view).is_empty(), "{s:?} -> {out:?}");
            }
            prop_assert_eq!(redact(&out), out.clone());
        }

        #[test]
        fn redaction_never_panics(s in "\\PC{0,120}") {
            let _ = redact(&s);
        }

        #[test]
        fn output_never_holds_twelve_consecutive_digits(s in "([0-9 a-z_-]|%){0,80}") {
            let out = redact(&s);
            let longest = out.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
            prop_assert!(longest < MIN_PAN_DIGITS, "{out}");
        }

        #[test]
        fn embedded_card_numbers_disappear(prefix in "[a-z /]{0,20}", pan in "[0-9]{12,19}", seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-")], 19), suffix in "[a-z /]{0,20}") {
            let formatted: String = pan.chars().zip(seps.iter()).map(|(c, s)| format!("{c}{s}")).collect();
            let out = redact(&format!("{prefix}{}{suffix}", formatted.trim_end_matches([' ', '-'])));
            let digits: String = out.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(!digits.contains(&pan), "{out}");
        }
    }
}
