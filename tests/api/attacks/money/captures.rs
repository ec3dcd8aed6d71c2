//! Captures and cancels through the processor double: concurrent ones reach
//! it once, a capture racing a cancel makes one call, a processor error gives
//! the claim back for a retry, an unknown outcome is resolved by asking the
//! processor (never by guessing), and a capture whose client went away still
//! ends recorded.

use std::time::Duration;

use paywarden::connectors::ConnectorError;
use paywarden::domain::api_key::Mode;
use serde_json::{json, Value};

use super::super::{assert_intact, Rows};
use super::{audited, claim_of, events_of, history, losers_refused, post, race, shop, statuses, winner};
use crate::both_backends;
use crate::processor_double::Call;

both_backends! {
    async fn concurrent_captures_reach_the_processor_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        let path = format!("/v1/payments/{id}/capture");
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, &path, &shop.sk, json!({}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.capture, 1, "one capture reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(shop.processor.captured(), [5000]);
        assert_eq!(race.answered_while_held, 7, "every other capture is refused while the first is at the processor");
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &[]);
        assert_eq!(winner(&race)["status"], "succeeded");
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"], &p["amount_capturable"]), (&json!("succeeded"), &json!(5000), &json!(0)), "{p}");
        assert_eq!(history(&p), ["create:succeeded", "confirm:succeeded", "sca:out_of_scope", "authorize:approved", "capture:started", "capture:succeeded"]);
        assert_eq!(claim_of(app, &id).await, None, "the claim ends with the capture");
        assert_eq!(events_of(app, &id).await, ["payment.created", "payment.amount_capturable_updated", "payment.captured", "payment.succeeded"]);
        assert_eq!(audited(app, "payment.captured", &id).await, 1);
        assert_intact(app, before, |r| r.events += 2).await;
        shop.stop().await;
    }

    async fn concurrent_cancels_void_once(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        let path = format!("/v1/payments/{id}/cancel");
        let race = race(&shop.processor, (0..8).map(|_| post(&shop.gateway, &path, &shop.sk, json!({"cancellation_reason": "duplicate"}))).collect()).await;
        let calls = shop.processor.calls();
        assert_eq!(calls.void, 1, "one void reaches the processor: {calls:?}; {:?}", race.answers);
        assert_eq!(calls.capture, 0);
        assert_eq!(race.answered_while_held, 7, "every other cancel is refused while the first is at the processor");
        assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
        losers_refused(&race, &[]);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_capturable"], &p["cancellation_reason"]), (&json!("canceled"), &json!(0), &json!("duplicate")), "{p}");
        assert_eq!(history(&p), ["create:succeeded", "confirm:succeeded", "sca:out_of_scope", "authorize:approved", "cancel:started", "cancel:succeeded"]);
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(audited(app, "payment.canceled", &id).await, 1);
        assert_intact(app, before, |r| r.events += 1).await;
        shop.stop().await;
    }

    async fn capture_racing_cancel_makes_one_processor_call(app) {
        let shop = shop(app, Mode::Test).await;
        // Each order of arrival once: the capture first, then the cancel first.
        for first in ["capture", "cancel"] {
            let id = shop.payment("4242424242424242", 4000, "usd", Some("manual")).await;
            let before = Rows::snapshot(app).await;
            let calls_before = shop.processor.calls();
            let second = if first == "capture" { "cancel" } else { "capture" };
            let requests = [first, second, first, second, first, second, first, second]
                .iter()
                .map(|op| post(&shop.gateway, &format!("/v1/payments/{id}/{op}"), &shop.sk, json!({})))
                .collect();
            let race = race(&shop.processor, requests).await;
            let calls = shop.processor.calls();
            let (captures, voids) = (calls.capture - calls_before.capture, calls.void - calls_before.void);
            assert_eq!(captures + voids, 1, "one processor call of either kind: {calls:?}; {:?}", race.answers);
            assert_eq!(race.answered_while_held, 7);
            assert_eq!(statuses(&race), [200, 409, 409, 409, 409, 409, 409, 409]);
            losers_refused(&race, &[]);
            let p = shop.get(&id).await;
            assert_eq!(winner(&race)["status"], p["status"]);
            if captures == 1 {
                assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(4000)), "{p}");
                assert_eq!(history(&p)[4..], ["capture:started", "capture:succeeded"]);
            } else {
                assert_eq!((&p["status"], &p["amount_received"]), (&json!("canceled"), &json!(0)), "{p}");
                assert_eq!(history(&p)[4..], ["cancel:started", "cancel:succeeded"]);
            }
            assert_eq!(claim_of(app, &id).await, None);
            assert_intact(app, before, |r| r.events += if captures == 1 { 2 } else { 1 }).await;
        }
        shop.stop().await;
    }

    async fn a_processor_error_releases_the_claim(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 2500, "usd", Some("manual")).await;
        let secret = "processor maintenance window 7";
        shop.processor.fail_next(Call::Capture, ConnectorError::Unavailable(secret.into()));
        let r = shop.gateway.post(&format!("/v1/payments/{id}/capture"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 502);
        let text = r.text().await.unwrap();
        assert!(text.contains("processor_unavailable") && !text.contains(secret), "{text}");
        assert_eq!(shop.processor.calls().capture, 1);
        assert_eq!(claim_of(app, &id).await, None, "the failed capture gives its claim back");
        assert_eq!(shop.get(&id).await["status"], "requires_capture");
        // The retry goes to the processor at once: no 409, no waiting out the claim.
        let r = shop.gateway.post(&format!("/v1/payments/{id}/capture"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.calls().capture, 2);
        assert_eq!(shop.processor.captured(), [2500]);
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(2500)), "{p}");
        assert_eq!(history(&p)[4..], ["capture:started", "capture:processor_unavailable", "capture:started", "capture:succeeded"]);
        // The same for a cancel.
        let id = shop.payment("4242424242424242", 2500, "usd", Some("manual")).await;
        shop.processor.fail_next(Call::Void, ConnectorError::Timeout);
        let r = shop.gateway.post(&format!("/v1/payments/{id}/cancel"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 502);
        assert_eq!(claim_of(app, &id).await, None, "the failed cancel gives its claim back");
        let r = shop.gateway.post(&format!("/v1/payments/{id}/cancel"), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.calls().void, 2);
        let p = shop.get(&id).await;
        assert_eq!(p["status"], "canceled");
        assert_eq!(history(&p)[4..], ["cancel:started", "cancel:processor_unavailable", "cancel:started", "cancel:succeeded"]);
        shop.stop().await;
    }

    async fn a_timed_out_capture_is_resolved_by_asking_the_processor_never_by_guessing(app) {
        let shop = shop(app, Mode::Test).await;
        let capture = |id: &str| format!("/v1/payments/{id}/capture");
        // The processor captured, but its answer was lost: the gateway asks,
        // records the capture, and never sends a second one.
        let id = shop.payment("4242424242424242", 1200, "usd", Some("manual")).await;
        shop.processor.lose_next_answer(Call::Capture, ConnectorError::Timeout);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!((shop.processor.calls().capture, shop.processor.captured()), (1, vec![1200]));
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(shop.get(&id).await["status"], "succeeded");

        // The call timed out and the processor cannot say either: the payment
        // stays held (503 with Retry-After); a retry meanwhile is refused
        // without a processor call, and that answer is not stored against the
        // retry's Idempotency-Key.
        let id = shop.payment("4242424242424242", 1300, "usd", Some("manual")).await;
        shop.processor.fail_next(Call::Capture, ConnectorError::Timeout);
        shop.processor.fail_sync(1);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("retry-after").is_some());
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "processor_outcome_unknown", "{e}");
        assert_eq!(claim_of(app, &id).await.as_deref(), Some("capture"), "an unknown outcome keeps the claim");
        for _ in 0..2 {
            let r = shop
                .gateway
                .client
                .post(shop.gateway.url(&capture(&id)))
                .bearer_auth(&shop.sk)
                .header("Idempotency-Key", "retry-while-held")
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 409);
            assert!(r.headers().get("idempotent-replayed").is_none(), "a 'retry later' answer was stored");
            assert!(r.headers().get("retry-after").is_some());
        }
        assert_eq!(shop.processor.calls().capture, 2, "no call while the outcome is unknown");
        // A claim older than CLAIM_TIMEOUT (its gateway died mid-call) is
        // taken over; the processor is asked first, then the capture sent.
        sqlx::query("UPDATE payments SET updated_at = updated_at - 600000 WHERE id = $1")
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        let r = shop
            .gateway
            .client
            .post(shop.gateway.url(&capture(&id)))
            .bearer_auth(&shop.sk)
            .header("Idempotency-Key", "retry-while-held")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!((shop.processor.calls().capture, shop.processor.captured()), (3, vec![1200, 1300]));

        // A stale claim whose capture did happen: the takeover finds it at
        // the processor and records it without capturing again.
        let id = shop.payment("4242424242424242", 1400, "usd", Some("manual")).await;
        shop.processor.lose_next_answer(Call::Capture, ConnectorError::Timeout);
        shop.processor.fail_sync(1);
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 503);
        sqlx::query("UPDATE payments SET updated_at = updated_at - 600000 WHERE id = $1")
            .bind(&id)
            .execute(app.store.reader())
            .await
            .unwrap();
        let r = shop.gateway.post(&capture(&id), &shop.sk, &json!({})).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(shop.processor.captured(), [1200, 1300, 1400], "captured once");
        let p = shop.get(&id).await;
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(1400)), "{p}");
        shop.stop().await;
    }

    async fn a_capture_whose_client_goes_away_still_ends_recorded(app) {
        let shop = shop(app, Mode::Test).await;
        let id = shop.payment("4242424242424242", 5000, "usd", Some("manual")).await;
        let before = Rows::snapshot(app).await;
        shop.processor.hold();
        // The client gives up while the capture is at the processor.
        let impatient = shop
            .gateway
            .client
            .post(shop.gateway.url(&format!("/v1/payments/{id}/capture")))
            .bearer_auth(&shop.sk)
            .json(&json!({}))
            .timeout(Duration::from_millis(1500))
            .send();
        let gone = tokio::spawn(impatient);
        assert!(shop.processor.wait_for(|c| c.capture == 1).await);
        assert!(gone.await.unwrap().is_err(), "the client timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
        shop.processor.release();
        // The processor captured: the gateway records it, claim released.
        let mut p = shop.get(&id).await;
        for _ in 0..100 {
            if p["status"] != "requires_capture" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            p = shop.get(&id).await;
        }
        assert_eq!((&p["status"], &p["amount_received"]), (&json!("succeeded"), &json!(5000)), "{p}");
        assert_eq!(claim_of(app, &id).await, None);
        assert_eq!(shop.processor.captured(), [5000]);
        assert_intact(app, before, |r| r.events += 2).await;
        shop.stop().await;
    }
}
