-- Events written by one change (`payment.created` and `payment.succeeded` of
-- a payment confirmed at once) carry the same snapshot of their object: the
-- later ones store no copy of it, only `snapshot_of`, the id of the first one,
-- whose `data` readers take instead (SQLite: migration 9).
ALTER TABLE events ALTER COLUMN data DROP NOT NULL;
ALTER TABLE events ADD COLUMN snapshot_of TEXT COLLATE "C" REFERENCES events (id);
ALTER TABLE events ADD CONSTRAINT events_data_or_snapshot CHECK ((data IS NULL) = (snapshot_of IS NOT NULL));
