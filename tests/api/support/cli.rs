//! The real `paywarden` binary, run against the test's database with the
//! app's secrets, as an operator runs it.

use std::process::Output;

use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// Runs the real `paywarden` binary against this test's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// `cli` with more (or other) configuration in environment variables,
    /// e.g. `PAYWARDEN_VAULT__PREVIOUS_KEK_FILES`.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paywarden"));
        cmd.args(args)
            .arg("--database-url")
            .arg(&self.db.url)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("PAYWARDEN_SECRETS__API_KEY_PEPPER", &self.pepper_b64)
            .env("PAYWARDEN_VAULT__KEK", &self.kek_b64)
            .env("PAYWARDEN_VAULT__FINGERPRINT_KEY", &self.fingerprint_b64)
            .env("PAYWARDEN_LOG", "warn")
            .current_dir(self.dir.path());
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd.output().unwrap()
    }

    /// `cli` with `--json`, parsed; panics with stderr if the command failed.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        self.cli_json_env(args, &[])
    }

    /// `cli_env` with `--json`, parsed; panics with stderr if the command failed.
    pub fn cli_json_env(&self, args: &[&str], env: &[(&str, String)]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli_env(&all, env);
        assert!(
            out.status.success(),
            "paywarden {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}
