//! The holder's promises: taken once, expired never returned, encrypted and
//! bound to its token; shares per merchant and per publishable key, evicted
//! oldest first within the offender's own share, the capacity a hard bound;
//! and a property test over random sequences of puts, takes, purges and time.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::domain::api_key::Mode;
use crate::domain::card::CardBrand;
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::tenant::Tenant;

fn cvc(s: &str) -> Cvc {
    Cvc::parse(s, if s.len() == 4 { CardBrand::Amex } else { CardBrand::Visa }).unwrap()
}

fn tenant(merchant: &str) -> Tenant {
    Tenant::new(MerchantId::from_trusted(format!("mer_{merchant}")), Mode::Test)
}

/// The merchant's servers (a secret or restricted key, or an operator).
fn server(merchant: &str) -> CvcOwner {
    CvcOwner::new(tenant(merchant), None)
}

/// A publishable key of the merchant (a payment page).
fn page(merchant: &str, key: &str) -> CvcOwner {
    CvcOwner::new(tenant(merchant), Some(ApiKeyId::from_trusted(format!("key_{key}"))))
}

fn limits(capacity: usize, per_merchant: usize, per_key: usize) -> CvcLimits {
    CvcLimits::new(capacity, Some(per_merchant), Some(per_key)).unwrap()
}

fn store(limits: CvcLimits) -> CvcStore {
    CvcStore::with_limits(DEFAULT_TTL, limits).unwrap()
}

/// A store of 10 with shares as large, for what is not about shares.
fn roomy() -> CvcStore {
    store(limits(10, 10, 10))
}

/// Takes `token`'s CVC: its digits, or `None`.
fn taken(store: &CvcStore, token: &str) -> Option<String> {
    store.take(token).unwrap().map(|c| c.expose().to_owned())
}

#[test]
fn take_returns_the_cvc_once() {
    let store = roomy();
    store.put("tok_1", &server("a"), cvc("123")).unwrap();
    store.put("tok_2", &server("a"), cvc("4567")).unwrap();
    assert_eq!(taken(&store, "tok_1").as_deref(), Some("123"));
    assert!(store.take("tok_1").unwrap().is_none());
    assert_eq!(taken(&store, "tok_2").as_deref(), Some("4567"));
    assert!(store.take("tok_3").unwrap().is_none());
    assert!(store.is_empty());
}

#[test]
fn ttl_is_capped() {
    let store = CvcStore::new(Duration::MAX, 1).unwrap();
    assert_eq!(store.ttl, MAX_TTL);
    store.put("tok_1", &server("a"), cvc("123")).unwrap();
    assert!(store.take_at("tok_1", Instant::now() + MAX_TTL).unwrap().is_none());
}

#[test]
fn putting_again_replaces() {
    let store = CvcStore::new(DEFAULT_TTL, 1).unwrap();
    store.put("tok_1", &server("a"), cvc("123")).unwrap();
    store.put("tok_1", &server("a"), cvc("999")).unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(taken(&store, "tok_1").as_deref(), Some("999"));
}

#[test]
fn expired_entries_are_never_returned_and_are_purged() {
    let store = CvcStore::with_limits(Duration::from_secs(600), limits(10, 10, 10)).unwrap();
    let owner = server("a");
    let t0 = Instant::now();
    store.put_at("tok_1", &owner, cvc("123"), t0).unwrap();
    store.put_at("tok_2", &owner, cvc("456"), t0).unwrap();
    store
        .put_at("tok_3", &owner, cvc("789"), t0 + Duration::from_secs(300))
        .unwrap();
    assert!(store.take_at("tok_1", t0 + Duration::from_secs(600)).unwrap().is_none());
    assert_eq!(store.len(), 2, "an expired take still destroys the entry");
    assert_eq!(store.lock().purge_expired(t0 + Duration::from_secs(601)), 1);
    assert_eq!(
        store
            .take_at("tok_3", t0 + Duration::from_secs(601))
            .unwrap()
            .unwrap()
            .expose(),
        "789"
    );
    store.lock().assert_consistent(&store.limits());
}

