-- Fraud signals (issue 20): one row per screened confirm, from which the
-- velocity facts of later payments are counted (services::fraud::velocity).
--
-- Rows are only ever inserted (in the payment's own unit of work) and
-- deleted once older than the retention (30 days), never updated: no two
-- confirms contend for a row, so the group commit's batches never wait on
-- each other here nor deadlock. Each count reads at most the newest 100 rows
-- of its key, from the indexes below alone (they hold every column a count
-- reads: no table look-up per row).
--
-- The customer's IP address and e-mail address are stored only as keyed
-- hashes (HMAC-SHA-256 under a key of the merchant and mode, derived from
-- the fingerprint secret), the card as its fingerprint (keyed likewise):
-- nothing here is customer data in clear, and one merchant's keys never
-- match another's.
--
-- outcome: 0 allowed (or pending), 1 declined by the processor, 2 blocked
-- by the merchant's rules.

CREATE TABLE fraud_observations (
    merchant_id TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    payment_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    card_key    TEXT NOT NULL,
    ip_key      TEXT,
    email_key   TEXT,
    currency    TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    outcome     BIGINT NOT NULL CHECK (outcome >= 0 AND outcome <= 2),
    PRIMARY KEY (merchant_id, mode, payment_id, at)
);

CREATE INDEX fraud_observations_card ON fraud_observations (merchant_id, mode, card_key, at, outcome);
CREATE INDEX fraud_observations_ip ON fraud_observations (merchant_id, mode, ip_key, at, outcome, card_key);
CREATE INDEX fraud_observations_email ON fraud_observations (merchant_id, mode, email_key, at, outcome, card_key);
CREATE INDEX fraud_observations_at ON fraud_observations (at);
