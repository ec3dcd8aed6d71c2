-- Score thresholds per rule-set version (issue 20): the score from which a
-- payment is held for review and the one from which it is blocked, saved
-- with each version (so activating an older version brings its thresholds
-- back). Versions saved before keep the former constants, 65 and 85.

ALTER TABLE fraud_rule_sets ADD COLUMN review_at BIGINT NOT NULL DEFAULT 65
    CHECK (review_at >= 1 AND review_at <= 100);
ALTER TABLE fraud_rule_sets ADD COLUMN block_at BIGINT NOT NULL DEFAULT 85
    CHECK (block_at >= 1 AND block_at <= 100);
