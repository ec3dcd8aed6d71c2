//! API keys: what a key is for and which mode it acts in ([`kind`]), the
//! secret a caller presents, its format and checksum ([`secret`]), and what
//! the gateway records about an issued key, never the key itself, with the
//! rules that decide whether it may be used now ([`record`]).

pub mod kind;
pub mod record;
pub mod secret;

pub use kind::{KeyKind, Mode};
pub use record::{ApiKey, KeyUnusable, MAX_DESCRIPTION_CHARS};
pub use secret::{looks_like_paywarden_key, ApiKeySecret, MalformedKey};
