//! The authentication port on the double ([`AuthStore`]'s semantics): the
//! key by its stored hash with its merchant, and the address's lockout in
//! force, read together.

use std::sync::Arc;

use super::MemoryStore;
use crate::domain::time::Timestamp;
use crate::store::api_keys::AuthLookup;
use crate::store::auth_state::AuthState;
use crate::store::ports::AuthStore;
use crate::store::StoreError;

impl AuthStore for MemoryStore {
    async fn lookup_for_auth(&self, key_hash: &str, client_ip: &str, now: Timestamp) -> Result<AuthLookup, StoreError> {
        Ok(self.read(|t| {
            let locked_until = t
                .lockouts
                .get(client_ip)
                .filter(|until| **until > now.as_millis())
                .map(|until| Timestamp::from_millis(*until));
            // As the SQL join: a key whose merchant is missing is no key.
            let key = t
                .api_keys
                .values()
                .find(|(_, hash)| hash == key_hash)
                .and_then(|(key, hash)| {
                    let merchant = t.merchants.get(key.merchant_id.as_str())?;
                    Some((key.clone(), hash.clone(), merchant.clone()))
                });
            AuthLookup { key, locked_until }
        }))
    }

    fn auth_state(&self) -> &Arc<AuthState> {
        &self.auth_state
    }
}
