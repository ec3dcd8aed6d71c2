//! The SSRF guard against the IANA special-purpose address registries
//! (`iana-special-purpose.csv` beside this file): the first, the last and a
//! random address of every block are judged as the registries say, by
//! [`is_public`] and by [`check_url`] for an IP literal in a live-mode URL.
//!
//! What the registries leave open, decided here (and tested as such):
//! - A block whose "Globally Reachable" is False, N/A or empty (terminated) is
//!   refused whole; so is every IPv6 block outside 2000::/3, the only one the
//!   IPv6 Address Space registry allocates for global unicast (IPv4-mapped,
//!   IPv4-compatible and RFC 2765 IPv4-translated forms included: they all
//!   lie in ::/8).
//! - Two forms are decided by the IPv4 address they embed, because a
//!   translator or relay forwards to it: NAT64 64:ff9b::/96 (True in the
//!   registry) and 6to4 2002::/16 (N/A). Teredo (2001::/32, N/A) is refused
//!   with 2001::/23: its IPv4 endpoint is obfuscated and beyond our view.
//! - A globally reachable entry inside a block that is not (PCP, TURN and
//!   DNS-SD anycast, AMT, AS112-v6, ORCHIDv2, DETs) is refused with its
//!   block: anycast service addresses and identifier blocks are never a
//!   webhook receiver, and the project prefers refusing to guessing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;

use super::{check_url, is_public, UrlError};
use crate::domain::api_key::Mode;

const REGISTRY: &str = include_str!("iana-special-purpose.csv");

#[derive(Debug)]
struct Row {
    registry: String,
    block: IpNet,
    name: String,
    reachable: String,
}

impl Row {
    fn is_special_purpose(&self) -> bool {
        self.registry.ends_with("-special")
    }

    fn reachable(&self) -> bool {
        self.reachable == "True"
    }
}

/// Splits one CSV line; fields holding a comma are double-quoted.
fn fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

fn rows() -> Vec<Row> {
    let mut lines = REGISTRY.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header = fields(lines.next().unwrap());
    assert_eq!(
        header,
        [
            "registry",
            "address_block",
            "name",
            "rfc",
            "allocation",
            "termination",
            "globally_reachable"
        ]
    );
    let rows: Vec<Row> = lines
        .map(|line| {
            let f = fields(line);
            assert_eq!(f.len(), 7, "{line}");
            Row {
                registry: f[0].clone(),
                block: f[1].parse().unwrap_or_else(|e| panic!("{line}: {e}")),
                name: f[2].clone(),
                reachable: f[6].clone(),
            }
        })
        .collect();
    assert!(
        rows.iter()
            .all(|r| ["True", "False", "N/A", ""].contains(&r.reachable.as_str())),
        "unknown reachability value"
    );
    assert!(rows.len() > 70, "the registry file lost rows: {}", rows.len());
    rows
}

/// The IPv4 address that decides a NAT64 (64:ff9b::/96) or 6to4
/// (2002::/16) address.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let bits = u128::from(v6);
    let nat64: IpNet = "64:ff9b::/96".parse().unwrap();
    let six_to_four: IpNet = "2002::/16".parse().unwrap();
    if nat64.contains(&ip) {
        Some(Ipv4Addr::from(bits as u32))
    } else if six_to_four.contains(&ip) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// What the registries (and the decisions above) say of `ip`: public only if
/// every block holding it is globally reachable.
fn expected_public(ip: IpAddr, rows: &[Row]) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return expected_public(IpAddr::V4(v4), rows);
    }
    rows.iter().filter(|r| r.block.contains(&ip)).all(Row::reachable)
}

/// The address of `block` whose host part is the low bits of `r`.
fn random_in(block: &IpNet, r: u128) -> IpAddr {
    match block {
        IpNet::V4(net) => {
            let host = u32::from(net.hostmask()) & (r as u32);
            IpAddr::V4(Ipv4Addr::from(u32::from(net.network()) | host))
        }
        IpNet::V6(net) => {
            let host = u128::from(net.hostmask()) & r;
            IpAddr::V6(Ipv6Addr::from(u128::from(net.network()) | host))
        }
    }
}

fn literal_url(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}/"),
        IpAddr::V6(v6) => format!("https://[{v6}]/"),
    }
}

/// Judges `ip`, an address of `row`'s block, as the registries say.
fn judge(ip: IpAddr, row: &Row, rows: &[Row]) {
    let case = format!("{ip} in {} ({}, {})", row.block, row.name, row.registry);
    let expected = expected_public(ip, rows);
    assert_eq!(is_public(ip), expected, "is_public: {case}");
    let checked = check_url(&literal_url(ip), Mode::Live, false);
    if expected {
        assert!(checked.is_ok(), "check_url: {case}: {checked:?}");
    } else {
        assert_eq!(checked.err(), Some(UrlError::NonPublicAddress), "check_url: {case}");
    }
    // Said outright: a block that is not globally reachable is refused,
    // except where the embedded IPv4 address decides.
    if !row.reachable() && embedded_v4(ip).is_none() {
        assert!(!is_public(ip), "not globally reachable, yet allowed: {case}");
    }
}

#[test]
fn first_and_last_address_of_every_registry_block_are_judged_as_the_registry_says() {
    let rows = rows();
    for row in &rows {
        judge(row.block.network(), row, &rows);
        judge(row.block.broadcast(), row, &rows);
    }
}

#[test]
fn reachable_entries_inside_unreachable_blocks_are_refused_by_choice() {
    let rows = rows();
    let inside: Vec<String> = rows
        .iter()
        .filter(|r| r.is_special_purpose() && r.reachable())
        .filter(|r| {
            rows.iter().any(|outer| {
                outer.is_special_purpose()
                    && !outer.reachable()
                    && outer.block.prefix_len() < r.block.prefix_len()
                    && outer.block.contains(&r.block)
            })
        })
        .map(|r| r.block.to_string())
        .collect();
    // A registry update that adds one must come with a decision.
    assert_eq!(
        inside,
        [
            "192.0.0.9/32",
            "192.0.0.10/32",
            "2001:1::1/128",
            "2001:1::2/128",
            "2001:1::3/128",
            "2001:3::/32",
            "2001:4:112::/48",
            "2001:20::/28",
            "2001:30::/28"
        ]
    );
    for block in &inside {
        let block: IpNet = block.parse().unwrap();
        for ip in [block.network(), block.broadcast()] {
            assert!(!is_public(ip), "{ip}: refused with its block, by choice");
        }
    }
}

#[test]
fn the_reachable_blocks_outside_them_stay_allowed() {
    for ip in [
        "192.31.196.1",
        "192.52.193.1",
        "192.175.48.1",
        "2620:4f:8000::1",
        "2a00:1450::1",
    ] {
        assert!(is_public(ip.parse().unwrap()), "{ip}");
    }
}

proptest! {
    #[test]
    fn a_random_address_of_every_registry_block_is_judged_as_the_registry_says(r: u128) {
        let rows = rows();
        for row in &rows {
            judge(random_in(&row.block, r), row, &rows);
        }
    }
}
