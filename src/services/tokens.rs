//! Tokenization: card numbers in, tokens out. The card number is sealed
//! (envelope encryption bound to merchant and token id) before anything is
//! written; the CVC goes only to the in-memory holder; the masked facts (brand,
//! first six, last four, expiry, fingerprint) are what the rest of the gateway
//! and the merchant see. Reveal and shred are audited in their transaction.
//!
//! Invariant: no function here returns, logs or stores the number in clear,
//! except `reveal`, which requires `tokens:reveal` and writes its audit entry
//! before the number leaves.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::connectors::CardDetails;
use crate::domain::api_key::Mode;
use crate::domain::audit::Outcome;
use crate::domain::card::{CardBrand, CardNumber, CardholderName, Cvc, ExpiryDate};
use crate::domain::ids::{ApiKeyId, MerchantId, TokenId};
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::card_tokens::TokenRow;
use crate::store::ports::{Commit, TokenStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{self, StoreError};
use crate::vault::{self, Aad, CvcOwner, KekVersion, Sealed, Vault, VaultError};

use super::actor::Actor;
use super::ServiceError;

/// Reveals allowed per key per minute.
const REVEALS_PER_MINUTE: i64 = 10;
/// The window of that allowance, in milliseconds.
const REVEAL_WINDOW_MS: i64 = 60_000;

/// A parsed card from the API edge.
#[derive(Debug)]
pub struct CardInput {
    pub number: CardNumber,
    pub expiry: ExpiryDate,
    pub cvc: Option<Cvc>,
    pub name: Option<CardholderName>,
}

/// What the merchant sees of a token.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: TokenId,
    pub mode: Mode,
    pub brand: CardBrand,
    pub bin: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub fingerprint: String,
    pub created_at: Timestamp,
}

/// A revealed card: zeroized when dropped.
pub struct RevealedCard {
    pub token: Token,
    pub number: Zeroizing<String>,
    pub name: Option<String>,
}

pub async fn tokenize<S: TokenStore + Commit>(
    store: &S,
    vault: &Vault,
    actor: &Actor,
    tenant: &Tenant,
    card: CardInput,
) -> Result<Token, ServiceError> {
    let (merchant, mode) = (tenant.merchant(), tenant.mode());
    // Time-ordered, so new rows append to the id index instead of landing on
    // a random page of it: a durable commit then writes a few pages for a
    // whole batch of tokens rather than one page per token.
    let now = Timestamp::now();
    let id = TokenId::generate_time_ordered(now)?;
    let mut payload = Zeroizing::new(Vec::with_capacity(64));
    payload.extend_from_slice(card.number.expose_digits().as_bytes());
    payload.push(b'\n');
    if let Some(name) = &card.name {
        payload.extend_from_slice(name.as_str().as_bytes());
    }
    let sealed = vault::seal(vault.keyring(), aad(merchant, &id), &payload).map_err(internal)?;
    let token = Token {
        id: id.clone(),
        mode,
        brand: card.number.brand(),
        bin: card.number.bin().to_owned(),
        last4: card.number.last4().to_owned(),
        exp_month: card.expiry.month(),
        exp_year: card.expiry.year(),
        fingerprint: vault
            .fingerprinter()
            .fingerprint(tenant, &card.number)
            .as_str()
            .to_owned(),
        created_at: now,
    };
    let row = TokenRow {
        id: id.to_string(),
        merchant_id: merchant.to_string(),
        mode: mode.as_str().to_owned(),
        brand: token.brand.as_str().to_owned(),
        bin: token.bin.clone(),
        last4: token.last4.clone(),
        exp_month: i64::from(token.exp_month),
        exp_year: i64::from(token.exp_year),
        fingerprint: token.fingerprint.clone(),
        kek_version: i64::from(sealed.kek_version().get()),
        wrapped_dek: Some(sealed.wrapped_dek_base64()),
        ciphertext: Some(sealed.ciphertext_base64()),
        created_at: token.created_at.as_millis(),
        shredded_at: None,
    };
    let mut event = actor.event("token.created", Outcome::Success);
    event.merchant_id = Some(merchant.to_string());
    event.mode = Some(mode);
    event.resource = Some(id.to_string());
    event.reason = Some(format!("{} card ending {}", token.brand.as_str(), token.last4));
    // Token and audit entry commit together, in a commit shared with other
    // tokenizations (group commit): one durable flush for many cards.
    let mut work = UnitOfWork::new();
    store.insert_token(&mut work, &row);
    work.audit(event);
    store.commit(work).await?;
    if let Some(cvc) = card.cvc {
        // After the commit: a CVC never waits for a token that does not exist.
        // It fills the merchant's share, and a publishable key's own too.
        let owner = CvcOwner::new(tenant.clone(), actor.publishable_key().cloned());
        vault.cvcs().put(id.as_str(), &owner, cvc).map_err(internal)?;
    }
    Ok(token)
}

