-- Moves each payment's history into a column of its row: a JSON array of
-- entries {at, action, from, to, outcome, amount, reason}, oldest first
-- (PostgreSQL: the same migration).
--
-- A confirmed payment wrote four history rows, each with its own foreign-key
-- check against `payments`, into a B-tree of their own; every batch commit
-- rewrote that B-tree's right-most pages in the WAL. The entries are only ever
-- read with their payment, and are now written with it. A change of a payment
-- writes its whole history again, under the compare-and-set on its version.

ALTER TABLE payments ADD COLUMN history TEXT NOT NULL DEFAULT '[]';

UPDATE payments SET history = (
    SELECT json_group_array(json(entry)) FROM (
        SELECT json_object('at', h.at, 'action', h.action, 'from', h.from_status, 'to', h.to_status,
                           'outcome', h.outcome, 'amount', h.amount, 'reason', h.reason) AS entry
        FROM payment_history h WHERE h.payment_id = payments.id ORDER BY h.seq
    )
)
WHERE EXISTS (SELECT 1 FROM payment_history h WHERE h.payment_id = payments.id);

DROP TABLE payment_history;
