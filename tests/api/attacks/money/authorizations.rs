//! Authorizations through the processor double: the CVC waits for the
//! confirm of a payment created without one and is used once, and concurrent
//! answers to one 3-D Secure challenge authorize once.

use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use super::super::{assert_intact, Rows};
use super::{race, shop};
use crate::both_backends;
use crate::processor_double::CHALLENGE_CARD;

both_backends! {
    async fn a_payment_created_without_confirm_leaves_the_cvc_for_its_confirm(app) {
        // The CVC held for a token is used by the token's first
        // authorization, whenever that comes: not taken (and lost) by a
        // create that only attaches the token, then gone after one use.
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 1500, "usd", None).await;
        let r = shop.gateway.post(&format!("/v1/payments/{id}/confirm"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "succeeded");
        assert_eq!(shop.processor.cvcs(), [Some("123".to_owned())], "the confirm's authorization carries the CVC");
        // Another payment with the same token authorizes without one.
        let token = shop.get(&id).await["payment_method"].as_str().unwrap().to_owned();
        let body = json!({"amount": 700, "currency": "usd", "payment_method": token, "confirm": true});
        let again = shop.gateway.post("/v1/payments", &shop.sk, &body).await;
        assert_eq!(again.status(), 200);
        assert_eq!(shop.processor.cvcs(), [Some("123".to_owned()), None], "a CVC is used once");
        shop.stop().await;
    }

    async fn concurrent_answers_to_one_challenge_authorize_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment(CHALLENGE_CARD, 3100, "usd", Some("automatic")).await;
        let p = shop.get(&id).await;
        let url = p["next_action"]["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&shop.gateway.base), "{url}");
        let challenge = url.split("challenge=").nth(1).unwrap().to_owned();
        assert_eq!(shop.processor.calls().authorize, 1);
        let before = Rows::snapshot(app).await;
        let browser = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&app.cert_pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = crate::sca::approving_form(&shop.gateway.client, &url).await;
        assert!(form.starts_with(&format!("challenge={challenge}&")));
        let answers = (0..8)
            .map(|_| {
                browser
                    .post(shop.gateway.url(&format!("/sandbox/3ds/{id}")))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
            })
            .collect();
        let race = race(&shop.processor, answers).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.authorize, 2, "the answered challenge is authorized once: {calls:?}; {:?}", race.answers);
        assert_eq!(race.answered_while_held, 7, "every other answer is refused while the first is at the processor");
        let mut codes: Vec<u16> = race.answers.iter().map(|(s, _)| *s).collect();
        codes.sort_unstable();
        assert_eq!(codes[0], 303, "{:?}", race.answers);
        for (status, body) in race.answers.iter().filter(|(s, _)| *s != 303) {
            assert!(*status == 404 || (*status == 409 && body["error"]["code"] == "payment_conflict"), "{status} {body}");
        }
        assert_eq!(codes.iter().filter(|s| **s == 303).count(), 1);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(3100)), "{p}");
        assert_eq!(shop.processor.captured(), [3100]);
        assert_intact(app, before, |r| r.events += 1).await;
        shop.stop().await;
    }
}
