-- Stores events as a rowid table again (SQLite only), undoing their
-- clustering by primary key (migration 7); the other tables stay clustered.
-- Events written by one change (`payment.created` and `payment.succeeded` of
-- a payment confirmed at once) carry the same snapshot of their object: the
-- later ones now store no copy of it, only `snapshot_of`, the id of the first
-- (PostgreSQL: migration 10).
--
-- Events arrive in key order (time-ordered ids), so every insert lands on
-- the right-most leaf. A rowid table takes a full right-most leaf by starting
-- a new page (SQLite's "quick balance"), touching nothing else; a WITHOUT
-- ROWID table is an index B-tree, which SQLite balances by spreading cells
-- over the leaf and its left siblings, rewriting three or four pages per
-- split. At about 700 bytes an event row (it carries the object's snapshot)
-- split a leaf every five rows: measured, 12.5 WAL frames per commit of a
-- batch of 13 payments went to events alone, 8.3 (table and key index
-- together) in this layout. Smaller rows (payments, history, tokens) split
-- rarely enough that clustering them still saves their extra index.
--
-- The table is rebuilt under its own name as in migration 7, in one
-- transaction with foreign-key checks deferred to its commit.

PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE events_rows AS SELECT * FROM events;
DROP TABLE events;
CREATE TABLE events (
    id           TEXT PRIMARY KEY NOT NULL,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    mode         TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    type         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    data         TEXT,
    snapshot_of  TEXT REFERENCES events (id),
    created_at   BIGINT NOT NULL,
    CHECK ((data IS NULL) = (snapshot_of IS NOT NULL))
);
INSERT INTO events (id, merchant_id, mode, type, object_id, data, created_at)
SELECT id, merchant_id, mode, type, object_id, data, created_at FROM temp.events_rows ORDER BY id;
DROP TABLE temp.events_rows;
CREATE INDEX events_by_merchant ON events (merchant_id, id);

