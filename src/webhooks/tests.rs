//! The delivery worker's reads and records against the in-memory double of
//! the storage ports: a round's targets, a batch of records written only
//! under their leases, and the final failure that disables an endpoint.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::attempt::Sent;
use super::endpoint::WebhookEndpoint;
use super::payload::Payloads;
use super::record::{record_batch, Finished};
use super::round::Round;
use super::settings::{RetrySchedule, WebhookSettings};
use crate::domain::api_key::Mode;
use crate::domain::ids::{EventId, MerchantId, WebhookEndpointId};
use crate::domain::merchant::MerchantName;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::store::events::EventRow;
use crate::store::memory::MemoryStore;
use crate::store::ports::{AuditStore, Commit, EventStore, WebhookDeliveryStore, WebhookEndpointStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_deliveries::{DeliveryKey, DeliveryRow};
use crate::store::webhook_endpoints::EndpointRow;
use crate::vault::{Kek, KekVersion, StaticKeyring};

fn settings() -> WebhookSettings {
    let retry = RetrySchedule {
        initial: Duration::from_secs(30),
        max_interval: Duration::from_secs(60),
        window: Duration::from_secs(300),
    };
    let mut settings =
        WebhookSettings::new(true, None, retry, Duration::from_millis(100), Duration::from_secs(5)).unwrap();
    fn endpoint(_: &WebhookEndpoint) -> Result<String, serde_json::Error> {
        Ok(r#"{"object":"webhook_endpoint"}"#.to_owned())
    }
    settings.payloads = Payloads {
        event: Payloads::NOT_GIVEN.event,
        endpoint,
    };
    settings
}

struct Fixture {
    store: MemoryStore,
    merchant: MerchantId,
}

impl Fixture {
    async fn new() -> Self {
        let store = MemoryStore::new();
        let actor = Actor::Operator {
            command: "webhooks test".into(),
        };
        let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Hooked").unwrap())
            .await
            .unwrap()
            .id;
        Self { store, merchant }
    }

    async fn commit(&self, stage: impl FnOnce(&mut UnitOfWork)) {
        let mut work = UnitOfWork::new();
        stage(&mut work);
        self.store.commit(work).await.unwrap();
    }

    /// An enabled endpoint subscribed to everything, in `mode`.
    async fn endpoint(&self, mode: Mode) -> EndpointRow {
        let row = EndpointRow::for_tests(self.merchant.as_str(), mode);
        self.commit(|work| self.store.insert_endpoint(work, &row)).await;
        row
    }

    /// An event in `mode` created at `at`, fanned out to the endpoints.
    async fn event(&self, mode: Mode, at: i64) -> String {
        let id = EventId::generate_time_ordered(Timestamp::from_millis(at))
            .unwrap()
            .to_string();
        let row = EventRow {
            id: id.clone(),
            merchant_id: self.merchant.to_string(),
            mode: mode.as_str().to_owned(),
            event_type: "payment.succeeded".to_owned(),
            object_id: "pay_test".to_owned(),
            data: "{}".to_owned(),
            created_at: at,
        };
        self.commit(|work| self.store.insert_events(work, std::slice::from_ref(&row)))
            .await;
        id
    }

    /// Every due delivery, claimed under `token`.
    async fn claim_all(&self, token: &str) -> Vec<DeliveryRow> {
        let now = Timestamp::now().as_millis();
        let due = self.store.due_deliveries(now, 100, 100).await.unwrap();
        let keys: Vec<DeliveryKey<'_>> = due
            .iter()
            .map(|d| DeliveryKey {
                endpoint_id: &d.endpoint_id,
                event_id: &d.event_id,
            })
            .collect();
        let mut work = UnitOfWork::new();
        let taken = self.store.claim_deliveries(&mut work, &keys, token, now, now + 60_000);
        self.store.commit(work).await.unwrap();
        assert_eq!(usize::try_from(taken.total()).unwrap(), due.len());
        due
    }

    async fn delivery(&self, event_id: &str) -> DeliveryRow {
        let rows = self.store.deliveries_of_event(event_id).await.unwrap();
        assert_eq!(rows.len(), 1, "one endpoint");
        rows.into_iter().next().unwrap()
    }
}

fn finished(
    delivery: &DeliveryRow,
    endpoint: &EndpointRow,
    token: &str,
    sent: Option<Sent>,
) -> (Finished, oneshot::Receiver<bool>) {
    let (done, written) = oneshot::channel();
    let finished = Finished {
        delivery: delivery.clone(),
        endpoint: Arc::new(endpoint.clone()),
        token: token.into(),
        sent,
        done,
    };
    (finished, written)
}

fn answered(code: i64) -> Option<Sent> {
    Some(Sent {
        status_code: Some(code),
        error: None,
        duration_ms: 4,
    })
}

#[tokio::test]
async fn a_round_targets_only_enabled_endpoints_with_events_of_their_world() {
    let f = Fixture::new().await;
    let (test, live) = (f.endpoint(Mode::Test).await, f.endpoint(Mode::Live).await);
    let now = Timestamp::now().as_millis();
    let (e_test, e_live) = (f.event(Mode::Test, now).await, f.event(Mode::Live, now).await);
    let deliveries = f.claim_all("tok").await;
    assert_eq!(deliveries.len(), 2);
    let keyring = StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap());
    let refs: Vec<&DeliveryRow> = deliveries.iter().collect();
    let round = Round::load(&f.store, &keyring, &refs).await.unwrap();
    for d in &deliveries {
        let target = round.target(d).unwrap();
        assert_eq!(
            target.event.mode, target.endpoint.mode,
            "an endpoint gets events of its own mode"
        );
        let expected = if target.endpoint.id == test.id {
            &e_test
        } else {
            &e_live
        };
        assert_eq!(&target.event.id, expected);
        assert!(target.secrets.is_none(), "a secret that does not open signs nothing");
    }
    // A delivery whose event is of the other world, or whose endpoint was
    // disabled meanwhile, has nothing to send.
    let crossed = DeliveryRow {
        event_id: e_live.clone(),
        ..deliveries.iter().find(|d| d.endpoint_id == test.id).unwrap().clone()
    };
    let round = Round::load(&f.store, &keyring, &[&crossed]).await.unwrap();
    assert!(round.target(&crossed).is_none());
    f.commit(|work| f.store.disable_endpoint(work, &live.id, now)).await;
    let round = Round::load(&f.store, &keyring, &refs).await.unwrap();
    let live_delivery = deliveries.iter().find(|d| d.endpoint_id == live.id).unwrap();
    assert!(round.target(live_delivery).is_none());
}

#[tokio::test]
async fn a_batch_is_recorded_only_under_its_leases() {
    let f = Fixture::new().await;
    let endpoint = f.endpoint(Mode::Test).await;
    let now = Timestamp::now().as_millis();
    let events = [
        f.event(Mode::Test, now).await,
        f.event(Mode::Test, now).await,
        f.event(Mode::Test, now).await,
        f.event(Mode::Test, now).await,
    ];
    let claimed = f.claim_all("tok_mine").await;
    let of = |event: &str| claimed.iter().find(|d| d.event_id == event).unwrap();
    let (ok, ok_done) = finished(of(&events[0]), &endpoint, "tok_mine", answered(204));
    let (retry, retry_done) = finished(of(&events[1]), &endpoint, "tok_mine", answered(500));
    let (unsent, unsent_done) = finished(of(&events[2]), &endpoint, "tok_mine", None);
    // Its lease is not this token's (it ran out and another worker took it).
    let (lost, lost_done) = finished(of(&events[3]), &endpoint, "tok_gone", answered(204));
    record_batch(&f.store, &settings(), vec![ok, retry, unsent, lost]).await;
    assert_eq!(
        [
            ok_done.await.unwrap(),
            retry_done.await.unwrap(),
            unsent_done.await.unwrap(),
            lost_done.await.unwrap()
        ],
        [true, true, true, false]
    );

    let d = f.delivery(&events[0]).await;
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_status_code),
        ("succeeded", 1, Some(204))
    );
    let d = f.delivery(&events[1]).await;
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_error.as_deref()),
        ("pending", 1, Some("unexpected_status"))
    );
    assert!(d.next_attempt_at > now, "backs off");
    // Given back unused: due again at once, nothing recorded.
    let d = f.delivery(&events[2]).await;
    assert_eq!((d.status.as_str(), d.attempts), ("pending", 0));
    let due = f
        .store
        .due_deliveries(Timestamp::now().as_millis(), 100, 100)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        [events[2].as_str()]
    );
    // The lost one: still leased to this token, untouched.
    let d = f.delivery(&events[3]).await;
    assert_eq!((d.status.as_str(), d.attempts), ("pending", 0));
    let keys = [DeliveryKey {
        endpoint_id: &endpoint.id,
        event_id: &events[3],
    }];
    assert_eq!(f.store.claimed_deliveries(&keys, "tok_mine").await.unwrap().len(), 1);
    let tenant = crate::domain::tenant::Tenant::new(f.merchant.clone(), Mode::Test);
    let id = WebhookEndpointId::from_trusted(endpoint.id.clone());
    let attempts = f.store.list_attempts(&tenant, &id, None, 10).await.unwrap();
    let mut recorded: Vec<&str> = attempts.iter().map(|a| a.event_id.as_str()).collect();
    recorded.sort_unstable();
    let mut expected = [events[0].as_str(), events[1].as_str()];
    expected.sort_unstable();
    assert_eq!(recorded, expected);
}

