//! The sandbox ACS's challenge page: no script, not frameable, the one-time
//! code shown in test mode; a correct code authenticates (`Y`, liability
//! shift) and the payment succeeds; wrong codes count and the third fails
//! it (`N`); `fail` fails it; `abandon` cancels it (`abandoned`). Only the
//! challenge's own secret answers it, once.

use paywarden::domain::api_key::Mode;
use paywarden::domain::sca::OnUnavailable;
use serde_json::Value;

use super::{challenge_secret, secret_key, Shop, DE_C};
use crate::both_backends;

/// A client that does not follow redirects (to see where the page sends).
fn no_redirects(app: &crate::support::TestApp) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
        .build()
        .unwrap()
}

/// Posts the form `body` to the payment's challenge page.
async fn answer(shop: &Shop, client: &reqwest::Client, id: &str, body: String) -> reqwest::Response {
    client
        .post(shop.gateway.url(&format!("/sandbox/3ds/{id}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The one-time code the page shows.
async fn code_on_page(shop: &Shop, p: &Value) -> String {
    let page = shop
        .gateway
        .client
        .get(p["next_action"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let start = html
        .find("<strong id=\"otp\">")
        .expect("the code is shown in test mode")
        + "<strong id=\"otp\">".len();
    html[start..start + 6].to_owned()
}

both_backends! {
    async fn the_page_runs_no_script_cannot_be_framed_and_shows_the_code(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let p = shop.pay_eur(DE_C, 5_000).await;
        let page = shop.gateway.client.get(p["next_action"]["url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let headers = page.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(csp.contains("form-action 'self' https://shop.example;"), "the form may end at the shop only: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY");
        let html = page.text().await.unwrap();
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(html.contains("50.00 EUR"), "{html}");
        assert!(html.contains("id=\"otp\""), "{html}");
        shop.stop().await;
    }

    async fn the_right_code_authenticates_and_the_payment_succeeds_with_liability_shift(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let client = no_redirects(app);
        let p = shop.pay_eur(DE_C, 5_000).await;
        let id = p["id"].as_str().unwrap();
        let secret = challenge_secret(&p);
        let code = code_on_page(&shop, &p).await;
        // Two wrong codes: the page again, the attempts counted.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for left in [2, 1] {
            let r = answer(&shop, &client, id, format!("challenge={secret}&decision=submit&code={wrong}")).await;
            assert_eq!(r.status(), 200);
            let html = r.text().await.unwrap();
            assert!(html.contains(&format!("{left} attempts left")), "{html}");
        }
        let waiting = shop.get(id).await;
        assert_eq!(waiting["status"], "requires_action");
        assert_eq!(waiting["three_d_secure"]["challenge_failures"], 2);
        let r = answer(&shop, &client, id, format!("challenge={secret}&decision=submit&code={code}")).await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], format!("https://shop.example/done?payment={id}").as_str());
        let done = shop.get(id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let tds = &done["three_d_secure"];
        assert_eq!(tds["trans_status"], "Y");
        assert_eq!(tds["authentication_flow"], "challenge");
        assert_eq!(tds["electronic_commerce_indicator"], "05");
        assert_eq!(tds["authentication_value_present"], true);
        assert_eq!(tds["liability_shift"], true);
        // Answered once: the same answer again finds no challenge.
        let again = answer(&shop, &client, id, format!("challenge={secret}&decision=submit&code={code}")).await;
        assert_eq!(again.status(), 404);
        shop.stop().await;
    }

    async fn three_wrong_codes_or_fail_stop_the_payment_and_abandon_cancels_it(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let client = no_redirects(app);
        let p = shop.pay_eur(DE_C, 5_000).await;
        let id = p["id"].as_str().unwrap();
        let secret = challenge_secret(&p);
        let code = code_on_page(&shop, &p).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..2 {
            assert_eq!(answer(&shop, &client, id, format!("challenge={secret}&decision=submit&code={wrong}")).await.status(), 200);
        }
        let r = answer(&shop, &client, id, format!("challenge={secret}&decision=submit&code={wrong}")).await;
        assert_eq!(r.status(), 303);
        let failed = shop.get(id).await;
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["decline_code"], "authentication_failed");
        assert_eq!(failed["three_d_secure"]["trans_status"], "N");
        assert_eq!(failed["three_d_secure"]["challenge_failures"], 3);

        let p = shop.pay_eur(DE_C, 5_000).await;
        let id = p["id"].as_str().unwrap();
        let r = answer(&shop, &client, id, format!("challenge={}&decision=fail", challenge_secret(&p))).await;
        assert_eq!(r.status(), 303);
        let failed = shop.get(id).await;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["three_d_secure"]["trans_status"], "N");
        assert_eq!(failed["three_d_secure"]["liability_shift"], false);

        let p = shop.pay_eur(DE_C, 5_000).await;
        let id = p["id"].as_str().unwrap();
        let r = answer(&shop, &client, id, format!("challenge={}&decision=abandon", challenge_secret(&p))).await;
        assert_eq!(r.status(), 303);
        let canceled = shop.get(id).await;
        assert_eq!(canceled["status"], "canceled", "{canceled}");
        assert_eq!(canceled["cancellation_reason"], "abandoned");
        // Submitting without a code names the field.
        let p = shop.pay_eur(DE_C, 5_000).await;
        let r = answer(&shop, &client, p["id"].as_str().unwrap(), format!("challenge={}&decision=submit", challenge_secret(&p))).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["param"], "code");
        shop.stop().await;
    }

    async fn only_the_challenges_own_secret_answers_it(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let client = no_redirects(app);
        let mine = shop.pay_eur(DE_C, 5_000).await;
        let other_shop = Shop::open(app, None, OnUnavailable::Fail).await;
        let theirs = other_shop.pay_eur(DE_C, 5_000).await;
        let mine_id = mine["id"].as_str().unwrap();
        let code = code_on_page(&other_shop, &theirs).await;
        // Another payment's secret (another merchant's) does not open mine.
        let r = answer(&shop, &client, mine_id, format!("challenge={}&decision=submit&code={code}", challenge_secret(&theirs))).await;
        assert_eq!(r.status(), 404);
        let page = shop.gateway.client.get(shop.gateway.url(&format!("/sandbox/3ds/{mine_id}?challenge={}", challenge_secret(&theirs)))).send().await.unwrap();
        assert_eq!(page.status(), 404);
        assert_eq!(shop.get(mine_id).await["status"], "requires_action");
        // Another merchant's key, or this merchant's live key, sees no such payment.
        for key in [other_shop.sk.clone(), secret_key(app, &shop.merchant, Mode::Live).await] {
            let r = shop.gateway.get(&format!("/v1/payments/{mine_id}"), &key).await;
            assert_eq!(r.status(), 404);
            let r = shop.gateway.post(&format!("/v1/payments/{mine_id}/confirm"), &key, &serde_json::json!({})).await;
            assert_eq!(r.status(), 404);
        }
        // Anonymous: 401.
        let r = shop.gateway.client.get(shop.gateway.url(&format!("/v1/payments/{mine_id}"))).send().await.unwrap();
        assert_eq!(r.status(), 401);
        shop.stop().await;
        other_shop.stop().await;
    }
}
