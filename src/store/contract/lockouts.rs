//! The lockouts and authentication ports' contract: failures counted per
//! address within a window, lockouts extended and never shortened, cleared
//! with their failures, and the authentication lookup that reads a key by
//! its hash with its merchant and the address's lockout in force.

use super::{commit, contracts, stored_merchant};
use crate::domain::api_key::{ApiKey, KeyKind, Mode};
use crate::domain::merchant::{Freeze, FreezeReason};
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, AuthStore, Commit, LockoutStore, MerchantStore};

contracts!(
    failures_are_counted_per_address_within_the_window,
    a_lockout_is_extended_never_shortened_and_holds_until_it_ends,
    clearing_lifts_the_lockout_and_forgets_the_failures,
    the_lookup_finds_a_key_by_its_hash_with_its_merchant,
);

const T0: i64 = 1_700_000_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

async fn fail<S: LockoutStore + Commit>(store: &S, ip: &str, ms: i64) {
    commit(store, |work| store.record_auth_failure(work, ip, at(ms)))
        .await
        .unwrap();
}

async fn failures_are_counted_per_address_within_the_window<S: LockoutStore + Commit>(store: &S) {
    for ms in [0, 10, 20] {
        fail(store, "192.0.2.1", ms).await;
    }
    fail(store, "192.0.2.1", 20).await;
    fail(store, "2001:db8::1", 5).await;
    assert_eq!(store.auth_failures_since("192.0.2.1", at(0)).await.unwrap(), 4);
    assert_eq!(
        store.auth_failures_since("192.0.2.1", at(10)).await.unwrap(),
        3,
        "at or after"
    );
    assert_eq!(store.auth_failures_since("192.0.2.1", at(21)).await.unwrap(), 0);
    assert_eq!(store.auth_failures_since("2001:db8::1", at(0)).await.unwrap(), 1);
    assert_eq!(store.auth_failures_since("198.51.100.7", at(0)).await.unwrap(), 0);

    // Pruning forgets what is strictly older, of every address.
    assert_eq!(store.prune_auth_failures(at(10)).await.unwrap(), 2);
    assert_eq!(store.auth_failures_since("192.0.2.1", at(0)).await.unwrap(), 3);
    assert_eq!(store.auth_failures_since("2001:db8::1", at(0)).await.unwrap(), 0);
    assert_eq!(store.prune_auth_failures(at(10)).await.unwrap(), 0);
}

async fn a_lockout_is_extended_never_shortened_and_holds_until_it_ends<S: LockoutStore + AuthStore + Commit>(
    store: &S,
) {
    let ip = "192.0.2.9";
    let locked = |until: Option<Timestamp>| until.map(Timestamp::as_millis);
    assert_eq!(store.lookup_for_auth("", ip, at(0)).await.unwrap().locked_until, None);
    commit(store, |work| store.lock_address(work, ip, at(1_000)))
        .await
        .unwrap();
    commit(store, |work| store.lock_address(work, ip, at(500)))
        .await
        .unwrap();
    let lookup = store.lookup_for_auth("", ip, at(0)).await.unwrap();
    assert_eq!(locked(lookup.locked_until), Some(T0 + 1_000), "never shortened");
    assert!(lookup.key.is_none());
    commit(store, |work| store.lock_address(work, ip, at(2_000)))
        .await
        .unwrap();
    let lookup = store.lookup_for_auth("", ip, at(1_999)).await.unwrap();
    assert_eq!(locked(lookup.locked_until), Some(T0 + 2_000), "extended");
    // In force while `locked_until > now` only; other addresses are free.
    assert_eq!(
        store.lookup_for_auth("", ip, at(2_000)).await.unwrap().locked_until,
        None
    );
    assert_eq!(
        store
            .lookup_for_auth("", "192.0.2.10", at(0))
            .await
            .unwrap()
            .locked_until,
        None
    );
    // An expired lockout is still recorded (a clear removes it).
    assert_eq!(store.lockout_recorded(ip).await.unwrap(), (true, 0));
}