pub async fn get<S: TokenStore>(store: &S, tenant: &Tenant, id: &TokenId) -> Result<Token, ServiceError> {
    let row = store.get_live_token(tenant, id).await?.ok_or_else(not_found)?;
    token_from_row(&row)
}

/// Crypto-shredding: the wrapped data key and the ciphertext are destroyed, so
/// the number can never be decrypted again, with any KEK.
pub async fn shred<S: TokenStore + Commit>(
    store: &S,
    vault: &Vault,
    actor: &Actor,
    tenant: &Tenant,
    id: &TokenId,
) -> Result<(), ServiceError> {
    let mut event = actor.event("token.shredded", Outcome::Success);
    event.merchant_id = Some(tenant.merchant().to_string());
    event.mode = Some(tenant.mode());
    event.resource = Some(id.to_string());
    let mut work = UnitOfWork::new();
    store.shred_token(&mut work, tenant, id, Timestamp::now());
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => not_found(),
        other => other.into(),
    })?;
    let _ = vault.cvcs().take(id.as_str());
    Ok(())
}

/// Decrypts the number for a caller holding `tokens:reveal`. The audit entry
/// commits before the number is returned; at most 10 reveals per key per minute.
pub async fn reveal<S: TokenStore + Commit>(
    store: &S,
    vault: &Vault,
    actor: &Actor,
    tenant: &Tenant,
    key: &ApiKeyId,
    id: &TokenId,
) -> Result<RevealedCard, ServiceError> {
    let merchant = tenant.merchant();
    // Counted in the database, in the unit that audits the reveal: one
    // allowance across every replica, and no reveal without its entry. A
    // reveal of a token that is not there counts too.
    let mut work = UnitOfWork::new();
    store.count_reveal(
        &mut work,
        key.as_str(),
        Timestamp::now().as_millis(),
        REVEAL_WINDOW_MS,
        REVEALS_PER_MINUTE,
    );
    let row = store.get_live_token(tenant, id).await?;
    let revealed = match &row {
        Some(row) => {
            let (number, name) = decrypt(vault, merchant, row)?;
            let mut event = actor.event("token.revealed", Outcome::Success);
            event.merchant_id = Some(merchant.to_string());
            event.mode = Some(tenant.mode());
            event.resource = Some(id.to_string());
            work.audit(event);
            Some(RevealedCard {
                token: token_from_row(row)?,
                number,
                name: name.map(|n| n.expose_secret().to_owned()),
            })
        }
        None => None,
    };
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::RateLimited {
            message: "Too many card reveals with this key; try again in a minute".into(),
        },
        other => other.into(),
    })?;
    revealed.ok_or_else(not_found)
}

/// Opens a live token of `tenant` for an authorization: the number and name
/// from the vault and, when `with_cvc` (the authorization that will use it),
/// the CVC taken out of the in-memory holder, so that it is destroyed by that
/// use; otherwise the CVC stays held for the authorization to come. `None`
/// if there is no such live token.
pub async fn open_for_payment<S: TokenStore>(
    store: &S,
    vault: &Vault,
    tenant: &Tenant,
    id: &TokenId,
    with_cvc: bool,
) -> Result<Option<(Token, CardDetails)>, ServiceError> {
    let Some(row) = store.get_live_token_for_payment(tenant, id).await? else {
        return Ok(None);
    };
    let token = token_from_row(&row)?;
    let (digits, name) = decrypt(vault, tenant.merchant(), &row)?;
    let number = CardNumber::parse(&digits).map_err(|_| internal(VaultError::Decrypt))?;
    let expiry = ExpiryDate::from_stored(row.exp_month, row.exp_year).map_err(|_| internal(VaultError::Decrypt))?;
    let cvc = if with_cvc {
        vault.cvcs().take(id.as_str())?
    } else {
        None
    };
    Ok(Some((
        token,
        CardDetails {
            number,
            expiry,
            cvc,
            name,
        },
    )))
}

