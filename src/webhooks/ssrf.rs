//! Where webhooks may go: the URL policy and the SSRF guard.
//!
//! Invariants:
//! - A webhook URL is `https://` without credentials or fragment; `http://`
//!   only to a loopback host when the gateway runs in dev mode.
//! - A live-mode endpoint only ever reaches public addresses: its host, if an
//!   IP literal, and every address its name resolves to must pass
//!   [`is_public`]: not in a block of the IANA special-purpose registries that
//!   is not globally reachable (loopback, private, link-local, CGNAT,
//!   unique-local, documentation, benchmarking, cloud metadata…), not
//!   multicast, and for IPv6 inside 2000::/3 (so no IPv4-mapped, -compatible
//!   or -translated form, nor Teredo); NAT64 and 6to4 addresses are judged by
//!   the IPv4 address they reach. Checked at creation and
//!   again at each delivery by [`GuardedResolver`], which hands the HTTP client
//!   only the addresses it checked, so DNS rebinding between check and connect
//!   cannot bypass it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::domain::api_key::Mode;
use crate::domain::merchant::is_bidi_control;

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL may not receive webhooks. Messages describe the rule, never the
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must be an absolute URL of at most 2048 characters")]
    Malformed,
    #[error("must use https (plain http only to localhost in development mode)")]
    NotHttps,
    #[error("must not contain credentials")]
    Credentials,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("must not point to a private, loopback, link-local or otherwise non-public address")]
    NonPublicAddress,
    #[error("could not be resolved to an address")]
    Unresolvable,
}

/// A URL that passed the static checks of [`check_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

/// Checks scheme, credentials and (for IP literals in live mode) the address.
/// `dev` is the gateway's development mode. Names are checked by [`resolve_checked`].
pub fn check_url(raw: &str, mode: Mode, dev: bool) -> Result<WebhookUrl, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::Malformed);
    }
    // The URL standard would quietly drop tabs and line breaks, map invisible
    // characters in a host to nothing and percent-encode the rest: a URL that
    // reads as one thing and calls another. Refused instead, like a payment's
    // return_url.
    if raw
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || is_bidi_control(c))
    {
        return Err(UrlError::Malformed);
    }
    let url = Url::parse(raw).map_err(|_| UrlError::Malformed)?;
    let host = url.host().ok_or(UrlError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if dev && is_loopback_host(&host) => {}
        _ => return Err(UrlError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlError::Fragment);
    }
    if mode == Mode::Live {
        match host {
            Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => return Err(UrlError::NonPublicAddress),
            Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => return Err(UrlError::NonPublicAddress),
            Host::Domain(name) if is_local_name(name) => return Err(UrlError::NonPublicAddress),
            _ => {}
        }
    }
    Ok(WebhookUrl(url))
}

/// For a live-mode URL with a host name: resolves it and requires every
/// address to be public. Test-mode URLs and IP literals pass unchanged.
pub async fn resolve_checked(url: &WebhookUrl, mode: Mode) -> Result<(), UrlError> {
    if mode != Mode::Live {
        return Ok(());
    }
    let Some(Host::Domain(name)) = url.url().host() else {
        return Ok(());
    };
    let port = url.url().port_or_known_default().unwrap_or(443);
    public_addresses(name, port).await.map(drop)
}

/// Every address of `name`, if all are public.
async fn public_addresses(name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|_| UrlError::Unresolvable)?
        .collect();
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable);
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(UrlError::NonPublicAddress);
    }
    Ok(addrs)
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Names that are local by definition, whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local") || name.ends_with(".internal")
}

/// Whether `ip` is a globally reachable unicast address a webhook may go to.
/// The decisions the registries leave open are listed in `ssrf/registry.rs`,
/// which tests this function against them.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// A block of addresses: `bits` is the address as an integer, `len` the
/// prefix length.
struct Block<T> {
    bits: T,
    len: u32,
}

