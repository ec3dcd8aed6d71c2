//! Redaction of free text that comes from outside (user agents, and any other
//! client-supplied string that is recorded): card-number-like digit runs and
//! API-key-like tokens are replaced before the text reaches a log or the audit
//! trail.
//!
//! Invariant: the output never contains a run of 12 or more digits (even with
//! spaces or dashes between them) nor a `sk_`/`pk_`/`rk_` token.

/// Replacement text for a redacted span.
pub const REDACTED: &str = "[REDACTED]";

/// Digits (ignoring single separators) that make a span look like a card number.
const MIN_PAN_DIGITS: usize = 12;

pub fn redact(input: &str) -> String {
    redact_key_tokens(&redact_digit_runs(input))
}

/// Replaces runs of ≥ 12 digits, allowing one space or dash between digits.
fn redact_digit_runs(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_ascii_digit() {
            let mut j = i;
            let mut digits = 0;
            let mut end = i;
            while let Some(&d) = chars.get(j) {
                if d.is_ascii_digit() {
                    digits += 1;
                    end = j + 1;
                    j += 1;
                } else if (d == ' ' || d == '-') && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                    j += 1;
                } else {
                    break;
                }
            }
            if digits >= MIN_PAN_DIGITS {
                out.push_str(REDACTED);
            } else {
                out.extend(chars.get(i..end).unwrap_or_default());
            }
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Replaces anything shaped like `sk_test_…`, `pk_live_…`, `rk_…` with the marker.
fn redact_key_tokens(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while !rest.is_empty() {
        let hit = ["sk_", "pk_", "rk_"].iter().filter_map(|p| rest.find(p)).min();
        let Some(start) = hit else {
            out.push_str(rest);
            break;
        };
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let token_len = from
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(from.len(), |(i, _)| i);
        if token_len >= 12 {
            out.push_str(REDACTED);
        } else {
            out.push_str(from.get(..token_len).unwrap_or_default());
        }
        rest = from.get(token_len.max(1)..).unwrap_or_default();
        if token_len == 0 {
            out.push_str(from.get(..1).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn card_numbers_and_keys_are_redacted() {
        assert_eq!(redact("agent 4242424242424242 x"), "agent [REDACTED] x");
        assert_eq!(redact("4242 4242 4242 4242"), "[REDACTED]");
        assert_eq!(redact("4242-4242-4242-4242/1"), "[REDACTED]/1");
        assert_eq!(redact("curl/8.1.2 (x86_64) 12345"), "curl/8.1.2 (x86_64) 12345");
        assert_eq!(redact("k=sk_test_abcdefghijklmnop;"), "k=[REDACTED];");
        assert_eq!(redact("risk_level"), "risk_level");
    }

    proptest! {
        #[test]
        fn output_never_holds_twelve_consecutive_digits(s in "[0-9 a-z_-]{0,80}") {
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
