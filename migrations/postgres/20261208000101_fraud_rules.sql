-- The fraud engine (issue 20): merchants' rule sets, their lists, and the
-- risk assessment stored on each payment.
--
-- 1. Rule sets are versioned per (merchant, mode): every save is a new
--    version (its text as written, the SHA-256 of that text, who saved it);
--    versions are never changed or deleted.
-- 2. One version per (merchant, mode) is active, named by fraud_active_rules.
-- 3. Lists (`@name` in a rule) per (merchant, mode, name): a JSON array of
--    strings, replaced whole.
-- 4. payments.risk: the JSON of the assessment made when the payment was
--    confirmed (NULL without a rule set).

CREATE TABLE fraud_rule_sets (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode        TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    version     BIGINT NOT NULL CHECK (version >= 1),
    rules       TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (merchant_id, mode, version)
);

CREATE TABLE fraud_active_rules (
    merchant_id  TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    version      BIGINT NOT NULL,
    activated_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mode),
    FOREIGN KEY (merchant_id, mode, version) REFERENCES fraud_rule_sets (merchant_id, mode, version)
);

CREATE TABLE fraud_lists (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    mode        TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    name        TEXT NOT NULL,
    entries     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mode, name)
);

ALTER TABLE payments ADD COLUMN risk TEXT;
