//! The grammars of the payment fields, as regular expressions in the subset
//! that ECMA-262 (the OpenAPI document's dialect) and the `regex` crate read
//! alike: anchored, no lookaround, no flags, explicit classes only. The
//! OpenAPI document publishes these strings; the parsers match with them.

use std::sync::LazyLock;

use regex::Regex;

/// Free text (descriptions, metadata values): no C0/C1 control character
/// (`char::is_control`) and no bidirectional-override or zero-width character
/// (`merchant::is_bidi_control`); the same class as a merchant's name.
pub const PLAIN_TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]*$";

/// A metadata key: 1 to 40 ASCII letters, digits, `_`, `.` or `-`.
pub const METADATA_KEY_PATTERN: &str = r"^[A-Za-z0-9_.-]{1,40}$";

/// A customer's e-mail address: a local part of 1 to 64 ASCII letters,
/// digits or `._%+-`, and a domain of dot-separated DNS labels ending in a
/// top-level label of 2 to 63 letters. At most 254 characters in all.
pub const EMAIL_PATTERN: &str =
    r"^[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$";

/// Characters allowed in a return URL's path (RFC 3986 `pchar` and `/`), then
/// in its query and fragment (also `?`); anything else percent-encoded.
macro_rules! url_chars {
    (path) => {
        r"(?:[-A-Za-z0-9._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
    };
    (query) => {
        r"(?:[-A-Za-z0-9._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*"
    };
}

/// A return URL: `https://` and a host name, or `http://` and a loopback host
/// (`localhost`, `127.0.0.1`, `[::1]`, for local development); an optional
/// port of up to 4 digits; an optional path, query and fragment. No
/// credentials, no backslash, no space. A host name is dot-separated labels
/// of ASCII letters and digits joined by single hyphens, the last one starting
/// with a letter: so `url::Url::parse` always takes it as a domain (never an
/// IPv4 address, never punycode to decode) and never refuses it.
pub const RETURN_URL_PATTERN: &str = concat!(
    r"^(?:https://(?:(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*",
    r"|127\.0\.0\.1|\[::1\])|http://(?:localhost|127\.0\.0\.1|\[::1\]))(?::[0-9]{1,4})?",
    r"(?:/",
    url_chars!(path),
    r")?(?:\?",
    url_chars!(query),
    r")?(?:#",
    url_chars!(query),
    r")?$"
);

/// One group of an IPv6 address.
macro_rules! h16 {
    () => {
        "[0-9A-Fa-f]{1,4}"
    };
}

/// A dotted-decimal IPv4 address without leading zeros.
macro_rules! ipv4 {
    () => {
        r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    };
}

/// An IPv4 address, or an IPv6 address in any RFC 4291 text form without a
/// zone: 8 groups, or `::` standing for at least one zero group between a
/// head of h groups and a tail of at most 7 - h, with the last 32 bits
/// optionally in dotted-decimal (after the `::` only when 2 groups' room is
/// left). This is the language of `std::net::IpAddr`'s parser.
#[rustfmt::skip]
pub const IP_PATTERN: &str = concat!(
    "^(?:", ipv4!(),
    "|(?:", h16!(), ":){7}", h16!(),
    "|(?:", h16!(), ":){6}", ipv4!(),
    "|::(?:(?:", h16!(), ":){0,5}", ipv4!(), "|", h16!(), "(?::", h16!(), "){0,6})?",
    "|", h16!(), "::(?:(?:", h16!(), ":){0,4}", ipv4!(), "|", h16!(), "(?::", h16!(), "){0,5})?",
    "|(?:", h16!(), ":){1}", h16!(), "::(?:(?:", h16!(), ":){0,3}", ipv4!(), "|", h16!(), "(?::", h16!(), "){0,4})?",
    "|(?:", h16!(), ":){2}", h16!(), "::(?:(?:", h16!(), ":){0,2}", ipv4!(), "|", h16!(), "(?::", h16!(), "){0,3})?",
    "|(?:", h16!(), ":){3}", h16!(), "::(?:(?:", h16!(), ":)?", ipv4!(), "|", h16!(), "(?::", h16!(), "){0,2})?",
    "|(?:", h16!(), ":){4}", h16!(), "::(?:", ipv4!(), "|", h16!(), "(?::", h16!(), ")?)?",
    "|(?:", h16!(), ":){5}", h16!(), "::(?:", h16!(), ")?",
    "|(?:", h16!(), ":){6}", h16!(), "::",
    ")$"
);

/// `pattern` compiled once. The patterns are constants checked by the tests,
/// so `None` (a pattern that does not compile) cannot happen; if it did, the
/// field would accept nothing rather than everything.
fn compiled(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

pub(super) static EMAIL: LazyLock<Option<Regex>> = LazyLock::new(|| compiled(EMAIL_PATTERN));
pub(super) static RETURN_URL: LazyLock<Option<Regex>> = LazyLock::new(|| compiled(RETURN_URL_PATTERN));
pub(super) static IP: LazyLock<Option<Regex>> = LazyLock::new(|| compiled(IP_PATTERN));

pub(super) fn full_match(re: &LazyLock<Option<Regex>>, input: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(input))
}
