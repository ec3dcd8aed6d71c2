//! The client's address as the rest of the gateway sees it (audit entries,
//! lockouts, a key's allowed IP ranges): the TCP peer, or — only when the peer
//! is a trusted proxy — the right-most `X-Forwarded-For` entry that is not
//! itself a trusted proxy. (`Forwarded` (RFC 7239) is not read.)
//!
//! What must always hold: a client that reaches us directly cannot choose its
//! address (its header is not read at all); entries are read right to left and
//! only up to the client's, so whatever a client wrote before its proxy's entry
//! never matters; an entry that cannot be read before the client's is found
//! makes the request unreadable ([`ForwardedForError`], answered 400), and is
//! never replaced by the proxy's own address, which would make every client
//! behind the proxy share one lockout.
//!
//! Entries are addresses, optionally with a port, as proxies write them:
//! `203.0.113.9`, `203.0.113.9:4711`, `2001:db8::1`, `[2001:db8::1]` and
//! `[2001:db8::1]:4711`. Anything else (`unknown`, obfuscated identifiers,
//! empty entries, zone ids) is unreadable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::domain::restrictions::canonical;

/// A trusted proxy sent an `X-Forwarded-For` chain whose client entry cannot
/// be read. Carries no header content (it is client-influenced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unreadable X-Forwarded-For entry {position} (counted from the right) from trusted proxy {proxy}")]
pub struct ForwardedForError {
    /// The proxy that sent the chain.
    pub proxy: IpAddr,
    /// 1 for the right-most entry.
    pub position: usize,
}

/// The client's address for a request from `peer` with `headers`, believing
/// `X-Forwarded-For` only from peers within `trusted`. When every entry is a
/// trusted address too, the left-most one (the earliest hop known) is the
/// client.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Result<IpAddr, ForwardedForError> {
    let peer = peer.map(canonical).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    let mut values = headers
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .iter()
        .peekable();
    if values.peek().is_none() {
        return Ok(peer);
    }
    // Header lines in order, each a comma-separated list; a value that is not
    // visible ASCII is one unreadable entry.
    let entries: Vec<Option<&str>> = values
        .flat_map(|v| match v.to_str() {
            Ok(text) => text.split(',').map(|e| Some(e.trim())).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut client = peer;
    for (i, entry) in entries.iter().rev().enumerate() {
        let unreadable = ForwardedForError {
            proxy: peer,
            position: i + 1,
        };
        let ip = entry.and_then(parse_entry).ok_or(unreadable)?;
        if !is_trusted(&ip) {
            return Ok(ip);
        }
        client = ip;
    }
    Ok(client)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(canonical(ip))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let headers = xff(&["203.0.113.9, 10.0.0.2"]);
        let proxy = ip("10.0.0.1");
        let stranger = ip("198.51.100.7");
        assert_eq!(client_ip(Some(proxy), &headers, &trusted()), Ok(ip("203.0.113.9")));
        assert_eq!(client_ip(Some(stranger), &headers, &trusted()), Ok(stranger));
        assert_eq!(client_ip(Some(proxy), &headers, &[]), Ok(proxy));
        // A stranger's garbage is not read at all.
        assert_eq!(client_ip(Some(stranger), &xff(&["garbage"]), &trusted()), Ok(stranger));
    }

    #[test]
    fn entries_with_ports_and_brackets_name_the_client() {
        let proxy = Some(ip("10.0.0.1"));
        for (entry, client) in [
            ("198.51.100.20:4711", "198.51.100.20"),
            ("[2001:db8::7]:4711", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("::ffff:198.51.100.20", "198.51.100.20"),
            ("[::ffff:198.51.100.20]:1", "198.51.100.20"),
            (" 198.51.100.20 ", "198.51.100.20"),
        ] {
            assert_eq!(client_ip(proxy, &xff(&[entry]), &trusted()), Ok(ip(client)), "{entry}");
        }
    }

    #[test]
    fn only_entries_up_to_the_client_are_read() {
        let proxy = Some(ip("10.0.0.1"));
        let chain = xff(&["garbage, 203.0.113.1", "[2001:db8::1]:9, 10.0.0.3:80"]);
        assert_eq!(client_ip(proxy, &chain, &trusted()), Ok(ip("2001:db8::1")));
        // Every hop trusted: the earliest one is the client, not the proxy.
        assert_eq!(
            client_ip(proxy, &xff(&["10.1.1.1, 10.0.0.3"]), &trusted()),
            Ok(ip("10.1.1.1"))
        );
        // No header: the proxy itself is the client (e.g. its health checks).
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted()), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn an_unreadable_client_entry_is_an_error_not_the_proxy() {
        let proxy = ip("10.0.0.1");
        for (chain, position) in [
            ("not-an-address", 1),
            ("unknown", 1),
            ("", 1),
            ("203.0.113.9, ", 1),
            ("203.0.113.9,,10.0.0.2", 2),
            ("198.51.100.20:notaport", 1),
            ("198.51.100.20:70000", 1),
            ("2001:db8::7]:4711", 1),
            ("[2001:db8::7", 1),
            ("[198.51.100.20]:1", 1),
            ("fe80::1%eth0", 1),
            ("198.51.100.20:4711:1", 1),
            ("_hidden, 10.0.0.2", 2),
        ] {
            assert_eq!(
                client_ip(Some(proxy), &xff(&[chain]), &trusted()),
                Err(ForwardedForError { proxy, position }),
                "{chain:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_bytes(b"203.0.113.\xff").unwrap());
        assert!(client_ip(Some(proxy), &headers, &trusted()).is_err());
    }
}
