//! Each field's pattern against its parser: exhaustively over characters where
//! a class decides, over every shape of an IPv6 text, and by drawing strings
//! from the patterns.

use super::patterns::{EMAIL, IP, RETURN_URL};
use super::*;
use proptest::prelude::*;
use proptest::string::string_regex;
use regex::Regex;

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

/// The pattern without its anchors, for proptest's generator.
fn unanchored(pattern: &str) -> &str {
    pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).unwrap()
}

#[test]
fn every_pattern_compiles() {
    for p in [
        PLAIN_TEXT_PATTERN,
        METADATA_KEY_PATTERN,
        EMAIL_PATTERN,
        RETURN_URL_PATTERN,
        IP_PATTERN,
    ] {
        assert!(Regex::new(p).is_ok(), "{p}");
    }
    assert!(EMAIL.is_some() && RETURN_URL.is_some() && IP.is_some());
}

/// Every character: allowed in free text by the parsers exactly when
/// [`PLAIN_TEXT_PATTERN`] allows it.
#[test]
fn plain_text_pattern_matches_the_parsers() {
    let pattern = regex(PLAIN_TEXT_PATTERN);
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let text = format!("a{c}b");
        let allowed = pattern.is_match(&text);
        assert_eq!(Description::parse(&text).is_ok(), allowed, "U+{:04X}", u32::from(c));
        let metadata = BTreeMap::from([("k".to_owned(), text)]);
        assert_eq!(Metadata::parse(metadata).is_ok(), allowed, "U+{:04X}", u32::from(c));
    }
    assert!(Description::parse(&"é".repeat(1000)).is_ok());
    assert!(Description::parse(&"é".repeat(1001)).is_err());
    assert!(Description::parse("").is_ok());
}

#[test]
fn metadata_key_pattern_matches_the_parser() {
    let pattern = regex(METADATA_KEY_PATTERN);
    let key_ok = |k: &str| Metadata::parse(BTreeMap::from([(k.to_owned(), String::new())])).is_ok();
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let key = format!("a{c}");
        assert_eq!(key_ok(&key), pattern.is_match(&key), "U+{:04X}", u32::from(c));
    }
    for key in ["", "a", &"a".repeat(40), &"a".repeat(41), "a.b-c_D9"] {
        assert_eq!(key_ok(key), pattern.is_match(key), "{key:?}");
    }
}

#[test]
fn metadata_is_bounded() {
    let ok: BTreeMap<_, _> = (0..20).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert!(Metadata::parse(ok).is_ok());
    let too_many: BTreeMap<_, _> = (0..21).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert_eq!(Metadata::parse(too_many).unwrap_err().param, "metadata");
    let long_value = BTreeMap::from([("order".to_owned(), "x".repeat(501))]);
    assert_eq!(Metadata::parse(long_value).unwrap_err().param, "metadata[order]");
    let bad_key = BTreeMap::from([("a b".to_owned(), "x".to_owned())]);
    assert!(Metadata::parse(bad_key).is_err());
    let bidi = BTreeMap::from([("k".to_owned(), "abc\u{202E}def".to_owned())]);
    assert!(Metadata::parse(bidi).is_err());
}

#[test]
fn emails_need_a_local_part_and_a_dotted_domain() {
    for good in ["jane@example.com", "j.o+tag%x_y-z@mail.example-shop.co.uk", "a@b.io"] {
        assert!(CustomerEmail::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "jane",
        "@example.com",
        "jane@example",
        "jane doe@example.com",
        "a@b.c\n",
        "<a>@b.com",
        "a@b.c",
        "a@-b.com",
        "a@b-.com",
        "a@b..com",
        "a@b.c0m",
        "jane@exämple.com",
        "\"jane\"@example.com",
        "a@b.com.",
    ] {
        assert!(CustomerEmail::parse(bad).is_err(), "{bad:?}");
    }
    let email = |n: usize| {
        format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            "b".repeat(63),
            "b".repeat(63),
            "b".repeat(n)
        )
    };
    assert_eq!(email(57).len(), MAX_EMAIL_CHARS);
    assert!(CustomerEmail::parse(&email(57)).is_ok());
    assert!(
        CustomerEmail::parse(&format!("a{}", email(56))).is_err(),
        "65-character local part"
    );
    let too_long = email(58);
    assert!(regex(EMAIL_PATTERN).is_match(&too_long));
    assert!(CustomerEmail::parse(&too_long).is_err(), "255 characters");
}

