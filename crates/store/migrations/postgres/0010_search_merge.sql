-- SQLite tunes its FTS5 index merging here; PostgreSQL's GIN indexes need nothing.
SELECT 1;