/// IPv4 blocks that are refused: every entry of the IANA IPv4 Special-Purpose
/// Address Registry that is not globally reachable (the reachable anycast
/// addresses 192.0.0.9 and 192.0.0.10 go with their /24), and multicast.
/// `ssrf/registry.rs` tests this against the registry.
const REFUSED_V4: [Block<u32>; 15] = [
    v4(0, 0, 0, 0, 8),       // "this network", 0.0.0.0
    v4(10, 0, 0, 0, 8),      // private
    v4(100, 64, 0, 0, 10),   // shared address space, CGNAT (incl. 100.100.100.200 metadata)
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local, incl. 169.254.169.254 metadata
    v4(172, 16, 0, 0, 12),   // private
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments (DS-Lite, dummy, PCP/TURN anycast, NAT64 discovery)
    v4(192, 0, 2, 0, 24),    // TEST-NET-1
    v4(192, 88, 99, 0, 24),  // 6to4 relay anycast (terminated), 6a44 relay
    v4(192, 168, 0, 0, 16),  // private
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // TEST-NET-2
    v4(203, 0, 113, 0, 24),  // TEST-NET-3
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, limited broadcast
];

/// The only IPv6 block allocated for global unicast (IPv6 Address Space
/// registry): everything outside it is refused, which covers ::/8 (loopback,
/// unspecified, IPv4-mapped, IPv4-compatible, RFC 2765 IPv4-translated
/// ::ffff:0:a.b.c.d, local-use NAT64 64:ff9b:1::/48), 100::/64 discard,
/// 100:0:0:1::/64 dummy, 5f00::/16 SRv6, fc00::/7 unique-local (incl.
/// fd00:ec2::254 metadata), fe80::/10 link-local, fec0::/10 and multicast.
const GLOBAL_UNICAST_V6: Block<u128> = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// IPv6 blocks inside 2000::/3 that are refused.
const REFUSED_V6: [Block<u128>; 3] = [
    // IETF protocol assignments: Teredo (tunnels to an IPv4 host we cannot
    // see), benchmarking, ORCHID; the reachable anycast and identifier
    // blocks in it (PCP, TURN, DNS-SD, AMT, AS112-v6, ORCHIDv2, DETs) too.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),      // documentation
];

/// NAT64 well-known prefix: a translator forwards to the embedded IPv4 address.
const NAT64_V6: Block<u128> = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

/// 6to4: a relay forwards to the IPv4 address in bits 16..48.
const SIX_TO_FOUR_V6: Block<u128> = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u32) -> Block<u32> {
    Block {
        bits: Ipv4Addr::new(a, b, c, d).to_bits(),
        len,
    }
}

const fn v6(s: [u16; 8], len: u32) -> Block<u128> {
    let [a, b, c, d, e, f, g, h] = s;
    Block {
        bits: Ipv6Addr::new(a, b, c, d, e, f, g, h).to_bits(),
        len,
    }
}

impl Block<u32> {
    fn contains(&self, ip: u32) -> bool {
        (ip ^ self.bits).checked_shr(32 - self.len).unwrap_or(0) == 0
    }
}

