-- Per-merchant processor connections (issue 19).
--
-- A connection is one merchant's account at a processor, in one mode: its
-- credentials (a Stripe secret or restricted key, optionally the endpoint's
-- webhook signing secret) are never stored in clear but sealed as one record
-- by the vault's envelope encryption (a data key wrapped by the KEK of
-- `kek_version`), bound to merchant, mode and connection id. Only a hint of
-- the key (its last four characters) is kept in clear. A connection's
-- credentials never change: a new key is a new connection. Disabling keeps
-- the sealed credentials, so payments made through it can still be
-- captured, canceled and refunded.
--
-- Routing: `merchants.connector` keeps its meaning for test mode (the
-- connector new test payments go to: `sandbox` by default, or a
-- connection id); `merchants.live_connector` is the live-mode one, NULL
-- when none is configured (live payments then fail with
-- `connector_configuration`; the sandbox never takes them, as it did not
-- before). Every existing merchant starts with no live connector.
-- `payments.connector` records the connector or connection id a payment
-- went to, which serves its later steps.

CREATE TABLE processor_connections (
    id                  TEXT PRIMARY KEY NOT NULL,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    mode                TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    kind                TEXT NOT NULL CHECK (kind IN ('stripe')),
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    -- The last four characters of the secret key, for people to recognise it.
    secret_key_last4    TEXT NOT NULL,
    -- 1 when the sealed credentials hold a webhook signing secret.
    has_webhook_secret  BIGINT NOT NULL CHECK (has_webhook_secret IN (0, 1)),
    kek_version         BIGINT NOT NULL,
    wrapped_dek         TEXT NOT NULL,
    ciphertext          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    disabled_at         BIGINT,
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL))
);
CREATE INDEX processor_connections_by_merchant ON processor_connections (merchant_id, mode, id);
CREATE INDEX processor_connections_by_kek ON processor_connections (kek_version);

ALTER TABLE merchants ADD COLUMN live_connector TEXT;
