//! The authentication port: the one read on every authenticated request
//! (the key by the keyed hash of its plaintext, its merchant and the client
//! address's lockout), and the generation of authentication state that the
//! authenticator's cache follows (`services::auth::cache`).
//!
//! The SQL backend answers the lookup in one statement on its fastest read
//! path (inline on SQLite, `store::sqlite_fast`); services call it through
//! a generic parameter, so the hot path costs what calling the table
//! module did.

use std::future::Future;
use std::sync::Arc;

use crate::domain::time::Timestamp;
use crate::store::api_keys::AuthLookup;
use crate::store::auth_state::AuthState;
use crate::store::StoreError;

pub trait AuthStore: Send + Sync {
    /// The key whose stored hash is `key_hash` (with that hash and its
    /// merchant), and the lockout of `client_ip` if one is in force at `now`
    /// (`locked_until > now`). No key with that hash is `key: None`; an
    /// address without a lockout in force is `locked_until: None`. Both are
    /// answered by one read, so a known and an unknown key cost the same.
    fn lookup_for_auth(
        &self,
        key_hash: &str,
        client_ip: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<AuthLookup, StoreError>> + Send;

    /// The generation of authentication state that
    /// [`Commit::auth_state_changed`](super::Commit::auth_state_changed)
    /// moves on: a cache of lookups follows it.
    fn auth_state(&self) -> &Arc<AuthState>;
}
