//! The app's gateways: each a real server on 127.0.0.1:0 over TLS, on the
//! app's database and pepper, with a vault of its own (CVCs live in memory).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use paywarden::connectors::{Connector, Connectors};
use paywarden::secret_files::DevSecrets;
use paywarden::server::gateway::SharedRateLimits;
use paywarden::server::listener;
use paywarden::server::{tls, Gateway, GatewayOptions};
use paywarden::services::payments::PaymentPolicy;
use paywarden::services::rate_limit::RateLimitPolicy;
use paywarden::store::Store;
use paywarden::vault::Vault;
use paywarden::vault::{CvcStore, Fingerprinter, KekVersion, StaticKeyring};
use secrecy::SecretBox;
use tokio::sync::oneshot;

use super::app::TestApp;
use super::client::client_trusting;
use super::fixtures::kek;
use super::replica::Replica;
use super::settings::webhook_settings;

impl TestApp {
    /// Another gateway on the same database and pepper, as a second replica.
    pub async fn spawn_replica(&self) -> Replica {
        self.spawn_replica_with(self.vault()).await
    }

    /// A replica with its own vault keys (e.g. during a KEK rotation).
    pub async fn spawn_replica_with(&self, vault: Vault) -> Replica {
        self.spawn_replica_sharing(Arc::new(vault)).await
    }

    /// A replica using `vault`, which the caller keeps (e.g. to look into
    /// its CVC holder, as a payment does).
    pub async fn spawn_replica_sharing(&self, vault: Arc<Vault>) -> Replica {
        self.start_replica(vault, Connectors::builtin(), RateLimitPolicy::default(), None)
            .await
    }

    /// A replica with its own rate limits (its buckets its own).
    pub async fn spawn_replica_with_rate_limits(&self, rate_limits: RateLimitPolicy) -> Replica {
        self.start_replica(Arc::new(self.vault()), Connectors::builtin(), rate_limits, None)
            .await
    }

    /// A replica whose buckets are `shared` (Redis) with every replica
    /// given the same store and prefix.
    pub async fn spawn_replica_with_shared_limits(
        &self,
        rate_limits: RateLimitPolicy,
        shared: SharedRateLimits,
    ) -> Replica {
        self.start_replica(Arc::new(self.vault()), Connectors::builtin(), rate_limits, Some(shared))
            .await
    }

    /// Another replica that can also route payments to `processor` (a
    /// double of a third-party processor, e.g. `processor_double`), for the
    /// merchants whose `connector` names it.
    pub async fn spawn_replica_with_processor(&self, processor: Arc<dyn Connector>) -> Replica {
        self.start_replica(
            Arc::new(self.vault()),
            Connectors::builtin().with(processor),
            RateLimitPolicy::default(),
            None,
        )
        .await
    }

    /// Another replica with `vault` and `connectors` (e.g. Stripe
    /// connections built against a fake Stripe).
    pub async fn spawn_replica_routing(&self, vault: Vault, connectors: Connectors) -> Replica {
        self.start_replica(Arc::new(vault), connectors, RateLimitPolicy::default(), None)
            .await
    }

    /// A replica with its own payments policy (e.g. SCA settings that name
    /// merchants the test created).
    pub async fn spawn_replica_with_payments(&self, payments: PaymentPolicy) -> Replica {
        self.start_replica_paying(
            Arc::new(self.vault()),
            Connectors::builtin(),
            RateLimitPolicy::default(),
            None,
            payments,
        )
        .await
    }

    async fn start_replica(
        &self,
        vault: Arc<Vault>,
        connectors: Connectors,
        rate_limits: RateLimitPolicy,
        shared_rate_limits: Option<SharedRateLimits>,
    ) -> Replica {
        self.start_replica_paying(
            vault,
            connectors,
            rate_limits,
            shared_rate_limits,
            self.payments.clone(),
        )
        .await
    }

    async fn start_replica_paying(
        &self,
        vault: Arc<Vault>,
        connectors: Connectors,
        rate_limits: RateLimitPolicy,
        shared_rate_limits: Option<SharedRateLimits>,
        payments: PaymentPolicy,
    ) -> Replica {
        let store = Store::open(&self.replica_url, &self.pool).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://127.0.0.1:{}", addr.port());
        let pepper: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&self.pepper_b64)
            .unwrap()
            .try_into()
            .unwrap();
        let gateway = Gateway::start(
            store,
            GatewayOptions {
                pepper: SecretBox::new(Box::new(pepper)),
                vault,
                lockout: self.lockout.clone(),
                idempotency: self.idempotency.clone(),
                payments: PaymentPolicy {
                    public_url: base.clone(),
                    ..payments
                },
                trusted_proxies: self.trusted_proxies.clone(),
                body_limit: 64 * 1024,
                webhooks: webhook_settings(),
                rate_limits,
                shared_rate_limits,
                connectors,
                anomaly: self.anomaly.clone(),
            },
        );
        let (cert, key) = tls::dev_paths(self.dir.path());
        let tls = tls::server_config(&cert, &key, DevSecrets::Allowed).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let router = gateway.router();
        let limits = self.limits.clone();
        // The operator listener (`/metrics`, `/readyz`), stopped with the public one.
        let operator_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let operator = format!("https://127.0.0.1:{}", operator_listener.local_addr().unwrap().port());
        let (operator_tx, operator_rx) = oneshot::channel::<()>();
        let operator_server = tokio::spawn(listener::serve(
            operator_listener,
            Some(Arc::clone(&tls)),
            gateway.operator_router(),
            limits.clone(),
            async {
                let _ = operator_rx.await;
            },
        ));
        let server = tokio::spawn(async move {
            listener::serve(listener, Some(tls), router, limits, async {
                let _ = rx.await;
            })
            .await;
            let _ = operator_tx.send(());
            let _ = operator_server.await;
            gateway.shutdown(Duration::from_secs(5)).await;
        });
        Replica {
            base,
            operator,
            client: client_trusting(&self.cert_pem),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A vault over this app's keys (each replica holds its own CVCs in memory).
    pub fn vault(&self) -> Vault {
        self.vault_with(StaticKeyring::single(KekVersion::new(1), kek(&self.kek_b64)))
    }

    /// A vault with this app's fingerprint key and the given KEKs.
    pub fn vault_with(&self, keyring: StaticKeyring) -> Vault {
        self.vault_holding(keyring, CvcStore::new(Duration::from_secs(600), 10_000).unwrap())
    }

    /// A vault with this app's keys and the given CVC holder.
    pub fn vault_with_cvcs(&self, cvcs: CvcStore) -> Vault {
        self.vault_holding(StaticKeyring::single(KekVersion::new(1), kek(&self.kek_b64)), cvcs)
    }

    fn vault_holding(&self, keyring: StaticKeyring, cvcs: CvcStore) -> Vault {
        let fingerprint: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&self.fingerprint_b64)
            .unwrap()
            .try_into()
            .unwrap();
        Vault::new(
            Arc::new(keyring),
            Fingerprinter::new(SecretBox::new(Box::new(fingerprint))),
            cvcs,
        )
    }
}
