//! What every command shares: the loaded configuration, output mode, the
//! step-up arguments, and helpers to open the store, the key hasher and the
//! KEK keyring.

use anyhow::Context as _;

use crate::domain::operator::Operator;
use crate::server::config::{Config, Overrides};
use crate::server::{secrets, telemetry};
use crate::services::actor::Actor;
use crate::services::key_hasher::KeyHasher;
use crate::store::Store;
use crate::vault::{KekVersion, StaticKeyring};

use super::Cli;

pub struct CliContext {
    pub config: Config,
    pub json: bool,
    pub dev: bool,
    /// `--operator` and `--totp`, as given (parsed by `step_up`).
    pub operator: Option<String>,
    pub totp: Option<super::step_up::TotpArg>,
}

impl CliContext {
    pub fn new(cli: &Cli) -> anyhow::Result<Self> {
        let overrides = Overrides {
            data_dir: cli.data_dir.clone(),
            listen: None,
            database_url: cli.database_url.clone(),
        };
        let config = Config::load(cli.config.as_deref(), &overrides)?;
        telemetry::init(config.log_format);
        Ok(Self {
            config,
            json: cli.json,
            dev: cli.dev,
            operator: cli.operator.clone(),
            totp: cli.totp.clone(),
        })
    }

    /// Opens the configured database (applying migrations).
    pub async fn store(&self) -> anyhow::Result<Store> {
        let url = self.config.database_url();
        if !self.dev {
            crate::server::database::check_transport(&url).map_err(anyhow::Error::msg)?;
        }
        if url.starts_with("sqlite:") {
            crate::secret_files::create_private_dir(&self.config.data_dir)
                .with_context(|| format!("cannot create data directory {}", self.config.data_dir.display()))?;
        }
        // The configured timeouts and deadlines; a few connections; no
        // free-space floor (an operator freeing space must still be able to act).
        let pool = crate::store::PoolSettings {
            max_connections: 4,
            min_free_bytes: 0,
            ..crate::server::pool_settings(&self.config.database)?
        };
        Store::open(&url, &pool).await.context("cannot open the database")
    }

    /// The key hasher from the configured pepper (or, with `--dev`, the
    /// development pepper in the data dir).
    pub fn hasher(&self) -> anyhow::Result<KeyHasher> {
        let pepper = match secrets::configured_pepper(&self.config, self.dev)? {
            Some(p) => p,
            None if self.dev => secrets::ensure_dev_pepper(&self.config.data_dir)?,
            None => anyhow::bail!(
                "missing configuration: secrets.api_key_pepper_file or secrets.api_key_pepper \
                 (PAYWARDEN_SECRETS__API_KEY_PEPPER_FILE); pass --dev to use the development pepper in the data dir"
            ),
        };
        Ok(KeyHasher::new(pepper))
    }

    /// The configured KEKs (current and previous), as the gateway holds
    /// them: to seal and open operators' TOTP secrets.
    pub fn keyring(&self) -> anyhow::Result<StaticKeyring> {
        let current = crate::server::current_kek(&self.config, self.dev)?
            .context("missing configuration: vault.kek_file or vault.kek (operators' secrets are sealed under it)")?;
        let keys = crate::server::kek_entries(&self.config, current, self.dev)?;
        Ok(StaticKeyring::new(
            KekVersion::new(self.config.vault.kek_version),
            keys,
        )?)
    }

    /// The audit identity of this command.
    pub fn actor(&self, command: &str) -> Actor {
        Actor::Operator {
            command: format!("{command} (os user {})", os_user()),
        }
    }

    /// The audit identity of this command run by `operator` after a step-up.
    pub fn operator_actor(&self, command: &str, operator: &Operator) -> Actor {
        Actor::Operator {
            command: format!(
                "{command} (operator {} {}, os user {})",
                operator.name,
                operator.id,
                os_user()
            ),
        }
    }
}

fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