/// Decrypts a token row's number (and name, when one was given).
fn decrypt(
    vault: &Vault,
    merchant: &MerchantId,
    row: &TokenRow,
) -> Result<(Zeroizing<String>, Option<SecretString>), ServiceError> {
    let (Some(wrapped), Some(ciphertext)) = (&row.wrapped_dek, &row.ciphertext) else {
        return Err(not_found());
    };
    let id = TokenId::from_trusted(row.id.clone());
    let version =
        KekVersion::new(u32::try_from(row.kek_version).map_err(|_| internal(VaultError::Malformed("kek version")))?);
    let sealed = Sealed::from_base64(version, wrapped, ciphertext).map_err(internal)?;
    let plain = vault::open(vault.keyring(), aad(merchant, &id), &sealed).map_err(internal)?;
    let text = Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(|_| internal(VaultError::Decrypt))?);
    let (number, name) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    let name = (!name.is_empty()).then(|| SecretString::from(name.to_owned()));
    Ok((Zeroizing::new(number.to_owned()), name))
}

fn aad<'a>(merchant: &'a MerchantId, id: &'a TokenId) -> Aad<'a> {
    Aad {
        token_id: id.as_str(),
        merchant_id: merchant.as_str(),
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound {
        resource: "token",
        param: "id",
    }
}

fn internal(e: VaultError) -> ServiceError {
    ServiceError::Vault(e)
}

fn token_from_row(row: &TokenRow) -> Result<Token, ServiceError> {
    let corrupt = |what: &str| ServiceError::Store(store::StoreError::Corrupt(format!("card_tokens.{what}")));
    Ok(Token {
        id: TokenId::from_trusted(row.id.clone()),
        mode: Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?,
        brand: CardBrand::parse(&row.brand).ok_or_else(|| corrupt("brand"))?,
        bin: row.bin.clone(),
        last4: row.last4.clone(),
        exp_month: u8::try_from(row.exp_month).map_err(|_| corrupt("exp_month"))?,
        exp_year: u16::try_from(row.exp_year).map_err(|_| corrupt("exp_year"))?,
        fingerprint: row.fingerprint.clone(),
        created_at: Timestamp::from_millis(row.created_at),
    })
}

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use secrecy::SecretBox;

    use super::*;
    use crate::domain::merchant::MerchantName;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;
    use crate::vault::{CvcStore, Fingerprinter, Kek, StaticKeyring};

    struct Fixture {
        store: MemoryStore,
        vault: Vault,
        actor: Actor,
        tenant: Tenant,
        key: ApiKeyId,
    }

    impl Fixture {
        async fn new() -> Self {
            let store = MemoryStore::new();
            let actor = Actor::Operator {
                command: "tokens test".into(),
            };
            let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Cards").unwrap())
                .await
                .unwrap();
            let vault = Vault::new(
                Arc::new(StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap())),
                Fingerprinter::new(SecretBox::new(Box::new([9u8; 32]))),
                CvcStore::new(Duration::from_secs(60), 100).unwrap(),
            );
            Self {
                store,
                vault,
                actor,
                tenant: Tenant::new(merchant.id, Mode::Test),
                key: ApiKeyId::generate().unwrap(),
            }
        }

        async fn tokenize(&self) -> Token {
            let number = CardNumber::parse("4242424242424242").unwrap();
            let card = CardInput {
                cvc: Some(Cvc::parse("123", number.brand()).unwrap()),
                number,
                expiry: ExpiryDate::parse(12, 2031, Timestamp::now()).unwrap(),
                name: Some(CardholderName::parse("Ada Lovelace").unwrap()),
            };
            tokenize(&self.store, &self.vault, &self.actor, &self.tenant, card)
                .await
                .unwrap()
        }

        async fn reveal(&self, tenant: &Tenant, id: &TokenId) -> Result<RevealedCard, ServiceError> {
            reveal(&self.store, &self.vault, &self.actor, tenant, &self.key, id).await
        }
    }

    #[tokio::test]
    async fn a_token_stores_only_the_envelope_and_reveals_the_number() {
        let f = Fixture::new().await;
        let token = f.tokenize().await;
        assert_eq!((token.bin.as_str(), token.last4.as_str()), ("424242", "4242"));
        let row = f.store.get_live_token(&f.tenant, &token.id).await.unwrap().unwrap();
        let stored = format!("{row:?}");
        assert!(
            !stored.contains("4242424242424242") && !stored.contains("Ada"),
            "{stored}"
        );
        assert_eq!(
            get(&f.store, &f.tenant, &token.id).await.unwrap().fingerprint,
            token.fingerprint
        );

        let revealed = f.reveal(&f.tenant, &token.id).await.unwrap();
        assert_eq!(revealed.number.as_str(), "4242424242424242");
        assert_eq!(revealed.name.as_deref(), Some("Ada Lovelace"));
        let actions: Vec<String> = f
            .store
            .audit_page(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.action)
            .collect();
        assert_eq!(actions, ["merchant.created", "token.created", "token.revealed"]);

        let (_, card) = open_for_payment(&f.store, &f.vault, &f.tenant, &token.id, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(card.number.last4(), "4242");
        assert!(card.cvc.is_some(), "the CVC held for the first authorization");
        let (_, card) = open_for_payment(&f.store, &f.vault, &f.tenant, &token.id, true)
            .await
            .unwrap()
            .unwrap();
        assert!(card.cvc.is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_token_of_another_mode_or_merchant_is_not_found() {
        let f = Fixture::new().await;
        let token = f.tokenize().await;
        for tenant in [
            Tenant::new(f.tenant.merchant().clone(), Mode::Live),
            Tenant::new(MerchantId::generate().unwrap(), Mode::Test),
        ] {
            let found = get(&f.store, &tenant, &token.id).await;
            assert!(
                matches!(found, Err(ServiceError::NotFound { resource: "token", .. })),
                "{found:?}"
            );
            let revealed = f.reveal(&tenant, &token.id).await;
            assert!(
                matches!(revealed, Err(ServiceError::NotFound { .. })),
                "{:?}",
                revealed.err()
            );
            let shredded = shred(&f.store, &f.vault, &f.actor, &tenant, &token.id).await;
            assert!(matches!(shredded, Err(ServiceError::NotFound { .. })), "{shredded:?}");
            assert!(open_for_payment(&f.store, &f.vault, &tenant, &token.id, false)
                .await
                .unwrap()
                .is_none());
        }
    }

    #[tokio::test]
    async fn reveals_stop_at_the_allowance_and_count_misses_too() {
        let f = Fixture::new().await;
        let token = f.tokenize().await;
        let missing = TokenId::generate().unwrap();
        let miss = f.reveal(&f.tenant, &missing).await;
        assert!(matches!(miss, Err(ServiceError::NotFound { .. })), "{:?}", miss.err());
        for _ in 1..REVEALS_PER_MINUTE {
            f.reveal(&f.tenant, &token.id).await.unwrap();
        }
        let over = f.reveal(&f.tenant, &token.id).await;
        assert!(
            matches!(over, Err(ServiceError::RateLimited { .. })),
            "{:?}",
            over.err()
        );
        let reveals = f
            .store
            .audit_page(0, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.action == "token.revealed")
            .count();
        assert_eq!(
            i64::try_from(reveals).unwrap(),
            REVEALS_PER_MINUTE - 1,
            "no entry for the refused one"
        );
    }

    #[tokio::test]
    async fn a_shredded_token_is_gone_for_good() {
        let f = Fixture::new().await;
        let token = f.tokenize().await;
        shred(&f.store, &f.vault, &f.actor, &f.tenant, &token.id).await.unwrap();
        let found = get(&f.store, &f.tenant, &token.id).await;
        assert!(matches!(found, Err(ServiceError::NotFound { .. })), "{found:?}");
        let revealed = f.reveal(&f.tenant, &token.id).await;
        assert!(
            matches!(revealed, Err(ServiceError::NotFound { .. })),
            "{:?}",
            revealed.err()
        );
        let again = shred(&f.store, &f.vault, &f.actor, &f.tenant, &token.id).await;
        assert!(matches!(again, Err(ServiceError::NotFound { .. })), "{again:?}");
        assert!(
            f.vault.cvcs().take(token.id.as_str()).unwrap().is_none(),
            "the CVC went with it"
        );
    }
}
