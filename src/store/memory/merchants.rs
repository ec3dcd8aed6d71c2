//! The merchants port on the double ([`MerchantStore`]'s semantics).

use super::{limit, matched, stage, MemoryStore};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, Merchant, MerchantName};
use crate::store::ports::MerchantStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

impl MerchantStore for MemoryStore {
    async fn get_merchant(&self, id: &MerchantId) -> Result<Option<Merchant>, StoreError> {
        Ok(self.read(|t| t.merchants.get(id.as_str()).cloned()))
    }

    async fn list_merchants(&self, after: Option<&MerchantId>, page: i64) -> Result<Vec<Merchant>, StoreError> {
        let after = after.map_or("", MerchantId::as_str);
        Ok(self.read(|t| {
            t.merchants
                .values()
                .filter(|m| m.id.as_str() > after)
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    fn insert_merchant(&self, work: &mut UnitOfWork, merchant: &Merchant) {
        // The insert writes no freeze, as the SQL statement does not.
        let merchant = Merchant {
            frozen: None,
            ..merchant.clone()
        };
        stage(work, move |t| {
            if t.merchants.contains_key(merchant.id.as_str()) {
                return Err(StoreError::Duplicate);
            }
            t.merchants.insert(merchant.id.to_string(), merchant);
            Ok(())
        });
    }

    fn rename_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, name: &MerchantName) {
        let (id, name) = (id.clone(), name.clone());
        stage(work, move |t| {
            let m = matched(t.merchants.get_mut(id.as_str()))?;
            m.name = name;
            Ok(())
        });
    }

    fn set_element_origins(&self, work: &mut UnitOfWork, id: &MerchantId, origins: &[ElementOrigin]) {
        let (id, origins) = (id.clone(), origins.to_vec());
        stage(work, move |t| {
            let m = matched(t.merchants.get_mut(id.as_str()))?;
            m.element_origins = origins;
            Ok(())
        });
    }

    fn freeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId, freeze: &Freeze) {
        let (id, freeze) = (id.clone(), freeze.clone());
        stage(work, move |t| {
            let m = matched(t.merchants.get_mut(id.as_str()).filter(|m| m.frozen.is_none()))?;
            m.frozen = Some(freeze);
            Ok(())
        });
    }

    fn unfreeze_merchant(&self, work: &mut UnitOfWork, id: &MerchantId) {
        let id = id.clone();
        stage(work, move |t| {
            let m = matched(t.merchants.get_mut(id.as_str()).filter(|m| m.frozen.is_some()))?;
            m.frozen = None;
            Ok(())
        });
    }
}