#[test]
fn return_urls_are_https_except_on_loopback() {
    for good in [
        "https://shop.example/done?order=1",
        "http://localhost:3000/done",
        "http://127.0.0.1/done",
        "http://[::1]:8080",
        "https://[::1]/",
        "https://Shop.Example:9999/a/b?c=d&e=%20#top",
        "https://localhost",
        "https://a1.b-c.x9",
    ] {
        assert!(ReturnUrl::parse(good).is_ok(), "{good}");
    }
    assert_eq!(
        ReturnUrl::parse("https://Shop.Example:443").unwrap().as_str(),
        "https://shop.example/"
    );
    for bad in [
        "http://shop.example/done",
        "javascript:alert(1)",
        "https://user:pw@shop.example/",
        "https://user@shop.example/",
        "https://shop.example@evil.example/",
        "/relative",
        "data:text/html,hi",
        "https://1.2.3.4/",
        "https://shop.123/",
        "https://xn--nxasmq6b.example/",
        "https://-shop.example/",
        "https://shop.example./",
        "https://shop.example:65536/",
        "https://shop.example:10000/",
        "https://shop.example/a b",
        "https://shop.example\\@evil.example/",
        "https://shop.example/%zz",
        "HTTPS://shop.example/",
        " https://shop.example/",
        "https://shop.example/\n",
        "http://LOCALHOST/",
        "http://127.0.0.2/",
    ] {
        assert!(ReturnUrl::parse(bad).is_err(), "{bad:?}");
    }
    let long = format!("https://shop.example/{}", "a".repeat(MAX_URL_CHARS - 21));
    assert_eq!(long.len(), MAX_URL_CHARS);
    assert!(ReturnUrl::parse(&long).is_ok());
    assert!(ReturnUrl::parse(&format!("{long}a")).is_err());
}

