-- Idempotency keys: one row per (merchant, client key) for every POST sent with
-- an `Idempotency-Key` header. The request itself is never stored: only an HMAC
-- of it (API key id, method, path, body) under a key derived from the API-key
-- pepper, since a request body can hold a card number and CVC. The response
-- (status code in clear; content type and body) is sealed with the vault's
-- envelope encryption, bound to the merchant, key and request MAC: its data key
-- is wrapped by the KEK of `kek_version`, so `vault rotate-kek` re-wraps it.
--
-- `state` is `in_progress` while the first request runs (`request_id` holds the
-- lock until `locked_until`; a later request may take over a stale lock), then
-- `done` with the sealed response. Rows are deleted after `expires_at`.

CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    key           TEXT NOT NULL,
    request_mac   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    request_id    TEXT NOT NULL,
    locked_until  BIGINT NOT NULL,
    status_code   BIGINT,
    response      TEXT,
    wrapped_dek   TEXT,
    kek_version   BIGINT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, key),
    CHECK (state = 'in_progress' OR (status_code IS NOT NULL AND response IS NOT NULL
                                     AND wrapped_dek IS NOT NULL AND kek_version IS NOT NULL))
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_kek_version ON idempotency_keys (kek_version);