impl Block<u128> {
    fn contains(&self, ip: u128) -> bool {
        (ip ^ self.bits).checked_shr(128 - self.len).unwrap_or(0) == 0
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !REFUSED_V4.iter().any(|b| b.contains(bits))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    // Forms that reach an IPv4 address through a translator or relay: the
    // IPv4 address decides. The truncating casts take the embedded 32 bits.
    if NAT64_V6.contains(bits) {
        return is_public_v4(Ipv4Addr::from(bits as u32));
    }
    if SIX_TO_FOUR_V6.contains(bits) {
        return is_public_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    GLOBAL_UNICAST_V6.contains(bits) && !REFUSED_V6.iter().any(|b| b.contains(bits))
}

/// The resolver of the live-mode HTTP client: resolves with the system
/// resolver and fails unless every address is public, then hands the client
/// exactly those addresses, so the connection goes where the check looked.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

/// The error a [`GuardedResolver`] fails a lookup with.
#[derive(Debug, thiserror::Error)]
#[error("webhook host resolves to a non-public address")]
pub struct BlockedAddress;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_local_name(&host) {
                return Err(Box::new(BlockedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            match public_addresses(&host, 0).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(UrlError::NonPublicAddress) => {
                    Err(Box::new(BlockedAddress) as Box<dyn std::error::Error + Send + Sync>)
                }
                Err(e) => {
                    Err(Box::new(std::io::Error::other(e.to_string())) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}

#[cfg(test)]
mod registry;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn live(raw: &str) -> Result<WebhookUrl, UrlError> {
        check_url(raw, Mode::Live, false)
    }

    #[test]
    fn only_https_without_credentials() {
        assert!(live("https://hooks.example.com/pw").is_ok());
        assert_eq!(live("http://hooks.example.com/pw").err(), Some(UrlError::NotHttps));
        assert_eq!(live("ftp://hooks.example.com/").err(), Some(UrlError::NotHttps));
        assert_eq!(
            live("https://u:p@hooks.example.com/").err(),
            Some(UrlError::Credentials)
        );
        assert_eq!(live("https://u@hooks.example.com/").err(), Some(UrlError::Credentials));
        assert_eq!(live("https://hooks.example.com/#x").err(), Some(UrlError::Fragment));
        assert_eq!(live("not a url").err(), Some(UrlError::Malformed));
        assert_eq!(live("https://").err(), Some(UrlError::Malformed));
        assert_eq!(
            live(&format!("https://a.example/{}", "x".repeat(2048))).err(),
            Some(UrlError::Malformed)
        );
    }

    #[test]
    fn invisible_and_control_characters_are_refused_not_cleaned_up() {
        for raw in [
            "https://hooks\u{FEFF}.example.com/",
            "https://hooks.example.com/p\tw",
            "https://hooks.example.com/pw\r\n",
            " https://hooks.example.com/",
            "https://hooks.example.com/a\u{202E}b",
            "https://hooks.example.com/?q=a\u{200B}",
        ] {
            assert_eq!(live(raw).err(), Some(UrlError::Malformed), "{raw:?}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_in_dev_mode() {
        assert!(check_url("http://localhost:3000/hook", Mode::Test, true).is_ok());
        assert!(check_url("http://127.0.0.1:3000/hook", Mode::Test, true).is_ok());
        assert!(check_url("http://[::1]:3000/hook", Mode::Test, true).is_ok());
        assert_eq!(
            check_url("http://localhost:3000/", Mode::Test, false).err(),
            Some(UrlError::NotHttps)
        );
        assert_eq!(
            check_url("http://example.com/", Mode::Test, true).err(),
            Some(UrlError::NotHttps)
        );
        assert_eq!(
            check_url("http://10.0.0.1/", Mode::Test, true).err(),
            Some(UrlError::NotHttps)
        );
    }

    #[test]
    fn live_mode_refuses_non_public_literals_and_local_names() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1.2.3:8443/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://100.100.100.200/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[fe80::1]/",
            "https://[fc00::1]/",
            "https://[fd00:ec2::254]/",
            "https://[ff02::1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:a00:1::]/",
            "https://[2001:0:4136:e378::1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            // RFC 2765 IPv4-translated (::ffff:0:a.b.c.d), IPv4-mapped and
            // IPv4-compatible forms: refused whatever the address they embed.
            "https://[::ffff:0:7f00:1]/",
            "https://[::ffff:0:a9fe:a9fe]/",
            "https://[::ffff:0:808:808]/",
            "https://[::ffff:8.8.8.8]/",
            "https://[::8.8.8.8]/",
            "https://[::7f00:1]/",
            // NAT64 and 6to4 embedding a non-public IPv4 address.
            "https://[64:ff9b::7f00:1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b:1::808:808]/",
            "https://[2002:7f00:1::]/",
            "https://[2002:c0a8:101::1]/",
            "https://[2002:a9fe:a9fe::1]/",
            // Other special-purpose blocks.
            "https://[100::1]/",
            "https://[100:0:0:1::1]/",
            "https://[2001:2::1]/",
            "https://[2001:10::1]/",
            "https://[2001:db8::1]/",
            "https://[3fff::1]/",
            "https://[5f00::1]/",
            "https://[fec0::1]/",
            "https://[4000::1]/",
            "https://192.0.0.9/",
            "https://192.88.99.1/",
            "https://198.18.0.1/",
            "https://240.0.0.1/",
            "https://localhost/",
            "https://api.localhost/",
            "https://LOCALHOST./",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert_eq!(live(url).err(), Some(UrlError::NonPublicAddress), "{url}");
        }
        for url in [
            "https://8.8.8.8/",
            "https://172.32.0.1/",
            "https://[2606:4700:4700::1111]/",
            "https://[64:ff9b::808:808]/",
            "https://[2002:808:808::1]/",
            "https://[2a00:1450:4001::200e]/",
        ] {
            assert!(live(url).is_ok(), "{url}");
        }
        // Test mode may target private networks (a merchant's staging server).
        assert!(check_url("https://10.1.2.3/", Mode::Test, false).is_ok());
        assert!(check_url("https://127.0.0.1:9/", Mode::Test, false).is_ok());
    }

    #[tokio::test]
    async fn live_mode_names_must_resolve_to_public_addresses() {
        let url = check_url("https://localhost:8443/", Mode::Test, false).unwrap();
        assert_eq!(resolve_checked(&url, Mode::Live).await, Err(UrlError::NonPublicAddress));
        assert_eq!(resolve_checked(&url, Mode::Test).await, Ok(()));
        let literal = check_url("https://8.8.8.8/", Mode::Live, false).unwrap();
        assert_eq!(resolve_checked(&literal, Mode::Live).await, Ok(()));
        assert!(public_addresses("localhost", 443).await.is_err());
    }

    proptest! {
        #[test]
        fn mapped_compatible_and_translated_forms_are_refused_nat64_and_6to4_follow_v4(a: u8, b: u8, c: u8, d: u8) {
            let v4 = Ipv4Addr::new(a, b, c, d);
            let [hi, lo] = [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])];
            for never in [
                v4.to_ipv6_mapped(),
                v4.to_ipv6_compatible(),
                Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            ] {
                prop_assert!(!is_public(IpAddr::V6(never)), "{}", never);
                prop_assert_eq!(live(&format!("https://[{never}]/")).err(), Some(UrlError::NonPublicAddress));
            }
            let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo);
            let six_to_four = Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1);
            for follows in [nat64, six_to_four] {
                prop_assert_eq!(is_public(IpAddr::V6(follows)), is_public(IpAddr::V4(v4)), "{}", follows);
            }
            if !is_public(IpAddr::V4(v4)) {
                let url = format!("https://{v4}/");
                prop_assert_eq!(live(&url).err(), Some(UrlError::NonPublicAddress));
            }
        }

        #[test]
        fn private_ranges_are_never_public(x: u32) {
            for (base, bits) in [(0x0A00_0000u32, 8), (0xAC10_0000, 12), (0xC0A8_0000, 16), (0x7F00_0000, 8), (0xA9FE_0000, 16), (0x6440_0000, 10)] {
                let mask = u32::MAX >> bits;
                let ip = Ipv4Addr::from(base | (x & mask));
                prop_assert!(!is_public(IpAddr::V4(ip)), "{}", ip);
            }
        }

        #[test]
        fn url_checks_never_panic(raw in ".{0,200}", dev: bool, live_mode: bool) {
            let mode = if live_mode { Mode::Live } else { Mode::Test };
            let _ = check_url(&raw, mode, dev);
        }
    }
}
