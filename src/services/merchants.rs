//! Merchant use cases: create (audited in the same transaction), get, list.

use crate::domain::audit::Outcome;
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{Merchant, MerchantName};
use crate::domain::time::Timestamp;
use crate::store::{self, Store};

use super::actor::Actor;
use super::ServiceError;

pub async fn create(store: &Store, actor: &Actor, name: MerchantName) -> Result<Merchant, ServiceError> {
    let merchant = Merchant {
        id: MerchantId::generate()?,
        name,
        created_at: Timestamp::now(),
    };
    let mut event = actor.event("merchant.created", Outcome::Success);
    event.merchant_id = Some(merchant.id.to_string());
    event.resource = Some(merchant.id.to_string());
    let mut tx = store.begin().await?;
    store::merchants::insert(&mut *tx, &merchant).await?;
    store::audit::append(&mut tx, &[event]).await?;
    tx.commit().await?;
    Ok(merchant)
}

pub async fn get(store: &Store, id: &MerchantId) -> Result<Merchant, ServiceError> {
    store::merchants::get(store.reader(), id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "merchant",
            param: "merchant",
        })
}

pub async fn list(store: &Store, after: Option<&MerchantId>, limit: i64) -> Result<Vec<Merchant>, ServiceError> {
    Ok(store::merchants::list(store.reader(), after.map(MerchantId::as_str), limit).await?)
}

/// Renames the merchant; the change and its audit entry commit together.
pub async fn rename(
    store: &Store,
    actor: &Actor,
    id: &MerchantId,
    name: MerchantName,
) -> Result<Merchant, ServiceError> {
    let mut event = actor.event("merchant.updated", Outcome::Success);
    event.merchant_id = Some(id.to_string());
    event.resource = Some(id.to_string());
    event.reason = Some("name changed".into());
    let mut tx = store.begin().await?;
    if !store::merchants::update_name(&mut *tx, id, &name).await? {
        return Err(ServiceError::NotFound {
            resource: "merchant",
            param: "merchant",
        });
    }
    store::audit::append(&mut tx, &[event]).await?;
    let merchant = store::merchants::get(&mut *tx, id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "merchant",
            param: "merchant",
        })?;
    tx.commit().await?;
    Ok(merchant)
}
