//! The challenge end to end in a real headless chromium: a payment needing
//! a challenge is created, the browser follows `next_action.redirect_to_url`
//! to the sandbox ACS, enters a wrong code and then the one-time code the
//! page shows, and lands on the merchant's `return_url`; the payment has
//! succeeded with a liability shift. Driven by `tests/browser/acs_challenge.mjs`.
//! Without chromium, node or `npm ci` in `tests/browser` it prints a loud
//! SKIPPED line, or fails with `REQUIRE_BROWSER=1`.

use std::path::Path;
use std::process::Command;

use axum::response::Html;
use base64::Engine;
use paywarden::domain::sca::OnUnavailable;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Shop, DE_C};
use crate::both_backends;

/// Base64 SHA-256 of the gateway certificate's public key, for chromium's
/// `--ignore-certificate-errors-spki-list` (trusts exactly that key).
fn spki_pin(dir: &Path) -> String {
    let pem = std::fs::read_to_string(dir.join("dev-tls/key.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der()))
}

/// A byte that differs between runs (the two backends' tests run at once).
fn rand_byte() -> u8 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos % 251) as u8
}

fn browser_available() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        && Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/node_modules/playwright-core"
        ))
        .exists();
    if !ok {
        if std::env::var("REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("REQUIRE_BROWSER=1 but chromium, node or tests/browser/node_modules is missing");
        }
        eprintln!("\n!!!! SKIPPED: browser test: install chromium and run `npm ci` in tests/browser !!!!\n");
    }
    ok
}

both_backends! {
    async fn a_customer_answers_the_challenge_in_chromium_and_the_payment_succeeds(app) {
        if !browser_available() {
            return;
        }
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        // The merchant's shop, where the customer comes back to.
        // A return_url port has at most four digits: take a free one below 10000.
        let offset = u16::from(rand_byte()) * 3;
        let mut listener = None;
        for port in (5_000 + offset..10_000).chain(5_000..5_000 + offset) {
            if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                listener = Some(l);
                break;
            }
        }
        let listener = listener.expect("a free port below 10000");
        let shop_origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let router = axum::Router::new().route(
            "/done",
            axum::routing::get(|| async { Html("<!doctype html><title>Shop</title><h1>Back at the shop</h1>") }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let p = shop.pay(DE_C, 4_200, "eur", json!({"return_url": format!("{shop_origin}/done")})).await;
        assert_eq!(p["status"], "requires_action", "{p}");
        assert_eq!(p["next_action"]["type"], "redirect_to_url");
        let url = p["next_action"]["url"].as_str().unwrap().to_owned();
        let id = p["id"].as_str().unwrap().to_owned();
        let out = tokio::task::spawn_blocking({
            let spki = spki_pin(&app.data_path());
            let origin = shop_origin.clone();
            move || {
                Command::new("node")
                    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/acs_challenge.mjs"))
                    .env("CHALLENGE_URL", url)
                    .env("RETURN_ORIGIN", origin)
                    .env("SPKI", spki)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        assert!(result.get("error").is_none(), "browser run failed: {}", result["error"]);
        assert_eq!(result["title"], "Authenticate your payment");
        assert_eq!(result["scriptCount"], 0, "the page runs no script");
        assert_eq!(result["codeShown"].as_str().unwrap().len(), 6);
        assert!(result["wrongMessage"].as_str().unwrap().contains("2 attempts left"), "{result}");
        assert_eq!(result["finalUrl"], format!("{shop_origin}/done?payment={id}"));
        assert!(result["finalText"].as_str().unwrap().contains("Back at the shop"));
        let done = shop.get(&id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["amount_received"], 4_200);
        assert_eq!(done["three_d_secure"]["trans_status"], "Y");
        assert_eq!(done["three_d_secure"]["authentication_flow"], "challenge");
        assert_eq!(done["three_d_secure"]["liability_shift"], true);
        assert_eq!(done["three_d_secure"]["challenge_failures"], 1);
        shop.stop().await;
    }
}
