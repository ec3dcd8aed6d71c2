//! Every 3-D Secure status of the sandbox's simulated ACS, frictionless:
//! `Y` and `A` authorize with their ECI and a liability shift, `N` and `R`
//! stop the payment before authorization (`authentication_failed`), `U`
//! follows the merchant's policy, `C` and `D` lead to the challenge page.
//! The result fields are shown; the cryptogram never is.

use paywarden::domain::sca::OnUnavailable;
use serde_json::Value;

use super::{Shop, DE_A, DE_C, DE_D, DE_N, DE_R, DE_U, DE_Y, DE_Y_MC};
use crate::both_backends;

/// A EUR 50 payment (no exemption: no fraud rate, above EUR 30).
async fn pay(shop: &Shop, number: &str) -> Value {
    shop.pay_eur(number, 5_000).await
}

fn assert_no_cryptogram(p: &Value) {
    let text = p.to_string();
    for word in ["cryptogram", "authentication_value\"", "cavv"] {
        assert!(!text.contains(word), "{word} in {text}");
    }
}

both_backends! {
    async fn y_and_a_authorize_with_their_eci_and_liability_shift(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        for (number, status, eci) in [(DE_Y, "Y", "05"), (DE_Y_MC, "Y", "02"), (DE_A, "A", "06")] {
            let p = pay(&shop, number).await;
            assert_eq!(p["status"], "succeeded", "{p}");
            assert_eq!(p["sca"]["decision"], "frictionless");
            let tds = &p["three_d_secure"];
            assert_eq!(tds["trans_status"], status, "{p}");
            assert_eq!(tds["version"], "2.2.0");
            assert_eq!(tds["authentication_flow"], "frictionless");
            assert_eq!(tds["electronic_commerce_indicator"], eci);
            assert_eq!(tds["authentication_value_present"], true);
            assert_eq!(tds["liability_shift"], true);
            let id = tds["transaction_id"].as_str().unwrap();
            assert_eq!(id.len(), 36, "a UUID: {id}");
            assert_eq!(id.matches('-').count(), 4);
            assert_no_cryptogram(&p);
            let read = shop.get(p["id"].as_str().unwrap()).await;
            assert_eq!(read["three_d_secure"], p["three_d_secure"], "stored as shown");
        }
        shop.stop().await;
    }

    async fn n_and_r_stop_the_payment_before_authorization(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        for (number, status) in [(DE_N, "N"), (DE_R, "R")] {
            let p = pay(&shop, number).await;
            assert_eq!(p["status"], "failed", "{p}");
            assert_eq!(p["decline_code"], "authentication_failed");
            let tds = &p["three_d_secure"];
            assert_eq!(tds["trans_status"], status);
            assert_eq!(tds["electronic_commerce_indicator"], "07");
            assert_eq!(tds["authentication_value_present"], false);
            assert_eq!(tds["liability_shift"], false);
            assert_eq!(p["amount_capturable"], 0);
            // The processor was never asked: no authorize entry.
            let history = p["history"].as_array().unwrap();
            assert!(!history.iter().any(|e| e["action"] == "authorize"), "{p}");
            assert!(history.iter().any(|e| e["action"] == "authenticate" && e["outcome"] == status), "{p}");
        }
        shop.stop().await;
    }

    async fn u_follows_the_merchants_policy(app) {
        let strict = Shop::open(app, None, OnUnavailable::Fail).await;
        let p = pay(&strict, DE_U).await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["decline_code"], "authentication_failed");
        assert_eq!(p["three_d_secure"]["trans_status"], "U");
        strict.stop().await;
        let lenient = Shop::open(app, None, OnUnavailable::Authorize).await;
        let p = pay(&lenient, DE_U).await;
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["three_d_secure"]["trans_status"], "U");
        assert_eq!(p["three_d_secure"]["liability_shift"], false, "no liability shift without authentication");
        lenient.stop().await;
    }

    async fn c_and_d_send_the_customer_to_the_challenge(app) {
        let shop = Shop::open(app, None, OnUnavailable::Fail).await;
        for (number, status) in [(DE_C, "C"), (DE_D, "D")] {
            let p = pay(&shop, number).await;
            assert_eq!(p["status"], "requires_action", "{p}");
            assert_eq!(p["three_d_secure"]["trans_status"], status);
            assert_eq!(p["three_d_secure"]["liability_shift"], false);
            let url = p["next_action"]["url"].as_str().unwrap();
            assert!(url.starts_with(&shop.gateway.url("/sandbox/3ds/")), "{url}");
        }
        shop.stop().await;
    }
}
