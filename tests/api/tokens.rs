//! The vault through the API: tokenization with validation per brand, masked
//! views, fingerprints, crypto-shredding, reveal only with `tokens:reveal`,
//! ciphertexts bound to their row, tenant isolation, and nothing in clear at rest.

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::permission::Permission;
use serde_json::{json, Value};

use paywarden::vault::{KekVersion, StaticKeyring};

use crate::both_backends;
use crate::support::{kek, test_pepper, TestApp};

fn card(number: &str) -> Value {
    json!({"card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123", "name": "Ada Lovelace"}})
}

async fn tokenize(app: &TestApp, key: &str, number: &str) -> Value {
    let r = app.post("/v1/tokens", key, &card(number)).await;
    assert_eq!(r.status(), 200, "{number}");
    r.json().await.unwrap()
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str::<Value>(&text).unwrap()["error"].clone())
}

both_backends! {
    async fn cards_become_tokens_with_masked_views_and_stable_fingerprints(app) {
        let (_, sk) = app.merchant_with_secret("Shop").await;
        let (_, other) = app.merchant_with_secret("Other").await;
        for (number, brand) in [
            ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
            ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3566002020360505", "jcb"),
            ("36227206271667", "diners"), ("6200000000000005", "unionpay"), ("4242 4242-4242 4242", "visa"),
        ] {
            let mut body = card(number);
            if brand == "amex" {
                body["card"]["cvc"] = json!("1234");
            }
            let r = app.post("/v1/tokens", &sk, &body).await;
            let text = r.text().await.unwrap();
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            assert!(!text.contains(&digits), "the full number is never returned");
            let t: Value = serde_json::from_str(&text).unwrap();
            assert!(t["id"].as_str().unwrap().starts_with("tok_"), "{text}");
            assert_eq!(t["card"]["brand"], brand, "{number}");
            assert_eq!(t["card"]["bin"], &digits[..6]);
            assert_eq!(t["card"]["last4"], &digits[digits.len() - 4..]);
            assert_eq!(t["card"]["exp_month"], 12);
            assert_eq!(t["card"]["exp_year"], 2034);
        }
        let a = tokenize(app, &sk, "4242424242424242").await;
        let b = tokenize(app, &sk, "4242424242424242").await;
        let c = tokenize(app, &other, "4242424242424242").await;
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["card"]["fingerprint"], b["card"]["fingerprint"], "same card, same merchant, same fingerprint");
        assert_ne!(a["card"]["fingerprint"], c["card"]["fingerprint"], "fingerprints do not link merchants");
        let shown: Value = app.get(&format!("/v1/tokens/{}", a["id"].as_str().unwrap()), &sk).await.json().await.unwrap();
        assert_eq!(shown, a);
    }

    async fn invalid_cards_are_refused_naming_the_field(app) {
        let (_, sk) = app.merchant_with_secret("Strict").await;
        let cases = [
            (json!({"number": "4242424242424241", "exp_month": 12, "exp_year": 2034}), "card[number]", "incorrect_number"),
            (json!({"number": "4242abcd42424242", "exp_month": 12, "exp_year": 2034}), "card[number]", "incorrect_number"),
            (json!({"number": "42424242", "exp_month": 12, "exp_year": 2034}), "card[number]", "incorrect_number"),
            (json!({"number": "4242424242424242", "exp_month": 13, "exp_year": 2034}), "card[exp_month]", "invalid_expiry_month"),
            (json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2020}), "card[exp_year]", "invalid_expiry_year"),
            (json!({"number": "378282246310005", "exp_month": 1, "exp_year": 2034, "cvc": "123"}), "card[cvc]", "invalid_cvc"),
            (json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2034, "cvc": "12a"}), "card[cvc]", "invalid_cvc"),
            (json!({"exp_month": 1, "exp_year": 2034}), "card[number]", "parameter_missing"),
            (json!({"number": "4242424242424242", "exp_month": 1, "exp_year": 2034, "pin": "1234"}), "card[pin]", "parameter_unknown"),
        ];
        for (card, param, code) in cases {
            let number = card["number"].as_str().unwrap_or("").to_owned();
            let r = app.post("/v1/tokens", &sk, &json!({"card": card})).await;
            let (status, err) = error_of(r).await;
            assert_eq!(status, 400, "{card}");
            assert_eq!(err["param"], param, "{card}");
            assert_eq!(err["code"], code, "{card}");
            if number.len() > 8 {
                assert!(!err.to_string().contains(&number), "errors never echo the number");
            }
        }
        let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM card_tokens").fetch_one(app.store.reader()).await.unwrap();
        assert_eq!(count.0, 0, "nothing was written for refused cards");
    }

    async fn key_kinds_and_permissions_decide_who_may_do_what(app) {
        let m = app.merchant("Perms").await;
        let pk = app.key(&m, KeyKind::Publishable, &[]).await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let writer = app.key(&m, KeyKind::Restricted, &[Permission::TokensWrite]).await;
        let reader = app.key(&m, KeyKind::Restricted, &[Permission::PaymentsRead]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let t = tokenize(app, pk.secret.expose(), "4242424242424242").await;
        let id = t["id"].as_str().unwrap();
        tokenize(app, writer.secret.expose(), "5555555555554444").await;
        assert_eq!(app.post("/v1/tokens", reader.secret.expose(), &card("4242424242424242")).await.status(), 403);
        assert_eq!(app.get(&format!("/v1/tokens/{id}"), pk.secret.expose()).await.status(), 403, "publishable keys only create");
        let del = app.client().delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(pk.secret.expose()).send().await.unwrap();
        assert_eq!(del.status(), 403);
        let reveal = format!("/v1/tokens/{id}/reveal");
        let (status, err) = error_of(app.post(&reveal, sk.secret.expose(), &json!({})).await).await;
        assert_eq!((status, err["code"].as_str().unwrap()), (403, "permission_denied"), "not even secret keys reveal");
        let r = app.post(&reveal, revealer.secret.expose(), &json!({})).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["card"]["number"], "4242424242424242");
        assert_eq!(body["card"]["name"], "Ada Lovelace");
        let audit = app.audit().await;
        let e = audit.iter().find(|r| r.event.action == "token.revealed").expect("reveal audited");
        assert_eq!(e.event.key_id.as_deref(), Some(revealer.key.id.as_str()));
        assert_eq!(e.event.resource.as_deref(), Some(id));
        for _ in 0..9 {
            assert_eq!(app.post(&reveal, revealer.secret.expose(), &json!({})).await.status(), 200);
        }
        let (status, err) = error_of(app.post(&reveal, revealer.secret.expose(), &json!({})).await).await;
        assert_eq!((status, err["code"].as_str().unwrap()), (429, "rate_limited"), "reveals are tightly limited");
    }

    async fn the_reveal_allowance_is_shared_by_every_replica(app) {
        let m = app.merchant("Revealing").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let other = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let id = tokenize(app, sk.secret.expose(), "4242424242424242").await["id"].as_str().unwrap().to_owned();
        let mut replica = app.spawn_replica().await;
        let reveal_on = |base: &str, client: &reqwest::Client, secret: &str| {
            client.post(format!("{base}/v1/tokens/{id}/reveal")).bearer_auth(secret.to_owned()).json(&json!({})).send()
        };
        // Ten reveals, alternating between the two gateways, use up the key's minute.
        for i in 0..10 {
            let r = if i % 2 == 0 {
                reveal_on(&app.main.base, &app.main.client, revealer.secret.expose()).await.unwrap()
            } else {
                reveal_on(&replica.base, &replica.client, revealer.secret.expose()).await.unwrap()
            };
            assert_eq!(r.status(), 200, "reveal {i}");
        }
        for (base, client) in [(&app.main.base, &app.main.client), (&replica.base, &replica.client)] {
            let (status, err) = error_of(reveal_on(base, client, revealer.secret.expose()).await.unwrap()).await;
            assert_eq!((status, err["code"].as_str().unwrap()), (429, "rate_limited"), "refused on every replica");
        }
        // The allowance is per key: another key of the merchant still reveals.
        assert_eq!(reveal_on(&replica.base, &replica.client, other.secret.expose()).await.unwrap().status(), 200);
        let revealed = app.audit().await.iter().filter(|r| r.event.action == "token.revealed").count();
        assert_eq!(revealed, 11, "every reveal audited, refused ones not as reveals");
        replica.stop().await;
    }

    async fn concurrent_reveals_never_exceed_the_allowance(app) {
        // The allowance is a conditional upsert committed with the reveal's
        // audit entry: reveals racing on two gateways (several committers
        // on PostgreSQL) get exactly ten numbers and ten entries between them.
        let m = app.merchant("Racing reveals").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let id = tokenize(app, sk.secret.expose(), "4242424242424242").await["id"].as_str().unwrap().to_owned();
        let mut replica = app.spawn_replica().await;
        let sends = (0..30).map(|i| {
            let (base, client) = if i % 2 == 0 { (&app.main.base, &app.main.client) } else { (&replica.base, &replica.client) };
            client.post(format!("{base}/v1/tokens/{id}/reveal")).bearer_auth(revealer.secret.expose().to_owned()).json(&json!({})).send()
        });
        let statuses: Vec<u16> = futures_util::future::join_all(sends).await.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20, "{statuses:?}");
        let revealed = app.audit().await.iter().filter(|r| r.event.action == "token.revealed").count();
        assert_eq!(revealed, 10, "one entry per number given out");
        replica.stop().await;
    }

    async fn shredding_destroys_the_key_material(app) {
        let m = app.merchant("Shred").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let t = tokenize(app, sk.secret.expose(), "4242424242424242").await;
        let id = t["id"].as_str().unwrap();
        let r = app.client().delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(sk.secret.expose()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["deleted"], true);
        assert_eq!(app.get(&format!("/v1/tokens/{id}"), sk.secret.expose()).await.status(), 404);
        assert_eq!(app.post(&format!("/v1/tokens/{id}/reveal"), revealer.secret.expose(), &json!({})).await.status(), 404);
        let again = app.client().delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(sk.secret.expose()).send().await.unwrap();
        assert_eq!(again.status(), 404);
        let (dek, ct): (Option<String>, Option<String>) = sqlx::query_as("SELECT wrapped_dek, ciphertext FROM card_tokens WHERE id = $1")
            .bind(id).fetch_one(app.store.reader()).await.unwrap();
        assert!(dek.is_none() && ct.is_none(), "wrapped key and ciphertext are gone");
        assert!(app.audit().await.iter().any(|r| r.event.action == "token.shredded" && r.event.resource.as_deref() == Some(id)));
    }

    async fn a_ciphertext_moved_to_another_row_does_not_decrypt(app) {
        let m = app.merchant("Bound").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let a = tokenize(app, sk.secret.expose(), "4242424242424242").await;
        let b = tokenize(app, sk.secret.expose(), "5555555555554444").await;
        let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        let (dek, ct): (String, String) = sqlx::query_as("SELECT wrapped_dek, ciphertext FROM card_tokens WHERE id = $1")
            .bind(a_id).fetch_one(app.store.reader()).await.unwrap();
        sqlx::query("UPDATE card_tokens SET wrapped_dek = $1, ciphertext = $2 WHERE id = $3")
            .bind(&dek).bind(&ct).bind(b_id).execute(app.store.reader()).await.unwrap();
        let r = app.post(&format!("/v1/tokens/{b_id}/reveal"), revealer.secret.expose(), &json!({})).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 500, "{text}");
        assert!(!text.contains("4242424242424242") && !text.contains("decrypt"), "{text}");
        let ok: Value = app.post(&format!("/v1/tokens/{a_id}/reveal"), revealer.secret.expose(), &json!({})).await.json().await.unwrap();
        assert_eq!(ok["card"]["number"], "4242424242424242");
    }

    async fn other_merchants_tokens_are_indistinguishable_from_missing_ones(app) {
        let a = app.merchant("A").await;
        let b = app.merchant("B").await;
        let a_sk = app.key(&a, KeyKind::Secret, &[]).await;
        let b_sk = app.key(&b, KeyKind::Secret, &[]).await;
        let b_rev = app.key(&b, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let t = tokenize(app, a_sk.secret.expose(), "4242424242424242").await;
        let id = t["id"].as_str().unwrap();
        let missing = paywarden::domain::ids::TokenId::generate().unwrap();
        for (theirs, nobody) in [
            (app.get(&format!("/v1/tokens/{id}"), b_sk.secret.expose()).await, app.get(&format!("/v1/tokens/{missing}"), b_sk.secret.expose()).await),
            (app.post(&format!("/v1/tokens/{id}/reveal"), b_rev.secret.expose(), &json!({})).await,
             app.post(&format!("/v1/tokens/{missing}/reveal"), b_rev.secret.expose(), &json!({})).await),
            (app.client().delete(app.url(&format!("/v1/tokens/{id}"))).bearer_auth(b_sk.secret.expose()).send().await.unwrap(),
             app.client().delete(app.url(&format!("/v1/tokens/{missing}"))).bearer_auth(b_sk.secret.expose()).send().await.unwrap()),
        ] {
            let (s1, mut e1) = error_of(theirs).await;
            let (s2, mut e2) = error_of(nobody).await;
            e1["request_id"] = Value::Null;
            e2["request_id"] = Value::Null;
            assert_eq!((s1, e1), (s2, e2));
            assert_eq!(s2, 404);
        }
        assert_eq!(app.get(&format!("/v1/tokens/{id}"), a_sk.secret.expose()).await.status(), 200, "still there for its owner");
    }

    async fn no_number_or_cvc_is_stored_in_clear(app) {
        let (_, sk) = app.merchant_with_secret("AtRest").await;
        let numbers = ["4242424242424242", "5555555555554444", "378282246310005"];
        for n in numbers {
            let mut body = card(n);
            body["card"]["cvc"] = json!(if n.starts_with('3') { "7391" } else { "739" });
            assert_eq!(app.post("/v1/tokens", &sk, &body).await.status(), 200);
        }
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT bin, last4, fingerprint, COALESCE(ciphertext, '') FROM card_tokens").fetch_all(app.store.reader()).await.unwrap();
        for (bin, last4, fp, ct) in &rows {
            for n in numbers {
                for v in [bin, last4, fp, ct] {
                    assert!(!v.contains(n));
                }
            }
            assert_eq!(bin.len(), 6);
            assert_eq!(last4.len(), 4);
            assert!(ct.len() > 20);
        }
        let audit = app.audit().await;
        let text = format!("{audit:?}");
        for n in numbers {
            assert!(!text.contains(n));
        }
        // Ids and hashes are random base62/hex and may contain any digits; the
        // free-text fields are where a CVC could leak.
        for r in &audit {
            for field in [&r.event.reason, &r.event.resource, &r.event.user_agent] {
                assert!(!field.as_deref().unwrap_or_default().contains("739"), "CVC in the audit trail: {field:?}");
            }
        }
        if app.db.url.starts_with("sqlite:") {
            let path = app.db.url.trim_start_matches("sqlite://");
            for file in [path.to_owned(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    let hay = String::from_utf8_lossy(&bytes);
                    for n in numbers {
                        assert!(!hay.contains(n), "{file} holds a card number in clear");
                    }
                }
            }
        }
        let cols: Vec<(String,)> = if app.db.url.starts_with("sqlite:") {
            sqlx::query_as("SELECT name FROM pragma_table_info('card_tokens')").fetch_all(app.store.reader()).await.unwrap()
        } else {
            sqlx::query_as("SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_name = 'card_tokens' AND table_schema = current_schema()").fetch_all(app.store.reader()).await.unwrap()
        };
        assert!(cols.len() >= 10);
        assert!(cols.iter().all(|(c,)| !c.contains("cvc") && !c.contains("number")), "no column could hold a CVC or number");
    }

    async fn the_kek_rotates_online_resumably_and_the_old_key_can_then_retire(app) {
        let m = app.merchant("Rotating").await;
        let sk = app.key(&m, KeyKind::Secret, &[]).await;
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        let numbers = ["4242424242424242", "5555555555554444", "6011111111111117", "3566002020360505", "4000056655665556"];
        let mut ids = Vec::new();
        for n in numbers {
            ids.push(tokenize(app, sk.secret.expose(), n).await["id"].as_str().unwrap().to_owned());
        }
        let (new_b64, _) = test_pepper();
        let new_file = app.data_path().join("kek-v2");
        crate::support::write_secret_file(&new_file, &new_b64);
        let new_file = new_file.to_str().unwrap().to_owned();
        // Version 2 is configured as readable, as on every replica (docs/operations.md, KEK rotation step 2).
        let readable = [("PAYWARDEN_VAULT__PREVIOUS_KEK_FILES", format!("[{{version = 2, file = {new_file:?}}}]"))];

        // Interrupted after two tokens…
        let first = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &new_file, "--new-version", "2", "--limit", "2"], &readable);
        assert_eq!(first["report"]["tokens"]["rewrapped"], 2);
        assert_eq!(first["report"]["tokens"]["remaining"], 3);
        let status = app.cli_json(&["vault", "status"]);
        assert_eq!(status["kek_versions"], json!([
            {"version": 1, "tokens": 3, "idempotent_responses": 0, "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 0},
            {"version": 2, "tokens": 2, "idempotent_responses": 0, "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 0},
        ]));
        // …while a gateway holding both versions serves every token.
        let both = StaticKeyring::new(KekVersion::new(1), [(KekVersion::new(1), kek(&app.kek_b64)), (KekVersion::new(2), kek(&new_b64))]).unwrap();
        let mut mid = app.spawn_replica_with(app.vault_with(both)).await;
        for (id, n) in ids.iter().zip(numbers) {
            let r: Value = mid.client.post(format!("{}/v1/tokens/{id}/reveal", mid.base)).bearer_auth(revealer.secret.expose()).json(&json!({})).send().await.unwrap().json().await.unwrap();
            assert_eq!(r["card"]["number"], n, "mid-rotation");
        }
        mid.stop().await;
        // A new token arrives under the old KEK during the rotation; the resumed run takes it too.
        let late = tokenize(app, sk.secret.expose(), "5200828282828210").await;
        let second = app.cli_json_env(&["vault", "rotate-kek", "--new-key-file", &new_file, "--new-version", "2"], &readable);
        assert_eq!(second["report"]["tokens"]["rewrapped"], 4);
        assert_eq!(second["report"]["tokens"]["remaining"], 0);
        assert_eq!(
            app.cli_json(&["vault", "status"])["kek_versions"],
            json!([{"version": 2, "tokens": 6, "idempotent_responses": 0, "webhook_secrets": 0, "connection_credentials": 0, "operator_secrets": 0}])
        );
        // The old KEK is no longer needed.
        let only_new = StaticKeyring::single(KekVersion::new(2), kek(&new_b64));
        let mut after = app.spawn_replica_with(app.vault_with(only_new)).await;
        // A second revealing key: the first one used five of its ten reveals this minute.
        let revealer = app.key(&m, KeyKind::Restricted, &[Permission::TokensReveal]).await;
        for (id, n) in ids.iter().map(String::as_str).zip(numbers).chain([(late["id"].as_str().unwrap(), "5200828282828210")]) {
            let r: Value = after.client.post(format!("{}/v1/tokens/{id}/reveal", after.base)).bearer_auth(revealer.secret.expose()).json(&json!({})).send().await.unwrap().json().await.unwrap();
            assert_eq!(r["card"]["number"], n, "after rotation, with only the new KEK");
        }
        after.stop().await;
        assert!(app.audit().await.iter().any(|r| r.event.action == "vault.kek_rotated"));
    }
}
