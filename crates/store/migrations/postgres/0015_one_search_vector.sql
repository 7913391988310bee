-- One weighted search vector instead of two (search_public, search_all), so every ticket write
-- maintains one GIN index instead of two — they held mostly the same words. Public text
-- (subject, description, public answers) has weight A, internal notes weight B; a requester's
-- query asks for `:A` lexemes only, staff's for any. Derived data: rebuilt from the old columns
-- (a lexeme in both keeps an A position, so it stays findable by requesters).
ALTER TABLE tickets ADD COLUMN search TSVECTOR NOT NULL DEFAULT ''::tsvector;
UPDATE tickets SET search = setweight(search_all, 'B') || setweight(search_public, 'A');
DROP INDEX tickets_search_public;
DROP INDEX tickets_search_all;
ALTER TABLE tickets DROP COLUMN search_public, DROP COLUMN search_all;
CREATE INDEX tickets_search ON tickets USING GIN (search);
