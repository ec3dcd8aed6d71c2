-- Moves each payment's history into a column of its row: a JSON array of
-- entries {at, action, from, to, outcome, amount, reason}, oldest first
-- (SQLite: the same migration, where the reason is measured). The entries are
-- only ever read with their payment, and are now written with it.

ALTER TABLE payments ADD COLUMN history TEXT NOT NULL DEFAULT '[]';

UPDATE payments p SET history = h.entries
FROM (
    SELECT payment_id,
           json_agg(json_build_object('at', at, 'action', action, 'from', from_status, 'to', to_status,
                                      'outcome', outcome, 'amount', amount, 'reason', reason) ORDER BY seq)::text AS entries
    FROM payment_history
    GROUP BY payment_id
) h
WHERE h.payment_id = p.id;

DROP TABLE payment_history;
