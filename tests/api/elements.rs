//! The hosted card fields page: served only for publishable keys and
//! registered origins, framable only by that origin, and — in a real headless
//! chromium — a card typed into the iframe reaches the parent page only as a
//! token, never as a number (DOM, console or the parent's network requests).

use std::path::Path;
use std::process::Command;

use axum::response::Html;
use base64::Engine;
use paywarden::domain::api_key::KeyKind;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::support::TestApp;

/// Registers `origins` for the merchant of `sk`.
async fn register(app: &TestApp, sk: &str, origins: &[&str]) {
    let r = app
        .post("/v1/merchant", sk, &json!({ "element_origins": origins }))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Serves `html` on a fresh loopback origin; returns the origin.
async fn serve_page(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(html) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    origin
}

fn parent_page(gateway: &str, pk: &str, claimed_origin: &str) -> String {
    format!(
        r#"<!doctype html><html><head><title>Checkout</title></head><body><h1>Checkout</h1>
<iframe id="pw" title="Card details" width="460" height="380" src="{gateway}/elements/card?key={pk}&origin={claimed_origin}"></iframe>
<pre id="out"></pre>
<script>
window.received = [];
window.addEventListener("message", function (e) {{
  if (e.origin !== "{gateway}") return;
  window.received.push(e.data);
  document.getElementById("out").textContent = "token " + e.data.token + " " + e.data.card.brand + " " + e.data.card.last4;
}});
</script></body></html>"#
    )
}

/// Base64 SHA-256 of the gateway certificate's public key, for chromium's
/// `--ignore-certificate-errors-spki-list` (trusts exactly that key).
fn spki_pin(dir: &Path) -> String {
    let pem = std::fs::read_to_string(dir.join("dev-tls/key.pem")).unwrap();
    let key = rcgen::KeyPair::from_pem(&pem).unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.public_key_der()))
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
    async fn the_page_needs_a_publishable_key_and_a_registered_origin(app) {
        let m = app.merchant("Elements").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        register(app, sk.secret.expose(), &["https://shop.example", "http://localhost:3000"]).await;
        let page = |key: &str, origin: &str| app.client().get(app.url(&format!("/elements/card?key={key}&origin={origin}"))).send();

        let r = page(pk.secret.expose(), "https://shop.example").await.unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("frame-ancestors https://shop.example") && !csp.contains("localhost"), "{csp}");
        assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
        assert!(r.headers().get("x-frame-options").is_none());
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(html.contains(r#"<label for="card-number">"#) && html.contains(r#"src="/elements/card.js""#));
        assert!(!html.contains("<script>"), "no inline script");

        for (key, origin, status, code) in [
            (pk.secret.expose(), "https://evil.example", 403, "origin_not_registered"),
            (pk.secret.expose(), "http://shop.example", 400, "parameter_invalid"),
            (sk.secret.expose(), "https://shop.example", 400, "publishable_key_required"),
            ("pk_test_nope", "https://shop.example", 401, "authentication_failed"),
        ] {
            let r = page(key, origin).await.unwrap();
            assert_eq!(r.status(), status, "{origin}");
            assert_eq!(r.headers()["x-frame-options"], "DENY");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], code);
            assert!(!body.to_string().contains(sk.secret.expose()));
        }
        let js = app.client().get(app.url("/elements/card.js")).send().await.unwrap();
        assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        assert!(js.text().await.unwrap().contains("postMessage"));
        let bad = app.post("/v1/merchant", sk.secret.expose(), &json!({"element_origins": ["https://*.example"]})).await;
        assert_eq!(bad.status(), 400);
        assert_eq!(bad.json::<Value>().await.unwrap()["error"]["param"], "element_origins[0]");
    }

    async fn a_card_typed_in_the_iframe_reaches_the_parent_only_as_a_token(app) {
        if !browser_available() {
            return;
        }
        let m = app.merchant("Browser Shop").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let gateway = app.main.base.clone();
        // The parent page's origin is only known once it listens: bind, register, then serve.
        let parent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let parent_origin = format!("http://127.0.0.1:{}", parent_listener.local_addr().unwrap().port());
        let html = parent_page(&gateway, pk.secret.expose(), &parent_origin);
        let router = axum::Router::new().route("/", axum::routing::get(move || async move { Html(html) }));
        tokio::spawn(async move {
            let _ = axum::serve(parent_listener, router).await;
        });
        register(app, sk.secret.expose(), &[&parent_origin]).await;
        let foreign = serve_page(parent_page(&gateway, pk.secret.expose(), &parent_origin)).await;

        let number = "4000056655665556";
        let out = tokio::task::spawn_blocking({
            let spki = spki_pin(&app.data_path());
            let (parent, gateway) = (format!("{parent_origin}/"), gateway.clone());
            move || {
                Command::new("node")
                    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/card_fields.mjs"))
                    .env("PARENT_URL", parent)
                    .env("FOREIGN_URL", format!("{foreign}/"))
                    .env("GATEWAY_ORIGIN", gateway)
                    .env("CARD_NUMBER", number)
                    .env("SPKI", spki)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let result: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        assert!(result.get("error").is_none(), "browser run failed: {}", result["error"]);

        assert!(result["invalidNumberError"].as_str().unwrap().contains("not valid"), "{result}");
        assert_eq!(result["invalidAriaInvalid"], "true");
        assert_eq!(result["requestsAfterInvalid"], 0, "invalid input is caught before submit");
        assert_eq!(result["brandLabel"], "Visa");
        let received = result["received"].as_array().unwrap();
        assert_eq!(received.len(), 1);
        let token = received[0]["token"].as_str().unwrap();
        assert!(token.starts_with("tok_"));
        assert_eq!(received[0]["card"]["last4"], "5556");
        assert_eq!(result["tokenRequests"], 1);
        assert_eq!(result["iframeNumberAfter"], "", "the field is cleared after tokenizing");
        let parent_seen = format!("{} {} {} {}", result["parentHtml"], result["parentText"], result["consoleMessages"], result["parentRequests"]);
        for needle in [number, "4000 0566 5566 5556", "4000056655"] {
            assert!(!parent_seen.contains(needle), "the parent page saw card data: {needle}");
        }
        assert!(result["parentText"].as_str().unwrap().contains(token), "the parent displays the token it received");
        assert_eq!(result["foreignFieldCount"], 0, "an unregistered origin cannot frame the page");

        let shown: Value = app.get(&format!("/v1/tokens/{token}"), sk.secret.expose()).await.json().await.unwrap();
        assert_eq!(shown["card"]["last4"], "5556");
        assert_eq!(shown["card"]["brand"], "visa");
    }
}