#[test]
fn held_encrypted_and_bound_to_the_token() {
    let store = roomy();
    store.put("tok_1", &server("a"), cvc("123")).unwrap();
    store.put("tok_2", &server("a"), cvc("456")).unwrap();
    {
        let mut ledger = store.lock();
        let sealed = ledger.value_mut("tok_1").unwrap().0.clone();
        assert!(!sealed.windows(3).any(|w| w == b"123"));
        // Moving one token's ciphertext under another's id does not decrypt.
        ledger.value_mut("tok_2").unwrap().0 = sealed;
    }
    assert!(matches!(store.take("tok_2"), Err(VaultError::Decrypt)));
    assert!(!format!("{store:?}").contains("123"));
}

#[test]
fn shared_between_threads() {
    let store = Arc::new(CvcStore::new(DEFAULT_TTL, 1000).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let owner = page("a", &t.to_string());
                for i in 0..50 {
                    let id = format!("tok_{t}_{i}");
                    store.put(&id, &owner, cvc("321")).unwrap();
                    assert_eq!(store.take(&id).unwrap().unwrap().expose(), "321");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(store.is_empty());
    store.lock().assert_consistent(&store.limits());
}

#[test]
fn a_publishable_key_past_its_share_evicts_its_own_oldest_first() {
    let store = store(limits(100, 10, 3));
    let flood = page("a", "pk1");
    store.put("tok_server", &server("a"), cvc("100")).unwrap();
    store.put("tok_other_page", &page("a", "pk2"), cvc("200")).unwrap();
    store.put("tok_b", &page("b", "pk3"), cvc("300")).unwrap();
    for i in 0..8 {
        store
            .put(&format!("tok_{i}"), &flood, cvc(&format!("{}", 500 + i)))
            .unwrap();
        assert!(store.lock().held_by(&flood).1 <= 3);
    }
    for i in 0..5 {
        assert_eq!(taken(&store, &format!("tok_{i}")), None, "tok_{i} was among the oldest");
    }
    for i in 5..8 {
        assert_eq!(taken(&store, &format!("tok_{i}")), Some(format!("{}", 500 + i)));
    }
    // Neither its merchant's servers, nor another key, nor another merchant paid for it.
    assert_eq!(taken(&store, "tok_server").as_deref(), Some("100"));
    assert_eq!(taken(&store, "tok_other_page").as_deref(), Some("200"));
    assert_eq!(taken(&store, "tok_b").as_deref(), Some("300"));
}

#[test]
fn a_merchant_past_its_share_evicts_its_own_oldest_never_another_merchants() {
    let store = store(limits(100, 3, 2));
    let (a, b) = (server("a"), server("b"));
    // Interleaved, so B's entries are older than most of A's.
    store.put("tok_a0", &a, cvc("100")).unwrap();
    store.put("tok_b0", &b, cvc("200")).unwrap();
    store.put("tok_b1", &page("b", "pk"), cvc("201")).unwrap();
    for i in 1..6 {
        store
            .put(&format!("tok_a{i}"), &a, cvc(&format!("{}", 100 + i)))
            .unwrap();
        assert!(store.lock().held_by(&a).0 <= 3);
    }
    let kept: Vec<_> = (0..6).map(|i| taken(&store, &format!("tok_a{i}"))).collect();
    assert_eq!(
        kept,
        [
            None,
            None,
            None,
            Some("103".into()),
            Some("104".into()),
            Some("105".into())
        ]
    );
    assert_eq!(taken(&store, "tok_b0").as_deref(), Some("200"));
    assert_eq!(taken(&store, "tok_b1").as_deref(), Some("201"));
}

#[test]
fn a_full_merchant_share_gives_up_the_putting_keys_own_oldest_first() {
    let store = store(limits(100, 4, 3));
    let (servers, pk1, pk2) = (server("a"), page("a", "pk1"), page("a", "pk2"));
    store.put("tok_s1", &servers, cvc("101")).unwrap();
    store.put("tok_s2", &servers, cvc("102")).unwrap();
    store.put("tok_p1", &pk1, cvc("201")).unwrap();
    store.put("tok_p2", &pk1, cvc("202")).unwrap();
    // The merchant's share is full: pk1 gives up its own oldest, not the
    // servers' older entries.
    store.put("tok_p3", &pk1, cvc("203")).unwrap();
    assert!(store.lock().snapshot().contains_key("tok_s1"));
    assert!(!store.lock().snapshot().contains_key("tok_p1"));
    // A key holding nothing makes room with its merchant's oldest.
    store.put("tok_q1", &pk2, cvc("301")).unwrap();
    let held = store.lock().snapshot();
    assert!(!held.contains_key("tok_s1"));
    let mut tokens: Vec<_> = held.keys().cloned().collect();
    tokens.sort();
    assert_eq!(tokens, ["tok_p2", "tok_p3", "tok_q1", "tok_s2"]);
}

#[test]
fn the_capacity_is_a_hard_bound_and_newcomers_make_room_only_with_their_own() {
    let store = CvcStore::with_limits(Duration::from_secs(60), limits(4, 3, 2)).unwrap();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    for i in 0..3 {
        store
            .put_at(&format!("tok_a{i}"), &server("a"), cvc("100"), at(0))
            .unwrap();
    }
    store.put_at("tok_b0", &page("b", "pk"), cvc("200"), at(10)).unwrap();
    assert_eq!(store.len(), 4);
    // Full, and C holds nothing of its own: refused, nobody evicted.
    assert!(matches!(
        store.put_at("tok_c0", &server("c"), cvc("300"), at(20)),
        Err(VaultError::CvcStoreFull)
    ));
    assert_eq!(store.len(), 4);
    // B holds one: it makes room with it.
    store.put_at("tok_b1", &page("b", "pk"), cvc("201"), at(20)).unwrap();
    assert_eq!(store.len(), 4);
    let held = store.lock().snapshot();
    assert!(!held.contains_key("tok_b0") && held.contains_key("tok_b1"));
    assert!((0..3).all(|i| held.contains_key(&format!("tok_a{i}"))));
    // Once A's entries have expired, they make room for C: every expired
    // entry at the front of the store goes, up to B's live one.
    store.put_at("tok_c0", &server("c"), cvc("300"), at(60)).unwrap();
    let held = store.lock().snapshot();
    let mut tokens: Vec<_> = held.keys().cloned().collect();
    tokens.sort();
    assert_eq!(tokens, ["tok_b1", "tok_c0"]);
    assert_eq!(
        store
            .take_at("tok_c0", at(60))
            .unwrap()
            .map(|c| c.expose().to_owned())
            .as_deref(),
        Some("300")
    );
    store.lock().assert_consistent(&store.limits());
}

#[test]
fn test_mode_does_not_evict_live_mode() {
    let store = store(limits(100, 2, 1));
    let live = CvcOwner::new(Tenant::new(MerchantId::from_trusted("mer_a".into()), Mode::Live), None);
    store.put("tok_live", &live, cvc("123")).unwrap();
    for i in 0..5 {
        store.put(&format!("tok_{i}"), &server("a"), cvc("456")).unwrap();
    }
    assert_eq!(taken(&store, "tok_live").as_deref(), Some("123"));
}

// The property test: random sequences of puts by several owners (servers and
// publishable keys of three merchants), takes, purges and waits, against a
// model of what the store must hold.

/// Owners: `(merchant, publishable key)`.
const OWNERS: &[(&str, Option<&str>)] = &[
    ("a", None),
    ("a", Some("pk1")),
    ("a", Some("pk2")),
    ("b", None),
    ("b", Some("pk3")),
    ("c", None),
];
const TOKENS_PER_MERCHANT: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    Put { owner: usize, token: usize },
    Take { merchant: usize, token: usize },
    Purge,
    Wait { secs: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..OWNERS.len(), 0..TOKENS_PER_MERCHANT).prop_map(|(owner, token)| Op::Put { owner, token }),
        3 => (0..3usize, 0..TOKENS_PER_MERCHANT).prop_map(|(merchant, token)| Op::Take { merchant, token }),
        1 => Just(Op::Purge),
        2 => (0u64..400).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn owner(i: usize) -> CvcOwner {
    let (merchant, key) = OWNERS.get(i).copied().unwrap();
    match key {
        Some(key) => page(merchant, key),
        None => server(merchant),
    }
}

/// Token ids are the merchant's own (as real ones are): its servers and keys
/// may replace each other's, other merchants cannot.
fn token(merchant: &str, n: usize) -> String {
    format!("tok_{merchant}_{n}")
}

/// What the model holds per token: the owner, the CVC's digits, its expiry.
type Model = HashMap<String, (CvcOwner, String, Instant)>;

fn check_put(store: &CvcStore, model: &mut Model, who: &CvcOwner, token: &str, digits: String, now: Instant) {
    let result = store.put_at(token, who, cvc(&digits), now);
    let after = store.lock().snapshot();
    let live = |expires: &Instant| now < *expires;
    let held_live_key_entry = model
        .iter()
        .any(|(t, (o, _, e))| t != token && o == who && who.publishable_key().is_some() && live(e));
    let vanished: Vec<(String, CvcOwner, Instant)> = model
        .iter()
        .filter(|(t, _)| t.as_str() != token && !after.contains_key(t.as_str()))
        .map(|(t, (o, _, e))| (t.clone(), o.clone(), *e))
        .collect();
    let live_vanished: Vec<_> = vanished.iter().filter(|(_, _, e)| live(e)).collect();
    assert!(live_vanished.len() <= 1, "one put evicted {live_vanished:?}");
    for (t, o, _) in &live_vanished {
        assert_eq!(o.tenant(), who.tenant(), "{who:?} evicted another merchant's {t}");
        if held_live_key_entry {
            assert_eq!(o, who, "{who:?} held its own, yet evicted {t}");
        }
    }
    for (t, _, _) in &vanished {
        model.remove(t);
    }
    model.remove(token);
    match result {
        Ok(()) => {
            assert_eq!(after.get(token).map(|(o, _)| o), Some(who));
            model.insert(token.to_owned(), (who.clone(), digits, now + DEFAULT_TTL));
        }
        Err(VaultError::CvcStoreFull) => {
            assert_eq!(after.len(), store.limits().capacity());
            assert!(
                after.values().all(|(o, _)| o.tenant() != who.tenant()),
                "refused though its merchant holds some"
            );
            assert!(live_vanished.is_empty());
        }
        Err(e) => panic!("{e}"),
    }
}

proptest! {
    #[test]
    fn shares_hold_under_any_sequence(ops in proptest::collection::vec(op(), 1..80)) {
        let limits = limits(6, 4, 2);
        let store = CvcStore::with_limits(DEFAULT_TTL, limits).unwrap();
        let t0 = Instant::now();
        let mut clock = Duration::ZERO;
        let mut model = Model::new();
        for (n, op) in ops.iter().enumerate() {
            let now = t0 + clock;
            match op {
                Op::Put { owner: i, token: k } => {
                    let who = owner(*i);
                    let merchant = who.tenant().merchant_str().trim_start_matches("mer_").to_owned();
                    check_put(&store, &mut model, &who, &token(&merchant, *k), format!("{:03}", n % 1000), now);
                }
                Op::Take { merchant, token: k } => {
                    let t = token(["a", "b", "c"].get(*merchant).unwrap(), *k);
                    let got = store.take_at(&t, now).unwrap().map(|c| c.expose().to_owned());
                    // Only the latest CVC put for the token, once, unexpired.
                    let expected = model.remove(&t).filter(|(_, _, e)| now < *e).map(|(_, d, _)| d);
                    prop_assert_eq!(got, expected, "take {}", t);
                }
                Op::Purge => {
                    store.lock().purge_expired(now);
                    model.retain(|_, (_, _, e)| now < *e);
                }
                Op::Wait { secs } => clock += Duration::from_secs(*secs),
            }
            let held = store.lock().snapshot();
            store.lock().assert_consistent(&limits);
            let mut held_tokens: Vec<_> = held.keys().cloned().collect();
            let mut model_tokens: Vec<_> = model.keys().cloned().collect();
            held_tokens.sort();
            model_tokens.sort();
            prop_assert_eq!(held_tokens, model_tokens);
        }
    }
}
