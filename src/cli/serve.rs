//! `paywarden serve`: start the gateway.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::connectors::Connectors;
use crate::server::listener::{self, shutdown_signal};
use crate::server::{dev, Gateway, GatewayOptions, Settings};
use crate::services::key_hasher::KeyHasher;
use crate::services::payments::PaymentPolicy;
use crate::store::Store;

use super::context::CliContext;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8443).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub async fn run(mut ctx: CliContext, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(listen) = args.listen {
        ctx.config.listen = listen;
    }
    let settings = Settings::resolve(&ctx.config, ctx.dev)?;
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
        crate::server::files::create_private_dir(&settings.data_dir)
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
            connectors: Connectors::builtin(),
        },
    );
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    tracing::info!(address = %format!("{scheme}://{local}"), "paywarden listening");
    listener::serve(
        listener,
        settings.tls,
        gateway.router(),
        settings.limits,
        shutdown_signal(),
    )
    .await;
    gateway.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