#[tokio::test]
async fn a_delivery_out_of_retries_disables_its_endpoint_in_one_audited_unit() {
    let f = Fixture::new().await;
    let endpoint = f.endpoint(Mode::Test).await;
    let now = Timestamp::now().as_millis();
    // Created longer ago than the retry window: this failure is final.
    let old = f.event(Mode::Test, now - 600_000).await;
    let claimed = f.claim_all("tok_mine").await;
    let waiting = f.event(Mode::Test, now + 600_000).await;
    let (last, done) = finished(claimed.first().unwrap(), &endpoint, "tok_mine", answered(503));
    record_batch(&f.store, &settings(), vec![last]).await;
    assert!(done.await.unwrap());

    let d = f.delivery(&old).await;
    assert_eq!(
        (d.status.as_str(), d.attempts, d.last_status_code),
        ("failed", 1, Some(503))
    );
    let row = f.store.get_endpoint_any(&endpoint.id).await.unwrap().unwrap();
    assert_eq!(row.status, "disabled");
    // The endpoint's other pending deliveries are given up with it.
    let d = f.delivery(&waiting).await;
    assert_eq!(
        (d.status.as_str(), d.last_error.as_deref()),
        ("failed", Some("endpoint_disabled"))
    );
    let tenant = crate::domain::tenant::Tenant::new(f.merchant.clone(), Mode::Test);
    let events = f
        .store
        .list_events(&tenant, Some("webhook_endpoint.disabled"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.object_id.as_str()).collect::<Vec<_>>(),
        [endpoint.id.as_str()]
    );
    let audit = f.store.audit_page(0, 100).await.unwrap();
    let entry = &audit.last().unwrap().event;
    assert_eq!(
        (entry.action.as_str(), entry.resource.as_deref()),
        ("webhook_endpoint.disabled", Some(endpoint.id.as_str()))
    );

    // A second final failure under a lease that is gone writes nothing.
    let (again, done) = finished(&d, &endpoint, "tok_mine", answered(503));
    record_batch(&f.store, &settings(), vec![again]).await;
    assert!(!done.await.unwrap());
}
