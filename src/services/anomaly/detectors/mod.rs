//! The detectors, one module each: what each counts, per which subject, and
//! when that is a finding. They keep their windows in this process
//! ([`super::window`]); where two replicas must see one count (failed
//! authentications, a key's countries) the count comes from the database.

pub mod auth_failures;
pub mod decline_rate;
pub mod new_country;
pub mod rate_spike;
pub mod retired_key;
pub mod tokenization;
