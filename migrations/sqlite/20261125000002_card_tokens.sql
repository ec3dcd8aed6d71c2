-- Card tokens: the vault's records. The card number (and cardholder name) exist
-- only as AES-256-GCM ciphertext under a per-record data key, which is stored
-- wrapped by the KEK of `kek_version`. Shredding nulls the wrapped key and the
-- ciphertext: the number becomes unrecoverable. No CVC column exists, by design.

CREATE TABLE card_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    brand        TEXT NOT NULL,
    bin          TEXT NOT NULL,
    last4        TEXT NOT NULL,
    exp_month    BIGINT NOT NULL,
    exp_year     BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL,
    kek_version  BIGINT NOT NULL,
    wrapped_dek  TEXT,
    ciphertext   TEXT,
    created_at   BIGINT NOT NULL,
    shredded_at  BIGINT
);
CREATE INDEX card_tokens_by_merchant ON card_tokens (merchant_id, id);
CREATE INDEX card_tokens_by_fingerprint ON card_tokens (merchant_id, fingerprint);
CREATE INDEX card_tokens_by_kek_version ON card_tokens (kek_version);
