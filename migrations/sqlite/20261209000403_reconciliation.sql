-- The reconciliation job (issue 19): payments left `processing` after an
-- unknown outcome are asked about at their processor (`Connector::sync`),
-- with backoff. A claim per payment makes the job safe on several replicas:
-- a round is taken by one conditional write (insert, or advance from the
-- attempt count read), so only one replica asks the processor per round.
-- `alerted` records that the payment's overdue alert event was emitted.
CREATE TABLE reconciliation_claims (
    merchant_id  TEXT NOT NULL,
    payment_id   TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    attempts     BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    alerted      BIGINT NOT NULL DEFAULT 0 CHECK (alerted IN (0, 1)),
    PRIMARY KEY (merchant_id, payment_id)
);

-- The job's scan: payments stored as `processing` are few (only those sent
-- to an external processor, until its answer is recorded), so this partial
-- index stays small and the sandbox's payments never touch it.
CREATE INDEX payments_processing ON payments (updated_at) WHERE status = 'processing';
