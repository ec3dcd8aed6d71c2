//! The operator CLI drives the same database as the server, prints JSON with
//! `--json`, enforces key policy, and is itself audited.

use serde_json::Value;

use crate::both_backends;

both_backends! {
    async fn merchants_and_keys_can_be_managed_from_the_cli(app) {
        let m = app.cli_json(&["merchant", "create", "--name", "Cli Shop"]);
        let id = m["id"].as_str().unwrap();
        assert!(id.starts_with("mer_"));
        let listed = app.cli_json(&["merchant", "list"]);
        assert!(listed["data"].as_array().unwrap().iter().any(|x| x["id"] == id));

        let sk = app.cli_json(&["key", "create", "--merchant", id, "--kind", "secret"]);
        let secret = sk["secret"].as_str().unwrap();
        assert!(secret.starts_with("sk_test_"));
        assert!(paywarden::domain::api_key::looks_like_paywarden_key(secret));
        let me: Value = app.get("/v1/merchant", secret).await.json().await.unwrap();
        assert_eq!(me["id"], id);

        let rk = app.cli_json(&[
            "key", "create", "--merchant", id, "--kind", "restricted", "--permission", "payments:read",
            "--max-amount", "5000", "--currency", "usd", "--currency", "EUR", "--allow-ip", "127.0.0.1/32", "--expires-in", "90d",
        ]);
        assert!(rk["secret"].as_str().unwrap().starts_with("rk_test_"));
        assert_eq!(rk["permissions"], serde_json::json!(["payments:read"]));
        assert_eq!(rk["restrictions"]["max_amount"], 5000);
        assert_eq!(rk["restrictions"]["currencies"], serde_json::json!(["usd", "eur"]));
        let expires = rk["expires_at"].as_i64().unwrap() - rk["created"].as_i64().unwrap();
        assert!((90 * 86_400 - 5..=90 * 86_400 + 5).contains(&expires));

        let keys = app.cli_json(&["key", "list", "--merchant", id]);
        let text = keys.to_string();
        assert!(!text.contains(secret), "key list never shows a secret");
        assert_eq!(keys["data"].as_array().unwrap().len(), 2);

        let revoked = app.cli_json(&["key", "revoke", sk["id"].as_str().unwrap()]);
        assert!(revoked["revoked_at"].is_i64());
        assert_eq!(app.get("/v1/merchant", secret).await.status(), 401);

        let audit = app.audit().await;
        for action in ["merchant.created", "api_key.created", "api_key.revoked"] {
            let e = audit.iter().find(|r| r.event.action == action).unwrap_or_else(|| panic!("{action} not audited"));
            assert!(e.event.user_agent.as_deref().unwrap().starts_with("paywarden-cli"), "{action}");
        }
    }

    async fn cli_enforces_key_policy_and_rejects_bad_input(app) {
        let (m, _) = app.merchant_with_secret("Policy").await;
        let live = app.cli_json(&["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--mode", "live"]);
        assert!(live["secret"].as_str().unwrap().starts_with("sk_live_"));
        let lifetime = live["expires_at"].as_i64().unwrap() - live["created"].as_i64().unwrap();
        assert!((365 * 86_400 - 5..=365 * 86_400 + 5).contains(&lifetime), "live keys expire by default");
        for bad in [
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--mode", "live", "--expires-in", "400d"],
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "restricted"],
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--permission", "payments:read"],
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "restricted", "--permission", "payments:steal"],
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--currency", "xyz"],
            vec!["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--allow-ip", "not-a-cidr"],
            vec!["key", "create", "--merchant", "mer_doesnotexistdoesnotexist", "--kind", "secret"],
            vec!["merchant", "create", "--name", ""],
        ] {
            let mut args = bad.clone();
            args.push("--json");
            let out = app.cli(&args);
            assert!(!out.status.success(), "{bad:?} should fail");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(v["error"]["message"].as_str().is_some(), "{bad:?}");
        }
    }

    async fn the_cli_refuses_to_hash_keys_without_a_pepper(app) {
        let (m, _) = app.merchant_with_secret("NoPepper").await;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paywarden"))
            .args(["key", "create", "--merchant", m.as_str(), "--kind", "secret", "--database-url", &app.db.url])
            .current_dir(app.data_path())
            .env_remove("PAYWARDEN_SECRETS__API_KEY_PEPPER")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("api_key_pepper"));
    }
}
