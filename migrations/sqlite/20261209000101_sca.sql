-- Strong Customer Authentication (issue 20).
--
-- 1. payments.sca: the JSON of the SCA decision made when the payment was
--    confirmed (decision, exemption or scope, reason, amount in EUR) and of
--    its 3-D Secure result (version, status, ECI, whether a cryptogram came,
--    DS transaction id, liability shift); never a cryptogram. NULL before
--    confirmation.
-- 2. sca_counters: per card fingerprint (per merchant and mode, as the
--    fingerprints are keyed), the payer-initiated payments exempted from SCA
--    since the card's last SCA (PSD2 RTS Art. 16 low-value counters: how
--    many, and their total in euro cents), and when the card last passed
--    SCA (a merchant-initiated payment after it is out of scope). Changed
--    only in the unit of work of the payment that moves them, by statements
--    that add in place (never a value computed from an earlier read), the
--    low-value one only while it stays within the limits.

ALTER TABLE payments ADD COLUMN sca TEXT;

CREATE TABLE sca_counters (
    merchant_id      TEXT NOT NULL REFERENCES merchants (id),
    mode             TEXT NOT NULL CHECK (mode = 'test' OR mode = 'live'),
    fingerprint      TEXT NOT NULL,
    consecutive      BIGINT NOT NULL CHECK (consecutive >= 0),
    cumulative_cents BIGINT NOT NULL CHECK (cumulative_cents >= 0),
    authenticated_at BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, mode, fingerprint)
);
