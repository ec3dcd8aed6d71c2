-- The reconciliation job's scan of refunds left `pending` (an unknown
-- outcome at a processor): few at any time, so this partial index stays
-- small, and settled refunds never touch it.
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE status = 'pending';
