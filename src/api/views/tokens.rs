//! A card token as merchants see it (the card masked: brand, BIN, last four,
//! expiry, and the fingerprint only to keys that may read tokens), a shredded
//! token, and a revealed card (the full number: `tokens:reveal` only).

use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::domain::card::CardBrand;
use crate::services::tokens::{RevealedCard, Token};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub brand: CardBrand,
    /// The first six digits.
    pub bin: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
    /// Stable per merchant and mode for the same card number. Shown only to
    /// secret keys and restricted keys with `tokens:read`: never to a
    /// publishable key (with the BIN and last four it would let a script
    /// find the full number by tokenizing candidates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub created: i64,
    pub card: CardView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedToken {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedCardView {
    pub id: String,
    pub object: &'static str,
    pub card: RevealedCardDetails,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RevealedCardDetails {
    pub number: String,
    pub brand: CardBrand,
    pub exp_month: u8,
    pub exp_year: u16,
    pub name: Option<String>,
}

impl TokenView {
    /// The token, with its fingerprint only if `with_fingerprint` (a key that
    /// may read tokens).
    pub fn new(t: &Token, with_fingerprint: bool) -> Self {
        TokenView {
            id: t.id.to_string(),
            object: "token",
            livemode: t.mode == Mode::Live,
            created: t.created_at.as_secs(),
            card: CardView {
                brand: t.brand,
                bin: t.bin.clone(),
                last4: t.last4.clone(),
                exp_month: t.exp_month,
                exp_year: t.exp_year,
                fingerprint: with_fingerprint.then(|| t.fingerprint.clone()),
            },
        }
    }
}

impl DeletedToken {
    pub fn new(id: String) -> Self {
        Self {
            id,
            object: "token",
            deleted: true,
        }
    }
}

impl RevealedCardView {
    pub fn new(id: String, card: &RevealedCard) -> Self {
        RevealedCardView {
            id,
            object: "card_reveal",
            card: RevealedCardDetails {
                number: card.number.to_string(),
                brand: card.token.brand,
                exp_month: card.token.exp_month,
                exp_year: card.token.exp_year,
                name: card.name.clone(),
            },
        }
    }
}