#[test]
fn customer_ips_are_v4_or_v6_without_zones_or_leading_zeros() {
    for good in [
        "192.0.2.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "2001:db8::1",
        "2001:DB8:0:0:0:0:0:1",
        "::ffff:192.0.2.1",
        "1:2:3:4:5:6:1.2.3.4",
        "1::1.2.3.4",
        "1:2:3:4:5::1.2.3.4",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
    ] {
        assert!(parse_customer_ip(good).is_ok(), "{good}");
    }
    for bad in [
        "300.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "fe80::1%eth0",
        ":::",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6::1.2.3.4",
        "1.2.3.4::",
        "12345::",
        " 1.2.3.4",
        "1.2.3.4\n",
        "[::1]",
        "",
    ] {
        assert!(parse_customer_ip(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn descriptions_reject_control_characters() {
    assert!(Description::parse("Order 42").is_ok());
    assert!(Description::parse("line\nbreak").is_err());
    assert!(Description::parse(&"x".repeat(1001)).is_err());
}

/// Every shape of an IPv6 text (head groups, `::` or not, tail groups,
/// a dotted quad or not), with std's parser as the reference.
#[test]
fn ip_pattern_agrees_with_std_on_every_shape() {
    let pattern = regex(IP_PATTERN);
    let mut valid = 0;
    for head in 0..=9 {
        for compress in [false, true] {
            for tail in 0..=9 {
                for quad in [None, Some("1.2.3.4"), Some("1.2.3.04"), Some("1.2.3")] {
                    let groups = |n: usize, from: usize| (from..from + n).map(|i| format!("{i:x}")).collect::<Vec<_>>();
                    let mut text = groups(head, 1).join(":");
                    if compress {
                        text.push_str("::");
                    } else if head > 0 && tail > 0 {
                        text.push(':');
                    }
                    text.push_str(&groups(tail, 10).join(":"));
                    if let Some(quad) = quad {
                        if !text.is_empty() && !text.ends_with(':') {
                            text.push(':');
                        }
                        text.push_str(quad);
                    }
                    let std_ok = text.parse::<IpAddr>().is_ok();
                    valid += usize::from(std_ok);
                    assert_eq!(pattern.is_match(&text), std_ok, "{text}");
                }
            }
        }
    }
    assert!(valid > 50, "{valid}");
}

/// An IPv6-like text: groups around an optional `::`, maybe ending in a
/// dotted quad (octets possibly with leading zeros or out of range).
fn ipv6_like() -> impl Strategy<Value = String> {
    let group = prop_oneof![9 => "[0-9a-fA-F]{1,4}", 1 => "[0-9a-fA-F]{5}"];
    let octet = prop_oneof![8 => any::<u8>().prop_map(|o| o.to_string()), 1 => "0[0-9]", 1 => "[0-9]{3}"];
    let groups = move || prop::collection::vec(group.clone(), 0..9);
    let quad = prop_oneof![8 => Just(4usize), 1 => Just(3usize), 1 => Just(5usize)]
        .prop_flat_map(move |n| prop::collection::vec(octet.clone(), n));
    (groups(), any::<bool>(), groups(), prop::option::of(quad)).prop_map(|(head, compress, tail, v4)| {
        let mut parts = vec![head.join(":")];
        if compress {
            parts.push(":".to_owned());
        }
        parts.push(tail.join(":"));
        let mut text = parts.join(":");
        if let Some(octets) = v4 {
            if !text.is_empty() && !text.ends_with(':') {
                text.push(':');
            }
            text.push_str(&octets.join("."));
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// The pattern is the language of `std`'s parser.
    #[test]
    fn ip_pattern_agrees_with_std(text in prop_oneof![ipv6_like(), "[0-9a-fA-F:.]{0,40}", "[0-9.]{0,16}"]) {
        prop_assert_eq!(regex(IP_PATTERN).is_match(&text), text.parse::<IpAddr>().is_ok(), "{:?}", text);
    }

    #[test]
    fn printed_ips_are_accepted(ip in any::<IpAddr>()) {
        prop_assert_eq!(parse_customer_ip(&ip.to_string()), Ok(ip));
        if let IpAddr::V6(v6) = ip {
            let long = v6.segments().iter().map(|s| format!("{s:X}")).collect::<Vec<_>>().join(":");
            prop_assert_eq!(parse_customer_ip(&long), Ok(ip));
        }
    }

    #[test]
    fn ips_drawn_from_the_pattern_parse(text in string_regex(unanchored(IP_PATTERN)).unwrap()) {
        prop_assert!(parse_customer_ip(&text).is_ok(), "{:?}", text);
    }

    #[test]
    fn emails_drawn_from_the_pattern_parse(text in string_regex(unanchored(EMAIL_PATTERN)).unwrap()) {
        prop_assert_eq!(CustomerEmail::parse(&text).is_ok(), text.chars().count() <= MAX_EMAIL_CHARS, "{:?}", text);
    }

    /// `url` never refuses a URL the pattern accepts, and keeps it a
    /// credential-free https URL (or http on loopback).
    #[test]
    fn return_urls_drawn_from_the_pattern_parse(text in string_regex(unanchored(RETURN_URL_PATTERN)).unwrap()) {
        prop_assume!(text.chars().count() <= MAX_URL_CHARS);
        let parsed = ReturnUrl::parse(&text);
        prop_assert!(parsed.is_ok(), "{:?}", text);
    }

    #[test]
    fn field_parsers_never_panic(text in "\\PC{0,64}") {
        let _ = ReturnUrl::parse(&text);
        let _ = CustomerEmail::parse(&text);
        let _ = parse_customer_ip(&text);
        let _ = Description::parse(&text);
    }
}
