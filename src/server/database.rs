//! How the gateway may reach its database: a PostgreSQL server on another
//! host only over TLS with a verified certificate.
//!
//! The connection carries API-key hashes, sealed card data, audit entries and
//! the database password. Over a network it must be encrypted and the server
//! authenticated, or whoever sits in between reads and rewrites all of it; so
//! outside `--dev` a PostgreSQL URL whose host is not this machine must say
//! `sslmode=verify-full` (or `verify-ca`). `require` is refused: it encrypts
//! but accepts any certificate. Loopback addresses and Unix sockets never
//! leave the machine and may go without.

use std::net::IpAddr;

/// `Err` with what to change, when `url` would reach a remote PostgreSQL
/// server without a verified TLS connection.
pub fn check_transport(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|_| "database_url is not a valid PostgreSQL URL".to_owned())?;
    let query = |name: &str| {
        parsed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    // A `host` parameter overrides the authority (it may name a socket directory).
    let host = query("host")
        .or_else(|| parsed.host_str().map(str::to_owned))
        .unwrap_or_default();
    if is_local(&host) {
        return Ok(());
    }
    match query("sslmode").as_deref() {
        Some("verify-full" | "verify-ca") => Ok(()),
        _ => Err(format!(
            "database_url reaches PostgreSQL on {host}, another host, without a verified TLS connection: add \
             sslmode=verify-full (and sslrootcert=FILE for a private CA) to the URL; sslmode=require does not \
             check the server's certificate"
        )),
    }
}

/// This machine: a loopback address or name, or a Unix socket directory.
fn is_local(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.is_empty()
        || host.starts_with('/')
        || bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::check_transport;

    #[test]
    fn remote_postgres_needs_verified_tls() {
        for ok in [
            "sqlite:///var/lib/paywarden/paywarden.db",
            "postgres://pw@127.0.0.1:5432/pw",
            "postgres://pw@[::1]/pw",
            "postgres://pw@localhost/pw",
            "postgres:///pw?host=/var/run/postgresql",
            "postgres://pw@db.internal/pw?sslmode=verify-full",
            "postgresql://pw@10.0.0.5/pw?sslmode=verify-ca&sslrootcert=/etc/pw/ca.pem",
        ] {
            assert!(check_transport(ok).is_ok(), "{ok}");
        }
        for refused in [
            "postgres://pw@db.internal/pw",
            "postgres://pw@db.internal/pw?sslmode=require",
            "postgres://pw@db.internal/pw?sslmode=prefer",
            "postgres://pw@10.0.0.5:5432/pw?sslmode=disable",
            "postgres://pw@127.0.0.1/pw?host=db.internal",
        ] {
            let e = check_transport(refused).unwrap_err();
            assert!(e.contains("sslmode=verify-full"), "{refused}: {e}");
        }
    }

    #[test]
    fn the_refusal_does_not_echo_the_password() {
        let e = check_transport("postgres://pw:hunter2@db.internal/pw").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