async fn clearing_lifts_the_lockout_and_forgets_the_failures<S: LockoutStore + AuthStore + Commit>(store: &S) {
    let (ip, other) = ("192.0.2.20", "192.0.2.21");
    for ms in [0, 1, 2] {
        fail(store, ip, ms).await;
    }
    fail(store, other, 0).await;
    commit(store, |work| {
        store.lock_address(work, ip, at(60_000));
        store.lock_address(work, other, at(60_000));
    })
    .await
    .unwrap();
    assert_eq!(store.lockout_recorded(ip).await.unwrap(), (true, 3));
    commit(store, |work| store.clear_lockout(work, ip)).await.unwrap();
    assert_eq!(store.lockout_recorded(ip).await.unwrap(), (false, 0));
    assert_eq!(store.auth_failures_since(ip, at(0)).await.unwrap(), 0);
    assert_eq!(store.lookup_for_auth("", ip, at(3)).await.unwrap().locked_until, None);
    // The other address keeps its lockout and failures.
    assert_eq!(store.lockout_recorded(other).await.unwrap(), (true, 1));
    assert!(store
        .lookup_for_auth("", other, at(3))
        .await
        .unwrap()
        .locked_until
        .is_some());
    // Clearing an address with nothing changes nothing.
    commit(store, |work| store.clear_lockout(work, "198.51.100.1"))
        .await
        .unwrap();
    assert_eq!(store.lockout_recorded("198.51.100.1").await.unwrap(), (false, 0));
}

async fn the_lookup_finds_a_key_by_its_hash_with_its_merchant<
    S: AuthStore + ApiKeyStore + MerchantStore + LockoutStore + Commit,
>(
    store: &S,
) {
    let merchant = stored_merchant(store, "Authed").await;
    let key = ApiKey {
        restrictions: KeyRestrictions {
            max_amount: Some(700),
            ..KeyRestrictions::default()
        },
        expires_at: Some(at(86_400_000)),
        ..ApiKey::for_test(merchant.id.clone(), KeyKind::Secret, Mode::Live)
    };
    commit(store, |work| store.insert_key(work, &key, "hash-of-the-key"))
        .await
        .unwrap();
    commit(store, |work| store.lock_address(work, "192.0.2.30", at(1_000)))
        .await
        .unwrap();

    let lookup = store
        .lookup_for_auth("hash-of-the-key", "192.0.2.30", at(0))
        .await
        .unwrap();
    let (found, hash, owner) = lookup.key.unwrap();
    assert_eq!(
        (found.id, found.merchant_id, found.mode),
        (key.id.clone(), merchant.id.clone(), Mode::Live)
    );
    assert_eq!(found.restrictions.max_amount, Some(700));
    assert_eq!(hash, "hash-of-the-key");
    assert_eq!((owner.id, owner.name), (merchant.id.clone(), merchant.name.clone()));
    assert!(owner.frozen.is_none());
    assert_eq!(
        lookup.locked_until.map(Timestamp::as_millis),
        Some(T0 + 1_000),
        "read together"
    );

    // An unknown hash is no key (a prefix of the hash is not the hash).
    for unknown in ["", "hash-of-the", "hash-of-the-key2"] {
        assert!(store
            .lookup_for_auth(unknown, "192.0.2.31", at(0))
            .await
            .unwrap()
            .key
            .is_none());
    }
    // A revoked key is still found (the authenticator refuses it), and its
    // merchant's freeze comes with it.
    let freeze = Freeze {
        at: at(5),
        reason: FreezeReason::parse("contract").unwrap(),
    };
    commit(store, |work| {
        store.revoke_key(work, &key.id, at(5));
        store.freeze_merchant(work, &merchant.id, &freeze);
    })
    .await
    .unwrap();
    let (found, _, owner) = store
        .lookup_for_auth("hash-of-the-key", "192.0.2.31", at(6))
        .await
        .unwrap()
        .key
        .unwrap();
    assert_eq!(found.revoked_at, Some(at(5)));
    assert_eq!(owner.frozen.map(|f| f.at), Some(at(5)));
}
