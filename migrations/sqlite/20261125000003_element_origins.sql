-- Origins (scheme://host[:port]) allowed to embed the hosted card fields page
-- of a merchant, as a JSON array of strings.
ALTER TABLE merchants ADD COLUMN element_origins TEXT NOT NULL DEFAULT '[]';
