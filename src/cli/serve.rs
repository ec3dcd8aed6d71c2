//! `paywarden serve`: start the gateway.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::connectors::Connectors;
use crate::server::gateway::SharedRateLimits;
use crate::server::listener::{self, shutdown_signal};
use crate::server::{dev, fd_limit, Gateway, GatewayOptions, Settings};
use crate::services::key_hasher::KeyHasher;
use crate::services::payments::PaymentPolicy;
use crate::store::redis_buckets::RedisBuckets;
use crate::store::Store;

use super::context::CliContext;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Address of the operator listener (`/metrics`, `/readyz`; TLS, same
    /// certificate). Default: off; in `--dev` a free loopback port.
    #[arg(long, value_name = "ADDR")]
    operator_listen: Option<SocketAddr>,
}

pub async fn run(mut ctx: CliContext, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(listen) = args.listen {
        ctx.config.listen = listen;
    }
    if let Some(operator) = args.operator_listen {
        ctx.config.operator_listen = Some(operator);
    }
    let mut settings = Settings::resolve(&ctx.config, ctx.dev)?;
    open_files(&mut settings);
    if settings.dev {
        tracing::warn!(
            data_dir = %settings.data_dir.display(),
            "DEVELOPMENT MODE: using a self-signed certificate and development-only secrets generated under the data dir; never use them in production"
        );
    }
    if settings.tls.is_none() {
        tracing::warn!("PLAIN HTTP: TLS is disabled (plain_http = true); only run this behind a TLS-terminating proxy on a trusted network");
    }
    if settings.database_url.starts_with("sqlite:") {
        crate::secret_files::create_private_dir(&settings.data_dir)
            .with_context(|| format!("cannot create data directory {}", settings.data_dir.display()))?;
    }
    let store = Store::open(&settings.database_url, &settings.pool)
        .await
        .context("cannot open the database")?;
    tracing::info!(backend = store.backend().as_str(), "database ready");

    if settings.dev {
        let hasher = KeyHasher::new(crate::server::secrets::ensure_dev_pepper(&settings.data_dir)?);
        if let Some(demo) = dev::bootstrap(&store, &hasher, &settings.key_policy).await? {
            println!("{}", dev::banner(&demo));
        }
    }

    let listener = listener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let local = listener.local_addr()?;
    let operator = match settings.operator_listen {
        Some(addr) => Some(
            listener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (operator listener)"))?,
        ),
        None => None,
    };
    let shared_rate_limits = match &settings.redis {
        Some(redis) => {
            let buckets =
                RedisBuckets::new(&redis.url, redis.timeout).context("cannot set up the redis client (redis.url)")?;
            tracing::info!(key_prefix = %redis.key_prefix, timeout_ms = redis.timeout.as_millis() as u64, "rate limits shared by every replica through redis");
            Some(SharedRateLimits {
                buckets: std::sync::Arc::new(buckets),
                key_prefix: redis.key_prefix.clone(),
                timeout: redis.timeout,
            })
        }
        None => {
            tracing::info!("rate limits kept in this process (no redis.url): each replica limits on its own");
            None
        }
    };
    let gateway = Gateway::start(
        store,
        GatewayOptions {
            pepper: settings.pepper,
            vault: settings.vault,
            lockout: settings.lockout.clone(),
            idempotency: settings.idempotency.clone(),
            payments: PaymentPolicy {
                public_url: if settings.payments.public_url.is_empty() {
                    format!("{}://{local}", if settings.tls.is_some() { "https" } else { "http" })
                } else {
                    settings.payments.public_url.clone()
                },
                ..settings.payments.clone()
            },
            trusted_proxies: settings.trusted_proxies.clone(),
            body_limit: settings.body_limit,
            webhooks: settings.webhooks,
            rate_limits: settings.rate_limits.clone(),
            shared_rate_limits,
            connectors: Connectors::builtin()
                .with_stripe(settings.stripe)
                .with_paypal(settings.paypal),
            anomaly: settings.anomaly.clone(),
        },
    );
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %format!("{scheme}://{local}"), "paywarden listening");
    // The public listener's end (the signal) stops the operator listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let operator_server = match operator {
        Some(operator) => {
            tracing::info!(address = %format!("{scheme}://{}", operator.local_addr()?), "operator listener (/metrics, /readyz)");
            let mut stopped = stopped.clone();
            Some(tokio::spawn(listener::serve(
                operator,
                settings.tls.clone(),
                gateway.operator_router(),
                settings.limits.clone(),
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    drop(stopped);
    let requests = listener::serve(
        listener,
        settings.tls,
        gateway.router(),
        settings.limits,
        shutdown_signal(),
    )
    .await;
    let _ = stop.send(true);
    if let Some(server) = operator_server {
        let _ = server.await;
    }
    let abandoned = gateway.shutdown(settings.shutdown_drain).await;
    if abandoned.nothing() && requests == 0 {
        tracing::info!("stopped");
        return Ok(ExitCode::SUCCESS);
    }
    tracing::error!(
        requests_in_flight = requests,
        audit_entries = abandoned.audit_entries,
        database_connections_in_use = abandoned.database_connections,
        drain_secs = settings.shutdown_drain.as_secs(),
        "stopped with work abandoned: {requests} requests still running after the grace period, {} audit entries not written within the drain{}",
        abandoned.audit_entries,
        if abandoned.database_connections { ", database connections still in use" } else { "" },
    );
    Ok(ExitCode::FAILURE)
}

/// Raises the open-files limit to the hard limit (logging both figures) and
/// keeps the connection cap below it.
fn open_files(settings: &mut Settings) {
    let configured = settings.limits.max_connections;
    match fd_limit::raise() {
        Ok(Some(limit)) => {
            tracing::info!(
                soft_before = limit.before,
                soft_now = limit.after,
                hard = limit.hard,
                "open-files limit (RLIMIT_NOFILE) raised to the hard limit"
            );
            let cap = fd_limit::connection_cap(configured, limit.after);
            if cap < configured {
                tracing::warn!(
                    configured,
                    cap,
                    open_files = limit.after,
                    reserved = fd_limit::RESERVED_FILES,
                    "limits.max_connections lowered to fit under the open-files limit; raise the hard limit (e.g. LimitNOFILE= in the systemd unit) to allow more"
                );
                settings.limits.max_connections = cap;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit (RLIMIT_NOFILE)"),
    }
    tracing::info!(max_connections = settings.limits.max_connections, "connection limit");
}
